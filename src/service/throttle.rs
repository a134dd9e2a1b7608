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
//! for the client address and one for the account name (except a GET that
//! repeats a refused POST, see below); any other answer (200, 400, 503,
//! ...) counts nothing. A success does not reset a counter:
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
//! # containerd's GET retry
//!
//! containerd, holding a password, asks with `POST grant_type=password`
//! first and repeats the same credentials as a `GET` with Basic when the
//! POST is refused (400, 401, 404 or 405). One wrong password from
//! containerd is therefore two 401s; counted as two, a user would reach
//! the address limit after half the attempts the operator configured.
//!
//! A failed POST leaves a *marker* for its address and account: a keyed
//! fingerprint of user and password (HMAC-SHA256 under a random key made
//! when the server starts, truncated to 128 bits; the password itself is
//! never stored), kept for [`RETRY_WINDOW`]. A GET with Basic credentials
//! for the same address and account whose fingerprint equals the marker's
//! takes the marker away and is a *retry*: it is let through even when the
//! POST's failure reached a limit, its failure is not counted again, and
//! its audit line says `retry_of_post=true`. Anything else — another
//! password, another account or address, a second GET, a GET after the
//! window — is counted as usual.
//!
//! What an attacker who alternates methods on purpose gains: nothing. A
//! retry repeats a password that was just counted as wrong, so it tests no
//! new guess; each marker lets one GET through, and only a counted POST
//! failure makes a marker, which needs an admitted POST. POST/GET/POST/GET
//! with the same password counts each pair once; with different passwords,
//! every attempt is counted. Every password let through as a retry had
//! just been counted as wrong.
//!
//! Markers are keyed like the two tables (address, lower-cased account)
//! and bounded by `max_tracked` in the same way; only the last failed POST
//! per address and account is remembered.
//!
//! # Memory
//!
//! Each table (and the markers) holds at most `max_tracked` keys (about
//! 64 bytes each). When a new key does not fit, expired windows are
//! dropped first, then the eighth of the table with the oldest windows. The state belongs to the
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

use aws_lc_rs::hmac;

use crate::authn::Credentials;
use crate::config::ThrottleSettings;
use crate::metrics::Metrics;
use crate::service::Login;

/// How long a failed POST's marker waits for containerd's GET retry, which
/// follows at once.
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(10);

/// Failure counts per address and per account (see the module doc).
#[derive(Debug)]
pub(crate) struct Throttle {
    ips: Mutex<Tracker<IpKey>>,
    accounts: Mutex<Tracker<AccountKey>>,
    /// Addresses tracked (live or expired windows): while none is, every
    /// attempt passes without taking a lock.
    tracked_ips: AtomicUsize,
    /// The last failed POST per address and account.
    markers: Mutex<HashMap<(IpKey, AccountKey), Marker>>,
    /// Markers held: while none is, a GET computes no fingerprint.
    tracked_markers: AtomicUsize,
    /// Key of the credential fingerprints (random per process).
    key: hmac::Key,
}

impl Default for Throttle {
    fn default() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Throttle {
            ips: Mutex::default(),
            accounts: Mutex::default(),
            tracked_ips: AtomicUsize::new(0),
            markers: Mutex::default(),
            tracked_markers: AtomicUsize::new(0),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }
}

/// A keyed hash of a user and password: equal for equal credentials, and
/// useless for guessing the password without the process's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint([u8; 16]);

/// A failed POST, waiting for its GET retry.
#[derive(Debug, Clone, Copy)]
struct Marker {
    fingerprint: Fingerprint,
    at: Instant,
}

/// How an admitted password attempt is counted if it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A GET (Basic): one failure.
    Get,
    /// A `POST grant_type=password`: one failure, and a marker for a GET
    /// retry with the same credentials.
    Post,
    /// A GET repeating the credentials of a POST that failed within
    /// [`RETRY_WINDOW`]: that failure was counted already.
    Retry,
}

/// The method that carried a request (a GET unless said otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Post,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// An IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let mut p = [0u8; 8];
                p.copy_from_slice(&o[..8]);
                IpKey::V6(p)
            }
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
        make_room(&mut self.map, max_tracked, window, now, |w| w.start);
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

/// Makes room for one more key in `map` (at most `max_tracked` keys):
/// drops the entries older than `window` first, then the oldest eighth.
fn make_room<K: Eq + Hash + Copy, V>(
    map: &mut HashMap<K, V>,
    max_tracked: usize,
    window: Duration,
    now: Instant,
    start: impl Fn(&V) -> Instant,
) {
    let max_tracked = max_tracked.max(1);
    if map.len() >= max_tracked {
        map.retain(|_, v| now.saturating_duration_since(start(v)) < window);
    }
    if map.len() >= max_tracked {
        // Still full of live entries: drop the oldest eighth at once, so
        // that the sort is paid once per many insertions.
        let mut starts: Vec<Instant> = map.values().map(&start).collect();
        let n = (starts.len() / 8).max(1);
        let (_, cut, _) = starts.select_nth_unstable(n - 1);
        let cut = *cut;
        map.retain(|_, v| start(v) > cut);
        // Equal starts may leave it full; make room for one.
        while map.len() >= max_tracked {
            let Some(k) = map.keys().next().copied() else {
                break;
            };
            map.remove(&k);
        }
    }
}

/// Why an attempt was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) retry_after: Duration,
    pub(crate) by: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Ip,
    Account,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    pub(crate) fn new() -> Throttle {
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
    pub(crate) fn failed(&self, s: &ThrottleSettings, ip: IpAddr, account: &str, now: Instant) {
        {
            let mut ips = lock(&self.ips);
            ips.fail(IpKey::from(ip), s.window, s.max_tracked, now);
            self.tracked_ips.store(ips.len(), Ordering::Relaxed);
        }
        if !account.is_empty() {
            lock(&self.accounts).fail(AccountKey::new(account), s.window, s.max_tracked, now);
        }
    }

    /// The keyed fingerprint of `creds`.
    fn fingerprint(&self, creds: &Credentials) -> Fingerprint {
        let mut mac = hmac::Context::with_key(&self.key);
        // Length-prefix the user so ("a:b", "c") and ("a", "b:c") differ.
        mac.update(&(creds.user.len() as u64).to_be_bytes());
        mac.update(creds.user.as_bytes());
        mac.update(creds.password.expose().as_bytes());
        let mut f = [0u8; 16];
        f.copy_from_slice(&mac.sign().as_ref()[..16]);
        Fingerprint(f)
    }

    /// Remembers a failed POST's credentials for a GET retry, replacing
    /// the address and account's previous marker.
    fn mark(&self, s: &ThrottleSettings, ip: IpAddr, account: &str, fp: Fingerprint, now: Instant) {
        let key = (IpKey::from(ip), AccountKey::new(account));
        let mut markers = lock(&self.markers);
        if !markers.contains_key(&key) {
            make_room(&mut markers, s.max_tracked, RETRY_WINDOW, now, |m| m.at);
        }
        markers.insert(
            key,
            Marker {
                fingerprint: fp,
                at: now,
            },
        );
        self.tracked_markers.store(markers.len(), Ordering::Relaxed);
    }

    /// Whether a GET with credentials `fp` is the retry of a POST that
    /// failed within [`RETRY_WINDOW`] from `ip` for `account`; if so, the
    /// marker is used up.
    fn take_retry(&self, ip: IpAddr, account: &str, fp: Fingerprint, now: Instant) -> bool {
        let key = (IpKey::from(ip), AccountKey::new(account));
        let mut markers = lock(&self.markers);
        let hit = markers.get(&key).is_some_and(|m| {
            m.fingerprint == fp && now.saturating_duration_since(m.at) < RETRY_WINDOW
        });
        if hit {
            markers.remove(&key);
            self.tracked_markers.store(markers.len(), Ordering::Relaxed);
        }
        hit
    }

    /// Admission of a password attempt at `now`: a GET that retries a
    /// failed POST passes whatever the counts; anything else is checked
    /// against the limits.
    fn attempt(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        creds: &Credentials,
        method: Method,
        now: Instant,
    ) -> Result<Attempt, Refused> {
        let account = creds.user.as_str();
        match method {
            Method::Get => {
                if self.tracked_markers.load(Ordering::Relaxed) > 0
                    && self.take_retry(ip, account, self.fingerprint(creds), now)
                {
                    return Ok(Attempt::Retry);
                }
                self.check(s, ip, account, now).map(|()| Attempt::Get)
            }
            Method::Post => self.check(s, ip, account, now).map(|()| Attempt::Post),
        }
    }

    /// Counts the failure of an admitted attempt at `now`. A POST's
    /// fingerprint is computed here, so a successful login computes none.
    fn attempt_failed(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        creds: &Credentials,
        attempt: Attempt,
        now: Instant,
    ) {
        let account = creds.user.as_str();
        match attempt {
            Attempt::Retry => {}
            Attempt::Get => self.failed(s, ip, account, now),
            Attempt::Post => {
                self.failed(s, ip, account, now);
                self.mark(s, ip, account, self.fingerprint(creds), now);
            }
        }
    }
}

/// The credentials a login guesses: those of a password login (Basic, or
/// a POST with `grant_type=password`) with a non-empty user, an ID token
/// under a federation binding's name included, and a token exchange's
/// subject token. Anonymous requests and refresh tokens guess nothing.
pub(crate) fn guess(login: &Login) -> Option<&Credentials> {
    match login {
        Login::Password(c) | Login::Exchange(c) if !c.user.is_empty() => Some(c),
        _ => None,
    }
}

impl Throttle {
    /// Before a password is verified: refuses (counted in
    /// `regauth_rate_limited_total` and logged) when over a limit, and
    /// otherwise says how a failure will be counted. Always admits when
    /// throttling is off.
    pub(crate) fn admit(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        creds: &Credentials,
        method: Method,
        metrics: &Metrics,
    ) -> Result<Attempt, Refused> {
        if !s.enabled() {
            return Ok(Attempt::Get);
        }
        let account = creds.user.as_str();
        self.attempt(s, ip, creds, method, Instant::now())
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

    /// After a password login with `creds` admitted as `attempt` was
    /// answered 401: counts the failure (nothing when throttling is off,
    /// or for a retry).
    pub(crate) fn record_failure(
        &self,
        s: &ThrottleSettings,
        ip: IpAddr,
        creds: &Credentials,
        attempt: Attempt,
    ) {
        if s.enabled() {
            self.attempt_failed(s, ip, creds, attempt, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
