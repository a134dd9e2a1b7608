//! Authentication: a chain of password backends. Each answers
//! `Authenticated(labels)`, `Denied` (the user is theirs and the password is
//! wrong) or `NoMatch` (not their user: ask the next one), or fails.

pub mod password_table;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::core::Labels;
use crate::secret::Secret;
pub use password_table::{PasswordTable, TableError};

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
}

/// The result of the chain: who answered and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The backend that decided (`"users"`, `"htpasswd"`), or `"none"`.
    pub backend: &'static str,
}

/// The configured backends, tried in order: static users, then htpasswd.
#[derive(Debug, Clone)]
pub struct Chain {
    backends: Vec<(&'static str, Arc<PasswordTable>)>,
    /// Bounds concurrent bcrypt verifications to the number of cores.
    bcrypt_slots: Arc<Semaphore>,
}

/// A bcrypt hash at cost 10 of a random string, verified when no backend
/// knows the user so that unknown users cost as much as wrong passwords.
const DUMMY_HASH: &str = "$2b$10$qqy6dijSiDnkaNmUUnHpa.LcqvA.CChpv6iHtWwO7Ow1./HA.eGrW";

impl Chain {
    pub fn new(backends: Vec<(&'static str, Arc<PasswordTable>)>) -> Chain {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Chain {
            backends,
            bcrypt_slots: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Authenticates `creds` (`None` = anonymous request).
    pub async fn authenticate(&self, creds: Option<&Credentials>) -> Result<Verdict, AuthnError> {
        let (user, password) = match creds {
            Some(c) => (c.user.as_str(), Some(&c.password)),
            None => ("", None),
        };
        for (name, table) in &self.backends {
            let outcome = match table.lookup(user) {
                password_table::Lookup::NoMatch => continue,
                password_table::Lookup::Anonymous(labels) => Outcome::Authenticated(labels.clone()),
                password_table::Lookup::Hash(hash, labels) => {
                    let Some(password) = password else {
                        return Ok(Verdict {
                            outcome: Outcome::Denied,
                            backend: name,
                        });
                    };
                    if self.verify(hash.to_owned(), password.clone()).await {
                        Outcome::Authenticated(labels.clone())
                    } else {
                        Outcome::Denied
                    }
                }
            };
            return Ok(Verdict {
                outcome,
                backend: name,
            });
        }
        if let Some(password) = password {
            // Same cost as a wrong password, so timing does not reveal
            // which accounts exist.
            self.verify(DUMMY_HASH.to_owned(), password.clone()).await;
        }
        Ok(Verdict {
            outcome: Outcome::NoMatch,
            backend: "none",
        })
    }

    /// Runs bcrypt on the blocking pool, at most one per core at a time.
    async fn verify(&self, hash: String, password: Secret) -> bool {
        let _slot = self
            .bcrypt_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        tokio::task::spawn_blocking(move || password_table::verify(&hash, &password))
            .await
            .unwrap_or(false)
    }
}
