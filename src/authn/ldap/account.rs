//! The account name an LDAP login is known by: the directory's own value
//! of the attribute the filter matched, not what the user typed.
//!
//! Directories compare most naming attributes by their own matching rules
//! (`uid` and `cn` ignore case, `telephoneNumber` ignores spaces), so
//! `ALICE` finds and binds as alice's entry. Were the typed name used, the
//! ACL and the token's `sub` would see `ALICE`, and a rule written for
//! `alice` (a deny included) would not apply to it.
//!
//! The attribute is found in `filter`: the one whose equality assertion is
//! exactly `${account}` (`(uid=${account})` gives `uid`; several, as in
//! `(|(uid=${account})(mail=${account}))`, are tried in filter order). The
//! entry's value is then, for the first such attribute that has one:
//! the value equal to the typed name, else one equal to it ignoring case
//! (the smallest, if the entry has several), else, when the filter names
//! one attribute and the entry holds one value of it, that value (the
//! directory matched it by a rule other than case).
//!
//! When no attribute can be determined — `${account}` inside a substring
//! (`(cn=*${account}*)`), approximate or extensible assertion — or the
//! entry has no fitting value, the typed name is kept, as docker_auth
//! does; ACL rules for such directories should then match accounts
//! case-insensitively (`/(?i)^alice$/`) or on labels.

/// The attributes whose equality assertions in `filter` are exactly
/// `${account}`, in filter order without repeats; empty when `${account}`
/// appears anywhere else.
pub(crate) fn attributes(filter: &str) -> Vec<String> {
    const VAR: &str = "${account}";
    let mut out: Vec<String> = Vec::new();
    for (at, _) in filter.match_indices(VAR) {
        let Some(open) = filter[..at].rfind('(') else {
            return Vec::new();
        };
        let closes = filter[at + VAR.len()..].starts_with(')');
        let attr = filter[open + 1..at].strip_suffix('=').filter(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';')
        });
        let Some(attr) = attr.filter(|_| closes) else {
            return Vec::new();
        };
        if !out.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
            out.push(attr.to_owned());
        }
    }
    out
}

/// The entry's own spelling of `typed` among its values of `attributes`
/// (see the module docs); `None` when there is none to take.
pub(crate) fn canonical<'v>(
    attributes: &[String],
    values: impl Fn(&str) -> &'v [String],
    typed: &str,
) -> Option<&'v str> {
    let folded = typed.to_lowercase();
    for attr in attributes {
        let vals = values(attr);
        if let Some(v) = vals.iter().find(|v| *v == typed) {
            return Some(v);
        }
        if let Some(v) = vals.iter().filter(|v| v.to_lowercase() == folded).min() {
            return Some(v);
        }
    }
    match (attributes, attributes.first().map(|a| values(a))) {
        ([_], Some([only])) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_table() {
        let cases: &[(&str, &[&str])] = &[
            ("(uid=${account})", &["uid"]),
            ("(&(objectClass=inetOrgPerson)(uid=${account}))", &["uid"]),
            ("(|(uid=${account})(mail=${account}))", &["uid", "mail"]),
            ("(|(uid=${account})(UID=${account}))", &["uid"]),
            ("(sAMAccountName=${account})", &["sAMAccountName"]),
            ("(uid;lang-en=${account})", &["uid;lang-en"]),
            ("(cn=*${account}*)", &[]),
            ("(cn=${account}*)", &[]),
            ("(cn~=${account})", &[]),
            ("(uid:caseExactMatch:=${account})", &[]),
            ("(|(uid=${account})(cn=*${account}))", &[]),
            ("${account}", &[]),
        ];
        for (filter, want) in cases {
            assert_eq!(attributes(filter), *want, "{filter}");
        }
    }

    #[test]
    fn canonical_table() {
        use std::collections::HashMap;
        let entry: HashMap<&str, Vec<String>> = [
            ("uid", vec!["alice".to_string()]),
            (
                "mail",
                vec!["Alice@Example.org".into(), "al@example.org".into()],
            ),
            ("cn", vec!["Al".into(), "al".into(), "AL".into()]),
            ("tel", vec!["+1 555 0100".into()]),
            ("two", vec!["x".into(), "y".into()]),
        ]
        .into_iter()
        .collect();
        let values = |a: &str| -> &[String] { entry.get(a).map_or(&[], |v| v.as_slice()) };
        let attrs = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &str, Option<&str>)] = &[
            (&["uid"], "alice", Some("alice")),
            (&["uid"], "ALICE", Some("alice")),
            (&["uid"], "Alice", Some("alice")),
            // Matched by a rule other than case: the one value.
            (&["tel"], "+15550100", Some("+1 555 0100")),
            (&["two"], "z", None),
            (&["missing"], "alice", None),
            (&[], "ALICE", None),
            // In filter order; the first attribute with a fitting value.
            (
                &["uid", "mail"],
                "ALICE@example.ORG",
                Some("Alice@Example.org"),
            ),
            (&["uid", "mail"], "ALICE", Some("alice")),
            (&["uid", "mail"], "bob", None),
            // Exact first, else the smallest of the case variants.
            (&["cn"], "al", Some("al")),
            (&["cn"], "aL", Some("AL")),
        ];
        for (attributes, typed, want) in cases {
            assert_eq!(
                canonical(&attrs(attributes), values, typed),
                *want,
                "{attributes:?} {typed}"
            );
        }
    }
}
