//! Logging: `tracing` events, filtered by `RUST_LOG` (default `info`),
//! written as text lines (or JSON with `--log-format json`) to stderr.
//!
//! Lines go through `tracing-appender`'s non-blocking writer: a request
//! hands its formatted line to a channel and one thread writes to stderr
//! through a buffer that it flushes whenever the channel is empty, so a
//! burst of lines costs one system call, not one per line. The writer is
//! lossless: when the channel holds [`BUFFERED_LINES`] lines (stderr is
//! stuck, for example a full pipe), the request that logs waits for room;
//! no line is dropped. Dropping the [`WorkerGuard`] writes what is pending
//! (waiting at most a second for the writer thread).
//!
//! Lines are formatted by `tracing_subscriber`'s own formatters: the
//! default (`Full`) one for text, coloured only when stderr is a terminal,
//! and `.json()` for JSON. Every token request logs an audit line, so the
//! per-line cost is part of every request's (docs/bench-logging.md); one
//! part is written by hand because the crate alternative measured too
//! costly and cannot give the output the log promises: [`record`] builds
//! audit lines with plain string pushes, in the same layout as the other
//! lines, with lists as JSON arrays (its module doc gives the figures).
//!
//! JSON lines escape the invisible characters the text format escapes
//! ([`json`]).

pub(crate) mod json;
pub mod record;

use std::io::{self, IsTerminal};

pub use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};

/// Lines the channel to the writer thread holds before a request that
/// logs waits for room.
pub(crate) const BUFFERED_LINES: usize =
    tracing_appender::non_blocking::DEFAULT_BUFFERED_LINES_LIMIT;

/// What a log line looks like (`--log-format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// The lossless non-blocking writer into `sink` (see the module docs),
/// buffered so that the writer thread makes one system call per burst.
pub fn non_blocking<W: io::Write + Send + 'static>(sink: W) -> (NonBlocking, WorkerGuard) {
    non_blocking_with(sink, BUFFERED_LINES)
}

fn non_blocking_with<W: io::Write + Send + 'static>(
    sink: W,
    lines: usize,
) -> (NonBlocking, WorkerGuard) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(lines)
        .thread_name("regauth-log")
        .finish(io::BufWriter::new(sink))
}

/// Installs the global subscriber (see the module docs). Keep the guard
/// until the process ends: dropping it writes the pending lines.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = non_blocking(io::stderr());
    record::install(writer.clone(), matches!(format, LogFormat::Json));
    let terminal = io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal);
    match format {
        LogFormat::Json => builder.with_writer(json::Escaping(writer)).json().init(),
        LogFormat::Text => builder.with_writer(writer).init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A sink that records what it got; it can be made slow.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        slow: Duration,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.slow);
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_kept_in_order_and_written_by_the_guard() {
        // (channel size, sink delay per write): a roomy channel, and one
        // of 4 lines in front of a slow sink, where writers wait.
        let cases = [
            (BUFFERED_LINES, Duration::ZERO),
            (4, Duration::from_millis(2)),
        ];
        for (lines, slow) in cases {
            let rec = Recorder {
                slow,
                ..Recorder::default()
            };
            let (w, guard) = non_blocking_with(rec.clone(), lines);
            let writers: Vec<_> = (0..4)
                .map(|t| {
                    let mut w = w.clone();
                    std::thread::spawn(move || {
                        for i in 0..50 {
                            w.write_all(format!("t{t} {i:02}\n").as_bytes()).unwrap();
                        }
                    })
                })
                .collect();
            for t in writers {
                t.join().unwrap();
            }
            drop(guard);
            let got = String::from_utf8(rec.bytes.lock().unwrap().clone()).unwrap();
            assert_eq!(got.lines().count(), 200, "channel of {lines}: {got}");
            for t in 0..4 {
                let mine: Vec<&str> = got
                    .lines()
                    .filter(|l| l.starts_with(&format!("t{t} ")))
                    .collect();
                let want: Vec<String> = (0..50).map(|i| format!("t{t} {i:02}")).collect();
                assert_eq!(mine, want, "channel of {lines}: thread {t}'s lines");
            }
        }
    }
}
