//! `hash`, `keygen` and `mint`: passwords, signing keys and offline tokens.

use std::io::Read;
use std::path::Path;

use super::load;
use crate::token::Alg;

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

pub struct MintArgs<'a> {
    pub config: &'a Path,
    pub account: &'a str,
    pub scopes: &'a [String],
    pub service: Option<&'a str>,
    pub ttl: u64,
    pub labels: &'a [String],
    pub no_acl: bool,
    pub allow_empty: bool,
    pub format: super::MintFormat,
    pub registry: Option<&'a str>,
}

/// Above this `--ttl` (a day) `mint` warns: a minted token cannot be
/// revoked before it expires, and a CI job needs minutes.
pub(crate) const MINT_TTL_WARN_SECS: u64 = 86_400;

/// Signs a token offline. Refuses (exit 1) when the configuration or key
/// cannot be loaded, and when the ACL grants none of the scopes asked
/// (unless `--allow-empty`): a token that opens nothing fails later, at
/// the registry, with a message that does not say why. Warns on stderr
/// for scopes granted in part, and for a `--ttl` above a day.
pub fn mint(a: MintArgs<'_>) -> i32 {
    let g = match load(a.config) {
        Ok(g) => g,
        Err(code) => return code,
    };
    if a.ttl > MINT_TTL_WARN_SECS {
        eprintln!(
            "warning: --ttl {} is {} days; a minted token cannot be revoked before it expires: give a CI job minutes (e.g. --ttl 600)",
            a.ttl,
            a.ttl / 86_400
        );
    }
    match mint_token(&g, &a) {
        Ok(out) => {
            println!("{out}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn mint_token(g: &crate::service::Generation, a: &MintArgs<'_>) -> Result<String, String> {
    let c = &g.config;
    use crate::core::claims::{self, Access, ClaimInput};
    if a.format == super::MintFormat::DockerConfig && a.registry.is_none() {
        return Err("--format docker-config needs --registry HOST[:PORT]".into());
    }
    let service =
        super::mint_service(c, a.service).map_err(|e| format!("{}: {e}", a.config.display()))?;
    // The labels a login would get, as `explain` finds them, unless given
    // (or unless the ACL is not asked).
    let labels = if a.labels.is_empty() && !a.no_acl {
        let (labels, origin) =
            super::inspect::login_labels(&crate::service::chain_for(c), a.account);
        eprintln!(
            "labels: {} ({origin})",
            super::inspect::show_labels(&labels)
        );
        labels
    } else {
        super::parse_labels(a.labels)?
    };
    let scopes = crate::core::scope::parse_all(
        a.scopes.iter().map(String::as_str),
        crate::service::MAX_SCOPES,
    )
    .map_err(|e| format!("--scope: {e} ({})", super::SCOPE_SHAPE))?;
    let auth = crate::service::authorize(c, a.account, &labels, &service, None, scopes.clone())
        .map_err(|e| e.to_string())?;
    let nothing = !auth.grants.is_empty() && auth.grants.iter().all(|g| g.granted.is_empty());
    if nothing && !a.no_acl && !a.allow_empty {
        return Err(format!(
            "the ACL grants {:?} none of the scopes asked; see why with `regauth explain --config {} --account {:?} --service {:?} --scope ...`, or pass --allow-empty to sign it anyway",
            a.account,
            a.config.display(),
            a.account,
            service,
        ));
    }
    let access: Vec<Access> = auth
        .grants
        .iter()
        .map(|g| {
            let actions: Vec<&str> = if a.no_acl {
                g.scope.actions.iter().map(|a| a.as_ref()).collect()
            } else {
                if g.granted != g.scope.actions {
                    eprintln!(
                        "warning: {} granted only [{}] by the ACL",
                        g.scope,
                        g.granted.iter().cloned().collect::<Vec<_>>().join(",")
                    );
                }
                g.granted.iter().map(|a| a.as_ref()).collect()
            };
            Access {
                typ: &g.scope.typ,
                name: &g.scope.name,
                actions,
            }
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let jti = crate::token::new_jti();
    let claims = claims::build(ClaimInput {
        issuer: &c.token.issuer,
        account: a.account,
        audience: &auth.audience,
        ttl_secs: a.ttl,
        now,
        jti,
        access,
    });
    let token = g.signer.sign(&claims);
    Ok(match (a.format, a.registry) {
        (super::MintFormat::DockerConfig, Some(host)) => serde_json::json!({
            "auths": { host: { "registrytoken": token } }
        })
        .to_string(),
        _ => token,
    })
}
