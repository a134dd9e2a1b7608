//! Hot reload: on SIGHUP or when any file the configuration names changes
//! (including a Kubernetes ConfigMap's `..data` symlink swap), the whole
//! configuration is loaded and validated again; only a valid one replaces
//! the running generation, in one atomic swap. A broken file is logged and
//! the old configuration keeps serving.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{Config, ConfigError};
use crate::http::AppState;
use crate::server::TlsHandle;
use crate::service::Runtime;

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

/// Fingerprint of every file `config` depends on.
fn fingerprint(config: &Config) -> Vec<(PathBuf, Stamp)> {
    config.files.iter().map(|p| (p.clone(), stamp(p))).collect()
}

/// Loads the configuration again and swaps it in if valid. The listen
/// address and path prefix are fixed at start: a change is logged.
pub fn reload(state: &AppState, tls: Option<&TlsHandle>) -> Result<(), ConfigError> {
    let current = state.runtime.load_full();
    let path = current.config.path.clone();
    match Config::load(&path) {
        Ok(config) => {
            let old = &current.config.server;
            if config.server.addr != old.addr || config.server.path_prefix != old.path_prefix {
                tracing::warn!(
                    "server.addr and server.path_prefix changes take effect at the next restart"
                );
            }
            match (tls, &config.server.tls_config) {
                (Some(live), Some(new)) => live.reload(new),
                (None, None) => {}
                _ => tracing::warn!("turning TLS on or off takes effect at the next restart"),
            }
            state
                .runtime
                .store(std::sync::Arc::new(Runtime::new(config)));
            state.metrics.reload(true);
            tracing::info!(config = %path.display(), "configuration reloaded");
            Ok(())
        }
        Err(e) => {
            state.metrics.reload(false);
            tracing::error!(error = %e, "configuration reload failed; the previous configuration keeps serving");
            Err(e)
        }
    }
}

/// Watches for SIGHUP and file changes (polled every `interval`) until the
/// task is dropped.
pub async fn watch(state: AppState, interval: Duration, tls: Option<TlsHandle>) {
    let mut seen = fingerprint(&state.runtime.load().config);
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
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = hup_fired => true,
        };
        let now: Vec<(PathBuf, Stamp)> = seen.iter().map(|(p, _)| (p.clone(), stamp(p))).collect();
        if !forced && now == seen {
            continue;
        }
        if forced {
            tracing::info!("SIGHUP: reloading configuration");
        }
        seen = match reload(&state, tls.as_ref()) {
            // The new configuration may name other files.
            Ok(()) => fingerprint(&state.runtime.load().config),
            // Wait for the next change rather than retrying a broken file.
            Err(_) => now,
        };
    }
}
