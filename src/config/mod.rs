//! Configuration: the YAML file (docker_auth's format plus extensions) is
//! read once into [`raw`] types, then checked and compiled into [`Config`]:
//! keys parsed, ACL compiled, password files loaded. A `Config` that exists
//! is valid; errors name the file, the YAML key and, where known, the line.
//!
//! The sections that decide who gets what — the authentication backends,
//! the ACL, mirrors and services — form a [`Policy`], which
//! [`Config::load_policy`] builds alone: it reads no signing key and no
//! TLS file, so `regauth explain` works where the key is not readable (a
//! developer's checkout, an operator without access to the secret). A
//! [`Config`] is a policy plus what serving and signing need, and derefs
//! to its policy, so `config.acl` reads as it always did and code that
//! only evaluates the policy takes a `&Policy`.

pub(crate) mod federation;
pub mod ldap;
mod lines;
pub(crate) mod lint;
pub mod password_table;
pub(crate) mod raw;
pub mod robots;
pub(crate) mod secrets;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::core::acl::{Acl, RuleSpec};
use crate::core::remap::Mirror;
use crate::core::scope;
use crate::secret::Secret;
use ldap::LdapSettings;
use password_table::{PasswordTable, TableError};
use raw::RawConfig;

/// A configuration error: which file and what is wrong, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ConfigError {
    pub(crate) file: PathBuf,
    pub message: String,
}

/// Where the server listens: `server.addr`, read according to `server.net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `server.net: tcp` (the default): `host:port`, or `:port` for all
    /// interfaces as in Go.
    Tcp(SocketAddr),
    /// `server.net: unix`: the path of a Unix domain socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Listen {
    /// `host:port`, or `unix:PATH` (the form nginx and curl use).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub addr: Listen,
    /// Path prefix with a leading `/` and no trailing `/` (or empty).
    pub(crate) path_prefix: String,
    /// TLS certificate and key files for serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The rustls config built from them.
    pub tls_config: Option<tls::TlsConfig>,
    /// docker_auth's `tls_*` options, as applied to `tls_config`.
    pub tls_options: tls::TlsOptions,
    /// `server.hsts`: responses carry `Strict-Transport-Security`.
    pub hsts: bool,
    pub(crate) real_ip_header: Option<String>,
    pub(crate) real_ip_pos: i64,
    /// Cleartext HTTP/2 (prior knowledge) on a plain listener.
    pub(crate) h2c: bool,
    /// Most connections open at once (the server's default when `None`).
    pub(crate) max_connections: Option<usize>,
    pub(crate) reload: ReloadMode,
    /// What a reload may empty that had entries (see `reload`).
    pub(crate) reload_allow_empty: Vec<MayEmpty>,
}

/// `server.reload`: what makes the running server load its configuration
/// again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReloadMode {
    /// A change to any file the configuration names, once it has settled,
    /// and SIGHUP.
    #[default]
    Auto,
    /// SIGHUP only.
    Signal,
}

/// `server.reload_allow_empty`: the lists a reload may leave empty although
/// the running configuration has entries in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MayEmpty {
    /// The ACL (`acl` or `acl_file`): empty, it denies everything.
    Acl,
    /// The `htpasswd` file: empty, none of its users can log in.
    Htpasswd,
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub(crate) issuer: String,
    pub(crate) ttl_secs: u64,
    pub(crate) kid: KidMode,
    pub(crate) x5c: bool,
    /// Which configured pair signs: `key_path` and `cert_path` are its files.
    pub signing_pair: SigningPair,
    pub(crate) key_path: PathBuf,
    /// The key file's text (PEM), parsed when a generation is built.
    pub(crate) key_pem: Secret,
    /// The passphrase of an encrypted key (`token.key_passphrase_*`).
    pub(crate) key_passphrase: Option<Secret>,
    pub(crate) cert_path: Option<PathBuf>,
    /// The certificate of the signing key (PEM), when configured: the
    /// leaf, possibly followed by the certificates of its chain.
    pub(crate) cert_pem: Option<String>,
    /// `token.publish`: each file and its text (PEM), parsed when a
    /// generation is built.
    pub(crate) publish: Vec<(PathBuf, String)>,
    /// Refresh token lifetime; 0 = refresh tokens disabled.
    pub(crate) refresh_ttl_secs: u64,
    /// Audiences whose tokens are shaped for zot.
    pub(crate) zot_audiences: Vec<String>,
}

/// The files tokens are signed with. docker_auth signs with the server's TLS
/// certificate and key when `token.certificate` and `token.key` are both
/// absent, and its own `simple.yml` relies on that; regauth does the same.
/// `token.key` alone (without a certificate) is also accepted, since `kid`
/// and JWKS need only the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningPair {
    /// `token.key`, with `token.certificate` when set.
    Token,
    /// `server.key` and `server.certificate`.
    Server,
}

impl SigningPair {
    /// The YAML keys of the key and certificate files, for messages.
    pub(crate) fn keys(self) -> (&'static str, &'static str) {
        match self {
            SigningPair::Token => ("token.key", "token.certificate"),
            SigningPair::Server => ("server.key", "server.certificate"),
        }
    }
}

/// A loaded, valid configuration: its [`Policy`] (reached through
/// `Deref`) and the settings of serving and signing.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) path: PathBuf,
    pub server: ServerSettings,
    pub token: TokenSettings,
    pub(crate) policy: Policy,
    pub(crate) throttle: ThrottleSettings,
    /// Every file this configuration was read from (watched for reload).
    pub(crate) files: Vec<PathBuf>,
}

/// Who may log in and what they are granted: the authentication backends
/// and the ACL with its mirrors and services. Holds no key.
#[derive(Debug, Clone)]
pub struct Policy {
    pub users: Option<Arc<PasswordTable>>,
    pub htpasswd: Option<Arc<PasswordTable>>,
    pub ldap: Option<LdapSettings>,
    /// `robots_file`: robot accounts, checked first by name.
    pub robots: Option<Arc<robots::Robots>>,
    pub acl: Arc<Acl>,
    pub(crate) mirrors: Vec<Mirror>,
    /// Allowed registry services; empty = any.
    pub(crate) services: Vec<String>,
    pub(crate) chain: ChainOptions,
    /// `federation:` bindings, in the order written.
    pub(crate) federation: Vec<federation::Binding>,
}

/// Tuning of the authentication chain (`auth_cache`, and the bcrypt pool).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainOptions {
    pub(crate) cache_ttl: Duration,
    pub(crate) cache_entries: usize,
    /// bcrypt verifications running at once (default: number of cores).
    pub(crate) workers: usize,
    /// Verifications allowed to wait for a worker before new ones are refused.
    pub(crate) queue: usize,
}

impl Default for ChainOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ChainOptions {
            cache_ttl: Duration::from_secs(60),
            cache_entries: 10_000,
            workers: cores,
            queue: cores * 16,
        }
    }
}

/// Which `kid` the JWS header carries (config `token.kid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KidMode {
    /// libtrust key ID (distribution 2.x and docker_auth's default).
    #[default]
    Libtrust,
    /// RFC 7638 JWK thumbprint (distribution 3.x with `rootcertbundle`).
    Thumbprint,
    /// No `kid` (zot; distribution with `x5c`).
    None,
}

impl KidMode {
    /// The value as `token.kid` spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KidMode::Libtrust => "libtrust",
            KidMode::Thumbprint => "thumbprint",
            KidMode::None => "none",
        }
    }
}

impl std::ops::Deref for Config {
    type Target = Policy;
    fn deref(&self) -> &Policy {
        &self.policy
    }
}

impl Config {
    /// Reads and validates the file at `path`, and every file it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::from_yaml(path, &read_config(path)?)
    }

    /// Validates `text` as if read from `path` (relative paths inside it are
    /// relative to the working directory, as in docker_auth).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw = parse(path, text)?;
        compile(path, text, raw).map_err(|message| ConfigError {
            file: path.to_owned(),
            message,
        })
    }

    /// Reads the file at `path` and validates its policy sections only
    /// (the YAML as a whole is still parsed strictly): no signing key,
    /// certificate or TLS file is read.
    pub(crate) fn load_policy(path: &Path) -> Result<Policy, ConfigError> {
        Self::policy_from_yaml(path, &read_config(path)?)
    }

    /// [`Config::load_policy`] of `text` as if read from `path`.
    pub(crate) fn policy_from_yaml(path: &Path, text: &str) -> Result<Policy, ConfigError> {
        let mut raw = parse(path, text)?;
        policy(&mut raw, text)
            .map(|(p, _)| p)
            .map_err(|message| ConfigError {
                file: path.to_owned(),
                message,
            })
    }
}

fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            let cwd = std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string());
            if path.is_relative() {
                format!(" (looked for in the working directory, {cwd}; name the configuration file with --config FILE)")
            } else {
                " (name the configuration file with --config FILE; `serve` reads /etc/regauth/config.yml when --config is not given)".to_owned()
            }
        } else {
            String::new()
        };
        ConfigError {
            file: path.to_owned(),
            message: format!("cannot read: {e}{hint}"),
        }
    })
}

/// The YAML, with docker_auth's sections regauth does not implement refused.
fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let fail = |message: String| ConfigError {
        file: path.to_owned(),
        message,
    };
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| fail(e.to_string()))?;
    let unsupported = raw.unsupported_sections();
    if let Some((key, what)) = unsupported.first() {
        let line = line_of_key(text, key).map_or(String::new(), |l| format!(" (line {l})"));
        let mut others: Vec<&str> = unsupported[1..].iter().map(|(k, _)| *k).collect();
        if raw.server.letsencrypt.is_some() {
            others.push("server.letsencrypt");
        }
        let others = if others.is_empty() {
            String::new()
        } else {
            format!("; also not supported here: {}", others.join(", "))
        };
        return Err(fail(format!(
            "{key}{line}: {what} is not supported by regauth; remove the section (regauth never ignores configuration silently){others}"
        )));
    }
    Ok(raw)
}

fn compile(path: &Path, text: &str, mut raw: RawConfig) -> Result<Config, String> {
    // The policy first: it takes its sections out of `raw`.
    let (policy, policy_files) = policy(&mut raw, text)?;
    let server = server_settings(raw.server)?;
    let t = raw.token;
    if t.issuer.is_empty() {
        return Err("token.issuer: must not be empty".into());
    }
    if t.expiration == 0 {
        return Err("token.expiration: must be a positive number of seconds".into());
    }
    let kid = match (t.kid, t.disable_legacy_key_id) {
        (Some(k), _) => k,
        (None, true) => KidMode::Thumbprint,
        (None, false) => KidMode::Libtrust,
    };
    let (signing_pair, key_path, cert_path) = match (t.key, t.certificate, &server.tls) {
        (Some(key), cert, _) => (SigningPair::Token, key, cert),
        (None, Some(_), _) => {
            return Err("token.certificate is set without token.key: set both, or neither to sign with server.certificate and server.key".into())
        }
        (None, None, Some((cert, key))) => (SigningPair::Server, key.clone(), Some(cert.clone())),
        (None, None, None) => {
            return Err("token.key: missing; set token.key (and token.certificate), or server.certificate and server.key to sign with the TLS pair".into())
        }
    };
    let (key_name, cert_name) = signing_pair.keys();
    let key_pem = Secret::new(read(&key_path, key_name)?);
    let passphrase = secrets::load(
        "token.key_passphrase",
        t.key_passphrase_file.as_deref(),
        t.key_passphrase_env.as_deref(),
    )?;
    let cert_pem = match &cert_path {
        Some(p) => Some(read(p, cert_name)?),
        None if t.x5c => return Err("token.x5c: true needs token.certificate".into()),
        None => None,
    };

    let publish = t
        .publish
        .iter()
        .enumerate()
        .map(|(i, p)| Ok((p.clone(), read(p, &format!("token.publish[{i}]"))?)))
        .collect::<Result<Vec<_>, String>>()?;

    let mut files = vec![path.to_owned(), key_path.clone()];
    files.extend(t.key_passphrase_file.clone());
    files.extend(cert_path.clone());
    files.extend(t.publish.iter().cloned());
    files.extend(policy_files);
    if let Some((c, k)) = &server.tls {
        files.extend([c.clone(), k.clone()]);
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    let throttle = throttle_settings(raw.throttle)?;
    Ok(Config {
        path: path.to_owned(),
        server,
        token: TokenSettings {
            issuer: t.issuer,
            ttl_secs: t.expiration,
            kid,
            x5c: t.x5c,
            signing_pair,
            key_path,
            key_pem,
            key_passphrase: passphrase,
            cert_path,
            cert_pem,
            publish,
            refresh_ttl_secs: t.refresh_expiration,
            zot_audiences: t.zot_audiences,
        },
        policy,
        throttle,
        files,
    })
}

/// The policy sections, taken out of `raw`, and the files they name.
///
/// Labels of htpasswd users: an htpasswd file holds names and hashes only,
/// so a `users:` entry with `labels:` and no `password:` for a name the
/// htpasswd file holds gives that user its labels. The entry is not a
/// user of its own (no password, so no login through `users:`): a login
/// as that name is verified by the htpasswd file and carries these labels,
/// and the authentication chain (`authn`) finds them there too. Such an
/// entry for a name the htpasswd file lacks is an error, as it would be
/// a user without a password.
///
/// `text` is the configuration's own text, for the lines of inline `acl:`
/// entries.
fn policy(raw: &mut RawConfig, text: &str) -> Result<(Policy, Vec<PathBuf>), String> {
    let had_users = raw.users.is_some();
    let (label_only, with_password): (Vec<_>, Vec<_>) = raw
        .users
        .take()
        .unwrap_or_default()
        .into_iter()
        .partition(|(n, u)| !n.is_empty() && u.password.is_none() && raw.htpasswd.is_some());
    // A `users:` section of label entries only is no backend of its own.
    let users = if had_users && (label_only.is_empty() || !with_password.is_empty()) {
        Some(Arc::new(
            PasswordTable::from_users(
                with_password
                    .into_iter()
                    .map(|(n, u)| (n, u.password, u.labels)),
            )
            .map_err(|e| {
                let line = match &e {
                    TableError::User { user, .. } => lines::section_key(text, "users", user),
                    TableError::Line { .. } => None,
                };
                match line {
                    Some(l) => format!("users (line {l}): {e}"),
                    None => format!("users: {e}"),
                }
            })?,
        ))
    } else {
        None
    };
    let htpasswd = match &raw.htpasswd {
        Some(p) => {
            let ht_text = read(p, "htpasswd")?;
            let mut table = PasswordTable::from_htpasswd(&ht_text)
                .map_err(|e| format!("htpasswd ({}): {e}", p.display()))?;
            for (name, u) in label_only {
                if !table.set_labels(&name, u.labels) {
                    let at = lines::section_key(text, "users", &name)
                        .map_or(String::new(), |l| format!(" (line {l})"));
                    return Err(format!(
                        "users{at}: user {name:?}: no password, and {} has no user {name:?}; set password: to a bcrypt hash (`regauth hash`), or add the user to the htpasswd file (an entry without password: only gives labels to an htpasswd user)",
                        p.display()
                    ));
                }
            }
            Some(Arc::new(table))
        }
        None => None,
    };
    let ldap = match raw.ldap_auth.take() {
        Some(l) => Some(ldap::settings(l)?),
        None => None,
    };
    let robots = match &raw.robots_file {
        Some(p) => {
            let r = robots::load(p)?;
            // Robots are looked up first by name: a user of the same name
            // could never log in, so the clash is refused.
            for robot in &r.robots {
                let taken = [("users", &users), ("htpasswd", &htpasswd)]
                    .into_iter()
                    .find(|(_, t)| {
                        t.as_ref()
                            .is_some_and(|t| t.users().any(|(n, _)| n == robot.name))
                    });
                if let Some((section, _)) = taken {
                    return Err(format!(
                        "robots_file ({}): robot {:?} has the name of a user of {section}; rename the robot (`regauth robot remove` and `robot add`) or the user",
                        p.display(),
                        robot.name
                    ));
                }
            }
            Some(Arc::new(r))
        }
        None => None,
    };
    let is_user = |name: &str| {
        [&users, &htpasswd]
            .into_iter()
            .flatten()
            .any(|t| matches!(t.lookup(name), password_table::Lookup::Hash(..)))
            || robots
                .as_ref()
                .is_some_and(|r| r.robots.iter().any(|robot| robot.name == name))
    };
    let federation = federation::bindings(std::mem::take(&mut raw.federation), is_user)
        .map_err(|e| lines::with_item_line(text, "federation", e))?;
    if users.is_none()
        && htpasswd.is_none()
        && ldap.is_none()
        && robots.is_none()
        && federation.is_empty()
    {
        return Err(
            "no authentication configured: set users, htpasswd, ldap_auth, robots_file or federation".into(),
        );
    }

    let mut acl_text = None;
    let rules = match (raw.acl.take(), &raw.acl_file) {
        (Some(_), Some(_)) => return Err("acl and acl_file are exclusive: keep one".into()),
        (Some(r), None) => r,
        (None, Some(p)) => {
            let text = read(p, "acl_file")?;
            let rules = if text.trim().is_empty() {
                // An empty list: YAML reads an empty document as null.
                Vec::new()
            } else {
                serde_yaml::from_str::<Vec<RuleSpec>>(&text)
                    .map_err(|e| format!("acl_file ({}): {e}", p.display()))?
            };
            acl_text = Some(text);
            rules
        }
        (None, None) => {
            return Err(
                "no ACL configured: set acl or acl_file (an empty list denies everything)".into(),
            )
        }
    };
    // An entry that does not compile is named with its line, in the file
    // it lives in.
    let acl = Acl::compile(rules).map_err(|e| {
        let crate::core::acl::AclError::Invalid { index, field, .. } = &e;
        match (&acl_text, &raw.acl_file) {
            (Some(t), Some(p)) => {
                let line = lines::entry_line(t, None, *index, field)
                    .map_or(String::new(), |l| format!(" line {l}"));
                format!("acl_file ({}{line}): {e}", p.display())
            }
            _ => match lines::entry_line(text, Some("acl"), *index, field) {
                Some(l) => format!("{e} (line {l})"),
                None => e.to_string(),
            },
        }
    })?;

    let services = std::mem::take(&mut raw.services);
    let mirrors = mirrors(std::mem::take(&mut raw.mirrors), &services)
        .map_err(|e| lines::with_item_line(text, "mirrors", e))?;
    let mut files = Vec::new();
    files.extend(raw.htpasswd.clone());
    files.extend(raw.acl_file.clone());
    files.extend(raw.robots_file.clone());
    files.extend(ldap.iter().flat_map(|l| l.files.iter().cloned()));
    for b in &federation {
        if let federation::KeySource::File { path, .. } = &b.keys {
            files.push(path.clone());
        }
        files.extend(b.ca_path.clone());
    }
    let mut chain = ChainOptions::default();
    if let Some(c) = raw.auth_cache.take() {
        chain.cache_ttl = c.ttl.map_or(chain.cache_ttl, Duration::from_secs);
        chain.cache_entries = c.max_entries.unwrap_or(chain.cache_entries);
    }
    let policy = Policy {
        users,
        htpasswd,
        ldap,
        robots,
        acl: Arc::new(acl),
        mirrors,
        services,
        chain,
        federation,
    };
    Ok((policy, files))
}

/// Brute-force throttling (`throttle:`; see `http::throttle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThrottleSettings {
    pub(crate) window: std::time::Duration,
    /// 0 = no address limit.
    pub(crate) max_failures_per_ip: u32,
    /// 0 = no account limit.
    pub(crate) max_failures_per_account: u32,
    pub(crate) max_tracked: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            window: std::time::Duration::from_secs(300),
            max_failures_per_ip: 30,
            max_failures_per_account: 10,
            max_tracked: 100_000,
        }
    }
}

impl ThrottleSettings {
    pub(crate) fn enabled(&self) -> bool {
        self.max_failures_per_ip > 0 || self.max_failures_per_account > 0
    }
}

fn throttle_settings(raw: Option<raw::RawThrottle>) -> Result<ThrottleSettings, String> {
    let d = ThrottleSettings::default();
    let Some(r) = raw else { return Ok(d) };
    if r.window == Some(0) {
        return Err(
            "throttle.window: must be a positive number of seconds (set the max_failures_* to 0 to turn throttling off)".into(),
        );
    }
    if r.max_tracked == Some(0) {
        return Err("throttle.max_tracked: must be positive".into());
    }
    Ok(ThrottleSettings {
        window: r.window.map_or(d.window, std::time::Duration::from_secs),
        max_failures_per_ip: r.max_failures_per_ip.unwrap_or(d.max_failures_per_ip),
        max_failures_per_account: r
            .max_failures_per_account
            .unwrap_or(d.max_failures_per_account),
        max_tracked: r.max_tracked.unwrap_or(d.max_tracked),
    })
}

fn server_settings(s: raw::RawServer) -> Result<ServerSettings, String> {
    if s.letsencrypt.is_some() {
        return Err("server.letsencrypt: obtaining certificates from Let's Encrypt is not supported by regauth; get them with an ACME client (certbot, lego, cert-manager) and set server.certificate and server.key, which are reloaded when they change".into());
    }
    let addr = match s.net.unwrap_or(raw::RawNet::Tcp) {
        raw::RawNet::Tcp => {
            // docker_auth (Go) accepts ":5001" for all interfaces.
            let addr_text = if s.addr.starts_with(':') {
                format!("0.0.0.0{}", s.addr)
            } else {
                s.addr.clone()
            };
            Listen::Tcp(addr_text.parse().map_err(|_| {
                format!(
                    "server.addr: {:?} is not host:port (e.g. \":5001\" or \"127.0.0.1:5001\"; with server.net: unix it is a socket path)",
                    s.addr
                )
            })?)
        }
        raw::RawNet::Unix if s.addr.is_empty() => {
            return Err("server.addr: must be the socket's path with server.net: unix".into())
        }
        raw::RawNet::Unix => Listen::Unix(PathBuf::from(&s.addr)),
    };
    let prefix = s.path_prefix.unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let path_prefix = if prefix.is_empty() || prefix.starts_with('/') {
        prefix.to_owned()
    } else {
        format!("/{prefix}")
    };
    let tls = match (s.certificate, s.key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("server.certificate and server.key must be set together".into()),
    };
    let tls_options = tls::TlsOptions::parse(
        s.tls_min_version.as_deref(),
        s.tls_curve_preferences.as_deref(),
        s.tls_cipher_suites.as_deref(),
    )?;
    let tls_config = match &tls {
        Some((c, k)) => Some(tls::server_config(c, k, &tls_options)?),
        None => {
            let set = [
                ("tls_min_version", s.tls_min_version.is_some()),
                ("tls_curve_preferences", s.tls_curve_preferences.is_some()),
                ("tls_cipher_suites", s.tls_cipher_suites.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, present)| *present) {
                return Err(format!(
                    "server.{key}: has no effect without server.certificate and server.key (regauth serves plain HTTP); set the TLS pair or remove it"
                ));
            }
            None
        }
    };
    Ok(ServerSettings {
        addr,
        path_prefix,
        tls,
        tls_config,
        tls_options,
        hsts: s.hsts,
        h2c: s.h2c,
        max_connections: match s.max_connections {
            Some(0) => return Err("server.max_connections: must be at least 1".into()),
            n => n,
        },
        real_ip_header: s.real_ip_header.filter(|h| !h.is_empty()),
        real_ip_pos: s.real_ip_pos.unwrap_or(0),
        reload: s.reload.unwrap_or_default(),
        reload_allow_empty: s.reload_allow_empty,
    })
}

fn mirrors(raw: Vec<raw::RawMirror>, services: &[String]) -> Result<Vec<Mirror>, String> {
    let mut out: Vec<Mirror> = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let at = format!("mirrors[{i}]");
        if m.service.is_empty() {
            return Err(format!("{at}.service: must not be empty"));
        }
        let prefix = m.prefix.trim_matches('/').to_owned();
        if prefix.is_empty() {
            return Err(format!("{at}.prefix: must not be empty"));
        }
        if scope::parse(&format!("repository:{prefix}/x:pull")).is_err() {
            return Err(format!(
                "{at}.prefix: {prefix:?} is not a valid repository path prefix"
            ));
        }
        let audience = match m.audience {
            Some(a) if !a.is_empty() => a,
            _ => {
                return Err(format!(
                    "{at}.audience: missing (the registry's own service, the token's aud)"
                ))
            }
        };
        if !services.is_empty() && !services.contains(&audience) {
            return Err(format!(
                "{at}.audience: {audience:?} is not listed in services; tokens would be signed for an audience the allow-list refuses"
            ));
        }
        if services.contains(&m.service) {
            return Err(format!(
                "{at}.service: {:?} is also listed in services; a mirror service must differ from the registry's",
                m.service
            ));
        }
        for (j, other) in out.iter().enumerate() {
            if other.service == m.service {
                return Err(format!(
                    "{at}.service: {:?} already used by mirrors[{j}]",
                    m.service
                ));
            }
            let overlap = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
            if overlap(&prefix, &other.prefix) || overlap(&other.prefix, &prefix) {
                return Err(format!(
                    "{at}.prefix: {prefix:?} overlaps mirrors[{j}].prefix {:?}",
                    other.prefix
                ));
            }
        }
        out.push(Mirror {
            service: m.service,
            prefix,
            audience,
        });
    }
    Ok(out)
}

fn read(path: &Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{key}: {}", cannot_read(path, &e)))
}

/// `cannot read PATH: ERROR`, and for a relative path the directory it was
/// looked for in: paths in the configuration are relative to the working
/// directory (as in docker_auth), not to the configuration file, which a
/// newcomer running regauth from elsewhere does not expect.
pub(crate) fn cannot_read(path: &Path, e: &std::io::Error) -> String {
    let mut msg = format!("cannot read {}: {e}", path.display());
    if path.is_relative() {
        let cwd = std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string());
        msg.push_str(&format!(
            " (relative paths are read from the working directory, {cwd}: run regauth from the directory the configuration expects, or write the path in full)"
        ));
    }
    msg
}

/// Line (1-based) where top-level `key:` appears in the YAML text.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}
