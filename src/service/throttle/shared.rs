//! Failure counts shared by replicas through Redis (`throttle.redis`).
//!
//! Several regauth processes behind one load balancer would otherwise each
//! allow `max_failures_per_ip` guesses: N replicas, N times the guesses.
//! With `throttle.redis` every replica reads and increments the same
//! counts, so the limits hold for the whole deployment.
//!
//! # What Redis holds
//!
//! Per key, a counter that expires with the window: a failure runs one Lua
//! script that increments the address's and the account's counters and,
//! for a counter it just created, sets its expiry to `window` (atomic, one
//! round trip; the window starts at the first failure as in the local
//! throttle). For a failed POST the same script stores the credentials'
//! fingerprint for containerd's GET retry, expiring after the retry window,
//! so a GET that reaches another replica is still recognised as the retry.
//! Admission runs a second script that reads both counters with their
//! remaining time, and, for a GET, takes the retry marker when its
//! fingerprint matches: again one round trip. The per-account rule keeps
//! its meaning: an account over its limit refuses the addresses whose
//! *shared* count shows failures, wherever those failures happened.
//!
//! # Keys without names or passwords
//!
//! Redis never sees an account name, a password or a client address. Every
//! key and fingerprint is an HMAC-SHA256 (128 bits kept, hex) under a key
//! derived from the token signing key, like the refresh-token key: all
//! replicas that sign for one registry hold that key, so they compute the
//! same names, and whoever reads Redis (or a dump of it) cannot test
//! account names or passwords against them without the signing key. An
//! unkeyed hash would have been enough to bound memory, which is all the
//! local table's account hash is for, but not here: a stored password
//! fingerprint must not be open to a dictionary. Two deployments sharing
//! one Redis database do not mix their counts (different signing keys).
//! A signing-key rotation starts new counts; the old ones expire with
//! their window.
//!
//! # Redis unreachable or slow
//!
//! Every call is bounded by [`CALL_TIMEOUT`]. A call that fails or times
//! out is counted in `regauth_throttle_redis_errors_total`, the gauge
//! `regauth_throttle_redis_up` drops to 0, one warning is logged for the
//! outage, and the attempt is decided by the in-process throttle; for
//! [`PROBE_AFTER`] no request waits on Redis again, then one request
//! probes it. The first call that succeeds logs one line and shares the
//! counts again. A login never fails because of Redis. Failures are always
//! also counted in the process, so the local throttle has this replica's
//! recent failures when Redis goes away, and a local refusal stands while
//! Redis answers (the local count is a lower bound of the shared one,
//! unless Redis lost its data).
//!
//! # Cost on the request path
//!
//! Only the attempts the throttle counts (password logins and the
//! credential exchanges it treats alike; anonymous requests and refresh
//! tokens are never throttled) touch Redis: one round trip at admission
//! and one more when the attempt fails. A cached login from a CI job thus pays one
//! round trip to Redis; with no `throttle.redis` the path is the local
//! throttle's, unchanged.
//!
//! # Across reloads
//!
//! The client (one multiplexed connection, reconnected on error) belongs
//! to the [`Throttle`](super::Throttle), like the local counts, and so
//! outlives generations; the `TokenService` makes it follow the running
//! generation's URL: a reload that keeps the URL keeps the connection and
//! the outage state; one that changes it replaces the client. The key
//! belongs to the generation, as it comes from its signing key.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, Script, ScriptInvocation};
use aws_lc_rs::hmac;

use super::{lock, IpKey, Limit, Refused, RETRY_WINDOW};
use crate::authn::Credentials;
use crate::config::{RedisUrl, ThrottleSettings};
use crate::metrics::Metrics;

/// Longest wait for one Redis call (connecting included).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// After a failed call, how long requests are decided locally before one
/// probes Redis again.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(1);

/// KEYS: address counter, account counter, retry marker. ARGV[1]: the
/// GET's credential fingerprint, or "" for a POST. Returns
/// `{retry, ip count, ip ms left, account count, account ms left}`.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local retry = 0
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
  retry = 1
end
local ip = tonumber(redis.call('GET', KEYS[1]) or '0')
local ac = tonumber(redis.call('GET', KEYS[2]) or '0')
return {retry, ip, redis.call('PTTL', KEYS[1]), ac, redis.call('PTTL', KEYS[2])}
",
    )
});

/// KEYS: address counter, account counter, retry marker. ARGV: window ms,
/// the POST's fingerprint or "", retry window ms.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, 2 do
  redis.call('INCR', KEYS[i])
  if redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return 1
",
    )
});

/// The key Redis names and fingerprints are made with (see the module
/// doc). Never printed.
#[derive(Clone)]
pub(crate) struct SharedKey(hmac::Key);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(***)")
    }
}

/// The Redis names of one attempt's counters and retry marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    ip: String,
    account: String,
    marker: String,
}

impl SharedKey {
    /// The key, from 32 bytes derived from the signing key.
    pub(crate) fn new(bytes: &[u8; 32]) -> SharedKey {
        SharedKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// HMAC of length-prefixed parts, 128 bits in hex.
    fn tag(&self, parts: &[&[u8]]) -> String {
        let mut mac = hmac::Context::with_key(&self.0);
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        data_encoding::HEXLOWER.encode(&mac.sign().as_ref()[..16])
    }

    pub(super) fn names(&self, ip: IpAddr, account: &str) -> Names {
        let ip: Vec<u8> = match IpKey::from(ip) {
            IpKey::V4(b) => [&[4u8][..], &b].concat(),
            IpKey::V6(b) => [&[6u8][..], &b].concat(),
        };
        let account = account.to_lowercase();
        Names {
            ip: format!("regauth:throttle:ip:{}", self.tag(&[b"ip", &ip])),
            account: format!(
                "regauth:throttle:account:{}",
                self.tag(&[b"account", account.as_bytes()])
            ),
            marker: format!(
                "regauth:throttle:retry:{}",
                self.tag(&[b"retry", &ip, account.as_bytes()])
            ),
        }
    }

    /// The fingerprint of a user and password a retry marker holds.
    pub(super) fn fingerprint(&self, creds: &Credentials) -> String {
        self.tag(&[
            b"credentials",
            creds.user.as_bytes(),
            creds.password.expose().as_bytes(),
        ])
    }
}

/// What Redis holds for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct View {
    /// A GET that took the marker of a failed POST.
    pub(super) retry: bool,
    pub(super) ip: u32,
    pub(super) ip_left: Duration,
    pub(super) account: u32,
    pub(super) account_left: Duration,
}

impl View {
    /// From the admission script's answer; a counter without time left
    /// (none, or expired between the reads) counts nothing.
    fn from_reply(
        (retry, ip, ip_ms, ac, ac_ms): (i64, i64, i64, i64, i64),
        window: Duration,
    ) -> View {
        let left = |ms: i64| match ms {
            -1 => window,
            ms if ms > 0 => Duration::from_millis(ms as u64),
            _ => Duration::ZERO,
        };
        let count = |n: i64, left: Duration| {
            if left.is_zero() {
                0
            } else {
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        View {
            retry: retry == 1,
            ip: count(ip, left(ip_ms)),
            ip_left: left(ip_ms),
            account: count(ac, left(ac_ms)),
            account_left: left(ac_ms),
        }
    }

    /// The local throttle's rule on the shared counts: the address limit,
    /// then the account limit for an address with failures of its own.
    pub(super) fn decide(&self, s: &ThrottleSettings) -> Result<(), Refused> {
        if self.ip == 0 {
            return Ok(());
        }
        if s.max_failures_per_ip > 0 && self.ip >= s.max_failures_per_ip {
            return Err(Refused {
                retry_after: self.ip_left,
                by: Limit::Ip,
            });
        }
        if s.max_failures_per_account > 0 && self.account >= s.max_failures_per_account {
            return Err(Refused {
                retry_after: self.account_left.min(self.ip_left),
                by: Limit::Account,
            });
        }
        Ok(())
    }
}

/// The Redis client of one `throttle.redis` URL and its outage state.
pub(crate) struct Redis {
    url: RedisUrl,
    client: ::redis::Client,
    /// Made on first use (it needs the runtime); dropped after an error so
    /// the next probe connects afresh.
    conn: Mutex<Option<ConnectionManager>>,
    down: AtomicBool,
    /// While down: when the next request may probe Redis.
    probe_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("url", &self.url).finish()
    }
}

impl Redis {
    /// A client for `url`; connects on first use.
    pub(crate) fn new(url: &RedisUrl) -> Result<Redis, String> {
        let client = ::redis::Client::open(url.expose())
            .map_err(|e| format!("throttle.redis {}: {e}", url.redacted()))?;
        Ok(Redis {
            url: url.clone(),
            client,
            conn: Mutex::new(None),
            down: AtomicBool::new(false),
            probe_at: Mutex::new(None),
        })
    }

    pub(crate) fn url(&self) -> &RedisUrl {
        &self.url
    }

    fn connection(&self) -> Result<ConnectionManager, String> {
        let mut conn = lock(&self.conn);
        if let Some(c) = &*conn {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(CALL_TIMEOUT);
        let c = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| e.to_string())?;
        *conn = Some(c.clone());
        Ok(c)
    }

    /// Whether a request may wait on Redis now: always while it answers,
    /// once per [`PROBE_AFTER`] while it does not.
    fn usable(&self) -> bool {
        if !self.down.load(Ordering::Relaxed) {
            return true;
        }
        let mut probe_at = lock(&self.probe_at);
        let now = Instant::now();
        match *probe_at {
            Some(at) if now < at => false,
            _ => {
                *probe_at = Some(now + PROBE_AFTER);
                true
            }
        }
    }

    /// Runs a script within [`CALL_TIMEOUT`]; `None` (counted, logged once
    /// per outage) when Redis fails or is not asked.
    async fn invoke<T: FromRedisValue>(
        &self,
        metrics: &Metrics,
        inv: &ScriptInvocation<'_>,
    ) -> Option<T> {
        if !self.usable() {
            return None;
        }
        let result = match self.connection() {
            Ok(mut conn) => {
                match tokio::time::timeout(CALL_TIMEOUT, inv.invoke_async::<T>(&mut conn)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                metrics.throttle_redis_up.set(1);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        redis = self.url.redacted(),
                        "throttle.redis answers again: failed-login counts are shared with the other replicas"
                    );
                }
                Some(v)
            }
            Err(error) => {
                metrics.throttle_redis_errors.inc();
                metrics.throttle_redis_up.set(0);
                *lock(&self.conn) = None;
                *lock(&self.probe_at) = Some(Instant::now() + PROBE_AFTER);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        redis = self.url.redacted(),
                        %error,
                        "throttle.redis unreachable: counting failed logins in this process only until it answers (logins go on)"
                    );
                }
                None
            }
        }
    }

    /// The shared counts for an attempt (and, with `fingerprint`, whether
    /// it is a GET retry, whose marker is then used up).
    pub(super) async fn view(
        &self,
        metrics: &Metrics,
        s: &ThrottleSettings,
        names: &Names,
        fingerprint: Option<&str>,
    ) -> Option<View> {
        let mut inv = ADMIT.prepare_invoke();
        inv.key(&names.ip)
            .key(&names.account)
            .key(&names.marker)
            .arg(fingerprint.unwrap_or(""));
        let reply = self.invoke(metrics, &inv).await?;
        Some(View::from_reply(reply, s.window))
    }

    /// Counts a failure in the shared counters (and leaves a POST's retry
    /// marker when `fingerprint` is given). Whether it reached Redis.
    pub(super) async fn failed(
        &self,
        metrics: &Metrics,
        s: &ThrottleSettings,
        names: &Names,
        fingerprint: Option<&str>,
    ) -> bool {
        let mut inv = FAIL.prepare_invoke();
        inv.key(&names.ip)
            .key(&names.account)
            .key(&names.marker)
            .arg(s.window.as_millis().max(1) as u64)
            .arg(fingerprint.unwrap_or(""))
            .arg(RETRY_WINDOW.as_millis() as u64);
        self.invoke::<i64>(metrics, &inv).await.is_some()
    }
}

/// Whether Redis at `url` answers a PING within `timeout` (for `regauth
/// check`); the error names the URL without its password.
pub(crate) async fn ping(url: &RedisUrl, timeout: Duration) -> Result<(), String> {
    let client = ::redis::Client::open(url.expose()).map_err(|e| e.to_string())?;
    let answer = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ip: u32, account: u32) -> ThrottleSettings {
        ThrottleSettings {
            window: Duration::from_secs(60),
            max_failures_per_ip: ip,
            max_failures_per_account: account,
            ..ThrottleSettings::default()
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn shared_counts_decide_like_the_local_throttle() {
        let view = |ip, ip_left, account, account_left| View {
            retry: false,
            ip,
            ip_left: secs(ip_left),
            account,
            account_left: secs(account_left),
        };
        let ip = |s| {
            Err(Refused {
                retry_after: secs(s),
                by: Limit::Ip,
            })
        };
        let account = |s| {
            Err(Refused {
                retry_after: secs(s),
                by: Limit::Account,
            })
        };
        #[rustfmt::skip]
        let cases = [
            // (limits ip/account, view, decision)
            ((20, 10), view(0, 0, 0, 0), Ok(())),
            ((20, 10), view(19, 30, 0, 0), Ok(())),
            ((20, 10), view(20, 30, 0, 0), ip(30)),
            ((0, 10), view(500, 30, 0, 0), Ok(())),
            // The account limit refuses only addresses with failures.
            ((20, 10), view(0, 0, 50, 40), Ok(())),
            ((20, 10), view(1, 30, 10, 40), account(30)),
            ((20, 10), view(1, 50, 10, 40), account(40)),
            ((20, 0), view(1, 50, 10, 40), Ok(())),
            ((20, 10), view(1, 50, 9, 40), Ok(())),
        ];
        for ((ip_limit, account_limit), v, want) in cases {
            assert_eq!(v.decide(&settings(ip_limit, account_limit)), want, "{v:?}");
        }
    }

    #[test]
    fn replies_without_time_left_count_nothing() {
        let w = secs(60);
        #[rustfmt::skip]
        let cases = [
            ((0, 0, -2, 0, -2), View::default()),
            ((1, 3, 5000, 2, 7000), View { retry: true, ip: 3, ip_left: secs(5), account: 2, account_left: secs(7) }),
            // No expiry (should not happen): the whole window.
            ((0, 3, -1, 0, -2), View { ip: 3, ip_left: w, ..View::default() }),
            ((0, 3, 0, 0, -2), View::default()),
        ];
        for (reply, want) in cases {
            assert_eq!(View::from_reply(reply, w), want, "{reply:?}");
        }
    }

    #[test]
    fn names_hide_accounts_and_addresses_and_agree_across_replicas() {
        let a = SharedKey::new(&[7; 32]);
        let b = SharedKey::new(&[7; 32]);
        let other = SharedKey::new(&[8; 32]);
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let n = a.names(ip, "Alice");
        assert_eq!(
            n,
            b.names(ip, "alice"),
            "same key, same names; case-insensitive"
        );
        assert_ne!(
            n,
            other.names(ip, "alice"),
            "another signing key, other names"
        );
        for name in [&n.ip, &n.account, &n.marker] {
            assert!(
                !name.to_lowercase().contains("alice") && !name.contains("192"),
                "{name}"
            );
        }
        // An IPv6 /64 is one address.
        let v6 = |s: &str| a.names(s.parse().unwrap(), "alice").ip;
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::ffff"));
        assert_ne!(v6("2001:db8::1"), v6("2001:db8:0:1::1"));
        let creds = |u: &str, p: &str| Credentials {
            user: u.into(),
            password: p.into(),
        };
        assert_ne!(
            a.fingerprint(&creds("a:b", "c")),
            a.fingerprint(&creds("a", "b:c"))
        );
        assert!(!a
            .fingerprint(&creds("alice", "hunter2"))
            .contains("hunter2"));
    }
}
