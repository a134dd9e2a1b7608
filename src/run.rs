//! Starting the server from a config path: load, bind, serve (HTTP or
//! HTTPS), watch for reloads, stop gracefully on SIGTERM/SIGINT. Used by the
//! binary; tests call [`crate::server::serve`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::http::{app, AppState};
use crate::service::Runtime;

/// How often watched files are checked for changes: a change is read
/// after it has settled for `reload::SETTLE` (1 s), so within 1.25 s.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Loads `config_path` and serves until SIGTERM/SIGINT. Returns the exit code.
pub fn serve(config_path: &Path, listen: Option<SocketAddr>) -> i32 {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let addr = listen.unwrap_or(config.server.addr);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                return 1;
            }
        };
        let local = listener.local_addr().map_or(addr.to_string(), |a| a.to_string());
        let tls = config.server.tls_config.clone();
        tracing::info!(
            addr = %local,
            scheme = if tls.is_some() { "https" } else { "http" },
            prefix = %config.server.path_prefix,
            alg = config.signer.alg().as_str(),
            kid = config.signer.kid().unwrap_or("none"),
            "regauth listening"
        );
        if tls.is_none() {
            tracing::warn!("serving plain HTTP: set server.certificate/server.key or terminate TLS in front of regauth");
        }
        let state = AppState::new(Runtime::new(config));
        let app = app(state.clone());
        let result = match tls {
            None => {
                let watcher = tokio::spawn(crate::reload::watch(state, WATCH_INTERVAL, None));
                let r = crate::server::serve(listener, app, crate::server::shutdown_signal()).await;
                watcher.abort();
                r
            }
            Some(tls) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls.0);
                let watcher = tokio::spawn(crate::reload::watch(state, WATCH_INTERVAL, Some(tls.clone())));
                let r = crate::server::serve_tls(listener, app, tls, crate::server::shutdown_signal()).await;
                watcher.abort();
                r
            }
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("server error: {e}");
                1
            }
        }
    })
}
