//! Serde mirror of the YAML file: docker_auth's keys plus regauth's
//! extensions. Unknown keys are rejected by serde with their line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::core::acl::RuleSpec;
use crate::core::Labels;
use crate::token::KidMode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub token: RawToken,
    #[serde(default)]
    pub users: Option<BTreeMap<String, RawUser>>,
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    #[serde(default)]
    pub acl: Option<Vec<RuleSpec>>,
    #[serde(default)]
    pub acl_file: Option<PathBuf>,
    #[serde(default)]
    pub mirrors: Vec<RawMirror>,
    /// Registry services tokens may be issued for (besides mirrors). Empty:
    /// any service, as docker_auth does.
    #[serde(default)]
    pub services: Vec<String>,
    /// Cache of successful password verifications.
    #[serde(default)]
    pub auth_cache: Option<RawAuthCache>,
    /// Brute-force throttling of failed logins.
    #[serde(default)]
    pub throttle: Option<RawThrottle>,

    #[serde(default)]
    pub ldap_auth: Option<crate::authn::ldap::RawLdap>,

    /// OIDC issuers whose ID tokens log in (workload identity).
    #[serde(default)]
    pub federation: Vec<super::federation::RawBinding>,

    // docker_auth sections regauth does not implement: accepted by the parser
    // only so that validation can reject them with a precise message.
    #[serde(default)]
    pub google_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub github_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub oidc_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub gitlab_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub mongo_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub xorm_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub ext_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub plugin_authn: Option<serde_yaml::Value>,
    #[serde(default)]
    pub acl_mongo: Option<serde_yaml::Value>,
    #[serde(default)]
    pub acl_xorm: Option<serde_yaml::Value>,
    #[serde(default)]
    pub ext_authz: Option<serde_yaml::Value>,
    #[serde(default)]
    pub plugin_authz: Option<serde_yaml::Value>,
    #[serde(default)]
    pub casbin_authz: Option<serde_yaml::Value>,
}

impl RawConfig {
    /// `(key, what it is)` for every unsupported docker_auth section present.
    pub fn unsupported_sections(&self) -> Vec<(&'static str, &'static str)> {
        let all: [(&'static str, &'static str, bool); 13] = [
            (
                "google_auth",
                "Google OAuth authentication",
                self.google_auth.is_some(),
            ),
            (
                "github_auth",
                "GitHub OAuth authentication",
                self.github_auth.is_some(),
            ),
            (
                "oidc_auth",
                "OpenID Connect authentication",
                self.oidc_auth.is_some(),
            ),
            (
                "gitlab_auth",
                "GitLab OAuth authentication",
                self.gitlab_auth.is_some(),
            ),
            (
                "mongo_auth",
                "MongoDB authentication",
                self.mongo_auth.is_some(),
            ),
            (
                "xorm_auth",
                "SQL (xorm) authentication",
                self.xorm_auth.is_some(),
            ),
            (
                "ext_auth",
                "external program authentication",
                self.ext_auth.is_some(),
            ),
            (
                "plugin_authn",
                "Go plugin authentication",
                self.plugin_authn.is_some(),
            ),
            ("acl_mongo", "MongoDB ACL", self.acl_mongo.is_some()),
            ("acl_xorm", "SQL (xorm) ACL", self.acl_xorm.is_some()),
            (
                "ext_authz",
                "external program authorization",
                self.ext_authz.is_some(),
            ),
            (
                "plugin_authz",
                "Go plugin authorization",
                self.plugin_authz.is_some(),
            ),
            (
                "casbin_authz",
                "Casbin authorization",
                self.casbin_authz.is_some(),
            ),
        ];
        all.into_iter()
            .filter(|(_, _, present)| *present)
            .map(|(k, what, _)| (k, what))
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub addr: String,
    /// `tcp` (default) or `unix`, where `addr` is a socket path.
    #[serde(default)]
    pub net: Option<RawNet>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub real_ip_header: Option<String>,
    #[serde(default)]
    pub real_ip_pos: Option<i64>,
    /// Serve cleartext HTTP/2 with prior knowledge on a plain listener.
    #[serde(default)]
    pub h2c: bool,
    /// Most connections open at once.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Send `Strict-Transport-Security` on HTTPS responses.
    #[serde(default)]
    pub hsts: bool,
    /// Go's names: `TLS10`..`TLS13`.
    #[serde(default)]
    pub tls_min_version: Option<String>,
    /// Go's names: `P256`, `P384`, `P521`, `X25519`.
    #[serde(default)]
    pub tls_curve_preferences: Option<Vec<String>>,
    /// Go's names, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    #[serde(default)]
    pub tls_cipher_suites: Option<Vec<String>>,
    /// docker_auth's ACME client: parsed only to be refused with a reason.
    #[serde(default)]
    pub letsencrypt: Option<serde_yaml::Value>,
    /// What triggers a reload: `auto` (default: file changes and SIGHUP)
    /// or `signal` (SIGHUP only).
    #[serde(default)]
    pub reload: Option<crate::config::ReloadMode>,
    /// Files a reload may leave without entries (`acl`, `htpasswd`).
    #[serde(default)]
    pub reload_allow_empty: Vec<crate::config::MayEmpty>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawNet {
    Tcp,
    Unix,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub issuer: String,
    /// Token lifetime in seconds.
    pub expiration: u64,
    /// Signing certificate and key; when both are absent, the server's TLS
    /// pair signs (docker_auth's rule).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub disable_legacy_key_id: bool,
    #[serde(default)]
    pub kid: Option<KidMode>,
    #[serde(default)]
    pub x5c: bool,
    /// Passphrase of an encrypted (PKCS#8) key, from a file or the environment.
    #[serde(default)]
    pub key_passphrase_file: Option<PathBuf>,
    #[serde(default)]
    pub key_passphrase_env: Option<String>,
    /// Audiences (registry services) whose tokens are shaped for zot.
    #[serde(default)]
    pub zot_audiences: Vec<String>,
    /// Lifetime of refresh tokens in seconds; 0 (default) disables them.
    #[serde(default)]
    pub refresh_expiration: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMirror {
    pub service: String,
    pub prefix: String,
    #[serde(default)]
    pub audience: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthCache {
    /// Seconds a successful verification is remembered; 0 disables.
    #[serde(default)]
    pub ttl: Option<u64>,
    #[serde(default)]
    pub max_entries: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// Seconds a key's failures are counted for (from its first failure).
    #[serde(default)]
    pub window: Option<u64>,
    /// Failures from one address per window before it is refused; 0 = off.
    #[serde(default)]
    pub max_failures_per_ip: Option<u32>,
    /// Failures for one account per window before addresses that failed
    /// are refused for it; 0 = off.
    #[serde(default)]
    pub max_failures_per_account: Option<u32>,
    /// Most addresses (and, separately, accounts) tracked at once.
    #[serde(default)]
    pub max_tracked: Option<usize>,
}
