//! Robot accounts: `regauth robot add|list|remove` through the real
//! binary, the scope ceiling (granted = ACL ∩ scopes) where the ACL alone
//! grants more, expiry, revocation by a reload within 2 s of `robot
//! remove`, refresh tokens bounded by the same ceiling, and the load
//! errors of a bad robots file.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{config_yaml, Server};

/// The ACL grants `ci` everything: only the ceiling limits it.
const ACL: &str = r#"acl:
  - match: {account: "ci"}
    actions: ["*"]
    comment: "ci: whatever it asks (the robot's scopes limit it)"
  - match: {account: "labelled", name: "${labels:team}/*"}
    actions: ["pull", "push"]
  - match: {account: "narrow"}
    actions: ["pull"]
"#;

fn regauth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(args)
        .output()
        .expect("regauth runs")
}

/// `robot add`: the secret (stdout), after checking the output's shape.
fn add(file: &Path, name: &str, scopes: &[&str], extra: &[&str]) -> String {
    let mut args = vec![
        "robot",
        "add",
        "--file",
        file.to_str().unwrap(),
        "--name",
        name,
        "--expires",
        "90d",
    ];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    args.extend(extra);
    let out = regauth(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "robot add: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim_end().to_owned();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    assert!(secret.starts_with("rgr_") && secret.len() == 47, "{secret}");
    assert!(!stderr.contains(&secret), "the secret only on stdout");
    secret
}

fn token_for(body: &Value, audience: &str) -> Value {
    crate::support::verify(body["token"].as_str().unwrap(), "p256", audience).1
}

/// What a login as `user` is granted for `scope` (`Err(status)` when refused).
async fn granted(s: &Server, user: (&str, &str), scope: &str) -> Result<Vec<String>, u16> {
    let resp = s
        .get(&format!("/auth?service=reg&scope={scope}"), Some(user))
        .await;
    if resp.status() != 200 {
        return Err(resp.status().as_u16());
    }
    let body: Value = resp.json().await.unwrap();
    let claims = token_for(&body, "reg");
    Ok(claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["actions"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect())
}

fn robots_config(dir: &Path, extra_token: &str) -> String {
    let robots = dir.join("robots.yaml");
    config_yaml(
        "p256",
        extra_token,
        &format!("robots_file: {}\n{ACL}", robots.display()),
    )
}

#[test]
fn add_list_remove_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.yaml");
    std::fs::write(&file, "# CI robots: one per pipeline\n").unwrap();
    let secret = add(
        &file,
        "ci",
        &["repository:ci/*:push,pull"],
        &["--label", "team=ci", "--comment", "pushes CI images"],
    );
    let other = add(&file, "old", &["repository:x:pull"], &[]);
    assert_ne!(secret, other);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# CI robots: one per pipeline\n"),
        "comments kept: {text}"
    );
    assert!(
        !text.contains(&secret) && !text.contains(&other),
        "no secret in the file"
    );
    // A new file is created private.
    let fresh = dir.path().join("new.yaml");
    add(&fresh, "n", &["repository:n:pull"], &[]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Refusals change nothing: (args, error message part)
    let f = file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "ci",
                "--scope",
                "repository:y:pull",
                "--expires",
                "1d",
            ],
            "robot \"ci\" already exists",
        ),
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "a:b",
                "--scope",
                "repository:y:pull",
                "--expires",
                "1d",
            ],
            "--name: \"a:b\"",
        ),
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "z",
                "--scope",
                "repository:y",
                "--expires",
                "1d",
            ],
            "--scope: scope \"repository:y\": missing actions",
        ),
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "z",
                "--scope",
                "repository:y:pull",
                "--expires",
                "2020-01-01T00:00:00Z",
            ],
            "--expires: \"2020-01-01T00:00:00Z\" is not in the future",
        ),
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "z",
                "--scope",
                "repository:y:pull",
                "--expires",
                "soon",
            ],
            "--expires: \"soon\"",
        ),
        (
            &[
                "robot",
                "add",
                "--file",
                f,
                "--name",
                "z",
                "--scope",
                "repository:y:pull",
                "--expires",
                "1d",
                "--label",
                "x",
            ],
            "--label",
        ),
        (
            &["robot", "remove", "--file", f, "--name", "nobody"],
            "no robot \"nobody\"",
        ),
    ];
    for (args, want) in cases {
        let out = regauth(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: no secret printed");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "{args:?} changed the file"
        );
    }

    let out = regauth(&["robot", "list", "--file", f]);
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    let hash = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret_sha256: "))
        .unwrap();
    assert!(!list.contains(hash) && !list.contains("rgr_"), "{list}");
    assert!(
        list.contains("ci  expires ") && list.contains("scopes [repository:ci/*:pull,push]"),
        "{list}"
    );
    assert!(
        list.contains("labels {team: [ci]}") && list.contains("# pushes CI images"),
        "{list}"
    );
    assert!(
        list.contains("old  expires") && !list.contains("EXPIRED"),
        "{list}"
    );

    let out = regauth(&["robot", "remove", "--file", f, "--name", "ci"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        after.starts_with("# CI robots: one per pipeline\n") && !after.contains("name: ci\n"),
        "{after}"
    );
    assert!(after.contains("name: old"), "{after}");

    // An expired robot is flagged (written by hand: `add` refuses the past).
    std::fs::write(
        &file,
        format!("{after}- name: gone\n  secret_sha256: {hash}\n  expires: 2021-01-01T00:00:00Z\n  scopes: [\"repository:x:pull\"]\n"),
    )
    .unwrap();
    let list = String::from_utf8(regauth(&["robot", "list", "--file", f]).stdout).unwrap();
    assert!(
        list.contains("gone  expires 2021-01-01T00:00:00Z (EXPIRED)"),
        "{list}"
    );
}

#[tokio::test]
async fn the_ceiling_limits_what_the_acl_grants() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.yaml");
    let ci = add(
        &file,
        "ci",
        &["repository:ci/*:push,pull", "repository:base/*:pull"],
        &[],
    );
    let labelled = add(
        &file,
        "labelled",
        &["repository:*/*:push,pull"],
        &["--label", "team=web"],
    );
    let narrow = add(&file, "narrow", &["repository:*/*:*"], &[]);
    let yaml = robots_config(dir.path(), "");
    let s = Server::start_in(dir, &yaml).await;
    // (user, scope, granted); the ACL alone grants `ci` every action on
    // every repository.
    type Case<'a> = (&'a str, &'a str, &'a str, Result<&'a [&'a str], u16>);
    let cases: &[Case] = &[
        (
            "ci",
            &ci,
            "repository:ci/app:push,pull,delete",
            Ok(&["pull", "push"]),
        ),
        ("ci", &ci, "repository:base/debian:push,pull", Ok(&["pull"])),
        ("ci", &ci, "repository:other/app:pull", Ok(&[])),
        ("ci", &ci, "repository:ci/deep/app:pull", Ok(&[])),
        ("ci", &ci, "repository:ci/app:*", Ok(&[])),
        ("ci", &ci, "registry:catalog:*", Ok(&[])),
        // Labels from the robots file reach the ACL.
        (
            "labelled",
            &labelled,
            "repository:web/site:push,pull",
            Ok(&["pull", "push"]),
        ),
        ("labelled", &labelled, "repository:ci/app:pull", Ok(&[])),
        // A wide ceiling never adds what the ACL refuses.
        ("narrow", &narrow, "repository:a/b:push,pull", Ok(&["pull"])),
        // Another robot's secret, a wrong one, a secret under a user name.
        ("ci", &narrow, "repository:ci/app:pull", Err(401)),
        (
            "ci",
            "rgr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "repository:ci/app:pull",
            Err(401),
        ),
        ("alice", &ci, "repository:ci/app:pull", Err(401)),
    ];
    for (user, secret, scope, want) in cases {
        let got = granted(&s, (user, secret), scope).await;
        let want = want.map(|w| w.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{user} {scope}");
    }
    let metrics = s.metrics().await;
    for want in [
        "regauth_robot_logins_total{robot=\"ci\",outcome=\"ok\"} 6",
        "regauth_robot_logins_total{robot=\"ci\",outcome=\"wrong_secret\"} 2",
    ] {
        assert!(metrics.contains(want), "{want} in {metrics}");
    }
    // `explain` shows the same decision and says why.
    let out = regauth(&[
        "explain",
        "--config",
        s.dir.path().join("config.yml").to_str().unwrap(),
        "--account",
        "ci",
        "--scope",
        "repository:ci/app:push,pull,delete",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("robot: granted what the ACL grants within its scopes [repository:ci/*:pull,push, repository:base/*:pull]"), "{text}");
    assert!(
        text.contains("granted: [pull,push]") && text.contains("the robot's scopes took away"),
        "{text}"
    );
}

#[tokio::test]
async fn an_expired_robot_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.yaml");
    let secret = add(&file, "ci", &["repository:ci/*:pull"], &[]);
    // Its expiry moved into the past by hand (`add` refuses the past).
    let text = std::fs::read_to_string(&file).unwrap();
    let expired: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("expires:") {
                "  expires: 2021-06-01T00:00:00Z\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&file, expired).unwrap();
    let yaml = robots_config(dir.path(), "");
    let s = Server::start_in(dir, &yaml).await;
    assert_eq!(
        granted(&s, ("ci", &secret), "repository:ci/app:pull").await,
        Err(401)
    );
    assert!(s
        .metrics()
        .await
        .contains("regauth_robot_logins_total{robot=\"ci\",outcome=\"expired\"} 1"));
    // `check` warns about it.
    let out = regauth(&[
        "check",
        "--config",
        s.dir.path().join("config.yml").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("expired robots (their logins are refused): ci"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_remove_revokes_within_two_seconds_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.yaml");
    let keep = add(&file, "narrow", &["repository:ci/*:pull"], &[]);
    let gone = add(&file, "ci", &["repository:ci/*:push,pull"], &[]);
    let yaml = robots_config(dir.path(), "  refresh_expiration: 3600");
    let s = Server::start_in(dir, &yaml).await;
    let watcher = tokio::spawn(regauth::reload::watch(
        s.state.clone(),
        Duration::from_millis(250),
        None,
    ));
    assert_eq!(
        granted(&s, ("ci", &gone), "repository:ci/app:push").await,
        Ok(vec!["push".into()])
    );
    // A refresh token from the robot's login is held to the same ceiling
    // and dies with the robot.
    let resp = s
        .get(
            "/auth?service=reg&offline_token=true&client_id=docker",
            Some(("ci", &gone)),
        )
        .await;
    let refresh = resp.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_refresh = |scope: &str| {
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=docker&service=reg&scope={scope}")
    };
    let resp = s
        .post(&by_refresh(
            "repository:other/app:pull%20repository:ci/app:push,delete",
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let claims = token_for(&resp.json::<Value>().await.unwrap(), "reg");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!([]),
        "{claims}"
    );
    assert_eq!(
        claims["access"][1]["actions"],
        serde_json::json!(["push"]),
        "{claims}"
    );

    let out = regauth(&[
        "robot",
        "remove",
        "--file",
        file.to_str().unwrap(),
        "--name",
        "ci",
    ]);
    assert!(out.status.success());
    let removed_at = Instant::now();
    loop {
        match granted(&s, ("ci", &gone), "repository:ci/app:push").await {
            Err(401) => break,
            Ok(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            removed_at.elapsed() < Duration::from_secs(4),
            "still accepted after 4 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = removed_at.elapsed();
    assert!(took <= Duration::from_secs(2), "revoked after {took:?}");
    assert_eq!(
        s.post(&by_refresh("repository:ci/app:pull")).await.status(),
        401
    );
    // The other robot is untouched.
    assert_eq!(
        granted(&s, ("narrow", &keep), "repository:ci/app:pull").await,
        Ok(vec!["pull".into()])
    );
    watcher.abort();
}

#[test]
fn a_bad_robots_file_is_a_load_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.yaml");
    let good = "- name: ci\n  secret_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n  expires: 2030-01-01T00:00:00Z\n  scopes: [\"repository:ci/*:pull\"]\n";
    // (robots file, error parts)
    let cases: &[(String, &[&str])] = &[
        (
            good.replace("name: ci", "name: alice"),
            &["robot \"alice\" has the name of a user of users"],
        ),
        (
            good.replace("ci/*:pull", "ci/*:Pull"),
            &["line 4: robot[0].scopes: robot \"ci\"", "invalid action"],
        ),
        (
            good.replace("2030-01-01T00:00:00Z", "tomorrow"),
            &["line 3: robot[0].expires"],
        ),
        (
            format!("{good}{good}"),
            &["line 5: robot[1].name: robot \"ci\" appears twice"],
        ),
        (
            good.replace("scopes", "scope"),
            &["unknown field `scope`", "line 4"],
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&file, text).unwrap();
        let yaml = robots_config(dir.path(), "");
        let err = regauth::config::Config::from_yaml(&dir.path().join("config.yml"), &yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&file.display().to_string()), "{err}");
        for w in *want {
            assert!(err.contains(w), "{w} in {err}");
        }
    }
    std::fs::remove_file(&file).unwrap();
    let yaml = robots_config(dir.path(), "");
    let err =
        regauth::config::Config::from_yaml(&dir.path().join("config.yml"), &yaml).unwrap_err();
    assert!(
        err.to_string().contains("robots_file: cannot read"),
        "{err}"
    );
}

#[test]
fn the_example_robots_file_loads_and_lists() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/robots.yaml");
    let robots = regauth::config::robots::load(&example).unwrap();
    let names: Vec<&str> = robots.robots.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ci-pusher", "deployer"]);
    // Its hashes are of the secrets its comment names, which are no robot
    // secrets: nobody can log in as these robots.
    let table = regauth::authn::robots::RobotTable::new(robots.robots.iter().map(|r| {
        regauth::authn::robots::RobotEntry {
            name: r.name.clone(),
            sha256: r.secret_sha256,
            expires: r.expires,
            ceiling: r.ceiling.clone(),
            labels: r.labels.clone(),
        }
    }));
    for (name, secret) in [
        ("ci-pusher", "example-only-1"),
        ("deployer", "example-only-2"),
    ] {
        assert!(matches!(
            table.check(name, &regauth::secret::Secret::new(secret), 0),
            regauth::authn::robots::Check::Valid(_)
        ));
    }
    let out = regauth(&["robot", "list", "--file", example.to_str().unwrap()]);
    assert!(out.status.success());
}
