//! Serving: one accept loop for every listener (TCP or Unix socket) and both
//! transports (plain HTTP, TLS). It takes an already-bound listener and a
//! shutdown future, so tests bind `127.0.0.1:0` and the binary decides when
//! to stop.
//!
//! Connections are where an unauthenticated client can hold resources, so
//! the limits that protect the process live here; request-level limits
//! (sizes, in-flight slots, timeouts) are in [`crate::http::limits`].
//!
//! - **First request deadline.** A connection must complete its first
//!   request head (TLS handshake included) within [`HEADER_READ_TIMEOUT`] of
//!   being accepted, including one that never sends a byte. After that,
//!   hyper's HTTP/1 header timeout restarts for every request head, idle
//!   keep-alive included, so an HTTP/1 connection is never silent for longer.
//! - **No protocol sniffing by default.** Plain HTTP serves HTTP/1.1 only;
//!   cleartext HTTP/2 with prior knowledge (h2c) is served only when
//!   [`ServeOptions::h2c`] is set. Over TLS, ALPN picks the protocol, so
//!   nothing waits for the client to reveal its version.
//! - **Bounded HTTP/2.** At most [`MAX_STREAMS_PER_CONNECTION`] concurrent
//!   streams per connection (hyper's default is 200), and hyper's limit on
//!   streams reset before being accepted.
//! - **Bounded connections.** At most [`ServeOptions::max_connections`]
//!   connections are open, and never more than the process's open-file limit
//!   minus [`FD_RESERVE`] (kept for log files, LDAP sockets and the
//!   listener's own accept). At the cap, the longest-open connection with no
//!   request in flight (one still silent, or an idle keep-alive one) is
//!   closed to make room: a flood of silent connections only ever displaces
//!   its own kind, while a client that sends its request at once always
//!   gets in (a connection told to make room first reads what has arrived,
//!   so a request waiting in its socket makes it busy, not idle), and idle
//!   clients reconnect as they do after any keep-alive close. When every
//!   connection is busy, the new one is closed. Either is logged at most
//!   once per [`BURST_LOG_INTERVAL`], with the count since the last line.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::Notify;
use tokio_util::either::Either;
use tower::Service;

use crate::config::tls::TlsConfig;
use crate::http::App;

/// How long a connection may take to complete a request head: from accept
/// to the end of the first one (TLS handshake included), and from the end
/// of a response to the end of the next head on a kept-alive HTTP/1
/// connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run after shutdown begins.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Concurrent HTTP/2 streams a connection may open. A client needs one or
/// two at a time for the token endpoint.
pub(crate) const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// File descriptors kept free below the open-file limit.
pub(crate) const FD_RESERVE: usize = 64;

/// Open connections when neither the options nor the file limit say less.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 8192;

/// At most one log line per this interval about refused or displaced
/// connections.
pub(crate) const BURST_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The address handlers see for a connection on a Unix socket. The client's
/// address then comes only from `server.real_ip_header`.
pub(crate) const UNIX_PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// A bound listener.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    /// A Unix socket and its path, removed when serving ends.
    Unix(tokio::net::UnixListener, PathBuf),
}

impl From<tokio::net::TcpListener> for Listener {
    fn from(l: tokio::net::TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

type Stream = Either<tokio::net::TcpStream, tokio::net::UnixStream>;

impl Listener {
    async fn accept(&self) -> std::io::Result<(Stream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, p)| (Either::Left(s), p)),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| (Either::Right(s), UNIX_PEER)),
        }
    }

    /// Binds a Unix socket at `path`, replacing a stale socket left by a
    /// process that did not stop cleanly (but not a live one, nor any other
    /// kind of file), with mode 0660: the owner and its group (the proxy's)
    /// may connect.
    pub(crate) fn bind_unix(path: &std::path::Path) -> std::io::Result<Listener> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = tokio::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        Ok(Listener::Unix(listener, path.to_owned()))
    }

    /// Where it listens, for the log.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("tcp ({e})"), |a| a.to_string()),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The TLS configuration connections are accepted with; replaced whole on
/// reload, taken by each new connection.
#[derive(Clone)]
pub struct TlsHandle(Arc<ArcSwap<rustls::ServerConfig>>);

impl TlsHandle {
    pub fn new(config: &TlsConfig) -> TlsHandle {
        TlsHandle(Arc::new(ArcSwap::new(Arc::clone(&config.0))))
    }

    /// New connections use `config`; open ones keep theirs.
    pub(crate) fn reload(&self, config: &TlsConfig) {
        self.0.store(Arc::clone(&config.0));
    }
}

/// How [`serve`] serves.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Serve TLS with this configuration; plain HTTP when `None`.
    pub tls: Option<TlsHandle>,
    /// Accept cleartext HTTP/2 with prior knowledge on a plain listener.
    pub h2c: bool,
    /// Most connections open at once (further bounded by the open-file
    /// limit); [`DEFAULT_MAX_CONNECTIONS`] when `None`.
    pub max_connections: Option<usize>,
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests
/// are then allowed to finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve<F>(
    listener: impl Into<Listener>,
    app: App,
    options: ServeOptions,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = listener.into();
    let builders = Arc::new(Builders::new());
    let cap = connection_cap(options.max_connections);
    let conns = Arc::new(Connections::new(cap));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: make room if a
                    // idle connection can give it, back off, go on.
                    conns.displace_one();
                    conns.log_burst(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(conn) = conns.admit() else {
            drop(stream);
            continue;
        };
        let tls = options.tls.as_ref().map(|t| t.0.load_full());
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            Arc::clone(&builders),
            tls,
            options.h2c,
            graceful.watcher(),
            conn,
        ));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over: closing remaining connections");
        }
    }
    Ok(())
}

/// Serves one accepted connection: the TLS handshake if any, then HTTP,
/// closing it when its first request is not complete by
/// [`HEADER_READ_TIMEOUT`], or when it is displaced while it has no request
/// in flight. Errors are the client's (reset, timeout): nothing to do.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: Stream,
    peer: SocketAddr,
    app: App,
    builders: Arc<Builders>,
    tls: Option<Arc<rustls::ServerConfig>>,
    h2c: bool,
    watcher: hyper_util::server::graceful::Watcher,
    conn: Admitted,
) {
    let flag = Arc::clone(&conn.flag);
    let served = Arc::clone(&flag);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        served.started.store(true, Ordering::Relaxed);
        served.active.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut().insert(ConnectInfo(peer));
        InFlight {
            answer: app.clone().call(req.map(axum::body::Body::new)),
            flag: Arc::clone(&served),
        }
    });
    let deadline = tokio::time::sleep(HEADER_READ_TIMEOUT);
    tokio::pin!(deadline);
    // The protocol is chosen without reading from the client: by ALPN over
    // TLS, by configuration in plain text.
    let (stream, builder) = match tls {
        None => (
            Either::Left(stream),
            if h2c { &builders.auto } else { &builders.h1 },
        ),
        Some(tls) => {
            let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
            let stream = tokio::select! {
                biased;
                s = accept => match s { Ok(s) => s, Err(_) => return },
                () = &mut deadline => return,
                () = flag.displace.notified() => return,
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            (
                Either::Right(stream),
                if h2 { &builders.h2 } else { &builders.h1 },
            )
        }
    };
    let io = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    // hyper first: on a wake-up it reads what has arrived, so a request
    // already in the socket marks the connection busy before `limit`
    // looks at it; in the other order a displacement notice could close
    // a connection whose request was waiting to be read.
    tokio::select! {
        biased;
        _ = watcher.watch(io) => {}
        () = limit(&flag, deadline) => {}
    }
    drop(conn);
}

/// A request's answer, counted in its connection's [`Flag::active`] until
/// it is dropped (answered or cancelled).
struct InFlight<F> {
    answer: F,
    flag: Arc<Flag>,
}

impl<F: Future + Unpin> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        std::pin::Pin::new(&mut self.answer).poll(cx)
    }
}

impl<F> Drop for InFlight<F> {
    fn drop(&mut self) {
        self.flag.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves when a connection must be closed: its first request is not
/// complete by `deadline`, or it is displaced while no request is in
/// flight.
async fn limit(flag: &Flag, mut deadline: std::pin::Pin<&mut tokio::time::Sleep>) {
    let mut first_done = false;
    loop {
        tokio::select! {
            () = &mut deadline, if !first_done => {
                if !flag.started.load(Ordering::Relaxed) {
                    return;
                }
                first_done = true;
            }
            () = flag.displace.notified() => {
                if flag.idle() {
                    return;
                }
            }
        }
    }
}

/// hyper's connection builders, one per protocol choice.
struct Builders {
    h1: Builder<TokioExecutor>,
    h2: Builder<TokioExecutor>,
    auto: Builder<TokioExecutor>,
}

impl Builders {
    fn new() -> Builders {
        Builders {
            h1: builder().http1_only(),
            h2: builder().http2_only(),
            auto: builder(),
        }
    }
}

fn builder() -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// The connection cap: the configured figure, or the default, bounded by
/// the open-file limit less [`FD_RESERVE`].
fn connection_cap(configured: Option<usize>) -> usize {
    let wanted = configured.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => {
            let by_files = usize::try_from(soft)
                .unwrap_or(usize::MAX)
                .saturating_sub(FD_RESERVE)
                .max(1);
            wanted.min(by_files)
        }
        Err(_) => wanted,
    }
}

/// What a connection task and the accept loop share about it.
#[derive(Default)]
struct Flag {
    /// A request head has been completed on it.
    started: AtomicBool,
    /// Requests on it being answered.
    active: AtomicUsize,
    /// Told to close (acted on only while no request is in flight).
    displace: Notify,
}

impl Flag {
    fn idle(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0
    }
}

/// The open connections: their count, and each of them in the order they
/// were accepted (the ones seen busy when making room go to the back).
struct Connections {
    cap: usize,
    open: AtomicUsize,
    queue: Mutex<VecDeque<Weak<Flag>>>,
    /// Connections refused or displaced since the last log line.
    unlogged: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

/// A connection counted as open until dropped.
struct Admitted {
    flag: Arc<Flag>,
    conns: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            cap,
            open: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
            unlogged: AtomicU64::new(0),
            last_log: Mutex::new(None),
        }
    }

    /// Counts a new connection in, displacing the oldest idle one when at
    /// the cap; `None` when at the cap with nothing to displace.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        if self.open.load(Ordering::Relaxed) >= self.cap && !self.displace_one() {
            self.log_burst("connection limit reached: refusing new connections");
            return None;
        }
        let flag = Arc::new(Flag::default());
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            // Closed connections leave the queue lazily: from the front, and
            // all at once whenever it outgrows the cap.
            while queue.front().is_some_and(|w| w.strong_count() == 0) {
                queue.pop_front();
            }
            if queue.len() > self.cap {
                queue.retain(|w| w.strong_count() > 0);
            }
            queue.push_back(Arc::downgrade(&flag));
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            flag,
            conns: Arc::clone(self),
        })
    }

    /// Tells the oldest connection with no request in flight to close
    /// (one still waiting for its first request, or an idle keep-alive
    /// one). `false` when every connection is busy.
    fn displace_one(&self) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut busy = Vec::new();
        let mut found = false;
        while let Some(weak) = queue.pop_front() {
            if let Some(flag) = weak.upgrade() {
                if flag.idle() {
                    flag.displace.notify_one();
                    found = true;
                    break;
                }
                busy.push(weak);
            }
        }
        queue.extend(busy);
        drop(queue);
        if found {
            self.log_burst("connection limit reached: closing the longest-open idle connections");
        }
        found
    }

    /// Counts one refused or displaced connection; logs `what` with the
    /// count at most once per [`BURST_LOG_INTERVAL`].
    fn log_burst(&self, what: &str) {
        let n = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < BURST_LOG_INTERVAL) {
            return;
        }
        *last = Some(now);
        self.unlogged.store(0, Ordering::Relaxed);
        tracing::warn!(
            open = self.open.load(Ordering::Relaxed),
            limit = self.cap,
            connections = n,
            "{what} (at most one such line per {}s)",
            BURST_LOG_INTERVAL.as_secs()
        );
    }
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_displaces_the_oldest_idle_connection_first() {
        let conns = Arc::new(Connections::new(2));
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        a.flag.active.store(1, Ordering::Relaxed);
        // At the cap: `a` is answering a request, so `b` is displaced.
        let c = conns.admit().unwrap();
        assert!(!a.flag.displace_was_notified());
        assert!(b.flag.displace_was_notified());
        // `b` closes; `c` gets busy too; nothing is left to displace.
        drop(b);
        c.flag.active.store(1, Ordering::Relaxed);
        assert!(conns.admit().is_none());
        // `a`'s request ends: it is the oldest idle one now.
        a.flag.active.store(0, Ordering::Relaxed);
        assert!(conns.admit().is_some());
        assert!(a.flag.displace_was_notified());
        assert!(!c.flag.displace_was_notified());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_whose_request_has_arrived_is_not_displaced() {
        use std::io::Write;
        use tokio::io::AsyncReadExt;
        // Repeated: a wrong order of the connection's two branches would
        // close the first connection in about half of the rounds.
        for round in 0..20 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = crate::http::limits::around(
                axum::Router::new().route("/", axum::routing::get(|| async { "ok" })),
            );
            let options = ServeOptions {
                tls: None,
                h2c: false,
                max_connections: Some(1),
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve(listener, app, options, async {
                let _ = stopped.await;
            }));
            // Both connections are complete in the kernel before the server
            // first runs (one thread, no await yet): it accepts both at
            // once, and at its cap of one the second displaces the first,
            // whose task has not run yet although its request is there.
            let mut first = std::net::TcpStream::connect(addr).unwrap();
            first
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let second = std::net::TcpStream::connect(addr).unwrap();
            first.set_nonblocking(true).unwrap();
            let mut first = tokio::net::TcpStream::from_std(first).unwrap();
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut answer))
                .await
                .expect("an answer or a close within 5 s")
                .unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "round {round}: {answer:?}"
            );
            drop(second);
            let _ = stop.send(());
            server.await.unwrap().unwrap();
        }
    }

    impl Flag {
        fn displace_was_notified(&self) -> bool {
            use std::future::Future;
            let n = self.displace.notified();
            tokio::pin!(n);
            let waker = std::task::Waker::noop();
            n.as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_ready()
        }
    }

    #[test]
    fn the_cap_stays_below_the_file_limit() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let cap = connection_cap(Some(usize::MAX));
        assert!((cap as u64) <= soft.saturating_sub(FD_RESERVE as u64).max(1));
        assert_eq!(connection_cap(Some(3)), 3.min(cap));
    }

    #[tokio::test]
    async fn a_unix_socket_replaces_a_stale_one_but_never_a_live_one_or_a_file() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regauth.sock");
        // Stale: bound by a process that is gone, nobody listening.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = Listener::bind_unix(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let err = Listener::bind_unix(&path).err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        drop(live);
        assert!(!path.exists(), "removed when the listener is dropped");
        std::fs::write(&path, "not a socket").unwrap();
        let err = Listener::bind_unix(&path).err().unwrap();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}
