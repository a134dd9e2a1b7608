//! The pure part of issuing: which audience, which rebuilt scopes, and
//! what the ACL grants for each, within the account's scope ceiling when
//! it has one (a robot: granted = ACL ∩ ceiling, so the ACL can never
//! give a robot more than its entry names). Shared with `regauth explain`
//! and `mint`.

use std::net::IpAddr;

use super::ServiceError;
use crate::config::Policy;
use crate::core::acl;
use crate::core::ceiling::Ceiling;
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
    /// The account's ceiling took away actions the ACL granted.
    pub(crate) capped: bool,
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

/// Who asks, as the ACL sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requester<'a> {
    pub(crate) account: &'a str,
    pub(crate) labels: &'a Labels,
    /// The client's address, for `ip` rules.
    pub(crate) ip: Option<IpAddr>,
    /// The most this account may be granted (robots), whatever the ACL says.
    pub(crate) ceiling: Option<&'a Ceiling>,
}

/// Evaluates `scopes` (already parsed) for an authenticated account:
/// [`check_service`], then [`authorize_checked`].
pub(crate) fn authorize(
    policy: &Policy,
    who: Requester<'_>,
    service: &str,
    scopes: Vec<Scope>,
) -> Result<Authorization, ServiceError> {
    let mirror = check_service(policy, service)?;
    Ok(authorize_checked(policy, mirror, who, service, scopes))
}

/// [`authorize`] for a `service` [`check_service`] accepted, naming
/// `mirror`: the token path checks the service before it spends a
/// password verification, and does not check it again.
pub(crate) fn authorize_checked(
    policy: &Policy,
    mirror: Option<&remap::Mirror>,
    who: Requester<'_>,
    service: &str,
    scopes: Vec<Scope>,
) -> Authorization {
    let Requester {
        account,
        labels,
        ip,
        ceiling,
    } = who;
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
            let (granted, capped) = match ceiling {
                Some(c) => {
                    let within = c.limit(&s, &d.granted);
                    let capped = within.len() != d.granted.len();
                    (within, capped)
                }
                None => (d.granted, false),
            };
            Grant {
                scope: s,
                granted,
                rule: d.rule,
                capped,
            }
        })
        .collect();
    Authorization {
        audience,
        mirror: mirror.cloned(),
        grants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::scope;

    #[test]
    fn the_ceiling_caps_what_the_acl_grants() {
        let yaml = "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 1, key: k}\nusers: {\"\": {}}\nacl:\n  - match: {account: ci}\n    actions: [\"*\"]\n  - match: {account: ci2, name: \"ci/*\"}\n    actions: [pull]\n";
        let policy =
            crate::config::Config::policy_from_yaml(std::path::Path::new("c.yml"), yaml).unwrap();
        let ceiling = Ceiling::parse(["repository:ci/*:push,pull"]).unwrap();
        // (account, scope, with the ceiling?, granted, capped)
        let cases: &[(&str, &str, bool, &[&str], bool)] = &[
            (
                "ci",
                "repository:ci/app:push,pull,delete",
                false,
                &["delete", "pull", "push"],
                false,
            ),
            (
                "ci",
                "repository:ci/app:push,pull,delete",
                true,
                &["pull", "push"],
                true,
            ),
            ("ci", "repository:ci/app:pull", true, &["pull"], false),
            ("ci", "repository:other/app:pull", true, &[], true),
            ("ci2", "repository:ci/app:push,pull", true, &["pull"], false),
            ("ci2", "repository:other/app:pull", true, &[], false),
        ];
        for (account, s, capped_by, granted, capped) in cases {
            let who = Requester {
                account,
                labels: &Labels::new(),
                ip: None,
                ceiling: capped_by.then_some(&ceiling),
            };
            let a = authorize(&policy, who, "reg", vec![scope::parse(s).unwrap()]).unwrap();
            let got: Vec<&str> = a.grants[0].granted.iter().map(|x| x.as_ref()).collect();
            assert_eq!(got, *granted, "{account} {s} {capped_by}");
            assert_eq!(a.grants[0].capped, *capped, "{account} {s} {capped_by}");
        }
    }
}
