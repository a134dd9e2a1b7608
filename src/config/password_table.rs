//! Password tables: static `users:` and htpasswd files. Both map a user to a
//! bcrypt hash and labels; only bcrypt (`$2a$`, `$2b$`, `$2y$`) is accepted.

use std::collections::HashMap;

use crate::core::Labels;

#[derive(Debug, Clone)]
struct Entry {
    hash: String,
    labels: Labels,
}

/// A user → bcrypt hash table; `anonymous` holds the labels of the `""`
/// user when anonymous access is enabled.
#[derive(Debug, Clone, Default)]
pub struct PasswordTable {
    entries: HashMap<String, Entry>,
    anonymous: Option<Labels>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    NoMatch,
    Anonymous(&'a Labels),
    Hash(&'a str, &'a Labels),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// Checks that `hash` is a bcrypt hash this server can verify.
pub(crate) fn check_bcrypt(hash: &str) -> Result<(), String> {
    let scheme_ok = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    if !scheme_ok {
        let scheme = if hash.starts_with("$apr1$") {
            "MD5 (apr1)"
        } else if hash.starts_with("{SHA}") {
            "SHA-1"
        } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
            "SHA-crypt"
        } else if hash.starts_with('$') {
            "an unsupported"
        } else {
            "crypt or plain text"
        };
        return Err(format!(
            "password uses {scheme} scheme; only bcrypt ($2y$/$2a$/$2b$) is accepted (create one with `regauth hash` or `htpasswd -B`)"
        ));
    }
    hash.parse::<bcrypt::HashParts>()
        .map(|_| ())
        .map_err(|_| "malformed bcrypt hash".to_owned())
}

/// A `password:` holding a whole htpasswd line (`name:$2y$...`, what
/// `htpasswd -nB name` prints) is refused with the fix; otherwise the hash.
fn pasted_line(user: &str, hash: &str) -> Result<(), TableError> {
    match hash.split_once(':') {
        Some((name, rest)) if rest.starts_with("$2") => Err(TableError::User {
            user: user.to_owned(),
            reason: format!(
                "password: holds an htpasswd line ({name:?} followed by ':'); keep only the hash after the colon ({}...)",
                &rest[..rest.len().min(7)]
            ),
        }),
        _ => Ok(()),
    }
}

impl PasswordTable {
    /// Builds the table from `users:` entries `(name, password, labels)`.
    pub(crate) fn from_users<I>(users: I) -> Result<Self, TableError>
    where
        I: IntoIterator<Item = (String, Option<String>, Labels)>,
    {
        let mut t = PasswordTable::default();
        for (user, password, labels) in users {
            let err = |reason: &str| TableError::User {
                user: user.clone(),
                reason: reason.to_owned(),
            };
            match (user.as_str(), password) {
                ("", None) => t.anonymous = Some(labels),
                ("", Some(_)) => return Err(err("the anonymous user (\"\") takes no password")),
                (_, None) => {
                    return Err(err(
                        "no password (docker_auth would accept any password for this user; regauth refuses): set password: to a bcrypt hash (`regauth hash`); to give labels to a user of an htpasswd file, set htpasswd: and keep only labels: here",
                    ))
                }
                (_, Some(hash)) => {
                    pasted_line(&user, &hash)?;
                    check_bcrypt(&hash).map_err(|r| err(&r))?;
                    t.entries.insert(user, Entry { hash, labels });
                }
            }
        }
        Ok(t)
    }

    /// Parses an htpasswd file: `user:hash` lines, `#` comments and blank
    /// lines ignored. Any non-bcrypt hash is an error naming its line.
    pub fn from_htpasswd(text: &str) -> Result<Self, TableError> {
        let mut t = PasswordTable::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r');
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let err = |reason: String| TableError::Line { line, reason };
            let (user, hash) = l
                .split_once(':')
                .ok_or_else(|| err("expected user:hash".into()))?;
            if user.is_empty() {
                return Err(err("empty user name".into()));
            }
            check_bcrypt(hash).map_err(|r| err(format!("user {user:?}: {r}")))?;
            if t.entries.contains_key(user) {
                return Err(err(format!("user {user:?} appears twice")));
            }
            t.entries.insert(
                user.to_owned(),
                Entry {
                    hash: hash.to_owned(),
                    labels: Labels::new(),
                },
            );
        }
        Ok(t)
    }

    /// Gives `user` these labels; false when the table has no such user.
    pub(crate) fn set_labels(&mut self, user: &str, labels: Labels) -> bool {
        match self.entries.get_mut(user) {
            Some(e) => {
                e.labels = labels;
                true
            }
            None => false,
        }
    }

    pub fn lookup(&self, user: &str) -> Lookup<'_> {
        if user.is_empty() {
            return match &self.anonymous {
                Some(l) => Lookup::Anonymous(l),
                None => Lookup::NoMatch,
            };
        }
        match self.entries.get(user) {
            Some(e) => Lookup::Hash(&e.hash, &e.labels),
            None => Lookup::NoMatch,
        }
    }

    /// Every user and its labels, the anonymous `""` first when allowed.
    pub(crate) fn users(&self) -> impl Iterator<Item = (&str, &Labels)> + '_ {
        let anonymous = self.anonymous.as_ref().map(|l| ("", l));
        anonymous
            .into_iter()
            .chain(self.entries.iter().map(|(n, e)| (n.as_str(), &e.labels)))
    }

    /// The bcrypt cost of every user's hash.
    pub(crate) fn costs(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .values()
            .filter_map(|e| e.hash.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
    }

    /// Number of users with a password (the anonymous entry not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn allows_anonymous(&self) -> bool {
        self.anonymous.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // bcrypt("secret", cost 4) in the three accepted prefixes.
    const H2Y: &str = "$2y$04$48LdAX7zlsrW3AyNusJUhOPNc/6g.GwSNdjHmh33nqyCHYy/lrf3K";

    #[test]
    fn htpasswd_table() {
        let cases: &[(&str, Result<usize, &str>)] = &[
            ("", Ok(0)),
            ("# comment\n\nalice:HASH\n", Ok(1)),
            ("alice:HASH\r\nbob:HASH\r\n", Ok(2)),
            (
                "alice:$apr1$abc$def\n",
                Err("line 1: user \"alice\": password uses MD5 (apr1) scheme"),
            ),
            (
                "alice:HASH\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
                Err("line 2: user \"bob\": password uses SHA-1 scheme"),
            ),
            (
                "alice:HASH\n\ncarol:$6$salt$hash\n",
                Err("line 3: user \"carol\": password uses SHA-crypt scheme"),
            ),
            (
                "dave:plaintext\n",
                Err("line 1: user \"dave\": password uses crypt or plain text scheme"),
            ),
            ("nocolon\n", Err("line 1: expected user:hash")),
            (":HASH\n", Err("line 1: empty user name")),
            (
                "alice:HASH\nalice:HASH\n",
                Err("line 2: user \"alice\" appears twice"),
            ),
            (
                "alice:$2y$04$short\n",
                Err("line 1: user \"alice\": malformed bcrypt hash"),
            ),
        ];
        for (text, want) in cases {
            let text = text.replace("HASH", H2Y);
            match (PasswordTable::from_htpasswd(&text), want) {
                (Ok(t), Ok(n)) => assert_eq!(t.len(), *n, "{text:?}"),
                (Err(e), Err(prefix)) => {
                    assert!(e.to_string().starts_with(prefix), "{text:?}: got {e}")
                }
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn users_table() {
        let l = Labels::from([("group".to_string(), vec!["dev".to_string()])]);
        let t = PasswordTable::from_users([
            ("".to_string(), None, Labels::new()),
            ("alice".to_string(), Some(H2Y.to_string()), l.clone()),
        ])
        .unwrap();
        assert!(t.allows_anonymous());
        assert_eq!(t.lookup("alice"), Lookup::Hash(H2Y, &l));
        assert_eq!(t.lookup("bob"), Lookup::NoMatch);

        let no_pw = PasswordTable::from_users([("bob".to_string(), None, Labels::new())]);
        assert!(no_pw.unwrap_err().to_string().contains("no password"));
        let anon_pw =
            PasswordTable::from_users([("".to_string(), Some(H2Y.into()), Labels::new())]);
        assert!(anon_pw.is_err());
        let pasted = PasswordTable::from_users([(
            "alice".to_string(),
            Some(format!("alice:{H2Y}")),
            Labels::new(),
        )]);
        assert_eq!(
            pasted.unwrap_err().to_string(),
            "user \"alice\": password: holds an htpasswd line (\"alice\" followed by ':'); keep only the hash after the colon ($2y$04$...)"
        );
        let mut t = t;
        assert!(t.set_labels("alice", Labels::new()));
        assert!(!t.set_labels("nobody", Labels::new()));
        let without_anon = PasswordTable::from_users([]).unwrap();
        assert_eq!(without_anon.lookup(""), Lookup::NoMatch);
    }
}
