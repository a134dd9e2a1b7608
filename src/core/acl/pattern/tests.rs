//! Tests of ACL pattern strings: Go regex translation, globs, placeholders.

use super::*;
use proptest::prelude::*;

/// (Go regex, name, matches)
const REGEXES: &[(&str, &str, bool)] = &[
    (r"^\w+$", "abc_1", true),
    (r"^\w+$", "abé", false),
    (r"^\W$", "é", true),
    (r"^\d$", "٣", false),
    (r"^\D$", "٣", true),
    (r"^\s$", "\u{a0}", false),
    (r"^\S$", "\u{a0}", true),
    (r"^[\d\s]+$", "1 2", true),
    (r"^[\d]+$", "٣", false),
    (r"^[^\d]$", "٣", true),
    (r"^[\D]$", "٣", true),
    (r"\bé", "aé", true),
    (r"a\b", "a.", true),
    (r"^a{x}$", "a{x}", true),
    (r"^a{2}$", "aa", true),
    (r"^a{1,}$", "aaa", true),
    (r"^a{1,2}$", "aaa", false),
    (r"^a{,2}$", "a{,2}", true),
    (r"^a}$", "a}", true),
    (r"^\Qa.b\E$", "a.b", true),
    (r"^\Qa.b\E$", "axb", false),
    (r"^\Qa.b$", "a.b$", true),
    (r"^[[]$", "[", true),
    (r"^[]a]$", "]", true),
    (r"^[^]a]$", "]", false),
    (r"^[a&&b]$", "&", true),
    (r"^[~]$", "~", true),
    (r"^[[:alpha:]]+$", "abc", true),
    (r"^[+--]$", ",", true),
    (r"^a\.b$", "a.b", true),
    (r"(?i)^ABC$", "abc", true),
    (r"^\<\>$", "<>", true),
    (r"^\101\0$", "A\0", true),
    (r"^[\101]$", "A", true),
    (r"^\p{Greek}$", "λ", true),
    (r"^\p{^Greek}$", "λ", false),
    (r"^\P{^Greek}$", "λ", true),
    (r"^\x{41}{2}$", "AA", true),
    (r"^(?P<1a>a)$", "a", true),
];

#[test]
fn regex_table_uses_go_semantics() {
    for &(p, s, want) in REGEXES {
        let re = Regex::new(&translate_regex(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(
            re.is_match(s),
            want,
            "{p:?} -> {:?} on {s:?}",
            translate_regex(p)
        );
    }
}

#[test]
fn placeholder_parsing() {
    use Part::*;
    let lit = |s: &str| Lit(s.to_owned());
    let cases: &[(&str, Result<Vec<Part>, &str>)] = &[
        ("", Ok(vec![])),
        ("abc", Ok(vec![lit("abc")])),
        ("${account}", Ok(vec![Var(Field::Account)])),
        (
            "a${type}b${name}${service}",
            Ok(vec![
                lit("a"),
                Var(Field::Type),
                lit("b"),
                Var(Field::Name),
                Var(Field::Service),
            ]),
        ),
        ("${labels:a:b}/x", Ok(vec![Label("a:b".into()), lit("/x")])),
        ("${name:12}", Ok(vec![Capture(Field::Name, 12)])),
        ("${Service:1}", Ok(vec![Capture(Field::Service, 1)])),
        (
            "$${account}$",
            Ok(vec![lit("$"), Var(Field::Account), lit("$")]),
        ),
        ("a${b", Ok(vec![lit("a${b")])),
        ("/^a{2}$/", Ok(vec![lit("/^a{2}$/")])),
        ("${Account}", Err("unknown placeholder ${Account}")),
        ("${}", Err("unknown placeholder ${}")),
        ("${labels}", Err("unknown placeholder ${labels}")),
        ("${name:}", Err("unknown placeholder ${name:}")),
        ("${name:-1}", Err("unknown placeholder ${name:-1}")),
        ("${é:1}", Err("unknown placeholder ${é:1}")),
    ];
    for (src, want) in cases {
        assert_eq!(
            parse_parts(src),
            want.clone().map_err(str::to_owned),
            "{src:?}"
        );
    }
}

proptest! {
    #[test]
    fn translate_regex_never_panics(p in "\\PC{0,12}|[\\\\\\[\\]{}QEdDwb:^&~,0-9-]{0,12}") {
        let _ = Regex::new(&translate_regex(&p));
        let _ = Pattern::compile(&p, true);
    }
}

#[test]
fn unanchored_table() {
    // (pattern, the anchored form suggested; None = no warning)
    let cases: &[(&str, Option<&str>)] = &[
        ("/team/", Some("/^team$/")),
        ("/^team/", Some("/^team$/")),
        ("/team$/", Some("/^team$/")),
        ("/^team$/", None),
        (r"/\Ateam\z/", None),
        ("/(?i)team/", Some("/(?i)^team$/")),
        ("/(?i)^team$/", None),
        // Ends at a segment boundary, or where it ends makes no difference.
        (r"/^team\//", None),
        ("/^(team|ci)\\//", None),
        ("/.+/", None),
        ("/^.*$/", None),
        ("/.*-prod$/", None),
        ("/^team.*/", None),
        (r"/^team\.*/", Some(r"/^team\.*$/")),
        (r"/^team\$/", Some(r"/^team\$$/")),
        // Each alternative on its own.
        ("/^a$|^b$/", None),
        ("/^a|b$/", Some("/^(^a|b$)$/")),
        ("/^(a|b)$/", None),
        ("/^[|]$/", None),
        // Globs and literals are whole-value already.
        ("team", None),
        ("team/*", None),
        ("/x", None),
    ];
    for (src, want) in cases {
        assert_eq!(unanchored(src).as_deref(), *want, "{src}");
    }
}
