//! Stateless refresh tokens (`docker login` identity tokens, OAuth2
//! `refresh_token`).
//!
//! Design: a refresh token is `rt1.<payload>.<mac>`, where payload is
//! base64url JSON `{sub, backend, fp, aud, iat, exp, jti}` and mac is
//! HMAC-SHA256 over `rt1.<payload>` under a key derived from the token
//! signing key (so tokens survive restarts and die with a key rotation). A
//! registry cannot mistake one for an access token: it is not a JWS.
//!
//! Revocation without server-side state: `fp` is a keyed hash of the
//! account's *credential record* at issue time (the bcrypt hash for static
//! users and htpasswd; whatever the backend reports as its record for
//! others). On refresh the record is looked up again; if the user is gone or
//! the record changed (password changed), the fingerprint no longer matches
//! and the refresh is refused. Labels are re-read at refresh, so ACL
//! decisions always use the user's current groups.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "rt1.";

/// The claims inside a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefreshClaims {
    pub(crate) sub: String,
    pub(crate) backend: String,
    /// base64url of the credential-record fingerprint.
    pub(crate) fp: String,
    /// The service the token was issued for.
    pub(crate) aud: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) jti: String,
    /// The account, when it is not `sub` (federated logins: the account
    /// the binding made of the ID token's claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<String>,
    /// The labels, when the backend cannot give them again at refresh
    /// (federated logins: they came from the ID token).
    #[serde(default, skip_serializing_if = "crate::core::Labels::is_empty")]
    pub(crate) labels: crate::core::Labels,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RefreshError {
    #[error("malformed refresh token")]
    Malformed,
    #[error("refresh token signature mismatch")]
    BadMac,
    #[error("refresh token expired")]
    Expired,
    #[error("refresh token was issued for another service")]
    WrongService,
    #[error("credentials changed since the refresh token was issued")]
    Revoked,
}

/// The HMAC key for refresh tokens, derived from the signing key's secret
/// material. Never printed.
#[derive(Clone)]
pub struct RefreshKey([u8; 32]);

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(***)")
    }
}

impl RefreshKey {
    /// Derives the key from secret bytes (the signing key's DER).
    pub fn derive(secret: &[u8]) -> RefreshKey {
        let label = hmac::Key::new(hmac::HMAC_SHA256, b"regauth refresh token key v1");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        let mut key = [0u8; 32];
        key.copy_from_slice(hmac::sign(&label, digest.as_ref()).as_ref());
        RefreshKey(key)
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }

    fn mac(&self) -> hmac::Context {
        hmac::Context::with_key(&self.key())
    }

    /// The fingerprint of a credential record for `backend`/`user`.
    pub fn fingerprint(&self, backend: &str, user: &str, record: &[u8]) -> String {
        let mut m = self.mac();
        for part in [
            b"fp".as_slice(),
            backend.as_bytes(),
            user.as_bytes(),
            record,
        ] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part);
        }
        URL_SAFE_NO_PAD.encode(m.sign())
    }

    pub(crate) fn issue(&self, claims: &RefreshClaims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signed = format!("{PREFIX}{payload}");
        let mut m = self.mac();
        m.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(m.sign());
        format!("{signed}.{tag}")
    }

    /// Checks the MAC, expiry and service; the fingerprint is the caller's
    /// to compare (it needs the backend).
    pub(crate) fn verify(
        &self,
        token: &str,
        service: &str,
        now: u64,
    ) -> Result<RefreshClaims, RefreshError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(RefreshError::Malformed)?;
        let payload = signed.strip_prefix(PREFIX).ok_or(RefreshError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| RefreshError::Malformed)?;
        hmac::verify(&self.key(), signed.as_bytes(), &tag).map_err(|_| RefreshError::BadMac)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| RefreshError::Malformed)?;
        let claims: RefreshClaims =
            serde_json::from_slice(&json).map_err(|_| RefreshError::Malformed)?;
        if claims.exp <= now {
            return Err(RefreshError::Expired);
        }
        if claims.aud != service {
            return Err(RefreshError::WrongService);
        }
        Ok(claims)
    }
}

/// Constant-time comparison of two fingerprints.
pub(crate) fn same_fingerprint(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> RefreshClaims {
        RefreshClaims {
            sub: "alice".into(),
            backend: "htpasswd".into(),
            fp: "f".into(),
            aud: "reg".into(),
            iat: 100,
            exp,
            jti: "j".into(),
            account: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn verify_table() {
        let k = RefreshKey::derive(b"secret key material");
        let other = RefreshKey::derive(b"another key");
        let good = k.issue(&claims(200));
        assert_eq!(k.verify(&good, "reg", 150), Ok(claims(200)));
        let tampered = {
            let (signed, tag) = good.rsplit_once('.').unwrap();
            let forged = k.issue(&RefreshClaims {
                sub: "root".into(),
                ..claims(200)
            });
            let forged_payload = forged.rsplit_once('.').unwrap().0;
            assert_ne!(forged_payload, signed);
            format!("{forged_payload}.{tag}")
        };
        let cases: Vec<(&str, String, &str, u64, RefreshError)> = vec![
            ("expired", good.clone(), "reg", 200, RefreshError::Expired),
            (
                "other service",
                good.clone(),
                "other",
                150,
                RefreshError::WrongService,
            ),
            (
                "other key",
                other.issue(&claims(200)),
                "reg",
                150,
                RefreshError::BadMac,
            ),
            (
                "payload swapped",
                tampered,
                "reg",
                150,
                RefreshError::BadMac,
            ),
            (
                "garbage",
                "nonsense".into(),
                "reg",
                150,
                RefreshError::Malformed,
            ),
            (
                "a JWT",
                "eyJ.eyJ.sig".into(),
                "reg",
                150,
                RefreshError::Malformed,
            ),
            ("empty", String::new(), "reg", 150, RefreshError::Malformed),
        ];
        for (name, token, service, now, want) in cases {
            assert_eq!(k.verify(&token, service, now), Err(want), "{name}");
        }
    }

    #[test]
    fn fingerprints_separate_fields_and_compare_in_constant_time() {
        let k = RefreshKey::derive(b"k");
        let a = k.fingerprint("htpasswd", "alice", b"$2y$hash1");
        assert_eq!(a, k.fingerprint("htpasswd", "alice", b"$2y$hash1"));
        assert_ne!(a, k.fingerprint("htpasswd", "alice", b"$2y$hash2"));
        assert_ne!(a, k.fingerprint("users", "alice", b"$2y$hash1"));
        assert_ne!(
            k.fingerprint("b", "ab", b"c"),
            k.fingerprint("b", "a", b"bc")
        );
        assert!(same_fingerprint(&a, &a.clone()));
        assert!(!same_fingerprint(&a, "x"));
        assert_eq!(format!("{k:?}"), "RefreshKey(***)");
    }
}
