//! The pure part of issuing: which audience, which rebuilt scopes, and
//! what the ACL grants for each. Shared with `regauth explain` and `mint`.

use std::net::IpAddr;

use super::ServiceError;
use crate::config::Policy;
use crate::core::acl;
use crate::core::remap;
use crate::core::scope::{Actions, Scope};
use crate::core::Labels;

/// The decision for one requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The scope as the registry will see it (rebuilt for mirrors).
    pub(crate) scope: Scope,
    pub(crate) granted: Actions,
    /// Index of the deciding ACL entry; `None` = no entry matched.
    pub(crate) rule: Option<usize>,
}

/// The authorization of a whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// The token's `aud`.
    pub(crate) audience: String,
    /// The mirror the service named, if any.
    pub(crate) mirror: Option<remap::Mirror>,
    pub(crate) grants: Vec<Grant>,
}

impl Authorization {
    /// Counts for metrics: (requested scopes, fully granted, partly granted).
    pub(crate) fn summary(&self) -> (usize, usize, usize) {
        let full = self
            .grants
            .iter()
            .filter(|g| g.granted == g.scope.actions)
            .count();
        let partial = self
            .grants
            .iter()
            .filter(|g| !g.granted.is_empty() && g.granted != g.scope.actions)
            .count();
        (self.grants.len(), full, partial)
    }
}

/// The mirror `service` names, or `None` for a registry service; an error
/// when an allow-list of services is configured and `service` is not on it.
pub(crate) fn check_service<'c>(
    policy: &'c Policy,
    service: &str,
) -> Result<Option<&'c remap::Mirror>, ServiceError> {
    if let Some(m) = remap::find(&policy.mirrors, service) {
        return Ok(Some(m));
    }
    if policy.services.is_empty() || policy.services.iter().any(|s| s == service) {
        Ok(None)
    } else {
        Err(ServiceError::BadRequest(format!(
            "unknown service {service:?}"
        )))
    }
}

/// Evaluates `scopes` (already parsed) for an authenticated account:
/// [`check_service`], then [`authorize_checked`].
pub(crate) fn authorize(
    policy: &Policy,
    account: &str,
    labels: &Labels,
    service: &str,
    ip: Option<IpAddr>,
    scopes: Vec<Scope>,
) -> Result<Authorization, ServiceError> {
    let mirror = check_service(policy, service)?;
    Ok(authorize_checked(
        policy, mirror, account, labels, service, ip, scopes,
    ))
}

/// [`authorize`] for a `service` [`check_service`] accepted, naming
/// `mirror`: the token path checks the service before it spends a
/// password verification, and does not check it again.
pub(crate) fn authorize_checked(
    policy: &Policy,
    mirror: Option<&remap::Mirror>,
    account: &str,
    labels: &Labels,
    service: &str,
    ip: Option<IpAddr>,
    scopes: Vec<Scope>,
) -> Authorization {
    let (audience, scopes) = match mirror {
        Some(m) => (m.audience.clone(), remap::rebuild_all(m, &scopes)),
        None => (service.to_owned(), scopes),
    };
    let grants = scopes
        .into_iter()
        .map(|s| {
            let d = policy.acl.evaluate(&acl::Request {
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
    Authorization {
        audience,
        mirror: mirror.cloned(),
        grants,
    }
}
