//! `registry-config`: the snippet (and files) a registry needs to trust
//! this server's tokens.

use std::path::Path;

use super::{load, RegistryKind};

pub struct RegistryArgs<'a> {
    pub config: &'a Path,
    pub realm: Option<&'a str>,
    pub service: &'a str,
    pub kind: RegistryKind,
    pub out: Option<&'a Path>,
}

pub fn registry_config(a: RegistryArgs<'_>) -> i32 {
    let c = match load(a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let scheme = if c.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let realm = a.realm.map_or_else(
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
    if let Some(dir) = a.out {
        let written = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let jwks_path = dir.join("jwks.json");
            std::fs::write(
                &jwks_path,
                serde_json::to_string_pretty(&c.signer.jwks()).unwrap_or_default(),
            )?;
            jwks = Some(abs(&jwks_path));
            if let Some(pem) = &c.cert_pem {
                let cert_path = dir.join("token.pem");
                std::fs::write(&cert_path, pem)?;
                cert = Some(abs(&cert_path));
            }
            Ok(())
        })();
        if let Err(e) = written {
            eprintln!("error: writing to {}: {e}", dir.display());
            return 1;
        }
    }
    let need_cert = || {
        cert.clone().unwrap_or_else(|| {
            eprintln!("warning: token.certificate is not set; create one with `regauth keygen` or openssl");
            "<path to token.certificate>".into()
        })
    };
    let issuer = &c.token.issuer;
    let service = a.service;
    match a.kind {
        RegistryKind::Distribution => {
            if c.token.kid != crate::token::KidMode::Libtrust && !c.token.x5c {
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
                    if c.token.kid != crate::token::KidMode::Thumbprint && !c.token.x5c {
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
    0
}
