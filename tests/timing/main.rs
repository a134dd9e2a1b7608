//! Timing: an unknown user and a known user with a wrong password must take
//! the same time, so response times do not tell which accounts exist. The
//! unknown user is checked against a dummy hash at the cost the configured
//! hashes use; these tests fail if that cost is ever fixed or wrong.
//!
//! Robust on a loaded machine: a test binary of its own, so no other test
//! runs beside it (cargo runs test binaries one after another), and its two
//! tests take turns; the two kinds of request are interleaved (alternating
//! which goes first), there is a warm-up, medians measured in the same run
//! are compared, and one failed measurement is repeated before the test
//! fails.

use std::time::{Duration, Instant};

#[path = "../integration/support.rs"]
#[allow(dead_code)]
mod support;

use support::{server_and_token_yaml, Server, DEFAULT_ACL};

/// Held by each test for its whole run, so the two never measure at once.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SAMPLES: usize = 15;
const WARM_UP: usize = 2;
/// Largest accepted difference of the medians, relative to the larger.
const TOLERANCE: f64 = 0.10;

/// A server whose users have bcrypt hashes at `cost`, with throttling
/// off (this test fails passwords on purpose) and no credential cache.
async fn server(cost: u32) -> Server {
    let target = bcrypt::hash("target-password", cost).unwrap();
    let other = bcrypt::hash("other-password", cost).unwrap();
    let yaml = format!(
        r#"{head}users:
  target: {{password: "{target}"}}
  other: {{password: "{other}"}}
{DEFAULT_ACL}throttle: {{max_failures_per_ip: 0, max_failures_per_account: 0}}
auth_cache: {{ttl: 0}}
"#,
        head = server_and_token_yaml("p256", ""),
    );
    Server::start(&yaml).await
}

async fn timed(s: &Server, user: &str, password: &str) -> Duration {
    let start = Instant::now();
    let resp = s.get("/auth?service=reg", Some((user, password))).await;
    let took = start.elapsed();
    assert_eq!(resp.status(), 401, "{user}");
    assert_eq!(resp.text().await.unwrap(), "authentication failed\n");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (unknown-user median, wrong-password median).
async fn measure(s: &Server) -> (Duration, Duration) {
    for _ in 0..WARM_UP {
        timed(s, "nobody", "x").await;
        timed(s, "target", "x").await;
    }
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        // Each sample uses a fresh name and password: nothing can be cached.
        let (u, p) = (format!("nobody{i}"), format!("guess{i}"));
        if i % 2 == 0 {
            unknown.push(timed(s, &u, &p).await);
            wrong.push(timed(s, "target", &p).await);
        } else {
            wrong.push(timed(s, "target", &p).await);
            unknown.push(timed(s, &u, &p).await);
        }
    }
    (median(unknown), median(wrong))
}

fn relative_difference(a: Duration, b: Duration) -> f64 {
    let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
    (a - b).abs() / a.max(b)
}

async fn unknown_user_costs_as_much_as_wrong_password(cost: u32) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let s = server(cost).await;
    let mut last = None;
    for attempt in 1..=2 {
        let (unknown, wrong) = measure(&s).await;
        let diff = relative_difference(unknown, wrong);
        eprintln!(
            "timing (bcrypt cost {cost}, attempt {attempt}, {SAMPLES} samples each): \
             unknown user median {unknown:?}, wrong password median {wrong:?}, difference {:.1} %",
            diff * 100.0
        );
        if diff <= TOLERANCE {
            return;
        }
        last = Some((unknown, wrong, diff));
    }
    let (unknown, wrong, diff) = last.unwrap();
    panic!(
        "unknown user ({unknown:?}) and wrong password ({wrong:?}) medians differ by {:.1} % (limit {:.0} %)",
        diff * 100.0,
        TOLERANCE * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_take_the_same_time_at_cost_10() {
    unknown_user_costs_as_much_as_wrong_password(10).await;
}

/// At another cost than the historical dummy hash's (10): a fixed dummy
/// cost would make unknown users 16 times slower here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dummy_verification_follows_the_configured_cost() {
    unknown_user_costs_as_much_as_wrong_password(6).await;
}
