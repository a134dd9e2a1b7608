//! The log sink: lines are appended to an in-memory batch and written to
//! the sink (stderr) by one background thread, at most [`FLUSH_DELAY`]
//! later on a quiet server and [`BUSY_FACTOR`] times that on a busy one,
//! many at a time.
//!
//! Every token request writes an audit line. `tracing-appender`'s
//! non-blocking writer sends each line over a channel to its thread, which
//! is asleep between requests, so nearly every line pays a thread wake-up:
//! measured side by side (`alternatives/write_line*` in `benches/micro.rs`;
//! BENCHMARKS.md, "Hand-written parts and their crate alternatives"), a
//! line written 20 µs after the last one, as requests come, costs 3.4–4.9 µs
//! with `tracing-appender` (lossless) against 44–69 ns here; back to back,
//! where its thread never sleeps, 230–386 ns against 14–23 ns (three runs). The wake-up is the
//! cost, far above the 1 µs a hand-written part has to save.
//!
//! Here a request only copies its formatted line into the batch under a
//! mutex; the writer thread is woken once per batch (when the first line
//! goes into an empty batch), waits [`FLUSH_DELAY`] for more lines and
//! writes them all in one call. A batch that holds [`BUSY_BYTES`] by then
//! comes from a busy server: the writer keeps gathering until
//! [`BUSY_FACTOR`] times the delay has passed. Either wait ends early when
//! the batch holds half of [`MAX_PENDING`].
//!
//! The writer thread shares the server's CPUs: each wake-up preempts a
//! worker thread. A server at saturation on one CPU (about 25,000
//! requests/s) switched to it some 400 times a second when every batch
//! waited 5 ms; with its busy batches gathering for 50 ms, about 60 times,
//! and it served 1.03–1.04 times the requests (`benches/versus.sh`, 9
//! rounds of 2 s; BENCHMARKS.md). A quiet server's
//! line, the one an operator waits for, is written within 5 ms; the
//! half-full wake-up keeps a busy server's batch from reaching its limit,
//! where requests would wait, before its time.
//!
//! No line is dropped: when the batch holds [`MAX_PENDING`] bytes (the sink
//! is stuck, for example a full pipe), writers wait for the writer thread
//! to take it, so a request that logs can then wait on the write. Dropping the
//! [`FlushGuard`] writes what is pending and stops the thread; lines written
//! after that go to the sink directly.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread waits for more lines after the first line of
/// a batch: the most a line waits before it is written on a quiet server.
pub const FLUSH_DELAY: Duration = Duration::from_millis(5);

/// A batch holding this many bytes after [`FLUSH_DELAY`] (about 50 audit
/// lines, 10,000 a second) gathers for [`BUSY_FACTOR`] times the delay.
pub(crate) const BUSY_BYTES: usize = 16 * 1024;

/// How much longer than [`FLUSH_DELAY`] a busy server's batch gathers.
pub(crate) const BUSY_FACTOR: u32 = 10;

/// Bytes a batch may hold before writers wait for the writer thread.
pub(crate) const MAX_PENDING: usize = 1 << 20;

type Sink = Box<dyn Write + Send>;

struct Shared {
    state: Mutex<State>,
    /// Signalled when a line goes into an empty batch, and on stop.
    wake: Condvar,
    /// Signalled when the writer thread has taken the batch.
    space: Condvar,
    /// The sink; the writer thread holds it while writing. After stop,
    /// writers use it directly.
    sink: Mutex<Sink>,
    max_pending: usize,
}

struct State {
    batch: Vec<u8>,
    stopped: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bytes behind: go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `MakeWriter` handed to `tracing_subscriber` (cheap to clone).
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it wrote every pending line.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread for `sink`; see the module docs.
pub fn batch_writer<W: Write + Send + 'static>(
    sink: W,
    delay: Duration,
    max_pending: usize,
) -> io::Result<(BatchWriter, FlushGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            batch: Vec::new(),
            stopped: false,
        }),
        wake: Condvar::new(),
        space: Condvar::new(),
        sink: Mutex::new(Box::new(sink)),
        max_pending,
    });
    let worker = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("regauth-log".into())
        .spawn(move || write_batches(&worker, delay))?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: waits for a first line, lets more gather for
/// `delay`, writes them at once; on stop, writes what is left and returns.
fn write_batches(shared: &Shared, delay: Duration) {
    let mut out = Vec::new();
    loop {
        let stopping = {
            let mut st = lock(&shared.state);
            while st.batch.is_empty() && !st.stopped {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.batch.is_empty() {
                return; // stopped, nothing left
            }
            st.stopped
        };
        if !stopping {
            gather(shared, delay);
        }
        {
            let mut st = lock(&shared.state);
            std::mem::swap(&mut st.batch, &mut out);
            shared.space.notify_all();
        }
        let mut sink = lock(&shared.sink);
        // Nowhere to report a failing stderr: the lines are lost.
        let _ = sink.write_all(&out).and_then(|()| sink.flush());
        drop(sink);
        out.clear();
        if out.capacity() > shared.max_pending {
            out.shrink_to(shared.max_pending);
        }
    }
}

/// Lets lines gather for `delay`, and for [`BUSY_FACTOR`] times `delay`
/// in all when the batch then holds [`BUSY_BYTES`]; less when the batch
/// reaches half of `max_pending` (so that a busy server's writers do not
/// wait for a batch that is full before its time), or on stop.
fn gather(shared: &Shared, delay: Duration) {
    let start = Instant::now();
    let mut deadline = start + delay;
    let mut busy = false;
    let mut st = lock(&shared.state);
    while !st.stopped && st.batch.len() < shared.max_pending / 2 {
        let now = Instant::now();
        if now >= deadline {
            if busy || st.batch.len() < BUSY_BYTES {
                return;
            }
            busy = true;
            deadline = start + delay * BUSY_FACTOR;
            continue;
        }
        st = shared
            .wake
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.state).stopped = true;
        self.shared.wake.notify_all();
        self.shared.space.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl BatchWriter {
    fn append(&self, line: &[u8]) -> io::Result<()> {
        let shared = &*self.shared;
        let mut st = lock(&shared.state);
        while !st.stopped
            && !st.batch.is_empty()
            && st.batch.len() + line.len() > shared.max_pending
        {
            st = shared.space.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.stopped {
            drop(st);
            return lock(&shared.sink).write_all(line);
        }
        let before = st.batch.len();
        st.batch.extend_from_slice(line);
        let half = shared.max_pending / 2;
        // Wake the writer thread for a batch's first line, and when the
        // batch reaches half of its limit.
        let wake = before == 0 || (before < half && st.batch.len() >= half);
        drop(st);
        if wake {
            shared.wake.notify_one();
        }
        Ok(())
    }
}

impl BatchWriter {
    /// Appends one whole line (no error to report: see [`write_batches`]).
    pub(crate) fn write_line(&self, line: &[u8]) {
        let _ = self.append(line);
    }
}

impl Write for &BatchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.append(buf)
    }

    /// Lines are written by the writer thread within [`FLUSH_DELAY`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink that records what it got and how many writes it took; it can
    /// be made slow.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicUsize>,
        slow: Duration,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.slow);
            self.writes.fetch_add(1, Ordering::SeqCst);
            lock(&self.bytes).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i:04}\n")).collect()
    }

    #[test]
    fn a_burst_is_written_whole_in_order_in_few_writes() {
        let rec = Recorder::default();
        let (w, guard) = batch_writer(rec.clone(), Duration::from_millis(50), 1 << 20).unwrap();
        for l in lines(1000) {
            (&w).write_all(l.as_bytes()).unwrap();
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(lock(&rec.bytes).clone()).unwrap(),
            lines(1000).concat()
        );
        let writes = rec.writes.load(Ordering::SeqCst);
        assert!(writes <= 3, "1000 lines in one burst took {writes} writes");
    }

    #[test]
    fn a_line_is_written_within_the_delay_without_a_flush() {
        let rec = Recorder::default();
        let (w, _guard) = batch_writer(rec.clone(), Duration::from_millis(5), 1 << 20).unwrap();
        (&w).write_all(b"hello\n").unwrap();
        let start = Instant::now();
        while lock(&rec.bytes).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(2), "line not written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*lock(&rec.bytes), b"hello\n");
    }

    #[test]
    fn a_batch_half_full_is_written_before_the_delay() {
        let rec = Recorder::default();
        // A delay no test waits for; a 64-byte batch, so 40 bytes are over half.
        let (w, _guard) = batch_writer(rec.clone(), Duration::from_secs(600), 64).unwrap();
        (&w).write_all(b"twenty bytes, first\n").unwrap();
        (&w).write_all(b"twenty more, second\n").unwrap();
        let start = Instant::now();
        while lock(&rec.bytes).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "a half-full batch waited for the delay"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            &*lock(&rec.bytes),
            b"twenty bytes, first\ntwenty more, second\n"
        );
    }

    #[test]
    fn a_busy_batch_gathers_longer_than_the_delay() {
        let rec = Recorder::default();
        let delay = Duration::from_millis(50);
        let (w, _guard) = batch_writer(rec.clone(), delay, 1 << 20).unwrap();
        let busy = vec![b'x'; BUSY_BYTES];
        (&w).write_all(&busy).unwrap();
        // Past the delay, well before ten times it: the same batch.
        std::thread::sleep(delay * 2);
        (&w).write_all(b"\nlate\n").unwrap();
        let start = Instant::now();
        while lock(&rec.bytes).len() < BUSY_BYTES + 6 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "lines not written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            rec.writes.load(Ordering::SeqCst),
            1,
            "a busy batch was written at the delay, before its last line"
        );
    }

    #[test]
    fn a_stuck_sink_makes_writers_wait_and_loses_nothing() {
        let rec = Recorder {
            slow: Duration::from_millis(20),
            ..Recorder::default()
        };
        // A 64-byte batch: most of the 200 lines wait for the slow sink.
        let (w, guard) = batch_writer(rec.clone(), Duration::ZERO, 64).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        (&w).write_all(format!("t{t} {i:02}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in writers {
            t.join().unwrap();
        }
        drop(guard);
        let got = String::from_utf8(lock(&rec.bytes).clone()).unwrap();
        assert_eq!(got.lines().count(), 200);
        for t in 0..4 {
            let mine: Vec<&str> = got
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let want: Vec<String> = (0..50).map(|i| format!("t{t} {i:02}")).collect();
            assert_eq!(mine, want, "thread {t}'s lines out of order or lost");
        }
    }

    #[test]
    fn lines_after_the_guard_go_to_the_sink_directly() {
        let rec = Recorder::default();
        let (w, guard) = batch_writer(rec.clone(), Duration::from_millis(5), 1 << 20).unwrap();
        (&w).write_all(b"before\n").unwrap();
        drop(guard);
        (&w).write_all(b"after\n").unwrap();
        assert_eq!(&*lock(&rec.bytes), b"before\nafter\n");
    }
}
