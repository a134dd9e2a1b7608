//! The robots file (`robots_file:`): long-lived, scoped, expiring machine
//! credentials, as plain data. The file is a YAML sequence of entries:
//!
//! ```yaml
//! - name: ci-pusher                # the Basic user name
//!   secret_sha256: 9f86d0...       # SHA-256 of the whole secret, hex
//!   expires: 2027-03-01T00:00:00Z  # RFC 3339
//!   scopes: ["repository:ci/*:push,pull"]   # the ceiling: ACL ∩ scopes
//!   labels: {team: [ci]}
//!   comment: pushes CI images
//! ```
//!
//! Only the secret's hash is stored. Errors name the file and the entry's
//! line. The file is edited by `regauth robot add|remove` through
//! [`append`] and [`remove`], which work on the text so that the other
//! entries and the comments stay as written; each edit is parsed again
//! and refused when the result is not exactly the intended entries.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::lines;
use crate::core::ceiling::Ceiling;
use crate::core::Labels;

/// One entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRobot {
    pub(crate) name: String,
    pub(crate) secret_sha256: String,
    pub(crate) expires: String,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub(crate) labels: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
}

/// One valid robot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub name: String,
    pub secret_sha256: [u8; 32],
    /// Unix seconds after which logins are refused.
    pub expires: i64,
    pub ceiling: Ceiling,
    pub labels: Labels,
    pub comment: Option<String>,
}

impl Robot {
    pub(crate) fn expired(&self, now: i64) -> bool {
        now >= self.expires
    }

    /// `expires` in RFC 3339 (UTC).
    pub(crate) fn expires_text(&self) -> String {
        rfc3339(self.expires)
    }
}

/// `secs` (Unix) in RFC 3339, UTC.
pub(crate) fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// The robots of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    pub path: PathBuf,
    pub robots: Vec<Robot>,
}

impl Robots {
    pub(crate) fn get(&self, name: &str) -> Option<&Robot> {
        self.robots.iter().find(|r| r.name == name)
    }
}

/// The entries of a robots file's text, unchecked (an empty file has none).
pub(crate) fn parse_raw(text: &str) -> Result<Vec<RawRobot>, String> {
    if text.trim().is_empty()
        || serde_yaml::from_str::<serde_yaml::Value>(text).is_ok_and(|v| v.is_null())
    {
        return Ok(Vec::new());
    }
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// Parses and checks a robots file's text; errors say `line N: ...`.
pub(crate) fn parse(text: &str) -> Result<Vec<Robot>, String> {
    let raw = parse_raw(text)?;
    let mut out: Vec<Robot> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let at = |field: &str| match lines::entry_line(text, None, i, field) {
            Some(l) => format!("line {l}: robot[{i}]"),
            None => format!("robot[{i}]"),
        };
        check_name(&r.name).map_err(|e| format!("{}.name: {e}", at("name")))?;
        if out.iter().any(|o| o.name == r.name) {
            return Err(format!(
                "{}.name: robot {:?} appears twice",
                at("name"),
                r.name
            ));
        }
        let secret_sha256 = hex32(&r.secret_sha256).ok_or_else(|| {
            format!(
                "{}.secret_sha256: robot {:?}: expected 64 hex digits (the SHA-256 of the secret; `regauth robot add` writes it)",
                at("secret_sha256"),
                r.name
            )
        })?;
        let expires = OffsetDateTime::parse(&r.expires, &Rfc3339)
            .map_err(|e| {
                format!(
                    "{}.expires: robot {:?}: {:?} is not an RFC 3339 time such as 2027-03-01T00:00:00Z ({e})",
                    at("expires"),
                    r.name,
                    r.expires
                )
            })?
            .unix_timestamp();
        if r.scopes.is_empty() {
            return Err(format!(
                "{}.scopes: robot {:?}: list at least one scope such as repository:ci/*:push,pull (a robot is granted what the ACL grants within its scopes; none grants nothing)",
                at("scopes"),
                r.name
            ));
        }
        let ceiling = Ceiling::parse(r.scopes.iter().map(String::as_str))
            .map_err(|e| format!("{}.scopes: robot {:?}: {e}", at("scopes"), r.name))?;
        out.push(Robot {
            name: r.name,
            secret_sha256,
            expires,
            ceiling,
            labels: r.labels,
            comment: r.comment,
        });
    }
    Ok(out)
}

/// Reads and checks the robots file at `path`.
pub fn load(path: &Path) -> Result<Robots, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("robots_file: {}", super::cannot_read(path, &e)))?;
    let robots = parse(&text).map_err(|e| format!("robots_file ({}): {e}", path.display()))?;
    Ok(Robots {
        path: path.to_owned(),
        robots,
    })
}

/// A robot's name is a Basic user name: not empty, no `:`, no whitespace
/// or control characters.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.contains(':') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{name:?}: a robot name holds no ':', whitespace or control characters (it is a Basic user name)"
        ));
    }
    Ok(())
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

/// `text` with `entry` appended as a new item, the rest as written.
/// Refused when the name is already there or the result does not parse to
/// the old entries plus this one.
pub(crate) fn append(text: &str, entry: &RawRobot) -> Result<String, String> {
    let before = parse_raw(text)?;
    if before.iter().any(|r| r.name == entry.name) {
        return Err(format!(
            "robot {:?} already exists; remove it first or pick another name (to rotate a secret, add a robot under a new name, move the client to it, then remove the old one)",
            entry.name
        ));
    }
    let item = serde_yaml::to_string(&[entry]).map_err(|e| e.to_string())?;
    let mut out = text.to_owned();
    // A document that holds only `[]` (or null) is replaced by the item.
    if before.is_empty() && !text.lines().any(|l| l.trim_start().starts_with("- ")) {
        out = text
            .lines()
            .filter(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#') || t == "---"
            })
            .map(|l| format!("{l}\n"))
            .collect();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&item);
    let mut want = before;
    want.push(entry.clone());
    (parse_raw(&out).ok() == Some(want))
        .then_some(out)
        .ok_or_else(|| {
            "the file is not a block-style YAML list regauth can append to; add the entry by hand"
                .to_owned()
        })
}

/// `text` without the entry named `name`: its lines go, the comment and
/// blank lines right before the next entry stay. Refused when there is no
/// such entry or the result does not parse to the other entries.
pub(crate) fn remove(text: &str, name: &str) -> Result<String, String> {
    let before = parse_raw(text)?;
    let index = before
        .iter()
        .position(|r| r.name == name)
        .ok_or_else(|| format!("no robot {name:?} in the file"))?;
    let items = lines::seq_items(text, None);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let unreadable = || {
        "the file is not a block-style YAML list regauth can edit; remove the entry by hand"
            .to_owned()
    };
    if items.len() != before.len() {
        return Err(unreadable());
    }
    let first = items[index] - 1;
    let mut end = items.get(index + 1).map_or(lines.len(), |n| n - 1);
    while end > first + 1 {
        let t = lines[end - 1].trim();
        if t.is_empty() || t.starts_with('#') {
            end -= 1;
        } else {
            break;
        }
    }
    let out: String = lines[..first]
        .iter()
        .chain(&lines[end..])
        .copied()
        .collect();
    let mut want = before;
    want.remove(index);
    (parse_raw(&out).ok() == Some(want))
        .then_some(out)
        .ok_or_else(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn entry(name: &str) -> String {
        format!("- name: {name}\n  secret_sha256: {HASH}\n  expires: 2030-01-01T00:00:00Z\n  scopes: [\"repository:ci/*:push,pull\"]\n")
    }

    #[test]
    fn parse_table() {
        let ok = entry("ci");
        let cases: Vec<(String, Result<usize, &str>)> = vec![
            (String::new(), Ok(0)),
            ("# none yet\n".into(), Ok(0)),
            ("[]\n".into(), Ok(0)),
            (ok.clone(), Ok(1)),
            (format!("# robots\n{ok}\n{}", entry("deploy")), Ok(2)),
            (
                format!("{ok}{}", entry("ci")),
                Err("line 5: robot[1].name: robot \"ci\" appears twice"),
            ),
            (ok.replace(HASH, "abc"), Err("line 2: robot[0].secret_sha256: robot \"ci\": expected 64 hex digits")),
            (ok.replace("2030-01-01T00:00:00Z", "2030-01-01"), Err("line 3: robot[0].expires: robot \"ci\": \"2030-01-01\" is not an RFC 3339 time")),
            (ok.replace("[\"repository:ci/*:push,pull\"]", "[]"), Err("line 4: robot[0].scopes: robot \"ci\": list at least one scope")),
            (ok.replace("ci/*:push,pull", "ci/[:push"), Err("line 4: robot[0].scopes: robot \"ci\": scope \"repository:ci/[:push\": malformed glob")),
            (ok.replace("name: ci", "name: \"a:b\""), Err("line 1: robot[0].name: \"a:b\": a robot name holds no ':'")),
            (ok.replace("name: ci", "name: \"\""), Err("line 1: robot[0].name: must not be empty")),
            (format!("{ok}  secret: x\n"), Err("unknown field `secret`")),
            ("name: ci\n".into(), Err("invalid type")),
        ];
        for (text, want) in cases {
            match (parse(&text), want) {
                (Ok(r), Ok(n)) => assert_eq!(r.len(), n, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w) && !e.contains('\n'), "{text}: got {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let r = &parse(&ok).unwrap()[0];
        assert_eq!(r.expires_text(), "2030-01-01T00:00:00Z");
        assert!(!r.expired(r.expires - 1) && r.expired(r.expires));
    }

    fn raw(name: &str) -> RawRobot {
        RawRobot {
            name: name.into(),
            secret_sha256: HASH.into(),
            expires: "2030-01-01T00:00:00Z".into(),
            scopes: vec!["repository:ci/*:push,pull".into()],
            labels: Labels::from([("team".to_string(), vec!["ci".to_string()])]),
            comment: Some("pushes: \"CI\" images".into()),
        }
    }

    #[test]
    fn edits_keep_the_rest() {
        let start = format!(
            "# robots of the CI\n{}\n# deploy bot, owned by ops\n{}",
            entry("ci"),
            entry("deploy")
        );
        // (text, edit, Ok(must contain) or Err(message start))
        let added = append(&start, &raw("new")).unwrap();
        assert!(added.starts_with(&start), "{added}");
        assert_eq!(parse(&added).unwrap().len(), 3);
        assert_eq!(parse_raw(&added).unwrap()[2], raw("new"));
        assert!(append(&added, &raw("ci"))
            .unwrap_err()
            .contains("already exists"));
        for empty in ["", "# nothing\n", "[]\n", "# x\n[]\n"] {
            let out = append(empty, &raw("a")).unwrap();
            assert_eq!(parse_raw(&out).unwrap(), vec![raw("a")], "{empty:?}");
            assert!(out.starts_with(empty.trim_end_matches("[]\n")), "{out}");
        }
        assert!(append("[{name: x, secret_sha256: a, expires: b}]\n", &raw("a")).is_err());

        let removed = remove(&added, "ci").unwrap();
        assert_eq!(
            removed,
            format!(
                "# robots of the CI\n\n# deploy bot, owned by ops\n{}{}",
                entry("deploy"),
                serde_yaml::to_string(&[raw("new")]).unwrap()
            )
        );
        let removed = remove(&removed, "new").unwrap();
        assert_eq!(
            removed,
            format!(
                "# robots of the CI\n\n# deploy bot, owned by ops\n{}",
                entry("deploy")
            )
        );
        assert_eq!(
            remove(&removed, "deploy").unwrap(),
            "# robots of the CI\n\n# deploy bot, owned by ops\n"
        );
        assert!(remove(&removed, "ci")
            .unwrap_err()
            .contains("no robot \"ci\""));
    }
}
