//! Operations: hot reload under load, broken reloads, metrics, readiness,
//! TLS serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{config_yaml, Server};

const ACL_PULL: &str = "- match: {account: alice}\n  actions: [pull]\n  comment: before\n";
const ACL_PUSH: &str = "- match: {account: alice}\n  actions: [pull, push]\n  comment: after\n";

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn granted(s: &Server) -> Result<Vec<String>, u16> {
    let resp = s
        .get(
            "/auth?service=reg&scope=repository:team/app:pull,push",
            Some(("alice", "alice")),
        )
        .await;
    if resp.status() != 200 {
        return Err(resp.status().as_u16());
    }
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = crate::support::verify(body["token"].as_str().unwrap(), "p256", "reg");
    Ok(claims["access"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_file_change_applies_within_two_seconds_under_load_and_a_broken_one_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yml");
    std::fs::write(&acl, ACL_PULL).unwrap();
    let yaml = config_yaml("p256", "", &format!("acl_file: {}\n", acl.display()));
    let s = Arc::new(Server::start_in(dir, &yaml).await);
    let watcher = tokio::spawn(regauth::reload::watch(
        s.state.clone(),
        Duration::from_secs(1),
        None,
    ));
    assert_eq!(granted(&s).await, Ok(vec!["pull".to_string()]));

    // Steady load from 4 clients, recording (time, result).
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = granted(&s).await;
                seen.push((start, Instant::now(), r));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed_at = Instant::now();
    write_atomically(&s.dir.path().join("acl.yml"), ACL_PUSH);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A broken ACL: the old (push) configuration keeps serving.
    std::fs::write(s.dir.path().join("acl.yml"), "- match: {account: [broken\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);

    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    assert!(
        results.len() > 50,
        "steady load: {} requests",
        results.len()
    );
    let failed: Vec<_> = results.iter().filter(|(_, _, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "zero failed requests, got {}",
        failed.len()
    );
    let first_new = results
        .iter()
        .filter(|(_, _, r)| r.as_ref().unwrap().len() == 2)
        .map(|(_, end, _)| *end)
        .min()
        .expect("the new ACL took effect");
    let delay = first_new.saturating_duration_since(changed_at);
    assert!(delay <= Duration::from_secs(2), "took {delay:?}");
    // Atomic swap: a request started after one was answered under the new
    // ACL is answered under it too (never old again), and the broken file
    // changed nothing.
    let later: Vec<_> = results
        .iter()
        .filter(|(start, _, _)| *start > first_new)
        .collect();
    assert!(!later.is_empty());
    assert!(later.iter().all(|(_, _, r)| r.as_ref().unwrap().len() == 2));
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("regauth_config_reloads_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("regauth_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    watcher.abort();
}

#[tokio::test]
async fn metrics_move_with_requests() {
    let s = Server::start(&config_yaml("p256", "", crate::support::DEFAULT_ACL)).await;
    let before = s.metrics().await;
    // Every outcome's series exists from the start, at zero.
    assert!(
        before.contains("regauth_token_requests_total{outcome=\"granted\"} 0"),
        "{before}"
    );
    s.get(
        "/auth?service=reg&scope=repository:team/app:pull",
        Some(("alice", "alice")),
    )
    .await;
    s.get(
        "/auth?service=reg&scope=repository:team/app:pull",
        Some(("alice", "alice")),
    )
    .await;
    s.get(
        "/auth?service=reg&scope=repository:team/app:pull,push",
        Some(("bob", "bob")),
    )
    .await;
    s.get("/auth?service=reg&scope=repository:x/y:pull", None)
        .await;
    s.get("/auth?service=reg", Some(("alice", "nope"))).await;
    s.get("/auth?service=reg&scope=bad", None).await;
    let after = s.metrics().await;
    for line in [
        "regauth_token_requests_total{outcome=\"granted\"} 2",
        "regauth_token_requests_total{outcome=\"partial\"} 1",
        "regauth_token_requests_total{outcome=\"denied\"} 1",
        "regauth_token_requests_total{outcome=\"unauthorized\"} 1",
        "regauth_token_requests_total{outcome=\"bad_request\"} 1",
        "regauth_authn_cache_total{result=\"hit\"} 1",
        "regauth_authn_cache_total{result=\"miss\"} 3",
        "regauth_authn_duration_seconds_count{backend=\"users\"} 3",
    ] {
        assert!(after.contains(line), "missing {line:?} in:\n{after}");
    }
    let ready = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn sighup_style_reload_of_a_broken_config_keeps_serving() {
    let s = Server::start(&config_yaml("p256", "", crate::support::DEFAULT_ACL)).await;
    std::fs::write(
        s.dir.path().join("config.yml"),
        "server: {addr: nonsense}\n",
    )
    .unwrap();
    let err = regauth::reload::reload(&s.state, None).unwrap_err();
    assert!(err.to_string().contains("config.yml"), "{err}");
    let resp = s
        .get("/auth?service=reg&scope=repository:public/x:pull", None)
        .await;
    assert_eq!(resp.status(), 200);
}
