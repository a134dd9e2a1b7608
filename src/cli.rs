//! The command line: `serve`, `check`, `hash`, `keygen`, `explain`,
//! `registry-config`. Each subcommand is a function returning an exit code.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::core::{scope, Labels};
use crate::token::Alg;

#[derive(Debug, Parser)]
#[command(
    name = "regauth",
    version,
    about = "Token server for Docker/OCI registries"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server.
    Serve {
        #[arg(long, default_value = "/etc/regauth/config.yml")]
        config: PathBuf,
        /// Listen address, overriding server.addr.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration and summarise it; exit 1 with the error.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the bcrypt hash of a password read from stdin.
    Hash {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=16))]
        cost: u32,
    },
    /// Generate a signing key (token.key) and self-signed certificate (token.pem).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "ES256")]
        alg: Alg,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Show what the ACL grants an account for scopes, and which rule decided.
    Explain {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = "")]
        account: String,
        /// A scope such as repository:team/app:pull,push (repeatable).
        #[arg(long, required = true)]
        scope: Vec<String>,
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// A label of the account, `name=value` (repeatable).
        #[arg(long)]
        label: Vec<String>,
    },
    /// Print the auth snippet a registry needs to trust this server.
    RegistryConfig {
        #[arg(long)]
        config: PathBuf,
        /// Public URL of the token endpoint (default: from server.addr).
        #[arg(long)]
        realm: Option<String>,
        /// The registry's service name (its `aud`).
        #[arg(long, default_value = "registry.local")]
        service: String,
        /// Which registry the snippet is for.
        #[arg(long = "for", value_enum, default_value_t = RegistryKind::Distribution)]
        kind: RegistryKind,
        /// Also write the files the snippet names (jwks.json, token.pem) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RegistryKind {
    /// distribution 2.x (docker-registry): rootcertbundle + libtrust kid or x5c.
    Distribution,
    /// distribution 3.x: a JWKS file whose kid matches the tokens'.
    DistributionV3,
    /// zot: the signing certificate; kid ignored.
    Zot,
}

fn load(path: &Path) -> Result<Config, i32> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        1
    })
}

pub fn check(path: &Path) -> i32 {
    let c = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!("{}: OK", path.display());
    println!("  listen:     {}{}", c.server.addr, c.server.path_prefix);
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
    0
}

pub fn hash(cost: u32) -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("error: reading stdin: {e}");
        return 1;
    }
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("error: empty password");
        return 1;
    }
    match bcrypt::non_truncating_hash(password, cost) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("error: {e} (bcrypt accepts at most 72 bytes)");
            1
        }
    }
}

pub fn keygen(out: &Path, alg: Alg, force: bool) -> i32 {
    let key_path = out.join("token.key");
    let cert_path = out.join("token.pem");
    if !force && (key_path.exists() || cert_path.exists()) {
        eprintln!(
            "error: {} or {} exists; pass --force to overwrite",
            key_path.display(),
            cert_path.display()
        );
        return 1;
    }
    let (key, cert) = match crate::token::keygen::generate(alg, "regauth token signer") {
        Ok(kc) => kc,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        write_private(&key_path, key.as_bytes())?;
        std::fs::write(&cert_path, cert)
    };
    if let Err(e) = write() {
        eprintln!("error: writing to {}: {e}", out.display());
        return 1;
    }
    println!(
        "wrote {} ({}) and {}",
        key_path.display(),
        alg.as_str(),
        cert_path.display()
    );
    0
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(data)
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
    let mut labels = Labels::new();
    for l in a.labels {
        let Some((k, v)) = l.split_once('=') else {
            eprintln!("error: --label {l:?}: expected name=value");
            return 1;
        };
        labels.entry(k.to_owned()).or_default().push(v.to_owned());
    }
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
    let auth = match crate::service::authorize(&c, a.account, &labels, a.service, a.ip, &scopes) {
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
        let granted: Vec<&str> = g.granted.iter().map(String::as_str).collect();
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
