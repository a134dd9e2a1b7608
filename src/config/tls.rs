//! TLS serving configuration: `server.certificate` and `server.key` are read
//! and checked at load (so a broken pair fails `check` and never replaces a
//! working one on reload) and turned into a rustls server config.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A checked rustls server config. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(***)")
    }
}

/// Builds the rustls config for the certificate chain and key files.
pub fn server_config(cert: &Path, key: &Path) -> Result<TlsConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("server.certificate ({}): {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "server.certificate ({}): no CERTIFICATE block",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("server.key ({}): {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.certificate/server.key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsConfig(Arc::new(config)))
}
