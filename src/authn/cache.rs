//! Cache of successful verifications, shared by every backend: a keyed hash
//! (HMAC-SHA256 under a per-process random key) of user and password maps to
//! the backend that accepted them, the labels it returned and the account
//! it knows the user by (LDAP's own spelling of a name typed in another
//! case: the key is what was typed, so `ALICE` and `alice` are two entries
//! that both answer `alice`, and the ACL sees `alice` either way). Only successes
//! are cached; entries expire after a TTL; the cache is bounded and belongs
//! to one configuration generation, so a reload starts with an empty one.
//! Neither passwords nor their plain hashes are stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

use crate::core::Labels;
use crate::secret::Secret;

/// A credential digest.
pub(crate) type Key = [u8; 32];

/// What a cached verification answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub backend: &'static str,
    pub labels: Labels,
    /// The backend's spelling of the account, when it differs from the
    /// typed user name.
    pub account: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    hit: Hit,
    expires: Instant,
}

pub struct CredCache {
    /// HMAC-SHA256 key (random per process; its inner and outer blocks
    /// are hashed once).
    key: hmac::Key,
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl std::fmt::Debug for CredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl CredCache {
    /// `ttl` zero disables the cache.
    pub fn new(ttl: Duration, max_entries: usize) -> CredCache {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CredCache {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::default()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0
    }

    /// The keyed digest of a user and password.
    pub(crate) fn digest(&self, user: &str, password: &Secret) -> Key {
        let mut mac = hmac::Context::with_key(&self.key);
        // Length-prefix the user so ("a:b", "c") and ("a", "b:c") differ.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(password.expose().as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(mac.sign().as_ref());
        k
    }

    /// The cached verdict for these credentials, if fresh.
    pub fn get(&self, user: &str, password: &Secret, now: Instant) -> Option<Hit> {
        if !self.enabled() {
            return None;
        }
        let k = self.digest(user, password);
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&k)
            .filter(|e| e.expires > now)
            .map(|e| e.hit.clone())
    }

    /// Remembers a successful verification.
    pub fn put(&self, user: &str, password: &Secret, hit: Hit, now: Instant) {
        if !self.enabled() {
            return;
        }
        let k = self.digest(user, password);
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_entries {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.max_entries {
                // Still full of live entries: start over rather than grow.
                map.clear();
            }
        }
        map.insert(
            k,
            Entry {
                hit,
                expires: now + self.ttl,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(account: Option<&str>) -> Hit {
        Hit {
            backend: "users",
            labels: Labels::new(),
            account: account.map(str::to_owned),
        }
    }

    #[test]
    fn hits_misses_expiry_and_bound() {
        let c = CredCache::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        let pw = Secret::new("pw");
        assert_eq!(c.get("alice", &pw, t0), None);
        c.put("alice", &pw, hit(None), t0);
        assert_eq!(c.get("alice", &pw, t0).map(|x| x.backend), Some("users"));
        assert_eq!(
            c.get("alice", &Secret::new("other"), t0),
            None,
            "other password"
        );
        assert_eq!(
            c.get("alicepw", &Secret::new(""), t0),
            None,
            "user/password boundary"
        );
        assert_eq!(
            c.get("alice", &pw, t0 + Duration::from_secs(61)),
            None,
            "expired"
        );
        c.put("bob", &pw, hit(None), t0);
        c.put("carol", &pw, hit(None), t0);
        assert!(c.len() <= 2, "bounded");
        assert!(c.get("carol", &pw, t0).is_some());
    }

    #[test]
    fn a_hit_answers_the_account_stored_under_the_typed_name() {
        let c = CredCache::new(Duration::from_secs(60), 10);
        let (t0, pw) = (Instant::now(), Secret::new("pw"));
        c.put("ALICE", &pw, hit(Some("alice")), t0);
        assert_eq!(
            c.get("ALICE", &pw, t0).and_then(|h| h.account).as_deref(),
            Some("alice")
        );
        assert_eq!(c.get("alice", &pw, t0), None, "another typed name");
    }

    #[test]
    fn zero_ttl_disables() {
        let c = CredCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        c.put("a", &Secret::new("b"), hit(None), t0);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn debug_shows_no_key_material_or_users() {
        let c = CredCache::new(Duration::from_secs(60), 10);
        c.put("alice", &Secret::new("hunter2"), hit(None), Instant::now());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("alice") && !dbg.contains("hunter2"));
    }
}
