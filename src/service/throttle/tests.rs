use super::*;

impl Throttle {
    /// Keys tracked: (addresses, accounts).
    fn tracked(&self) -> (usize, usize) {
        (lock(&self.ips).len(), lock(&self.accounts).len())
    }
}

fn settings(ip: u32, account: u32) -> ThrottleSettings {
    ThrottleSettings {
        window: Duration::from_secs(60),
        max_failures_per_ip: ip,
        max_failures_per_account: account,
        max_tracked: 1000,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ip_limit_refuses_until_the_window_ends() {
    let t = Throttle::new();
    let s = settings(3, 0);
    let t0 = Instant::now();
    for i in 0..3 {
        assert_eq!(t.check(&s, ip("10.0.0.1"), "u", t0), Ok(()), "attempt {i}");
        t.failed(&s, ip("10.0.0.1"), &format!("u{i}"), t0);
    }
    let later = t0 + Duration::from_secs(20);
    assert_eq!(
        t.check(&s, ip("10.0.0.1"), "anyone", later),
        Err(Refused {
            retry_after: Duration::from_secs(40),
            by: Limit::Ip
        })
    );
    assert_eq!(t.check(&s, ip("10.0.0.2"), "anyone", later), Ok(()));
    assert_eq!(
        t.check(&s, ip("10.0.0.1"), "anyone", t0 + Duration::from_secs(60)),
        Ok(()),
        "window over"
    );
}

#[test]
fn account_limit_spares_clean_addresses() {
    let t = Throttle::new();
    let s = settings(100, 2);
    let t0 = Instant::now();
    t.failed(&s, ip("10.0.0.1"), "alice", t0);
    t.failed(&s, ip("10.0.0.2"), "Alice", t0);
    // Both attackers' addresses are refused for alice (any case) ...
    for a in ["10.0.0.1", "10.0.0.2"] {
        let r = t.check(&s, ip(a), "ALICE", t0).unwrap_err();
        assert_eq!(r.by, Limit::Account);
    }
    // ... but not for other accounts, and a clean address may try alice.
    assert_eq!(t.check(&s, ip("10.0.0.1"), "bob", t0), Ok(()));
    assert_eq!(t.check(&s, ip("10.0.0.3"), "alice", t0), Ok(()));
    // A clean address that fails becomes dirty.
    t.failed(&s, ip("10.0.0.3"), "alice", t0);
    assert!(t.check(&s, ip("10.0.0.3"), "alice", t0).is_err());
}

#[test]
fn account_refusal_ends_with_the_address_window() {
    let t = Throttle::new();
    let s = settings(100, 1);
    let t0 = Instant::now();
    t.failed(&s, ip("10.0.0.1"), "alice", t0);
    let t1 = t0 + Duration::from_secs(30);
    t.failed(&s, ip("10.0.0.9"), "x", t1);
    // 10.0.0.9 failed at t1 (for another account): refused for alice
    // until alice's window ends at t0+60 (before its own at t1+60).
    let r = t.check(&s, ip("10.0.0.9"), "alice", t1).unwrap_err();
    assert_eq!(r.retry_after, Duration::from_secs(30));
}

#[test]
fn ipv6_is_keyed_by_slash_64_and_mapped_v4_as_v4() {
    let t = Throttle::new();
    let s = settings(1, 0);
    let t0 = Instant::now();
    t.failed(&s, ip("2001:db8:1:2::1"), "", t0);
    assert!(t.check(&s, ip("2001:db8:1:2:ffff::9"), "", t0).is_err());
    assert!(t.check(&s, ip("2001:db8:1:3::1"), "", t0).is_ok());
    t.failed(&s, ip("::ffff:10.1.1.1"), "", t0);
    assert!(t.check(&s, ip("10.1.1.1"), "", t0).is_err());
}

#[test]
fn zero_disables_a_limit() {
    let t = Throttle::new();
    let s = settings(0, 0);
    let t0 = Instant::now();
    for _ in 0..100 {
        t.failed(&s, ip("10.0.0.1"), "alice", t0);
    }
    assert_eq!(t.check(&s, ip("10.0.0.1"), "alice", t0), Ok(()));
}

#[test]
fn memory_is_bounded_and_the_oldest_go_first() {
    let t = Throttle::new();
    let mut s = settings(2, 2);
    s.max_tracked = 64;
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        let now = t0 + Duration::from_millis(u64::from(i));
        let a = IpAddr::from(i.to_be_bytes());
        t.failed(&s, a, &format!("user{i}"), now);
        let (ips, accounts) = t.tracked();
        assert!(ips <= 64 && accounts <= 64, "{ips} {accounts}");
    }
    // The newest keys survive.
    let now = t0 + Duration::from_millis(10_000);
    let newest = IpAddr::from(9_999u32.to_be_bytes());
    t.failed(&s, newest, "", now);
    assert!(t.check(&s, newest, "", now).is_err());
}

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        user: user.to_owned(),
        password: crate::secret::Secret::new(password),
    }
}

/// Failures counted for an address in its live window.
fn failures(t: &Throttle, s: &ThrottleSettings, a: &str, now: Instant) -> u32 {
    lock(&t.ips)
        .get(&IpKey::from(ip(a)), s.window, now)
        .map_or(0, |w| w.failures)
}

/// One failed attempt: admitted (or not) and counted as the throttle says.
fn fail(
    t: &Throttle,
    s: &ThrottleSettings,
    a: &str,
    method: Method,
    c: &Credentials,
    now: Instant,
) -> Result<Attempt, Refused> {
    let attempt = t.attempt(s, ip(a), c, method, now)?;
    t.attempt_failed(s, ip(a), c, attempt, now);
    Ok(attempt)
}

#[test]
fn a_get_repeating_a_failed_post_is_counted_once() {
    use Method::{Get, Post};
    // (what happens, attempts as (method, user, password, seconds after
    // the first), failures counted at the end, the last attempt's kind)
    type Step = (Method, &'static str, &'static str, u64);
    let cases: [(&str, &[Step], u32, &str); 10] = [
        (
            "containerd: POST then GET",
            &[(Post, "alice", "x", 0), (Get, "alice", "x", 0)],
            1,
            "Retry",
        ),
        (
            "the GET uses the marker up",
            &[
                (Post, "alice", "x", 0),
                (Get, "alice", "x", 0),
                (Get, "alice", "x", 1),
            ],
            2,
            "Get",
        ),
        (
            "same password alternating: once per pair",
            &[
                (Post, "alice", "x", 0),
                (Get, "alice", "x", 0),
                (Post, "alice", "x", 1),
                (Get, "alice", "x", 1),
            ],
            2,
            "Retry",
        ),
        (
            "different passwords alternating: every attempt",
            &[
                (Post, "alice", "a", 0),
                (Get, "alice", "b", 0),
                (Post, "alice", "c", 1),
                (Get, "alice", "d", 1),
            ],
            4,
            "Get",
        ),
        (
            "GET first, then POST: both",
            &[(Get, "alice", "x", 0), (Post, "alice", "x", 0)],
            2,
            "Post",
        ),
        (
            "another account's GET",
            &[(Post, "alice", "x", 0), (Get, "bob", "x", 0)],
            2,
            "Get",
        ),
        (
            "the account spelt otherwise: other credentials",
            &[(Post, "alice", "x", 0), (Get, "ALICE", "x", 0)],
            2,
            "Get",
        ),
        (
            "only the last POST is remembered",
            &[
                (Post, "alice", "a", 0),
                (Post, "alice", "b", 0),
                (Get, "alice", "a", 0),
            ],
            3,
            "Get",
        ),
        (
            "a GET after the retry window",
            &[(Post, "alice", "x", 0), (Get, "alice", "x", 10)],
            2,
            "Get",
        ),
        (
            "a GET within the retry window",
            &[(Post, "alice", "x", 0), (Get, "alice", "x", 9)],
            1,
            "Retry",
        ),
    ];
    for (what, steps, counted, last) in cases {
        let t = Throttle::new();
        let s = settings(100, 0);
        let t0 = Instant::now();
        let mut kind = None;
        for &(method, user, password, after) in steps {
            let now = t0 + Duration::from_secs(after);
            kind = Some(fail(&t, &s, "10.0.0.1", method, &creds(user, password), now).unwrap());
        }
        let end = t0 + Duration::from_secs(steps.last().unwrap().3);
        assert_eq!(failures(&t, &s, "10.0.0.1", end), counted, "{what}");
        let kind = match kind.unwrap() {
            Attempt::Get => "Get",
            Attempt::Post => "Post",
            Attempt::Retry => "Retry",
        };
        assert_eq!(kind, last, "{what}");
    }
}

#[test]
fn a_retry_is_admitted_at_the_limit_and_nothing_else_is() {
    let t = Throttle::new();
    let s = settings(2, 0);
    let t0 = Instant::now();
    let x = creds("alice", "x");
    for _ in 0..2 {
        fail(&t, &s, "10.0.0.1", Method::Post, &x, t0).unwrap();
        assert_eq!(
            fail(&t, &s, "10.0.0.1", Method::Get, &x, t0),
            Ok(Attempt::Retry)
        );
    }
    assert_eq!(failures(&t, &s, "10.0.0.1", t0), 2);
    // Another address's GET is no retry of this address's POST.
    fail(&t, &s, "10.0.0.2", Method::Post, &x, t0).unwrap();
    assert_eq!(
        fail(&t, &s, "10.0.0.3", Method::Get, &x, t0),
        Ok(Attempt::Get)
    );
    // At the limit: no new POST, no second GET, no other password.
    for (method, c) in [
        (Method::Post, &x),
        (Method::Get, &x),
        (Method::Get, &creds("alice", "y")),
    ] {
        let r = t.attempt(&s, ip("10.0.0.1"), c, method, t0);
        assert_eq!(r.unwrap_err().by, Limit::Ip, "{method:?}");
    }
}

#[test]
fn markers_are_bounded_and_hold_no_password() {
    let t = Throttle::new();
    let mut s = settings(1_000_000, 0);
    s.max_tracked = 64;
    let t0 = Instant::now();
    for i in 0..1_000u32 {
        let now = t0 + Duration::from_millis(u64::from(i));
        let a = IpAddr::from(i.to_be_bytes());
        let c = creds("alice", "hunter2");
        let attempt = t.attempt(&s, a, &c, Method::Post, now).unwrap();
        t.attempt_failed(&s, a, &c, attempt, now);
        assert!(lock(&t.markers).len() <= 64);
    }
    let held = format!("{:?}", lock(&t.markers));
    assert!(!held.contains("hunter2"), "{held}");
    // The fingerprint depends on the process's key: two servers differ.
    let c = creds("alice", "hunter2");
    assert_ne!(Throttle::new().fingerprint(&c), t.fingerprint(&c));
    assert_eq!(t.fingerprint(&c), t.fingerprint(&creds("alice", "hunter2")));
    assert_ne!(t.fingerprint(&c), t.fingerprint(&creds("alice", "hunter3")));
    assert_ne!(
        t.fingerprint(&creds("a:b", "c")),
        t.fingerprint(&creds("a", "b:c"))
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// An attacker mixing POSTs and GETs with a few passwords, all
        /// within one window: at most `limit` attempts are counted and let
        /// through as fresh guesses, and every retry let through repeats a
        /// password already counted as wrong — so no password is ever
        /// tried without being counted.
        #[test]
        fn alternating_methods_tests_no_uncounted_password(
            ops in proptest::collection::vec((any::<bool>(), 0u8..3, 0u64..20), 1..100),
            limit in 1u32..6,
        ) {
            let t = Throttle::new();
            let s = settings(limit, 0);
            let t0 = Instant::now();
            let mut clock = 0u64;
            let mut fresh = 0u32;
            let mut counted_passwords = std::collections::HashSet::new();
            for (post, pw, dt) in ops {
                clock = (clock + dt).min(590);
                let now = t0 + Duration::from_millis(clock * 100);
                let method = if post { Method::Post } else { Method::Get };
                let c = creds("alice", &format!("guess{pw}"));
                match t.attempt(&s, ip("10.0.0.1"), &c, method, now) {
                    Ok(Attempt::Retry) => {
                        prop_assert!(!post);
                        prop_assert!(counted_passwords.contains(&pw));
                        t.attempt_failed(&s, ip("10.0.0.1"), &c, Attempt::Retry, now);
                    }
                    Ok(attempt) => {
                        fresh += 1;
                        prop_assert!(fresh <= limit);
                        counted_passwords.insert(pw);
                        t.attempt_failed(&s, ip("10.0.0.1"), &c, attempt, now);
                    }
                    Err(_) => {}
                }
            }
        }

        /// Whatever the sequence of failures, an address is let through
        /// at most `limit` times per window before being refused, and
        /// refused answers always carry a retry time within the window.
        #[test]
        fn never_more_than_limit_per_window(
            ops in proptest::collection::vec((0u8..4, 0u64..200), 1..200),
            limit in 1u32..6,
        ) {
            let t = Throttle::new();
            let s = settings(limit, 0);
            let t0 = Instant::now();
            let mut clock = 0u64;
            // Per address: (window start, attempts let through in it).
            let mut seen: HashMap<u8, (u64, u32)> = HashMap::new();
            for (a, dt) in ops {
                clock += dt;
                let now = t0 + Duration::from_millis(clock * 100);
                let addr = IpAddr::from([10, 0, 0, a]);
                match t.check(&s, addr, "", now) {
                    Ok(()) => {
                        let e = seen.entry(a).or_insert((clock, 0));
                        if (clock - e.0) * 100 >= 60_000 {
                            *e = (clock, 0);
                        }
                        e.1 += 1;
                        prop_assert!(e.1 <= limit);
                        t.failed(&s, addr, "", now);
                    }
                    Err(r) => {
                        prop_assert!(r.retry_after <= s.window);
                        prop_assert!(!r.retry_after.is_zero());
                    }
                }
            }
        }
    }
}
