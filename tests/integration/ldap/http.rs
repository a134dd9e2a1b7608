//! LDAP through the whole server: `ldap_auth` in the config file, static
//! users beside it, group labels deciding what the ACL grants, 401s, 503s
//! while the directory is down, and recovery without a restart.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::slapd::{Slapd, BASE, READER_DN};
use crate::support::{hash, server_and_token_yaml, verify, Server};

fn config(s: &Slapd) -> String {
    format!(
        r#"{head}users:
  ci: {{password: "{ci}"}}
ldap_auth:
  addr: "{addr}"
  tls: starttls
  ca_certificate: "{ca}"
  bind_dn: "{READER_DN}"
  bind_password_file: "{pw}"
  base: "{BASE}"
  filter: "(&(objectClass=inetOrgPerson)(uid=${{account}}))"
  labels:
    teams: {{attribute: seeAlso, parse_cn: true, lower_case: true}}
  group_search:
    base: "ou=groups,{BASE}"
    filter: "(&(objectClass=groupOfNames)(member=${{dn}}))"
    attribute: cn
    label: groups
  timeout: 1s
acl:
  - match: {{account: "ci"}}
    actions: ["pull"]
    comment: "static CI user pulls everything"
  - match: {{labels: {{groups: "devs"}}, name: "dev/*"}}
    actions: ["pull", "push"]
    comment: "devs push dev/*"
  - match: {{labels: {{groups: "ops"}}, name: "ops/*"}}
    actions: ["pull"]
    comment: "ops pull ops/*"
  - match: {{labels: {{teams: "developers"}}, name: "team/*"}}
    actions: ["pull"]
    comment: "a label from a DN-valued attribute (parse_cn)"
"#,
        head = server_and_token_yaml("p256", ""),
        ci = hash("ci-pw"),
        addr = s.addr(),
        ca = s.ca().display(),
        pw = s.reader_password_file().display(),
    )
}

const SCOPES: &str = "service=reg&scope=repository:dev/app:push,pull&scope=repository:ops/tool:pull&scope=repository:team/x:pull";

async fn access(srv: &Server, user: &str, pw: &str) -> Value {
    let resp = srv.get(&format!("/auth?{SCOPES}"), Some((user, pw))).await;
    assert_eq!(resp.status(), 200, "{user}");
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["sub"], user);
    claims["access"].clone()
}

fn grants(dev: &[&str], ops: &[&str], team: &[&str]) -> Value {
    json!([
        {"type": "repository", "name": "dev/app", "actions": dev},
        {"type": "repository", "name": "ops/tool", "actions": ops},
        {"type": "repository", "name": "team/x", "actions": team},
    ])
}

async fn status(srv: &Server, user: &str, pw: &str) -> u16 {
    srv.get(&format!("/auth?{SCOPES}"), Some((user, pw)))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn ldap_users_get_what_their_groups_grant() {
    let s = Slapd::start();
    let srv = Server::start(&config(&s)).await;
    assert_eq!(
        access(&srv, "alice", "alicepw").await,
        grants(&["pull", "push"], &[], &["pull"])
    );
    assert_eq!(
        access(&srv, "bob", "bobpw").await,
        grants(&[], &["pull"], &[])
    );
    assert_eq!(
        access(&srv, "jdoe", "jdoepw").await,
        grants(&["pull", "push"], &["pull"], &[])
    );
    assert_eq!(
        access(&srv, "ci", "ci-pw").await,
        grants(&["pull"], &["pull"], &["pull"])
    );

    for (user, pw) in [
        ("alice", "wrong"),
        ("nobody", "alicepw"),
        ("*", "alicepw"),
        ("ci", "alicepw"),
    ] {
        let resp = srv.get(&format!("/auth?{SCOPES}"), Some((user, pw))).await;
        assert_eq!(resp.status(), 401, "{user}/{pw}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }

    // An empty password is refused before anything reaches the directory.
    s.settle();
    let (binds, accepts) = (s.binds(), s.accepts());
    for user in ["alice", "bob", "nobody"] {
        assert_eq!(status(&srv, user, "").await, 401, "{user}");
    }
    s.settle();
    assert_eq!((s.binds(), s.accepts()), (binds, accepts));

    let ready = srv.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn directory_down_then_back_without_restart() {
    let mut s = Slapd::start();
    let srv = Server::start(&config(&s)).await;
    assert_eq!(status(&srv, "alice", "alicepw").await, 200);

    s.kill();
    // Users the directory must answer for: 503 within the timeout (1s).
    for (user, pw) in [("bob", "bobpw"), ("alice", "wrong"), ("nobody", "x")] {
        let t = Instant::now();
        let resp = srv.get(&format!("/auth?{SCOPES}"), Some((user, pw))).await;
        assert_eq!(resp.status(), 503, "{user}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{user}: {:?}",
            t.elapsed()
        );
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("127.0.0.1"),
            "internals stay in the log: {body}"
        );
    }
    // Static users never touch LDAP.
    assert_eq!(
        access(&srv, "ci", "ci-pw").await,
        grants(&["pull"], &["pull"], &["pull"])
    );
    assert_eq!(status(&srv, "ci", "bad").await, 401);
    assert_eq!(srv.get("/readyz", None).await.status(), 503);

    s.restart();
    assert_eq!(
        access(&srv, "bob", "bobpw").await,
        grants(&[], &["pull"], &[])
    );
    assert_eq!(status(&srv, "alice", "wrong").await, 401);
    assert_eq!(srv.get("/readyz", None).await.status(), 200);
}

/// `regauth explain` for `account` on `yaml` (written to a temp file),
/// with the three scopes of [`SCOPES`]: (exit code, stdout, stderr).
fn explain(yaml: &str, account: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args([
            "explain",
            "--config",
            path.to_str().unwrap(),
            "--account",
            account,
        ])
        .args(["--service", "reg"])
        .args(["--scope", "repository:dev/app:push,pull"])
        .args(["--scope", "repository:ops/tool:pull"])
        .args(["--scope", "repository:team/x:pull"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `  granted: [...]` lines of `explain`'s output, in order.
fn granted_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("  granted: "))
        .collect()
}

#[tokio::test]
async fn explain_takes_ldap_labels_as_a_login_would() {
    let mut s = Slapd::start();
    // No readable signing key: explain does not need one.
    let key = crate::support::fixture("keys/p256.pem");
    let yaml = config(&s).replace(&key.display().to_string(), "/nonexistent/token.key");
    assert_ne!(yaml, config(&s));

    let (code, out, err) = explain(&yaml, "alice");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nlabels: {groups: [devs], teams: [developers]} (from ldap)\n"),
        "{out}"
    );
    // The grant a login with the password gets.
    let srv = Server::start(&config(&s)).await;
    assert_eq!(
        access(&srv, "alice", "alicepw").await,
        grants(&["pull", "push"], &[], &["pull"])
    );
    assert_eq!(
        granted_lines(&out),
        ["[pull,push]", "[]", "[pull]"],
        "{out}"
    );
    // Static users beside LDAP come first, as in a login.
    let (_, out, _) = explain(&yaml, "ci");
    assert!(out.contains("\nlabels: {} (from users)\n"), "{out}");
    let (_, out, _) = explain(&yaml, "nobody");
    assert!(
        out.contains("\nlabels: {} (no backend knows \"nobody\": a login would be refused)\n"),
        "{out}"
    );

    // Binding as the user needs the password: said, and no labels.
    let as_user = yaml.replace(
        &format!("  bind_dn: \"{READER_DN}\""),
        "  bind_dn: \"uid=${account},ou=people,dc=example,dc=org\"\n  initial_bind_as_user: true",
    );
    let (code, out, err) = explain(&as_user, "alice");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ldap is searched as the user"), "{out}");
    assert_eq!(granted_lines(&out), ["[]", "[]", "[]"], "{out}");

    // The directory down: said, and the ACL evaluated without labels.
    s.kill();
    let (code, out, err) = explain(&yaml, "alice");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nlabels: {} (ldap unavailable: ")
            && out.contains("; continuing without labels)\n"),
        "{out}"
    );
    assert_eq!(granted_lines(&out), ["[]", "[]", "[]"], "{out}");
}

/// slapd matches `uid` ignoring case, so `ALICE` logs in as alice's entry:
/// the token, the ACL and the cache all see the entry's `alice`, and a
/// rule that denies alice denies `ALICE` too.
#[tokio::test]
async fn a_name_typed_in_another_case_is_the_entrys_own() {
    let s = Slapd::start();
    let deny_alice = r#"acl:
  - match: {account: "alice", name: "dev/*"}
    actions: []
    comment: "alice may not touch dev/*"
  - match: {account: "ci"}"#;
    let yaml = config(&s).replacen("acl:\n  - match: {account: \"ci\"}", deny_alice, 1);
    assert_ne!(yaml, config(&s));
    let srv = Server::start(&yaml).await;
    // Twice each: a verification, then a cache hit.
    for user in ["alice", "ALICE", "Alice", "ALICE"] {
        let resp = srv
            .get(&format!("/auth?{SCOPES}"), Some((user, "alicepw")))
            .await;
        assert_eq!(resp.status(), 200, "{user}");
        let body: Value = resp.json().await.unwrap();
        let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
        assert_eq!(claims["sub"], "alice", "{user}");
        // dev/* denied by the first rule; team/x from the label rule.
        assert_eq!(claims["access"], grants(&[], &[], &["pull"]), "{user}");
    }
    // The `account` parameter is checked against what was typed.
    let resp = srv
        .get(
            &format!("/auth?{SCOPES}&account=ALICE"),
            Some(("ALICE", "alicepw")),
        )
        .await;
    assert_eq!(resp.status(), 200);
}
