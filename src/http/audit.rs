//! One audit event per token request (target `regauth::audit`): who, from
//! where, what was asked, what was rebuilt and granted, by which rule. Never
//! a password, an Authorization header or a token.

use std::net::IpAddr;

use crate::service::{Issued, Runtime, ServiceError, TokenRequest};

pub fn record(
    rt: &Runtime,
    req: &TokenRequest,
    ip: IpAddr,
    method: &'static str,
    result: &Result<Issued, ServiceError>,
) {
    let grant = match &req.login {
        crate::service::Login::Anonymous => "anonymous",
        crate::service::Login::Password(_) => "password",
        crate::service::Login::Refresh(_) => "refresh_token",
    };
    let client_id = req.client_id.as_deref().unwrap_or("");
    let claimed = match &req.login {
        crate::service::Login::Password(c) => c.user.as_str(),
        _ => "",
    };
    match result {
        Ok(issued) => {
            let rules = rt.config.acl.rules();
            let granted: Vec<String> = issued
                .authorization
                .grants
                .iter()
                .map(|g| {
                    let actions: Vec<&str> = g.granted.iter().map(String::as_str).collect();
                    let rule = match g.rule {
                        Some(i) => match rules.get(i).and_then(|r| r.comment.as_deref()) {
                            Some(c) => format!("acl[{i}] ({c})"),
                            None => format!("acl[{i}]"),
                        },
                        None => "no match".to_owned(),
                    };
                    format!(
                        "{}:{}:[{}] by {rule}",
                        g.scope.typ,
                        g.scope.name,
                        actions.join(",")
                    )
                })
                .collect();
            tracing::info!(
                target: "regauth::audit",
                outcome = "issued",
                method,
                grant,
                client_id,
                %ip,
                account = %issued.account,
                backend = issued.backend,
                service = %req.service,
                audience = %issued.authorization.audience,
                mirror = issued.authorization.mirror.as_ref().map(|m| m.prefix.as_str()),
                requested = ?req.scopes,
                granted = ?granted,
                offline_requested = req.offline,
                refresh_token_issued = issued.refresh_token.is_some(),
            );
        }
        Err(e) => {
            tracing::info!(
                target: "regauth::audit",
                outcome = "refused",
                method,
                grant,
                client_id,
                %ip,
                account = claimed,
                service = %req.service,
                requested = ?req.scopes,
                reason = %e,
            );
        }
    }
}
