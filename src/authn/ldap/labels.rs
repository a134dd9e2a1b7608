//! Labels from LDAP attributes: docker_auth's `labels: {name: {attribute,
//! parse_cn, lower_case}}` mapping, also used for group-search results.
//! The result is deterministic (values sorted and deduplicated) so that a
//! cached verification returns exactly what a fresh one would.

use std::collections::HashMap;

pub(crate) use crate::config::ldap::LabelMap;
use crate::core::Labels;

impl LabelMap {
    /// `value` as the label gets it.
    pub(crate) fn apply(&self, value: &str) -> String {
        let v = if self.parse_cn {
            super::escape::cn_of(value)
        } else {
            value.to_owned()
        };
        if self.lower_case {
            v.to_lowercase()
        } else {
            v
        }
    }
}

/// The values of `attribute` in `attrs`; attribute names are compared
/// without regard to case (servers answer `memberOf` to `memberof`).
pub(crate) fn values<'a>(attrs: &'a HashMap<String, Vec<String>>, attribute: &str) -> &'a [String] {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// Adds the labels `maps` take from `attrs` to `labels`.
pub(crate) fn extract(
    maps: &[LabelMap],
    attrs: &HashMap<String, Vec<String>>,
    labels: &mut Labels,
) {
    for m in maps {
        let vals = values(attrs, &m.attribute);
        if vals.is_empty() {
            continue;
        }
        labels
            .entry(m.label.clone())
            .or_default()
            .extend(vals.iter().map(|v| m.apply(v)));
    }
}

/// Sorts and deduplicates every label's values; drops empty labels.
pub(crate) fn normalize(labels: &mut Labels) {
    labels.retain(|_, v| {
        v.sort();
        v.dedup();
        !v.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(label: &str, attribute: &str, parse_cn: bool, lower_case: bool) -> LabelMap {
        LabelMap {
            label: label.into(),
            attribute: attribute.into(),
            parse_cn,
            lower_case,
        }
    }

    fn attrs(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn apply_table() {
        let cases = [
            (
                (false, false),
                "CN=Devs,OU=Groups,DC=x",
                "CN=Devs,OU=Groups,DC=x",
            ),
            ((true, false), "CN=Devs,OU=Groups,DC=x", "Devs"),
            ((true, false), "cn=devs,ou=groups,dc=x", "devs"),
            (
                (false, true),
                "CN=Devs,OU=Groups,DC=x",
                "cn=devs,ou=groups,dc=x",
            ),
            ((true, true), "CN=Devs,OU=Groups,DC=x", "devs"),
            ((true, true), "ou=NoCn,dc=x", "ou=nocn,dc=x"),
            ((true, false), "Platform", "Platform"),
            ((false, true), "ÜBER", "über"),
        ];
        for ((parse_cn, lower_case), input, want) in cases {
            let m = map("l", "a", parse_cn, lower_case);
            assert_eq!(m.apply(input), want, "{parse_cn} {lower_case} {input}");
        }
    }

    #[test]
    fn extract_and_normalize() {
        let a = attrs(&[
            (
                "memberOf",
                &[
                    "cn=ops,ou=groups,dc=x",
                    "CN=Devs,ou=groups,dc=x",
                    "cn=devs,ou=other,dc=x",
                ],
            ),
            ("departmentNumber", &["Platform"]),
            ("mail", &[]),
        ]);
        let maps = [
            map("groups", "memberof", true, true),
            map("dept", "DEPARTMENTNUMBER", false, false),
            map("mail", "mail", false, false),
            map("missing", "nosuchattr", false, false),
        ];
        let mut labels = Labels::new();
        extract(&maps, &a, &mut labels);
        normalize(&mut labels);
        let want: Labels = [
            ("dept".to_owned(), vec!["Platform".to_owned()]),
            (
                "groups".to_owned(),
                vec!["devs".to_owned(), "ops".to_owned()],
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(labels, want);
    }

    #[test]
    fn normalize_is_order_independent() {
        let mut a: Labels = [("g".to_owned(), vec!["b".into(), "a".into(), "b".into()])].into();
        let mut b: Labels = [("g".to_owned(), vec!["a".into(), "b".into()])].into();
        normalize(&mut a);
        normalize(&mut b);
        assert_eq!(a, b);
    }
}
