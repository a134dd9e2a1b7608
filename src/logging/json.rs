//! JSON lines that a terminal shows as they are: every character the text
//! format escapes (through `Debug`: bidirectional controls such as U+202E,
//! U+200E/U+200F, U+061C, U+2066–U+2069, the line and paragraph separators
//! U+2028/U+2029, zero-width and other invisible characters) is written as
//! a JSON `\uXXXX` escape rather than raw. JSON allows them raw, so
//! `serde_json` and `tracing_subscriber`'s JSON formatter keep them, and a
//! client-chosen account name could then reorder or split what an operator
//! reads in a terminal.
//!
//! Outside strings a JSON line is ASCII, so the rewrite can run over the
//! whole line. ASCII lines, the usual case, are passed through as they are.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Whether the text format escapes `c` (control characters aside, which
/// JSON escapes itself): non-ASCII characters `Debug` does not print as
/// they are.
fn hidden(c: char) -> bool {
    !c.is_ascii() && c.escape_debug().nth(1).is_some()
}

/// `line` with every [`hidden`] character written as `\uXXXX` (a
/// surrogate pair above U+FFFF).
pub(crate) fn escape_hidden(line: &str) -> Cow<'_, str> {
    if line.is_ascii() || !line.chars().any(hidden) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if hidden(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer for `tracing_subscriber`'s JSON formatter that applies
/// [`escape_hidden`] to each line (the formatter writes a line in one
/// `write_all`).
#[derive(Clone)]
pub(crate) struct Escaping<M>(pub(crate) M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(escape_hidden(text).as_bytes()),
            // Not a whole line of text: nothing to recognise.
            Err(_) => self.0.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_table() {
        let cases: &[(&str, &str)] = &[
            ("plain ascii \\\" {}", "plain ascii \\\" {}"),
            ("caf\u{e9} \u{4e2d}", "caf\u{e9} \u{4e2d}"),
            ("a\u{202e}b", "a\\u202eb"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u202a\\u202b\\u202c\\u202d",
            ),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u2066\\u2067\\u2068\\u2069",
            ),
            ("\u{200e}\u{200f}\u{61c}", "\\u200e\\u200f\\u061c"),
            ("line\u{2028}para\u{2029}", "line\\u2028para\\u2029"),
            ("zero\u{200b}width", "zero\\u200bwidth"),
            ("tag\u{e0041}", "tag\\udb40\\udc41"),
        ];
        for (line, want) in cases {
            assert_eq!(escape_hidden(line), *want, "{line:?}");
            // What the JSON escapes, the text format escapes too.
            let text = format!("{line:?}");
            assert_eq!(
                text.contains("\\u{"),
                line != want,
                "{line:?} in text: {text}"
            );
            // Still the same string to a JSON reader.
            let json = format!("\"{want}\"");
            if !line.contains(['"', '\\']) {
                assert_eq!(serde_json::from_str::<String>(&json).unwrap(), *line);
            }
        }
        assert!(matches!(escape_hidden("caf\u{e9}"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_writer_escapes_each_line() {
        let mut out = Escaping(Vec::new());
        out.write_all("{\"account\":\"a\u{202e}b\"}\n".as_bytes())
            .unwrap();
        out.write_all(b"{\"x\":1}\n").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "{\"account\":\"a\\u202eb\"}\n{\"x\":1}\n"
        );
    }
}
