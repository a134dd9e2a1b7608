//! Scope grammar (distribution `scope.md`): `type[(class)]:name:actions` —
//! parsing, a round-tripping `Display`, and merging of repeated scopes.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// An action name. The usual ones (`pull`, `push`, `delete`, `*`) are
/// static strings, so parsing and granting them allocates nothing.
pub(crate) type Action = Cow<'static, str>;

/// A set of actions.
pub type Actions = BTreeSet<Action>;

/// The action named `a`, static when it is a usual one.
pub(crate) fn action(a: &str) -> Action {
    match a {
        "pull" => Cow::Borrowed("pull"),
        "push" => Cow::Borrowed("push"),
        "delete" => Cow::Borrowed("delete"),
        "*" => Cow::Borrowed("*"),
        other => Cow::Owned(other.to_owned()),
    }
}

/// One requested resource scope. Actions are a set: order and duplicates in
/// the request do not matter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// Resource type, `[a-z0-9]+` (e.g. `repository`, `registry`).
    pub(crate) typ: String,
    /// Optional resource class from `type(class)`; dropped in tokens.
    pub(crate) class: Option<String>,
    /// Resource name; may hold a `host:port/` prefix.
    pub name: String,
    /// Requested actions (`pull`, `push`, `delete`, `*`, ...).
    pub actions: Actions,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// One-line reason, safe to show to clients. `scope` is the offending
    /// input, cut to at most [`MAX_ECHO_LEN`] bytes (plus `...`).
    #[error("invalid scope {scope:?}: {reason}")]
    Invalid { scope: String, reason: &'static str },
    #[error("too many scopes (limit {0})")]
    TooMany(usize),
}

/// Longest accepted scope name, in bytes (distribution's total name limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest prefix of a bad scope echoed back in [`ScopeError::Invalid`].
pub(crate) const MAX_ECHO_LEN: usize = 256;

/// Parses one scope, `type[(class)]:name:actions`.
///
/// The type ends at the first `:` and the actions start after the last one,
/// so names may carry a `host:port/` prefix. Never panics.
pub fn parse(s: &str) -> Result<Scope, ScopeError> {
    let err = |reason| invalid(s, reason);
    if s.is_empty() {
        return Err(err("empty scope"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("whitespace or control character"));
    }
    let (resource, rest) = s.split_once(':').ok_or_else(|| err("missing name"))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or_else(|| err("missing actions"))?;
    let (typ, class) = parse_type(resource).map_err(err)?;
    check_name(typ, name).map_err(err)?;
    let actions = parse_actions(actions).map_err(err)?;
    Ok(Scope {
        typ: typ.to_owned(),
        class: class.map(str::to_owned),
        name: name.to_owned(),
        actions,
    })
}

/// Parses the `scope` parameter values of one request.
///
/// Each value may hold several scopes separated by ASCII spaces; empty pieces
/// are ignored. More than `limit` scopes (counted before merging) is an
/// error. The result is [`merge`]d.
pub fn parse_all<'a, I: IntoIterator<Item = &'a str>>(
    values: I,
    limit: usize,
) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes = Vec::new();
    for value in values {
        for piece in value.split(' ').filter(|p| !p.is_empty()) {
            if scopes.len() >= limit {
                return Err(ScopeError::TooMany(limit));
            }
            scopes.push(parse(piece)?);
        }
    }
    Ok(merge(scopes))
}

/// Merges scopes with equal `(typ, name)`: actions are united, the class of
/// the first one is kept, and the order of first appearance is preserved.
///
/// A linear search: a request carries at most
/// `MAX_SCOPES` (the service's limit) scopes, usually one to three, and an index
/// would cost more allocations than it saves comparisons.
pub(crate) fn merge(scopes: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for scope in scopes {
        match out
            .iter_mut()
            .find(|o| o.typ == scope.typ && o.name == scope.name)
        {
            Some(o) => o.actions.extend(scope.actions),
            None => out.push(scope),
        }
    }
    out
}

impl fmt::Display for Scope {
    /// `type[(class)]:name:a,b` with actions in sorted order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.typ)?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:", self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action)?;
        }
        Ok(())
    }
}

fn invalid(scope: &str, reason: &'static str) -> ScopeError {
    let scope = if scope.len() <= MAX_ECHO_LEN {
        scope.to_owned()
    } else {
        let mut end = MAX_ECHO_LEN;
        while !scope.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &scope[..end])
    };
    ScopeError::Invalid { scope, reason }
}

fn is_lower_alnum(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Splits `type` or `type(class)`.
pub(crate) fn parse_type(resource: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (typ, class) = match resource.strip_suffix(')') {
        Some(inner) => match inner.split_once('(') {
            Some((typ, class)) if is_lower_alnum(class) => (typ, Some(class)),
            _ => return Err("invalid resource class"),
        },
        None => (resource, None),
    };
    if typ.is_empty() {
        return Err("empty resource type");
    }
    if !is_lower_alnum(typ) {
        return Err("invalid resource type");
    }
    Ok((typ, class))
}

fn check_name(typ: &str, name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("name too long");
    }
    if typ == "repository" {
        if !is_repository_name(name) {
            return Err("invalid repository name");
        }
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/:-".contains(&b))
    {
        return Err("invalid name");
    }
    Ok(())
}

pub(crate) fn parse_actions(actions: &str) -> Result<Actions, &'static str> {
    if actions.is_empty() {
        return Err("missing actions");
    }
    actions
        .split(',')
        .map(|a| match a {
            "" => Err("empty action"),
            "*" => Ok(action(a)),
            _ if a.bytes().all(|b| b.is_ascii_lowercase()) => Ok(action(a)),
            _ => Err("invalid action"),
        })
        .collect()
}

/// Distribution reference grammar: path components joined by `/`, with an
/// optional `domain[:port]/` prefix.
fn is_repository_name(name: &str) -> bool {
    if name.split('/').all(is_path_component) {
        return true;
    }
    match name.split_once('/') {
        Some((domain, rest)) => is_domain(domain) && rest.split('/').all(is_path_component),
        None => false,
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Every maximal run of separators must be `.`, `_`, `__` or only dashes.
    s.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .all(|sep| matches!(sep, "" | "." | "_" | "__") || sep.bytes().all(|c| c == b'-'))
}

/// `component(\.component)*(:[0-9]+)?`, component
/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && host.split('.').all(component_ok)
}

#[cfg(test)]
mod tests;
