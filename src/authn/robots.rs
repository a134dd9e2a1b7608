//! Robot accounts: machine credentials named in the robots file, each with
//! a scope ceiling and an expiry. A secret is `rgr_` followed by 256
//! random bits (base64url), so that secret scanners can recognise a
//! leaked one; the file keeps only its SHA-256.
//!
//! No bcrypt: a slow hash protects passwords people choose, which can be
//! guessed; a 256-bit random secret cannot be, and one SHA-256 of it
//! (about a microsecond) is as strong against a stolen file as any
//! stretching. So a robot login is verified on the request's own task,
//! with no blocking pool, no queue and no credential cache: verifying
//! costs about what a cache lookup does, and without a cache an expired
//! or removed robot is refused from the very next request. The digests
//! are compared in constant time.
//!
//! Robots are looked up first, by name (the configuration refuses a robot
//! named like a `users` or htpasswd user). That a name is a robot's can be
//! told from the fast answer; the name is no secret, the secret's entropy
//! is what protects it.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;

use crate::core::ceiling::Ceiling;
use crate::core::Labels;
use crate::secret::Secret;

/// The prefix of every robot secret, so that secret scanners find leaks.
pub(crate) const SECRET_PREFIX: &str = "rgr_";

/// One robot, as the robots file describes it.
#[derive(Debug, Clone)]
pub struct RobotEntry {
    pub name: String,
    /// SHA-256 of the whole secret.
    pub sha256: [u8; 32],
    /// Unix seconds from which logins are refused.
    pub expires: i64,
    pub ceiling: Ceiling,
    pub labels: Labels,
}

/// The robots of one configuration generation, by name.
#[derive(Debug, Clone, Default)]
pub struct RobotTable {
    robots: HashMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    sha256: [u8; 32],
    expires: i64,
    ceiling: Arc<Ceiling>,
    labels: Labels,
}

/// What a login as a robot comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check<'a> {
    /// No robot has this name: ask the other backends.
    NotARobot,
    Valid(&'a Labels),
    WrongSecret,
    /// The secret is right but the robot expired at `expires` (Unix s).
    Expired {
        expires: i64,
    },
}

/// A new secret: [`SECRET_PREFIX`] and 32 random bytes in base64url.
pub fn new_secret() -> Secret {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system's random source works");
    Secret::new(format!(
        "{SECRET_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(&bytes)
    ))
}

/// The SHA-256 of a secret, as the robots file stores it.
pub fn sha256(secret: &Secret) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, secret.expose().as_bytes());
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

impl RobotTable {
    pub fn new(robots: impl IntoIterator<Item = RobotEntry>) -> RobotTable {
        RobotTable {
            robots: robots
                .into_iter()
                .map(|r| {
                    (
                        r.name,
                        Entry {
                            sha256: r.sha256,
                            expires: r.expires,
                            ceiling: Arc::new(r.ceiling),
                            labels: r.labels,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Verifies `secret` for robot `name` at `now` (Unix seconds).
    pub fn check(&self, name: &str, secret: &Secret, now: i64) -> Check<'_> {
        let Some(e) = self.robots.get(name) else {
            return Check::NotARobot;
        };
        if !bool::from(sha256(secret).ct_eq(&e.sha256)) {
            Check::WrongSecret
        } else if now >= e.expires {
            Check::Expired { expires: e.expires }
        } else {
            Check::Valid(&e.labels)
        }
    }

    /// The robot's ceiling, labels and stored digest while it is valid at
    /// `now`; `None` when there is no such robot or it expired.
    pub(crate) fn current(
        &self,
        name: &str,
        now: i64,
    ) -> Option<(&Arc<Ceiling>, &Labels, &[u8; 32])> {
        self.robots
            .get(name)
            .filter(|e| now < e.expires)
            .map(|e| (&e.ceiling, &e.labels, &e.sha256))
    }

    /// The labels of robot `name`, expired or not.
    pub(crate) fn labels(&self, name: &str) -> Option<&Labels> {
        self.robots.get(name).map(|e| &e.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_table() {
        let good = new_secret();
        assert!(good.expose().starts_with("rgr_") && good.expose().len() == 4 + 43);
        assert_ne!(good, new_secret());
        let labels = Labels::from([("team".to_string(), vec!["ci".to_string()])]);
        let table = RobotTable::new([RobotEntry {
            name: "ci".into(),
            sha256: sha256(&good),
            expires: 1000,
            ceiling: Ceiling::default(),
            labels: labels.clone(),
        }]);
        let other = new_secret();
        let cases = [
            ("ci", &good, 999, Check::Valid(&labels)),
            ("ci", &good, 1000, Check::Expired { expires: 1000 }),
            ("ci", &other, 999, Check::WrongSecret),
            ("ci", &other, 1000, Check::WrongSecret),
            ("ci", &Secret::new(""), 0, Check::WrongSecret),
            ("cj", &good, 0, Check::NotARobot),
            ("", &good, 0, Check::NotARobot),
        ];
        for (name, secret, now, want) in cases {
            assert_eq!(table.check(name, secret, now), want, "{name} at {now}");
        }
        assert!(table.current("ci", 999).is_some() && table.current("ci", 1000).is_none());
        // The digest is the hex the file stores.
        assert_eq!(
            data_encoding::HEXLOWER.encode(&sha256(&Secret::new("test"))),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
