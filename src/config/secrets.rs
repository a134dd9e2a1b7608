//! Secrets kept out of the configuration file: read from a file (trailing
//! newline dropped) or an environment variable, so configs can be committed
//! without them.

use std::path::Path;

use crate::secret::Secret;

/// Reads the secret named by `<key>_file` or `<key>_env` (at most one may be
/// set). Errors name the key, never the value.
pub(crate) fn load(
    key: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Secret>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err(format!("{key}_file and {key}_env are exclusive")),
        (Some(p), None) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("{key}_file: {}", super::cannot_read(p, &e)))?;
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                return Err(format!("{key}_file: {} is empty", p.display()));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            Ok(_) => Err(format!("{key}_env: environment variable {var} is empty")),
            Err(_) => Err(format!("{key}_env: environment variable {var} is not set")),
        },
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        std::env::set_var("REGAUTH_TEST_SECRET_SET", "fromenv");
        std::env::set_var("REGAUTH_TEST_SECRET_EMPTY", "");
        let ok = |r: Result<Option<Secret>, String>| r.unwrap().map(|s| s.expose().to_owned());
        assert_eq!(ok(load("k", Some(&f), None)), Some("s3cret".into()));
        assert_eq!(
            ok(load("k", None, Some("REGAUTH_TEST_SECRET_SET"))),
            Some("fromenv".into())
        );
        assert_eq!(ok(load("k", None, None)), None);
        let errors = [
            (load("k", Some(&f), Some("X")), "exclusive"),
            (load("k", Some(&empty), None), "is empty"),
            (
                load("k", Some(&dir.path().join("nope")), None),
                "cannot read",
            ),
            (
                load("k", None, Some("REGAUTH_TEST_SECRET_UNSET_XYZ")),
                "is not set",
            ),
            (
                load("k", None, Some("REGAUTH_TEST_SECRET_EMPTY")),
                "is empty",
            ),
        ];
        for (r, want) in errors {
            let e = r.unwrap_err();
            assert!(e.contains(want) && !e.contains("s3cret"), "{e}");
        }
    }
}
