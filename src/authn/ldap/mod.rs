//! LDAP authentication (`ldap_auth`), compatible with docker_auth: bind as
//! the service account (or, with `initial_bind_as_user`, as the user through
//! the `bind_dn` template), search `base` with `filter`, bind as the entry
//! found with the user's password, and take labels from its attributes —
//! plus an optional group search that turns group entries into a label.
//!
//! A successful login is known by the entry's own spelling of the account
//! (its `uid` for `(uid=${account})`), not the typed one: see [`account`].
//!
//! Outcomes: an empty account is `NoMatch` and an empty password `Denied`,
//! both without contacting the server (an empty-password simple bind is an
//! unauthenticated bind that succeeds on many servers). No entry found is
//! `NoMatch`; a refused user bind is `Denied`.
//!
//! A filter that matches **more than one** entry is `Unavailable` (503) and
//! an error log line, not `Denied` (401): it is a configuration fault
//! (`filter` or `base` too wide, or duplicate accounts in the directory)
//! that the operator must see, and a 401 would send users to reset a
//! password that is fine. docker_auth also treats it as an error. The user
//! search asks for at most two entries, so a too-wide filter stays cheap.
//!
//! Every failure to get an answer — connection refused, TLS failure,
//! timeout, a refused service bind, an unexpected result code — is
//! `AuthnError::Unavailable` naming the server, never the password. One
//! authentication is bounded by `timeout`; a pooled connection found broken
//! (server restarted) empties the pool and the attempt is made once more on
//! fresh connections, so service resumes without a restart.

mod account;
pub(crate) mod escape;
pub(crate) mod labels;
mod pool;

use std::time::Duration;

use ldap3::{Scope, SearchEntry, SearchOptions};

use super::{AuthnError, Outcome};
use crate::config::ldap::{BindMode, LdapSettings};
use crate::core::Labels;
use crate::secret::Secret;
use pool::Pool;

/// The LDAP backend built from `ldap_auth`.
#[derive(Debug)]
pub struct Ldap {
    settings: LdapSettings,
    /// The attributes the filter matches the account on (see [`account`]);
    /// empty: the typed name is kept.
    account_attributes: Vec<String>,
    /// Connections for searches, bound as the service account (if any).
    search: Pool,
    /// Connections for user binds (and, with `initial_bind_as_user`,
    /// everything): whoever they are bound as is overwritten by each use.
    bind: Pool,
}

/// Why LDAP gave no answer; becomes [`AuthnError::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection broke during an operation.
    #[error("connection lost: {0}")]
    Lost(String),
    /// The server answered with something regauth cannot accept.
    #[error("{0}")]
    Server(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl From<ldap3::LdapError> for Failure {
    fn from(e: ldap3::LdapError) -> Failure {
        match e {
            ldap3::LdapError::LdapResult { result } => {
                Failure::Server(format!("rc={} {}", result.rc, result.text.trim()))
            }
            e => Failure::Lost(e.to_string()),
        }
    }
}

/// Bind result codes that mean "these credentials are not accepted":
/// invalidCredentials, inappropriateAuthentication, unwillingToPerform.
const REFUSED: [u32; 3] = [49, 48, 53];
/// sizeLimitExceeded: more entries than the two asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// Operational attributes that change with an entry (and so with its
/// password): standard, OpenLDAP (sub-second), Active Directory, ppolicy.
const CHANGE_MARKERS: [&str; 4] = [
    "modifyTimestamp",
    "entryCSN",
    "uSNChanged",
    "pwdChangedTime",
];

impl Ldap {
    /// The backend `settings` describe. Connections are opened on first
    /// use, so an LDAP server that is down does not stop a load.
    pub fn new(settings: LdapSettings) -> Ldap {
        let service = match &settings.bind {
            BindMode::Service { dn, password } => Some((dn.clone(), password.clone())),
            _ => None,
        };
        Ldap {
            search: Pool::new(settings.clone(), service),
            bind: Pool::new(settings.clone(), None),
            account_attributes: account::attributes(&settings.filter),
            settings,
        }
    }

    /// The attributes the filter matches the account on (see [`account`]);
    /// empty when logins keep the typed name.
    pub(crate) fn account_attributes(&self) -> &[String] {
        &self.account_attributes
    }

    /// Whether the directory is searched as the user
    /// (`initial_bind_as_user`), which needs the user's password.
    pub(crate) fn binds_as_user(&self) -> bool {
        matches!(self.settings.bind, BindMode::AsUser { .. })
    }

    /// Verifies `user`/`password` against the directory; with the outcome,
    /// the entry's own spelling of the account when it differs from `user`
    /// (see [`account`]).
    pub async fn login(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<(Outcome, Option<String>), AuthnError> {
        if user.is_empty() {
            return Ok((Outcome::NoMatch, None));
        }
        if password.is_empty() {
            return Ok((Outcome::Denied, None));
        }
        self.run(|| self.attempt(user, password)).await
    }

    /// The entry's spelling of `user`, when it differs.
    fn canonical(&self, user: &str, entry: &SearchEntry) -> Option<String> {
        let own = account::canonical(
            &self.account_attributes,
            |a| labels::values(&entry.attrs, a),
            user,
        );
        if own.is_none() {
            tracing::debug!(dn = %entry.dn, "ldap_auth: no attribute value of the entry names the account; the typed name is used");
        }
        own.filter(|own| *own != user).map(str::to_owned)
    }

    /// The user's current record, found without their password (for
    /// refresh tokens): labels (groups included) and bytes that change when
    /// the entry changes — its DN and change markers (`modifyTimestamp`,
    /// `entryCSN`, ...), which a password change updates. `None` when the
    /// user is gone, and always with `initial_bind_as_user` (the directory
    /// is searched as the user, which needs their password).
    pub async fn lookup(&self, user: &str) -> Result<Option<(Labels, Vec<u8>)>, AuthnError> {
        if user.is_empty() || matches!(self.settings.bind, BindMode::AsUser { .. }) {
            return Ok(None);
        }
        self.run(|| async {
            let mut s = self.search.get().await?;
            let Some(entry) = self.find_user(s.ldap(), user, &CHANGE_MARKERS).await? else {
                s.release();
                return Ok(None);
            };
            let labels = self.labels(s.ldap(), user, &entry).await?;
            s.release();
            let mut record = entry.dn.clone().into_bytes();
            for marker in CHANGE_MARKERS {
                for v in labels::values(&entry.attrs, marker) {
                    record.push(b'\n');
                    record.extend_from_slice(v.as_bytes());
                }
            }
            Ok(Some((labels, record)))
        })
        .await
    }

    /// Checks that the server answers (a WhoAmI on a search connection,
    /// which also proves the service bind works).
    pub async fn ping(&self) -> Result<(), AuthnError> {
        self.run(|| async {
            let mut c = self.search.get().await?;
            c.ldap()
                .extended(ldap3::exop::WhoAmI)
                .await?
                .success()
                .map_err(Failure::from)?;
            c.release();
            Ok(())
        })
        .await
    }

    /// Runs `op` within `timeout`; when a pooled connection turns out to be
    /// broken (the server restarted), empties the pools and runs it once
    /// more on fresh connections.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, AuthnError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let work = async {
            match op().await {
                Err(Failure::Lost(cause)) => {
                    tracing::debug!(server = %self.settings.url, %cause, "LDAP connection lost; retrying on a new one");
                    self.search.clear();
                    self.bind.clear();
                    op().await
                }
                other => other,
            }
        };
        let limit = self.settings.timeout;
        let failure = match tokio::time::timeout(limit, work).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(f)) => f,
            Err(_) => Failure::Timeout(limit),
        };
        Err(AuthnError::Unavailable {
            backend: "ldap",
            reason: format!("{}: {failure}", self.settings.url),
        })
    }

    async fn attempt(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<(Outcome, Option<String>), Failure> {
        if let BindMode::AsUser { template } = &self.settings.bind {
            // One connection, bound as the user throughout.
            let mut c = self.bind.get().await?;
            let dn = escape::fill(template, &[("account", &escape::dn_value(user))]);
            if !bind(c.ldap(), &dn, password).await? {
                c.release();
                return Ok((Outcome::Denied, None));
            }
            let Some(entry) = self.find_user(c.ldap(), user, &[]).await? else {
                c.release();
                return Ok((Outcome::NoMatch, None));
            };
            if !bind(c.ldap(), &entry.dn, password).await? {
                c.release();
                return Ok((Outcome::Denied, None));
            }
            let own = self.canonical(user, &entry);
            let account = own.as_deref().unwrap_or(user);
            let labels = self.labels(c.ldap(), account, &entry).await?;
            c.release();
            return Ok((Outcome::Authenticated(labels), own));
        }
        let mut s = self.search.get().await?;
        let found = self.find_user(s.ldap(), user, &[]).await?;
        s.release();
        let Some(entry) = found else {
            return Ok((Outcome::NoMatch, None));
        };
        let mut b = self.bind.get().await?;
        let ok = bind(b.ldap(), &entry.dn, password).await?;
        b.release();
        if !ok {
            return Ok((Outcome::Denied, None));
        }
        // The group search's `${account}` is the entry's spelling too.
        let own = self.canonical(user, &entry);
        let account = own.as_deref().unwrap_or(user);
        let labels = if self.settings.groups.is_some() {
            let mut s = self.search.get().await?;
            let labels = self.labels(s.ldap(), account, &entry).await?;
            s.release();
            labels
        } else {
            let mut labels = Labels::new();
            labels::extract(&self.settings.labels, &entry.attrs, &mut labels);
            labels::normalize(&mut labels);
            labels
        };
        Ok((Outcome::Authenticated(labels), own))
    }

    /// The one entry `filter` finds for `user`, with the label attributes
    /// and `extra` ones.
    async fn find_user(
        &self,
        ldap: &mut ldap3::Ldap,
        user: &str,
        extra: &[&'static str],
    ) -> Result<Option<SearchEntry>, Failure> {
        let s = &self.settings;
        let filter = escape::fill(&s.filter, &[("account", &escape::filter_value(user))]);
        let mut attrs: Vec<&str> = s.labels.iter().map(|l| l.attribute.as_str()).collect();
        attrs.extend(self.account_attributes.iter().map(String::as_str));
        attrs.extend_from_slice(extra);
        if attrs.is_empty() {
            attrs.push("1.1"); // RFC 4511: no attributes, just the DN.
        }
        let result = ldap
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&s.base, Scope::Subtree, &filter, attrs)
            .await?;
        let (entries, rc) = (result.0, result.1.rc);
        if entries.len() > 1 || rc == SIZE_LIMIT_EXCEEDED {
            tracing::error!(
                server = %s.url,
                base = %s.base,
                %filter,
                "ldap_auth.filter matched more than one entry for one account: narrow ldap_auth.filter or ldap_auth.base (or remove the duplicate entry)"
            );
            return Err(Failure::Server(format!(
                "filter {filter:?} under {:?} matched more than one entry",
                s.base
            )));
        }
        if rc != 0 {
            return Err(Failure::Server(format!(
                "user search under {:?} failed: rc={} {}",
                s.base,
                rc,
                result.1.text.trim()
            )));
        }
        entries.into_iter().next().map(construct).transpose()
    }

    /// Labels from the user's entry, plus the group search's.
    async fn labels(
        &self,
        ldap: &mut ldap3::Ldap,
        user: &str,
        entry: &SearchEntry,
    ) -> Result<Labels, Failure> {
        let mut labels = Labels::new();
        labels::extract(&self.settings.labels, &entry.attrs, &mut labels);
        if let Some(g) = &self.settings.groups {
            let filter = escape::fill(
                &g.filter,
                &[
                    ("dn", &escape::filter_value(&entry.dn)),
                    ("account", &escape::filter_value(user)),
                ],
            );
            let result = ldap
                .search(
                    &g.base,
                    Scope::Subtree,
                    &filter,
                    vec![g.map.attribute.as_str()],
                )
                .await?;
            if result.1.rc != 0 {
                return Err(Failure::Server(format!(
                    "group search under {:?} failed: rc={} {}",
                    g.base,
                    result.1.rc,
                    result.1.text.trim()
                )));
            }
            for e in result.0 {
                let e = construct(e)?;
                labels::extract(std::slice::from_ref(&g.map), &e.attrs, &mut labels);
            }
        }
        labels::normalize(&mut labels);
        Ok(labels)
    }
}

/// A simple bind: `Ok(false)` when the server refuses the credentials.
async fn bind(ldap: &mut ldap3::Ldap, dn: &str, password: &Secret) -> Result<bool, Failure> {
    let result = ldap.simple_bind(dn, password.expose()).await?;
    match result.rc {
        0 => Ok(true),
        rc if REFUSED.contains(&rc) => Ok(false),
        rc => Err(Failure::Server(format!(
            "bind failed: rc={rc} {}",
            result.text.trim()
        ))),
    }
}

/// Parses a search result entry (ldap3 panics on malformed BER; a
/// malformed answer is a server failure, not a crash).
fn construct(e: ldap3::ResultEntry) -> Result<SearchEntry, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e)))
        .map_err(|_| Failure::Server("malformed search result entry".into()))
}
