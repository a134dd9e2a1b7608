//! Serde mirror of the YAML file: docker_auth's keys plus regauth's
//! extensions. Unknown keys are rejected by serde with their line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::KidMode;
use crate::core::acl::RuleSpec;
use crate::core::Labels;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) server: RawServer,
    pub(crate) token: RawToken,
    #[serde(default)]
    pub(crate) users: Option<BTreeMap<String, RawUser>>,
    #[serde(default)]
    pub(crate) htpasswd: Option<PathBuf>,
    #[serde(default)]
    pub(crate) acl: Option<Vec<RuleSpec>>,
    #[serde(default)]
    pub(crate) acl_file: Option<PathBuf>,
    /// Robot accounts: a YAML list of scoped, expiring machine
    /// credentials (see `config::robots`).
    #[serde(default)]
    pub(crate) robots_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) mirrors: Vec<RawMirror>,
    /// Registry services tokens may be issued for (besides mirrors). Empty:
    /// any service, as docker_auth does.
    #[serde(default)]
    pub(crate) services: Vec<String>,
    /// Cache of successful password verifications.
    #[serde(default)]
    pub(crate) auth_cache: Option<RawAuthCache>,
    /// Brute-force throttling of failed logins.
    #[serde(default)]
    pub(crate) throttle: Option<RawThrottle>,

    #[serde(default)]
    pub(crate) ldap_auth: Option<super::ldap::RawLdap>,

    /// OIDC issuers whose ID tokens log in (workload identity).
    #[serde(default)]
    pub federation: Vec<super::federation::RawBinding>,

    // docker_auth sections regauth does not implement: accepted by the parser
    // only so that validation can reject them with a precise message.
    #[serde(default)]
    pub(crate) google_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) github_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) oidc_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) gitlab_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) mongo_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) xorm_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) ext_auth: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) plugin_authn: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) acl_mongo: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) acl_xorm: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) ext_authz: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) plugin_authz: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(crate) casbin_authz: Option<serde_yaml::Value>,
}

impl RawConfig {
    /// `(key, what it is)` for every unsupported docker_auth section present.
    pub(crate) fn unsupported_sections(&self) -> Vec<(&'static str, &'static str)> {
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
pub(crate) struct RawServer {
    pub(crate) addr: String,
    /// `tcp` (default) or `unix`, where `addr` is a socket path.
    #[serde(default)]
    pub(crate) net: Option<RawNet>,
    #[serde(default)]
    pub(crate) path_prefix: Option<String>,
    #[serde(default)]
    pub(crate) certificate: Option<PathBuf>,
    #[serde(default)]
    pub(crate) key: Option<PathBuf>,
    #[serde(default)]
    pub(crate) real_ip_header: Option<String>,
    #[serde(default)]
    pub(crate) real_ip_pos: Option<i64>,
    /// Serve cleartext HTTP/2 with prior knowledge on a plain listener.
    #[serde(default)]
    pub(crate) h2c: bool,
    /// Most connections open at once.
    #[serde(default)]
    pub(crate) max_connections: Option<usize>,
    /// Send `Strict-Transport-Security` on HTTPS responses.
    #[serde(default)]
    pub(crate) hsts: bool,
    /// Go's names: `TLS10`..`TLS13`.
    #[serde(default)]
    pub(crate) tls_min_version: Option<String>,
    /// Go's names: `P256`, `P384`, `P521`, `X25519`.
    #[serde(default)]
    pub(crate) tls_curve_preferences: Option<Vec<String>>,
    /// Go's names, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    #[serde(default)]
    pub(crate) tls_cipher_suites: Option<Vec<String>>,
    /// docker_auth's ACME client: parsed only to be refused with a reason.
    #[serde(default)]
    pub(crate) letsencrypt: Option<serde_yaml::Value>,
    /// What triggers a reload: `auto` (default: file changes and SIGHUP)
    /// or `signal` (SIGHUP only).
    #[serde(default)]
    pub(crate) reload: Option<crate::config::ReloadMode>,
    /// Files a reload may leave without entries (`acl`, `htpasswd`).
    #[serde(default)]
    pub(crate) reload_allow_empty: Vec<crate::config::MayEmpty>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawNet {
    Tcp,
    Unix,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub(crate) issuer: String,
    /// Token lifetime in seconds.
    pub(crate) expiration: u64,
    /// Signing certificate and key; when both are absent, the server's TLS
    /// pair signs (docker_auth's rule).
    #[serde(default)]
    pub(crate) certificate: Option<PathBuf>,
    #[serde(default)]
    pub(crate) key: Option<PathBuf>,
    #[serde(default)]
    pub(crate) disable_legacy_key_id: bool,
    #[serde(default)]
    pub(crate) kid: Option<KidMode>,
    #[serde(default)]
    pub(crate) x5c: bool,
    /// Passphrase of an encrypted (PKCS#8) key, from a file or the environment.
    #[serde(default)]
    pub(crate) key_passphrase_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) key_passphrase_env: Option<String>,
    /// Audiences (registry services) whose tokens are shaped for zot.
    #[serde(default)]
    pub(crate) zot_audiences: Vec<String>,
    /// Lifetime of refresh tokens in seconds; 0 (default) disables them.
    #[serde(default)]
    pub(crate) refresh_expiration: u64,
    /// Certificates or public keys published beside the signing key, never
    /// used to sign.
    #[serde(default)]
    pub(crate) publish: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    #[serde(default)]
    pub(crate) password: Option<String>,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMirror {
    pub(crate) service: String,
    pub(crate) prefix: String,
    #[serde(default)]
    pub(crate) audience: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthCache {
    /// Seconds a successful verification is remembered; 0 disables.
    #[serde(default)]
    pub(crate) ttl: Option<u64>,
    #[serde(default)]
    pub(crate) max_entries: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThrottle {
    /// Seconds a key's failures are counted for (from its first failure).
    #[serde(default)]
    pub(crate) window: Option<u64>,
    /// Failures from one address per window before it is refused; 0 = off.
    #[serde(default)]
    pub(crate) max_failures_per_ip: Option<u32>,
    /// Failures for one account per window before addresses that failed
    /// are refused for it; 0 = off.
    #[serde(default)]
    pub(crate) max_failures_per_account: Option<u32>,
    /// Most addresses (and, separately, accounts) tracked at once.
    #[serde(default)]
    pub(crate) max_tracked: Option<usize>,
}
