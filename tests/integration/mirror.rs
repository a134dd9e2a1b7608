//! Mirror remapping over HTTP: the request's `service` names a mirror, the
//! scopes are rebuilt under its prefix, the ACL sees the real name, and the
//! token's `aud` is the registry's own service.

use serde_json::{json, Value};

use crate::support::{config_yaml, verify, Server, User};

const EXTRA: &str = r#"services: [registry.local]
mirrors:
  - {service: docker.io, prefix: docker.io, audience: registry.local}
  - {service: ghcr.io, prefix: mirrors/ghcr, audience: registry.local}
acl:
  - match: {account: "", name: "/^docker\\.io\\/library\\//"}
    actions: [pull]
    comment: "anonymous pulls of Docker Hub official images"
  - match: {account: "bob", name: "mirrors/ghcr/*/*"}
    actions: [pull]
    comment: "bob pulls the private ghcr mirror"
  - match: {account: "", name: "${name}", service: "docker.io"}
    actions: []
    comment: "everything else under the mirror: denied"
"#;

#[tokio::test]
async fn remap_table_for_each_client_style() {
    let s = Server::start(&config_yaml("p256", "", EXTRA)).await;
    // (client style, user, query, expected access)
    let cases: Vec<(&str, User, &str, Value)> = vec![
        (
            "docker (registry-mirrors): unprefixed name, mirror service",
            None,
            "service=docker.io&scope=repository:library/debian:pull",
            json!([{"type": "repository", "name": "docker.io/library/debian", "actions": ["pull"]}]),
        ),
        (
            "podman (registries.conf mirror at host/docker.io): prefixed name, mirror service",
            None,
            "service=docker.io&scope=repository:docker.io/library/debian:pull",
            json!([{"type": "repository", "name": "docker.io/library/debian", "actions": ["pull"]}]),
        ),
        (
            "podman talking to the registry itself: prefixed name, registry service",
            None,
            "service=registry.local&scope=repository:docker.io/library/debian:pull",
            json!([{"type": "repository", "name": "docker.io/library/debian", "actions": ["pull"]}]),
        ),
        (
            "containerd: challenge scope and its own scope collapse into one",
            None,
            "service=docker.io&scope=repository:docker.io/library/debian:pull&scope=repository:library/debian:pull",
            json!([{"type": "repository", "name": "docker.io/library/debian", "actions": ["pull"]}]),
        ),
        (
            "the ACL sees the rebuilt name: a non-library repo is denied",
            None,
            "service=docker.io&scope=repository:someone/tool:pull",
            json!([{"type": "repository", "name": "docker.io/someone/tool", "actions": []}]),
        ),
        (
            "a second mirror with a path prefix, private",
            Some(("bob", "bob")),
            "service=ghcr.io&scope=repository:org/app:pull,push",
            json!([{"type": "repository", "name": "mirrors/ghcr/org/app", "actions": ["pull"]}]),
        ),
        (
            "non-repository scopes are not rebuilt",
            Some(("bob", "bob")),
            "service=ghcr.io&scope=registry:catalog:*",
            json!([{"type": "registry", "name": "catalog", "actions": []}]),
        ),
    ];
    for (style, user, query, want) in cases {
        let resp = s.get(&format!("/auth?{query}"), user).await;
        assert_eq!(resp.status(), 200, "{style}");
        let body: Value = resp.json().await.unwrap();
        let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "registry.local");
        assert_eq!(claims["aud"], "registry.local", "{style}");
        assert_eq!(claims["access"], want, "{style}");
    }
    // A service that is neither a mirror nor allowed: 400.
    let resp = s
        .get("/auth?service=evil.example&scope=repository:a/b:pull", None)
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("unknown service"));
}
