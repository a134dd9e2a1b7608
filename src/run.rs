//! Starting the server from a config path: load, bind, serve (HTTP or
//! HTTPS, one stack), watch for reloads, stop gracefully on SIGTERM/SIGINT. Used by the
//! binary; tests call [`crate::server::serve`] with their own listener.

use std::time::Duration;

use crate::cli::{CliError, ServeArgs};
use crate::config::{Config, Listen};
use crate::http::app;
use crate::server::{Listener, ServeOptions, TlsHandle};
use crate::service::{Generation, TokenService};

/// How often watched files are checked for changes: a change is read
/// after it has settled for `reload::SETTLE` (1 s), so within 1.25 s.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Loads the configuration and serves until SIGTERM/SIGINT.
pub fn serve(a: &ServeArgs) -> Result<(), CliError> {
    let generation = Config::load(&a.config).and_then(Generation::build)?;
    let listen = a.listen;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let config = &generation.config;
        let bound = match (listen, &config.server.addr) {
            (None, Listen::Unix(path)) => Listener::bind_unix(path)
                .map_err(|e| format!("cannot listen on unix:{}: {e}", path.display())),
            (Some(addr), _) | (None, &Listen::Tcp(addr)) => tokio::net::TcpListener::bind(addr)
                .await
                .map(Listener::from)
                .map_err(|e| format!("cannot listen on {addr}: {e}")),
        };
        let listener = bound?;
        let tls = config.server.tls_config.as_ref().map(TlsHandle::new);
        tracing::info!(
            addr = %listener.describe(),
            scheme = if tls.is_some() { "https" } else { "http" },
            prefix = %config.server.path_prefix,
            alg = generation.signer.alg().as_str(),
            kid = generation.signer.kid().unwrap_or("none"),
            "regauth listening"
        );
        for k in generation.signer.published() {
            tracing::info!(kid = k.kid.as_deref().unwrap_or("none"), file = %k.path.display(), "publishing a key beside the signing key (never used to sign)");
        }
        if let Some(w) = generation.expiry_warning() {
            tracing::warn!("{w}");
        }
        if tls.is_none() {
            tracing::warn!("serving plain HTTP: set server.certificate/server.key or terminate TLS in front of regauth");
        }
        let options = ServeOptions {
            tls: tls.clone(),
            h2c: config.server.h2c,
            max_connections: config.server.max_connections,
        };
        let service = TokenService::new(generation);
        let app = app(service.clone());
        let watcher = tokio::spawn(crate::reload::watch(service, WATCH_INTERVAL, tls));
        let result =
            crate::server::serve(listener, app, options, crate::server::shutdown_signal())
                .await;
        watcher.abort();
        result.map_err(|e| format!("server error: {e}").into())
    })
}
