//! Signing keys: PEM loading (PKCS#8, PKCS#1, SEC1), algorithm choice, key IDs
//! (libtrust and RFC 7638 thumbprint) and public JWKs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use spki::EncodePublicKey;

/// JWS algorithm of a key; fixed by the key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl std::str::FromStr for Alg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Alg::RS256),
            "ES256" => Ok(Alg::ES256),
            "ES384" => Ok(Alg::ES384),
            "ES512" => Ok(Alg::ES512),
            "EdDSA" => Ok(Alg::EdDSA),
            other => Err(format!(
                "unknown algorithm {other:?} (expected RS256, ES256, ES384, ES512 or EdDSA)"
            )),
        }
    }
}

/// A private key, parsed once. Signing never re-parses it.
pub enum PrivateKey {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({}, ***)", self.alg().as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error("the key is encrypted: set token.key_passphrase_file or token.key_passphrase_env")]
    Encrypted,
    #[error("cannot decrypt the key: wrong passphrase or unsupported encryption (PKCS#8 PBES2 is supported)")]
    Decrypt,
    #[error("legacy PEM encryption (Proc-Type: 4,ENCRYPTED) is not supported; convert with `openssl pkcs8 -topk8 -in KEY -out KEY.p8`")]
    LegacyEncrypted,
    #[error(
        "unsupported PEM block {0:?} (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    Label(String),
    #[error(
        "unsupported or malformed private key (expected RSA, EC P-256/P-384/P-521 or Ed25519)"
    )]
    Unsupported,
    #[error("RSA key too small ({0} bits; at least 2048 required)")]
    RsaTooSmall(usize),
    #[error("certificate: {0}")]
    Cert(String),
    #[error("certificate does not hold the public key of the signing key")]
    CertMismatch,
}

impl PrivateKey {
    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
    /// KEY`) or SEC1 (`EC PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_pem_with_passphrase(pem, None)
    }

    /// Like [`PrivateKey::from_pem`], decrypting an `ENCRYPTED PRIVATE KEY`
    /// (PKCS#8, PBES2) with `passphrase`.
    pub fn from_pem_with_passphrase(
        pem: &str,
        passphrase: Option<&crate::secret::Secret>,
    ) -> Result<Self, KeyError> {
        // `openssl ecparam -genkey` writes an `EC PARAMETERS` block first:
        // take the first block that holds a private key.
        let block = pem_blocks(pem)
            .into_iter()
            .find(|(label, _)| label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| KeyError::Pem("no PRIVATE KEY block found".into()))?;
        if block.1.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(KeyError::LegacyEncrypted);
        }
        let (label, der) =
            der::pem::decode_vec(block.1.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                let k =
                    rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| KeyError::Unsupported)?;
                Self::rsa(k)
            }
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or(KeyError::Encrypted)?;
                let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|_| KeyError::Decrypt)?;
                let plain = info
                    .decrypt(passphrase.expose())
                    .map_err(|_| KeyError::Decrypt)?;
                Self::from_pkcs8_der(plain.as_bytes())
            }
            other => Err(KeyError::Label(other.to_owned())),
        }
    }

    fn rsa(k: rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        use rsa::traits::PublicKeyParts;
        let bits = k.size() * 8;
        if bits < 2048 {
            return Err(KeyError::RsaTooSmall(bits));
        }
        Ok(PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        use pkcs8::DecodePrivateKey;
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_pkcs8_der(der) {
            return p521_key(&k);
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Ed25519(k));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Self::rsa(k);
        }
        Err(KeyError::Unsupported)
    }

    fn from_sec1_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
            return p521_key(&k);
        }
        Err(KeyError::Unsupported)
    }

    pub fn alg(&self) -> Alg {
        match self {
            PrivateKey::Rsa(_) => Alg::RS256,
            PrivateKey::P256(_) => Alg::ES256,
            PrivateKey::P384(_) => Alg::ES384,
            PrivateKey::P521(_) => Alg::ES512,
            PrivateKey::Ed25519(_) => Alg::EdDSA,
        }
    }

    /// Signs `msg` and returns the raw JWS signature bytes (PKCS#1 v1.5 for
    /// RSA, fixed-size `r || s` for ECDSA, 64 bytes for Ed25519).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        use signature::{SignatureEncoding, Signer};
        match self {
            PrivateKey::Rsa(k) => k.sign(msg).to_vec(),
            PrivateKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            PrivateKey::P521(k) => {
                let s: p521::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            PrivateKey::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }

    /// The secret key material (RSA: PKCS#8 DER; EC: the scalar; Ed25519:
    /// the seed), used only to derive other secrets such as the refresh
    /// token key.
    pub fn secret_material(&self) -> Vec<u8> {
        match self {
            PrivateKey::Rsa(k) => {
                use rsa::pkcs8::EncodePrivateKey;
                let pk: &rsa::RsaPrivateKey = (**k).as_ref();
                pk.to_pkcs8_der()
                    .expect("a valid RSA key encodes")
                    .as_bytes()
                    .to_vec()
            }
            PrivateKey::P256(k) => k.to_bytes().to_vec(),
            PrivateKey::P384(k) => k.to_bytes().to_vec(),
            PrivateKey::P521(k) => k.to_bytes().to_vec(),
            PrivateKey::Ed25519(k) => k.to_bytes().to_vec(),
        }
    }

    /// The key as PKCS#8 DER (for ring), except P-521 (`None`), which ring
    /// does not support.
    pub fn pkcs8_der(&self) -> Option<Vec<u8>> {
        use pkcs8::EncodePrivateKey;
        let doc = match self {
            PrivateKey::Rsa(k) => {
                let pk: &rsa::RsaPrivateKey = (**k).as_ref();
                pk.to_pkcs8_der()
            }
            PrivateKey::P256(k) => p256::SecretKey::from(k.as_nonzero_scalar()).to_pkcs8_der(),
            PrivateKey::P384(k) => p384::SecretKey::from(k.as_nonzero_scalar()).to_pkcs8_der(),
            PrivateKey::P521(_) => return None,
            PrivateKey::Ed25519(k) => k.to_pkcs8_der(),
        };
        Some(doc.expect("a valid key encodes").as_bytes().to_vec())
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn public_spki_der(&self) -> Vec<u8> {
        let doc = match self {
            PrivateKey::Rsa(k) => {
                let pk: &rsa::RsaPrivateKey = (**k).as_ref();
                pk.to_public_key().to_public_key_der()
            }
            PrivateKey::P256(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::P384(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::P521(k) => p521::PublicKey::from_sec1_bytes(p521_point(k).as_bytes())
                .expect("a verifying key is a valid point")
                .to_public_key_der(),
            PrivateKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
        };
        doc.expect("encoding a valid public key cannot fail")
            .into_vec()
    }

    /// The public key as a JWK with members in RFC 7638 canonical order
    /// (only the required members), used for thumbprints and JWKS.
    pub fn public_jwk(&self) -> serde_json::Map<String, serde_json::Value> {
        let b = |bytes: &[u8]| serde_json::Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let s = |v: &str| serde_json::Value::String(v.to_owned());
        let mut m = serde_json::Map::new();
        let ec = |m: &mut serde_json::Map<String, serde_json::Value>, crv: &str, point: &[u8]| {
            // Uncompressed SEC1 point: 0x04 || X || Y, coordinates already padded
            // to the field size (leading zero bytes kept, as RFC 7518 requires).
            let coords = &point[1..];
            let (x, y) = coords.split_at(coords.len() / 2);
            m.insert("crv".into(), s(crv));
            m.insert("kty".into(), s("EC"));
            m.insert("x".into(), b(x));
            m.insert("y".into(), b(y));
        };
        match self {
            PrivateKey::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let pk: &rsa::RsaPrivateKey = (**k).as_ref();
                m.insert("e".into(), b(&pk.e().to_bytes_be()));
                m.insert("kty".into(), s("RSA"));
                m.insert("n".into(), b(&pk.n().to_bytes_be()));
            }
            PrivateKey::P256(k) => ec(
                &mut m,
                "P-256",
                k.verifying_key().to_encoded_point(false).as_bytes(),
            ),
            PrivateKey::P384(k) => ec(
                &mut m,
                "P-384",
                k.verifying_key().to_encoded_point(false).as_bytes(),
            ),
            PrivateKey::P521(k) => ec(&mut m, "P-521", p521_point(k).as_bytes()),
            PrivateKey::Ed25519(k) => {
                m.insert("crv".into(), s("Ed25519"));
                m.insert("kty".into(), s("OKP"));
                m.insert("x".into(), b(k.verifying_key().as_bytes()));
            }
        }
        m
    }
}

/// Uncompressed public point of a P-521 key (p521 0.13 has no
/// `SigningKey::verifying_key` without an unpublished feature).
fn p521_point(k: &p521::ecdsa::SigningKey) -> p521::EncodedPoint {
    p521::ecdsa::VerifyingKey::from(k).to_encoded_point(false)
}

fn p521_key(k: &p521::SecretKey) -> Result<PrivateKey, KeyError> {
    p521::ecdsa::SigningKey::from_slice(&k.to_bytes())
        .map(PrivateKey::P521)
        .map_err(|_| KeyError::Unsupported)
}

/// The libtrust key ID distribution 2.x expects: SHA-256 of the DER
/// SubjectPublicKeyInfo, first 240 bits, base32 (RFC 4648, no padding),
/// in 12 groups of 4 characters joined by `:`.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    let groups: Vec<&str> = (0..b32.len()).step_by(4).map(|i| &b32[i..i + 4]).collect();
    groups.join(":")
}

/// RFC 7638 JWK thumbprint: base64url(SHA-256(canonical JWK JSON)).
pub fn thumbprint_kid(jwk: &serde_json::Map<String, serde_json::Value>) -> String {
    // serde_json::Map is a BTreeMap here (no preserve_order), so keys are in
    // lexicographic order, and to_string emits no whitespace: exactly the
    // canonical form RFC 7638 §3 asks for.
    let canonical = serde_json::to_string(jwk).expect("a JSON map serializes");
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Reads the first certificate of a PEM bundle and returns its DER, after
/// checking that it certifies `spki_der`.
pub fn certificate_der(pem: &str, spki_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    use der::{Decode, Encode};
    let block = pem_blocks(pem)
        .into_iter()
        .find(|(label, _)| *label == "CERTIFICATE")
        .ok_or_else(|| KeyError::Cert("no CERTIFICATE PEM block found".into()))?;
    let (_, der) =
        der::pem::decode_vec(block.1.as_bytes()).map_err(|e| KeyError::Cert(e.to_string()))?;
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| KeyError::Cert(e.to_string()))?;
    let cert_spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| KeyError::Cert(e.to_string()))?;
    if cert_spki != spki_der {
        return Err(KeyError::CertMismatch);
    }
    Ok(der)
}

/// Splits a PEM text into its blocks: `(label, whole block text)`.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        out.push((label, &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}
