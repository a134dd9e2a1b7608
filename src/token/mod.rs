//! Token signing: the key is parsed once at load and the JWS header is
//! encoded once; issuing a token costs one claims serialization and one
//! signature.
//!
//! Beside the signing key, a signer carries the keys it publishes
//! (`token.publish`): served in the JWKS and written into the registry's
//! bundle so that a registry trusts the next key before regauth signs with
//! it, or the previous one until its tokens expired. They are public keys
//! only: nothing here can sign with them.

pub(crate) mod chain;
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
    /// The signing certificate and its chain, leaf first (empty without
    /// `token.certificate`).
    chain: Vec<chain::Cert>,
    /// `token.publish`, in order.
    published: Vec<Published>,
}

/// A key published beside the signing key.
#[derive(Debug)]
pub(crate) struct Published {
    /// The file it was read from.
    pub(crate) path: std::path::PathBuf,
    pub(crate) kid: Option<String>,
    key: chain::PublicKey,
}

/// What a key is for, as `check` and `/metrics` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Signing,
    Published,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Signing => "signing",
            Role::Published => "published",
        }
    }
}

/// One key of the JWKS, described.
#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    pub(crate) role: Role,
    pub(crate) kid: Option<String>,
    pub(crate) alg: Alg,
    /// notAfter of its certificate (seconds since the epoch), when it has one.
    pub(crate) not_after: Option<u64>,
    /// The file it comes from.
    pub(crate) path: std::path::PathBuf,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
}

/// The `kid` of a public key (its DER SubjectPublicKeyInfo and JWK) in
/// `mode`.
fn kid_of(
    mode: KidMode,
    spki_der: &[u8],
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    match mode {
        KidMode::Libtrust => Some(keys::libtrust_kid(spki_der)),
        KidMode::Thumbprint => Some(keys::thumbprint_kid(jwk)),
        KidMode::None => None,
    }
}

/// A JWK as the JWKS serves it: the key's members with `kid`, `alg` and
/// `use`.
fn jwks_entry(
    jwk: &serde_json::Map<String, serde_json::Value>,
    kid: Option<&str>,
    alg: Alg,
) -> serde_json::Value {
    let mut m = jwk.clone();
    if let Some(kid) = kid {
        m.insert("kid".into(), kid.into());
    }
    m.insert("alg".into(), alg.as_str().into());
    m.insert("use".into(), "sig".into());
    serde_json::Value::Object(m)
}

impl Signer {
    /// A signer whose header carries `x5c` (the DER certificates, leaf
    /// first) when it is not empty.
    fn with_chain(key: PrivateKey, kid_mode: KidMode, x5c: &[&[u8]]) -> Signer {
        let jwk = key.public_jwk();
        let kid = kid_of(kid_mode, &key.public_spki_der(), &jwk);
        let header = Header {
            typ: "JWT",
            alg: key.alg().as_str(),
            kid: kid.as_deref(),
            x5c: (!x5c.is_empty()).then(|| x5c.iter().map(|d| STANDARD.encode(d)).collect()),
        };
        let header_b64 =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes"));
        Signer {
            key,
            kid,
            header_b64,
            jwk,
            chain: Vec::new(),
            published: Vec::new(),
        }
    }

    /// The signer `token` describes: its key parsed (decrypted with the
    /// passphrase when set), the certificate chain checked against the key
    /// and in order, the published keys read. Errors name the YAML key and
    /// the file.
    pub fn from_settings(token: &TokenSettings) -> Result<Signer, String> {
        let (key_name, cert_name) = token.signing_pair.keys();
        let key = PrivateKey::from_pem(token.key_pem.expose(), token.key_passphrase.as_ref())
            .map_err(|e| format!("{key_name} ({}): {e}", token.key_path.display()))?;
        let chain = match (&token.cert_pem, &token.cert_path) {
            (Some(pem), path) => {
                chain::signing_chain(pem, &key.public_spki_der()).map_err(|e| {
                    let file = path
                        .as_ref()
                        .map_or(String::new(), |p| format!(" ({})", p.display()));
                    format!("{cert_name}{file}: {e}")
                })?
            }
            (None, _) => Vec::new(),
        };
        let published = token
            .publish
            .iter()
            .enumerate()
            .map(|(i, (path, pem))| {
                let key = chain::PublicKey::from_pem(pem)
                    .map_err(|e| format!("token.publish[{i}] ({}): {e}", path.display()))?;
                Ok(Published {
                    path: path.clone(),
                    kid: kid_of(token.kid, &key.spki_der, &key.jwk),
                    key,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let x5c: Vec<&[u8]> = if token.x5c {
            chain.iter().map(|c| c.der.as_slice()).collect()
        } else {
            Vec::new()
        };
        let mut signer = Signer::with_chain(key, token.kid, &x5c);
        signer.chain = chain;
        signer.published = published;
        Ok(signer)
    }

    /// The signing key and the published ones, described.
    pub(crate) fn keys(&self, token: &TokenSettings) -> Vec<KeyInfo> {
        let signing = KeyInfo {
            role: Role::Signing,
            kid: self.kid.clone(),
            alg: self.alg(),
            not_after: self.chain.first().map(chain::Cert::not_after),
            path: token.key_path.clone(),
        };
        let published = self.published.iter().map(|p| KeyInfo {
            role: Role::Published,
            kid: p.kid.clone(),
            alg: p.key.alg,
            not_after: p.key.cert.as_ref().map(chain::Cert::not_after),
            path: p.path.clone(),
        });
        std::iter::once(signing).chain(published).collect()
    }

    /// notAfter of the signing certificate (seconds since the epoch).
    pub(crate) fn not_after(&self) -> Option<u64> {
        self.chain.first().map(chain::Cert::not_after)
    }

    /// The published keys, in configuration order.
    pub(crate) fn published(&self) -> &[Published] {
        &self.published
    }

    /// The published files that hold the signing key itself (listed once
    /// in the JWKS: publishing them does nothing).
    pub(crate) fn published_signing_key(&self) -> Vec<&std::path::Path> {
        let own = self.key.public_spki_der();
        self.published
            .iter()
            .filter(|p| p.key.spki_der == own)
            .map(|p| p.path.as_path())
            .collect()
    }

    /// The PEM of the signing certificate with its chain (so a CA in it is
    /// trusted too) and of the published certificates, for a registry's
    /// `rootcertbundle`; and the files of published bare public keys, which
    /// a bundle cannot hold.
    pub(crate) fn bundle(&self) -> (String, Vec<&std::path::Path>) {
        let mut pem: String = self.chain.iter().map(|c| c.pem.as_str()).collect();
        let mut bare = Vec::new();
        for p in &self.published {
            match &p.key.cert {
                Some(c) => pem.push_str(&c.pem),
                None => bare.push(p.path.as_path()),
            }
        }
        (pem, bare)
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
        jwks_entry(&self.jwk, self.kid.as_deref(), self.alg())
    }

    /// `{"keys": [signing JWK, published JWKs...]}`, as served at
    /// `/.well-known/jwks.json` and written for distribution 3.x's
    /// `auth.token.jwks`. A published key equal to the signing key is
    /// listed once.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let mut keys = vec![self.public_jwk()];
        for p in &self.published {
            let entry = jwks_entry(&p.key.jwk, p.kid.as_deref(), p.key.alg);
            if !keys.contains(&entry) {
                keys.push(entry);
            }
        }
        serde_json::json!({ "keys": keys })
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
