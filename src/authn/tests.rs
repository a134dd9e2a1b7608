//! Chain tests: backend order, caching, the bounded pool and coalescing.
use std::time::Duration;

use super::*;

impl Chain {
    /// What the service's login does: the verdict at once, or a
    /// verification by the backends.
    async fn authenticate(&self, creds: Option<&Credentials>) -> Result<Verdict, AuthnError> {
        match self.without_backends(creds) {
            FirstLook::Answered(v) => Ok(v),
            FirstLook::NeedsBackend(c) => self.verify_with_backends(c).await,
        }
    }
}

fn chain(opts: ChainOptions, cost: u32) -> Chain {
    let users = PasswordTable::from_users([
        ("".to_string(), None, Labels::new()),
        (
            "alice".to_string(),
            Some(bcrypt::hash("pw", cost).unwrap()),
            Labels::from([("g".to_string(), vec!["a".to_string()])]),
        ),
    ])
    .unwrap();
    let ht = PasswordTable::from_htpasswd(&format!("bob:{}\n", bcrypt::hash("pw", cost).unwrap()))
        .unwrap();
    Chain::new(
        vec![
            Backend::Table {
                name: "users",
                table: Arc::new(users),
            },
            Backend::Table {
                name: "htpasswd",
                table: Arc::new(ht),
            },
        ],
        opts,
    )
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials {
        user: u.into(),
        password: Secret::new(p),
    }
}

#[tokio::test]
async fn chain_table() {
    let c = chain(ChainOptions::default(), 4);
    let g = Labels::from([("g".to_string(), vec!["a".to_string()])]);
    type Case<'a> = (Option<(&'a str, &'a str)>, Outcome, &'a str);
    let cases: &[Case] = &[
        (None, Outcome::Authenticated(Labels::new()), "users"),
        (
            Some(("", "anything")),
            Outcome::Authenticated(Labels::new()),
            "users",
        ),
        (
            Some(("alice", "pw")),
            Outcome::Authenticated(g.clone()),
            "users",
        ),
        (Some(("alice", "bad")), Outcome::Denied, "users"),
        (
            Some(("bob", "pw")),
            Outcome::Authenticated(Labels::new()),
            "htpasswd",
        ),
        (Some(("bob", "bad")), Outcome::Denied, "htpasswd"),
        (Some(("carol", "pw")), Outcome::NoMatch, "none"),
    ];
    for (cr, outcome, backend) in cases {
        let cr = cr.map(|(u, p)| creds(u, p));
        let v = c.authenticate(cr.as_ref()).await.unwrap();
        assert_eq!((&v.outcome, v.backend), (outcome, *backend), "{cr:?}");
    }
}

#[tokio::test]
async fn successes_are_cached_failures_are_not() {
    let c = chain(ChainOptions::default(), 4);
    let first = c.authenticate(Some(&creds("bob", "pw"))).await.unwrap();
    assert!(!first.cached);
    let second = c.authenticate(Some(&creds("bob", "pw"))).await.unwrap();
    assert!(second.cached);
    assert_eq!(second.backend, "htpasswd");
    for _ in 0..2 {
        let bad = c.authenticate(Some(&creds("bob", "bad"))).await.unwrap();
        assert!(!bad.cached && bad.outcome == Outcome::Denied);
    }
    assert_eq!(c.cache.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_burst_of_one_credential_runs_bcrypt_once() {
    // One worker and no queue: without coalescing, all but one of these
    // would be refused as Busy.
    let opts = ChainOptions {
        workers: 1,
        queue: 0,
        ..ChainOptions::default()
    };
    let c = chain(opts, 8);
    let burst: Vec<_> = (0..40)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.authenticate(Some(&creds("bob", "pw"))).await })
        })
        .collect();
    let mut uncached = 0;
    for t in burst {
        let v = t.await.unwrap().expect("no request refused");
        assert!(matches!(v.outcome, Outcome::Authenticated(_)));
        uncached += usize::from(!v.cached);
    }
    assert_eq!(uncached, 1, "one bcrypt for the whole burst");
    assert!(c.inflight.is_empty());
}

#[tokio::test]
async fn saturated_pool_fails_fast_and_cached_users_still_pass() {
    let opts = ChainOptions {
        workers: 1,
        queue: 0,
        ..ChainOptions::default()
    };
    let c = chain(opts, 12);
    // Warm the cache for alice.
    c.authenticate(Some(&creds("alice", "pw"))).await.unwrap();
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.authenticate(Some(&creds("bob", "pw"))).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = c.authenticate(Some(&creds("bob", "other"))).await;
    assert!(matches!(refused, Err(AuthnError::Busy)), "{refused:?}");
    let cached = c.authenticate(Some(&creds("alice", "pw"))).await.unwrap();
    assert!(
        cached.cached,
        "cached users are served while the pool is busy"
    );
    assert!(matches!(
        slow.await.unwrap().unwrap().outcome,
        Outcome::Authenticated(_)
    ));
}

#[test]
fn dummy_hash_takes_the_most_common_configured_cost() {
    let table = |costs: &[u32]| Backend::Table {
        name: "users",
        table: Arc::new(
            PasswordTable::from_users(costs.iter().enumerate().map(|(i, c)| {
                (
                    format!("u{i}"),
                    Some(bcrypt::hash("pw", *c).unwrap()),
                    Labels::new(),
                )
            }))
            .unwrap(),
        ),
    };
    let cost = |h: String| h.parse::<bcrypt::HashParts>().unwrap().get_cost();
    assert_eq!(dummy_hash(&[]), DUMMY_HASH);
    assert_eq!(cost(dummy_hash(&[table(&[4, 5, 5])])), 5);
    assert_eq!(
        cost(dummy_hash(&[table(&[4]), table(&[6])])),
        6,
        "tie: higher"
    );
    let h = dummy_hash(&[table(&[4])]);
    assert!(!super::hash::verify(&h, &Secret::new("")));
    assert!(!super::hash::verify(&h, &Secret::new("pw")));
}

/// An LDAP backend at `addr` (nothing listens there in these tests).
fn ldap(addr: &str, as_user: bool) -> Backend {
    let bind = if as_user {
        "bind_dn: \"uid=${account},ou=people,dc=x\"\ninitial_bind_as_user: true\n"
    } else {
        ""
    };
    let yaml = format!(
        "addr: {addr}\nbase: dc=x\nfilter: (uid=${{account}})\nconnect_timeout: 1\ntimeout: 2\n{bind}"
    );
    let raw: crate::config::ldap::RawLdap = serde_yaml::from_str(&yaml).unwrap();
    let settings = crate::config::ldap::settings(raw).unwrap();
    Backend::Ldap(Arc::new(ldap::Ldap::new(settings)))
}

#[tokio::test]
async fn labels_without_a_password() {
    let g = Labels::from([("g".to_string(), vec!["a".to_string()])]);
    let found = |backend, labels: &Labels| LabelSource::Found {
        backend,
        labels: labels.clone(),
    };
    let tables = chain(ChainOptions::default(), 4).backends().to_vec();
    let no_anonymous = vec![tables[1].clone()];
    let with = |mut backends: Vec<Backend>, extra: Backend| {
        backends.push(extra);
        Chain::new(backends, ChainOptions::default())
    };
    // A closed port on loopback: refused at once.
    let down = "127.0.0.1:1";
    let cases: Vec<(&str, Chain, &str, Result<LabelSource, ()>)> = vec![
        (
            "users: its labels",
            with(tables.clone(), ldap(down, false)),
            "alice",
            Ok(found("users", &g)),
        ),
        (
            "htpasswd: none",
            with(tables.clone(), ldap(down, false)),
            "bob",
            Ok(found("htpasswd", &Labels::new())),
        ),
        (
            "anonymous",
            with(tables.clone(), ldap(down, false)),
            "",
            Ok(found("users", &Labels::new())),
        ),
        (
            "anonymous not allowed",
            with(no_anonymous.clone(), ldap(down, false)),
            "",
            Ok(LabelSource::Unknown),
        ),
        (
            "unknown to the tables: LDAP asked, down",
            with(tables.clone(), ldap(down, false)),
            "carol",
            Err(()),
        ),
        (
            "LDAP binding as the user",
            with(tables.clone(), ldap(down, true)),
            "carol",
            Ok(LabelSource::NeedsPassword { backend: "ldap" }),
        ),
        (
            "unknown everywhere",
            Chain::new(tables.clone(), ChainOptions::default()),
            "carol",
            Ok(LabelSource::Unknown),
        ),
    ];
    for (what, chain, user, want) in cases {
        let got = chain.labels_of(user).await;
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{what}"),
            (Err(AuthnError::Unavailable { backend, .. }), Err(())) => {
                assert_eq!(backend, "ldap", "{what}");
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}
