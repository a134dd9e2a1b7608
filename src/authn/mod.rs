//! Authentication: a chain of password backends. Each answers
//! `Authenticated(labels)`, `Denied` (the user is theirs and the password is
//! wrong) or `NoMatch` (not their user: ask the next one), or fails.
//! Successful verifications are cached (see [`cache`]); slow verifications
//! (bcrypt) run on the blocking pool, bounded, and fail fast when saturated.
//! Robots ([`robots`]) are asked first, by name, and answered at once
//! without the cache: their check is one SHA-256.

pub mod cache;
pub(crate) mod federation;
mod hash;
pub(crate) mod inflight;
pub mod ldap;
pub mod robots;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use crate::config::password_table::{self, PasswordTable};
use crate::config::ChainOptions;
use crate::core::Labels;
use crate::secret::Secret;
pub use cache::CredCache;

/// Basic credentials (or OAuth2 password-grant credentials).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated(Labels),
    Denied,
    NoMatch,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// A backend could not answer (LDAP down): never a grant, never a 401.
    #[error("{backend} unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
    /// Too many verifications are already waiting (password spraying):
    /// refuse at once instead of queueing without bound.
    #[error("too many password verifications in progress")]
    Busy,
}

/// The result of the chain: who answered and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    /// The backend that decided (`"users"`, `"htpasswd"`, `"ldap"`,
    /// `"robot"`), or `"none"`.
    pub(crate) backend: &'static str,
    /// Whether the verdict came from the credential cache.
    pub(crate) cached: bool,
    /// The backend's own spelling of the account, when it differs from the
    /// typed user name (LDAP: see `ldap::account`). The ACL, the token
    /// and the audit line see this one.
    pub(crate) account: Option<String>,
}

/// One configured password backend.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// A user → bcrypt table (`users:` or an htpasswd file).
    Table {
        name: &'static str,
        table: Arc<PasswordTable>,
    },
    /// `ldap_auth`.
    Ldap(Arc<ldap::Ldap>),
    /// `robots_file`: verified at once, before the cache and the other
    /// backends (see [`robots`]).
    Robots(Arc<robots::RobotTable>),
}

impl Backend {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Backend::Table { name, .. } => name,
            Backend::Ldap(_) => "ldap",
            Backend::Robots(_) => "robot",
        }
    }

    /// The labels of the anonymous account, when this backend allows it.
    fn anonymous(&self) -> Option<&Labels> {
        match self {
            Backend::Table { table, .. } => match table.lookup("") {
                password_table::Lookup::Anonymous(labels) => Some(labels),
                _ => None,
            },
            Backend::Ldap(_) | Backend::Robots(_) => None,
        }
    }
}

/// Now, in Unix seconds (robot expiry).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where a login as an account would take its labels from, found without
/// the account's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LabelSource {
    /// The backend that would decide the login, and the labels a
    /// successful login gets from it.
    Found {
        backend: &'static str,
        labels: Labels,
    },
    /// No backend knows the account (for the empty account: none allows
    /// anonymous requests), so a login would be refused.
    Unknown,
    /// The backend that would be asked next can only look the account up
    /// with its password (LDAP with `initial_bind_as_user`).
    NeedsPassword { backend: &'static str },
}

/// What [`Chain::without_backends`] found.
#[derive(Debug)]
pub(crate) enum FirstLook<'c> {
    /// Anonymous, or a cache hit: the verdict.
    Answered(Verdict),
    /// These credentials need a backend ([`Chain::verify_with_backends`]).
    NeedsBackend(&'c Credentials),
}

/// The configured backends, tried in order, with the credential cache.
#[derive(Debug, Clone)]
pub struct Chain {
    backends: Vec<Backend>,
    cache: Arc<CredCache>,
    /// Admission: workers + queue permits; `try_acquire` fails fast.
    admission: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    /// Verified when no backend knows the user: see [`dummy_hash`].
    dummy_hash: Arc<str>,
    /// One verification at a time per credential; see [`inflight`].
    inflight: Arc<inflight::Inflight>,
}

/// A bcrypt hash at cost 10 of a random string, verified when no backend
/// knows the user so that unknown users cost as much as wrong passwords.
const DUMMY_HASH: &str = "$2b$10$qqy6dijSiDnkaNmUUnHpa.LcqvA.CChpv6iHtWwO7Ow1./HA.eGrW";

/// [`DUMMY_HASH`] at the cost most configured bcrypt hashes use (ties: the
/// higher), so an unknown user takes as long as a wrong password. Only the
/// cost field changes: the string stays a valid hash that no password
/// matches, and nothing is hashed at load time.
pub(crate) fn dummy_hash(backends: &[Backend]) -> String {
    let mut counts = std::collections::BTreeMap::<u32, usize>::new();
    for b in backends {
        if let Backend::Table { table, .. } = b {
            for c in table.costs() {
                *counts.entry(c).or_default() += 1;
            }
        }
    }
    let cost = counts
        .iter()
        .max_by_key(|(cost, n)| (**n, **cost))
        .map_or(10, |(cost, _)| *cost);
    format!("$2b${cost:02}{}", &DUMMY_HASH[6..])
}

impl Chain {
    pub(crate) fn new(backends: Vec<Backend>, opts: ChainOptions) -> Chain {
        Chain {
            cache: Arc::new(CredCache::new(opts.cache_ttl, opts.cache_entries)),
            admission: Arc::new(Semaphore::new(opts.workers + opts.queue)),
            workers: Arc::new(Semaphore::new(opts.workers.max(1))),
            dummy_hash: dummy_hash(&backends).into(),
            inflight: Arc::default(),
            backends,
        }
    }

    pub(crate) fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// What the chain can answer without asking a slow backend: anonymous
    /// requests (no credentials or an empty user name), robots (one
    /// SHA-256, never cached) and cache hits.
    pub(crate) fn without_backends<'c>(&self, creds: Option<&'c Credentials>) -> FirstLook<'c> {
        match creds {
            Some(c) if !c.user.is_empty() => match self.robot(c).or_else(|| self.cached(c)) {
                Some(v) => FirstLook::Answered(v),
                None => FirstLook::NeedsBackend(c),
            },
            _ => FirstLook::Answered(self.anonymous()),
        }
    }

    /// The robot table, when `robots_file` is configured.
    pub(crate) fn robots(&self) -> Option<&robots::RobotTable> {
        self.backends.iter().find_map(|b| match b {
            Backend::Robots(t) => Some(&**t),
            _ => None,
        })
    }

    /// The verdict on a robot's login; `None` when `creds` names no robot.
    fn robot(&self, creds: &Credentials) -> Option<Verdict> {
        let outcome = match self
            .robots()?
            .check(&creds.user, &creds.password, unix_now())
        {
            robots::Check::NotARobot => return None,
            robots::Check::Valid(labels) => Outcome::Authenticated(labels.clone()),
            robots::Check::WrongSecret => {
                tracing::info!(robot = %creds.user, reason = "wrong secret", "robot login refused");
                Outcome::Denied
            }
            robots::Check::Expired { expires } => {
                tracing::info!(
                    robot = %creds.user,
                    reason = "expired",
                    expired_at = %time::OffsetDateTime::from_unix_timestamp(expires)
                        .ok()
                        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                        .unwrap_or_else(|| expires.to_string()),
                    "robot login refused: the robot expired; add a new one with `regauth robot add`"
                );
                Outcome::Denied
            }
        };
        Some(Verdict {
            outcome,
            backend: "robot",
            cached: false,
            account: None,
        })
    }

    /// A verification by the backends, for credentials [`Chain::without_backends`]
    /// could not answer: coalesced with concurrent ones for the same
    /// credentials, cached when it succeeds.
    pub(crate) async fn verify_with_backends(
        &self,
        creds: &Credentials,
    ) -> Result<Verdict, AuthnError> {
        // Concurrent requests with the same credentials wait for the first
        // verification instead of each running bcrypt.
        let _pass = self
            .inflight
            .enter(self.cache.digest(&creds.user, &creds.password))
            .await;
        if let Some(v) = self.cached(creds) {
            return Ok(v);
        }
        for b in &self.backends {
            let mut account = None;
            let outcome = match b {
                Backend::Table { table, .. } => match table.lookup(&creds.user) {
                    password_table::Lookup::NoMatch | password_table::Lookup::Anonymous(_) => {
                        continue
                    }
                    password_table::Lookup::Hash(hash, labels) => {
                        if self.verify(hash.to_owned(), creds.password.clone()).await? {
                            Outcome::Authenticated(labels.clone())
                        } else {
                            Outcome::Denied
                        }
                    }
                },
                Backend::Ldap(l) => match l.login(&creds.user, &creds.password).await? {
                    (Outcome::NoMatch, _) => continue,
                    (outcome, own) => {
                        account = own;
                        outcome
                    }
                },
                // Answered by `at_once`, never cached.
                Backend::Robots(_) => continue,
            };
            if let Outcome::Authenticated(labels) = &outcome {
                // Keyed on what was typed, holding the account it names:
                // a hit answers with the backend's spelling too.
                self.cache.put(
                    &creds.user,
                    &creds.password,
                    cache::Hit {
                        backend: b.name(),
                        labels: labels.clone(),
                        account: account.clone(),
                    },
                    Instant::now(),
                );
            }
            return Ok(Verdict {
                outcome,
                backend: b.name(),
                cached: false,
                account,
            });
        }
        // Same cost as a wrong password, so timing does not reveal which
        // accounts exist.
        self.verify(self.dummy_hash.to_string(), creds.password.clone())
            .await?;
        Ok(Verdict {
            outcome: Outcome::NoMatch,
            backend: "none",
            cached: false,
            account: None,
        })
    }

    fn cached(&self, creds: &Credentials) -> Option<Verdict> {
        let hit = self
            .cache
            .get(&creds.user, &creds.password, Instant::now())?;
        Some(Verdict {
            outcome: Outcome::Authenticated(hit.labels),
            backend: hit.backend,
            cached: true,
            account: hit.account,
        })
    }

    /// The current credential record of `user` in the backend named
    /// `backend`: its labels and the bytes that change when the password
    /// changes (refresh tokens are bound to them). `None` = user gone.
    pub(crate) async fn current(
        &self,
        backend: &str,
        user: &str,
    ) -> Result<Option<(Labels, Vec<u8>)>, AuthnError> {
        let Some(b) = self.backends.iter().find(|b| b.name() == backend) else {
            return Ok(None);
        };
        match b {
            Backend::Table { table, .. } => Ok(match table.lookup(user) {
                password_table::Lookup::Hash(hash, labels) => {
                    Some((labels.clone(), hash.as_bytes().to_vec()))
                }
                _ => None,
            }),
            // Boxed for the same reason as in `authenticate`.
            Backend::Ldap(l) => Box::pin(l.lookup(user)).await,
            Backend::Robots(t) => Ok(t
                .current(user, unix_now())
                .map(|(_, labels, sha)| (labels.clone(), sha.to_vec()))),
        }
    }

    /// The labels a login as `user` would get, without verifying a
    /// password: the backends are asked in the order a login asks them,
    /// and the first that knows the user decides, as in a login. An LDAP
    /// backend that cannot be reached is an error.
    pub(crate) async fn labels_of(&self, user: &str) -> Result<LabelSource, AuthnError> {
        if user.is_empty() {
            return Ok(match self.anonymous() {
                Verdict {
                    outcome: Outcome::Authenticated(labels),
                    backend,
                    ..
                } => LabelSource::Found { backend, labels },
                _ => LabelSource::Unknown,
            });
        }
        if let Some(labels) = self.robots().and_then(|t| t.labels(user)) {
            return Ok(LabelSource::Found {
                backend: "robot",
                labels: labels.clone(),
            });
        }
        for b in &self.backends {
            match b {
                Backend::Robots(_) => {}
                Backend::Table { name, table } => {
                    if let password_table::Lookup::Hash(_, labels) = table.lookup(user) {
                        return Ok(LabelSource::Found {
                            backend: name,
                            labels: labels.clone(),
                        });
                    }
                }
                Backend::Ldap(l) if l.binds_as_user() => {
                    return Ok(LabelSource::NeedsPassword { backend: b.name() });
                }
                Backend::Ldap(l) => {
                    if let Some((labels, _)) = Box::pin(l.lookup(user)).await? {
                        return Ok(LabelSource::Found {
                            backend: b.name(),
                            labels,
                        });
                    }
                }
            }
        }
        Ok(LabelSource::Unknown)
    }

    /// Whether every backend that depends on a server can reach it.
    pub(crate) async fn ready(&self) -> Result<(), AuthnError> {
        for b in &self.backends {
            match b {
                Backend::Table { .. } | Backend::Robots(_) => {}
                Backend::Ldap(l) => l.ping().await?,
            }
        }
        Ok(())
    }

    /// The anonymous account: allowed when a table has the `""` user.
    fn anonymous(&self) -> Verdict {
        let found = self
            .backends
            .iter()
            .find_map(|b| b.anonymous().map(|l| (b.name(), l)));
        match found {
            Some((backend, labels)) => Verdict {
                outcome: Outcome::Authenticated(labels.clone()),
                backend,
                cached: false,
                account: None,
            },
            None => Verdict {
                outcome: Outcome::NoMatch,
                backend: "none",
                cached: false,
                account: None,
            },
        }
    }

    /// Runs bcrypt on the blocking pool, at most `workers` at a time; fails
    /// fast with `Busy` when the queue is full.
    async fn verify(&self, hash: String, password: Secret) -> Result<bool, AuthnError> {
        let _admitted = self.admission.try_acquire().map_err(|_| AuthnError::Busy)?;
        let _worker = self
            .workers
            .acquire()
            .await
            .expect("semaphore never closed");
        Ok(
            tokio::task::spawn_blocking(move || hash::verify(&hash, &password))
                .await
                .unwrap_or(false),
        )
    }
}

#[cfg(test)]
mod tests;
