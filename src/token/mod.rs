//! Token signing: the key is parsed once at load and the JWS header is
//! encoded once; issuing a token costs one claims serialization and one
//! signature.

pub mod keygen;
pub mod keys;
pub mod refresh;

use crate::config::{KidMode, TokenSettings};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;

pub use keys::{Alg, KeyError, PrivateKey};

/// A random token ID: 128 bits, hex, from rand's thread-local CSPRNG
/// (ChaCha12 seeded and periodically reseeded from the OS), which costs no
/// system call per token.
pub fn new_jti() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    data_encoding::HEXLOWER.encode(&b)
}

/// A ready-to-use signer: the key, its precomputed `kid` and the base64url
/// JWS header.
#[derive(Debug)]
pub struct Signer {
    key: PrivateKey,
    kid: Option<String>,
    header_b64: String,
    jwk: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<[String; 1]>,
}

impl Signer {
    /// `cert_der`, when given, is put in the header as `x5c`.
    pub fn new(
        key: PrivateKey,
        kid_mode: KidMode,
        cert_der: Option<&[u8]>,
    ) -> Result<Signer, KeyError> {
        let jwk = key.public_jwk();
        let kid = match kid_mode {
            KidMode::Libtrust => Some(keys::libtrust_kid(&key.public_spki_der())),
            KidMode::Thumbprint => Some(keys::thumbprint_kid(&jwk)),
            KidMode::None => None,
        };
        let header = Header {
            typ: "JWT",
            alg: key.alg().as_str(),
            kid: kid.as_deref(),
            x5c: cert_der.map(|d| [STANDARD.encode(d)]),
        };
        let header_b64 =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes"));
        Ok(Signer {
            key,
            kid,
            header_b64,
            jwk,
        })
    }

    /// The signer `token` describes: its key parsed (decrypted with the
    /// passphrase when set), the certificate checked against the key.
    /// Errors name the YAML key and the file.
    pub(crate) fn from_settings(token: &TokenSettings) -> Result<Signer, String> {
        let (key_name, cert_name) = token.signing_pair.keys();
        let key = PrivateKey::from_pem(token.key_pem.expose(), token.key_passphrase.as_ref())
            .map_err(|e| format!("{key_name} ({}): {e}", token.key_path.display()))?;
        let cert_der = match &token.cert_pem {
            Some(pem) => Some(
                keys::certificate_der(pem, &key.public_spki_der())
                    .map_err(|e| format!("{cert_name}: {e}"))?,
            ),
            None => None,
        };
        let x5c = if token.x5c { cert_der.as_deref() } else { None };
        Signer::new(key, token.kid, x5c).map_err(|e| format!("{key_name}: {e}"))
    }

    pub fn alg(&self) -> Alg {
        self.key.alg()
    }

    /// The key for refresh tokens, derived from this signing key.
    pub(crate) fn refresh_key(&self) -> refresh::RefreshKey {
        refresh::RefreshKey::derive(&self.key.secret_material())
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK (with `kid`, `alg` and `use` when known).
    pub(crate) fn public_jwk(&self) -> serde_json::Value {
        let mut m = self.jwk.clone();
        if let Some(kid) = &self.kid {
            m.insert("kid".into(), kid.clone().into());
        }
        m.insert("alg".into(), self.alg().as_str().into());
        m.insert("use".into(), "sig".into());
        serde_json::Value::Object(m)
    }

    /// `{"keys": [public JWK]}`, as served at `/.well-known/jwks.json` and
    /// written for distribution 3.x's `auth.token.jwks`.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// Signs the claims and returns the compact JWS.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 200);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = self.key.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        out
    }
}

#[cfg(test)]
mod jti_tests {
    #[test]
    fn jti_is_128_bits_of_lowercase_hex_and_fresh_each_time() {
        let ids: Vec<String> = (0..100).map(|_| super::new_jti()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
