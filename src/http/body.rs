//! The token endpoint's 200 body:
//! `{"token":…,"access_token":…,"expires_in":…,"issued_at":…[,"refresh_token":…]}`,
//! serialized by `serde_json` from [`TokenBody`].
//!
//! Measured beside a body pushed into a string by hand (criterion
//! `alternatives/token_body/*` in `benches/micro.rs`, a 480-byte token):
//! 0.65 µs against 0.08 µs in BENCHMARKS.md's latest run, so
//! `serde_json`, which scans both copies of the token for characters to
//! escape, costs about 0.57 µs per issued token, 3 % of a whole request in
//! process (`http/anonymous`, 21 µs there). That is below the 1 µs a
//! hand-written part has to save to be kept (BENCHMARKS.md, "Hand-written
//! parts and their crate alternatives"), so the body is serde's. Under
//! load the hand-written body served 1.02 (anonymous) and 0.98 (cached)
//! of the requests of this one (`benches/versus.sh`, 9 rounds of 2 s):
//! within the noise. `issued_at` is written by the audit line's timestamp
//! writer ([`crate::logging::record::write_rfc3339`]): `time`'s `Rfc3339`
//! formatter made the body 1.2 µs.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::service::Issued;

/// The fields of the body, in the order they are written.
#[derive(Serialize)]
struct TokenBody<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    /// `2026-11-23T17:43:12Z`.
    #[serde(serialize_with = "rfc3339")]
    issued_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    /// RFC 8693 §2.2.1, in answers to a token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

/// What a token exchange issues: the registry's bearer token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `unix_secs` as RFC 3339 in UTC, whole seconds (the epoch when it is
/// past the year 9999, which RFC 3339 cannot write).
fn rfc3339<S: Serializer>(unix_secs: &u64, s: S) -> Result<S::Ok, S::Error> {
    let t = i64::try_from(*unix_secs)
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .filter(|t| (0..=9999).contains(&t.year()))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut text = String::with_capacity(20);
    // Writing into a String cannot fail.
    let _ = crate::logging::record::write_rfc3339(&mut text, t, false);
    s.serialize_str(&text)
}

/// The JSON body for `issued`.
pub(crate) fn token_json(issued: &Issued) -> Vec<u8> {
    let body = TokenBody {
        token: &issued.token,
        access_token: &issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
        refresh_token: issued.refresh_token.as_deref(),
        issued_token_type: issued.exchanged.then_some(ACCESS_TOKEN_TYPE),
        token_type: issued.exchanged.then_some("Bearer"),
    };
    // Room for both copies of the token: one allocation, no regrowth.
    let refresh = issued.refresh_token.as_deref().map_or(0, str::len);
    let mut out = Vec::with_capacity(2 * issued.token.len() + refresh + 128);
    // Strings and integers into a Vec: serializing cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Authorization;
    use serde_json::{json, Value};

    fn issued(token: &str, refresh: Option<&str>, at: u64) -> Issued {
        Issued {
            token: token.into(),
            expires_in: 300,
            issued_at: at,
            account: "alice".into(),
            authorization: Authorization {
                audience: "reg".into(),
                mirror: None,
                grants: vec![],
            },
            backend: "users",
            refresh_token: refresh.map(str::to_owned),
            binding: None,
            exchanged: false,
        }
    }

    #[test]
    fn bodies_table() {
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_";
        let cases = [
            (
                issued(jws, None, 1_795_455_792),
                json!({"token": jws, "access_token": jws, "expires_in": 300, "issued_at": "2026-11-23T17:43:12Z"}),
            ),
            (
                issued(jws, Some("rt1.cGF5bG9hZA.dGFn"), 0),
                json!({"token": jws, "access_token": jws, "expires_in": 300, "issued_at": "1970-01-01T00:00:00Z", "refresh_token": "rt1.cGF5bG9hZA.dGFn"}),
            ),
            (
                issued(jws, None, 253_402_300_799),
                json!({"token": jws, "access_token": jws, "expires_in": 300, "issued_at": "9999-12-31T23:59:59Z"}),
            ),
            (
                issued(jws, None, 253_402_300_800),
                json!({"token": jws, "access_token": jws, "expires_in": 300, "issued_at": "1970-01-01T00:00:00Z"}),
            ),
            (
                issued(jws, None, u64::MAX),
                json!({"token": jws, "access_token": jws, "expires_in": 300, "issued_at": "1970-01-01T00:00:00Z"}),
            ),
        ];
        for (i, want) in cases {
            let body = token_json(&i);
            let got: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
            assert_eq!(got, want);
        }
    }
}
