//! `check` and `explain`: what a configuration says, without serving.
//!
//! `explain` loads only the configuration's policy (backends, ACL,
//! mirrors, services: [`Config::load_policy`]), never the signing key, so
//! it runs wherever the configuration and the files it names for those
//! sections are readable. Without `--label`, the account's labels are
//! those a login would get, looked up without a password in the backends
//! a login asks, in the same order ([`Chain::labels_of`]): `users`
//! entries carry theirs, htpasswd users those of a `users:` entry without
//! `password:` for their name (none otherwise), LDAP is searched with
//! the service account. What cannot be looked up — LDAP down, or binding
//! as the user — is said on the `labels:` line, and the ACL is evaluated
//! with no labels rather than failing: the decision for an account without
//! labels is still worth seeing.

use super::{load, CheckArgs, CliError, ExplainArgs};
use crate::authn::{Chain, LabelSource};
use crate::config::Config;
use crate::core::{scope, Labels};

pub fn check(a: &CheckArgs) -> Result<(), CliError> {
    let path = a.config.as_path();
    let g = load(&a.config)?;
    let c = &g.config;
    println!("{}: OK", path.display());
    let scheme = if c.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match &c.server.addr {
        crate::config::Listen::Tcp(addr) => {
            println!("  listen:     {scheme}://{addr}{}", c.server.path_prefix)
        }
        crate::config::Listen::Unix(path) => println!(
            "  listen:     {scheme} on the Unix socket {}, path prefix {:?}",
            path.display(),
            c.server.path_prefix
        ),
    }
    if c.server.tls.is_some() {
        let o = &c.server.tls_options;
        let min = match (&o.raised_min_version, o.tls13_only) {
            (_, true) => "TLS 1.3 only".to_owned(),
            (Some(asked), false) => format!(
                "TLS 1.2 and 1.3 (tls_min_version {asked} asked for less; rustls speaks TLS 1.2 and 1.3 only)"
            ),
            (None, false) => "TLS 1.2 and 1.3".to_owned(),
        };
        let count = |n: usize| {
            if n == 0 {
                "default".to_owned()
            } else {
                n.to_string()
            }
        };
        println!(
            "  tls:        {min}; curves {}, cipher suites {}",
            count(o.curves.len()),
            count(o.suites.len())
        );
    }
    if c.server.hsts {
        println!(
            "  hsts:       Strict-Transport-Security: {}",
            crate::http::HSTS
        );
    }
    println!(
        "  token:      issuer {:?}, {} s, {} key, kid {}{}",
        c.token.issuer,
        c.token.ttl_secs,
        g.signer.alg().as_str(),
        c.token.kid.as_str(),
        if c.token.x5c { ", x5c" } else { "" }
    );
    let (key_name, cert_name) = c.token.signing_pair.keys();
    let fallback = match c.token.signing_pair {
        crate::config::SigningPair::Server => " (token.key and token.certificate are absent)",
        crate::config::SigningPair::Token => "",
    };
    match &c.token.cert_path {
        Some(cert) => println!(
            "  signing:    {key_name} {} with {cert_name} {}{fallback}",
            c.token.key_path.display(),
            cert.display()
        ),
        None => println!(
            "  signing:    {key_name} {}{fallback}",
            c.token.key_path.display()
        ),
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for k in g.signer.keys(&c.token) {
        let expiry = match k.not_after {
            Some(t) if t >= now => format!(
                ", certificate expires {} (in {} days)",
                crate::token::chain::format_time(t),
                (t - now) / 86_400
            ),
            Some(t) => format!(
                ", certificate EXPIRED {}",
                crate::token::chain::format_time(t)
            ),
            None => String::new(),
        };
        println!(
            "  key:        {} kid {}, {}{expiry} ({})",
            k.role.as_str(),
            k.kid.as_deref().unwrap_or("none"),
            k.alg.as_str(),
            k.path.display()
        );
    }
    if let Some(u) = &c.users {
        println!(
            "  users:      {} (anonymous {})",
            u.len(),
            if u.allows_anonymous() {
                "allowed"
            } else {
                "refused"
            }
        );
    }
    if let Some(h) = &c.htpasswd {
        println!("  htpasswd:   {} users", h.len());
    }
    if let Some(l) = &c.ldap {
        println!("  ldap:       {}", l.url);
    }
    if let Some(r) = &c.robots {
        println!("  robots:     {} ({})", r.robots.len(), r.path.display());
    }
    for b in &c.federation {
        println!(
            "  federation: {:?} trusts {} (aud {:?}), account {:?}, session {} s",
            b.name,
            b.issuer,
            b.audience,
            b.account.as_str(),
            b.session
        );
    }
    println!("  acl:        {} rules", c.acl.len());
    for m in &c.mirrors {
        println!(
            "  mirror:     service {:?} -> prefix {:?}, aud {:?}",
            m.service, m.prefix, m.audience
        );
    }
    if !c.services.is_empty() {
        println!("  services:   {}", c.services.join(", "));
    }
    for w in g.warnings() {
        eprintln!("warning: {w}");
    }
    // Valid but likely not meant: warnings, exit 0.
    for w in c.acl.warnings() {
        eprintln!("warning: {w}");
    }
    let ldap_keeps_typed_name = g.authn.backends().iter().any(|b| match b {
        crate::authn::Backend::Ldap(l) => l.account_attributes().is_empty(),
        crate::authn::Backend::Table { .. } | crate::authn::Backend::Robots(_) => false,
    });
    if ldap_keeps_typed_name {
        eprintln!("warning: ldap_auth.filter: no attribute is matched exactly against ${{account}} (as in \"(uid=${{account}})\"), so LDAP logins keep the name as typed, in whatever case the directory accepts it: match LDAP accounts case-insensitively in the ACL (\"/(?i)^alice$/\") or on labels");
    }
    // An issuer that cannot be reached now is worth a warning, not a
    // failure: serve starts without its keys and fetches them later.
    if c.federation.iter().any(|b| b.fetches()) {
        let federation = crate::authn::federation::Federation::new(&c.federation);
        let probed = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(federation.probe()));
        match probed {
            Ok(lines) => lines.iter().for_each(|w| eprintln!("warning: {w}")),
            Err(e) => eprintln!("warning: federation keys not probed: {e}"),
        }
    }
    // Warnings do not fail the check: docker_auth loads such files too.
    let warnings = crate::config::lint::warnings(path, c);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !warnings.is_empty() {
        println!("  warnings:   {}", warnings.len());
    }
    Ok(())
}

pub fn explain(a: &ExplainArgs) -> Result<(), CliError> {
    let c = Config::load_policy(&a.config).map_err(|e| CliError(e.to_string()))?;
    let service = super::service_flag(&c, a.service.as_deref())
        .map_err(|e| CliError(format!("{}: {e}", a.config.display())))?;
    let scopes = scope::parse_all(
        a.scope.iter().map(String::as_str),
        crate::service::MAX_SCOPES,
    )
    .map_err(|e| CliError(format!("--scope: {e} ({})", super::SCOPE_SHAPE)))?;
    // After the cheap checks: the lookup may wait for LDAP.
    let (labels, origin) = if a.label.is_empty() {
        login_labels(&crate::service::chain_for(&c), &a.account)
    } else {
        (super::parse_labels(&a.label)?, "from --label".to_owned())
    };
    let who = crate::service::Requester {
        account: &a.account,
        labels: &labels,
        ip: a.ip,
        ceiling: robot_ceiling(&c, &a.account),
    };
    let auth = crate::service::authorize(&c, who, &service, scopes.clone())
        .map_err(|e| CliError(e.to_string()))?;
    println!(
        "account {:?}, service {:?} -> aud {:?}",
        a.account, service, auth.audience
    );
    println!("labels: {} ({origin})", show_labels(&labels));
    if let Some(ceiling) = robot_ceiling(&c, &a.account) {
        let bounds: Vec<String> = ceiling.bounds().iter().map(|b| b.to_string()).collect();
        println!(
            "robot: granted what the ACL grants within its scopes [{}]",
            bounds.join(", ")
        );
    }
    if let Some(m) = &auth.mirror {
        println!(
            "mirror: service {:?} rebuilds repository names under {:?}",
            m.service, m.prefix
        );
        for s in &scopes {
            println!("  {s}  ->  {}", crate::core::remap::rebuild(m, s));
        }
    }
    for g in &auth.grants {
        let granted: Vec<&str> = g.granted.iter().map(|a| a.as_ref()).collect();
        println!("{}", g.scope);
        println!("  granted: [{}]", granted.join(","));
        if g.capped {
            println!("  the robot's scopes took away the rest of what the ACL grants");
        }
        match g.rule {
            Some(i) => {
                let rule = &c.acl.rules()[i];
                let comment = rule.comment.as_deref().unwrap_or("");
                println!(
                    "  decided by acl[{i}] (actions {:?}) {comment}",
                    rule.actions
                );
            }
            None => println!("  no ACL entry matched: denied"),
        }
    }
    Ok(())
}

/// The scope ceiling of `account` when it is a robot.
pub(super) fn robot_ceiling<'p>(
    policy: &'p crate::config::Policy,
    account: &str,
) -> Option<&'p crate::core::ceiling::Ceiling> {
    policy
        .robots
        .as_ref()
        .and_then(|r| r.get(account))
        .map(|r| &r.ceiling)
}

/// The labels a login as `account` would get, and where they come from
/// (in words, for the `labels:` line).
pub(super) fn login_labels(chain: &Chain, account: &str) -> (Labels, String) {
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the lookup: {e}"))
        .and_then(|rt| {
            rt.block_on(chain.labels_of(account))
                .map_err(|e| format!("{e}; continuing without labels"))
        });
    match found {
        Ok(LabelSource::Found { backend, labels }) => (labels, format!("from {backend}")),
        Ok(LabelSource::Unknown) if account.is_empty() => (
            Labels::new(),
            "anonymous requests are not allowed: a login would be refused".to_owned(),
        ),
        Ok(LabelSource::Unknown) => (
            Labels::new(),
            format!("no backend knows {account:?}: a login would be refused"),
        ),
        Ok(LabelSource::NeedsPassword { backend }) => (
            Labels::new(),
            format!("{backend} is searched as the user, which needs the password; continuing without labels (give them with --label)"),
        ),
        Err(why) => (Labels::new(), why),
    }
}

/// `{group: [admins, team], team: [dev]}`.
pub(super) fn show_labels(labels: &Labels) -> String {
    let items: Vec<String> = labels
        .iter()
        .map(|(k, vs)| format!("{k}: [{}]", vs.join(", ")))
        .collect();
    format!("{{{}}}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_shown_as_yaml_flow() {
        let l = |pairs: &[(&str, &[&str])]| -> Labels {
            pairs
                .iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect()
        };
        let cases: [(Labels, &str); 3] = [
            (Labels::new(), "{}"),
            (l(&[("group", &["team"])]), "{group: [team]}"),
            (
                l(&[("team", &["dev"]), ("group", &["admins", "team"])]),
                "{group: [admins, team], team: [dev]}",
            ),
        ];
        for (labels, want) in cases {
            assert_eq!(show_labels(&labels), want);
        }
    }
}
