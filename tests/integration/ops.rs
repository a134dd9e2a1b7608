//! Operations: hot reload under load, broken, half-written and emptied
//! files, metrics, readiness, TLS serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{config_yaml, Server};

const ACL_PULL: &str = "- match: {account: alice}\n  actions: [pull]\n  comment: before\n";
const ACL_PUSH: &str = "- match: {account: alice}\n  actions: [pull, push]\n  comment: after\n";

/// How often the tests' watchers poll, as `regauth serve`'s does.
const INTERVAL: Duration = Duration::from_millis(250);

/// Polls `done` every 50 ms until it holds; panics after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
    let watcher = tokio::spawn(regauth::reload::watch(s.state.clone(), INTERVAL, None));
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
    wait_for(Duration::from_secs(10), "the new ACL", || async {
        granted(&s).await.is_ok_and(|g| g.len() == 2)
    })
    .await;
    // A broken ACL: the old (push) configuration keeps serving.
    std::fs::write(s.dir.path().join("acl.yml"), "- match: {account: [broken\n").unwrap();
    let failure = "regauth_config_reloads_total{result=\"failure\"} 1";
    wait_for(
        Duration::from_secs(10),
        "the broken ACL to be refused",
        || async { s.metrics().await.contains(failure) },
    )
    .await;
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
    let err = regauth::reload::reload(&s.state, None).await.unwrap_err();
    assert!(err.to_string().contains("config.yml"), "{err}");
    let resp = s
        .get("/auth?service=reg&scope=repository:public/x:pull", None)
        .await;
    assert_eq!(resp.status(), 200);
}

/// An ACL whose first entry, cut after its `name` line, loses the
/// `account` condition and grants anyone everything on `private/*`.
const ACL_V1: &str = r#"- actions: ["*"]
  comment: admin owns private
  match:
    name: "private/*"
    account: admin
- actions: []
  match: {account: "", name: "public/*"}
  comment: v1, no anonymous pulls
"#;
const ACL_V2: &str = r#"- actions: ["*"]
  comment: admin owns private
  match:
    name: "private/*"
    account: admin
- actions: [pull]
  match: {account: "", name: "public/*"}
  comment: v2, anonymous pulls
"#;

/// An anonymous request for `private/x` pull+push and `public/x` pull: the
/// actions granted on each.
async fn anonymous_grants(s: &Server) -> (Vec<String>, Vec<String>) {
    let resp = s
        .get(
            "/auth?service=reg&scope=repository:private/x:pull,push&scope=repository:public/x:pull",
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = crate::support::verify(body["token"].as_str().unwrap(), "p256", "reg");
    let actions = |i: usize| -> Vec<String> {
        claims["access"][i]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    (actions(0), actions(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_file_rewritten_in_place_in_two_parts_is_never_served_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yml");
    std::fs::write(&acl, ACL_V1).unwrap();
    let yaml = config_yaml("p256", "", &format!("acl_file: {}\n", acl.display()));
    let s = Arc::new(Server::start_in(dir, &yaml).await);
    let watcher = tokio::spawn(regauth::reload::watch(s.state.clone(), INTERVAL, None));
    assert_eq!(anonymous_grants(&s).await, (vec![], vec![]));

    // The probe asks every 50 ms from before the write until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(anonymous_grants(&s).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // In place: truncate, the first part (cut after the `name` line), a
    // pause of 0.6 s, the rest.
    let cut = ACL_V2.find("    account: admin").unwrap();
    let mut f = std::fs::File::create(&acl).unwrap();
    std::io::Write::write_all(&mut f, &ACL_V2.as_bytes()[..cut]).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    std::io::Write::write_all(&mut f, &ACL_V2.as_bytes()[cut..]).unwrap();
    drop(f);
    // The whole file is served in the end.
    wait_for(Duration::from_secs(10), "the rewritten ACL", || async {
        anonymous_grants(&s).await.1 == ["pull"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = probe.await.unwrap();
    assert!(seen.len() >= 20, "{} probes", seen.len());
    let half: Vec<_> = seen
        .iter()
        .filter(|(private, _)| !private.is_empty())
        .collect();
    assert!(half.is_empty(), "the half-written ACL was served: {half:?}");
    assert!(seen.last().unwrap().1 == ["pull"]);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("regauth_config_reloads_total{result=\"success\"} 1")
            && !metrics.contains("regauth_config_reloads_total{result=\"failure\"}"),
        "one reload, of the whole file: {metrics}"
    );
    watcher.abort();
}

#[tokio::test]
async fn a_reload_that_empties_the_acl_or_htpasswd_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (acl, htpasswd) = (dir.path().join("acl.yml"), dir.path().join("htpasswd"));
    std::fs::write(&acl, ACL_V1).unwrap();
    std::fs::write(
        &htpasswd,
        format!("carol:{}\n", crate::support::hash("carol")),
    )
    .unwrap();
    let files = format!(
        "acl_file: {}\nhtpasswd: {}\n",
        acl.display(),
        htpasswd.display()
    );
    let yaml = config_yaml("p256", "", &files);
    let s = Server::start_in(dir, &yaml).await;
    let config = s.dir.path().join("config.yml");
    let allow = |what: &str| {
        yaml.replace(
            "  addr: \"127.0.0.1:0\"",
            &format!("  addr: \"127.0.0.1:0\"\n  reload_allow_empty: [{what}]"),
        )
    };
    let acl_len = |s: &Server| s.state.current().config.acl.len();
    // (ACL text, htpasswd text, config text, refusal naming the list or None)
    let cases: Vec<(&str, &str, String, Option<&str>)> = vec![
        (
            "",
            "keep",
            yaml.clone(),
            Some("the new ACL has no entries (the running one has 2)"),
        ),
        (
            "[]\n",
            "keep",
            yaml.clone(),
            Some("the new ACL has no entries"),
        ),
        (
            "keep",
            "",
            yaml.clone(),
            Some("the new htpasswd file has no users (the running one has 1)"),
        ),
        (
            "keep",
            "",
            allow("acl"),
            Some("server.reload_allow_empty: [htpasswd]"),
        ),
        (
            "",
            "keep",
            allow("htpasswd"),
            Some("server.reload_allow_empty: [acl]"),
        ),
        ("", "keep", allow("acl"), None),
    ];
    for (acl_text, htpasswd_text, config_text, refusal) in cases {
        if acl_text != "keep" {
            std::fs::write(&acl, acl_text).unwrap();
        }
        if htpasswd_text != "keep" {
            std::fs::write(&htpasswd, htpasswd_text).unwrap();
        }
        std::fs::write(&config, &config_text).unwrap();
        let result = regauth::reload::reload(&s.state, None).await;
        match refusal {
            Some(why) => {
                let err = result.unwrap_err().to_string();
                assert!(err.contains(why), "{err}");
                // Still the running lists.
                assert_eq!(acl_len(&s), 2);
                let login = s.get("/auth?service=reg", Some(("carol", "carol"))).await;
                assert_eq!(login.status(), 200);
            }
            None => {
                result.unwrap();
                assert_eq!(acl_len(&s), 0);
            }
        }
        std::fs::write(&acl, ACL_V1).unwrap();
        std::fs::write(
            &htpasswd,
            format!("carol:{}\n", crate::support::hash("carol")),
        )
        .unwrap();
    }
}
