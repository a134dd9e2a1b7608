//! The signing hot path: RS256, ES256 and ES384 sign with ring (its keys
//! are built once from the parsed key's PKCS#8 form); ES512 stays on the
//! p521 crate, which ring does not cover, and EdDSA on ed25519-dalek, which
//! is as fast. Measured on this class of machine: ES256 ~18 µs with ring vs
//! ~144 µs with p256 (BENCHMARKS.md).

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};

use super::keys::{KeyError, PrivateKey};

pub enum RingKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A key ready to sign: ring where it can, the parsed key otherwise.
pub struct FastSigner {
    ring: Option<RingKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for FastSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastSigner(***)")
    }
}

impl FastSigner {
    pub fn new(key: &PrivateKey) -> Result<FastSigner, KeyError> {
        let rng = SystemRandom::new();
        let bad = |_| KeyError::Unsupported;
        let ring = match key.pkcs8_der() {
            None => None,
            Some(der) => Some(match key.alg() {
                super::Alg::RS256 => RingKey::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(bad)?),
                super::Alg::ES256 => RingKey::Ecdsa(
                    EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &der,
                        &rng,
                    )
                    .map_err(bad)?,
                ),
                super::Alg::ES384 => RingKey::Ecdsa(
                    EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                        &der,
                        &rng,
                    )
                    .map_err(bad)?,
                ),
                super::Alg::EdDSA | super::Alg::ES512 => return Ok(FastSigner { ring: None, rng }),
            }),
        };
        Ok(FastSigner { ring, rng })
    }

    /// Signs `msg` (JWS signature bytes), falling back to `key` for ES512
    /// and EdDSA.
    pub fn sign(&self, key: &PrivateKey, msg: &[u8]) -> Vec<u8> {
        match &self.ring {
            Some(RingKey::Rsa(k)) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .expect("RSA signing with a valid key and buffer cannot fail");
                sig
            }
            Some(RingKey::Ecdsa(k)) => k
                .sign(&self.rng, msg)
                .expect("ECDSA signing cannot fail with a working system RNG")
                .as_ref()
                .to_vec(),
            None => key.sign(msg),
        }
    }
}
