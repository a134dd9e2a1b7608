use super::*;

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

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
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
