//! One audit record per token request (target `regauth::audit`): who, from
//! where (with `typed_account` when the backend knows the account by
//! another spelling than the one typed, as LDAP does), what was asked, what was rebuilt and granted, by which rule. Never
//! a password, an Authorization header or a token. Strings a client chose
//! (account, service, scopes, client_id) are quoted and escaped, so none
//! can forge a field or a line.
//!
//! Written through [`crate::logging::record`]: the same layout as the
//! other log lines, without a `tracing` event's cost on every request
//! (the figures are in that module's doc).
//! A refused robot login carries `backend="robot"` and `failed_check`
//! (`wrong_secret` or `expired`).
//! `granted` entries read `<type>:<name>:[<actions>] by acl[<i>] (<comment>)`
//! or `... by no match`. A GET that repeats the credentials of a POST
//! refused just before (containerd's fallback, see [`super::throttle`])
//! carries `retry_of_post=true` after `method`.

use std::fmt::{self, Write};
use std::net::IpAddr;

use super::throttle::Method;
use crate::authn::federation::FederationError;
use crate::core::acl::Acl;
use crate::logging::record::Record;
use crate::service::{Generation, Grant, Issued, Login, ServiceError, TokenRequest};

pub fn record(
    rt: &Generation,
    req: &TokenRequest,
    ip: IpAddr,
    method: Method,
    retry_of_post: bool,
    result: &Result<Issued, ServiceError>,
) {
    let Some(mut r) = Record::audit() else {
        return;
    };
    let grant = match &req.login {
        Login::Anonymous => "anonymous",
        Login::Password(_) => "password",
        Login::Refresh(_) => "refresh_token",
        Login::Exchange(_) => "token_exchange",
    };
    r.str("outcome", if result.is_ok() { "issued" } else { "refused" })
        .str("method", method.as_str());
    if retry_of_post {
        r.bool("retry_of_post", true);
    }
    r.str("grant", grant)
        .str("client_id", req.client_id.as_deref().unwrap_or(""))
        .unquoted("ip", ip);
    match result {
        Ok(issued) => {
            let authz = &issued.authorization;
            r.str("account", &issued.account);
            // The backend knows the account by another spelling.
            if let Login::Password(c) = &req.login {
                if c.user != issued.account {
                    r.str("typed_account", &c.user);
                }
            }
            r.str("backend", issued.backend);
            if let Some(b) = &issued.binding {
                r.str("binding", b);
            }
            r.str("service", &req.service)
                .str("audience", &authz.audience);
            if let Some(m) = &authz.mirror {
                r.str("mirror", &m.prefix);
            }
            r.list("requested", &req.scopes, |s, w| w.write_str(s))
                .list("granted", &authz.grants, |g, w| {
                    write_grant(g, &rt.config.acl, w)
                })
                .bool("offline_requested", req.offline)
                .bool("refresh_token_issued", issued.refresh_token.is_some());
        }
        Err(e) => {
            let claimed = match &req.login {
                Login::Password(c) => c.user.as_str(),
                _ => "",
            };
            r.str("account", claimed);
            if let Login::Password(c) = &req.login {
                robot_refusal(rt, c, &mut r);
            }
            if let ServiceError::Federation(f) = e {
                r.str("binding", f.binding());
                if let FederationError::Refused { refusal, .. } = f {
                    r.str("check", refusal.check.as_str());
                }
            }
            r.str("service", &req.service)
                .list("requested", &req.scopes, |s, w| w.write_str(s))
                .str("reason", &e.to_string());
        }
    }
    r.emit();
}

/// For a refused login as a robot: `backend="robot"` and, when the
/// secret was the failure, which check failed (`wrong_secret`, `expired`).
/// One more SHA-256, for refusals of robot names only.
fn robot_refusal(rt: &Generation, c: &crate::authn::Credentials, r: &mut Record) {
    use crate::authn::robots::Check;
    let Some(robots) = rt.authn.robots() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let failed = match robots.check(&c.user, &c.password, now) {
        Check::NotARobot => return,
        Check::Valid(_) => None,
        Check::WrongSecret => Some("wrong_secret"),
        Check::Expired { .. } => Some("expired"),
    };
    r.str("backend", "robot");
    if let Some(f) = failed {
        r.str("failed_check", f);
    }
}

/// `repository:team/app:[pull,push] by acl[1] (comment)`.
fn write_grant(g: &Grant, acl: &Acl, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}:{}:[", g.scope.typ, g.scope.name)?;
    for (i, a) in g.granted.iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        w.write_str(a)?;
    }
    w.write_str("] by ")?;
    match g.rule {
        Some(i) => match acl.rules().get(i).and_then(|r| r.comment.as_deref()) {
            Some(c) => write!(w, "acl[{i}] ({c})"),
            None => write!(w, "acl[{i}]"),
        },
        None => w.write_str("no match"),
    }?;
    if g.capped {
        w.write_str(" within the robot's scopes")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::acl::{MatchSpec, RuleSpec};
    use crate::core::scope;

    #[test]
    fn grants_table() {
        let rule = |comment: Option<&str>| RuleSpec {
            matches: MatchSpec::default(),
            actions: vec!["pull".into()],
            comment: comment.map(str::to_owned),
        };
        let acl = Acl::compile(vec![rule(None), rule(Some("CI \"bots\""))]).unwrap();
        let grant = |s: &str, granted: &[&str], rule| Grant {
            scope: scope::parse(s).unwrap(),
            granted: granted
                .iter()
                .map(|a| crate::core::scope::action(a))
                .collect(),
            rule,
            capped: false,
        };
        let cases = [
            (
                grant("repository:team/app:push,pull", &["pull", "push"], Some(0)),
                "repository:team/app:[pull,push] by acl[0]",
            ),
            (
                grant("repository:x:pull", &[], None),
                "repository:x:[] by no match",
            ),
            (
                grant("registry:catalog:*", &["*"], Some(1)),
                "registry:catalog:[*] by acl[1] (CI \"bots\")",
            ),
        ];
        for (g, want) in cases {
            let mut got = String::new();
            write_grant(&g, &acl, &mut got).unwrap();
            assert_eq!(got, want);
        }
    }
}
