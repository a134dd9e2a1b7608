//! What each fuzz target checks, beyond "never panics, never hangs": shared
//! by the libFuzzer targets (`fuzz/fuzz_targets/*.rs`) and by the corpus
//! replay in the integration tests (`tests/integration/fuzz_corpus.rs`),
//! which runs every committed corpus input on stable `cargo test`.

#![allow(dead_code)]

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use regauth::core::scope;
use regauth::http::params;

/// Most scopes per request, as the server uses it.
const MAX_SCOPES: usize = 64;

fn no_control(what: &str, s: &str) {
    assert!(
        !s.contains(|c: char| c.is_control()),
        "{what} holds a control character: {s:?}"
    );
}

/// Scope grammar: each line of the input is one `scope` parameter value.
/// Every parsed scope round-trips through `Display`; errors are one line.
pub fn scope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<&str> = text.split('\n').collect();
    match scope::parse_all(values.iter().copied(), MAX_SCOPES) {
        Ok(scopes) => {
            assert!(scopes.len() <= MAX_SCOPES);
            for s in &scopes {
                let shown = s.to_string();
                assert_eq!(scope::parse(&shown).as_ref(), Ok(s), "round trip {shown:?}");
            }
        }
        Err(e) => no_control("scope error", &e.to_string()),
    }
    for piece in values.iter().flat_map(|v| v.split(' ')) {
        match scope::parse(piece) {
            Ok(s) => {
                assert!(s.name.len() <= scope::MAX_NAME_LEN);
                assert!(!s.actions.is_empty());
                let shown = s.to_string();
                assert_eq!(scope::parse(&shown), Ok(s), "round trip {shown:?}");
            }
            Err(e) => no_control("scope error", &e.to_string()),
        }
    }
}

/// Query string / form body parsing: never a replacement character in a
/// value (invalid UTF-8 is an error), errors are one line.
pub fn params(data: &[u8]) {
    match params::parse(data) {
        Ok(p) => {
            let texts = p
                .scopes
                .iter()
                .chain(p.service.iter())
                .chain(p.account.iter())
                .chain(p.username.iter())
                .chain(p.grant_type.iter());
            for t in texts {
                assert!(!t.contains('\u{FFFD}'), "lossy value {t:?}");
            }
        }
        Err(e) => no_control("params error", &e.0),
    }
}

/// The `Authorization` header: a parsed user never holds a colon or a
/// control character, and re-encoding the credentials parses back to them.
pub fn basic(data: &[u8]) {
    match params::basic_credentials(Some(data)) {
        Ok(Some(c)) => {
            assert!(!c.user.contains(':'), "user {:?}", c.user);
            no_control("user", &c.user);
            let again = format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", c.user, c.password.expose()))
            );
            let back = params::basic_credentials(Some(again.as_bytes()))
                .expect("re-encoded credentials parse")
                .expect("present");
            assert_eq!(back.user, c.user);
            assert_eq!(back.password.expose(), c.password.expose());
        }
        Ok(None) => panic!("a present header is never None"),
        Err(e) => no_control("basic error", &e.0),
    }
}

/// htpasswd files: every user line of a file that loads is found again;
/// an error names a line that exists.
pub fn htpasswd(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match regauth::config::password_table::PasswordTable::from_htpasswd(text) {
        Ok(t) => {
            let mut users = 0;
            for l in text.lines() {
                let l = l.trim_end_matches('\r');
                if l.trim().is_empty() || l.trim_start().starts_with('#') {
                    continue;
                }
                let (user, _) = l.split_once(':').expect("loaded lines have a colon");
                users += 1;
                assert!(
                    matches!(
                        t.lookup(user),
                        regauth::config::password_table::Lookup::Hash(..)
                    ),
                    "user {user:?} lost"
                );
            }
            assert_eq!(t.len(), users);
        }
        Err(regauth::config::password_table::TableError::Line { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
        }
        Err(e) => panic!("htpasswd errors name a line: {e}"),
    }
}

/// The YAML configuration loader. `@KEY@`, `@CERT@` in the input stand for
/// the p256 test key and certificate in `keys` so that inputs get past key
/// loading. Inputs naming device or kernel files are skipped: the loader
/// reads whatever files a (trusted) configuration names.
pub fn config(data: &[u8], keys: &Path) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let text = text
        .replace("@KEY@", &keys.join("p256.pem").display().to_string())
        .replace("@CERT@", &keys.join("p256.crt").display().to_string());
    if let Err(e) = regauth::config::Config::from_yaml(Path::new("fuzz.yml"), &text) {
        assert!(!e.message.is_empty());
    }
}
