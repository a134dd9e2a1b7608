//! The token endpoint's 200 body:
//! `{"token":…,"access_token":…,"expires_in":…,"issued_at":…[,"refresh_token":…]}`.
//!
//! Written directly into one buffer: a signed token and a refresh token
//! are, by construction ([`crate::token::Signer::sign`],
//! [`crate::token::refresh`]), base64url segments joined by dots, and
//! `issued_at` is RFC 3339 digits, so nothing needs JSON escaping; a
//! generic serializer would scan every byte of both copies of the token
//! for characters to escape.

use std::fmt::Write;

use crate::service::Issued;

/// Characters that stand in a JSON string as they are (checked in debug
/// builds and tests).
fn json_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Appends `issued_at`: `2026-11-23T17:43:12Z`.
fn push_issued_at(out: &mut String, unix_secs: u64) {
    let t = i64::try_from(unix_secs)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Writing into a String cannot fail.
    let _ = crate::logging::text::write_rfc3339(out, t, false);
}

/// The JSON body for `issued`.
pub fn token_json(issued: &Issued) -> Vec<u8> {
    let refresh = issued.refresh_token.as_deref();
    debug_assert!(json_safe(&issued.token) && refresh.is_none_or(json_safe));
    let t = &issued.token;
    let mut out = String::with_capacity(2 * t.len() + refresh.map_or(0, str::len) + 128);
    out.push_str("{\"token\":\"");
    out.push_str(t);
    out.push_str("\",\"access_token\":\"");
    out.push_str(t);
    out.push_str("\",\"expires_in\":");
    // Writing into a String cannot fail.
    let _ = write!(out, "{}", issued.expires_in);
    out.push_str(",\"issued_at\":\"");
    push_issued_at(&mut out, issued.issued_at);
    out.push('"');
    if let Some(r) = refresh {
        out.push_str(",\"refresh_token\":\"");
        out.push_str(r);
        out.push('"');
    }
    out.push('}');
    out.into_bytes()
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
        ];
        for (i, want) in cases {
            let body = token_json(&i);
            let got: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
            assert_eq!(got, want);
        }
    }
}
