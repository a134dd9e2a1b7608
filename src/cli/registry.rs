//! `registry-config`: the snippet (and files) a registry needs to trust
//! this server's tokens.
//!
//! The snippet's `service` is the name the registry puts in its challenge
//! and then requires as the tokens' `aud`, so it is taken from the
//! configuration rather than guessed: the only entry of `services:` (or,
//! without that list, the one audience the mirrors share). A `--service`
//! the configuration would refuse — not on `services:`, or a mirror
//! front's service rather than the registry's own — is an error: a
//! registry configured with it would send clients to ask for tokens
//! regauth answers with 400, or verify an `aud` regauth never signs.

use std::path::Path;

use super::{load, CliError, RegistryArgs, RegistryKind};
use crate::config::Policy;

pub fn registry_config(a: &RegistryArgs) -> Result<(), CliError> {
    let g = load(&a.config)?;
    let c = &g.config;
    let service = registry_service(c, a.service.as_deref())
        .map_err(|e| CliError(format!("{}: {e}", a.config.display())))?;
    let scheme = if c.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let realm = a.realm.as_deref().map_or_else(
        || format!("{scheme}://{}{}/auth", c.server.addr, c.server.path_prefix),
        str::to_owned,
    );
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .unwrap_or(p.to_owned())
            .display()
            .to_string()
    };
    let mut cert = c.token.cert_path.as_deref().map(abs);
    let mut jwks = None;
    if let Some(dir) = a.out.as_deref() {
        let written = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let jwks_path = dir.join("jwks.json");
            std::fs::write(
                &jwks_path,
                serde_json::to_string_pretty(&g.signer.jwks()).unwrap_or_default(),
            )?;
            jwks = Some(abs(&jwks_path));
            let (pem, bare) = g.signer.bundle();
            for p in bare {
                eprintln!("warning: {} is a bare public key: it is in jwks.json, but a rootcertbundle holds certificates only; publish its certificate to have it in token.pem", p.display());
            }
            if !pem.is_empty() {
                let cert_path = dir.join("token.pem");
                std::fs::write(&cert_path, pem)?;
                cert = Some(abs(&cert_path));
            }
            Ok(())
        })();
        written.map_err(|e| format!("writing to {}: {e}", dir.display()))?;
    }
    if a.out.is_none() && !g.signer.published().is_empty() {
        eprintln!("warning: token.publish is set: pass --out DIR to write a bundle (token.pem, jwks.json) holding the signing and the published keys; token.certificate alone holds only the signing key");
    }
    let need_cert = || {
        cert.clone().unwrap_or_else(|| {
            eprintln!("warning: token.certificate is not set; create one with `regauth keygen` or openssl");
            "<path to token.certificate>".into()
        })
    };
    let issuer = &c.token.issuer;
    let service = &service;
    match a.kind {
        RegistryKind::Distribution => {
            if c.token.kid != crate::config::KidMode::Libtrust && !c.token.x5c {
                eprintln!("warning: distribution 2.x matches tokens by libtrust kid: set token.kid: libtrust or token.x5c: true");
            }
            println!("# distribution 2.x (docker-registry) config.yml");
            println!("auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer:?}\n    rootcertbundle: {}", need_cert());
        }
        RegistryKind::DistributionV3 => {
            println!("# distribution 3.x config.yml");
            match &jwks {
                Some(path) => println!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer:?}\n    jwks: {path}"
                ),
                None => {
                    if c.token.kid != crate::config::KidMode::Thumbprint && !c.token.x5c {
                        eprintln!("warning: with rootcertbundle, distribution 3.x matches tokens by JWK thumbprint: set token.kid: thumbprint or token.x5c: true, or pass --out DIR to use a JWKS file");
                    }
                    println!(
                        "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer:?}\n    rootcertbundle: {}",
                        need_cert()
                    );
                }
            }
        }
        RegistryKind::Zot => {
            println!("# zot config.json, inside \"http\"");
            println!(
                "\"auth\": {{\"bearer\": {{\"realm\": \"{realm}\", \"service\": \"{service}\", \"cert\": \"{}\"}}}}",
                need_cert()
            );
        }
    }
    Ok(())
}

/// The registry's service for the snippet: `flag` when the configuration
/// accepts it as a registry's own service, else the one it names.
fn registry_service(p: &Policy, flag: Option<&str>) -> Result<String, String> {
    let listed = || p.services.join(", ");
    if let Some(s) = flag {
        if let Some((i, m)) = p.mirrors.iter().enumerate().find(|(_, m)| m.service == s) {
            return Err(format!(
                "--service {s:?} is the service of mirrors[{i}] (what the mirror front announces); the registry's own service is that mirror's audience: --service {}",
                m.audience
            ));
        }
        if !p.services.is_empty() && !p.services.iter().any(|x| x == s) {
            return Err(format!(
                "--service {s:?} is not in services: [{}]; regauth refuses tokens for it (400), so pass one of those or add it to services:",
                listed()
            ));
        }
        return Ok(s.to_owned());
    }
    let mut audiences: Vec<&str> = p.mirrors.iter().map(|m| m.audience.as_str()).collect();
    audiences.sort_unstable();
    audiences.dedup();
    match (p.services.as_slice(), audiences.as_slice()) {
        ([only], _) => Ok(only.clone()),
        ([], [only]) => Ok((*only).to_owned()),
        ([], [_, _, ..]) => Err(format!(
            "--service is required: the mirrors name several audiences ({}); pass the one this registry calls itself",
            audiences.join(", ")
        )),
        ([], _) => Err(
            "--service is required: the configuration has no services: list; pass the name the registry calls itself (e.g. --service registry.example.com), and list it in services: so that regauth refuses any other".into(),
        ),
        (_, _) => Err(format!(
            "--service is required: services: lists several ({}); pass the one this registry calls itself",
            listed()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(services: &[&str], mirrors: &[(&str, &str)]) -> Policy {
        let yaml = format!(
            "server: {{addr: \":5001\"}}\ntoken: {{issuer: i, expiration: 1, key: k}}\nusers: {{\"\": {{}}}}\nacl: []\nservices: [{}]\nmirrors: [{}]\n",
            services.join(", "),
            mirrors
                .iter()
                .map(|(s, a)| format!("{{service: {s}, prefix: {s}, audience: {a}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        crate::config::Config::policy_from_yaml(Path::new("c.yml"), &yaml).unwrap()
    }

    #[test]
    fn the_service_comes_from_the_configuration() {
        type Case<'a> = (
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Result<&'a str, &'a str>,
        );
        let cases: &[Case] = &[
            (&["x"], &[], None, Ok("x")),
            (&["x"], &[], Some("x"), Ok("x")),
            (&["x", "z"], &[], Some("z"), Ok("z")),
            (
                &["x"],
                &[],
                Some("y"),
                Err("--service \"y\" is not in services: [x]"),
            ),
            (
                &["x", "z"],
                &[],
                None,
                Err("--service is required: services: lists several (x, z)"),
            ),
            (
                &[],
                &[],
                None,
                Err("--service is required: the configuration has no services: list"),
            ),
            (&[], &[], Some("any.thing"), Ok("any.thing")),
            (&[], &[("docker.io", "reg")], None, Ok("reg")),
            (
                &[],
                &[
                    ("docker.io", "reg"),
                    ("ghcr.io", "other"),
                    ("quay.io", "reg"),
                ],
                None,
                Err("--service is required: the mirrors name several audiences (other, reg)"),
            ),
            (&["reg"], &[("docker.io", "reg")], None, Ok("reg")),
            (
                &[],
                &[("docker.io", "reg")],
                Some("docker.io"),
                Err("--service \"docker.io\" is the service of mirrors[0]"),
            ),
        ];
        for (services, mirrors, flag, want) in cases {
            let got = registry_service(&policy(services, mirrors), *flag);
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w),
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{services:?} {flag:?}: {g}"),
                _ => panic!("{services:?} {mirrors:?} {flag:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
