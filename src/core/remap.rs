//! Pull-through mirror remapping: the request's `service` names a mirror,
//! whose prefix is put in front of every repository name (DESIGN §1).

use super::scope::{self, Scope};

/// One `mirrors:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// The `service` the mirror front puts in its challenge (`docker.io`).
    pub(crate) service: String,
    /// The path prefix the registry stores the mirror under (`docker.io`).
    pub(crate) prefix: String,
    /// The registry's own service: the token's `aud`.
    pub(crate) audience: String,
}

/// `prefix/name`, unless `name` already starts with `prefix/` (podman and
/// skopeo send the prefixed name; rebuilding is idempotent).
pub(crate) fn rebuild_name(prefix: &str, name: &str) -> String {
    match name.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => name.to_owned(),
        _ => format!("{prefix}/{name}"),
    }
}

/// Rebuilds one scope for `mirror`: repository scopes (any class) get the
/// prefix, other types are untouched.
pub(crate) fn rebuild(mirror: &Mirror, s: &Scope) -> Scope {
    if s.typ != "repository" {
        return s.clone();
    }
    Scope {
        name: rebuild_name(&mirror.prefix, &s.name),
        ..s.clone()
    }
}

/// Finds the mirror whose `service` equals `service`.
pub(crate) fn find<'m>(mirrors: &'m [Mirror], service: &str) -> Option<&'m Mirror> {
    mirrors.iter().find(|m| m.service == service)
}

/// Rebuilds every scope for `mirror` and merges scopes that collapse into
/// the same name (`library/x` and `docker.io/library/x`).
pub(crate) fn rebuild_all(mirror: &Mirror, scopes: &[Scope]) -> Vec<Scope> {
    scope::merge(scopes.iter().map(|s| rebuild(mirror, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Mirror {
        Mirror {
            service: "docker.io".into(),
            prefix: "docker.io".into(),
            audience: "registry.example.com".into(),
        }
    }

    #[test]
    fn rebuild_name_table() {
        let cases = [
            ("docker.io", "library/debian", "docker.io/library/debian"),
            (
                "docker.io",
                "docker.io/library/debian",
                "docker.io/library/debian",
            ),
            ("docker.io", "docker.iox/a", "docker.io/docker.iox/a"),
            ("docker.io", "docker.io", "docker.io/docker.io"),
            ("mirrors/hub", "alpine", "mirrors/hub/alpine"),
            ("mirrors/hub", "mirrors/hub/alpine", "mirrors/hub/alpine"),
        ];
        for (prefix, name, want) in cases {
            assert_eq!(
                rebuild_name(prefix, name),
                want,
                "prefix={prefix} name={name}"
            );
            assert_eq!(rebuild_name(prefix, want), want, "idempotent for {want}");
        }
    }

    #[test]
    fn only_repository_scopes_are_rebuilt_and_duplicates_merge() {
        let scopes = scope::parse_all(
            [
                "repository:library/debian:pull",
                "repository(plugin):docker.io/library/debian:push registry:catalog:*",
            ],
            10,
        )
        .unwrap();
        let out = rebuild_all(&hub(), &scopes);
        let shown: Vec<String> = out.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "repository:docker.io/library/debian:pull,push",
                "registry:catalog:*"
            ]
        );
    }
}
