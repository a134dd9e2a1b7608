//! The `ldap_auth` section: docker_auth's keys plus regauth's extensions
//! (`group_search`, timeouts, pool size), and its validation into
//! [`LdapSettings`], plain data the LDAP backend (`authn::ldap`) is built
//! from. Files it names (bind password, CA) are read here, at load, and
//! the TLS client configuration is built here ([`tls`]) so that a bad CA
//! file is a load error like any other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

pub(crate) mod tls;

/// `ldap_auth` as written in the YAML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdap {
    /// `host:port`.
    pub(crate) addr: String,
    /// `none` (or empty), `starttls` or `always`; unset with port 636
    /// means `always`.
    #[serde(default)]
    pub(crate) tls: Option<String>,
    #[serde(default)]
    pub(crate) insecure_tls_skip_verify: bool,
    #[serde(default)]
    pub(crate) ca_certificate: Option<PathBuf>,
    #[serde(default)]
    pub(crate) bind_dn: Option<String>,
    #[serde(default)]
    pub(crate) bind_password_file: Option<PathBuf>,
    /// Extension: the service account's password from this environment
    /// variable instead of a file.
    #[serde(default)]
    pub(crate) bind_password_env: Option<String>,
    /// Bind first as the user (`bind_dn` with `${account}` filled in) with
    /// the user's password, instead of as a service account.
    #[serde(default)]
    pub(crate) initial_bind_as_user: bool,
    #[serde(default)]
    pub(crate) base: Option<String>,
    /// Search filter; `${account}` is the (escaped) account name.
    pub(crate) filter: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, RawLabel>,
    /// Extension: groups found by a second search become a label.
    #[serde(default)]
    pub(crate) group_search: Option<RawGroupSearch>,
    /// Extension: time allowed for one connection (TCP, TLS, StartTLS).
    #[serde(default, deserialize_with = "duration")]
    pub(crate) connect_timeout: Option<Duration>,
    /// Extension: time allowed for one whole authentication against LDAP.
    #[serde(default, deserialize_with = "duration")]
    pub(crate) timeout: Option<Duration>,
    /// Extension: connections kept open per pool (search and bind).
    #[serde(default)]
    pub(crate) pool_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLabel {
    #[serde(default)]
    pub(crate) attribute: String,
    #[serde(default)]
    pub(crate) parse_cn: bool,
    #[serde(default)]
    pub(crate) lower_case: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroupSearch {
    pub(crate) base: String,
    /// `${dn}` is the user's DN, `${account}` the account name (escaped).
    pub(crate) filter: String,
    #[serde(default)]
    pub(crate) attribute: Option<String>,
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) parse_cn: bool,
    #[serde(default)]
    pub(crate) lower_case: bool,
}

pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_POOL_SIZE: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    None,
    StartTls,
    Always,
}

/// How the search is authorized.
#[derive(Debug, Clone)]
pub(crate) enum BindMode {
    /// No bind: anonymous search.
    Anonymous,
    /// Service account (`bind_dn` + `bind_password_file`).
    Service { dn: String, password: Secret },
    /// `initial_bind_as_user`: `bind_dn` with `${account}` (DN-escaped),
    /// and the user's own password.
    AsUser { template: String },
}

/// One label fed from one attribute (`labels:` and `group_search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelMap {
    pub(crate) label: String,
    pub(crate) attribute: String,
    /// Take the CN out of DN values (`cn=devs,ou=groups,...` -> `devs`).
    pub(crate) parse_cn: bool,
    pub(crate) lower_case: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupSearch {
    pub(crate) base: String,
    pub(crate) filter: String,
    pub(crate) map: LabelMap,
}

/// A validated `ldap_auth`.
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://host:port` or `ldaps://host:port`: the connection URL, and
    /// the server's name in errors and logs.
    pub url: String,
    pub(crate) tls: TlsMode,
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    pub(crate) insecure: bool,
    pub(crate) bind: BindMode,
    pub(crate) base: String,
    pub(crate) filter: String,
    pub(crate) labels: Vec<LabelMap>,
    pub(crate) groups: Option<GroupSearch>,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) pool_size: usize,
    /// The files read at load (bind password, CA).
    pub(crate) files: Vec<PathBuf>,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .field("bind", &self.bind)
            .field("base", &self.base)
            .field("filter", &self.filter)
            .field("labels", &self.labels)
            .field("groups", &self.groups)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Validates `raw`; errors read `ldap_auth.<key>: reason`.
pub fn settings(raw: RawLdap) -> Result<LdapSettings, String> {
    let at = |key: &str, msg: String| format!("ldap_auth.{key}: {msg}");
    let (host, port) = host_port(&raw.addr).map_err(|m| at("addr", m))?;
    let tls = match raw.tls.as_deref().map(str::trim) {
        None if port == 636 => TlsMode::Always,
        None | Some("") | Some("none") => TlsMode::None,
        Some("starttls") => TlsMode::StartTls,
        Some("always") => TlsMode::Always,
        Some(other) => {
            return Err(at(
                "tls",
                format!("{other:?} is not one of none, starttls, always"),
            ))
        }
    };
    let mut files = Vec::new();
    let scheme = if tls == TlsMode::Always {
        "ldaps"
    } else {
        "ldap"
    };
    let url = format!("{scheme}://{host}:{port}");
    let tls_config = match tls {
        TlsMode::None => {
            if raw.ca_certificate.is_some() || raw.insecure_tls_skip_verify {
                tracing::warn!(server = %url, "ldap_auth: tls is none: ca_certificate and insecure_tls_skip_verify are not used");
            }
            None
        }
        _ => {
            if raw.insecure_tls_skip_verify {
                tracing::warn!(server = %url, "ldap_auth.insecure_tls_skip_verify: the LDAP server's certificate is not verified");
            }
            let ca = if raw.insecure_tls_skip_verify {
                None
            } else {
                raw.ca_certificate.as_deref()
            };
            files.extend(ca.map(PathBuf::from));
            Some(
                tls::client_config(ca, raw.insecure_tls_skip_verify)
                    .map_err(|m| at("ca_certificate", m))?,
            )
        }
    };

    let bind_dn = raw.bind_dn.filter(|d| !d.trim().is_empty());
    let bind = match (bind_dn, raw.initial_bind_as_user) {
        (Some(template), true) => BindMode::AsUser { template },
        // docker_auth skips the initial bind when bind_dn is empty: an
        // anonymous search, then the user's bind.
        (None, _) => BindMode::Anonymous,
        (Some(dn), false) => {
            if raw.bind_password_file.is_some() && raw.bind_password_env.is_some() {
                return Err(at(
                    "bind_password_file",
                    "bind_password_file and bind_password_env are exclusive".into(),
                ));
            }
            let password = if let Some(var) = raw.bind_password_env.as_deref() {
                // The environment keeps the value as given.
                crate::config::secrets::load("ldap_auth.bind_password", None, Some(var))?
                    .expect("an env source yields a value or an error")
            } else {
                let Some(path) = raw.bind_password_file.as_ref() else {
                    return Err(at(
                        "bind_password_file",
                        "required with bind_dn (the service account's password; or bind_password_env)".into(),
                    ));
                };
                let text = std::fs::read_to_string(path)
                    .map_err(|e| at("bind_password_file", crate::config::cannot_read(path, &e)))?;
                files.push(path.clone());
                // docker_auth trims surrounding whitespace (Go's TrimSpace).
                let password = text.trim();
                if password.is_empty() {
                    return Err(at(
                        "bind_password_file",
                        format!(
                            "{} is empty (an empty password is an unauthenticated bind)",
                            path.display()
                        ),
                    ));
                }
                Secret::new(password)
            };
            BindMode::Service { dn, password }
        }
    };

    if !raw.filter.contains("${account}") {
        return Err(at(
            "filter",
            "must contain ${account} (without it every login finds the same entry)".into(),
        ));
    }
    check_filter(&raw.filter).map_err(|m| at("filter", m))?;

    let mut labels = Vec::new();
    for (label, l) in raw.labels {
        if l.attribute.trim().is_empty() {
            return Err(at(&format!("labels.{label}.attribute"), "missing".into()));
        }
        labels.push(LabelMap {
            label,
            attribute: l.attribute,
            parse_cn: l.parse_cn,
            lower_case: l.lower_case,
        });
    }

    let groups = match raw.group_search {
        None => None,
        Some(g) => {
            if !g.filter.contains("${dn}") && !g.filter.contains("${account}") {
                return Err(at(
                    "group_search.filter",
                    "must contain ${dn} or ${account}".into(),
                ));
            }
            check_filter(&g.filter).map_err(|m| at("group_search.filter", m))?;
            let attribute = g.attribute.unwrap_or_else(|| "cn".into());
            let label = g.label.unwrap_or_else(|| "groups".into());
            if attribute.trim().is_empty() || label.trim().is_empty() {
                return Err(at(
                    "group_search",
                    "attribute and label must not be empty".into(),
                ));
            }
            Some(GroupSearch {
                base: g.base,
                filter: g.filter,
                map: LabelMap {
                    label,
                    attribute,
                    parse_cn: g.parse_cn,
                    lower_case: g.lower_case,
                },
            })
        }
    };

    let connect_timeout = raw.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
    for (key, d) in [("connect_timeout", connect_timeout), ("timeout", timeout)] {
        if d.is_zero() || d > Duration::from_secs(300) {
            return Err(at(
                key,
                "must be more than 0 and at most 300 seconds".into(),
            ));
        }
    }
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    if !(1..=64).contains(&pool_size) {
        return Err(at("pool_size", "must be between 1 and 64".into()));
    }
    Ok(LdapSettings {
        url,
        tls,
        tls_config,
        insecure: raw.insecure_tls_skip_verify,
        bind,
        base: raw.base.unwrap_or_default(),
        filter: raw.filter,
        labels,
        groups,
        connect_timeout,
        timeout,
        pool_size,
        files,
    })
}

/// Splits `host:port` (`[v6]:port` for IPv6).
fn host_port(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    if addr.contains("://") {
        return Err(format!(
            "{addr:?}: expected host:port, not a URL (use tls: always for LDAPS)"
        ));
    }
    let bad = || format!("{addr:?}: expected host:port (e.g. ldap.example.com:389)");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || port == 0 || (host.contains(':') && !bracketed) || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Checks that `template` is a valid filter once its placeholders are
/// filled with a plain value.
fn check_filter(template: &str) -> Result<(), String> {
    // Values with nothing to escape, so the template's own syntax is what
    // the parser judges.
    let filled = template.replace("${account}", "x").replace("${dn}", "cn=x");
    ldap3::parse_filter(&filled)
        .map(|_| ())
        .map_err(|()| format!("{template:?} is not a valid LDAP search filter"))
}

/// A duration: a number of seconds, or a string such as `"500ms"`, `"5s"`,
/// `"1m"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(f64),
        Text(String),
    }
    let parse = |s: &str| -> Option<Duration> {
        let s = s.trim();
        let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = s.strip_suffix('m') {
            (n, 60.0)
        } else {
            (s, 1.0)
        };
        let v: f64 = num.trim().parse().ok()?;
        Duration::try_from_secs_f64(v * scale).ok()
    };
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Secs(s)) => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| serde::de::Error::custom("duration: not a positive number of seconds")),
        Some(Raw::Text(t)) => parse(&t).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "duration {t:?}: expected seconds or a value like \"500ms\", \"5s\", \"1m\""
            ))
        }),
    }
}

#[cfg(test)]
mod tests;
