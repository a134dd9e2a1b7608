//! Who is asking: anonymous, a password (Basic or OAuth2 password grant),
//! an ID token (the same, with a federation binding's name as the user; or
//! a token exchange), or a refresh token. Records authentication metrics.

use std::sync::Arc;
use std::time::Instant;

use super::{Generation, ServiceError};
use crate::authn::{AuthnError, Credentials, FirstLook, Outcome, Verdict};
use crate::core::ceiling::Ceiling;
use crate::core::Labels;
use crate::metrics::{BackendLabel, Metrics};
use crate::secret::Secret;
use crate::token::refresh::{same_fingerprint, RefreshError};

/// How the client identifies itself.
#[derive(Debug, Clone, Default)]
pub enum Login {
    #[default]
    Anonymous,
    Password(Credentials),
    /// `grant_type=refresh_token`.
    Refresh(Secret),
    /// RFC 8693 `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`:
    /// the `subject_token` as the password, under the user
    /// [`super::federated::EXCHANGE_ACCOUNT`] (which only the throttle sees).
    Exchange(Credentials),
}

/// An authenticated account.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account as the backend knows it (which may differ from the
    /// typed user name in letter case, for LDAP), `""` for anonymous.
    pub(crate) account: String,
    pub(crate) labels: Labels,
    pub(crate) backend: &'static str,
    /// The most this account may be granted (robots), whatever the ACL says.
    pub(crate) ceiling: Option<Arc<Ceiling>>,
    /// The federated login behind this identity, for federated logins.
    pub(crate) federated: Option<Box<crate::authn::federation::Federated>>,
}

pub(super) async fn identify(
    rt: &Generation,
    metrics: &Metrics,
    login: &Login,
    service: &str,
    now: u64,
) -> Result<Identity, ServiceError> {
    let mut who = match login {
        Login::Anonymous => password(rt, metrics, None).await,
        // Binding names are never user names (a load error), so an ID
        // token never reaches the password backends or their cache.
        Login::Password(c) if rt.federation.binding(&c.user).is_some() => {
            Box::pin(super::federated::login(
                rt,
                metrics,
                &c.user,
                &c.password,
                now,
            ))
            .await
        }
        Login::Password(c) => password(rt, metrics, Some(c)).await,
        Login::Exchange(c) => {
            Box::pin(super::federated::exchange(rt, metrics, &c.password, now)).await
        }
        // Boxed: the refresh grant's state (the token's claims, the
        // backend lookup) would otherwise enlarge every request's future.
        Login::Refresh(token) => Box::pin(refresh(rt, token, service, now)).await,
    }?;
    if who.backend == "robot" {
        // A robot's grant never exceeds its ceiling, by password or by
        // refresh token; one removed or expired since is refused.
        let robots = rt.authn.robots();
        let Some((ceiling, _, _)) = robots.and_then(|t| t.current(&who.account, now as i64)) else {
            tracing::info!(robot = %who.account, reason = "removed or expired", "robot refused");
            return Err(ServiceError::Unauthorized);
        };
        who.ceiling = Some(Arc::clone(ceiling));
    }
    Ok(who)
}

async fn password(
    rt: &Generation,
    metrics: &Metrics,
    creds: Option<&Credentials>,
) -> Result<Identity, ServiceError> {
    // Anonymous requests and cache hits are answered at once; only a
    // verification by a backend awaits, in a future of its own.
    let verdict = match rt.authn.without_backends(creds) {
        FirstLook::Answered(v) => {
            if v.cached {
                metrics.cache_lookup(true);
            }
            v
        }
        FirstLook::NeedsBackend(c) => Box::pin(verify(rt, metrics, c)).await?,
    };
    tracing::debug!(
        account = creds.map_or("", |c| c.user.as_str()),
        backend = verdict.backend,
        cached = verdict.cached,
        outcome = match &verdict.outcome {
            Outcome::Authenticated(_) => "authenticated",
            Outcome::Denied => "denied",
            Outcome::NoMatch => "no_match",
        },
        "authentication verdict"
    );
    let Outcome::Authenticated(labels) = verdict.outcome else {
        if let (Some(c), Some(robots)) = (creds, rt.authn.robots()) {
            // Which check failed: one more SHA-256, on refusals only.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            match robots.check(&c.user, &c.password, now) {
                crate::authn::robots::Check::Expired { .. } => {
                    metrics.robot_login(&c.user, "expired")
                }
                crate::authn::robots::Check::WrongSecret => {
                    metrics.robot_login(&c.user, "wrong_secret")
                }
                _ => {}
            }
        }
        return Err(ServiceError::Unauthorized);
    };
    // The backend's spelling of the account when it has its own.
    let account = verdict
        .account
        .unwrap_or_else(|| creds.map_or("", |c| c.user.as_str()).to_owned());
    if verdict.backend == "robot" {
        metrics.robot_login(&account, "ok");
    }
    Ok(Identity {
        account,
        labels,
        backend: verdict.backend,
        ceiling: None,
        federated: None,
    })
}

async fn refresh(
    rt: &Generation,
    token: &Secret,
    service: &str,
    now: u64,
) -> Result<Identity, ServiceError> {
    let Some(key) = &rt.refresh_key else {
        return Err(ServiceError::BadRequest(
            "refresh tokens are not enabled on this server".into(),
        ));
    };
    let refused = |why: RefreshError| {
        tracing::info!(reason = %why, "refresh token refused");
        ServiceError::Unauthorized
    };
    let claims = key.verify(token.expose(), service, now).map_err(refused)?;
    if let Some(binding) = claims
        .backend
        .strip_prefix(super::federated::BACKEND)
        .and_then(|b| b.strip_prefix(':'))
    {
        let binding = binding.to_owned();
        return super::federated::refreshed(rt, key, &binding, claims);
    }
    // The signature holds: say whose token is refused, so an operator can
    // find who still uses a revoked identity token.
    let revoked = || {
        tracing::info!(
            account = %claims.sub,
            backend = %claims.backend,
            refresh_jti = %claims.jti,
            reason = %RefreshError::Revoked,
            "refresh token refused"
        );
        ServiceError::Unauthorized
    };
    let current = rt.authn.current(&claims.backend, &claims.sub).await?;
    let Some((labels, record)) = current else {
        return Err(revoked());
    };
    let fp = key.fingerprint(&claims.backend, &claims.sub, &record);
    if !same_fingerprint(&fp, &claims.fp) {
        return Err(revoked());
    }
    let backend = rt
        .authn
        .backends()
        .iter()
        .map(|b| b.name())
        .find(|n| *n == claims.backend)
        .unwrap_or("none");
    Ok(Identity {
        account: claims.sub,
        labels,
        backend,
        ceiling: None,
        federated: None,
    })
}

/// Verifies credentials the cache could not answer with the backends, and
/// records cache and per-backend metrics.
async fn verify(
    rt: &Generation,
    metrics: &Metrics,
    creds: &Credentials,
) -> Result<Verdict, ServiceError> {
    let start = Instant::now();
    let result = rt.authn.verify_with_backends(creds).await;
    let timed_backend = match &result {
        Ok(v) => {
            metrics.cache_lookup(v.cached);
            (!v.cached).then_some(v.backend)
        }
        Err(AuthnError::Unavailable { backend, .. }) => {
            metrics
                .authn_errors
                .get_or_create(&BackendLabel { backend })
                .inc();
            Some(*backend)
        }
        Err(AuthnError::Busy) => {
            metrics
                .authn_errors
                .get_or_create(&BackendLabel { backend: "pool" })
                .inc();
            None
        }
    };
    if let Some(backend) = timed_backend {
        metrics
            .authn_seconds
            .get_or_create(&BackendLabel { backend })
            .observe(start.elapsed().as_secs_f64());
    }
    Ok(result?)
}
