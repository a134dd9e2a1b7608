//! Issuing a token, without HTTP types: parse scopes -> authenticate ->
//! remap for mirrors -> evaluate the ACL -> sign. Time and the token ID are
//! arguments so the whole path is testable byte for byte.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::authn::{AuthnError, Backend, Chain, Credentials, Outcome};
use crate::config::Config;
use crate::core::acl;
use crate::core::claims::{self, Access, ClaimInput};
use crate::core::remap;
use crate::core::scope::{self, Scope};
use crate::core::Labels;

/// Most scopes one request may carry.
pub const MAX_SCOPES: usize = 64;

/// What a client asked for, already taken out of HTTP.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub service: String,
    /// Raw `scope` values; each may hold several space-separated scopes.
    pub scopes: Vec<String>,
    /// The `account` parameter, when sent.
    pub account: Option<String>,
    pub credentials: Option<Credentials>,
    pub ip: Option<IpAddr>,
}

/// The decision for one requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The scope as the registry will see it (rebuilt for mirrors).
    pub scope: Scope,
    pub granted: BTreeSet<String>,
    /// Index of the deciding ACL entry; `None` = no entry matched.
    pub rule: Option<usize>,
}

/// The authorization of a whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The token's `aud`.
    pub audience: String,
    /// The mirror the service named, if any.
    pub mirror: Option<remap::Mirror>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    /// Unix seconds the token was issued at.
    pub issued_at: u64,
    pub account: String,
    pub authorization: Authorization,
    /// The authentication backend that accepted the account.
    pub backend: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed request: a one-line reason safe to return.
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication failed")]
    Unauthorized,
    #[error(transparent)]
    Backend(#[from] AuthnError),
}

/// Evaluates `scopes` (already parsed) for an authenticated account: the
/// pure part of issuing, shared with `regauth explain`.
pub fn authorize(
    config: &Config,
    account: &str,
    labels: &Labels,
    service: &str,
    ip: Option<IpAddr>,
    scopes: &[Scope],
) -> Result<Authorization, ServiceError> {
    let mirror = check_service(config, service)?;
    let (audience, scopes) = match mirror {
        Some(m) => (m.audience.clone(), remap::rebuild_all(m, scopes)),
        None => (service.to_owned(), scopes.to_vec()),
    };
    let grants = scopes
        .into_iter()
        .map(|s| {
            let d = config.acl.evaluate(&acl::Request {
                account,
                typ: &s.typ,
                name: &s.name,
                service,
                ip,
                labels,
                actions: &s.actions,
            });
            Grant {
                scope: s,
                granted: d.granted,
                rule: d.rule,
            }
        })
        .collect();
    Ok(Authorization {
        audience,
        mirror: mirror.cloned(),
        grants,
    })
}

/// The mirror `service` names, or `None` for a registry service; an error
/// when an allow-list of services is configured and `service` is not on it.
fn check_service<'c>(
    config: &'c Config,
    service: &str,
) -> Result<Option<&'c remap::Mirror>, ServiceError> {
    if let Some(m) = remap::find(&config.mirrors, service) {
        return Ok(Some(m));
    }
    if config.services.is_empty() || config.services.iter().any(|s| s == service) {
        Ok(None)
    } else {
        Err(ServiceError::BadRequest(format!(
            "unknown service {service:?}"
        )))
    }
}

/// Parses, authenticates, authorizes and signs. `now` is Unix seconds;
/// `jti` must come from a CSPRNG.
pub async fn issue_token(
    config: &Config,
    authn: &Chain,
    req: &TokenRequest,
    now: u64,
    jti: String,
) -> Result<Issued, ServiceError> {
    let scopes = scope::parse_all(req.scopes.iter().map(String::as_str), MAX_SCOPES)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if let (Some(account), Some(creds)) = (&req.account, &req.credentials) {
        if *account != creds.user {
            return Err(ServiceError::BadRequest(
                "account does not match the authenticated user".into(),
            ));
        }
    }
    // Reject unknown services before spending a bcrypt verification.
    check_service(config, &req.service)?;
    let verdict = authn.authenticate(req.credentials.as_ref()).await?;
    let Outcome::Authenticated(labels) = verdict.outcome else {
        return Err(ServiceError::Unauthorized);
    };
    let account = req.credentials.as_ref().map_or("", |c| c.user.as_str());
    let authorization = authorize(config, account, &labels, &req.service, req.ip, &scopes)?;
    let access = authorization
        .grants
        .iter()
        .map(|g| Access {
            typ: g.scope.typ.clone(),
            name: g.scope.name.clone(),
            actions: g.granted.iter().cloned().collect(),
        })
        .collect();
    let claims = claims::build(ClaimInput {
        issuer: &config.token.issuer,
        account,
        audience: &authorization.audience,
        ttl_secs: config.token.ttl_secs,
        now,
        jti,
        access,
    });
    Ok(Issued {
        token: config.signer.sign(&claims),
        expires_in: config.token.ttl_secs,
        issued_at: now,
        account: account.to_owned(),
        authorization,
        backend: verdict.backend,
    })
}

/// The authentication chain a config describes.
pub fn chain_for(config: &Config) -> Chain {
    let mut backends = Vec::new();
    if let Some(u) = &config.users {
        backends.push(Backend::Table {
            name: "users",
            table: u.clone(),
        });
    }
    if let Some(h) = &config.htpasswd {
        backends.push(Backend::Table {
            name: "htpasswd",
            table: h.clone(),
        });
    }
    Chain::new(backends, config.chain)
}

/// Everything one configuration generation needs to serve requests. The
/// server holds it behind an atomic swap so a reload replaces it whole.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub authn: Chain,
}

impl Runtime {
    pub fn new(config: Config) -> Runtime {
        let authn = chain_for(&config);
        Runtime { config, authn }
    }
}
