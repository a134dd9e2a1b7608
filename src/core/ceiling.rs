//! A scope ceiling: the most a credential may ever be granted, whatever
//! the ACL says. Each entry is `type:name-glob:actions`
//! (`repository:ci/*:push,pull`): the type is the scope's type, the name a
//! Go `path.Match` glob as in the ACL (`*` stops at `/`), the actions a
//! list where `*` stands for every action. A requested scope keeps the ACL's
//! granted actions that some matching entry allows: grant = ACL ∩ ceiling.
//! Nothing is granted that no entry names, so an empty ceiling grants
//! nothing.

use std::fmt;

use crate::core::acl::glob_match;
use crate::core::scope::{self, Actions, Scope};

/// One `type:name-glob:actions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) typ: String,
    pub(crate) name: String,
    pub(crate) actions: Actions,
}

/// The entries of one credential's ceiling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceiling {
    bounds: Vec<Bound>,
}

/// Why an entry cannot be read; one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scope {entry:?}: {reason} (expected type:name-glob:actions, e.g. repository:ci/*:push,pull)"
)]
pub(crate) struct BoundError {
    pub(crate) entry: String,
    pub(crate) reason: &'static str,
}

impl Bound {
    /// Parses `type:name-glob:actions`. The type ends at the first `:` and
    /// the actions start after the last one, as in a scope.
    pub(crate) fn parse(s: &str) -> Result<Bound, BoundError> {
        let err = |reason| BoundError {
            entry: s.to_owned(),
            reason,
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("whitespace or control character"));
        }
        let (typ, rest) = s.split_once(':').ok_or_else(|| err("missing name"))?;
        let (name, actions) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("missing actions"))?;
        let (typ, class) = scope::parse_type(typ).map_err(err)?;
        if class.is_some() {
            return Err(err("a resource class is not part of a ceiling"));
        }
        if name.is_empty() {
            return Err(err("empty name"));
        }
        if glob_match(name, "").is_none() {
            return Err(err("malformed glob in the name"));
        }
        let actions = scope::parse_actions(actions).map_err(err)?;
        Ok(Bound {
            typ: typ.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    fn covers(&self, scope: &Scope) -> bool {
        self.typ == scope.typ && glob_match(&self.name, &scope.name) == Some(true)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.typ, self.name)?;
        for (i, a) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(a)?;
        }
        Ok(())
    }
}

impl Ceiling {
    pub(crate) fn new(bounds: Vec<Bound>) -> Ceiling {
        Ceiling { bounds }
    }

    /// Parses every entry; the first bad one is the error.
    pub(crate) fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Ceiling, BoundError> {
        entries
            .into_iter()
            .map(Bound::parse)
            .collect::<Result<_, _>>()
            .map(Ceiling::new)
    }

    pub(crate) fn bounds(&self) -> &[Bound] {
        &self.bounds
    }

    /// The part of `granted` (what the ACL granted for `scope`) that the
    /// ceiling allows. A granted `*` (the client asked for `*` and the ACL
    /// allowed it) stays only where an entry allows `*`.
    pub(crate) fn limit(&self, scope: &Scope, granted: &Actions) -> Actions {
        let mut allowed = Actions::new();
        for b in self.bounds.iter().filter(|b| b.covers(scope)) {
            if b.actions.contains("*") {
                return granted.clone();
            }
            allowed.extend(b.actions.iter().cloned());
        }
        granted.intersection(&allowed).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(list: &[&str]) -> Actions {
        list.iter().map(|a| scope::action(a)).collect()
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("repository:ci/*:push,pull", Ok("repository:ci/*:pull,push")),
            ("repository:*:pull", Ok("repository:*:pull")),
            ("repository:a/b:*", Ok("repository:a/b:*")),
            ("registry:catalog:*", Ok("registry:catalog:*")),
            (
                "repository:127.0.0.1:5000/x:pull",
                Ok("repository:127.0.0.1:5000/x:pull"),
            ),
            ("repository:[a-:pull", Err("malformed glob")),
            ("repository:ci/*", Err("missing actions")),
            ("repository", Err("missing name")),
            ("repository::pull", Err("empty name")),
            ("Repository:x:pull", Err("invalid resource type")),
            ("repository(plugin):x:pull", Err("a resource class")),
            ("repository:x:Pull", Err("invalid action")),
            ("repository:x:", Err("missing actions")),
            ("repository:x y:pull", Err("whitespace")),
        ];
        for (input, want) in cases {
            match (Bound::parse(input), want) {
                (Ok(b), Ok(w)) => assert_eq!(b.to_string(), *w, "{input}"),
                (Err(e), Err(w)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(w) && !msg.contains('\n'), "{input}: {msg}")
                }
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn limit_table() {
        let ceiling = Ceiling::parse([
            "repository:ci/*:push,pull",
            "repository:shared/*:pull",
            "repository:ci/*:pull",
            "registry:catalog:*",
        ])
        .unwrap();
        // (scope, what the ACL granted, what survives the ceiling)
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "repository:ci/app:push,pull",
                &["pull", "push"],
                &["pull", "push"],
            ),
            (
                "repository:ci/app:push,pull,delete",
                &["pull", "push", "delete"],
                &["pull", "push"],
            ),
            (
                "repository:shared/base:push,pull",
                &["pull", "push"],
                &["pull"],
            ),
            // `*` stops at `/`, as in the ACL's globs.
            ("repository:ci/team/app:pull", &["pull"], &[]),
            ("repository:other/app:pull", &["pull"], &[]),
            // The ceiling never adds what the ACL refused.
            ("repository:ci/app:push,pull", &["pull"], &["pull"]),
            ("repository:ci/app:*", &["*"], &[]),
            ("registry:catalog:*", &["*"], &["*"]),
            ("repository:ci:pull", &["pull"], &[]),
        ];
        for (s, granted, want) in cases {
            let scope = scope::parse(s).unwrap();
            assert_eq!(
                ceiling.limit(&scope, &actions(granted)),
                actions(want),
                "{s}"
            );
        }
        let empty = Ceiling::default();
        let scope = scope::parse("repository:ci/app:pull").unwrap();
        assert!(empty.limit(&scope, &actions(&["pull"])).is_empty());
    }
}
