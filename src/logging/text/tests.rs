use super::*;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[derive(Debug)]
struct Outer(std::io::Error);
impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outer failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Events covering every kind of field and the strings that need
/// escaping.
fn emit_all() {
    let list = vec!["repository:a/b:pull".to_string(), "q\"uote".into()];
    let ip: std::net::IpAddr = [10, 0, 0, 1].into();
    tracing::info!(target: "regauth::audit", outcome = "issued", method = "GET", %ip, account = %"alice", requested = ?list, offline = false, n = 3u64, d = -7i64, f = 1.5f64);
    tracing::warn!("plain message");
    tracing::error!(
        value = "tab\there \\ é ü \u{301} \u{7}",
        "message with {} and \x1b[31mred\x1b[0m \u{85}",
        "args"
    );
    tracing::info!(r#type = "repository", empty = "", "");
    tracing::debug!(opt = ?Some("x"), none = ?None::<u8>, unit = ?());
    let err = Outer(std::io::Error::other("inner \x1b cause"));
    tracing::warn!(error = &err as &(dyn std::error::Error + 'static), "failed");
    tracing::warn!(error = %err, "display only");
    let span = tracing::info_span!("req", id = 7, who = "bob");
    let _g = span.enter();
    let inner = tracing::debug_span!("inner");
    let _g2 = inner.enter();
    tracing::info!(k = "v", "inside spans");
}

fn capture_with(plain: bool) -> String {
    let out = Capture::default();
    let builder = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(out.clone());
    if plain {
        let sub = builder
            .event_format(PlainFormat::without_time())
            .fmt_fields(PlainFields)
            .finish();
        tracing::subscriber::with_default(sub, emit_all);
    } else {
        tracing::subscriber::with_default(builder.finish(), emit_all);
    }
    out.text()
}

#[test]
fn lines_match_the_default_formatter_byte_for_byte() {
    let ours = capture_with(true);
    let theirs = capture_with(false);
    assert_eq!(ours.lines().count(), 8, "{ours}");
    for (a, b) in ours.lines().zip(theirs.lines()) {
        assert_eq!(a, b);
    }
    assert_eq!(ours, theirs);
}

#[test]
fn timestamps_table() {
    let cases = [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (1_795_455_820, 437_528_999, "2026-11-23T17:43:40.437528Z"),
        (951_782_400, 1_000, "2000-02-29T00:00:00.000001Z"),
        (253_402_300_799, 999_999_999, "9999-12-31T23:59:59.999999Z"),
    ];
    for (secs, nanos, want) in cases {
        let t =
            OffsetDateTime::from_unix_timestamp(secs).unwrap() + time::Duration::nanoseconds(nanos);
        let mut s = String::new();
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, want, "{secs}.{nanos}");
    }
}

#[test]
fn debug_strings_match_std() {
    for s in [
        "",
        "plain",
        "a\"b",
        "back\\slash",
        "new\nline",
        "é",
        "\u{301}",
        "\x7f",
        "'",
    ] {
        let mut ours = String::new();
        write_debug_str(&mut ours, s).unwrap();
        assert_eq!(ours, format!("{s:?}"));
    }
}
