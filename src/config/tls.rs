//! TLS serving configuration: `server.certificate` and `server.key` are read
//! and checked at load (so a broken pair fails `check` and never replaces a
//! working one on reload) and turned into a rustls server config, shaped by
//! docker_auth's options `tls_min_version`, `tls_curve_preferences` and
//! `tls_cipher_suites`, which take Go's names.
//!
//! rustls (with the aws-lc-rs provider) implements TLS 1.2 and 1.3, the ECDHE
//! AEAD suites and the X25519, P-256 and P-384 groups. The mapping never
//! serves something weaker than asked:
//! - `tls_min_version: TLS10` or `TLS11` is accepted and TLS 1.2 is the
//!   effective minimum (stricter than asked; `check` says so), so a
//!   docker_auth file that merely allows old clients keeps loading. `TLS13`
//!   serves TLS 1.3 only.
//! - A curve or cipher suite rustls lacks (`P521`; CBC, RC4, 3DES and
//!   RSA-key-exchange suites) is a load error naming it: dropping it
//!   silently would serve a different set than the file says.
//! - As in Go, `tls_cipher_suites` governs TLS 1.2; when it also names
//!   TLS 1.3 suites, only those are offered for TLS 1.3, otherwise all are.
//!   A list without any TLS 1.2 suite is refused unless the minimum is
//!   TLS 1.3 (it would switch TLS 1.2 off unannounced), and TLS 1.2 suites
//!   alone with minimum TLS 1.3 are refused, as docker_auth refuses them.
//!   TLS 1.2 suites none of which suits the key of `server.key` (only
//!   ECDHE_ECDSA suites with an RSA key) are refused too: every TLS 1.2
//!   handshake would fail.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::SupportedCipherSuite;

/// A checked rustls server config. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(***)")
    }
}

/// Go's cipher suite names and the rustls suites they denote. Go spells the
/// ChaCha20 TLS 1.2 suites both with and without `_SHA256`.
static SUITES: &[(&str, &SupportedCipherSuite)] = &[
    ("TLS_AES_128_GCM_SHA256", &cs::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", &cs::TLS13_AES_256_GCM_SHA384),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        &cs::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        &cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        &cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        &cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        &cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        &cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        &cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        &cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        &cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Go's curve names and the rustls key exchange groups.
static CURVES: &[(&str, &dyn SupportedKxGroup)] = &[
    ("X25519", kx_group::X25519),
    ("P256", kx_group::SECP256R1),
    ("P384", kx_group::SECP384R1),
];

/// docker_auth's TLS options, checked; the defaults are rustls' own.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `tls_min_version: TLS13`: TLS 1.2 is not offered.
    pub(crate) tls13_only: bool,
    /// A `tls_min_version` below TLS 1.2 that was raised to TLS 1.2.
    pub raised_min_version: Option<String>,
    /// Key exchange groups in preference order; empty: rustls' defaults.
    pub curves: Vec<&'static dyn SupportedKxGroup>,
    /// Cipher suites offered; empty: rustls' defaults.
    pub suites: Vec<SupportedCipherSuite>,
}

impl TlsOptions {
    /// Checks the options as written in `server:`. Errors name the key and
    /// the value.
    pub(crate) fn parse(
        min_version: Option<&str>,
        curves: Option<&[String]>,
        suites: Option<&[String]>,
    ) -> Result<TlsOptions, String> {
        let mut o = TlsOptions::default();
        match min_version {
            None | Some("TLS12") => {}
            Some("TLS13") => o.tls13_only = true,
            Some(v @ ("TLS10" | "TLS11")) => o.raised_min_version = Some(v.to_owned()),
            Some(other) => {
                return Err(format!(
                    "server.tls_min_version: {other:?} is not one of TLS10, TLS11, TLS12, TLS13"
                ))
            }
        }
        for name in curves.unwrap_or_default() {
            let group = CURVES.iter().find(|(n, _)| n == name).ok_or_else(|| {
                format!(
                    "server.tls_curve_preferences: {name:?} is not supported (rustls offers {})",
                    names(CURVES)
                )
            })?;
            if !o.curves.iter().any(|g| g.name() == group.1.name()) {
                o.curves.push(group.1);
            }
        }
        let (mut tls12, mut tls13) = (Vec::new(), Vec::new());
        for name in suites.unwrap_or_default() {
            let suite = *SUITES.iter().find(|(n, _)| n == name).ok_or_else(|| {
                format!(
                    "server.tls_cipher_suites: {name:?} is not supported (rustls implements only the ECDHE AEAD suites: {})",
                    names(SUITES)
                )
            })?.1;
            let list = match suite {
                SupportedCipherSuite::Tls13(_) => &mut tls13,
                _ => &mut tls12,
            };
            if !list
                .iter()
                .any(|s: &SupportedCipherSuite| s.suite() == suite.suite())
            {
                list.push(suite);
            }
        }
        if suites.is_some_and(|s| !s.is_empty()) {
            if o.tls13_only && tls13.is_empty() {
                return Err("server.tls_cipher_suites: only TLS 1.2 suites with tls_min_version: TLS13, where they cannot be used (docker_auth refuses this too)".into());
            }
            if !o.tls13_only && tls12.is_empty() {
                return Err("server.tls_cipher_suites: no TLS 1.2 suite listed, which would turn TLS 1.2 off; add one or set tls_min_version: TLS13".into());
            }
            if tls13.is_empty() {
                tls13 = SUITES
                    .iter()
                    .filter(|(_, s)| matches!(s, SupportedCipherSuite::Tls13(_)))
                    .map(|(_, s)| **s)
                    .collect();
            }
            if o.tls13_only {
                tls12.clear();
            }
            o.suites = tls13.into_iter().chain(tls12).collect();
        }
        Ok(o)
    }
}

fn names<T: ?Sized>(table: &[(&str, &T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Builds the rustls config for the certificate chain and key files.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
    options: &TlsOptions,
) -> Result<TlsConfig, String> {
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
    let tls12: Vec<&SupportedCipherSuite> = options
        .suites
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
        .collect();
    if !tls12.is_empty() {
        let alg = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
            .map_err(|e| format!("server.key: {e}"))?
            .algorithm();
        if !tls12.iter().any(|s| s.usable_for_signature_algorithm(alg)) {
            return Err(format!(
                "server.tls_cipher_suites: no TLS 1.2 suite listed can be used with the {alg:?} key of server.key (ECDHE_RSA suites need an RSA key, ECDHE_ECDSA suites an EC or Ed25519 key)"
            ));
        }
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !options.suites.is_empty() {
        provider.cipher_suites = options.suites.clone();
    }
    if !options.curves.is_empty() {
        provider.kx_groups = options.curves.clone();
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = if options.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("server TLS options: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.certificate/server.key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsConfig(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite as C;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn min_version_table() {
        // (value, TLS 1.3 only, raised from, error)
        type Case<'a> = (Option<&'a str>, bool, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (None, false, None, None),
            (Some("TLS10"), false, Some("TLS10"), None),
            (Some("TLS11"), false, Some("TLS11"), None),
            (Some("TLS12"), false, None, None),
            (Some("TLS13"), true, None, None),
            (
                Some("SSL30"),
                false,
                None,
                Some("server.tls_min_version: \"SSL30\""),
            ),
            (
                Some("1.2"),
                false,
                None,
                Some("server.tls_min_version: \"1.2\""),
            ),
        ];
        for (value, only13, raised, err) in cases {
            match TlsOptions::parse(*value, None, None) {
                Ok(o) => {
                    assert!(err.is_none(), "{value:?} loaded");
                    assert_eq!(o.tls13_only, *only13, "{value:?}");
                    assert_eq!(o.raised_min_version.as_deref(), *raised, "{value:?}");
                }
                Err(e) => assert!(e.contains(err.expect("an error")), "{value:?}: {e}"),
            }
        }
    }

    #[test]
    fn curves_table() {
        let ok: &[(&[&str], &[rustls::NamedGroup])] = &[
            (&["P256"], &[rustls::NamedGroup::secp256r1]),
            (
                &["X25519", "P384", "P256", "X25519"],
                &[
                    rustls::NamedGroup::X25519,
                    rustls::NamedGroup::secp384r1,
                    rustls::NamedGroup::secp256r1,
                ],
            ),
        ];
        for (names, want) in ok {
            let o = TlsOptions::parse(None, Some(&list(names)), None).unwrap();
            let got: Vec<_> = o.curves.iter().map(|g| g.name()).collect();
            assert_eq!(&got, want, "{names:?}");
        }
        for bad in ["P521", "X25519MLKEM768", "p256"] {
            let e = TlsOptions::parse(None, Some(&list(&["P256", bad])), None).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "server.tls_curve_preferences: {bad:?} is not supported"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn cipher_suites_table() {
        let all13 = [
            C::TLS13_AES_128_GCM_SHA256,
            C::TLS13_AES_256_GCM_SHA384,
            C::TLS13_CHACHA20_POLY1305_SHA256,
        ];
        // (min version, names, suites offered)
        let ok: Vec<(Option<&str>, &[&str], Vec<C>)> = vec![
            (
                None,
                &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
                [&all13[..], &[C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]].concat(),
            ),
            (
                Some("TLS12"),
                &[
                    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                    "TLS_AES_256_GCM_SHA384",
                    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                ],
                vec![
                    C::TLS13_AES_256_GCM_SHA384,
                    C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                ],
            ),
            (
                Some("TLS13"),
                &[
                    "TLS_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                ],
                vec![C::TLS13_AES_128_GCM_SHA256],
            ),
        ];
        for (min, names, want) in ok {
            let o = TlsOptions::parse(min, None, Some(&list(names))).unwrap();
            let got: Vec<C> = o.suites.iter().map(|s| s.suite()).collect();
            assert_eq!(got, want, "{min:?} {names:?}");
        }
        // (min version, names, error)
        let bad: &[(Option<&str>, &[&str], &str)] = &[
            (
                None,
                &["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
                "\"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\" is not supported",
            ),
            (
                None,
                &["TLS_RSA_WITH_AES_128_GCM_SHA256"],
                "\"TLS_RSA_WITH_AES_128_GCM_SHA256\" is not supported",
            ),
            (
                None,
                &["TLS_RSA_WITH_RC4_128_SHA"],
                "\"TLS_RSA_WITH_RC4_128_SHA\" is not supported",
            ),
            (
                None,
                &["TLS_FALLBACK_SCSV"],
                "\"TLS_FALLBACK_SCSV\" is not supported",
            ),
            (None, &["TLS_AES_128_GCM_SHA256"], "no TLS 1.2 suite listed"),
            (
                Some("TLS13"),
                &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
                "docker_auth refuses this too",
            ),
        ];
        for (min, names, want) in bad {
            let e = TlsOptions::parse(*min, None, Some(&list(names))).unwrap_err();
            assert!(
                e.starts_with("server.tls_cipher_suites: ") && e.contains(want),
                "{names:?}: {e}"
            );
        }
    }
}
