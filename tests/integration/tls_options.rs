//! docker_auth's TLS options over real HTTPS: `tls_min_version`,
//! `tls_curve_preferences` and `tls_cipher_suites` decide what a handshake
//! can negotiate, and `hsts` reaches the client. The client pins the test
//! certificate (it has no name to verify) and checks the server's
//! handshake signatures with it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CipherSuite, DigitallySignedStruct, NamedGroup, ProtocolVersion, SignatureScheme};

use regauth::config::Config;
use regauth::http::app;
use regauth::service::{Generation, TokenService};

use crate::support::fixture;

#[derive(Debug)]
struct Pinned(CertificateDer<'static>, Arc<CryptoProvider>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the test certificate".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// What the client offers.
struct Offer {
    tls12_only: bool,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
}

/// What a handshake and `GET /healthz` gave.
#[derive(Debug, PartialEq)]
struct Got {
    version: ProtocolVersion,
    suite: CipherSuite,
    group: NamedGroup,
    hsts: Option<String>,
}

/// Connects to `addr` with `offer` (blocking; run off the async workers).
fn connect(addr: SocketAddr, offer: Offer) -> Result<Got, String> {
    let mut provider = aws_lc_rs::default_provider();
    if !offer.groups.is_empty() {
        provider.kx_groups = offer.groups;
    }
    let provider = Arc::new(provider);
    let cert = CertificateDer::from_pem_file(fixture("keys/rsa2048.crt")).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if offer.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(cert, provider)))
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), "regauth-test".try_into().unwrap())
        .unwrap();
    let sock = std::net::TcpStream::connect(addr).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: regauth-test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response);
    if !response.starts_with("HTTP/1.1 200") {
        return Err(format!("no 200: {response:?}"));
    }
    let hsts = response
        .lines()
        .find_map(|l| l.strip_prefix("strict-transport-security: "))
        .map(str::to_owned);
    let c = &tls.conn;
    Ok(Got {
        version: c.protocol_version().unwrap(),
        suite: c.negotiated_cipher_suite().unwrap().suite(),
        group: c.negotiated_key_exchange_group().unwrap().name(),
        hsts,
    })
}

/// Serves docker_auth's simple.yml shape over HTTPS with `server_extra`
/// keys and returns the address.
fn serve(server_extra: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let yaml = std::fs::read_to_string(fixture("docker_auth/simple.yml"))
        .unwrap()
        .replace(
            "  addr: \":5001\"",
            &format!("  addr: \"127.0.0.1:0\"\n{server_extra}"),
        );
    let config = Config::from_yaml(std::path::Path::new("t.yml"), &yaml).unwrap();
    let tls = config.server.tls_config.clone().unwrap();
    let app = app(TokenService::new(
        Generation::build(config).expect("test key parses"),
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let options = regauth::server::ServeOptions {
        tls: Some(regauth::server::TlsHandle::new(&tls)),
        ..Default::default()
    };
    tokio::spawn(regauth::server::serve(listener, app, options, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

async fn offer(
    addr: SocketAddr,
    tls12_only: bool,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
) -> Result<Got, String> {
    tokio::task::spawn_blocking(move || connect(addr, Offer { tls12_only, groups }))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_decide_the_handshake() {
    use aws_lc_rs::kx_group::{SECP256R1, SECP384R1, X25519};
    // Defaults: TLS 1.3 with X25519, no HSTS.
    let (addr, _stop) = serve("");
    let got = offer(addr, false, vec![]).await.unwrap();
    assert_eq!(
        (got.version, got.group, got.hsts),
        (ProtocolVersion::TLSv1_3, NamedGroup::X25519, None)
    );

    // TLS 1.3 only: a TLS 1.2 client is refused; hsts reaches the client.
    let (addr, _stop13) = serve("  hsts: true\n  tls_min_version: TLS13\n");
    assert!(offer(addr, true, vec![]).await.is_err());
    let got = offer(addr, false, vec![]).await.unwrap();
    assert_eq!(got.version, ProtocolVersion::TLSv1_3);
    assert_eq!(got.hsts.as_deref(), Some("max-age=31536000"));

    // TLS10 as a minimum: TLS 1.2 still works (1.2 is the floor).
    let (addr, _stop10) = serve("  tls_min_version: TLS10\n");
    assert_eq!(
        offer(addr, true, vec![]).await.unwrap().version,
        ProtocolVersion::TLSv1_2
    );

    // Curves: only P-384 is served, whatever the client prefers.
    let (addr, _stop_curve) = serve("  tls_curve_preferences: [P384]\n");
    assert!(offer(addr, false, vec![X25519, SECP256R1]).await.is_err());
    let got = offer(addr, false, vec![X25519, SECP384R1]).await.unwrap();
    assert_eq!(got.group, NamedGroup::secp384r1);

    // Cipher suites: TLS 1.2 negotiates the one listed.
    let (addr, _stop_suite) =
        serve("  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]\n");
    let got = offer(addr, true, vec![]).await.unwrap();
    assert_eq!(
        (got.version, got.suite),
        (
            ProtocolVersion::TLSv1_2,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    );
}
