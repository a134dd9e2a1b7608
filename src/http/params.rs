//! Request parameters: the query string (GET) or form body (POST) and the
//! `Authorization: Basic` header, parsed into plain values.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::authn::Credentials;
use crate::secret::Secret;

/// The token endpoint's parameters (DESIGN §2). `scope` may repeat; every
/// other parameter may appear once.
#[derive(Debug, Default)]
pub struct Params {
    pub service: Option<String>,
    pub scopes: Vec<String>,
    pub account: Option<String>,
    pub(crate) offline_token: bool,
    pub(crate) client_id: Option<String>,
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) access_type: Option<String>,
    /// RFC 8693 token exchange.
    pub(crate) subject_token: Option<Secret>,
    pub(crate) subject_token_type: Option<String>,
    pub(crate) requested_token_type: Option<String>,
}

/// Why a request could not be read; the text is safe to return.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParamError(pub String);

fn once(slot: &mut Option<String>, key: &str, value: String) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(ParamError(format!(
            "parameter {key:?} given more than once"
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn once_secret(slot: &mut Option<Secret>, key: &str, value: String) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(ParamError(format!(
            "parameter {key:?} given more than once"
        )));
    }
    *slot = Some(Secret::new(value));
    Ok(())
}

/// Parses `application/x-www-form-urlencoded` bytes (a query string or a
/// POST body). Invalid UTF-8 after percent-decoding is an error, not a
/// silent replacement.
pub fn parse(input: &[u8]) -> Result<Params, ParamError> {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(input) {
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(ParamError("parameters are not valid UTF-8".into()));
        }
        let k: &str = &k;
        // Names end up in tokens and log lines: no control characters
        // (scopes get their own error from the scope parser).
        let is_name = matches!(
            k,
            "service"
                | "account"
                | "username"
                | "client_id"
                | "grant_type"
                | "access_type"
                | "subject_token_type"
                | "requested_token_type"
        );
        if is_name && v.contains(|c: char| c.is_control()) {
            return Err(ParamError(format!("control character in parameter {k:?}")));
        }
        let v = || v.clone().into_owned();
        match k {
            "scope" => p.scopes.push(v()),
            "service" => once(&mut p.service, k, v())?,
            "account" => once(&mut p.account, k, v())?,
            "client_id" => once(&mut p.client_id, k, v())?,
            "grant_type" => once(&mut p.grant_type, k, v())?,
            "username" => once(&mut p.username, k, v())?,
            "access_type" => once(&mut p.access_type, k, v())?,
            "password" => once_secret(&mut p.password, k, v())?,
            "refresh_token" => once_secret(&mut p.refresh_token, k, v())?,
            "subject_token" => once_secret(&mut p.subject_token, k, v())?,
            "subject_token_type" => once(&mut p.subject_token_type, k, v())?,
            "requested_token_type" => once(&mut p.requested_token_type, k, v())?,
            "offline_token" => p.offline_token = v() == "true",
            // Unknown parameters are ignored, as registries' clients add
            // their own (e.g. `nonce`).
            _ => {}
        }
    }
    Ok(p)
}

/// Parses an `Authorization` header value. `Ok(None)` for no header.
pub fn basic_credentials(header: Option<&[u8]>) -> Result<Option<Credentials>, ParamError> {
    let Some(raw) = header else { return Ok(None) };
    let bad = |why: &str| ParamError(format!("malformed Basic credentials: {why}"));
    let text = std::str::from_utf8(raw).map_err(|_| bad("not ASCII"))?;
    let (scheme, rest) = text.split_once(' ').ok_or_else(|| bad("no scheme"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ParamError(format!(
            "unsupported Authorization scheme {:?}; use Basic",
            scheme.chars().take(16).collect::<String>()
        )));
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| bad("invalid base64"))?;
    let mut decoded = String::from_utf8(decoded).map_err(|_| bad("not UTF-8"))?;
    let colon = decoded.find(':').ok_or_else(|| bad("no colon"))?;
    let user = decoded[..colon].to_owned();
    if user.contains(|c: char| c.is_control()) {
        return Err(bad("control character in user name"));
    }
    // The decoded buffer becomes the password: no second copy of it.
    decoded.drain(..=colon);
    Ok(Some(Credentials {
        user,
        password: Secret::from(decoded),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let p = parse(b"service=reg&scope=repository:a:pull&scope=repository:b:push+repository:c:pull&account=x&offline_token=true&nonce=1").unwrap();
        assert_eq!(p.service.as_deref(), Some("reg"));
        assert_eq!(
            p.scopes,
            ["repository:a:pull", "repository:b:push repository:c:pull"]
        );
        assert_eq!(p.account.as_deref(), Some("x"));
        assert!(p.offline_token);

        let errors: &[(&[u8], &str)] = &[
            (
                b"service=a&service=b",
                "parameter \"service\" given more than once",
            ),
            (
                b"password=a&password=b",
                "parameter \"password\" given more than once",
            ),
            (b"service=%FF", "parameters are not valid UTF-8"),
            (b"scope=%C3%28", "parameters are not valid UTF-8"),
            (
                b"username=a%0Ab",
                "control character in parameter \"username\"",
            ),
            (
                b"service=r%0D%0Ax",
                "control character in parameter \"service\"",
            ),
        ];
        for (input, want) in errors {
            assert_eq!(
                parse(input).unwrap_err().0,
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Invalid percent-escapes are kept literally (they then fail scope parsing).
        assert_eq!(parse(b"scope=%zz").unwrap().scopes, ["%zz"]);
    }

    #[test]
    fn basic_table() {
        let enc = |s: &str| format!("Basic {}", STANDARD.encode(s));
        let ok = basic_credentials(Some(enc("alice:pa:ss").as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(ok.user, "alice");
        assert_eq!(ok.password.expose(), "pa:ss", "only the first colon splits");
        assert!(basic_credentials(None).unwrap().is_none());
        let errors: &[(&str, &str)] = &[
            ("Basic", "no scheme"),
            ("Basic !!!", "invalid base64"),
            (&enc("nocolon"), "no colon"),
            (&enc("a\u{0}b:pw"), "control character"),
            ("Bearer abc", "unsupported Authorization scheme"),
        ];
        for (h, want) in errors {
            let e = basic_credentials(Some(h.as_bytes())).unwrap_err().0;
            assert!(e.contains(want), "{h:?}: {e}");
        }
        let bin = format!("Basic {}", STANDARD.encode([0xff, b':', b'x']));
        assert!(basic_credentials(Some(bin.as_bytes()))
            .unwrap_err()
            .0
            .contains("not UTF-8"));
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let p = parse(b"password=hunter2&refresh_token=tok123&subject_token=idtok456").unwrap();
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("tok123") && !dbg.contains("idtok456"),
            "{dbg}"
        );
    }
}
