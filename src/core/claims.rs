//! JWT claim set from grants and `now`: what registries verify (DESIGN §2).

use serde::Serialize;

/// `nbf` and `iat` are backdated by this many seconds so that a registry
/// whose clock is slightly behind (zot has zero leeway) accepts fresh tokens.
pub(crate) const BACKDATE_SECS: u64 = 10;

/// One `access` entry: the type without class, the (rebuilt) name and the
/// granted actions, sorted. Borrowed from the decision it describes: the
/// claims live only as long as it takes to sign them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access<'a> {
    #[serde(rename = "type")]
    pub typ: &'a str,
    pub name: &'a str,
    pub actions: Vec<&'a str>,
}

/// The claim set, serialized in this field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    pub(crate) access: Vec<Access<'a>>,
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
    pub access: Vec<Access<'a>>,
}

/// Rewrites grants for zot, which checks each request against one exact
/// action (`slices.Contains(actions, action)`) and knows no wildcard: a
/// granted `*` is spelled out as `pull`, `push` and `delete` (kept next to
/// `*` for distribution-style checks), and a granted catalog
/// (`registry:catalog`) also yields `{type: registry, name: "", actions:
/// [pull]}`, the form zot asks for.
pub(crate) fn zot_access(access: Vec<Access<'_>>) -> Vec<Access<'_>> {
    let mut out = Vec::with_capacity(access.len() + 1);
    for mut a in access {
        let catalog = a.typ == "registry" && a.name == "catalog" && !a.actions.is_empty();
        if a.actions.contains(&"*") {
            let mut set: std::collections::BTreeSet<&str> = a.actions.drain(..).collect();
            set.extend(["pull", "push", "delete"]);
            a.actions = set.into_iter().collect();
        }
        out.push(a);
        if catalog {
            out.push(Access {
                typ: "registry",
                name: "",
                actions: vec!["pull"],
            });
        }
    }
    out
}

pub fn build(input: ClaimInput<'_>) -> Claims<'_> {
    let start = input.now.saturating_sub(BACKDATE_SECS);
    Claims {
        iss: input.issuer,
        sub: input.account,
        aud: input.audience,
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
                    typ: "repository",
                    name: "team/app",
                    actions: vec!["pull", "push"],
                },
                Access {
                    typ: "registry",
                    name: "catalog",
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
        fn a<'a>(t: &'a str, n: &'a str, acts: &[&'a str]) -> Access<'a> {
            Access {
                typ: t,
                name: n,
                actions: acts.to_vec(),
            }
        }
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
