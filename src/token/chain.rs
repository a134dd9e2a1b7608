//! Certificates: the signing key's chain (leaf first, each certificate
//! signed by the next), expiry dates, and public keys read from a
//! certificate or a `PUBLIC KEY` block for publishing.
//!
//! A chain is checked when it is loaded, not when a registry first
//! refuses a token: the leaf must certify the signing key and each
//! certificate must name the next as its issuer and carry its signature.
//! Signatures are verified with aws-lc-rs (the one provider) for the
//! schemes regauth and common CAs use (RSA PKCS#1 v1.5 with SHA-2, ECDSA,
//! Ed25519); another scheme (RSA-PSS, SHA-1 in an old TLS chain given as
//! `server.certificate`) is left to the registry after the names matched.
//! `x509-cert` only reads the structures. No trust anchor or clock is involved: the
//! registry decides trust, regauth makes sure what it sends can chain.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use der::asn1::{ObjectIdentifier as Oid, UintRef};
use der::{Decode, Encode, Reader};
use x509_cert::Certificate;

use super::keys::{pem_blocks, Alg, KeyError};

const RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const EC: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const P521: Oid = Oid::new_unwrap("1.3.132.0.35");

/// A certificate as read: its DER, the parsed form, and its PEM block.
#[derive(Clone)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    parsed: Certificate,
    pub(crate) pem: String,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.subject())
    }
}

impl Cert {
    /// The subject, as RFC 4514 text (`CN=regauth token signer`).
    pub(crate) fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    /// notAfter, in seconds since the Unix epoch.
    pub(crate) fn not_after(&self) -> u64 {
        self.parsed
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs()
    }

    /// DER SubjectPublicKeyInfo of the certified key.
    pub(crate) fn spki_der(&self) -> Result<Vec<u8>, KeyError> {
        self.parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::Cert(e.to_string()))
    }

    pub(crate) fn name(&self) -> &x509_cert::name::Name {
        &self.parsed.tbs_certificate.subject
    }

    /// Whether `issuer`'s key signed this certificate, under its name.
    fn issued_by(&self, issuer: &Cert) -> Result<(), String> {
        let tbs = &self.parsed.tbs_certificate;
        if tbs.issuer != issuer.parsed.tbs_certificate.subject {
            return Err(format!(
                "its issuer is {}, not {}",
                tbs.issuer,
                issuer.subject()
            ));
        }
        let spki = &issuer.parsed.tbs_certificate.subject_public_key_info;
        let Some(alg) = verification_alg(
            &self.parsed.signature_algorithm.oid,
            &spki.algorithm.oid,
            spki.algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok()),
        ) else {
            // A signature scheme regauth does not verify (RSA-PSS, SHA-1 in
            // an old TLS chain): the names matched; the registry verifies.
            return Ok(());
        };
        let msg = tbs.to_der().map_err(|e| e.to_string())?;
        let sig = self.parsed.signature.raw_bytes();
        UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes())
            .verify(&msg, sig)
            .map_err(|_| {
                format!(
                    "the signature does not verify with the key of {}",
                    issuer.subject()
                )
            })
    }
}

/// The aws-lc-rs algorithm for a certificate signature `sig` made by a key
/// of type `key` (on `curve` for EC keys); `None` for schemes not verified
/// here.
fn verification_alg(
    sig: &Oid,
    key: &Oid,
    curve: Option<Oid>,
) -> Option<&'static dyn VerificationAlgorithm> {
    const SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    const SHA384_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
    const SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
    let alg: &'static dyn VerificationAlgorithm = if *key == RSA {
        match *sig {
            s if s == SHA256_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
            s if s == SHA384_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
            s if s == SHA512_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
            _ => return None,
        }
    } else if *key == ED25519 && *sig == ED25519 {
        &signature::ED25519
    } else if *key == EC {
        let curve = curve?;
        let hashes: [&'static dyn VerificationAlgorithm; 3] = if curve == P256 {
            [
                &signature::ECDSA_P256_SHA256_ASN1,
                &signature::ECDSA_P256_SHA384_ASN1,
                &signature::ECDSA_P256_SHA512_ASN1,
            ]
        } else if curve == P384 {
            [
                &signature::ECDSA_P384_SHA256_ASN1,
                &signature::ECDSA_P384_SHA384_ASN1,
                &signature::ECDSA_P384_SHA512_ASN1,
            ]
        } else if curve == P521 {
            [
                &signature::ECDSA_P521_SHA256_ASN1,
                &signature::ECDSA_P521_SHA384_ASN1,
                &signature::ECDSA_P521_SHA512_ASN1,
            ]
        } else {
            return None;
        };
        match *sig {
            s if s == ECDSA_SHA256 => hashes[0],
            s if s == ECDSA_SHA384 => hashes[1],
            s if s == ECDSA_SHA512 => hashes[2],
            _ => return None,
        }
    } else {
        return None;
    };
    Some(alg)
}

/// Every `CERTIFICATE` block of a PEM text, in order.
pub(crate) fn certificates(pem: &str) -> Result<Vec<Cert>, KeyError> {
    let mut out = Vec::new();
    for (label, block) in pem_blocks(pem) {
        if label != "CERTIFICATE" {
            continue;
        }
        let (_, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| KeyError::Cert(e.to_string()))?;
        let parsed = Certificate::from_der(&der)
            .map_err(|e| KeyError::Cert(format!("certificate {}: {e}", out.len() + 1)))?;
        out.push(Cert {
            der,
            parsed,
            pem: format!("{}\n", block.trim_end()),
        });
    }
    Ok(out)
}

/// The certificate chain of the signing key: every certificate of `pem`,
/// leaf first. The leaf must certify `spki_der`, and each certificate must
/// be issued and signed by the one after it.
pub(crate) fn signing_chain(pem: &str, spki_der: &[u8]) -> Result<Vec<Cert>, KeyError> {
    let chain = certificates(pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| KeyError::Cert("no CERTIFICATE PEM block found".into()))?;
    if leaf.spki_der()? != spki_der {
        return Err(KeyError::CertMismatch);
    }
    for (i, pair) in chain.windows(2).enumerate() {
        pair[0].issued_by(&pair[1]).map_err(|why| {
            KeyError::Cert(format!(
                "certificate {} ({}) is not issued by certificate {} ({}): {why}; the file must hold the chain in order, leaf first, each certificate followed by its issuer",
                i + 1,
                pair[0].subject(),
                i + 2,
                pair[1].subject()
            ))
        })?;
    }
    Ok(chain)
}

/// A public key to publish: from a certificate (the first of the file) or
/// a `PUBLIC KEY` block.
#[derive(Debug, Clone)]
pub(crate) struct PublicKey {
    pub(crate) spki_der: Vec<u8>,
    pub(crate) alg: Alg,
    /// The JWK members of RFC 7638, in canonical order.
    pub(crate) jwk: serde_json::Map<String, serde_json::Value>,
    /// The certificate, when the file holds one.
    pub(crate) cert: Option<Cert>,
}

impl PublicKey {
    pub(crate) fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if let Some(cert) = certificates(pem)?.into_iter().next() {
            let spki_der = cert.spki_der()?;
            let (alg, jwk) = jwk_from_spki(&spki_der)?;
            return Ok(PublicKey {
                spki_der,
                alg,
                jwk,
                cert: Some(cert),
            });
        }
        let block = pem_blocks(pem)
            .into_iter()
            .find(|(label, _)| *label == "PUBLIC KEY")
            .ok_or_else(|| {
                KeyError::Pem(
                    "no CERTIFICATE or PUBLIC KEY block found (a private key is never published: give its certificate or `openssl pkey -pubout` of it)".into(),
                )
            })?;
        let (_, spki_der) =
            der::pem::decode_vec(block.1.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        let (alg, jwk) = jwk_from_spki(&spki_der)?;
        Ok(PublicKey {
            spki_der,
            alg,
            jwk,
            cert: None,
        })
    }
}

/// The algorithm and JWK (RFC 7638 members) of a DER SubjectPublicKeyInfo:
/// the same JWK [`super::PrivateKey::public_jwk`] gives for the private half.
pub(crate) fn jwk_from_spki(
    spki_der: &[u8],
) -> Result<(Alg, serde_json::Map<String, serde_json::Value>), KeyError> {
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| KeyError::Pem(format!("public key: {e}")))?;
    let b = |bytes: &[u8]| serde_json::Value::String(URL_SAFE_NO_PAD.encode(bytes));
    let s = |v: &str| serde_json::Value::String(v.to_owned());
    let key = spki.subject_public_key.raw_bytes();
    let mut m = serde_json::Map::new();
    let oid = spki.algorithm.oid;
    let alg = if oid == RSA {
        let mut r = der::SliceReader::new(key).map_err(|_| KeyError::Unsupported)?;
        let (n, e) = r
            .sequence(|r| Ok((UintRef::decode(r)?, UintRef::decode(r)?)))
            .map_err(|_| KeyError::Unsupported)?;
        if n.as_bytes().len() * 8 < 2048 {
            return Err(KeyError::RsaTooSmall);
        }
        m.insert("e".into(), b(e.as_bytes()));
        m.insert("kty".into(), s("RSA"));
        m.insert("n".into(), b(n.as_bytes()));
        Alg::RS256
    } else if oid == EC {
        let curve = spki
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<Oid>().ok());
        let (crv, alg) = match curve {
            Some(c) if c == P256 => ("P-256", Alg::ES256),
            Some(c) if c == P384 => ("P-384", Alg::ES384),
            Some(c) if c == P521 => ("P-521", Alg::ES512),
            _ => return Err(KeyError::Unsupported),
        };
        if key.first() != Some(&4) {
            return Err(KeyError::Unsupported);
        }
        let (x, y) = key[1..].split_at((key.len() - 1) / 2);
        m.insert("crv".into(), s(crv));
        m.insert("kty".into(), s("EC"));
        m.insert("x".into(), b(x));
        m.insert("y".into(), b(y));
        alg
    } else if oid == ED25519 {
        m.insert("crv".into(), s("Ed25519"));
        m.insert("kty".into(), s("OKP"));
        m.insert("x".into(), b(key));
        Alg::EdDSA
    } else {
        return Err(KeyError::Unsupported);
    };
    Ok((alg, m))
}

/// A Unix time as an RFC 3339 date and time (UTC).
pub(crate) fn format_time(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keygen;
    use crate::token::PrivateKey;

    #[test]
    fn published_jwk_equals_the_private_keys_jwk() {
        for alg in [Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA, Alg::RS256] {
            let (key_pem, cert_pem) = keygen::self_signed(alg, "t", 30).unwrap();
            let key = PrivateKey::from_pem(&key_pem, None).unwrap();
            let from_cert = PublicKey::from_pem(&cert_pem).unwrap();
            assert_eq!(from_cert.jwk, key.public_jwk(), "{alg:?}");
            assert_eq!(from_cert.alg, alg);
            assert_eq!(from_cert.spki_der, key.public_spki_der());
            let pub_pem = der::pem::encode_string(
                "PUBLIC KEY",
                der::pem::LineEnding::LF,
                &key.public_spki_der(),
            )
            .unwrap();
            let bare = PublicKey::from_pem(&pub_pem).unwrap();
            assert_eq!(bare.jwk, key.public_jwk(), "{alg:?}");
            assert!(bare.cert.is_none());
        }
    }

    #[test]
    fn a_private_key_is_not_a_public_key() {
        let (key_pem, _) = keygen::self_signed(Alg::ES256, "t", 30).unwrap();
        let e = PublicKey::from_pem(&key_pem).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE or PUBLIC KEY block"), "{e}");
    }

    #[test]
    fn chains_are_checked_in_order() {
        let ca = keygen::generate_ca(Alg::ES256, "Test CA", 30).unwrap();
        let other_ca = keygen::generate_ca(Alg::ES384, "Other CA", 30).unwrap();
        let leaf = keygen::generate_leaf(Alg::ES256, &ca.0, &ca.1, 10).unwrap();
        let rsa_ca = keygen::generate_ca(Alg::RS256, "RSA CA", 30).unwrap();
        let rsa_leaf = keygen::generate_leaf(Alg::ES384, &rsa_ca.0, &rsa_ca.1, 10).unwrap();
        let key = PrivateKey::from_pem(&leaf.0, None).unwrap();
        let spki = key.public_spki_der();
        let leaf_cert = certificates(&leaf.1).unwrap()[0].pem.clone();
        // (chain PEM, spki, expected error start or None)
        let cases: Vec<(String, Vec<u8>, Option<&str>)> = vec![
            (leaf.1.clone(), spki.clone(), None),
            (leaf_cert.clone(), spki.clone(), None),
            (format!("{}{}", ca.1, leaf_cert), spki.clone(), Some("certificate does not hold the public key")),
            (
                format!("{leaf_cert}{}", other_ca.1),
                spki.clone(),
                Some("certificate: certificate 1 (CN=regauth token signer) is not issued by certificate 2 (CN=Other CA): its issuer is CN=Test CA"),
            ),
            (
                leaf.1.clone(),
                PrivateKey::from_pem(&ca.0, None).unwrap().public_spki_der(),
                Some("certificate does not hold the public key"),
            ),
            (
                rsa_leaf.1.clone(),
                PrivateKey::from_pem(&rsa_leaf.0, None).unwrap().public_spki_der(),
                None,
            ),
        ];
        for (i, (pem, spki, want)) in cases.iter().enumerate() {
            let got = signing_chain(pem, spki);
            match (got, want) {
                (Ok(chain), None) => assert!(!chain.is_empty()),
                (Err(e), Some(w)) => assert!(e.to_string().starts_with(w), "case {i}: {e}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
        // Same name, another key: the signature check catches it.
        let impostor = keygen::generate_ca(Alg::ES256, "Test CA", 30).unwrap();
        let e = signing_chain(&format!("{leaf_cert}{}", impostor.1), &spki).unwrap_err();
        assert!(
            e.to_string().contains("the signature does not verify"),
            "{e}"
        );
    }
}
