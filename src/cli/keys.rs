//! `hash`, `keygen` and `mint`: passwords, signing keys and offline tokens.

use std::io::Read;
use std::path::Path;

use super::{load, CliError, HashArgs, KeygenArgs, MintArgs};
use crate::token::Alg;

pub fn hash(a: &HashArgs) -> Result<(), CliError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err("empty password".into());
    }
    let h = bcrypt::non_truncating_hash(password, a.cost)
        .map_err(|e| format!("{e} (bcrypt accepts at most 72 bytes)"))?;
    println!("{h}");
    Ok(())
}

pub fn keygen(a: &KeygenArgs) -> Result<(), CliError> {
    use crate::token::keygen;
    let (out, alg) = (a.out.as_path(), Alg::from(a.alg));
    let (key_name, cert_name) = if a.ca {
        ("ca.key", "ca.pem")
    } else {
        ("token.key", "token.pem")
    };
    let key_path = out.join(key_name);
    let cert_path = out.join(cert_name);
    if !a.force && (key_path.exists() || cert_path.exists()) {
        return Err(format!(
            "{} or {} exists; pass --force to overwrite",
            key_path.display(),
            cert_path.display()
        )
        .into());
    }
    let (key, cert) = match (&a.signed_by, a.ca) {
        (Some(ca), _) => {
            let read = |name: &str| {
                let p = ca.join(name);
                std::fs::read_to_string(&p).map_err(|e| {
                    format!(
                        "--signed-by: cannot read {}: {e} (make a CA with `regauth keygen --ca --out {}`)",
                        p.display(),
                        ca.display()
                    )
                })
            };
            let (ca_key, ca_pem) = (read("ca.key")?, read("ca.pem")?);
            keygen::generate_leaf(alg, &ca_key, &ca_pem, a.days.unwrap_or(90))
                .map_err(|e| format!("--signed-by {}: {e}", ca.display()))?
        }
        (None, true) => keygen::generate_ca(
            alg,
            "regauth token CA",
            a.days.unwrap_or(keygen::SELF_SIGNED_DAYS),
        )?,
        (None, false) => keygen::self_signed(
            alg,
            "regauth token signer",
            a.days.unwrap_or(keygen::SELF_SIGNED_DAYS),
        )?,
    };
    // Written beside and renamed over: a running regauth watching these
    // files never reads a half-written pair (the certificate goes last,
    // and a reload that reads a new key with the old certificate is
    // refused and retried once the certificate settles).
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        let key_tmp = out.join(format!(".{key_name}.new"));
        let cert_tmp = out.join(format!(".{cert_name}.new"));
        write_private(&key_tmp, key.as_bytes())?;
        std::fs::write(&cert_tmp, &cert)?;
        std::fs::rename(&key_tmp, &key_path)?;
        std::fs::rename(&cert_tmp, &cert_path)
    };
    write().map_err(|e| format!("writing to {}: {e}", out.display()))?;
    let what = if a.ca {
        "CA "
    } else if a.signed_by.is_some() {
        "leaf + CA chain "
    } else {
        ""
    };
    println!(
        "wrote {} ({}) and {}{}",
        key_path.display(),
        alg.as_str(),
        what,
        cert_path.display()
    );
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(data)
}

/// Above this `--ttl` (a day) `mint` warns: a minted token cannot be
/// revoked before it expires, and a CI job needs minutes.
pub(crate) const MINT_TTL_WARN_SECS: u64 = 86_400;

/// Signs a token offline. Refuses (exit 1) when the configuration or key
/// cannot be loaded, and when the ACL grants none of the scopes asked
/// (unless `--allow-empty`): a token that opens nothing fails later, at
/// the registry, with a message that does not say why. Warns on stderr
/// for scopes granted in part, and for a `--ttl` above a day.
pub fn mint(a: &MintArgs) -> Result<(), CliError> {
    let g = load(&a.config)?;
    if a.ttl > MINT_TTL_WARN_SECS {
        eprintln!(
            "warning: --ttl {} is {} days; a minted token cannot be revoked before it expires: give a CI job minutes (e.g. --ttl 600)",
            a.ttl,
            a.ttl / 86_400
        );
    }
    println!("{}", mint_token(&g, a)?);
    Ok(())
}

fn mint_token(g: &crate::service::Generation, a: &MintArgs) -> Result<String, String> {
    let c = &g.config;
    use crate::core::claims::{self, Access, ClaimInput};
    if a.format == super::MintFormat::DockerConfig && a.registry.is_none() {
        return Err("--format docker-config needs --registry HOST[:PORT]".into());
    }
    let service = super::mint_service(c, a.service.as_deref())
        .map_err(|e| format!("{}: {e}", a.config.display()))?;
    // The labels a login would get, as `explain` finds them, unless given
    // (or unless the ACL is not asked).
    let labels = if a.label.is_empty() && !a.no_acl {
        let (labels, origin) =
            super::inspect::login_labels(&crate::service::chain_for(c), &a.account);
        eprintln!(
            "labels: {} ({origin})",
            super::inspect::show_labels(&labels)
        );
        labels
    } else {
        super::parse_labels(&a.label)?
    };
    let scopes = crate::core::scope::parse_all(
        a.scope.iter().map(String::as_str),
        crate::service::MAX_SCOPES,
    )
    .map_err(|e| format!("--scope: {e} ({})", super::SCOPE_SHAPE))?;
    let who = crate::service::Requester {
        account: &a.account,
        labels: &labels,
        ip: None,
        ceiling: super::inspect::robot_ceiling(c, &a.account),
    };
    let auth =
        crate::service::authorize(c, who, &service, scopes.clone()).map_err(|e| e.to_string())?;
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
        account: &a.account,
        audience: &auth.audience,
        ttl_secs: a.ttl,
        now,
        jti,
        access,
    });
    let token = g.signer.sign(&claims);
    Ok(match (a.format, a.registry.as_deref()) {
        (super::MintFormat::DockerConfig, Some(host)) => serde_json::json!({
            "auths": { host: { "registrytoken": token } }
        })
        .to_string(),
        _ => token,
    })
}
