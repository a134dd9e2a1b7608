//! Logging: `tracing` events, filtered by `RUST_LOG` (default `info`),
//! written as text lines (or JSON with `--log-format json`) to stderr.
//!
//! Every token request logs an audit line, so the per-line cost is part of
//! every request's (BENCHMARKS.md). Three parts keep it small:
//! - [`batch`]: lines are copied into a batch that one thread writes out
//!   every few milliseconds, instead of a system call or a thread wake-up
//!   per line;
//! - [`record`]: audit lines are built with plain string pushes and go
//!   straight into the batch, in the same layout as the other lines;
//! - [`text`]: when stderr is not a terminal, a plain-text formatter that
//!   prints exactly what `tracing_subscriber`'s default formatter prints
//!   without colours, at a fraction of its cost. On a terminal the default
//!   (coloured) formatter is used.
//!
//! JSON lines escape the invisible characters the text format escapes
//! ([`json`]).

pub mod batch;
pub mod json;
pub mod record;
pub mod text;

use std::io::{self, IsTerminal};

pub use batch::{batch_writer, BatchWriter, FlushGuard, FLUSH_DELAY, MAX_PENDING};
pub use text::{write_debug_str, PlainFields, PlainFormat};

/// What a log line looks like (`--log-format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (see the module docs). Keep the guard
/// until the process ends: dropping it writes the pending lines.
pub fn init(format: LogFormat) -> io::Result<FlushGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = batch_writer(io::stderr(), FLUSH_DELAY, MAX_PENDING)?;
    record::install(writer.clone(), matches!(format, LogFormat::Json));
    let terminal = io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal);
    match format {
        LogFormat::Json => builder.with_writer(json::Escaping(writer)).json().init(),
        LogFormat::Text if terminal => builder.with_writer(writer).init(),
        LogFormat::Text => builder
            .with_writer(writer)
            .event_format(PlainFormat::default())
            .fmt_fields(PlainFields)
            .init(),
    }
    Ok(guard)
}
