//! `regauth keygen`: new signing keys and their certificates.
//!
//! Three shapes: a key with a self-signed certificate (what a registry
//! loads as `rootcertbundle`), a CA (a key and a self-signed certificate
//! that may only sign certificates), and a key whose certificate a CA
//! signs, written with the CA's chain after it (leaf first), as
//! distribution wants it in the `x5c` header. With a CA in the registry's
//! `rootcertbundle`, a new leaf is a file change on regauth's side only.
//!
//! A leaf's issuer name must equal the CA's subject byte for byte (Go's
//! chain building matches raw names), so the CA's subject is copied
//! attribute by attribute with its string types, and the result is checked
//! with the same chain check loading applies.

use super::chain;
use super::Alg;

/// How long a certificate lasts when no `--days` is given: a CA or a
/// self-signed certificate 10 years, a leaf signed by a CA 90 days.
pub(crate) const SELF_SIGNED_DAYS: u32 = 3650;

fn key_pair(alg: Alg) -> Result<rcgen::KeyPair, String> {
    match alg {
        Alg::ES256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Alg::ES384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        Alg::ES512 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        Alg::EdDSA => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        Alg::RS256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256),
    }
    .map_err(|e| format!("key generation failed: {e}"))
}

fn params(common_name: &str, days: u32) -> Result<rcgen::CertificateParams, String> {
    let mut params =
        rcgen::CertificateParams::new(vec![common_name.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(params)
}

/// A key and its self-signed certificate, valid `days`: `(private key PEM
/// (PKCS#8), certificate PEM)`.
pub(crate) fn self_signed(
    alg: Alg,
    common_name: &str,
    days: u32,
) -> Result<(String, String), String> {
    let kp = key_pair(alg)?;
    let cert = params(common_name, days)?
        .self_signed(&kp)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok((kp.serialize_pem(), cert.pem()))
}

/// A CA: `(private key PEM, self-signed CA certificate PEM)`.
pub(crate) fn generate_ca(
    alg: Alg,
    common_name: &str,
    days: u32,
) -> Result<(String, String), String> {
    let kp = key_pair(alg)?;
    let mut p = params(common_name, days)?;
    p.subject_alt_names.clear();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p
        .self_signed(&kp)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok((kp.serialize_pem(), cert.pem()))
}

/// A signing key whose certificate the CA (`ca_key_pem`, `ca_cert_pem`)
/// signs, valid `days`: `(private key PEM, leaf certificate PEM followed
/// by the certificates of ca_cert_pem)`.
pub(crate) fn generate_leaf(
    alg: Alg,
    ca_key_pem: &str,
    ca_cert_pem: &str,
    days: u32,
) -> Result<(String, String), String> {
    let ca_key = rcgen::KeyPair::from_pem(ca_key_pem).map_err(|e| {
        format!("the CA key: {e} (a PKCS#8 key is expected: `openssl pkcs8 -topk8 -nocrypt` converts others)")
    })?;
    let ca_chain =
        chain::certificates(ca_cert_pem).map_err(|e| format!("the CA certificate: {e}"))?;
    let ca_cert = ca_chain
        .first()
        .ok_or("the CA certificate: no CERTIFICATE PEM block found")?;
    let ca_spki = ca_cert.spki_der().map_err(|e| e.to_string())?;
    if ca_spki != ca_key.public_key_der() {
        return Err("the CA certificate does not hold the public key of the CA key".into());
    }
    // The CA as rcgen needs it to sign: its name and key.
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.distinguished_name = copy_name(ca_cert.name())?;
    let issuer = ca_params
        .self_signed(&ca_key)
        .map_err(|e| format!("the CA: {e}"))?;

    let kp = key_pair(alg)?;
    let mut p = params("regauth token signer", days)?;
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let leaf = p
        .signed_by(&kp, &issuer, &ca_key)
        .map_err(|e| format!("certificate: {e}"))?;
    let mut chain_pem = leaf.pem();
    for c in &ca_chain {
        chain_pem.push_str(&c.pem);
    }
    // What loading will check, checked now: a CA whose name cannot be
    // reproduced must not yield a leaf that fails at the registry.
    chain::signing_chain(&chain_pem, &kp.public_key_der())
        .map_err(|e| format!("the new certificate does not chain to the CA ({e}); make the CA with `regauth keygen --ca`"))?;
    Ok((kp.serialize_pem(), chain_pem))
}

/// `name` as rcgen writes it, attribute by attribute with the same string
/// types; names rcgen cannot reproduce exactly are refused.
fn copy_name(name: &x509_cert::name::Name) -> Result<rcgen::DistinguishedName, String> {
    use der::{Tag, Tagged};
    let mut dn = rcgen::DistinguishedName::new();
    for rdn in name.0.iter() {
        if rdn.0.len() != 1 {
            return Err("the CA's subject has a multi-valued name component, which regauth cannot reproduce; make the CA with `regauth keygen --ca`".into());
        }
        for atv in rdn.0.iter() {
            let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
            let text = std::str::from_utf8(atv.value.value())
                .map_err(|_| "the CA's subject has a non-UTF-8 attribute".to_string())?
                .to_owned();
            let value = match atv.value.tag() {
                Tag::Utf8String => rcgen::DnValue::Utf8String(text),
                Tag::PrintableString => rcgen::DnValue::PrintableString(
                    text.try_into().map_err(|e| format!("the CA's subject: {e}"))?,
                ),
                Tag::Ia5String => rcgen::DnValue::Ia5String(
                    text.try_into().map_err(|e| format!("the CA's subject: {e}"))?,
                ),
                other => {
                    return Err(format!(
                        "the CA's subject has a {other} attribute, which regauth cannot reproduce; make the CA with `regauth keygen --ca`"
                    ))
                }
            };
            dn.push(rcgen::DnType::from_oid(&arcs), value);
        }
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::PrivateKey;

    #[test]
    fn generated_keys_load_and_match_their_certificate() {
        for alg in [Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA, Alg::RS256] {
            let (key_pem, cert_pem) = self_signed(alg, "regauth test", SELF_SIGNED_DAYS).unwrap();
            let key = PrivateKey::from_pem(&key_pem, None).unwrap();
            assert_eq!(key.alg(), alg);
            let chain = chain::signing_chain(&cert_pem, &key.public_spki_der()).unwrap();
            assert_eq!(chain.len(), 1);
        }
    }

    #[test]
    fn leaves_chain_to_their_ca_and_expire_when_asked() {
        for (ca_alg, leaf_alg) in [
            (Alg::ES256, Alg::ES256),
            (Alg::RS256, Alg::ES384),
            (Alg::EdDSA, Alg::ES256),
        ] {
            let (ca_key, ca_pem) = generate_ca(ca_alg, "regauth token CA", 365).unwrap();
            let (key_pem, chain_pem) = generate_leaf(leaf_alg, &ca_key, &ca_pem, 3).unwrap();
            let key = PrivateKey::from_pem(&key_pem, None).unwrap();
            let chain = chain::signing_chain(&chain_pem, &key.public_spki_der()).unwrap();
            assert_eq!(chain.len(), 2);
            assert_eq!(chain[1].der, chain::certificates(&ca_pem).unwrap()[0].der);
            let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
            let left = chain[0].not_after() - now;
            assert!((2 * 86_400..=3 * 86_400).contains(&left), "{left}");
        }
    }

    #[test]
    fn a_ca_key_must_match_its_certificate() {
        let (ca_key, _) = generate_ca(Alg::ES256, "A", 30).unwrap();
        let (_, other_pem) = generate_ca(Alg::ES256, "B", 30).unwrap();
        let e = generate_leaf(Alg::ES256, &ca_key, &other_pem, 3).unwrap_err();
        assert!(
            e.contains("does not hold the public key of the CA key"),
            "{e}"
        );
    }
}
