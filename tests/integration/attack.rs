//! Connection-level attacks against the `regauth serve` process, each kept
//! up for [`ATTACK`] while a legitimate client probes: cleartext HTTP/2
//! streams whose POST bodies never arrive, and silent connections beyond a
//! 256 open-file limit. The attacker connects from 127.0.0.2 and the
//! legitimate client from 127.0.0.1, both loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Bytes, Frame};

use crate::support::fixture;

/// How long each attack lasts.
const ATTACK: Duration = Duration::from_secs(30);
/// The most a probe may take while under attack.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

const ATTACKER: &str = "127.0.0.2";

struct Proc {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `regauth serve` on a port the OS picks (retrying a taken one),
/// under `prlimit --nofile=N:N` when `nofile` is given, and collects its
/// log lines.
fn serve(server_extra: &str, nofile: Option<u32>) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "server:\n  addr: \"127.0.0.1:{port}\"\n{server_extra}token:\n  issuer: t\n  expiration: 60\n  key: {key}\nusers:\n  alice: {{password: \"{pw}\"}}\n  \"\": {{}}\nacl:\n  - match: {{account: alice}}\n    actions: [\"*\"]\n",
            key = fixture("keys/p256.pem").display(),
            pw = bcrypt::hash("alice", 4).unwrap(),
        );
        std::fs::write(&config, yaml).unwrap();
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_regauth"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_regauth")),
        };
        let mut child = cmd
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("run regauth (prlimit is in Debian's util-linux: apt-get install util-linux)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut started = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let listening = line.contains("regauth listening");
            log.lock().unwrap().push(line);
            if listening {
                started = true;
                break;
            }
        }
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        if started {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            return (Proc { child, addr, log }, dir);
        }
        let _ = child.wait();
        let log = log.lock().unwrap().join("\n");
        assert!(
            log.contains("cannot listen"),
            "regauth did not start:\n{log}"
        );
    }
    panic!("no free port after 5 tries");
}

/// A TCP connection to `to` from `from`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

/// Probes the server once per ~200 ms from 127.0.0.1 until `until`: a
/// token request (alice, new connection each time) and `/healthz`. Returns
/// the slowest probe; panics on a failed one.
async fn probe_until(addr: SocketAddr, until: Instant) -> (usize, Duration) {
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while Instant::now() < until {
        for path in ["/auth?service=r&scope=repository:a:pull", "/healthz"] {
            let client = crate::support::client_builder()
                .local_address(Some("127.0.0.1".parse().unwrap()))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let start = Instant::now();
            let resp = tokio::time::timeout(
                PROBE_LIMIT,
                client
                    .get(format!("http://{addr}{path}"))
                    .basic_auth("alice", Some("alice"))
                    .send(),
            )
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer within {PROBE_LIMIT:?} (probe {n})"))
            .unwrap_or_else(|e| panic!("{path}: {e} (probe {n})"));
            assert_eq!(resp.status(), 200, "{path} (probe {n})");
            slowest = slowest.max(start.elapsed());
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (n, slowest)
}

/// A request body that never sends a byte nor ends.
struct Never;

impl hyper::body::Body for Never {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }
}

/// One h2c connection keeping `streams` bodiless POSTs to `/auth` open,
/// each reopened as soon as it is answered, until `until`. Returns the
/// statuses it was answered with.
async fn h2c_attacker(addr: SocketAddr, streams: usize, until: Instant) -> Vec<u16> {
    let Ok(tcp) = connect_from(ATTACKER, addr).await else {
        return vec![];
    };
    let io = hyper_util::rt::TokioIo::new(tcp);
    let Ok((sender, conn)) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await
    else {
        return vec![];
    };
    tokio::spawn(conn);
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let mut sender = sender.clone();
        let statuses = Arc::clone(&statuses);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if sender.ready().await.is_err() {
                    return;
                }
                let req = hyper::Request::post(format!("http://{addr}/auth"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Never)
                    .unwrap();
                let left = until.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, sender.send_request(req)).await {
                    Ok(Ok(resp)) => statuses.lock().unwrap().push(resp.status().as_u16()),
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(_) => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let out = statuses.lock().unwrap().clone();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h2c_streams_with_bodies_that_never_arrive_do_not_lock_out_others() {
    let (server, _dir) = serve("  h2c: true\n", None);
    let addr = server.addr;
    let until = Instant::now() + ATTACK;
    // Three connections, each with more streams than it is allowed.
    let attackers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(h2c_attacker(addr, 100, until)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (probes, slowest) = probe_until(addr, until).await;
    let mut answered = Vec::new();
    for a in attackers {
        answered.extend(a.await.unwrap());
    }
    eprintln!(
        "{probes} probes, slowest {slowest:?}; the attacker's streams were answered {} times",
        answered.len()
    );
    // The attack was real: its streams were held until the body deadline.
    assert!(!answered.is_empty(), "the attacker never got an answer");
    assert!(answered.iter().all(|s| *s == 408), "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_beyond_the_file_limit_do_not_lock_out_others() {
    let (server, _dir) = serve("", Some(256));
    let addr = server.addr;
    let until = Instant::now() + ATTACK;
    let closed_after = Arc::new(Mutex::new(Vec::<Duration>::new()));
    // 300 connections that never send a byte, each reopened when the
    // server closes it.
    let attackers: Vec<_> = (0..300)
        .map(|_| {
            let closed_after = Arc::clone(&closed_after);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                while Instant::now() < until {
                    let Ok(mut s) = connect_from(ATTACKER, addr).await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let opened = Instant::now();
                    let mut buf = [0u8; 64];
                    let left = until.saturating_duration_since(opened);
                    match tokio::time::timeout(left, s.read(&mut buf)).await {
                        Ok(_) => closed_after.lock().unwrap().push(opened.elapsed()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (probes, slowest) = probe_until(addr, until).await;
    for a in attackers {
        a.await.unwrap();
    }
    let closed = closed_after.lock().unwrap();
    let longest = closed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{probes} probes, slowest {slowest:?}; {} silent connections closed, the longest after {longest:?}",
        closed.len()
    );
    assert!(!closed.is_empty(), "no silent connection was ever closed");
    // The documented deadline, with slack for a loaded machine.
    assert!(
        longest <= regauth::server::HEADER_READ_TIMEOUT + Duration::from_secs(2),
        "a silent connection stayed open {longest:?}"
    );
    let log = server.log.lock().unwrap().clone();
    let about: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("connection limit") || l.contains("accept failed"))
        .collect();
    assert!(about.len() <= 3, "too many log lines about it: {about:#?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_deadline() {
    use tokio::io::AsyncReadExt;
    let s = crate::support::Server::start(&crate::support::config_yaml(
        "p256",
        "",
        crate::support::DEFAULT_ACL,
    ))
    .await;
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        regauth::server::HEADER_READ_TIMEOUT + Duration::from_secs(5),
        silent.read(&mut buf),
    )
    .await
    .expect("a connection that sends nothing must be closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = start.elapsed();
    assert!(
        waited >= regauth::server::HEADER_READ_TIMEOUT - Duration::from_millis(500),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn cleartext_http2_is_off_unless_configured() {
    let s = crate::support::Server::start(&crate::support::config_yaml(
        "p256",
        "",
        crate::support::DEFAULT_ACL,
    ))
    .await;
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(tcp);
    let answered = async {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("http://{}/healthz", s.addr))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req).await.ok()
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), answered)
        .await
        .expect("the server answers or closes at once");
    assert!(answer.is_none(), "served h2c: {answer:?}");
    // HTTP/1.1 on the same server works.
    assert_eq!(s.get("/healthz", None).await.status(), 200);
}
