//! Logging: `tracing` events, filtered by `RUST_LOG` (default `info`),
//! written as text lines (or JSON with `--log-format json`) to stderr.
//!
//! Lines go into an in-memory batch that one thread writes to stderr a
//! few milliseconds later, many at a time ([`batch`]): a request copies
//! its line under a mutex and makes no system call. No line is dropped:
//! when the batch holds [`MAX_PENDING`] bytes (stderr is stuck, for
//! example a full pipe), the request that logs waits for the writer
//! thread. Dropping the [`FlushGuard`] writes what is pending.
//!
//! Lines are formatted by `tracing_subscriber`'s own formatters: the
//! default (`Full`) one for text, coloured only when stderr is a terminal,
//! and `.json()` for JSON. Every token request logs an audit line, so the
//! per-line cost is part of every request's (BENCHMARKS.md, "Hand-written parts and their crate alternatives"). Two
//! parts are written by hand, each because its crate alternative measured
//! too costly on the token path (their module docs give the figures):
//! - [`batch`], the writer: `tracing-appender`'s non-blocking writer wakes
//!   its thread for nearly every line;
//! - [`record`], the audit line built with plain string pushes, in the
//!   same layout as the other lines, with lists as JSON arrays (which
//!   `.json()` cannot write).
//!
//! JSON lines escape the invisible characters the text format escapes
//! ([`json`]).

pub(crate) mod batch;
pub(crate) mod json;
pub mod record;

use std::io::{self, IsTerminal};

pub(crate) use batch::MAX_PENDING;
pub use batch::{batch_writer, BatchWriter, FlushGuard, FLUSH_DELAY};

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
        LogFormat::Text => builder.with_writer(writer).init(),
    }
    Ok(guard)
}
