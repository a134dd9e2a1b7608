//! docker_auth-compatible ACL: the YAML rule types, their compilation at load
//! (regexes, globs, IPs checked once) and first-match evaluation of a request.

mod glob;
mod pattern;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::core::Labels;
use pattern::{Ctx, Field, Part, Pattern};

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
    pub actions: &'a BTreeSet<String>,
}

/// The outcome of [`Acl::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Requested actions that are granted (empty = denied).
    pub granted: BTreeSet<String>,
    /// Index of the deciding entry; `None` when no entry matched.
    pub rule: Option<usize>,
}

/// A compiled ACL (`Clone + Send + Sync`).
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<RuleSpec>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Patterns indexed by [`Field`].
    fields: [Option<Pattern>; 4],
    ip: Option<IpNet>,
    labels: Vec<(String, Pattern)>,
    /// Fields whose regex captures some `${field:N}` of this entry uses.
    captured: [bool; 4],
    /// Whether some pattern has placeholders.
    dynamic: bool,
    allow_all: bool,
    actions: BTreeSet<String>,
}

impl Acl {
    /// Checks and compiles the entries: every regex, glob, IP and placeholder
    /// is validated here, and patterns without placeholders are compiled once.
    pub fn compile(rules: Vec<RuleSpec>) -> Result<Acl, AclError> {
        let entries = rules
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
        Ok(Acl { rules, entries })
    }

    /// docker_auth's `Authorize`: the first matching entry decides.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let ip = req.ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        });
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.matches(req, ip) {
                let granted = if entry.allow_all {
                    req.actions.clone()
                } else {
                    req.actions.intersection(&entry.actions).cloned().collect()
                };
                return Decision {
                    granted,
                    rule: Some(i),
                };
            }
        }
        Decision {
            granted: BTreeSet::new(),
            rule: None,
        }
    }

    /// The entries as written, for `explain` (comments etc.).
    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

type EntryError = (String, String);

impl Entry {
    fn compile(rule: &RuleSpec) -> Result<Entry, EntryError> {
        let m = &rule.matches;
        let sources = [&m.account, &m.typ, &m.name, &m.service];
        let mut fields: [Option<Pattern>; 4] = Default::default();
        for f in Field::ALL {
            if let Some(src) = sources[f as usize] {
                let p =
                    Pattern::compile(src, true).map_err(|e| (format!("match.{}", f.key()), e))?;
                fields[f as usize] = Some(p);
            }
        }
        let mut labels = Vec::with_capacity(m.labels.len());
        for (label, src) in &m.labels {
            let p =
                Pattern::compile(src, false).map_err(|e| (format!("match.labels.{label}"), e))?;
            labels.push((label.clone(), p));
        }
        let ip =
            m.ip.as_deref()
                .map(parse_ip)
                .transpose()
                .map_err(|e| ("match.ip".to_owned(), e))?;

        // `${field:N}` needs that field's pattern to be a regex (without
        // placeholders) with at least N groups.
        let mut captured = [false; 4];
        let named = fields
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((format!("match.{}", Field::ALL[i].key()), p.as_ref()?)));
        let named = named.chain(labels.iter().map(|(l, p)| (format!("match.labels.{l}"), p)));
        for (path, p) in named {
            for part in p.parts() {
                let Part::Capture(f, n) = *part else { continue };
                let (k, source) = (f.key(), fields[f as usize].as_ref());
                let groups = match (source.and_then(Pattern::capture_regex), sources[f as usize]) {
                    (Some(re), _) => re.captures_len() - 1,
                    (None, Some(src)) if pattern::is_regex(src) => {
                        let msg =
                            format!("${{{k}:{n}}}: the {k} regex must not contain placeholders");
                        return Err((path, msg));
                    }
                    _ => return Err((path, format!("${{{k}:{n}}}: match.{k} is not a /regex/"))),
                };
                if n == 0 || n > groups {
                    let msg = format!(
                        "${{{k}:{n}}}: capture group out of range (the regex has {groups})"
                    );
                    return Err((path, msg));
                }
                captured[f as usize] = true;
            }
        }
        let dynamic = fields
            .iter()
            .flatten()
            .chain(labels.iter().map(|(_, p)| p))
            .any(|p| !p.is_static());
        Ok(Entry {
            fields,
            ip,
            labels,
            captured,
            dynamic,
            allow_all: rule.actions.len() == 1 && rule.actions[0] == "*",
            actions: rule.actions.iter().cloned().collect(),
        })
    }

    /// All conditions ANDed; the cheap, precompiled ones first.
    fn matches(&self, req: &Request<'_>, ip: Option<IpAddr>) -> bool {
        if let Some(net) = &self.ip {
            match ip {
                Some(ip) if net.contains(&ip) => {}
                _ => return false,
            }
        }
        let values = [req.account, req.typ, req.name, req.service];
        let label_ok = |label: &str, matches: &dyn Fn(&str) -> bool| {
            req.labels
                .get(label)
                .is_some_and(|vs| vs.iter().any(|v| matches(v)))
        };
        for (f, p) in self.fields.iter().enumerate() {
            if let Some(p) = p.as_ref().filter(|p| p.is_static()) {
                if !p.matches_static(values[f]) {
                    return false;
                }
            }
        }
        for (label, p) in self.labels.iter().filter(|(_, p)| p.is_static()) {
            if !label_ok(label, &|v| p.matches_static(v)) {
                return false;
            }
        }
        if !self.dynamic {
            return true;
        }
        let mut captures: [Option<regex::Captures<'_>>; 4] = Default::default();
        for f in Field::ALL
            .into_iter()
            .filter(|f| self.captured[*f as usize])
        {
            if let Some(re) = self.fields[f as usize]
                .as_ref()
                .and_then(Pattern::capture_regex)
            {
                captures[f as usize] = re.captures(values[f as usize]);
            }
        }
        let ctx = Ctx {
            values,
            captures,
            labels: req.labels,
        };
        let fields_ok = self.fields.iter().enumerate().all(|(f, p)| match p {
            Some(p) if !p.is_static() => p.matches(values[f], &ctx),
            _ => true,
        });
        fields_ok
            && self
                .labels
                .iter()
                .filter(|(_, p)| !p.is_static())
                .all(|(label, p)| label_ok(label, &|v| p.matches(v, &ctx)))
    }
}

/// docker_auth's `parseIPPattern`: an address (v4-mapped v6 taken as v4) or
/// a CIDR (a v4-mapped network with prefix >= 96 taken as the v4 network).
fn parse_ip(s: &str) -> Result<IpNet, String> {
    let bad = || format!("invalid IP or CIDR {s:?}");
    if let Ok(ip) = s.parse::<IpAddr>() {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        return Ok(IpNet::from(ip));
    }
    match s.parse::<IpNet>().map_err(|_| bad())? {
        IpNet::V6(net) if net.prefix_len() >= 96 => match net.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, net.prefix_len() - 96)
                .map(IpNet::V4)
                .map_err(|_| bad()),
            None => Ok(IpNet::V6(net)),
        },
        net => Ok(net),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl(yaml: &str) -> Acl {
        let rules: Vec<RuleSpec> =
            serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        Acl::compile(rules).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    /// Evaluates a request written as `key=value` words over these defaults:
    /// account=alice type=repository name=library/debian
    /// service=registry.example.com actions=pull,push, no ip, no labels
    /// (`labels=group:a|b;team:x`). Returns `granted@rule` or `-` (no match).
    fn eval(acl: &Acl, request: &str) -> String {
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for word in request.split_whitespace() {
            let (k, v) = word.split_once('=').expect("key=value");
            f.insert(k, v);
        }
        let get = |k, default| f.get(k).copied().unwrap_or(default);
        let labels: Labels = get("labels", "")
            .split(';')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, vs) = l.split_once(':').unwrap_or((l, ""));
                (
                    k.to_owned(),
                    vs.split('|')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            })
            .collect();
        let actions = get("actions", "pull,push")
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let req = Request {
            account: get("account", "alice"),
            typ: get("type", "repository"),
            name: get("name", "library/debian"),
            service: get("service", "registry.example.com"),
            ip: f.get("ip").map(|ip| ip.parse().expect("ip")),
            labels: &labels,
            actions: &actions,
        };
        let d = acl.evaluate(&req);
        match d.rule {
            None => {
                assert!(d.granted.is_empty());
                "-".to_owned()
            }
            Some(i) => format!(
                "{}@{i}",
                d.granted.into_iter().collect::<Vec<_>>().join(",")
            ),
        }
    }

    /// (what, acl, [(request, expected)])
    #[allow(clippy::type_complexity)]
    const CASES: &[(&str, &str, &[(&str, &str)])] = &[
        (
            "first match decides",
            r#"[{match: {account: alice}, actions: [pull]}, {match: {}, actions: ["*"]}]"#,
            &[("", "pull@0"), ("account=bob", "pull,push@1")],
        ),
        (
            "a later, more permissive rule never applies",
            r#"[{match: {account: alice}, actions: []}, {match: {account: alice}, actions: ["*"]}]"#,
            &[("", "@0"), ("actions=pull", "@0")],
        ),
        (
            "no match denies",
            r#"[{match: {account: bob}, actions: ["*"]}]"#,
            &[("", "-"), ("account=bob", "pull,push@0")],
        ),
        ("empty acl denies", "[]", &[("", "-")]),
        (
            "empty match matches all",
            r#"[{match: {}, actions: [pull]}]"#,
            &[
                (
                    "account= type=registry name=catalog service=x actions=*",
                    "@0",
                ),
                ("account=", "pull@0"),
            ],
        ),
        (
            "[*] grants all requested",
            r#"[{match: {}, actions: ["*"]}]"#,
            &[
                ("actions=pull,push,delete", "delete,pull,push@0"),
                ("type=registry name=catalog actions=*", "*@0"),
                ("name=x actions=*", "*@0"),
                ("actions=", "@0"),
            ],
        ),
        (
            "listed actions never grant a requested *",
            r#"[{match: {}, actions: [pull, push, delete]}]"#,
            &[
                ("type=registry name=catalog actions=*", "@0"),
                ("name=x actions=*", "@0"),
                ("name=x actions=*,pull", "pull@0"),
            ],
        ),
        (
            "* listed with others is literal",
            r#"[{match: {}, actions: ["*", pull]}]"#,
            &[("actions=*,pull,push", "*,pull@0"), ("actions=push", "@0")],
        ),
        (
            "intersection",
            r#"[{match: {}, actions: [pull, delete]}]"#,
            &[
                ("", "pull@0"),
                ("actions=push", "@0"),
                ("actions=delete,pull,push", "delete,pull@0"),
            ],
        ),
        (
            "glob * does not cross /",
            r#"[{match: {name: "library/*"}, actions: [pull]}]"#,
            &[
                ("", "pull@0"),
                ("name=library/a/b", "-"),
                ("name=library/", "pull@0"),
                ("name=xlibrary/a", "-"),
            ],
        ),
        (
            "glob ?",
            r#"[{match: {name: "librar?/debia?"}, actions: [pull]}]"#,
            &[
                ("", "pull@0"),
                ("name=librarx/debiax", "pull@0"),
                ("name=library/debian2", "-"),
            ],
        ),
        (
            "glob ? does not match /",
            r#"[{match: {name: "library?debian"}, actions: [pull]}]"#,
            &[("", "-"), ("name=library-debian", "pull@0")],
        ),
        (
            "glob classes",
            r#"[{match: {name: "[a-c]*"}, actions: [pull]}, {match: {name: "[^a-c]*"}, actions: [push]}]"#,
            &[
                ("name=busybox", "pull@0"),
                ("name=debian", "push@1"),
                ("name=a/b", "-"),
            ],
        ),
        (
            "glob class may match /",
            r#"[{match: {name: "library[/]debian"}, actions: [pull]}]"#,
            &[("", "pull@0")],
        ),
        (
            "glob escape",
            r#"[{match: {account: "a\\*"}, actions: [pull]}]"#,
            &[("account=a*", "pull@0"), ("account=ab", "-")],
        ),
        (
            "glob keeps Go's non-backtracking matcher",
            r#"[{match: {name: "*[a/]*"}, actions: [pull]}]"#,
            &[
                ("name=a/", "-"),
                ("name=xa", "pull@0"),
                ("name=/x", "pull@0"),
            ],
        ),
        (
            "glob is whole-string",
            r#"[{match: {name: library}, actions: [pull]}]"#,
            &[("", "-"), ("name=library", "pull@0")],
        ),
        (
            "regex is unanchored",
            r#"[{match: {account: /foo/}, actions: [pull]}]"#,
            &[("account=xfooy", "pull@0"), ("account=fo", "-")],
        ),
        (
            "regex anchors",
            r#"[{match: {account: /^foo$/}, actions: [pull]}]"#,
            &[("account=xfooy", "-"), ("account=foo", "pull@0")],
        ),
        (
            "regex classes are ASCII as in Go",
            r#"[{match: {account: '/^\w+$/'}, actions: [pull]}, {match: {account: '/^\d+$/'}, actions: [push]}]"#,
            &[
                ("account=jose_1", "pull@0"),
                ("account=josé", "-"),
                ("account=١٢", "-"),
                ("account=12x", "pull@0"),
            ],
        ),
        (
            "regex { that is not a repeat is literal",
            r#"[{match: {account: "/^a{x}$/"}, actions: [pull]}]"#,
            &[("account=a{x}", "pull@0")],
        ),
        (
            "${account}",
            r#"[{match: {name: "${account}/*"}, actions: ["*"]}]"#,
            &[
                ("name=alice/app", "pull,push@0"),
                ("name=bob/app", "-"),
                ("name=alice/a/b", "-"),
            ],
        ),
        (
            "${account} is escaped in regexes",
            r#"[{match: {name: "/^${account}$/"}, actions: [pull]}]"#,
            &[
                ("account=.* name=xyz", "-"),
                ("account=.* name=.*", "pull@0"),
                ("account=a+ name=aa", "-"),
            ],
        ),
        (
            "${account} is literal in globs",
            r#"[{match: {name: "${account}/*"}, actions: [pull]}]"#,
            &[
                ("account=* name=x/app", "-"),
                ("account=[ab] name=a/app", "-"),
                ("account=[ab] name=[ab]/app", "pull@0"),
            ],
        ),
        (
            "${name}",
            r#"[{match: {name: "/.*/", account: "${name}"}, actions: [pull]}]"#,
            &[("name=alice", "pull@0"), ("name=bob", "-")],
        ),
        (
            "${service}",
            r#"[{match: {name: "${service}/*"}, actions: [pull]}]"#,
            &[
                ("service=docker.io name=docker.io/debian", "pull@0"),
                ("service=docker.io name=dockerxio/debian", "-"),
            ],
        ),
        (
            "${service} in a regex",
            r#"[{match: {name: '/^${service}\//'}, actions: [pull]}]"#,
            &[
                ("service=docker.io name=docker.io/a/b", "pull@0"),
                ("service=docker.io name=dockerxio/a", "-"),
            ],
        ),
        (
            "${type}",
            r#"[{match: {account: "${type}-bot"}, actions: [pull]}]"#,
            &[
                ("account=repository-bot", "pull@0"),
                ("account=registry-bot", "-"),
            ],
        ),
        (
            "${labels:X} tries each value",
            r#"[{match: {name: "${labels:group}/*"}, actions: [pull]}]"#,
            &[
                ("labels=group:dev|ops name=ops/app", "pull@0"),
                ("labels=group:dev|ops name=dev/app", "pull@0"),
                ("labels=group:dev|ops name=qa/app", "-"),
                ("labels=team:ops name=ops/app", "-"),
                ("labels=group: name=ops/app", "-"),
                ("name=${labels:group}/app", "-"),
            ],
        ),
        (
            "${labels:X} values are raw globs",
            r#"[{match: {name: "${labels:repos}"}, actions: [pull]}]"#,
            &[
                ("labels=repos:team-*|other name=team-a", "pull@0"),
                ("labels=repos:team-*|other name=team-a/b", "-"),
                ("labels=repos:team-*|other name=other", "pull@0"),
            ],
        ),
        (
            "${labels:X} value can make the pattern a regex",
            r#"[{match: {name: "${labels:repos}"}, actions: [pull]}]"#,
            &[
                ("labels=repos:/^team-/ name=team-b/x", "pull@0"),
                ("labels=repos:/^team-/ name=x/team-b", "-"),
            ],
        ),
        (
            "${labels:X} cartesian product",
            r#"[{match: {name: "${labels:org}/${labels:proj}"}, actions: [pull]}]"#,
            &[
                ("labels=org:a|b;proj:x|y name=b/x", "pull@0"),
                ("labels=org:a|b;proj:x|y name=a/y", "pull@0"),
                ("labels=org:a|b;proj:x|y name=b/z", "-"),
                ("labels=org:a|b name=b/x", "-"),
            ],
        ),
        (
            "${labels:X} repeated gets one value",
            r#"[{match: {name: "${labels:g}/${labels:g}"}, actions: [pull]}]"#,
            &[
                ("labels=g:a|b name=a/a", "pull@0"),
                ("labels=g:a|b name=a/b", "-"),
            ],
        ),
        (
            "${labels:X} with escaped vars",
            r#"[{match: {account: "${labels:team}-${service}"}, actions: [pull]}]"#,
            &[
                ("labels=team:x|y account=y-reg.io service=reg.io", "pull@0"),
                ("labels=team:x account=x-regxio service=reg.io", "-"),
            ],
        ),
        (
            "${account:1} capture group",
            r#"[{match: {account: '/^(.+)@example\.com$/', name: "${account:1}/*"}, actions: [pull]}]"#,
            &[
                ("account=alice@example.com name=alice/app", "pull@0"),
                ("account=alice@example.com name=bob/app", "-"),
                ("account=alice@other.com name=alice/app", "-"),
            ],
        ),
        (
            "${Account:1} title case as in Go",
            r#"[{match: {account: "/^(.+)-bot$/", name: "${Account:1}/*"}, actions: [pull]}]"#,
            &[("account=ci-bot name=ci/app", "pull@0")],
        ),
        (
            "capture group is raw",
            r#"[{match: {account: "/^(.+)-bot$/", name: "${account:1}"}, actions: [pull]}]"#,
            &[
                ("account=*-bot name=anything", "pull@0"),
                ("account=*-bot name=a/b", "-"),
            ],
        ),
        (
            "non-participating group is empty",
            r#"[{match: {account: "/^(x)?a/", name: "${account:1}lib*"}, actions: [pull]}]"#,
            &[
                ("account=abc name=library", "pull@0"),
                ("account=xabc name=library", "-"),
                ("account=xabc name=xlibrary", "pull@0"),
            ],
        ),
        (
            "${name:1} in another field",
            r#"[{match: {name: '/^([^\/]+)\//', account: "${name:1}"}, actions: [pull]}]"#,
            &[
                ("name=alice/app account=alice", "pull@0"),
                ("name=bob/app account=alice", "-"),
            ],
        ),
        (
            "ip exact",
            r#"[{match: {ip: 10.0.0.1}, actions: [pull]}]"#,
            &[
                ("ip=10.0.0.1", "pull@0"),
                ("ip=10.0.0.2", "-"),
                ("", "-"),
                ("ip=::ffff:10.0.0.1", "pull@0"),
                ("ip=::1", "-"),
            ],
        ),
        (
            "ip cidr",
            r#"[{match: {ip: 10.0.0.0/8}, actions: [pull]}]"#,
            &[
                ("ip=10.1.2.3", "pull@0"),
                ("ip=11.0.0.1", "-"),
                ("ip=::ffff:10.9.9.9", "pull@0"),
                ("", "-"),
            ],
        ),
        (
            "ip cidr with host bits",
            r#"[{match: {ip: 10.0.0.1/8}, actions: [pull]}]"#,
            &[("ip=10.9.9.9", "pull@0")],
        ),
        (
            "ip v6",
            r#"[{match: {ip: "2001:db8::/32"}, actions: [pull]}, {match: {ip: "::1"}, actions: [push]}]"#,
            &[
                ("ip=2001:db8::1", "pull@0"),
                ("ip=2001:db9::1", "-"),
                ("ip=10.0.0.1", "-"),
                ("ip=::1", "push@1"),
            ],
        ),
        (
            "ip v4-mapped pattern",
            r#"[{match: {ip: "::ffff:10.0.0.1"}, actions: [pull]}, {match: {ip: "::ffff:10.0.0.0/104"}, actions: [push]}]"#,
            &[
                ("ip=10.0.0.1", "pull@0"),
                ("ip=10.3.3.3", "push@1"),
                ("ip=11.0.0.1", "-"),
            ],
        ),
        (
            "labels",
            r#"[{match: {labels: {group: admins}}, actions: ["*"]}]"#,
            &[
                ("labels=group:dev|admins", "pull,push@0"),
                ("labels=group:dev", "-"),
                ("labels=team:admins", "-"),
                ("", "-"),
            ],
        ),
        (
            "labels patterns and AND",
            r#"[{match: {labels: {group: "/^adm/", site: "eu-*"}}, actions: [pull]}]"#,
            &[
                ("labels=group:dev|admins;site:eu-west", "pull@0"),
                ("labels=group:dev|admins;site:us-east", "-"),
                ("labels=group:admins", "-"),
            ],
        ),
        (
            "labels with ${account}",
            r#"[{match: {labels: {owner: "${account}"}}, actions: [pull]}]"#,
            &[
                ("labels=owner:bob|alice", "pull@0"),
                ("labels=owner:bob", "-"),
                ("account=* labels=owner:bob", "-"),
            ],
        ),
        (
            "labels with capture",
            r#"[{match: {account: "/^(.+)@/", labels: {owner: "${account:1}"}}, actions: [pull]}]"#,
            &[
                ("account=al@x labels=owner:al", "pull@0"),
                ("account=al@x labels=owner:bo", "-"),
            ],
        ),
        (
            "service",
            r#"[{match: {service: registry.example.com}, actions: [pull]}]"#,
            &[("", "pull@0"), ("service=docker.io", "-")],
        ),
        (
            "fields are ANDed",
            r#"[{match: {account: alice, type: repository, name: "library/*", service: "*.example.com"}, actions: [pull]}]"#,
            &[
                ("", "pull@0"),
                ("account=bob", "-"),
                ("type=registry", "-"),
                ("name=other/x", "-"),
                ("service=docker.io", "-"),
            ],
        ),
        (
            "docker_auth example",
            r#"[
            {match: {account: admin}, actions: ["*"], comment: "Admin has full access to everything."},
            {match: {account: "/.+/", name: "${account}/*"}, actions: ["*"]},
            {match: {account: "/.+/"}, actions: [pull]},
            {match: {account: ""}, actions: []}]"#,
            &[
                ("account=admin type=registry name=catalog actions=*", "*@0"),
                (
                    "name=alice/x actions=pull,push,delete",
                    "delete,pull,push@1",
                ),
                ("account=bob name=alice/x", "pull@2"),
                ("account= name=alice/x", "@3"),
            ],
        ),
    ];

    #[test]
    fn evaluate_table() {
        for (what, yaml, requests) in CASES {
            let acl = acl(yaml);
            for (request, want) in *requests {
                assert_eq!(
                    &eval(&acl, request),
                    want,
                    "{what}: {yaml} with {request:?}"
                );
            }
        }
    }

    /// (acl, error)
    const COMPILE_ERRORS: &[(&str, &str)] = &[
        (r#"[{match: {}, actions: []}, {match: {}, actions: []}, {match: {}, actions: []}, {match: {name: "/a(/"}, actions: []}]"#,
            "acl[3].match.name: invalid regex /a(/: unclosed group"),
        (r#"[{match: {account: "/[z-a]/"}, actions: []}]"#,
            "acl[0].match.account: invalid regex /[z-a]/: invalid character class range, the start must be <= the end"),
        (r#"[{match: {name: "[a"}, actions: []}]"#, r#"acl[0].match.name: invalid glob "[a": syntax error in pattern"#),
        (r#"[{match: {name: "a\\"}, actions: []}]"#, r#"acl[0].match.name: invalid glob "a\\": syntax error in pattern"#),
        (r#"[{match: {service: "[]"}, actions: []}]"#, r#"acl[0].match.service: invalid glob "[]": syntax error in pattern"#),
        (r#"[{match: {ip: 10.0.0.0/33}, actions: []}]"#, r#"acl[0].match.ip: invalid IP or CIDR "10.0.0.0/33""#),
        (r#"[{match: {ip: 10.0.0}, actions: []}]"#, r#"acl[0].match.ip: invalid IP or CIDR "10.0.0""#),
        (r#"[{match: {ip: localhost}, actions: []}]"#, r#"acl[0].match.ip: invalid IP or CIDR "localhost""#),
        (r#"[{match: {}, actions: []}, {match: {}, actions: []}, {match: {name: "${acount}/*"}, actions: []}]"#,
            "acl[2].match.name: unknown placeholder ${acount}"),
        (r#"[{match: {account: "${labels:}"}, actions: []}]"#, "acl[0].match.account: unknown placeholder ${labels:}"),
        (r#"[{match: {account: "${team}"}, actions: []}]"#, "acl[0].match.account: unknown placeholder ${team}"),
        (r#"[{match: {account: "${ip:1}"}, actions: []}]"#, "acl[0].match.account: unknown placeholder ${ip:1}"),
        (r#"[{match: {labels: {g: "/[/"}}, actions: []}]"#, "acl[0].match.labels.g: invalid regex /[/: unclosed character class"),
        (r#"[{match: {labels: {g: "${acount}"}}, actions: []}]"#, "acl[0].match.labels.g: unknown placeholder ${acount}"),
        (r#"[{match: {labels: {g: "${labels:g}"}}, actions: []}]"#,
            "acl[0].match.labels.g: ${labels:g} is not supported in labels patterns"),
        (r#"[{match: {name: "/${account}(/"}, actions: []}]"#,
            r#"acl[0].match.name: invalid regex /${account}(/: unclosed group (with "x" for placeholders)"#),
        (r#"[{match: {account: "/^(.+)$/", name: "${account:2}"}, actions: []}]"#,
            "acl[0].match.name: ${account:2}: capture group out of range (the regex has 1)"),
        (r#"[{match: {account: "/^(.+)$/", name: "${account:0}"}, actions: []}]"#,
            "acl[0].match.name: ${account:0}: capture group out of range (the regex has 1)"),
        (r#"[{match: {account: "/^(.+)$/", name: "${account:99999999999999999999999}"}, actions: []}]"#,
            "acl[0].match.name: ${account:18446744073709551615}: capture group out of range (the regex has 1)"),
        (r#"[{match: {account: "alice", name: "${account:1}"}, actions: []}]"#,
            "acl[0].match.name: ${account:1}: match.account is not a /regex/"),
        (r#"[{match: {name: "${service:1}"}, actions: []}]"#, "acl[0].match.name: ${service:1}: match.service is not a /regex/"),
        (r#"[{match: {account: "/^(${service})$/", name: "${account:1}"}, actions: []}]"#,
            "acl[0].match.name: ${account:1}: the account regex must not contain placeholders"),
        (r#"[{match: {name: "/^(.+)$/", labels: {g: "${name:2}"}}, actions: []}]"#,
            "acl[0].match.labels.g: ${name:2}: capture group out of range (the regex has 1)"),
    ];

    #[test]
    fn compile_errors_name_entry_and_field() {
        for (yaml, want) in COMPILE_ERRORS {
            let rules: Vec<RuleSpec> =
                serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            match Acl::compile(rules) {
                Ok(_) => panic!("{yaml} compiled"),
                Err(e) => assert_eq!(&e.to_string(), want, "{yaml}"),
            }
        }
    }

    #[test]
    fn serde_spec() {
        let yaml = r#"
- match: {account: "admin", labels: {group: admins}}
  actions: ["*"]
  comment: "Admin has full access to everything."
- match: {}
  actions: []
"#;
        let rules: Vec<RuleSpec> = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(rules[0].matches.account.as_deref(), Some("admin"));
        assert_eq!(
            rules[0].matches.labels.get("group").map(String::as_str),
            Some("admins")
        );
        assert_eq!(
            rules[0].comment.as_deref(),
            Some("Admin has full access to everything.")
        );
        assert_eq!(rules[1].matches, MatchSpec::default());
        let back: Vec<RuleSpec> =
            serde_yaml::from_str(&serde_yaml::to_string(&rules).unwrap()).unwrap();
        assert_eq!(back, rules);
        let acl = Acl::compile(rules).unwrap();
        assert_eq!((acl.len(), acl.is_empty()), (2, false));
        assert_eq!(
            acl.rules()[0].comment.as_deref(),
            Some("Admin has full access to everything.")
        );
        assert!(Acl::compile(vec![]).unwrap().is_empty());

        for bad in [
            "[{match: {acount: x}, actions: []}]",
            "[{match: {}, actions: [], commment: x}]",
            "[{match: {}}]",
            "[{actions: []}]",
            "[{match: {email: x}, actions: []}]",
        ] {
            assert!(serde_yaml::from_str::<Vec<RuleSpec>>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn example_acl_compiles() {
        let acl = acl(include_str!("../../acl.example.yaml"));
        assert!(acl.len() >= 5);
        assert!(acl.rules().iter().all(|r| r.comment.is_some()));
    }

    #[test]
    fn patterns_without_placeholders_are_precompiled() {
        let acl = acl(
            r#"[{match: {account: "/^a/", name: "lib/*", labels: {g: x}}, actions: []}, {match: {name: "${account}"}, actions: []}]"#,
        );
        assert!(!acl.entries[0].dynamic);
        assert!(acl.entries[0]
            .fields
            .iter()
            .flatten()
            .all(Pattern::is_static));
        assert!(acl.entries[1].dynamic);
    }

    #[test]
    fn acl_is_send_sync() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<Acl>();
    }

    fn fuzz_acl() -> Acl {
        acl(r#"[
            {match: {ip: 10.0.0.0/8, labels: {g: "/a/"}}, actions: [pull]},
            {match: {account: '/^(\w+)@(.*)$/', name: "${account:1}/${account:2}*", service: "${labels:svc}"}, actions: ["*"]},
            {match: {name: "${labels:repos}", type: "${labels:t}"}, actions: [push]},
            {match: {name: "/^${account}|${service}$/", labels: {g: "${name}"}}, actions: [delete]},
            {match: {account: "[^a-c]?*", name: "${type}/[a-\\]]*"}, actions: [pull]},
            {match: {service: "/(?i)^${type}$/"}, actions: [pull]},
            {match: {account: ""}, actions: []}]"#)
    }

    proptest! {
        #[test]
        fn evaluate_never_panics(
            account in any::<String>(),
            typ in "\\PC{0,8}",
            name in "[a-z/*?\\[\\]\\\\^$(){}.|+-]{0,20}",
            service in any::<String>(),
            ip in prop::option::of(any::<IpAddr>()),
            labels in prop::collection::btree_map("g|svc|repos|t|x", prop::collection::vec("[a-z/*?\\[\\]\\\\^$(){}.|+-]{0,8}", 0..3), 0..4),
            actions in prop::collection::btree_set("pull|push|delete|\\*|[a-z]{1,4}", 0..4),
        ) {
            let req = Request { account: &account, typ: &typ, name: &name, service: &service, ip, labels: &labels, actions: &actions };
            let d = fuzz_acl().evaluate(&req);
            prop_assert!(d.granted.is_subset(&actions));
            prop_assert!(d.rule.is_some() || d.granted.is_empty());
        }
    }
}
