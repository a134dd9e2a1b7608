//! Scope grammar tests: tables of valid and invalid scopes, merging, and
//! property tests (round-trip, never panics).
use super::*;
use proptest::prelude::*;

fn scope(typ: &str, class: Option<&str>, name: &str, actions: &[&str]) -> Scope {
    Scope {
        typ: typ.into(),
        class: class.map(Into::into),
        name: name.into(),
        actions: actions.iter().map(|a| action(a)).collect(),
    }
}

/// (input, Ok(canonical display) | Err(reason))
const PARSE_CASES: &[(&str, Result<&str, &str>)] = &[
    (
        "repository:samalba/my-app:pull",
        Ok("repository:samalba/my-app:pull"),
    ),
    (
        "repository:samalba/my-app:push,pull",
        Ok("repository:samalba/my-app:pull,push"),
    ),
    (
        "repository:samalba/my-app:pull,pull",
        Ok("repository:samalba/my-app:pull"),
    ),
    (
        "repository:localhost:5000/foo/bar:pull,push",
        Ok("repository:localhost:5000/foo/bar:pull,push"),
    ),
    (
        "repository:docker.io/library/debian:pull",
        Ok("repository:docker.io/library/debian:pull"),
    ),
    (
        "repository:Registry.Example.com/a/b:pull",
        Ok("repository:Registry.Example.com/a/b:pull"),
    ),
    ("repository:Foo/bar:pull", Ok("repository:Foo/bar:pull")),
    (
        "repository:a-b/c--d/e__f/g.h_i:pull",
        Ok("repository:a-b/c--d/e__f/g.h_i:pull"),
    ),
    (
        "repository(plugin):a/b:pull",
        Ok("repository(plugin):a/b:pull"),
    ),
    ("registry:catalog:*", Ok("registry:catalog:*")),
    ("repository:x:*", Ok("repository:x:*")),
    ("repository:x:*,pull", Ok("repository:x:*,pull")),
    ("repository:x:delete", Ok("repository:x:delete")),
    ("myres:a:b/c.d-E_F:pull", Ok("myres:a:b/c.d-E_F:pull")),
    ("repository:a::pull", Err("invalid repository name")),
    ("repository:UPPER:pull", Err("invalid repository name")),
    ("repository:foo/../bar:pull", Err("invalid repository name")),
    ("repository:foo//bar:pull", Err("invalid repository name")),
    ("repository:foo/:pull", Err("invalid repository name")),
    ("repository:-foo:pull", Err("invalid repository name")),
    ("repository:foo___bar:pull", Err("invalid repository name")),
    ("repository:foo._bar:pull", Err("invalid repository name")),
    ("repository:host:/foo:pull", Err("invalid repository name")),
    (
        "repository:host:5x/foo:pull",
        Err("invalid repository name"),
    ),
    (
        "repository:-host.com/foo:pull",
        Err("invalid repository name"),
    ),
    (
        "repository:host.com/Foo:pull",
        Err("invalid repository name"),
    ),
    ("repository::pull", Err("empty name")),
    (":x:pull", Err("empty resource type")),
    ("(c):x:pull", Err("empty resource type")),
    ("Repository:x:pull", Err("invalid resource type")),
    ("repo-sitory:x:pull", Err("invalid resource type")),
    ("repository():x:pull", Err("invalid resource class")),
    ("repository(A):x:pull", Err("invalid resource class")),
    ("repository(a:x:pull", Err("invalid resource type")),
    ("repository", Err("missing name")),
    ("repository:a", Err("missing actions")),
    ("repository:a:", Err("missing actions")),
    ("repository:a:pull,,push", Err("empty action")),
    ("repository:a:pull,", Err("empty action")),
    ("repository:a:Pull", Err("invalid action")),
    ("repository:a:**", Err("invalid action")),
    ("repository:a:pull ", Err("whitespace or control character")),
    (" repository:a:pull", Err("whitespace or control character")),
    (
        "repository:a:pu\tll",
        Err("whitespace or control character"),
    ),
    (
        "repository:a\u{0}:pull",
        Err("whitespace or control character"),
    ),
    (
        "repository:a\u{a0}b:pull",
        Err("whitespace or control character"),
    ),
    ("repository:é:pull", Err("invalid repository name")),
    ("registry:caté:pull", Err("invalid name")),
    ("registry:cat*:pull", Err("invalid name")),
    ("repository:a:pull€", Err("invalid action")),
    ("", Err("empty scope")),
    (":", Err("missing actions")),
    ("::", Err("empty resource type")),
];

#[test]
fn parse_table() {
    for (input, want) in PARSE_CASES {
        let got = parse(input);
        match (want, &got) {
            (Ok(display), Ok(s)) => {
                assert_eq!(&s.to_string(), display, "input {input:?}");
                assert_eq!(parse(display).as_ref(), Ok(s), "round trip {input:?}");
            }
            (Err(reason), Err(ScopeError::Invalid { scope, reason: r })) => {
                assert_eq!(r, reason, "input {input:?}");
                assert_eq!(scope, input);
            }
            _ => panic!("input {input:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn parse_fields() {
    assert_eq!(
        parse("repository(plugin):localhost:5000/a/b:push,pull"),
        Ok(scope(
            "repository",
            Some("plugin"),
            "localhost:5000/a/b",
            &["pull", "push"]
        ))
    );
}

#[test]
fn name_length_limit() {
    let ok = format!("repository:{}:pull", "a".repeat(MAX_NAME_LEN));
    assert!(parse(&ok).is_ok());
    let long = format!("repository:{}:pull", "a".repeat(MAX_NAME_LEN + 1));
    assert!(matches!(
        parse(&long),
        Err(ScopeError::Invalid {
            reason: "name too long",
            ..
        })
    ));
}

#[test]
fn error_echo_is_truncated_on_char_boundary() {
    let input = format!("repository:{}:pull", "é".repeat(400));
    let Err(ScopeError::Invalid { scope, .. }) = parse(&input) else {
        panic!("must fail")
    };
    assert!(scope.len() <= MAX_ECHO_LEN + 3 && scope.ends_with("..."));
    assert!(input.starts_with(scope.trim_end_matches("...")));
}

#[test]
fn error_display_is_one_line() {
    let e = parse("repository:a\nb:pull").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid scope \"repository:a\\nb:pull\": whitespace or control character"
    );
    assert_eq!(
        ScopeError::TooMany(3).to_string(),
        "too many scopes (limit 3)"
    );
}

/// (values, limit, Ok(displays) | Err(error string))
#[allow(clippy::type_complexity)]
const PARSE_ALL_CASES: &[(&[&str], usize, Result<&[&str], &str>)] = &[
    (&[], 5, Ok(&[])),
    (&["", " ", "  "], 5, Ok(&[])),
    (&["repository:a:pull"], 5, Ok(&["repository:a:pull"])),
    (
        &["repository:a:pull repository:b:push"],
        5,
        Ok(&["repository:a:pull", "repository:b:push"]),
    ),
    (
        &["repository:a:pull", "repository:b:push"],
        5,
        Ok(&["repository:a:pull", "repository:b:push"]),
    ),
    (&["repository:a:pull", "repository:a:pull"], 5, Ok(&["repository:a:pull"])),
    (
        &["repository:a:push,pull", "repository:a:pull,push"],
        5,
        Ok(&["repository:a:pull,push"]),
    ),
    (
        &["repository:b:pull", "repository:a:pull repository:b:push", "registry:catalog:*"],
        5,
        Ok(&["repository:b:pull,push", "repository:a:pull", "registry:catalog:*"]),
    ),
    (
        &["repository(plugin):a:pull", "repository:a:push"],
        5,
        Ok(&["repository(plugin):a:pull,push"]),
    ),
    (&["  repository:a:pull   repository:a:push "], 5, Ok(&["repository:a:pull,push"])),
    (
        &["repository:a:pull", "registry:a:pull"],
        5,
        Ok(&["repository:a:pull", "registry:a:pull"]),
    ),
    (&["repository:a:pull repository:a:pull"], 2, Ok(&["repository:a:pull"])),
    (
        &["repository:a:pull repository:a:pull", "repository:a:pull"],
        2,
        Err("too many scopes (limit 2)"),
    ),
    (&["repository:a:pull"], 0, Err("too many scopes (limit 0)")),
    (&[""], 0, Ok(&[])),
    (
        &["repository:a:pull repository:a"],
        5,
        Err("invalid scope \"repository:a\": missing actions"),
    ),
    (
        &["repository:a:pull\trepository:b:pull"],
        5,
        Err("invalid scope \"repository:a:pull\\trepository:b:pull\": whitespace or control character"),
    ),
];

#[test]
fn parse_all_table() {
    for (values, limit, want) in PARSE_ALL_CASES {
        let got = parse_all(values.iter().copied(), *limit);
        match (want, &got) {
            (Ok(want), Ok(got)) => {
                let got: Vec<String> = got.iter().map(ToString::to_string).collect();
                assert_eq!(&got, want, "values {values:?}");
            }
            (Err(want), Err(e)) => assert_eq!(&e.to_string(), want, "values {values:?}"),
            _ => panic!("values {values:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn merge_keeps_first_class_and_order() {
    let merged = merge(vec![
        scope("repository", None, "b", &["pull"]),
        scope("repository", Some("plugin"), "a", &["pull"]),
        scope("repository", Some("other"), "a", &["*"]),
        scope("repository", None, "b", &["delete"]),
    ]);
    assert_eq!(
        merged,
        vec![
            scope("repository", None, "b", &["delete", "pull"]),
            scope("repository", Some("plugin"), "a", &["*", "pull"]),
        ]
    );
}

fn repo_name() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,4}(([._]|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    let domain = prop::option::of((
        prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?", 1..4),
        prop::option::of(0u32..70000),
    ));
    (domain, prop::collection::vec(component, 1..5)).prop_map(|(domain, path)| {
        let path = path.join("/");
        match domain {
            None => path,
            Some((host, port)) => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}{port}/{path}", host.join("."))
            }
        }
    })
}

fn valid_scope() -> impl Strategy<Value = Scope> {
    let other = ("[a-z0-9]{1,10}", "[a-zA-Z0-9._/:-]{1,40}")
        .prop_filter("not repository", |(t, _)| t != "repository");
    let typ_name = prop_oneof![
        repo_name().prop_map(|n| ("repository".to_string(), n)),
        other
    ];
    let actions =
        prop::collection::btree_set(prop_oneof!["[a-z]{1,7}", Just("*".to_string())], 1..4);
    (typ_name, prop::option::of("[a-z0-9]{1,6}"), actions).prop_map(
        |((typ, name), class, actions)| Scope {
            typ,
            class,
            name,
            actions: actions.iter().map(|a| action(a)).collect(),
        },
    )
}

proptest! {
    #[test]
    fn valid_scopes_round_trip(s in valid_scope()) {
        prop_assert_eq!(parse(&s.to_string()), Ok(s));
    }

    #[test]
    fn never_panics_and_is_stable(x in prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9:(),*/._ -]{0,40}",
        "[a-z]{0,3}(\\([a-z]{0,2}\\))?:[a-zA-Z0-9:/._,\\-é]{0,20}:[a-z*,]{0,10}",
        "\\PC{0,3}:[:(),]{0,6}\\PC{0,3}",
    ]) {
        if let Ok(s) = parse(&x) {
            prop_assert_eq!(parse(&s.to_string()), Ok(s));
        }
    }

    #[test]
    fn parse_all_never_panics(values in prop::collection::vec("[a-z:/, *]{0,30}", 0..4), limit in 0usize..5) {
        if let Ok(scopes) = parse_all(values.iter().map(String::as_str), limit) {
            prop_assert!(scopes.len() <= limit);
        }
    }
}
