//! Starting the server from a config path: load, bind, serve until a
//! shutdown signal. Used by the binary; tests call [`crate::server::serve`].

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;
use crate::http::{router, AppState};
use crate::service::Runtime;

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
        if config.server.tls.is_some() {
            tracing::error!("server.certificate/server.key: TLS serving is not available in this build; terminate TLS in front of regauth");
            return 1;
        }
        tracing::warn!("serving plain HTTP: put TLS in front of regauth in production");
        let local = listener.local_addr().map_or(addr.to_string(), |a| a.to_string());
        tracing::info!(
            addr = %local,
            prefix = %config.server.path_prefix,
            alg = config.signer.alg().as_str(),
            kid = config.signer.kid().unwrap_or("none"),
            "regauth listening"
        );
        let state = AppState::new(Runtime::new(config));
        match crate::server::serve(listener, router(state), crate::server::shutdown_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("server error: {e}");
                1
            }
        }
    })
}
