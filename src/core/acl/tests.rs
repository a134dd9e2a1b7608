//! Tests of ACL compilation and evaluation, and of the name index against
//! the linear scan.

use super::index::{name_key, NameKey};
use super::pattern::Pattern;
use super::*;
use crate::core::scope::{action, Actions};
use proptest::prelude::*;

impl Acl {
    /// The same decision as [`Acl::evaluate`] by testing every entry in
    /// order, without the index: the reference the index is checked against.
    fn evaluate_linear(&self, req: &Request<'_>) -> Decision {
        let ip = normalize(req.ip);
        let rule = (0..self.entries.len()).find(|&i| self.entries[i].matches(req, ip));
        self.decision(req, rule)
    }
}

fn acl(yaml: &str) -> Acl {
    let rules: Vec<RuleSpec> = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
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
        .map(action)
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
    let acl = acl(include_str!("../../../acl.example.yaml"));
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
        let actions: Actions = actions.iter().map(|a| action(a)).collect();
        let req = Request { account: &account, typ: &typ, name: &name, service: &service, ip, labels: &labels, actions: &actions };
        let acl = fuzz_acl();
        let d = acl.evaluate(&req);
        prop_assert_eq!(&d, &acl.evaluate_linear(&req));
        prop_assert!(d.granted.is_subset(&actions));
        prop_assert!(d.rule.is_some() || d.granted.is_empty());
    }
}

/// (name pattern, key): `None` = indexed under every name.
const NAME_KEYS: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("team1/*"), Some("team1")),
    (Some("team1/app"), Some("team1/app")),
    (Some("team1"), Some("team1")),
    (Some(""), Some("")),
    (Some("docker.io/library/deb*"), Some("docker.io/library")),
    (Some("docker.io/lib*/x"), Some("docker.io")),
    (Some("a//b*"), Some("a/")),
    (Some("team1*"), None),
    (Some("team1*/x"), None),
    (Some("*/x"), None),
    (Some("?eam/x"), None),
    (Some("[t]eam/x"), None),
    (Some(r"t\eam/x"), None),
    (Some(r"team/\x"), Some("team")),
    (Some("team/[/]x"), Some("team")),
    (Some("/^team1//"), None),
    (Some("/team1/x"), None),
    (Some("/${account}/"), None),
    (Some("${account}/*"), None),
    (Some("team/${account}/*"), Some("team")),
    (Some("team/${account}"), Some("team")),
    (Some("team${account}/x"), None),
    (Some("team/*/${labels:g}"), Some("team")),
    (Some("a${b/c"), Some("a${b/c")),
    (Some("a${b/c*"), Some("a${b")),
];

#[test]
fn name_keys() {
    for (src, want) in NAME_KEYS {
        let pattern = src.map(|s| Pattern::compile(s, true).unwrap());
        let want = match want {
            None => NameKey::Any,
            Some(k) => NameKey::Prefix(k.to_string()),
        };
        assert_eq!(name_key(*src, pattern.as_ref()), want, "{src:?}");
    }
}

/// `n` rules `{account: userI, name: teamI/*}` around a few that apply to
/// every name, as a large organisation's ACL looks.
fn large_acl(n: usize) -> Acl {
    let mut rules = vec![RuleSpec {
        matches: MatchSpec {
            account: Some("admin".into()),
            ..MatchSpec::default()
        },
        actions: vec!["*".into()],
        comment: None,
    }];
    for i in 0..n {
        rules.push(RuleSpec {
            matches: MatchSpec {
                account: Some(format!("user{i}")),
                name: Some(format!("team{i}/*")),
                ..MatchSpec::default()
            },
            actions: vec!["pull".into(), "push".into()],
            comment: None,
        });
    }
    rules.push(RuleSpec {
        matches: MatchSpec {
            account: Some("/.+/".into()),
            name: Some("${account}/*".into()),
            ..MatchSpec::default()
        },
        actions: vec!["*".into()],
        comment: None,
    });
    rules.push(RuleSpec {
        matches: MatchSpec {
            name: Some("public/*".into()),
            ..MatchSpec::default()
        },
        actions: vec!["pull".into()],
        comment: None,
    });
    Acl::compile(rules).unwrap()
}

#[test]
fn large_acl_tests_only_candidates() {
    let acl = large_acl(2_000);
    // (The benchmarks use 10,000 rules; compiling them takes long in debug.)
    // admin, ${account}/*, and team1999/* itself.
    assert_eq!(acl.index.candidates("team1999/app"), 3);
    assert_eq!(acl.index.candidates("team1999"), 3);
    assert_eq!(acl.index.candidates("public/x"), 3);
    assert_eq!(acl.index.candidates("nobody/x"), 2);
    assert_eq!(acl.index.candidates("team1999/a/b/c"), 3);
    let pull_push: Actions = ["pull".into(), "push".into()].into();
    let labels = Labels::new();
    for (account, name, want) in [
        ("user1999", "team1999/app", "pull,push@2000"),
        ("user1999", "team1998/app", "-"),
        ("user1999", "user1999/app", "pull,push@2001"),
        ("admin", "team5/x", "pull,push@0"),
        ("user5", "public/x", "pull@2002"),
        ("user5", "team5", "-"),
        ("user5", "team5/a/b", "-"),
    ] {
        let req = Request {
            account,
            typ: "repository",
            name,
            service: "registry.example.com",
            ip: None,
            labels: &labels,
            actions: &pull_push,
        };
        let d = acl.evaluate(&req);
        assert_eq!(d, acl.evaluate_linear(&req), "{account} {name}");
        let got = match d.rule {
            None => "-".to_owned(),
            Some(i) => format!(
                "{}@{i}",
                d.granted.into_iter().collect::<Vec<_>>().join(",")
            ),
        };
        assert_eq!(got, want, "{account} {name}");
    }
}

#[test]
fn names_with_many_indexed_prefixes_fall_back_to_the_scan() {
    let rules: Vec<RuleSpec> = (0..40)
        .map(|depth| RuleSpec {
            matches: MatchSpec {
                name: Some(format!("{}/*", vec!["a"; depth + 1].join("/"))),
                ..MatchSpec::default()
            },
            actions: vec![format!("a{depth}")],
            comment: None,
        })
        .collect();
    let acl = Acl::compile(rules).unwrap();
    let actions: Actions = (0..40).map(|d| action(&format!("a{d}"))).collect();
    let labels = Labels::new();
    for depth in 0..42 {
        let name = vec!["a"; depth + 1].join("/");
        let req = Request {
            account: "x",
            typ: "repository",
            name: &name,
            service: "s",
            ip: None,
            labels: &labels,
            actions: &actions,
        };
        let d = acl.evaluate(&req);
        assert_eq!(d, acl.evaluate_linear(&req), "{name}");
        assert_eq!(d.rule, depth.checked_sub(1).filter(|d| *d < 40), "{name}");
    }
}

/// Name patterns built from pieces that collide on purpose: literal
/// segments shared by several rules, wildcards, classes that match `/`,
/// escapes, placeholders and regexes.
fn name_pattern() -> impl Strategy<Value = Option<String>> {
    let segment = prop::sample::select(vec![
        "a",
        "b",
        "ab",
        "team1",
        "team12",
        "",
        "*",
        "?",
        "a*",
        "*b",
        "[ab]",
        "[/]",
        "[^a]",
        r"\a",
        "${account}",
        "${labels:g}",
        "${account:1}",
        "a${service}",
    ]);
    let glob = prop::collection::vec(segment, 1..4).prop_map(|s| s.join("/"));
    let regex = prop::sample::select(vec!["/^a/", "/b$/", "/^team1\\//", "/${account}/", "/a/b/"])
        .prop_map(str::to_owned);
    prop_oneof![
        1 => Just(None),
        6 => glob.prop_map(Some),
        1 => regex.prop_map(Some),
    ]
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    let opt = |v: Vec<&'static str>| {
        prop::option::weighted(0.4, prop::sample::select(v).prop_map(str::to_owned))
    };
    (
        name_pattern(),
        opt(vec!["alice", "bob", "/^(a)(b)?/", "${labels:g}", "a*", ""]),
        opt(vec!["repository", "registry"]),
        opt(vec!["10.0.0.0/8", "::1"]),
        prop::option::weighted(0.2, prop::sample::select(vec!["x", "${account}", "/^a/"])),
        prop::sample::subsequence(vec!["pull", "push", "delete", "*"], 0..=3),
    )
        .prop_map(|(name, account, typ, ip, label, actions)| RuleSpec {
            matches: MatchSpec {
                account,
                typ,
                name,
                service: None,
                ip,
                labels: label
                    .map(|l| BTreeMap::from([("g".to_owned(), l.to_owned())]))
                    .unwrap_or_default(),
            },
            actions: actions.into_iter().map(str::to_owned).collect(),
            comment: None,
        })
}

fn request_name() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "a", "b", "ab", "team1", "team12", "x", "", "*", "a*", "alice", "[ab]",
    ]);
    prop::collection::vec(segment, 1..5).prop_map(|s| s.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The index never changes a decision: on random ACLs (entries that do
    /// not compile dropped) and random requests, `evaluate` equals the
    /// linear first-match scan, deciding rule included.
    #[test]
    fn index_equals_linear_scan(
        rules in prop::collection::vec(rule(), 0..40),
        requests in prop::collection::vec((
            request_name(),
            prop::sample::select(vec!["alice", "bob", "a", "ab", "abc", ""]),
            prop::sample::select(vec!["repository", "registry"]),
            prop::option::of(prop::sample::select(vec!["10.1.2.3", "192.168.0.1", "::1"])),
            prop::collection::vec(prop::sample::select(vec!["x", "a", "team1", "ab/*", "alice"]), 0..3),
        ), 1..16),
    ) {
        let rules: Vec<RuleSpec> = rules
            .into_iter()
            .filter(|r| Acl::compile(vec![r.clone()]).is_ok())
            .collect();
        let acl = Acl::compile(rules).unwrap();
        let actions: Actions = ["pull", "push", "*"].map(action).into();
        for (name, account, typ, ip, g) in requests {
            let labels: Labels = if g.is_empty() {
                Labels::new()
            } else {
                Labels::from([("g".to_owned(), g.into_iter().map(str::to_owned).collect())])
            };
            let req = Request {
                account,
                typ,
                name: &name,
                service: "registry.example.com",
                ip: ip.map(|ip| ip.parse().unwrap()),
                labels: &labels,
                actions: &actions,
            };
            prop_assert_eq!(acl.evaluate(&req), acl.evaluate_linear(&req), "{:?}", req);
        }
    }
}

#[test]
fn warnings_name_the_entry_and_field() {
    let yaml = r#"
- match: {account: "/.+/", name: "/team/"}
  actions: [pull]
- match: {name: "/^(team|ci)\\//", labels: {group: "/dev/"}}
  actions: [pull]
- match: {service: "/reg/", type: "repository"}
  actions: [pull]
- match: {account: "alice", name: "team/*"}
  actions: ["*"]
"#;
    let rules: Vec<RuleSpec> = serde_yaml::from_str(yaml).unwrap();
    let acl = Acl::compile(rules).unwrap();
    let got = acl.warnings();
    let starts: Vec<&str> = got
        .iter()
        .map(|w| w.split(" is not").next().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "acl[0].match.name: regex /team/",
            "acl[1].match.labels.group: regex /dev/",
            "acl[2].match.service: regex /reg/",
        ]
    );
    assert!(got[0].ends_with("write /^team$/"), "{}", got[0]);
}
