//! The checks of one ID token against one binding, given the issuer's
//! keys. Signatures are verified by `jsonwebtoken`; the algorithm is the
//! one the key allows (its JWK `alg`, or the only one its curve allows),
//! and must also be in the binding's allow-list: the token's header only
//! picks among those, so `alg: none`, an HMAC under the public key or an
//! RSA key used with another padding are refused before any verification.
//! The claim checks are done here, one at a time, so a refusal names the
//! check that failed.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::federation::{Algorithm, Binding};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 60;

/// The check a token failed: the log line and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not a JWS of three base64url parts with JSON header and payload.
    Malformed,
    /// The header's `alg` is not allowed for the binding or the key.
    Alg,
    Iss,
    /// No key of the issuer has the token's `kid` (after a refetch).
    Kid,
    Signature,
    Aud,
    Exp,
    Nbf,
    Iat,
    MaxAge,
    Require,
    /// A claim the `account` or `labels` templates read is missing.
    Claims,
}

impl Check {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Check::Malformed => "token",
            Check::Alg => "alg",
            Check::Iss => "iss",
            Check::Kid => "kid",
            Check::Signature => "signature",
            Check::Aud => "aud",
            Check::Exp => "exp",
            Check::Nbf => "nbf",
            Check::Iat => "iat",
            Check::MaxAge => "max_age",
            Check::Require => "require",
            Check::Claims => "claims",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the check, and for `require` and `claims` the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) check: Check,
    pub(crate) claim: Option<String>,
}

impl From<Check> for Refusal {
    fn from(check: Check) -> Refusal {
        Refusal { check, claim: None }
    }
}

/// One verification key of an issuer.
#[derive(Clone)]
pub(crate) struct Key {
    key: DecodingKey,
    /// The algorithms the key may verify.
    algorithms: Vec<Algorithm>,
}

/// An issuer's keys, by `kid` (keys without one are tried in order for
/// tokens without one).
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
}

impl KeySet {
    /// The usable keys of a JWK Set document: symmetric keys, encryption
    /// keys and curves no algorithm of ours uses are skipped.
    pub(crate) fn parse(json: &[u8]) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<Value>,
        }
        let doc: Doc = serde_json::from_slice(json).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut set = KeySet::default();
        for raw in doc.keys {
            // One key this library cannot read does not spoil the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let Some(algorithms) = key_algorithms(&jwk) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let key = Key { key, algorithms };
            match jwk.common.key_id {
                Some(kid) => {
                    set.by_kid.insert(kid, key);
                }
                None => set.without_kid.push(key),
            }
        }
        if set.is_empty() {
            return Err("the JWK Set holds no usable signing key".into());
        }
        Ok(set)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.without_kid.is_empty()
    }

    /// The keys a token with `kid` may be verified with; empty when the
    /// `kid` is unknown.
    fn candidates(&self, kid: Option<&str>) -> Vec<&Key> {
        match kid {
            Some(k) => self.by_kid.get(k).into_iter().collect(),
            None => self.without_kid.iter().collect(),
        }
    }

    pub(crate) fn knows(&self, kid: Option<&str>) -> bool {
        !self.candidates(kid).is_empty()
    }
}

/// The algorithms a JWK may verify: its `alg` when it names one, else
/// what its type and curve allow. `None`: not a signing key of ours.
fn key_algorithms(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // Symmetric keys (`oct`) never verify an issuer's tokens.
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(family),
        Some(named) => {
            let named = match named {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::RS512 => Algorithm::RS512,
                KeyAlgorithm::PS256 => Algorithm::PS256,
                KeyAlgorithm::PS384 => Algorithm::PS384,
                KeyAlgorithm::PS512 => Algorithm::PS512,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                _ => return None,
            };
            family.contains(&named).then(|| vec![named])
        }
    }
}

fn jwt_algorithm(a: Algorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as J;
    match a {
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
    }
}

/// What can be read from a token before its signature is checked: used
/// only to pick a binding and a key, never to grant.
#[derive(Debug)]
pub(crate) struct Unverified {
    /// The header's `alg` as written (`none`, `HS256` included).
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
    pub(crate) iss: Option<String>,
}

/// Reads the header and the `iss` claim without verifying anything.
pub(crate) fn peek(token: &str) -> Result<Unverified, Check> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Check::Malformed);
    };
    let json = |part: &str| -> Result<Map<String, Value>, Check> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| Check::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| Check::Malformed)
    };
    let header = json(h)?;
    let payload = json(p)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Check::Malformed)?
        .to_owned();
    Ok(Unverified {
        alg,
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        iss: payload
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The header's algorithm, when the binding allows it.
pub(crate) fn allowed_alg(binding: &Binding, head: &Unverified) -> Result<Algorithm, Check> {
    Algorithm::parse(&head.alg)
        .filter(|a| binding.algorithms.contains(a))
        .ok_or(Check::Alg)
}

/// The verified claims of a token that passed every check.
pub(crate) type Claims = Map<String, Value>;

/// Verifies the signature with the issuer's key for the token's `kid`,
/// then every claim check of `binding`, at `now` (Unix seconds).
pub(crate) fn verify(
    binding: &Binding,
    keys: &KeySet,
    token: &str,
    head: &Unverified,
    now: u64,
) -> Result<Claims, Refusal> {
    let alg = allowed_alg(binding, head)?;
    let candidates = keys.candidates(head.kid.as_deref());
    if candidates.is_empty() {
        return Err(Check::Kid.into());
    }
    let mut validation = Validation::new(jwt_algorithm(alg));
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut last = Check::Alg;
    let mut claims = None;
    for key in candidates {
        if !key.algorithms.contains(&alg) {
            continue;
        }
        match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => {
                last = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Check::Alg,
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => Check::Signature,
                    _ => Check::Malformed,
                }
            }
        }
    }
    let claims = claims.ok_or(last)?;
    check_claims(binding, &claims, now)?;
    Ok(claims)
}

/// The claim checks, in a fixed order: `iss`, `aud`, `exp`, `nbf`, `iat`,
/// `max_age`, `require`.
pub(crate) fn check_claims(binding: &Binding, claims: &Claims, now: u64) -> Result<(), Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(binding.issuer.as_str()) {
        return Err(Check::Iss.into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == binding.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(binding.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Check::Aud.into());
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_u64);
    // `exp` is required: a token without one would never expire.
    match time("exp") {
        Some(exp) if exp.saturating_add(LEEWAY_SECS) > now => {}
        _ => return Err(Check::Exp.into()),
    }
    if claims.contains_key("nbf") {
        match time("nbf") {
            Some(nbf) if nbf <= now.saturating_add(LEEWAY_SECS) => {}
            _ => return Err(Check::Nbf.into()),
        }
    }
    let iat = time("iat");
    if claims.contains_key("iat") && iat.is_none_or(|t| t > now.saturating_add(LEEWAY_SECS)) {
        return Err(Check::Iat.into());
    }
    if let Some(max) = binding.max_age {
        match iat {
            Some(t) if now.saturating_sub(t) <= max.saturating_add(LEEWAY_SECS) => {}
            _ => return Err(Check::MaxAge.into()),
        }
    }
    for (claim, pattern) in &binding.require {
        if !claim_text(claims, claim).is_some_and(|v| pattern.is_match(&v)) {
            return Err(Refusal {
                check: Check::Require,
                claim: Some(claim.clone()),
            });
        }
    }
    Ok(())
}

/// A claim as text: strings as they are, numbers and booleans written
/// out (GitHub's ids are strings, Kubernetes' and others' may be numbers).
pub(crate) fn claim_text(claims: &Claims, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::federation::{bindings, RawBinding};
    use serde_json::json;

    fn binding(extra: &str) -> Binding {
        let raw: RawBinding = serde_yaml::from_str(&format!(
            "name: ci\nissuer: https://issuer.example\naudience: reg\nmax_age: 600\nrequire: {{owner_id: \"42\", ref: \"refs/heads/*\"}}\n{extra}"
        ))
        .unwrap();
        bindings(vec![raw], |_| false).unwrap().remove(0)
    }

    #[test]
    fn claim_checks_table() {
        let now = 10_000;
        let good = json!({
            "iss": "https://issuer.example", "aud": "reg", "exp": now + 300,
            "nbf": now - 10, "iat": now - 10, "owner_id": 42, "ref": "refs/heads/main",
        });
        let with = |k: &str, v: Value| {
            let mut c = good.as_object().unwrap().clone();
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.into(), v);
            }
            c
        };
        let cases: Vec<(&str, Claims, Result<(), Check>)> = vec![
            ("good", with("x", Value::Null), Ok(())),
            (
                "aud in a list",
                with("aud", json!(["other", "reg"])),
                Ok(()),
            ),
            ("exp within leeway", with("exp", json!(now - 30)), Ok(())),
            (
                "other iss",
                with("iss", json!("https://evil")),
                Err(Check::Iss),
            ),
            ("no iss", with("iss", Value::Null), Err(Check::Iss)),
            ("other aud", with("aud", json!("other")), Err(Check::Aud)),
            (
                "aud list without ours",
                with("aud", json!(["a", "b"])),
                Err(Check::Aud),
            ),
            ("no aud", with("aud", Value::Null), Err(Check::Aud)),
            ("expired", with("exp", json!(now - 61)), Err(Check::Exp)),
            ("no exp", with("exp", Value::Null), Err(Check::Exp)),
            (
                "exp not a number",
                with("exp", json!("soon")),
                Err(Check::Exp),
            ),
            ("nbf ahead", with("nbf", json!(now + 120)), Err(Check::Nbf)),
            ("iat ahead", with("iat", json!(now + 120)), Err(Check::Iat)),
            ("too old", with("iat", json!(now - 700)), Err(Check::MaxAge)),
            (
                "no iat with max_age",
                with("iat", Value::Null),
                Err(Check::MaxAge),
            ),
            (
                "other owner",
                with("owner_id", json!("43")),
                Err(Check::Require),
            ),
            (
                "other ref",
                with("ref", json!("refs/tags/v1")),
                Err(Check::Require),
            ),
            (
                "missing required",
                with("ref", Value::Null),
                Err(Check::Require),
            ),
        ];
        let b = binding("");
        for (name, claims, want) in cases {
            assert_eq!(
                check_claims(&b, &claims, now).map_err(|r| r.check),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn peek_and_alg_table() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let tok = |alg: &str| {
            format!(
                "{}.{}.sig",
                enc(json!({"alg": alg, "kid": "k1"})),
                enc(json!({"iss": "https://issuer.example"}))
            )
        };
        let b = binding("algorithms: [RS256, ES256]\n");
        let head = peek(&tok("ES256")).unwrap();
        assert_eq!(head.kid.as_deref(), Some("k1"));
        assert_eq!(head.iss.as_deref(), Some("https://issuer.example"));
        assert_eq!(allowed_alg(&b, &head), Ok(Algorithm::ES256));
        for alg in ["none", "HS256", "PS256", "ES512", ""] {
            assert_eq!(
                allowed_alg(&b, &peek(&tok(alg)).unwrap()),
                Err(Check::Alg),
                "{alg}"
            );
        }
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.x",
            &format!("{}.e30.x", enc(json!({}))),
        ] {
            assert_eq!(peek(bad).unwrap_err(), Check::Malformed, "{bad}");
        }
    }

    #[test]
    fn jwk_sets_keep_signing_keys_only() {
        let set = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "mislabelled", "alg": "RS256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "weird"}
        ]});
        let keys = KeySet::parse(set.to_string().as_bytes()).unwrap();
        assert!(keys.knows(Some("ec")));
        for k in ["hmac", "enc", "mislabelled", "nope"] {
            assert!(!keys.knows(Some(k)), "{k}");
        }
        assert_eq!(keys.by_kid["ec"].algorithms, [Algorithm::ES256]);
        assert!(KeySet::parse(br#"{"keys": [{"kty": "oct", "k": "eA"}]}"#).is_err());
        assert!(KeySet::parse(b"<html>").is_err());
    }
}
