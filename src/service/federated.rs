//! Federated logins in the token use case: an ID token under a binding
//! (Basic or password grant, user name = binding), an RFC 8693 token
//! exchange, and the refresh tokens of federated sessions.
//!
//! A refresh token of a federated login is bound to the binding and the
//! token's subject: its fingerprint covers the binding's issuer, audience,
//! `require`, `account` and `labels`, so changing or removing the binding
//! revokes it. It carries the account and labels the ID token gave (there
//! is no backend to ask again) and lasts at most the binding's `session`
//! after the ID token was issued. A refresh does not issue a new refresh
//! token: Docker keeps using the one it got at `docker login`.

use super::{Generation, Identity, ServiceError};
use crate::authn::federation::{Federated, FederationError};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::token::refresh::{same_fingerprint, RefreshClaims, RefreshError, RefreshKey};

/// The backend name of federated identities (metrics, audit, refresh tokens).
pub(crate) const BACKEND: &str = "federation";

/// The throttle's account name for token exchanges, which name no user.
pub(crate) const EXCHANGE_ACCOUNT: &str = "(token-exchange)";

/// A login under the binding `binding` with the ID token `token`.
pub(super) async fn login(
    rt: &Generation,
    metrics: &Metrics,
    binding: &str,
    token: &Secret,
    now: u64,
) -> Result<Identity, ServiceError> {
    let result = match rt.federation.login(binding, token.expose(), now).await {
        Some(r) => r,
        None => return Err(ServiceError::Unauthorized),
    };
    finish(metrics, binding, result)
}

/// An RFC 8693 token exchange of `token`.
pub(super) async fn exchange(
    rt: &Generation,
    metrics: &Metrics,
    token: &Secret,
    now: u64,
) -> Result<Identity, ServiceError> {
    if rt.federation.is_empty() {
        return Err(ServiceError::BadRequest(
            "token exchange needs a federation binding; none is configured".into(),
        ));
    }
    let result = rt.federation.exchange(token.expose(), now).await;
    let binding = match &result {
        Ok(f) => f.binding.clone(),
        Err(e) => e.binding().to_owned(),
    };
    finish(metrics, &binding, result)
}

/// Counts and logs the result, and makes it an identity or an error.
fn finish(
    metrics: &Metrics,
    binding: &str,
    result: Result<Federated, FederationError>,
) -> Result<Identity, ServiceError> {
    match result {
        Ok(f) => {
            metrics.federation(binding, "ok");
            tracing::debug!(binding, account = %f.account, "federated login");
            Ok(Identity {
                account: f.account.clone(),
                labels: f.labels.clone(),
                backend: BACKEND,
                ceiling: None,
                federated: Some(Box::new(f)),
            })
        }
        Err(e) => {
            match &e {
                FederationError::Refused { refusal, .. } => {
                    metrics.federation(binding, refusal.check.as_str());
                    tracing::info!(
                        binding = %binding,
                        check = %refusal.check,
                        claim = refusal.claim.as_deref().unwrap_or(""),
                        "federated login refused"
                    );
                }
                FederationError::Unavailable { reason, .. } => {
                    metrics.federation(binding, "unavailable");
                    tracing::warn!(binding = %binding, %reason, "federated login unavailable");
                }
            }
            Err(ServiceError::Federation(e))
        }
    }
}

/// The refresh token of a federated login, when its binding has a
/// `session` that has not already ended.
pub(super) fn refresh_token(
    rt: &Generation,
    key: &RefreshKey,
    f: &Federated,
    service: &str,
    now: u64,
    jti: &str,
) -> Option<String> {
    let binding = rt.federation.binding(&f.binding)?;
    if binding.session == 0 {
        return None;
    }
    let exp = f
        .issued_at
        .unwrap_or(now)
        .min(now)
        .saturating_add(binding.session);
    if exp <= now {
        return None;
    }
    let backend = format!("{BACKEND}:{}", f.binding);
    Some(key.issue(&RefreshClaims {
        fp: key.fingerprint(&backend, &f.subject, &binding.identity_record()),
        sub: f.subject.clone(),
        backend,
        aud: service.to_owned(),
        iat: now,
        exp,
        jti: format!("r{jti}"),
        account: Some(f.account.clone()),
        labels: f.labels.clone(),
    }))
}

/// The identity of a verified refresh token of a federated login
/// (`claims.backend` is `federation:<binding>`), when its binding is
/// still the one it was issued under.
pub(super) fn refreshed(
    rt: &Generation,
    key: &RefreshKey,
    binding: &str,
    claims: RefreshClaims,
) -> Result<Identity, ServiceError> {
    let revoked = || {
        tracing::info!(
            binding,
            refresh_jti = %claims.jti,
            reason = %RefreshError::Revoked,
            "refresh token refused"
        );
        ServiceError::Unauthorized
    };
    let Some(b) = rt.federation.binding(binding) else {
        return Err(revoked());
    };
    let fp = key.fingerprint(&claims.backend, &claims.sub, &b.identity_record());
    if !same_fingerprint(&fp, &claims.fp) {
        return Err(revoked());
    }
    let Some(account) = claims.account.clone() else {
        return Err(revoked());
    };
    Ok(Identity {
        ceiling: None,
        federated: Some(Box::new(Federated {
            binding: binding.to_owned(),
            subject: claims.sub,
            account: account.clone(),
            labels: claims.labels.clone(),
            issued_at: Some(claims.iat),
            expires_at: claims.exp,
        })),
        account,
        labels: claims.labels,
        backend: BACKEND,
    })
}
