//! Token signing: the key is parsed once at load and the JWS header is
//! encoded once; issuing a token costs one claims serialization and one
//! signature.

pub mod keygen;
pub mod keys;
pub mod refresh;

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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

/// Which `kid` the JWS header carries (config `token.kid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KidMode {
    /// libtrust key ID (distribution 2.x and docker_auth's default).
    #[default]
    Libtrust,
    /// RFC 7638 JWK thumbprint (distribution 3.x with `rootcertbundle`).
    Thumbprint,
    /// No `kid` (zot; distribution with `x5c`).
    None,
}

impl KidMode {
    /// The value as `token.kid` spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KidMode::Libtrust => "libtrust",
            KidMode::Thumbprint => "thumbprint",
            KidMode::None => "none",
        }
    }
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

    pub fn alg(&self) -> Alg {
        self.key.alg()
    }

    /// The key for refresh tokens, derived from this signing key.
    pub fn refresh_key(&self) -> refresh::RefreshKey {
        refresh::RefreshKey::derive(&self.key.secret_material())
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK (with `kid`, `alg` and `use` when known).
    pub fn public_jwk(&self) -> serde_json::Value {
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
    pub fn jwks(&self) -> serde_json::Value {
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
