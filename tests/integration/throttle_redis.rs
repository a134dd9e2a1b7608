//! Replicas sharing their failed-login counts through a real Redis
//! (Debian's redis-server on a free loopback port, started and stopped by
//! the test): failures spread over two servers reach the limits in total;
//! containerd's GET retry on the other replica is still one failure; with
//! Redis stopped, logins go on, the outage is counted and each replica
//! counts locally; with Redis back, the counts are shared again. A missing
//! redis-server fails the test, never skips it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{config_yaml, Server, DEFAULT_ACL};

const INSTALL: &str = "install with: apt-get install redis-server (or tests/e2e/deps.sh)";

/// A redis-server on 127.0.0.1, without persistence; killed on drop.
struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn redis_server() -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join("redis-server");
        if p.exists() {
            return p;
        }
    }
    panic!("redis-server not found: {INSTALL}");
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        r.resume();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts redis-server on the same port (again) and waits until it
    /// accepts connections.
    fn resume(&mut self) {
        let child = Command::new(redis_server())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}; {INSTALL}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two replicas (same key, same config) sharing `redis`.
async fn replicas(redis: &RedisServer, ip_limit: u32, account_limit: u32) -> (Server, Server) {
    let yaml = config_yaml(
        "p256",
        "",
        &format!(
            "{DEFAULT_ACL}throttle: {{window: 60, max_failures_per_ip: {ip_limit}, max_failures_per_account: {account_limit}, redis: \"{}\"}}\n",
            redis.url()
        ),
    )
    .replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For",
    );
    (Server::start(&yaml).await, Server::start(&yaml).await)
}

/// GET /auth as `user` from client address `ip`: the status.
async fn login(s: &Server, ip: &str, user: &str, password: &str) -> u16 {
    crate::throttle::login(s, ip, user, password)
        .await
        .status()
        .as_u16()
}

/// containerd's first try: the password grant.
async fn post(s: &Server, ip: &str, user: &str, password: &str) -> u16 {
    s.client
        .post(s.url("/auth"))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={user}&password={password}&service=reg"
        ))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn metric(s: &Server, name: &str) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn failures_spread_over_two_replicas_reach_the_limits_in_total() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis, 6, 3).await;
    // Address limit: 6 failures in total, 3 on each replica, each for
    // another (unknown) account so that only the address limit applies.
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            login(s, "10.1.0.1", &format!("user{i}"), "x").await,
            401,
            "failure {i}"
        );
    }
    assert_eq!(login(&a, "10.1.0.1", "bob", "bob").await, 429);
    assert_eq!(login(&b, "10.1.0.1", "bob", "bob").await, 429);
    assert_eq!(
        login(&b, "10.1.0.2", "bob", "bob").await,
        200,
        "another address"
    );
    assert_eq!(metric(&a, "regauth_throttle_redis_up").await, 1);
    assert_eq!(metric(&b, "regauth_throttle_redis_errors_total").await, 0);

    // Account limit: 3 failures for alice, from two addresses over both
    // replicas. Addresses that failed are refused for alice on either
    // replica; a clean address still logs in.
    assert_eq!(login(&a, "10.2.0.1", "alice", "guess1").await, 401);
    assert_eq!(login(&b, "10.2.0.1", "alice", "guess2").await, 401);
    assert_eq!(login(&b, "10.2.0.2", "alice", "guess3").await, 401);
    assert_eq!(login(&a, "10.2.0.1", "alice", "alice").await, 429);
    assert_eq!(login(&a, "10.2.0.2", "alice", "guess4").await, 429);
    assert_eq!(login(&b, "10.2.0.3", "alice", "alice").await, 200);
}

#[tokio::test]
async fn containerd_retry_on_the_other_replica_is_one_failure() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis, 4, 0).await;
    // POST on one replica, the GET retry on the other: 4 pairs are 4
    // failures, not 8.
    for i in 0..4 {
        let pw = format!("wrong{i}");
        assert_eq!(post(&a, "10.3.0.1", "alice", &pw).await, 401, "post {i}");
        assert_eq!(login(&b, "10.3.0.1", "alice", &pw).await, 401, "retry {i}");
    }
    assert_eq!(post(&b, "10.3.0.1", "alice", "wrong9").await, 429);
    // A GET with another password is no retry.
    assert_eq!(login(&a, "10.3.0.1", "alice", "wrong8").await, 429);
}

#[tokio::test]
async fn redis_stopped_logins_go_on_and_count_locally_then_shared_again() {
    let mut redis = RedisServer::start();
    let (a, b) = replicas(&redis, 4, 0).await;
    assert_eq!(login(&a, "10.4.0.1", "u1", "x").await, 401);
    assert_eq!(login(&b, "10.4.0.1", "u2", "x").await, 401);

    redis.stop();
    // Logins go on, without waiting on the dead Redis more than its bound.
    for s in [&a, &b] {
        let t = Instant::now();
        assert_eq!(login(s, "10.4.0.9", "alice", "alice").await, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    for s in [&a, &b] {
        assert!(metric(s, "regauth_throttle_redis_errors_total").await >= 1);
        assert_eq!(metric(s, "regauth_throttle_redis_up").await, 0);
    }
    // Each replica counts locally: a's local count for 10.4.0.1 is 1, so
    // 3 more failures on a reach its limit of 4 while b still admits.
    for i in 0..3 {
        assert_eq!(login(&a, "10.4.0.1", &format!("v{i}"), "x").await, 401);
    }
    assert_eq!(login(&a, "10.4.0.1", "bob", "bob").await, 429);
    assert_eq!(login(&b, "10.4.0.1", "bob", "bob").await, 200);

    // Redis back (empty: no persistence): once a probe reaches it, the
    // counts are shared again.
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in [&a, &b] {
        while metric(s, "regauth_throttle_redis_up").await != 1 {
            assert!(Instant::now() < deadline, "Redis not used again");
            login(s, "10.5.0.9", "alice", "alice").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for i in 0..4 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            login(s, "10.5.0.1", &format!("w{i}"), "x").await,
            401,
            "failure {i}"
        );
    }
    assert_eq!(login(&a, "10.5.0.1", "bob", "bob").await, 429);
    assert_eq!(login(&b, "10.5.0.1", "bob", "bob").await, 429);
}

#[tokio::test]
async fn a_reload_that_changes_the_url_follows_it() {
    let (first, second) = (RedisServer::start(), RedisServer::start());
    let (a, _) = replicas(&first, 3, 0).await;
    let (b, _) = replicas(&second, 3, 0).await;
    // 10.6.0.1 reaches the limit in the second Redis, through b.
    for i in 0..3 {
        assert_eq!(login(&b, "10.6.0.1", &format!("x{i}"), "x").await, 401);
    }
    assert_eq!(login(&b, "10.6.0.1", "bob", "bob").await, 429);
    // a counts in the first: it has never seen 10.6.0.1 fail.
    assert_eq!(login(&a, "10.6.0.1", "bob", "bob").await, 200);
    // a's configuration now names the second Redis: after the reload it
    // refuses the address on the counts it finds there.
    let path = a.dir.path().join("config.yml");
    let yaml = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&first.url(), &second.url());
    std::fs::write(&path, yaml).unwrap();
    regauth::reload::reload(&a.state, None).await.unwrap();
    assert_eq!(login(&a, "10.6.0.1", "bob", "bob").await, 429);
    assert_eq!(metric(&a, "regauth_throttle_redis_up").await, 1);
}
