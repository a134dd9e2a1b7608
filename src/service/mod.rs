//! The token use case, whole and without HTTP types. [`TokenService`]
//! takes a [`TokenRequest`] through the brute-force [`throttle`]'s
//! admission, then [`issue_token`]: parse scopes -> identify the client
//! (password or refresh token) -> remap for mirrors -> evaluate the ACL ->
//! sign; then writes the [`audit`] record and counts a failed login. The
//! clock and the token ID are taken at this edge and passed into
//! [`issue_token`], so the path below is testable byte for byte.
//!
//! Each request runs against one [`Generation`]: everything a reload
//! replaces at once, built from a validated configuration by
//! [`Generation::build`] and swapped whole by [`TokenService::swap`].

pub mod audit;
mod authorize;
mod federated;
mod generation;
mod login;
pub(crate) mod throttle;
mod warnings;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use authorize::authorize_checked;
pub(crate) use authorize::{authorize, check_service, Authorization, Grant, Requester};
pub(crate) use federated::EXCHANGE_ACCOUNT;
pub use generation::{chain_for, Generation};
pub use login::{Identity, Login};
pub use throttle::Method;

use crate::authn::federation::FederationError;
use crate::authn::AuthnError;
use crate::core::claims::{self, Access, ClaimInput};
use crate::core::scope;
use crate::metrics::Metrics;
use crate::token::refresh::{RefreshClaims, RefreshKey};

/// Most scopes one request may carry.
pub(crate) const MAX_SCOPES: usize = 64;

/// What a client asked for, already taken out of HTTP.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub service: String,
    /// Raw `scope` values; each may hold several space-separated scopes.
    pub scopes: Vec<String>,
    /// The `account` parameter, when sent.
    pub account: Option<String>,
    pub login: Login,
    /// The client's address, for ACL `ip` rules, the throttle and the
    /// audit record.
    pub ip: Option<IpAddr>,
    /// `offline_token=true` / `access_type=offline`: a refresh token is wanted.
    pub offline: bool,
    /// The client's `client_id` (for the audit log only).
    pub client_id: Option<String>,
    /// How it came: containerd's GET retry of a refused POST is one guess
    /// for the throttle.
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
    /// Unix seconds the token was issued at.
    pub(crate) issued_at: u64,
    pub account: String,
    pub(crate) authorization: Authorization,
    /// The authentication backend that accepted the account.
    pub(crate) backend: &'static str,
    /// Present when asked for and enabled.
    pub(crate) refresh_token: Option<String>,
    /// The federation binding, for federated logins.
    pub(crate) binding: Option<String>,
    /// Answers an RFC 8693 token exchange (the body says
    /// `issued_token_type`).
    pub(crate) exchanged: bool,
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
    /// Too many failed logins from this address or for this account
    /// ([`throttle`]); `retry_after` is when the window ends.
    #[error("too many failed logins")]
    TooManyFailures { retry_after: std::time::Duration },
    /// A federated login refused (401) or its issuer's keys unavailable (503).
    #[error(transparent)]
    Federation(#[from] FederationError),
}

impl ServiceError {
    /// Whether the answer is a 401: a failed guess for the throttle.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            ServiceError::Unauthorized | ServiceError::Federation(FederationError::Refused { .. })
        )
    }
}

/// The token service: the running generation (swapped whole on reload),
/// the process's metrics and the failed-login counts (kept across
/// reloads). Cheap to clone: everything is shared.
#[derive(Clone)]
pub struct TokenService {
    generation: Arc<ArcSwap<Generation>>,
    metrics: Arc<Metrics>,
    throttle: Arc<throttle::Throttle>,
}

impl TokenService {
    /// The service of `generation`; its federation keys start being
    /// fetched in the background (there is a runtime by now).
    pub fn new(generation: Generation) -> TokenService {
        generation.federation.prefetch();
        TokenService {
            generation: Arc::new(ArcSwap::from_pointee(generation)),
            metrics: Arc::new(Metrics::default()),
            throttle: Arc::new(throttle::Throttle::new()),
        }
    }

    /// The running generation.
    pub fn current(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    /// Replaces the running generation; requests already running finish
    /// with the one they started with. The federation key caches start
    /// from the running generation's keys.
    pub(crate) fn swap(&self, next: Generation) {
        next.federation.inherit(&self.current().federation);
        next.federation.prefetch();
        self.generation.store(Arc::new(next));
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers `req` with generation `gen` (the caller's [`Self::current`],
    /// which it may also need, e.g. for the 401 realm). The throttle's
    /// admission happens here, before the returned future is first polled;
    /// the future holds only what the answer needs.
    pub(crate) fn token(
        &self,
        gen: &Arc<Generation>,
        req: TokenRequest,
    ) -> impl Future<Output = Result<Issued, ServiceError>> + Send + 'static {
        let ip = req.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let admitted = match throttle::guess(&req.login) {
            Some(creds) => self
                .throttle
                .admit(&gen.config.throttle, ip, creds, req.method, &self.metrics)
                .map(Some)
                .map_err(|r| ServiceError::TooManyFailures {
                    retry_after: r.retry_after,
                }),
            None => Ok(None),
        };
        let (gen, throttle, metrics) = (
            Arc::clone(gen),
            Arc::clone(&self.throttle),
            Arc::clone(&self.metrics),
        );
        async move {
            let attempt = admitted?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let result = issue_token(&gen, &metrics, &req, now, crate::token::new_jti()).await;
            let retry = attempt == Some(throttle::Attempt::Retry);
            audit::record(&gen, &req, ip, req.method, retry, &result);
            if let (Err(e), Some(attempt), Some(creds)) =
                (&result, attempt, throttle::guess(&req.login))
            {
                if e.is_unauthorized() {
                    throttle.record_failure(&gen.config.throttle, ip, creds, attempt);
                }
            }
            result
        }
    }
}

/// Parses, identifies, authorizes and signs. `now` is Unix seconds; `jti`
/// must come from a CSPRNG (it also seeds the refresh token's ID).
pub async fn issue_token(
    rt: &Generation,
    metrics: &Metrics,
    req: &TokenRequest,
    now: u64,
    jti: String,
) -> Result<Issued, ServiceError> {
    let config = &rt.config;
    let scopes = scope::parse_all(req.scopes.iter().map(String::as_str), MAX_SCOPES)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if let (Some(account), Login::Password(creds)) = (&req.account, &req.login) {
        if *account != creds.user {
            return Err(ServiceError::BadRequest(
                "account does not match the authenticated user".into(),
            ));
        }
    }
    // Reject unknown services before spending a password verification.
    let mirror = check_service(config, &req.service)?;
    let who = login::identify(rt, metrics, &req.login, &req.service, now).await?;
    // After a federated login the account differs from the binding's
    // name a client may send as `account`.
    let binding = who.federated.as_ref().map(|f| f.binding.as_str());
    if matches!(req.login, Login::Refresh(_) | Login::Exchange(_))
        && req
            .account
            .as_ref()
            .is_some_and(|a| *a != who.account && Some(a.as_str()) != binding)
    {
        return Err(ServiceError::BadRequest(
            "account does not match the refresh token".into(),
        ));
    }
    let requester = Requester {
        account: &who.account,
        labels: &who.labels,
        ip: req.ip,
        ceiling: who.ceiling.as_deref(),
    };
    let authorization = authorize_checked(config, mirror, requester, &req.service, scopes);
    for g in &authorization.grants {
        tracing::debug!(
            account = %who.account,
            scope = %g.scope,
            granted = ?g.granted,
            rule = ?g.rule,
            "acl decision"
        );
    }
    let refresh_token = match (&rt.refresh_key, req.offline, &req.login, &who.federated) {
        (Some(key), true, Login::Password(_) | Login::Exchange(_), Some(f)) => {
            federated::refresh_token(rt, key, f, &req.service, now, &jti)
        }
        (Some(key), true, Login::Password(_), None)
            if !who.account.is_empty() && config.token.refresh_ttl_secs > 0 =>
        {
            // Boxed, as the refresh grant in `login::identify`.
            Box::pin(new_refresh_token(rt, key, &who, &req.service, now, &jti)).await?
        }
        _ => None,
    };
    let mut access: Vec<Access> = authorization
        .grants
        .iter()
        .map(|g| Access {
            typ: &g.scope.typ,
            name: &g.scope.name,
            actions: g.granted.iter().map(|a| a.as_ref()).collect(),
        })
        .collect();
    if config.token.zot_audiences.contains(&authorization.audience) {
        access = claims::zot_access(access);
    }
    let token = rt.signer.sign(&claims::build(ClaimInput {
        issuer: &config.token.issuer,
        account: &who.account,
        audience: &authorization.audience,
        ttl_secs: config.token.ttl_secs,
        now,
        jti,
        access,
    }));
    Ok(Issued {
        token,
        expires_in: config.token.ttl_secs,
        issued_at: now,
        account: who.account,
        authorization,
        backend: who.backend,
        refresh_token,
        binding: who.federated.map(|f| f.binding),
        exchanged: matches!(req.login, Login::Exchange(_)),
    })
}

async fn new_refresh_token(
    rt: &Generation,
    key: &RefreshKey,
    who: &Identity,
    service: &str,
    now: u64,
    jti: &str,
) -> Result<Option<String>, ServiceError> {
    let Some((_, record)) = rt.authn.current(who.backend, &who.account).await? else {
        return Ok(None);
    };
    Ok(Some(key.issue(&RefreshClaims {
        sub: who.account.clone(),
        backend: who.backend.to_owned(),
        fp: key.fingerprint(who.backend, &who.account, &record),
        aud: service.to_owned(),
        iat: now,
        exp: now + rt.config.token.refresh_ttl_secs,
        jti: format!("r{jti}"),
        account: None,
        labels: Default::default(),
    })))
}
