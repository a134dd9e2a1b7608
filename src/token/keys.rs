//! Signing keys: PEM loading (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8),
//! algorithm choice, signing, key IDs (libtrust and RFC 7638 thumbprint)
//! and public JWKs.
//!
//! Keys are parsed and signed by aws-lc-rs, the provider rustls also uses
//! here: one cryptography stack. It signs ES256 faster than ring on this
//! class of machine (BENCHMARKS.md) and covers every algorithm regauth
//! signs with, P-521 included. What no provider offers stays with small
//! parsing crates: `pkcs8` decrypts PBES2-encrypted keys, `der` reads PEM
//! blocks; certificates are read in [`super::chain`].

use aws_lc_rs::encoding::{AsBigEndian, AsDer, EcPrivateKeyBin, PublicKeyX509Der};
use aws_lc_rs::signature::{self, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

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

/// A private key, parsed once into aws-lc-rs's form: signing never
/// re-parses it.
pub enum PrivateKey {
    Rsa(Box<signature::RsaKeyPair>),
    /// P-256, P-384 or P-521, with the algorithm it signs with.
    Ec(signature::EcdsaKeyPair, Alg),
    Ed25519(signature::Ed25519KeyPair),
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
    #[error("RSA key too small (at least 2048 bits required)")]
    RsaTooSmall,
    #[error("certificate: {0}")]
    Cert(String),
    #[error("certificate does not hold the public key of the signing key")]
    CertMismatch,
}

impl PrivateKey {
    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
    /// KEY`) or SEC1 (`EC PRIVATE KEY`); an `ENCRYPTED PRIVATE KEY` (PKCS#8,
    /// PBES2) is decrypted with `passphrase`.
    pub fn from_pem(
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
            "RSA PRIVATE KEY" => rsa_key(signature::RsaKeyPair::from_der(&der)),
            "EC PRIVATE KEY" => Self::from_ec_der(&der),
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

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = Self::from_ec_der(der) {
            return Ok(k);
        }
        if let Ok(k) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(PrivateKey::Ed25519(k));
        }
        rsa_key(signature::RsaKeyPair::from_pkcs8(der))
    }

    /// An EC key in PKCS#8 or SEC1 (RFC 5915) form, on any of the three
    /// curves.
    fn from_ec_der(der: &[u8]) -> Result<Self, KeyError> {
        let curves = [
            (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, Alg::ES256),
            (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, Alg::ES384),
            (&signature::ECDSA_P521_SHA512_FIXED_SIGNING, Alg::ES512),
        ];
        for (curve, alg) in curves {
            if let Ok(k) = signature::EcdsaKeyPair::from_private_key_der(curve, der) {
                return Ok(PrivateKey::Ec(k, alg));
            }
        }
        Err(KeyError::Unsupported)
    }

    pub fn alg(&self) -> Alg {
        match self {
            PrivateKey::Rsa(_) => Alg::RS256,
            PrivateKey::Ec(_, alg) => *alg,
            PrivateKey::Ed25519(_) => Alg::EdDSA,
        }
    }

    /// Signs `msg` and returns the raw JWS signature bytes (PKCS#1 v1.5 for
    /// RSA, fixed-size `r || s` for ECDSA, 64 bytes for Ed25519).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        // aws-lc-rs draws its own randomness; the argument is for ring
        // compatibility.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            PrivateKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .expect("RSA signing with a valid key and buffer cannot fail");
                sig
            }
            PrivateKey::Ec(k, _) => k
                .sign(&rng, msg)
                .expect("ECDSA signing with a valid key cannot fail")
                .as_ref()
                .to_vec(),
            PrivateKey::Ed25519(k) => k.sign(msg).as_ref().to_vec(),
        }
    }

    /// The secret key material (RSA: PKCS#8 DER; EC: the scalar; Ed25519:
    /// the seed), used only to derive other secrets such as the refresh
    /// token key.
    pub fn secret_material(&self) -> Vec<u8> {
        match self {
            PrivateKey::Rsa(k) => {
                let der: aws_lc_rs::encoding::Pkcs8V1Der =
                    k.as_der().expect("a valid RSA key encodes");
                der.as_ref().to_vec()
            }
            PrivateKey::Ec(k, _) => {
                let bin: EcPrivateKeyBin = k
                    .private_key()
                    .as_be_bytes()
                    .expect("a valid EC key encodes");
                bin.as_ref().to_vec()
            }
            PrivateKey::Ed25519(k) => {
                let seed: aws_lc_rs::encoding::Curve25519SeedBin = k
                    .seed()
                    .and_then(|s| s.as_be_bytes())
                    .expect("a valid Ed25519 key has a seed");
                seed.as_ref().to_vec()
            }
        }
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn public_spki_der(&self) -> Vec<u8> {
        let der: Result<PublicKeyX509Der, _> = match self {
            PrivateKey::Rsa(k) => k.public_key().as_der(),
            PrivateKey::Ec(k, _) => k.public_key().as_der(),
            PrivateKey::Ed25519(k) => k.public_key().as_der(),
        };
        der.expect("encoding a valid public key cannot fail")
            .as_ref()
            .to_vec()
    }

    /// The public key as a JWK with members in RFC 7638 canonical order
    /// (only the required members), used for thumbprints and JWKS.
    pub fn public_jwk(&self) -> serde_json::Map<String, serde_json::Value> {
        let b = |bytes: &[u8]| serde_json::Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let s = |v: &str| serde_json::Value::String(v.to_owned());
        let mut m = serde_json::Map::new();
        match self {
            PrivateKey::Rsa(k) => {
                let public = k.public_key();
                m.insert(
                    "e".into(),
                    b(public.exponent().big_endian_without_leading_zero()),
                );
                m.insert("kty".into(), s("RSA"));
                m.insert(
                    "n".into(),
                    b(public.modulus().big_endian_without_leading_zero()),
                );
            }
            PrivateKey::Ec(k, alg) => {
                // Uncompressed SEC1 point: 0x04 || X || Y, coordinates padded
                // to the field size (leading zero bytes kept, as RFC 7518
                // requires).
                let point = k.public_key().as_ref();
                let coords = &point[1..];
                let (x, y) = coords.split_at(coords.len() / 2);
                let crv = match alg {
                    Alg::ES384 => "P-384",
                    Alg::ES512 => "P-521",
                    _ => "P-256",
                };
                m.insert("crv".into(), s(crv));
                m.insert("kty".into(), s("EC"));
                m.insert("x".into(), b(x));
                m.insert("y".into(), b(y));
            }
            PrivateKey::Ed25519(k) => {
                m.insert("crv".into(), s("Ed25519"));
                m.insert("kty".into(), s("OKP"));
                m.insert("x".into(), b(k.public_key().as_ref()));
            }
        }
        m
    }
}

/// An RSA key as parsed, refused under 2048 bits (aws-lc refuses those at
/// parse time: the error says so).
fn rsa_key(
    parsed: Result<signature::RsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> Result<PrivateKey, KeyError> {
    match parsed {
        Ok(k) if k.public_modulus_len() * 8 >= 2048 => Ok(PrivateKey::Rsa(Box::new(k))),
        Ok(_) => Err(KeyError::RsaTooSmall),
        Err(e) if e.description_() == "TooSmall" => Err(KeyError::RsaTooSmall),
        Err(_) => Err(KeyError::Unsupported),
    }
}

/// The libtrust key ID distribution 2.x expects: SHA-256 of the DER
/// SubjectPublicKeyInfo, first 240 bits, base32 (RFC 4648, no padding),
/// in 12 groups of 4 characters joined by `:`.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest.as_ref()[..30]);
    let groups: Vec<&str> = (0..b32.len()).step_by(4).map(|i| &b32[i..i + 4]).collect();
    groups.join(":")
}

/// RFC 7638 JWK thumbprint: base64url(SHA-256(canonical JWK JSON)).
pub fn thumbprint_kid(jwk: &serde_json::Map<String, serde_json::Value>) -> String {
    // serde_json::Map is a BTreeMap here (no preserve_order), so keys are in
    // lexicographic order, and to_string emits no whitespace: exactly the
    // canonical form RFC 7638 §3 asks for.
    let canonical = serde_json::to_string(jwk).expect("a JSON map serializes");
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// Splits a PEM text into its blocks: `(label, whole block text)`.
pub(crate) fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
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
