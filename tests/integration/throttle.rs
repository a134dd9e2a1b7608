//! Brute-force throttling over HTTP (design: `src/http/throttle.rs`):
//! failed logins from one address, or for one account, are answered 429
//! with `Retry-After` after the configured number, without a password
//! verification, while the same account logging in from another address
//! still succeeds, and containerd's GET retry of a refused POST counts
//! as one failure with it.

use std::sync::Arc;

use serde_json::Value;

use crate::support::{config_yaml, verify, Server, DEFAULT_ACL};

async fn server() -> Server {
    let yaml = config_yaml(
        "p256",
        "",
        &format!(
            "{DEFAULT_ACL}throttle: {{window: 60, max_failures_per_ip: 20, max_failures_per_account: 10}}\n"
        ),
    )
    .replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For",
    );
    Server::start(&yaml).await
}

/// GET /auth as `user` from client address `ip` (X-Forwarded-For).
pub(crate) async fn login(s: &Server, ip: &str, user: &str, password: &str) -> reqwest::Response {
    s.client
        .get(s.url("/auth?service=reg&scope=repository:team/app:pull"))
        .header("x-forwarded-for", ip)
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

/// Checks a 429 and returns its Retry-After.
async fn throttled(resp: reqwest::Response) -> u64 {
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body = resp.text().await.unwrap();
    assert_eq!(
        body,
        format!("too many failed login attempts; try again in {retry} seconds\n")
    );
    retry
}

async fn metric(s: &Server, name: &str) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn granted(resp: reqwest::Response) {
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));
}

#[tokio::test]
async fn hundred_wrong_passwords_from_one_address_spare_another_address() {
    let s = server().await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        let resp = login(&s, "10.0.0.1", "alice", &format!("guess{i}")).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            throttled(resp).await;
        }
    }
    let unauthorized = statuses.iter().filter(|&&c| c == 401).count();
    let refused = statuses.iter().filter(|&&c| c == 429).count();
    eprintln!(
        "100 wrong passwords for alice from 10.0.0.1: {unauthorized} × 401, then {refused} × 429"
    );
    assert_eq!(
        statuses[..10],
        [401; 10],
        "the first 10 (account limit) are checked"
    );
    assert_eq!(statuses[10..], [429; 90], "then refused");
    // Refused attempts cost no password verification.
    assert_eq!(
        metric(
            &s,
            "regauth_authn_duration_seconds_count{backend=\"users\"}"
        )
        .await,
        10
    );

    // The legitimate user from another address gets in.
    granted(login(&s, "10.0.0.2", "alice", "alice").await).await;
    // The attacker's address is refused for alice even with the right
    // password (see the throttle module's doc) ...
    throttled(login(&s, "10.0.0.1", "alice", "alice").await).await;
    // ... but may still log in as another account (10 failures < 20).
    assert_eq!(login(&s, "10.0.0.1", "bob", "bob").await.status(), 200);
    // Anonymous requests are never throttled.
    let anon = s
        .client
        .get(s.url("/auth?service=reg"))
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 200);

    assert_eq!(metric(&s, "regauth_rate_limited_total").await, 91);
    assert_eq!(
        metric(&s, "regauth_token_requests_total{outcome=\"throttled\"}").await,
        91
    );
}

#[tokio::test]
async fn address_limit_covers_every_account() {
    let s = server().await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        // A different (unknown) account each time: only the address limit applies.
        let resp = login(&s, "10.0.0.3", &format!("user{i}"), "x").await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 80]);
    throttled(login(&s, "10.0.0.3", "bob", "bob").await).await;
    assert_eq!(login(&s, "10.0.0.4", "bob", "bob").await.status(), 200);
    // IPv6 clients are counted by /64.
    for i in 0..20 {
        let resp = login(&s, &format!("2001:db8::{i:x}"), &format!("v6user{i}"), "x").await;
        assert_eq!(resp.status(), 401);
    }
    throttled(login(&s, "2001:db8::ffff:1", "bob", "bob").await).await;
    assert_eq!(
        login(&s, "2001:db8:0:1::1", "bob", "bob").await.status(),
        200
    );
}

#[tokio::test]
async fn password_grant_posts_are_counted_too() {
    let s = server().await;
    let post = |pw: &str| {
        s.client
            .post(s.url("/auth"))
            .header("x-forwarded-for", "10.0.0.5")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=password&username=alice&password={pw}&service=reg"
            ))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(post("bad").await.unwrap().status(), 401);
    }
    throttled(post("bad").await.unwrap()).await;
    // Basic and POST share the counts (another password: the last one
    // would be containerd's retry of the last counted POST).
    throttled(login(&s, "10.0.0.5", "alice", "other").await).await;
    granted(login(&s, "10.0.0.6", "alice", "alice").await).await;
}

/// A server whose address limit is 4 failures.
async fn server_with_ip_limit_4() -> Server {
    let yaml = config_yaml(
        "p256",
        "",
        &format!(
            "{DEFAULT_ACL}throttle: {{window: 60, max_failures_per_ip: 4, max_failures_per_account: 10}}\n"
        ),
    )
    .replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For",
    );
    Server::start(&yaml).await
}

/// containerd's first try with a password: the OAuth2 password grant.
async fn containerd_post(s: &Server, ip: &str, user: &str, password: &str) -> reqwest::Response {
    s.client
        .post(s.url("/auth"))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={user}&password={password}&service=reg&scope=repository:team/app:pull&client_id=containerd-client"
        ))
        .send()
        .await
        .unwrap()
}

/// containerd's login as it looks on the wire: a password POST and, when
/// refused, the same credentials as a GET with Basic. The two statuses.
async fn containerd_login(s: &Server, ip: &str, user: &str, password: &str) -> (u16, u16) {
    let post = containerd_post(s, ip, user, password)
        .await
        .status()
        .as_u16();
    let get = login(s, ip, user, password).await.status().as_u16();
    (post, get)
}

#[tokio::test]
async fn containerd_post_then_get_is_one_failure() {
    let s = server_with_ip_limit_4().await;
    for i in 0..3 {
        assert_eq!(
            containerd_login(&s, "10.0.0.7", "alice", &format!("wrong{i}")).await,
            (401, 401),
            "bad login {i}"
        );
    }
    // Three failures of four: the address may still log in.
    granted(containerd_post(&s, "10.0.0.7", "alice", "alice").await).await;
    granted(login(&s, "10.0.0.7", "alice", "alice").await).await;
    // The fourth bad login reaches the limit with its POST; its GET is
    // still answered, 401, not 429.
    assert_eq!(
        containerd_login(&s, "10.0.0.7", "alice", "wrong3").await,
        (401, 401)
    );
    // Now at the limit: a new attempt, either method, is refused.
    throttled(containerd_post(&s, "10.0.0.7", "alice", "wrong4").await).await;
    throttled(login(&s, "10.0.0.7", "alice", "wrong4").await).await;
    // Repeating the last refused password as a GET again is no retry.
    throttled(login(&s, "10.0.0.7", "alice", "wrong3").await).await;
}

#[tokio::test]
async fn separate_bad_gets_each_count() {
    let s = server_with_ip_limit_4().await;
    for i in 0..4 {
        let resp = login(&s, "10.0.0.8", "alice", &format!("wrong{i}")).await;
        assert_eq!(resp.status(), 401, "bad GET {i}");
    }
    throttled(login(&s, "10.0.0.8", "alice", "wrong4").await).await;
}

#[tokio::test]
async fn alternating_methods_with_new_passwords_counts_each() {
    let s = server_with_ip_limit_4().await;
    // POST, then GET with another password, twice: four guesses.
    for i in 0..2 {
        let post = containerd_post(&s, "10.0.0.9", "alice", &format!("a{i}")).await;
        assert_eq!(post.status(), 401);
        let get = login(&s, "10.0.0.9", "alice", &format!("b{i}")).await;
        assert_eq!(get.status(), 401);
    }
    throttled(containerd_post(&s, "10.0.0.9", "alice", "c").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attack_does_not_disturb_other_clients() {
    let s = Arc::new(server().await);
    let attack = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for w in 0..8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let mut codes = Vec::new();
                    for i in 0..25 {
                        let r = login(&s, "10.0.1.1", "alice", &format!("g{w}-{i}")).await;
                        codes.push(r.status().as_u16());
                    }
                    codes
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        })
    };
    for i in 0..20 {
        let ip = format!("10.0.2.{i}");
        granted(login(&s, &ip, "alice", "alice").await).await;
    }
    let codes = attack.await.unwrap();
    let n401 = codes.iter().filter(|&&c| c == 401).count();
    assert!(codes.iter().all(|&c| c == 401 || c == 429), "{codes:?}");
    // At most the limit plus the attempts in flight together.
    assert!((10..=10 + 8).contains(&n401), "{n401} failures let through");
}

#[tokio::test]
async fn throttling_can_be_turned_off() {
    let yaml = config_yaml(
        "p256",
        "",
        &format!(
            "{DEFAULT_ACL}throttle: {{max_failures_per_ip: 0, max_failures_per_account: 0}}\n"
        ),
    );
    let s = Server::start(&yaml).await;
    for _ in 0..40 {
        let resp = s.get("/auth?service=reg", Some(("alice", "bad"))).await;
        assert_eq!(resp.status(), 401);
    }
}
