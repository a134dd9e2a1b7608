//! Brute-force throttling of password logins: failed authentications (401)
//! are counted per client address and per account, in memory, and a client
//! over a limit gets `429 Too Many Requests` with `Retry-After` **before**
//! any password is verified (no bcrypt, no LDAP bind).
//!
//! # What is counted
//!
//! Only *password attempts* — Basic credentials with a non-empty user, or a
//! POST with `grant_type=password` — are checked and counted. Anonymous
//! requests and refresh tokens guess nothing (a refresh token is signed) and
//! are never throttled. A 401 answer to a password attempt is one failure
//! for the client address and one for the account name; any other answer
//! (200, 400, 503, ...) counts nothing. A success does not reset a counter:
//! an attacker who owns one valid account must not be able to wipe their
//! address's failures by logging in between guesses.
//!
//! # Windows
//!
//! Each key (address or account) has a fixed window of `window` seconds
//! that starts at its first failure. While the window lasts, failures add
//! up; once the count reaches the limit, the key is refused until the window
//! ends, and `Retry-After` says when that is. Refused requests are not
//! counted (they cost nothing). Over time at most `limit` guesses per window
//! get through per key; right at a window's end a key can get `limit` more,
//! so the worst burst is just under `2 × limit`.
//!
//! # Address limit
//!
//! `max_failures_per_ip`: an address with that many failures in its window
//! is refused for every password attempt, whatever the account. IPv4
//! addresses are keyed whole, IPv6 addresses by their /64 (one host usually
//! holds a whole /64, so rotating the low bits buys nothing). The address is
//! the one the ACL sees: with `server.real_ip_header` set, the header's
//! entry at `real_ip_pos` — so the proxy in front must overwrite that header,
//! or clients could pick their own address.
//!
//! # Account limit, without locking the real user out
//!
//! `max_failures_per_account` counts failures for an account name from all
//! addresses together (a guessing campaign spread over many addresses). A
//! plain lock on the account would let anyone lock any user out by failing
//! ten times, so the account limit only refuses attempts from **addresses
//! that have failed themselves** in their current window (any account).
//! The legitimate user, logging in from another address with no recent
//! failure, is let through to the password check; the attacker, whose
//! addresses all have failures, is refused. An attacker with many fresh
//! addresses gets one guess per address before that address is refused too
//! (and still at most `max_failures_per_ip` per address and window).
//! Trade-offs, deliberately accepted: a real user who mistyped their
//! password while the account is under attack waits until the window ends;
//! users behind the same NAT address as an attacker share its address
//! limit. A correct password is never let through a refusal by checking the
//! credential cache: an answer that differed between right and wrong
//! passwords would be a guessing oracle that costs no bcrypt.
//!
//! Account names are keyed case-insensitively (LDAP binds usually are) and
//! by a hash, so a long name costs no more memory than a short one. Names
//! are counted whether or not the account exists: counting only existing
//! ones would tell an attacker which exist.
//!
//! # Memory
//!
//! Each table holds at most `max_tracked` keys (about 64 bytes each). When
//! a new key does not fit, expired windows are dropped first, then the
//! eighth of the table with the oldest windows. The state belongs to the
//! server, not to a configuration generation: a reload changes the limits
//! but keeps the counts.
//!
//! Concurrent attempts from one key are checked before any of them fails,
//! so a key can exceed its limit by the number of attempts in flight at
//! once; those are bounded by the password-verification pool (which refuses
//! with 503 when saturated).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ThrottleSettings;
use crate::metrics::Metrics;
use crate::service::Login;

/// Failure counts per address and per account (see the module doc).
#[derive(Debug, Default)]
pub struct Throttle {
    ips: Mutex<Tracker<IpKey>>,
    accounts: Mutex<Tracker<AccountKey>>,
    /// Addresses tracked (live or expired windows): while none is, every
    /// attempt passes without taking a lock.
    tracked_ips: AtomicUsize,
}

/// An IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&o[..8]);
                    IpKey::V6(p)
                }
            },
        }
    }
}

/// SHA-256 (first 16 bytes) of the lower-cased account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AccountKey([u8; 16]);

impl AccountKey {
    fn new(account: &str) -> AccountKey {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            account.to_lowercase().as_bytes(),
        );
        let mut k = [0u8; 16];
        k.copy_from_slice(&d.as_ref()[..16]);
        AccountKey(k)
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Tracker<K> {
    map: HashMap<K, Window>,
}

impl<K> Default for Tracker<K> {
    fn default() -> Self {
        Tracker {
            map: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Copy> Tracker<K> {
    /// The key's live window, if any.
    fn get(&self, k: &K, window: Duration, now: Instant) -> Option<Window> {
        self.map
            .get(k)
            .copied()
            .filter(|w| now.saturating_duration_since(w.start) < window)
    }

    fn fail(&mut self, k: K, window: Duration, max_tracked: usize, now: Instant) {
        if let Some(w) = self.map.get_mut(&k) {
            if now.saturating_duration_since(w.start) < window {
                w.failures = w.failures.saturating_add(1);
            } else {
                *w = Window {
                    start: now,
                    failures: 1,
                };
            }
            return;
        }
        let max_tracked = max_tracked.max(1);
        if self.map.len() >= max_tracked {
            self.map
                .retain(|_, w| now.saturating_duration_since(w.start) < window);
        }
        if self.map.len() >= max_tracked {
            // Still full of live windows: drop the oldest eighth at once, so
            // that the sort is paid once per many insertions.
            let mut starts: Vec<Instant> = self.map.values().map(|w| w.start).collect();
            let n = (starts.len() / 8).max(1);
            let (_, cut, _) = starts.select_nth_unstable(n - 1);
            let cut = *cut;
            self.map.retain(|_, w| w.start > cut);
            // Equal starts may leave it full; make room for one.
            while self.map.len() >= max_tracked {
                let Some(k) = self.map.keys().next().copied() else {
                    break;
                };
                self.map.remove(&k);
            }
        }
        self.map.insert(
            k,
            Window {
                start: now,
                failures: 1,
            },
        );
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Why an attempt was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
    pub by: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Ip,
    Account,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// Whether a password attempt for `account` from `ip` may go on to the
    /// password check.
    pub fn check(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        account: &str,
        now: Instant,
    ) -> Result<(), Refused> {
        // No address has failed: neither limit can apply.
        if self.tracked_ips.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let ip_window = lock(&self.ips).get(&IpKey::from(ip), s.window, now);
        let ip_end = ip_window.map(|w| w.start + s.window);
        if let (Some(w), Some(end)) = (ip_window, ip_end) {
            if s.max_failures_per_ip > 0 && w.failures >= s.max_failures_per_ip {
                return Err(Refused {
                    retry_after: end.saturating_duration_since(now),
                    by: Limit::Ip,
                });
            }
        }
        // The account limit only applies to addresses that failed recently.
        let Some(ip_end) = ip_end else { return Ok(()) };
        if s.max_failures_per_account == 0 || account.is_empty() {
            return Ok(());
        }
        let acct = lock(&self.accounts).get(&AccountKey::new(account), s.window, now);
        match acct {
            Some(w) if w.failures >= s.max_failures_per_account => {
                // Refused until the account's window ends or this address's
                // failures expire, whichever comes first.
                let end = (w.start + s.window).min(ip_end);
                Err(Refused {
                    retry_after: end.saturating_duration_since(now),
                    by: Limit::Account,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a failed password attempt.
    pub fn failed(&self, s: &ThrottleSettings, ip: IpAddr, account: &str, now: Instant) {
        {
            let mut ips = lock(&self.ips);
            ips.fail(IpKey::from(ip), s.window, s.max_tracked, now);
            self.tracked_ips.store(ips.len(), Ordering::Relaxed);
        }
        if !account.is_empty() {
            lock(&self.accounts).fail(AccountKey::new(account), s.window, s.max_tracked, now);
        }
    }

    /// Keys tracked: (addresses, accounts).
    pub fn tracked(&self) -> (usize, usize) {
        (lock(&self.ips).len(), lock(&self.accounts).len())
    }
}

/// The account a login guesses a password for: the user of a password
/// login (Basic, or a POST with `grant_type=password`) when not empty.
/// Anonymous requests and refresh tokens guess nothing.
pub fn guessed_account(login: &Login) -> Option<&str> {
    match login {
        Login::Password(c) if !c.user.is_empty() => Some(c.user.as_str()),
        _ => None,
    }
}

impl Throttle {
    /// Before a password is verified: refuses (counted in
    /// `regauth_rate_limited_total` and logged) when over a limit. Always
    /// admits when throttling is off.
    pub fn admit(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        account: &str,
        metrics: &Metrics,
    ) -> Result<(), Refused> {
        if !s.enabled() {
            return Ok(());
        }
        self.check(s, ip, account, Instant::now())
            .inspect_err(|refused| {
                metrics.rate_limited.inc();
                tracing::info!(
                    target: "regauth::audit",
                    outcome = "throttled",
                    %ip,
                    account,
                    limit = match refused.by { Limit::Ip => "ip", Limit::Account => "account" },
                    "too many failed logins"
                );
            })
    }

    /// After a password login was answered 401: counts the failure (nothing
    /// when throttling is off).
    pub fn record_failure(&self, s: &ThrottleSettings, ip: IpAddr, account: &str) {
        if s.enabled() {
            self.failed(s, ip, account, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
