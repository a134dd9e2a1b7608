//! A generation: everything one configuration needs to serve requests,
//! built from the validated, plain-data [`Config`]. Building is where the
//! live objects come to be — the signing key parsed once, the
//! authentication chain with its credential cache and LDAP connection
//! pools, the refresh-token key, the federation bindings' key caches
//! (their first fetch started in the background) — so a reload builds the next generation
//! beside the running one (off the async workers) and swaps it in whole.

use std::sync::Arc;

use crate::authn::federation::Federation;
use crate::authn::ldap::Ldap;
use crate::authn::{Backend, Chain};
use crate::config::{Config, ConfigError, Policy};
use crate::token::refresh::RefreshKey;
use crate::token::Signer;

/// One configuration generation.
#[derive(Debug)]
pub struct Generation {
    pub config: Config,
    pub(crate) signer: Arc<Signer>,
    pub(crate) authn: Chain,
    /// Set when refresh tokens are enabled (`token.refresh_expiration`,
    /// or a federation binding's `session`).
    pub(crate) refresh_key: Option<RefreshKey>,
    /// The federation bindings with their issuers' key caches.
    pub(crate) federation: Arc<Federation>,
}

impl Generation {
    /// The generation `config` describes. Fails only where the key or its
    /// certificate does not parse; the error names the file and YAML key
    /// as a load error does.
    pub fn build(config: Config) -> Result<Generation, ConfigError> {
        let signer = Signer::from_settings(&config.token).map_err(|message| ConfigError {
            file: config.path.clone(),
            message,
        })?;
        let sessions = config.federation.iter().any(|b| b.session > 0);
        let refresh_key =
            (config.token.refresh_ttl_secs > 0 || sessions).then(|| signer.refresh_key());
        Ok(Generation {
            authn: chain_for(&config),
            signer: Arc::new(signer),
            refresh_key,
            federation: Arc::new(Federation::new(&config.federation)),
            config,
        })
    }
}

/// The authentication chain a policy describes. LDAP connections are
/// opened on first use.
pub fn chain_for(policy: &Policy) -> Chain {
    let mut backends = Vec::new();
    if let Some(u) = &policy.users {
        backends.push(Backend::Table {
            name: "users",
            table: u.clone(),
        });
    }
    if let Some(h) = &policy.htpasswd {
        backends.push(Backend::Table {
            name: "htpasswd",
            table: h.clone(),
        });
    }
    if let Some(l) = &policy.ldap {
        backends.push(Backend::Ldap(Arc::new(Ldap::new(l.clone()))));
    }
    if let Some(r) = &policy.robots {
        let entries = r.robots.iter().map(|r| crate::authn::robots::RobotEntry {
            name: r.name.clone(),
            sha256: r.secret_sha256,
            expires: r.expires,
            ceiling: r.ceiling.clone(),
            labels: r.labels.clone(),
        });
        backends.push(Backend::Robots(Arc::new(
            crate::authn::robots::RobotTable::new(entries),
        )));
    }
    Chain::new(backends, policy.chain)
}
