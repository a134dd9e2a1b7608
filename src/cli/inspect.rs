//! `check` and `explain`: what a configuration says, without serving.

use std::path::Path;

use super::load;
use crate::core::scope;

pub fn check(path: &Path) -> i32 {
    let c = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!("{}: OK", path.display());
    let scheme = if c.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "  listen:     {scheme}://{}{}",
        c.server.addr, c.server.path_prefix
    );
    println!(
        "  token:      issuer {:?}, {} s, {} key, kid {:?}{}",
        c.token.issuer,
        c.token.ttl_secs,
        c.signer.alg().as_str(),
        c.token.kid,
        if c.token.x5c { ", x5c" } else { "" }
    );
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
        println!("  ldap:       {}", l.server());
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
    // Valid but likely not meant: warnings, exit 0.
    for w in c.acl.warnings() {
        eprintln!("warning: {w}");
    }
    if c.ldap
        .as_ref()
        .is_some_and(|l| l.account_attributes().is_empty())
    {
        eprintln!("warning: ldap_auth.filter: no attribute is matched exactly against ${{account}} (as in \"(uid=${{account}})\"), so LDAP logins keep the name as typed, in whatever case the directory accepts it: match LDAP accounts case-insensitively in the ACL (\"/(?i)^alice$/\") or on labels");
    }
    0
}

pub struct ExplainArgs<'a> {
    pub config: &'a Path,
    pub account: &'a str,
    pub scopes: &'a [String],
    pub service: &'a str,
    pub ip: Option<std::net::IpAddr>,
    pub labels: &'a [String],
}

pub fn explain(a: ExplainArgs<'_>) -> i32 {
    let c = match load(a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let labels = match super::parse_labels(a.labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let scopes = match scope::parse_all(
        a.scopes.iter().map(String::as_str),
        crate::service::MAX_SCOPES,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let auth =
        match crate::service::authorize(&c, a.account, &labels, a.service, a.ip, scopes.clone()) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
    println!(
        "account {:?}, service {:?} -> aud {:?}",
        a.account, a.service, auth.audience
    );
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
    0
}
