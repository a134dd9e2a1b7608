//! `regauth keygen`: a new signing key and a self-signed certificate for it
//! (the certificate is what registries load as `rootcertbundle`).

use super::Alg;

/// Returns `(private key PEM (PKCS#8), certificate PEM)`.
pub(crate) fn generate(alg: Alg, common_name: &str) -> Result<(String, String), String> {
    let kp = match alg {
        Alg::ES256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Alg::ES384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        Alg::ES512 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        Alg::EdDSA => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        Alg::RS256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256),
    }
    .map_err(|e| format!("key generation failed: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(vec![common_name.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params
        .self_signed(&kp)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok((kp.serialize_pem(), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keys::{certificate_der, PrivateKey};

    #[test]
    fn generated_keys_load_and_match_their_certificate() {
        for alg in [Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA, Alg::RS256] {
            let (key_pem, cert_pem) = generate(alg, "regauth test").unwrap();
            let key = PrivateKey::from_pem(&key_pem, None).unwrap();
            assert_eq!(key.alg(), alg);
            certificate_der(&cert_pem, &key.public_spki_der()).unwrap();
        }
    }
}
