//! LDAP authentication against a real slapd (see [`crate::slapd`]): logins,
//! labels and groups, empty passwords that never reach the server,
//! injection attempts, TLS (LDAPS and StartTLS with a test CA), and the
//! server dying, hanging and coming back. [`http`]: the same through the
//! whole server.

mod http;

use std::time::{Duration, Instant};

use regauth::authn::ldap::Ldap;
use regauth::authn::{AuthnError, Outcome};
use regauth::core::Labels;
use regauth::secret::Secret;

use crate::slapd::{Slapd, BASE, READER_DN};

const FILTER: &str = "(&(objectClass=inetOrgPerson)(uid=${account}))";

/// `ldap_auth` with the service account, plus `extra` keys.
fn service_yaml(s: &Slapd, extra: &str) -> String {
    format!(
        "addr: \"{addr}\"\nbind_dn: \"{READER_DN}\"\nbind_password_file: \"{pw}\"\nbase: \"{BASE}\"\nfilter: \"{FILTER}\"\n{extra}",
        addr = s.addr(),
        pw = s.reader_password_file().display(),
    )
}

const LABELS: &str = r#"labels:
  dept: {attribute: departmentNumber, lower_case: true}
  teams: {attribute: seeAlso, parse_cn: true, lower_case: true}
group_search:
  base: "ou=groups,dc=example,dc=org"
  filter: "(&(objectClass=groupOfNames)(member=${dn}))"
  attribute: cn
  label: groups
"#;

fn backend(yaml: &str) -> Ldap {
    let raw = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let settings = regauth::config::ldap::settings(raw).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    Ldap::new(settings)
}

async fn auth(l: &Ldap, user: &str, password: &str) -> Result<Outcome, AuthnError> {
    l.login(user, &Secret::new(password))
        .await
        .map(|(outcome, _)| outcome)
}

fn labels(pairs: &[(&str, &[&str])]) -> Outcome {
    let l: Labels = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    Outcome::Authenticated(l)
}

#[track_caller]
fn reason(r: Result<Outcome, AuthnError>) -> String {
    match r {
        Err(AuthnError::Unavailable { backend, reason }) => {
            assert_eq!(backend, "ldap");
            reason
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn logins_labels_and_groups() {
    let s = Slapd::start();
    let l = backend(&service_yaml(&s, LABELS));
    let cases: Vec<(&str, &str, Outcome)> = vec![
        (
            "alice",
            "alicepw",
            labels(&[
                ("dept", &["platform"]),
                ("groups", &["devs"]),
                ("teams", &["developers"]),
            ]),
        ),
        (
            "bob",
            "bobpw",
            labels(&[("dept", &["ops"]), ("groups", &["ops"])]),
        ),
        // Her DN needs escaping in the group filter: \, ( ) *.
        ("jdoe", "jdoepw", labels(&[("groups", &["devs", "ops"])])),
        ("alice", "wrong", Outcome::Denied),
        ("alice", "alicepw ", Outcome::Denied),
        ("nobody", "alicepw", Outcome::NoMatch),
        ("", "alicepw", Outcome::NoMatch),
        ("alice", "", Outcome::Denied),
    ];
    for (user, pw, want) in cases {
        assert_eq!(auth(&l, user, pw).await.unwrap(), want, "{user}/{pw}");
    }
    // The same answer again (pooled connections), deterministically.
    for _ in 0..3 {
        assert_eq!(
            auth(&l, "jdoe", "jdoepw").await.unwrap(),
            labels(&[("groups", &["devs", "ops"])])
        );
    }
    l.ping().await.unwrap();
}

#[tokio::test]
async fn lookup_without_password_for_refresh() {
    let s = Slapd::start();
    let l = backend(&service_yaml(&s, LABELS));
    let (labels_now, record) = l.lookup("alice").await.unwrap().expect("alice exists");
    assert_eq!(
        Outcome::Authenticated(labels_now),
        auth(&l, "alice", "alicepw").await.unwrap()
    );
    assert!(String::from_utf8_lossy(&record).starts_with("uid=alice,"));
    assert_eq!(
        l.lookup("alice").await.unwrap().unwrap().1,
        record,
        "stable"
    );
    assert_eq!(l.lookup("nobody").await.unwrap(), None);
    assert_eq!(l.lookup("*").await.unwrap(), None);
    // A password change changes the record (refresh tokens are revoked).
    s.modify(&format!(
        "dn: uid=alice,ou=people,{BASE}\nchangetype: modify\nreplace: userPassword\nuserPassword: newpw\n"
    ));
    assert_ne!(l.lookup("alice").await.unwrap().unwrap().1, record);
    assert_eq!(auth(&l, "alice", "alicepw").await.unwrap(), Outcome::Denied);
}

#[tokio::test]
async fn empty_password_never_reaches_the_server() {
    let s = Slapd::start();
    let l = backend(&service_yaml(&s, ""));
    // Positive control: a real login shows up in the log as binds.
    let before = s.binds();
    assert!(matches!(
        auth(&l, "bob", "bobpw").await.unwrap(),
        Outcome::Authenticated(_)
    ));
    s.settle();
    assert!(s.binds() >= before + 2, "service + user bind logged");

    let (binds, accepts) = (s.binds(), s.accepts());
    for user in ["alice", "bob", "nobody", "*"] {
        assert_eq!(auth(&l, user, "").await.unwrap(), Outcome::Denied, "{user}");
    }
    s.settle();
    assert_eq!(
        (s.binds(), s.accepts()),
        (binds, accepts),
        "no bind, no connection"
    );
}

#[tokio::test]
async fn filter_injection_never_authenticates_or_widens() {
    let s = Slapd::start();
    let l = backend(&service_yaml(&s, ""));
    let attempts = [
        "*",
        "al*",
        "*lice",
        "*)(uid=*",
        ")(uid=*",
        "alice)(|(uid=*",
        "alice)(objectClass=*",
        "(uid=alice)",
        "alice\0",
        "\0",
        "alice\\00",
        "\\2a",
        "alice\\",
    ];
    for account in attempts {
        // Alice's password: a widened search finding her would log in.
        assert_eq!(
            auth(&l, account, "alicepw").await.unwrap(),
            Outcome::NoMatch,
            "{account:?}"
        );
    }
    // Server side: every user search was one equality match that found
    // nothing, and no user bind happened.
    s.settle();
    let searches = s.lines_with(&[" SRCH base=", "filter=\"(&(objectClass=inetOrgPerson)(uid="]);
    assert_eq!(searches.len(), attempts.len(), "{searches:#?}");
    for line in &searches {
        let filter = line
            .split("filter=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        assert_eq!(filter.matches('(').count(), 3, "{line}");
        assert!(!filter.contains('*'), "wildcard reached the server: {line}");
    }
    let results = s.lines_with(&[" SEARCH RESULT "]);
    assert!(
        results.iter().all(|l| l.contains("nentries=0")),
        "{results:#?}"
    );
    assert_eq!(s.lines_with(&[" BIND dn=\"uid="]).len(), 0, "no user bind");
}

#[tokio::test]
async fn dn_injection_with_initial_bind_as_user() {
    let s = Slapd::start();
    let yaml = format!(
        "addr: \"{}\"\ninitial_bind_as_user: true\nbind_dn: \"uid=${{account}},ou=people,{BASE}\"\nbase: \"{BASE}\"\nfilter: \"{FILTER}\"\n{LABELS}",
        s.addr()
    );
    let l = backend(&yaml);
    // Positive controls: a plain user, and one whose uid is full of DN
    // specials (it only works if they are escaped right).
    assert_eq!(
        auth(&l, "alice", "alicepw").await.unwrap(),
        labels(&[
            ("dept", &["platform"]),
            ("groups", &["devs"]),
            ("teams", &["developers"])
        ])
    );
    assert_eq!(
        auth(&l, "o,malley+co", "omalleypw").await.unwrap(),
        labels(&[])
    );
    assert_eq!(auth(&l, "alice", "wrong").await.unwrap(), Outcome::Denied);
    assert_eq!(auth(&l, "nobody", "x").await.unwrap(), Outcome::Denied);
    s.settle();
    let ok_binds = s.lines_with(&[" RESULT tag=97 err=0 "]).len();

    let attempts = [
        "alice,ou=people,dc=example,dc=org",
        "alice+cn=Alice Liddell",
        // BER form: unescaped, `uid=#0405616c696365` is uid=alice.
        "#0405616c696365",
        "alice;",
        "alice\0",
        "alice\\",
        "alice\"",
        "<alice>",
        "uid=alice",
        "*",
        "alice)(uid=*",
    ];
    for account in attempts {
        let got = auth(&l, account, "alicepw").await.unwrap();
        assert!(
            !matches!(got, Outcome::Authenticated(_)),
            "{account:?}: {got:?}"
        );
    }
    // Server side: not one of those binds succeeded.
    s.settle();
    assert_eq!(s.lines_with(&[" RESULT tag=97 err=0 "]).len(), ok_binds);
}

#[tokio::test]
async fn ambiguous_filter_is_unavailable_not_denied() {
    let s = Slapd::start();
    let l = backend(&service_yaml(&s, ""));
    let why = reason(auth(&l, "twin", "twinpw").await);
    assert!(why.contains("more than one entry"), "{why}");
    assert!(why.contains(&s.addr()), "names the server: {why}");
}

#[tokio::test]
async fn refused_service_bind_is_unavailable() {
    let s = Slapd::start();
    let pw = s.dir.path().join("wrong.pw");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let yaml = format!(
        "addr: \"{}\"\nbind_dn: \"{READER_DN}\"\nbind_password_file: \"{}\"\nbase: \"{BASE}\"\nfilter: \"{FILTER}\"\n",
        s.addr(),
        pw.display()
    );
    let l = backend(&yaml);
    let why = reason(auth(&l, "alice", "alicepw").await);
    assert!(
        why.contains("service bind") && !why.contains("not-the-password"),
        "{why}"
    );
    assert!(l.ping().await.is_err());
}

#[tokio::test]
async fn tls_ldaps_and_starttls() {
    let s = Slapd::start();
    let ca = s.ca();
    let other = s.other_ca();
    let pw = s.reader_password_file();
    let yaml = |addr: &str, tls: &str| {
        format!(
            "addr: \"{addr}\"\n{tls}\nbind_dn: \"{READER_DN}\"\nbind_password_file: \"{}\"\nbase: \"{BASE}\"\nfilter: \"{FILTER}\"\n",
            pw.display()
        )
    };
    let (plain, ldaps) = (s.addr(), s.tls_addr());
    let good = [
        yaml(
            &ldaps,
            &format!("tls: always\nca_certificate: \"{}\"", ca.display()),
        ),
        yaml(
            &plain,
            &format!("tls: starttls\nca_certificate: \"{}\"", ca.display()),
        ),
        yaml(&ldaps, "tls: always\ninsecure_tls_skip_verify: true"),
        yaml(&plain, "tls: starttls\ninsecure_tls_skip_verify: true"),
    ];
    for y in good {
        let l = backend(&y);
        assert!(
            matches!(
                auth(&l, "alice", "alicepw").await,
                Ok(Outcome::Authenticated(_))
            ),
            "{y}"
        );
        assert_eq!(auth(&l, "alice", "bad").await.unwrap(), Outcome::Denied);
    }
    // A certificate from the wrong CA is refused, over both.
    for y in [
        yaml(
            &ldaps,
            &format!("tls: always\nca_certificate: \"{}\"", other.display()),
        ),
        yaml(
            &plain,
            &format!("tls: starttls\nca_certificate: \"{}\"", other.display()),
        ),
    ] {
        let why = reason(auth(&backend(&y), "alice", "alicepw").await);
        assert!(why.contains("cannot connect"), "{why}");
    }
    // Every bind went over TLS: slapd logs each one's security strength.
    s.settle();
    let binds = s.lines_with(&[" BIND dn=", " mech=SIMPLE "]);
    assert!(!binds.is_empty());
    for b in binds {
        assert!(!b.ends_with(" ssf=0"), "bind without TLS: {b}");
    }
}

#[tokio::test]
async fn server_killed_hung_and_back() {
    let mut s = Slapd::start();
    let l = backend(&service_yaml(&s, "timeout: 1500ms\nconnect_timeout: 1s\n"));
    let ok = |r: Result<Outcome, AuthnError>| matches!(r, Ok(Outcome::Authenticated(_)));
    assert!(ok(auth(&l, "alice", "alicepw").await));

    // Killed: refused at once, naming the server.
    s.kill();
    let t = Instant::now();
    let why = reason(auth(&l, "alice", "alicepw").await);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(why.contains(&format!("ldap://{}", s.addr())), "{why}");
    assert!(l.ping().await.is_err());
    // Unknown users and empty passwords need no server.
    assert_eq!(auth(&l, "alice", "").await.unwrap(), Outcome::Denied);

    // Back: the same backend works again.
    s.restart();
    assert!(ok(auth(&l, "alice", "alicepw").await));
    l.ping().await.unwrap();

    // Restarted between two requests, before the pool noticed: the stale
    // connection is replaced and the request still succeeds.
    s.restart();
    assert!(ok(auth(&l, "bob", "bobpw").await));
    s.restart();
    l.ping().await.unwrap();
    assert!(l.lookup("bob").await.unwrap().is_some());

    // Hung (accepts, never answers): 503 within the timeout.
    s.signal("STOP");
    let t = Instant::now();
    let why = reason(auth(&l, "alice", "alicepw").await);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(why.contains("no answer within"), "{why}");
    s.signal("CONT");
    assert!(ok(auth(&l, "alice", "alicepw").await));
}

#[tokio::test]
async fn a_login_is_known_by_the_entrys_own_account_name() {
    let s = Slapd::start();
    // (filter, typed, the entry's spelling when it differs)
    let cases: &[(&str, &str, Option<&str>)] = &[
        (FILTER, "alice", None),
        (FILTER, "ALICE", Some("alice")),
        (FILTER, "aLiCe", Some("alice")),
        (
            "(|(uid=${account})(cn=${account}))",
            "BOB BUILDER",
            Some("Bob Builder"),
        ),
        ("(|(uid=${account})(cn=${account}))", "BOB", Some("bob")),
        // `${account}` in a substring assertion: the typed name is kept.
        (
            "(&(uid=${account}*)(objectClass=inetOrgPerson))",
            "ALICE",
            None,
        ),
    ];
    for (filter, typed, want) in cases {
        let yaml = service_yaml(&s, "").replace(FILTER, filter);
        let l = backend(&yaml);
        let pw = if typed.to_lowercase().starts_with("bob") {
            "bobpw"
        } else {
            "alicepw"
        };
        let (outcome, own) = l.login(typed, &Secret::new(pw)).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Authenticated(_)),
            "{filter} {typed}: {outcome:?}"
        );
        assert_eq!(own.as_deref(), *want, "{filter} {typed}");
    }
}
