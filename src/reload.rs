//! Hot reload: on SIGHUP, or when the files the configuration names
//! change (including a Kubernetes ConfigMap's `..data` symlink swap), the
//! whole configuration is loaded and validated again and the next
//! [`Generation`] built from it, on a blocking thread (file reads, key
//! parsing, LDAP pools and the OS certificate store never run on an async
//! worker); only a valid one replaces the running generation, in one
//! atomic swap, and the TLS configuration with it. A refused reload is
//! logged with its reason and the old configuration keeps serving. Nothing
//! here knows HTTP: the watcher swaps generations in the
//! [`TokenService`] and certificates in the server's [`TlsHandle`].
//!
//! A file is read only once it has settled: the watcher polls the files'
//! stamps (resolved path, modification time, size, inode) every
//! `interval` (250 ms in `regauth serve`), and loads them only when the
//! changed stamps have stayed the same for [`SETTLE`] (1 s) across
//! consecutive polls, measured between the polls' scheduled times. A writer that rewrites a file in place in pieces is
//! thus not read in between unless it pauses for a second or more mid-write;
//! the stamps are taken again after the files are read, and a read that
//! raced with a write is thrown away. Atomic replacement (write a temporary
//! file in the same directory, then `rename` it over the old one) never
//! shows a half-written file at all and is what operators should use.
//!
//! Two more refusals catch what a half-written file can still look like:
//! a reload that would leave the ACL, or an `htpasswd` file, without
//! entries while the running configuration has some, unless
//! `server.reload_allow_empty` names it (an empty ACL denies everything,
//! an empty htpasswd locks its users out: an emptied file is far more often
//! a truncation than an intent). With `server.reload: signal` files are not
//! watched and only SIGHUP reloads; SIGHUP loads at once, without the
//! settle period (the operator says the files are ready), with the same
//! checks.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{Config, ConfigError, MayEmpty, ReloadMode};
use crate::server::TlsHandle;
use crate::service::{Generation, TokenService};

/// How long changed files must keep the same stamps before they are read.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// What identifies a file's content cheaply: its resolved path (symlink
/// swaps change it), modification time, size and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    resolved: Option<PathBuf>,
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Stamp {
    let resolved = std::fs::canonicalize(path).ok();
    let meta = std::fs::metadata(path).ok();
    #[cfg(unix)]
    let ino = meta.as_ref().map_or(0, std::os::unix::fs::MetadataExt::ino);
    #[cfg(not(unix))]
    let ino = 0;
    Stamp {
        resolved,
        modified: meta.as_ref().and_then(|m| m.modified().ok()),
        len: meta.as_ref().map_or(0, |m| m.len()),
        ino,
    }
}

type Fingerprint = Vec<(PathBuf, Stamp)>;

/// Fingerprint of every file `config` depends on.
fn fingerprint(config: &Config) -> Fingerprint {
    config.files.iter().map(|p| (p.clone(), stamp(p))).collect()
}

/// The same files' stamps now.
fn restamp(seen: &Fingerprint) -> Fingerprint {
    seen.iter().map(|(p, _)| (p.clone(), stamp(p))).collect()
}

/// Why `next` may not replace `running`: a list that had entries and would
/// have none, unless `next` allows it.
fn emptied(running: &Config, next: &Config) -> Option<String> {
    let allowed = |what| next.server.reload_allow_empty.contains(&what);
    let had = running.acl.len();
    if had > 0 && next.acl.is_empty() && !allowed(MayEmpty::Acl) {
        return Some(format!(
            "the new ACL has no entries (the running one has {had}); an empty ACL denies everything: if that is meant, set server.reload_allow_empty: [acl]"
        ));
    }
    let had = running.htpasswd.as_ref().map_or(0, |t| t.len());
    if had > 0
        && next.htpasswd.as_ref().is_some_and(|t| t.is_empty())
        && !allowed(MayEmpty::Htpasswd)
    {
        return Some(format!(
            "the new htpasswd file has no users (the running one has {had}): if that is meant, set server.reload_allow_empty: [htpasswd]"
        ));
    }
    None
}

/// Loads the configuration again and swaps it in if valid and if it does
/// not empty the ACL or the htpasswd file (see the module docs): what
/// SIGHUP does. The listen address and path prefix are fixed at start: a
/// change is logged.
pub async fn reload(service: &TokenService, tls: Option<&TlsHandle>) -> Result<(), ConfigError> {
    attempt(service, tls, || false).await.map(|_| ())
}

/// [`reload`], except that what was read is dropped when `raced()` says
/// the files changed while they were read: `Ok(false)`, neither a success
/// nor a failure (they are read again once settled).
async fn attempt(
    service: &TokenService,
    tls: Option<&TlsHandle>,
    raced: impl Fn() -> bool,
) -> Result<bool, ConfigError> {
    let current = service.current();
    let path = current.config.path.clone();
    let read = path.clone();
    let loaded =
        tokio::task::spawn_blocking(move || Config::load(&read).and_then(Generation::build))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError {
                    file: path.clone(),
                    message: format!("loading stopped: {e}"),
                })
            });
    if raced() {
        return Ok(false);
    }
    let checked = loaded.and_then(|next| match emptied(&current.config, &next.config) {
        Some(message) => Err(ConfigError {
            file: path.clone(),
            message,
        }),
        None => Ok(next),
    });
    let next = match checked {
        Ok(next) => next,
        Err(e) => {
            service.metrics().reload(false);
            tracing::error!(error = %e, "configuration reload failed; the previous configuration keeps serving");
            return Err(e);
        }
    };
    let old = &current.config.server;
    let new = &next.config.server;
    if new.addr != old.addr
        || new.path_prefix != old.path_prefix
        || new.h2c != old.h2c
        || new.max_connections != old.max_connections
    {
        tracing::warn!(
            "server.addr, server.path_prefix, server.h2c and server.max_connections changes take effect at the next restart"
        );
    }
    match (tls, &new.tls_config) {
        (Some(live), Some(config)) => live.reload(config),
        (None, None) => {}
        _ => tracing::warn!("turning TLS on or off takes effect at the next restart"),
    }
    let expiry = next.expiry_warning();
    let kid = next.signer.kid().unwrap_or("none").to_owned();
    service.swap(next);
    service.metrics().reload(true);
    tracing::info!(config = %path.display(), kid = %kid, "configuration reloaded");
    if let Some(w) = expiry {
        tracing::warn!("{w}");
    }
    Ok(true)
}

/// Watches for SIGHUP and, with `server.reload: auto`, file changes
/// (polled every `interval`, read once settled for [`SETTLE`]) until the
/// task is dropped.
pub async fn watch(service: TokenService, interval: Duration, tls: Option<TlsHandle>) {
    let mut seen = fingerprint(&service.current().config);
    // Changed stamps waiting to settle, and the poll since which they are
    // unchanged (scheduled times: the settle period is not lengthened by
    // a late wake-up).
    let mut pending: Option<(Fingerprint, Instant)> = None;
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<Option<()>>();
        let polled = tokio::select! {
            at = tick.tick() => Some(at),
            _ = hup_fired => None,
        };
        let now = restamp(&seen);
        let forced = polled.is_none();
        if let Some(at) = polled {
            if service.current().config.server.reload == ReloadMode::Signal || now == seen {
                pending = None;
                continue;
            }
            match &pending {
                Some((stamps, since)) if *stamps == now && at - *since >= SETTLE => {}
                Some((stamps, _)) if *stamps == now => continue,
                _ => {
                    tracing::debug!("configuration files changed; reading them once they have not changed for {SETTLE:?}");
                    pending = Some((now, at));
                    continue;
                }
            }
        } else {
            tracing::info!("SIGHUP: reloading configuration");
        }
        pending = None;
        let result = if forced {
            reload(&service, tls.as_ref()).await.map(|()| true)
        } else {
            // A file written while it was read: its stamps moved.
            attempt(&service, tls.as_ref(), || restamp(&seen) != now).await
        };
        seen = match result {
            // The new configuration may name other files.
            Ok(true) => fingerprint(&service.current().config),
            Ok(false) => {
                tracing::debug!(
                    "configuration files changed while being read; reading them again once settled"
                );
                continue;
            }
            // Wait for the next change rather than retrying a broken file.
            Err(_) => now,
        };
    }
}
