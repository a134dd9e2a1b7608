//! docker_auth-compatible ACL: the YAML rule types, their compilation at load
//! (regexes, globs, IPs checked once) and first-match evaluation of a request,
//! through an index by the literal start of `name` patterns so that large
//! ACLs stay fast (see [`index`]).

mod entry;
mod glob;
mod index;
mod lint;
mod pattern;
mod re2;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::core::scope::Actions;

use crate::core::Labels;
use entry::Entry;
use index::NameIndex;

/// A docker_auth pattern without placeholders (`/regex/` in Go RE2 syntax,
/// or a Go `path.Match` glob), compiled once: the ACL's matcher, for
/// values outside the ACL (federation's `require` claims).
#[derive(Debug, Clone)]
pub struct ValuePattern {
    src: String,
    pattern: pattern::Pattern,
}

impl ValuePattern {
    /// Compiles `src`; placeholders (`${...}`) are refused, as there is no
    /// request to take their values from.
    pub fn compile(src: &str) -> Result<ValuePattern, String> {
        let pattern = pattern::Pattern::compile(src, false)?;
        if !pattern.is_static() {
            return Err(format!(
                "{src:?}: placeholders (${{...}}) are not supported here"
            ));
        }
        Ok(ValuePattern {
            src: src.to_owned(),
            pattern,
        })
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.pattern.matches_static(value)
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }
}

/// One ACL entry as written in YAML (`acl:` list or `acl_file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match")]
    pub matches: MatchSpec,
    /// Granted actions; exactly `["*"]` grants whatever was requested.
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The `match` conditions of an entry; absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// An IP address or a CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `{label: pattern}`: some value of each label must match its pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// An ACL entry that cannot be compiled. `field` is the path inside the entry
/// (`match.name`, `match.labels.group`, `match.ip`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("acl[{index}].{field}: {message}")]
    Invalid {
        index: usize,
        field: String,
        message: String,
    },
}

/// The access request evaluated against the ACL (one scope of a token request).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Authenticated account, `""` for anonymous.
    pub account: &'a str,
    pub typ: &'a str,
    pub name: &'a str,
    pub service: &'a str,
    pub ip: Option<IpAddr>,
    pub labels: &'a Labels,
    pub actions: &'a Actions,
}

/// The outcome of [`Acl::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Requested actions that are granted (empty = denied).
    pub(crate) granted: Actions,
    /// Index of the deciding entry; `None` when no entry matched.
    pub rule: Option<usize>,
}

/// A compiled ACL (`Clone + Send + Sync`).
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<RuleSpec>,
    entries: Vec<Entry>,
    index: NameIndex,
}

impl Acl {
    /// Checks and compiles the entries: every regex, glob, IP and placeholder
    /// is validated here, and patterns without placeholders are compiled once.
    pub fn compile(rules: Vec<RuleSpec>) -> Result<Acl, AclError> {
        let entries: Vec<Entry> = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                Entry::compile(rule).map_err(|(field, message)| AclError::Invalid {
                    index,
                    field,
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        let index = NameIndex::new(
            rules
                .iter()
                .zip(&entries)
                .map(|(r, e)| index::name_key(r.matches.name.as_deref(), e.name_pattern())),
        );
        Ok(Acl {
            rules,
            entries,
            index,
        })
    }

    /// docker_auth's `Authorize`: the first matching entry decides. Only the
    /// entries whose `name` pattern can match `req.name` are tested.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let ip = normalize(req.ip);
        let rule = self
            .index
            .first(req.name, |i| self.entries[i].matches(req, ip));
        self.decision(req, rule)
    }

    fn decision(&self, req: &Request<'_>, rule: Option<usize>) -> Decision {
        let granted = match rule.map(|i| &self.entries[i]) {
            None => BTreeSet::new(),
            Some(entry) if entry.allow_all => req.actions.clone(),
            Some(entry) => req.actions.intersection(&entry.actions).cloned().collect(),
        };
        Decision { granted, rule }
    }

    /// The entries as written, for `explain` (comments etc.).
    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What `check` warns about, one line each: regex patterns that are not
    /// anchored and so can match inside a path segment or a longer value
    /// (`/team/` matches `alice/teamwork`), naming the entry and field and
    /// the anchored form.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let m = &rule.matches;
            let fields = [
                ("account", &m.account),
                ("type", &m.typ),
                ("name", &m.name),
                ("service", &m.service),
            ];
            let labels = m
                .labels
                .iter()
                .map(|(l, p)| (format!("labels.{l}"), p.as_str()));
            let all = fields
                .into_iter()
                .filter_map(|(f, p)| Some((f.to_owned(), p.as_deref()?)))
                .chain(labels);
            for (field, src) in all {
                if let Some(anchored) = pattern::unanchored(src) {
                    out.push(format!(
                        "acl[{i}].match.{field}: regex {src} is not anchored, so it also matches inside a path segment or a longer value (/team/ matches \"alice/teamwork\"); if the whole value is meant, write {anchored}"
                    ));
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether Go's `path.Match(pattern, name)` holds; `None` when the
/// pattern is malformed (Go's `ErrBadPattern`).
pub(crate) fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    glob::go_match(pattern, name).ok()
}

/// A v4-mapped v6 client address is matched as v4 (as docker_auth does).
fn normalize(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| ip.to_canonical())
}
