//! Warnings about an ACL that compiles but does not do what it says: the
//! mistakes `regauth check` reports without refusing the configuration
//! (docker_auth accepts them too, so a configuration that has them keeps
//! loading). Each check is a function of its own in [`CHECKS`], so a new
//! one is one more entry; every warning names the entry and the field it
//! is about, for the caller to turn into a file and line.
//!
//! The checks are sound rather than complete: a warning is only given when
//! the rule can be shown not to work, never for a pattern with
//! placeholders whose value depends on the request.

use super::pattern::{Matcher, Pattern};
use super::{Acl, RuleSpec};
use crate::core::Labels;

/// Actions registries ask for: distribution's and zot's `pull`, `push`,
/// `delete`, and `*` (`registry:catalog:*`, `skopeo delete`).
pub(crate) const KNOWN_ACTIONS: [&str; 4] = ["pull", "push", "delete", "*"];

/// Scope types registries ask for.
pub(crate) const KNOWN_TYPES: [&str; 2] = ["repository", "registry"];

/// One warning: the entry, the field inside it (`actions`, `match.type`,
/// `match` for the entry as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lint {
    pub(crate) index: usize,
    pub(crate) field: String,
    pub(crate) message: String,
}

type Check = fn(&Acl) -> Vec<Lint>;

/// Every check, in the order their warnings are listed.
pub(crate) const CHECKS: [Check; 4] = [
    unknown_actions,
    unknown_types,
    unclosed_regexes,
    shadowed_entries,
];

impl Acl {
    /// The warnings of every check in [`CHECKS`], by entry.
    pub(crate) fn lint(&self) -> Vec<Lint> {
        let mut out: Vec<Lint> = CHECKS.iter().flat_map(|c| c(self)).collect();
        out.sort_by_key(|l| l.index);
        out
    }

    /// Whether some entry could grant `account` (with `labels`) any action:
    /// an entry with actions whose `account` and `labels` conditions do not
    /// exclude it. Conditions with placeholders, and the other fields,
    /// are taken to match.
    pub(crate) fn may_grant(&self, account: &str, labels: &Labels) -> bool {
        self.entries.iter().any(|e| {
            if e.actions.is_empty() {
                return false;
            }
            let account_ok = e.fields[super::pattern::Field::Account as usize]
                .as_ref()
                .is_none_or(|p| !p.is_static() || p.matches_static(account));
            let labels_ok = e.labels.iter().all(|(label, p)| {
                !p.is_static()
                    || labels
                        .get(label)
                        .is_some_and(|vs| vs.iter().any(|v| p.matches_static(v)))
            });
            account_ok && labels_ok
        })
    }
}

fn lint(index: usize, field: &str, message: String) -> Lint {
    Lint {
        index,
        field: field.to_owned(),
        message,
    }
}

fn unknown_actions(acl: &Acl) -> Vec<Lint> {
    let mut out = Vec::new();
    for (i, r) in acl.rules.iter().enumerate() {
        for a in r
            .actions
            .iter()
            .filter(|a| !KNOWN_ACTIONS.contains(&a.as_str()))
        {
            out.push(lint(
                i,
                "actions",
                format!(
                    "unknown action {a:?}: registries ask for {}, so it never grants anything",
                    KNOWN_ACTIONS.join(", ")
                ),
            ));
        }
    }
    out
}

fn unknown_types(acl: &Acl) -> Vec<Lint> {
    let mut out = Vec::new();
    for (i, e) in acl.entries.iter().enumerate() {
        let Some(p) = e.fields[super::pattern::Field::Type as usize].as_ref() else {
            continue;
        };
        if p.is_static() && !KNOWN_TYPES.iter().any(|t| p.matches_static(t)) {
            let src = acl.rules[i].matches.typ.as_deref().unwrap_or_default();
            out.push(lint(
                i,
                "match.type",
                format!(
                    "{src:?} matches no scope type registries ask for ({}), so the entry never matches",
                    KNOWN_TYPES.join(", ")
                ),
            ));
        }
    }
    out
}

/// The patterns of an entry as written: `(field path, source)`.
fn sources(r: &RuleSpec) -> Vec<(String, &str)> {
    let m = &r.matches;
    let fields = [
        ("match.account", &m.account),
        ("match.type", &m.typ),
        ("match.name", &m.name),
        ("match.service", &m.service),
    ];
    let mut out: Vec<(String, &str)> = fields
        .iter()
        .filter_map(|(k, v)| Some(((*k).to_owned(), v.as_deref()?)))
        .collect();
    out.extend(
        m.labels
            .iter()
            .map(|(l, v)| (format!("match.labels.{l}"), v.as_str())),
    );
    out
}

fn unclosed_regexes(acl: &Acl) -> Vec<Lint> {
    let mut out = Vec::new();
    for (i, r) in acl.rules.iter().enumerate() {
        for (field, src) in sources(r) {
            if src.starts_with('/') && !super::pattern::is_regex(src) {
                out.push(lint(
                    i,
                    &field,
                    format!(
                        "{src:?} starts with / but does not end with one, so it is a glob matching that text literally; write \"{}/\" for a regex",
                        src.trim_end_matches('/')
                    ),
                ));
            }
        }
    }
    out
}

/// Whether a compiled pattern matches every value of its field: an
/// unanchored regex without assertions that matches the empty string
/// (`/.*/`, `/a*/`), or the glob `*` for fields that never hold a `/`.
fn matches_everything(p: &Pattern, field: &str) -> bool {
    match p {
        Pattern::Static {
            m: Matcher::Regex(re),
            is_regex: true,
        } => {
            let src = re.as_str();
            let asserts = ["^", "$", "\\A", "\\z", "\\b", "\\B"];
            re.is_match("") && !asserts.iter().any(|a| src.contains(a))
        }
        Pattern::Static {
            m: Matcher::Go(g), ..
        } => g == "*" && matches!(field, "match.type" | "match.service"),
        _ => false,
    }
}

/// Entry `j` can never decide when an earlier entry `i` holds whenever `j`
/// does: each condition of `i` is absent, matches everything, or is written
/// exactly as the same condition of `j`.
fn shadowed_entries(acl: &Acl) -> Vec<Lint> {
    use super::pattern::Field;
    let mut out = Vec::new();
    for j in 0..acl.rules.len() {
        let rj = &acl.rules[j];
        let covering = (0..j).find(|&i| {
            let (ri, ei) = (&acl.rules[i], &acl.entries[i]);
            let src = |r: &RuleSpec, f: Field| -> Option<String> {
                let m = &r.matches;
                [&m.account, &m.typ, &m.name, &m.service][f as usize].clone()
            };
            let fields_ok = Field::ALL
                .into_iter()
                .all(|f| match ei.fields[f as usize].as_ref() {
                    None => true,
                    Some(p) if matches_everything(p, &format!("match.{}", f.key())) => true,
                    Some(_) => src(ri, f) == src(rj, f),
                });
            let ip_ok = ri.matches.ip.is_none() || ri.matches.ip == rj.matches.ip;
            let labels_ok = ri
                .matches
                .labels
                .iter()
                .all(|(l, p)| rj.matches.labels.get(l) == Some(p));
            fields_ok && ip_ok && labels_ok
        });
        if let Some(i) = covering {
            out.push(lint(
                j,
                "match",
                format!(
                    "this entry never decides: acl[{i}] comes first and matches every request it matches (its conditions are the same or broader); move it above acl[{i}] or remove it"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(yaml: &str) -> Acl {
        Acl::compile(serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn warnings_table() {
        // (ACL, expected warnings as "index field: message prefix")
        let cases: &[(&str, &[&str])] = &[
            ("[{match: {account: a}, actions: [pull, push]}]", &[]),
            (
                "[{match: {account: a}, actions: [pul, push]}]",
                &["0 actions: unknown action \"pul\""],
            ),
            (
                "[{match: {type: repo}, actions: [pull]}]",
                &["0 match.type: \"repo\" matches no scope type"],
            ),
            ("[{match: {type: \"/^repo/\"}, actions: [pull]}]", &[]),
            ("[{match: {type: \"regis*\"}, actions: [\"*\"]}]", &[]),
            (
                "[{match: {account: \"/.+\"}, actions: [pull]}]",
                &["0 match.account: \"/.+\" starts with / but does not end with one"],
            ),
            (
                "[{match: {labels: {group: \"/adm\"}}, actions: [pull]}]",
                &["0 match.labels.group: \"/adm\" starts with /"],
            ),
            (
                "[{match: {account: a}, actions: []}, {match: {account: a, name: x}, actions: [pull]}]",
                &["1 match: this entry never decides: acl[0] comes first"],
            ),
            (
                "[{match: {account: \"/.*/\"}, actions: [pull]}, {match: {account: b}, actions: [push]}]",
                &["1 match: this entry never decides: acl[0]"],
            ),
            (
                "[{match: {}, actions: []}, {match: {account: b}, actions: [push]}]",
                &["1 match: this entry never decides: acl[0]"],
            ),
            // Narrower first, broader second: both decide sometimes.
            (
                "[{match: {account: a, name: x}, actions: [push]}, {match: {account: a}, actions: [pull]}]",
                &[],
            ),
            // An anchored regex does not match everything.
            (
                "[{match: {account: \"/^a$/\"}, actions: [pull]}, {match: {account: b}, actions: [push]}]",
                &[],
            ),
            (
                "[{match: {account: a, labels: {g: x}}, actions: [pull]}, {match: {account: a, labels: {g: y}}, actions: [push]}]",
                &[],
            ),
        ];
        for (yaml, want) in cases {
            let got: Vec<String> = acl(yaml)
                .lint()
                .iter()
                .map(|l| format!("{} {}: {}", l.index, l.field, l.message))
                .collect();
            assert_eq!(got.len(), want.len(), "{yaml}: {got:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.starts_with(w), "{yaml}: got {g:?}, want {w:?}");
            }
        }
    }

    #[test]
    fn may_grant_table() {
        let labels = Labels::from([("group".to_string(), vec!["team".to_string()])]);
        let none = Labels::new();
        let cases: &[(&str, &str, &Labels, bool)] = &[
            (
                "[{match: {account: bob}, actions: [pull]}]",
                "bob",
                &none,
                true,
            ),
            (
                "[{match: {account: bob}, actions: [pull]}]",
                "carol",
                &none,
                false,
            ),
            (
                "[{match: {account: carol}, actions: []}]",
                "carol",
                &none,
                false,
            ),
            (
                "[{match: {account: \"/.+/\"}, actions: [pull]}]",
                "",
                &none,
                false,
            ),
            (
                "[{match: {labels: {group: team}}, actions: [pull]}]",
                "x",
                &labels,
                true,
            ),
            (
                "[{match: {labels: {group: team}}, actions: [pull]}]",
                "x",
                &none,
                false,
            ),
            (
                "[{match: {name: \"${account}/*\"}, actions: [pull]}]",
                "x",
                &none,
                true,
            ),
        ];
        for (yaml, account, labels, want) in cases {
            assert_eq!(
                acl(yaml).may_grant(account, labels),
                *want,
                "{yaml} {account}"
            );
        }
    }
}
