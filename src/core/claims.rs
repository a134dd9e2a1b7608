//! JWT claim set from grants and `now`: what registries verify (DESIGN §2).

use serde::{Deserialize, Serialize};

/// `nbf` and `iat` are backdated by this many seconds so that a registry
/// whose clock is slightly behind (zot has zero leeway) accepts fresh tokens.
pub const BACKDATE_SECS: u64 = 10;

/// One `access` entry: the type without class, the (rebuilt) name and the
/// granted actions, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub typ: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// The claim set, serialized in this field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<Access>,
}

/// Inputs that vary per request; `now` (Unix seconds) and `jti` come from
/// the caller so that the result is deterministic.
pub struct ClaimInput<'a> {
    pub issuer: &'a str,
    pub account: &'a str,
    pub audience: &'a str,
    pub ttl_secs: u64,
    pub now: u64,
    pub jti: String,
    pub access: Vec<Access>,
}

/// Rewrites grants for zot, which checks each request against one exact
/// action (`slices.Contains(actions, action)`) and knows no wildcard: a
/// granted `*` is spelled out as `pull`, `push` and `delete` (kept next to
/// `*` for distribution-style checks), and a granted catalog
/// (`registry:catalog`) also yields `{type: registry, name: "", actions:
/// [pull]}`, the form zot asks for.
pub fn zot_access(access: Vec<Access>) -> Vec<Access> {
    let mut out = Vec::with_capacity(access.len() + 1);
    for mut a in access {
        let catalog = a.typ == "registry" && a.name == "catalog" && !a.actions.is_empty();
        if a.actions.iter().any(|x| x == "*") {
            let mut set: std::collections::BTreeSet<String> = a.actions.drain(..).collect();
            set.extend(["pull", "push", "delete"].map(String::from));
            a.actions = set.into_iter().collect();
        }
        out.push(a);
        if catalog {
            out.push(Access {
                typ: "registry".into(),
                name: String::new(),
                actions: vec!["pull".into()],
            });
        }
    }
    out
}

pub fn build(input: ClaimInput<'_>) -> Claims {
    let start = input.now.saturating_sub(BACKDATE_SECS);
    Claims {
        iss: input.issuer.to_owned(),
        sub: input.account.to_owned(),
        aud: input.audience.to_owned(),
        exp: input.now + input.ttl_secs,
        nbf: start,
        iat: start,
        jti: input.jti,
        access: input.access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_at_a_fixed_time_match_the_golden_json() {
        let claims = build(ClaimInput {
            issuer: "regauth",
            account: "alice",
            audience: "registry.example.com",
            ttl_secs: 300,
            now: 1_700_000_000,
            jti: "0123456789abcdef0123456789abcdef".into(),
            access: vec![
                Access {
                    typ: "repository".into(),
                    name: "team/app".into(),
                    actions: vec!["pull".into(), "push".into()],
                },
                Access {
                    typ: "registry".into(),
                    name: "catalog".into(),
                    actions: vec![],
                },
            ],
        });
        let json = serde_json::to_string_pretty(&claims).unwrap();
        let golden = include_str!("../../tests/golden/claims_fixed_time.json");
        assert_eq!(json.trim(), golden.trim());
    }

    #[test]
    fn zot_access_table() {
        let a = |t: &str, n: &str, acts: &[&str]| Access {
            typ: t.into(),
            name: n.into(),
            actions: acts.iter().map(|s| s.to_string()).collect(),
        };
        let cases = vec![
            (
                vec![a("repository", "x", &["pull"])],
                vec![a("repository", "x", &["pull"])],
            ),
            (
                vec![a("repository", "x", &["*"])],
                vec![a("repository", "x", &["*", "delete", "pull", "push"])],
            ),
            (
                vec![a("registry", "catalog", &["*"])],
                vec![
                    a("registry", "catalog", &["*", "delete", "pull", "push"]),
                    a("registry", "", &["pull"]),
                ],
            ),
            // A denied catalog stays denied: no extra entry.
            (
                vec![a("registry", "catalog", &[])],
                vec![a("registry", "catalog", &[])],
            ),
            (
                vec![a("repository", "y", &[])],
                vec![a("repository", "y", &[])],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(zot_access(input.clone()), want, "{input:?}");
        }
    }

    #[test]
    fn anonymous_login_has_empty_subject_and_access() {
        let c = build(ClaimInput {
            issuer: "i",
            account: "",
            audience: "a",
            ttl_secs: 60,
            now: 5,
            jti: "j".into(),
            access: vec![],
        });
        assert_eq!(c.sub, "");
        assert_eq!(c.nbf, 0, "backdating saturates at zero");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["access"], serde_json::json!([]));
        assert!(v["aud"].is_string(), "aud must be a JSON string");
    }
}
