//! A plain-text event formatter for `tracing_subscriber::fmt` that prints
//! the same line as its default (`Full`) formatter with colours off:
//!
//! ```text
//! 2026-11-23T17:43:40.437528Z  INFO regauth::audit: outcome="issued" method="GET" ...
//! ```
//!
//! The default formatter goes through `core::fmt` for every piece (the
//! timestamp alone is seven `{:02}` conversions) and through a character-
//! by-character escaper for each string field. This one writes the
//! timestamp from its digits, and strings that need no escaping (printable
//! ASCII without `"` or `\`, the usual case) in one piece; anything else
//! falls back to the standard `Debug` escaping, so the output is the same
//! byte for byte (tested against the default formatter below).

use std::fmt::{self, Write};

use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct PlainFormat {
    timestamps: bool,
}

impl Default for PlainFormat {
    fn default() -> Self {
        PlainFormat { timestamps: true }
    }
}

impl PlainFormat {
    /// Without the leading timestamp (tests compare lines).
    pub fn without_time() -> Self {
        PlainFormat { timestamps: false }
    }
}

/// The field formatter: `message` first as text, then `name=value`
/// separated by spaces, strings quoted and escaped as `Debug` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

/// Whether `s` prints the same inside `Debug`'s quotes (and in a JSON
/// string): printable ASCII other than `"` and `\`.
pub(super) fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Writes `s` as `format!("{s:?}")` would, without going through the
/// per-character escaper when it is plain.
pub fn write_debug_str(w: &mut dyn Write, s: &str) -> fmt::Result {
    if plain(s) {
        w.write_char('"')?;
        w.write_str(s)?;
        w.write_char('"')
    } else {
        write!(w, "{s:?}")
    }
}

fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// `2026-11-23T17:43:40.437528Z` (microseconds, UTC), as the default
/// formatter's timestamp.
fn write_timestamp(w: &mut dyn Write, t: OffsetDateTime) -> fmt::Result {
    write_rfc3339(w, t, true)
}

/// RFC 3339 in UTC: `2026-11-23T17:43:40Z`, or with `micros`
/// `2026-11-23T17:43:40.437528Z`.
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

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.timestamps {
            write_timestamp(&mut writer, OffsetDateTime::now_utc())?;
            writer.write_char(' ')?;
        }
        writer.write_str(level_str(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// The space before every field but the first, and the field's name
    /// and `=` (`None` for a field that is not printed).
    fn start(&mut self, field: &Field) -> Option<()> {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return None;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(' ')?;
            }
            if name != "message" {
                self.writer
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.writer.write_char('=')?;
            }
            Ok(())
        })();
        self.result.ok()
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.start(field).is_none() {
            return;
        }
        self.result = if field.name() == "message" {
            write!(Sanitizing(&mut self.writer), "{value}")
        } else {
            write_debug_str(&mut self.writer, value)
        };
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field).is_some() {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field).is_some() {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field).is_some() {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.start(field).is_none() {
            return;
        }
        // As the default formatter: the error, then its sources as a list.
        self.result = (|| {
            write!(Sanitizing(&mut self.writer), "{value}")?;
            if let Some(source) = value.source() {
                let name = field.name();
                write!(self.writer, " {name}.sources=[")?;
                let mut next = Some(source);
                while let Some(e) = next {
                    write!(Sanitizing(&mut self.writer), "{e}")?;
                    next = e.source();
                    if next.is_some() {
                        self.writer.write_str(", ")?;
                    }
                }
                self.writer.write_char(']')?;
            }
            Ok(())
        })();
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.start(field).is_none() {
            return;
        }
        self.result = if field.name() == "message" {
            write!(Sanitizing(&mut self.writer), "{value:?}")
        } else {
            write!(self.writer, "{value:?}")
        };
    }
}

/// Escapes the terminal control characters the default formatter escapes
/// in messages and errors (ESC, BEL, BS, FF, DEL, C1 controls), so a
/// logged value cannot drive the terminal that shows the log.
struct Sanitizing<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Sanitizing<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let risky = |b: u8| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2);
        if !s.bytes().any(risky) {
            return self.0.write_str(s);
        }
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c if ('\u{80}'..='\u{9f}').contains(&c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
