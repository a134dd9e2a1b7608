//! Audit records: one line per token request, written straight into the
//! log batch ([`super::batch`]) rather than as a `tracing` event.
//!
//! A `tracing` event goes through the dispatcher, the filter, a field
//! visitor per field and the formatter. Measured in criterion runs
//! (`alternatives/*` in `benches/micro.rs`, the line of a cached password
//! request with one scope, each run measuring both), the same fields as
//! an `info!` event cost 1.05–1.80 µs through `tracing_subscriber`'s text
//! formatter and 1.88–3.37 µs through its `.json()` formatter; as a
//! `Record`, 0.33–0.61 µs. That is 0.7–1.4 µs more on every request in
//! text and 1.5–2.8 µs in JSON (`http/anonymous` is 15–35 µs in process,
//! a whole request about 32 µs of CPU at saturation): around and
//! above the 1 µs a hand-written part has to save (BENCHMARKS.md, "Hand-written parts and their crate alternatives").
//! And the `.json()` formatter writes a list field as one string, where
//! the audit line's `requested` and `granted` are JSON arrays, so it
//! cannot write the audit line at all in JSON.
//!
//! A [`Record`] is built with plain string pushes, in the same layout the
//! `tracing` formatters give every other line, so the log reads (and
//! parses) as one stream:
//!
//! ```text
//! 2026-11-23T17:43:40.437528Z  INFO regauth::audit: outcome="issued" ... requested=["repository:a/b:pull"]
//! {"timestamp":"2026-11-23T17:43:40.437528Z","level":"INFO","fields":{"outcome":"issued",...,"requested":["repository:a/b:pull"]},"target":"regauth::audit"}
//! ```
//!
//! In JSON, lists are JSON arrays. Whether records are written still
//! follows `RUST_LOG` (target `regauth::audit`, level `info`). Without an
//! installed sink (the library used on its own), records are handed to
//! `tracing` as one message.

use std::fmt::{self, Display, Write};
use std::sync::OnceLock;

use super::batch::BatchWriter;
use time::OffsetDateTime;

/// Where records go: the process's log writer, in its format.
struct Sink {
    writer: BatchWriter,
    json: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    /// The line and scratch buffers of the thread's last record, reused
    /// (a record is built and emitted without an await in between).
    static BUFFERS: std::cell::RefCell<(String, String)> = const {
        std::cell::RefCell::new((String::new(), String::new()))
    };
}

/// Installs the sink (once per process; later calls change nothing).
pub fn install(writer: BatchWriter, json: bool) {
    let _ = SINK.set(Sink { writer, json });
}

/// The target audit records carry (as `tracing` events would).
const TARGET: &str = "regauth::audit";

/// One line under construction.
pub struct Record {
    buf: String,
    json: bool,
    first: bool,
    /// Where the fields begin in `buf`.
    fields_at: usize,
    /// Scratch space for values that are built from pieces.
    scratch: String,
}

impl Record {
    /// An audit record at level INFO in the installed sink's format (text
    /// without a sink), or `None` when `RUST_LOG` turns
    /// `regauth::audit` off.
    pub fn audit() -> Option<Record> {
        if !tracing::enabled!(target: "regauth::audit", tracing::Level::INFO) {
            return None;
        }
        let json = SINK.get().is_some_and(|s| s.json);
        Some(Record::start(json, OffsetDateTime::now_utc()))
    }

    fn start(json: bool, now: OffsetDateTime) -> Record {
        let (mut buf, scratch) = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
        debug_assert!(buf.is_empty());
        // Writing into a String cannot fail.
        if json {
            buf.push_str("{\"timestamp\":\"");
            let _ = write_rfc3339(&mut buf, now, true);
            buf.push_str("\",\"level\":\"INFO\",\"fields\":{");
        } else {
            let _ = write_rfc3339(&mut buf, now, true);
            buf.push_str("  INFO ");
            buf.push_str(TARGET);
            buf.push_str(": ");
        }
        Record {
            fields_at: buf.len(),
            buf,
            json,
            first: true,
            scratch,
        }
    }

    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.first) {
            self.buf.push(if self.json { ',' } else { ' ' });
        }
        if self.json {
            self.buf.push('"');
            self.buf.push_str(name);
            self.buf.push_str("\":");
        } else {
            self.buf.push_str(name);
            self.buf.push('=');
        }
    }

    fn quoted(buf: &mut String, json: bool, s: &str) {
        if plain(s) {
            buf.push('"');
            buf.push_str(s);
            buf.push('"');
        } else if json {
            let quoted = serde_json::Value::from(s).to_string();
            buf.push_str(&super::json::escape_hidden(&quoted));
        } else {
            let _ = write_debug_str(buf, s);
        }
    }

    /// A string field: quoted and escaped (`name="v"`, `"name":"v"`).
    pub fn str(&mut self, name: &str, value: &str) -> &mut Record {
        self.name(name);
        Record::quoted(&mut self.buf, self.json, value);
        self
    }

    /// A field whose text needs no quoting in the text format (an address,
    /// a number); a JSON string.
    pub fn unquoted(&mut self, name: &str, value: impl Display) -> &mut Record {
        self.name(name);
        if self.json {
            self.scratch_fmt(|w| write!(w, "{value}"));
        } else {
            let _ = write!(self.buf, "{value}");
        }
        self
    }

    pub fn bool(&mut self, name: &str, value: bool) -> &mut Record {
        self.name(name);
        self.buf.push_str(if value { "true" } else { "false" });
        self
    }

    /// A list of strings, each written by `item`: `["a", "b"]` in text (as
    /// `Debug` of a `Vec<String>`), a JSON array of strings in JSON.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: &[T],
        item: impl Fn(&T, &mut String) -> fmt::Result,
    ) -> &mut Record {
        self.name(name);
        self.buf.push('[');
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push_str(if self.json { "," } else { ", " });
            }
            self.scratch_fmt(|w| item(t, w));
        }
        self.buf.push(']');
        self
    }

    /// Formats into the scratch buffer and appends it quoted.
    fn scratch_fmt(&mut self, f: impl FnOnce(&mut String) -> fmt::Result) {
        self.scratch.clear();
        let _ = f(&mut self.scratch);
        Record::quoted(&mut self.buf, self.json, &self.scratch);
    }

    /// The finished line, with its newline, and the scratch buffer.
    fn finish(mut self) -> (String, usize, String) {
        if self.json {
            self.buf.push_str("},\"target\":\"");
            self.buf.push_str(TARGET);
            self.buf.push_str("\"}");
        }
        self.buf.push('\n');
        (self.buf, self.fields_at, self.scratch)
    }

    /// Writes the line to the installed sink, or hands its fields to
    /// `tracing` as the message without one.
    pub fn emit(self) {
        let (mut line, fields_at, mut scratch) = self.finish();
        match SINK.get() {
            Some(sink) => sink.writer.write_line(line.as_bytes()),
            None => tracing::info!(target: "regauth::audit", "{}", line[fields_at..].trim_end()),
        }
        // The buffers serve the thread's next record.
        line.clear();
        scratch.clear();
        BUFFERS.with(|b| *b.borrow_mut() = (line, scratch));
    }
}

// Layout helpers: the text format's strings and timestamps, written from
// their pieces rather than through `core::fmt`.

/// Whether `s` prints the same inside `Debug`'s quotes (and in a JSON
/// string): printable ASCII other than `"` and `\`.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Writes `s` as `format!("{s:?}")` would, without going through the
/// per-character escaper when it is plain.
fn write_debug_str(w: &mut dyn Write, s: &str) -> fmt::Result {
    if plain(s) {
        w.write_char('"')?;
        w.write_str(s)?;
        w.write_char('"')
    } else {
        write!(w, "{s:?}")
    }
}

/// RFC 3339 in UTC: `2026-11-23T17:43:40Z`, or with `micros`
/// `2026-11-23T17:43:40.437528Z` (the timestamp of
/// `tracing_subscriber`'s formatters). Also writes the token body's
/// `issued_at`; public for the benchmarks.
pub fn write_rfc3339(w: &mut dyn Write, t: OffsetDateTime, micros: bool) -> fmt::Result {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Not this millennium: leave it to core::fmt, as the default does.
        return if year > 9999 {
            write!(w, "+{year}")
        } else {
            write!(w, "{year:05}")
        }
        .and_then(|()| write_rest(w, t, micros));
    }
    let mut b = *b"0000";
    put(&mut b, year as u32);
    w.write_str(ascii(&b))?;
    write_rest(w, t, micros)
}

fn write_rest(w: &mut dyn Write, t: OffsetDateTime, micros: bool) -> fmt::Result {
    let mut b = *b"-00-00T00:00:00.000000Z";
    put(&mut b[1..3], u32::from(u8::from(t.month())));
    put(&mut b[4..6], u32::from(t.day()));
    put(&mut b[7..9], u32::from(t.hour()));
    put(&mut b[10..12], u32::from(t.minute()));
    put(&mut b[13..15], u32::from(t.second()));
    if !micros {
        return w
            .write_str(ascii(&b[..15]))
            .and_then(|()| w.write_char('Z'));
    }
    put(&mut b[16..22], t.microsecond());
    w.write_str(ascii(&b))
}

/// Writes `n`'s last `out.len()` decimal digits into `out`, zero-padded.
fn put(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sample(json: bool) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(1_795_455_820).unwrap();
        let mut r = Record::start(json, t);
        let ip: std::net::IpAddr = [10, 0, 0, 1].into();
        r.str("outcome", "issued")
            .str("account", "al\"ice\n")
            .unquoted("ip", ip)
            .list("requested", &["repository:a/b:pull", "x\\y"], |s, w| {
                w.write_str(s)
            })
            .list("empty", &[] as &[&str], |s, w| w.write_str(s))
            .bool("offline", false);
        r.finish().0
    }

    #[test]
    fn buffers_are_reused_and_start_empty() {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let mut r = Record::start(false, t);
        r.str("a", "1");
        r.emit();
        let mut r = Record::start(false, t);
        r.str("b", "2");
        let (line, _, _) = r.finish();
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000000Z  INFO regauth::audit: b=\"2\"\n"
        );
    }

    #[test]
    fn text_matches_the_tracing_layout() {
        let requested = vec!["repository:a/b:pull".to_string(), "x\\y".into()];
        let want = format!(
            "2026-11-23T17:43:40.000000Z  INFO regauth::audit: outcome=\"issued\" account={:?} ip=10.0.0.1 requested={requested:?} empty=[] offline=false\n",
            "al\"ice\n"
        );
        assert_eq!(sample(false), want);
    }

    #[test]
    fn json_escapes_what_the_text_format_escapes() {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let account = "admin\u{202e}nimda\u{2028}x";
        for json in [true, false] {
            let mut r = Record::start(json, t);
            r.str("account", account)
                .list("requested", &["a\u{2066}b"], |s, w| w.write_str(s));
            let (line, _, _) = r.finish();
            for raw in ['\u{202e}', '\u{2028}', '\u{2066}'] {
                assert!(!line.contains(raw), "{raw:?} raw in {line}");
            }
            if json {
                assert!(line.contains(r"admin\u202enimda\u2028x"), "{line}");
                assert!(line.contains(r"a\u2066b"), "{line}");
                let v: Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["fields"]["account"], account);
            } else {
                assert!(line.contains(r"admin\u{202e}nimda\u{2028}x"), "{line}");
            }
        }
    }

    #[test]
    fn json_is_one_object_with_arrays() {
        let line = sample(true);
        assert!(
            line.ends_with("}\n") && !line.trim_end().contains('\n'),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "timestamp": "2026-11-23T17:43:40.000000Z",
                "level": "INFO",
                "fields": {
                    "outcome": "issued",
                    "account": "al\"ice\n",
                    "ip": "10.0.0.1",
                    "requested": ["repository:a/b:pull", "x\\y"],
                    "empty": [],
                    "offline": false
                },
                "target": "regauth::audit"
            })
        );
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
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::nanoseconds(nanos);
            let mut s = String::new();
            write_rfc3339(&mut s, t, true).unwrap();
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
}
