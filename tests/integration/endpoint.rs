//! The token endpoint over real HTTP: grants, partial grants, errors, both
//! methods and paths, and tokens verified by an independent JWT library.

use serde_json::{json, Value};

use crate::support::{config_yaml, verify, Server, User, DEFAULT_ACL, ISSUER};

async fn default_server() -> Server {
    Server::start(&config_yaml("p256", "", DEFAULT_ACL)).await
}

fn access(claims: &Value) -> Value {
    claims["access"].clone()
}

#[tokio::test]
async fn grants_table() {
    let s = default_server().await;
    // (user, query, expected access)
    let cases: Vec<(User, &str, Value)> = vec![
        (None, "service=reg", json!([])),
        (Some(("alice", "alice")), "service=reg", json!([])),
        (
            Some(("alice", "alice")),
            "service=reg&scope=repository:team/app:push,pull",
            json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]),
        ),
        (
            Some(("alice", "alice")),
            "service=reg&scope=registry:catalog:*",
            json!([{"type": "registry", "name": "catalog", "actions": ["*"]}]),
        ),
        // Partial grant: bob may pull but not push; the request still succeeds.
        (
            Some(("bob", "bob")),
            "service=reg&scope=repository:team/app:pull,push",
            json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]),
        ),
        (
            Some(("bob", "bob")),
            "service=reg&scope=repository:qa/tool:pull&scope=repository:other/x:pull",
            json!([
                {"type": "repository", "name": "qa/tool", "actions": ["pull"]},
                {"type": "repository", "name": "other/x", "actions": []}
            ]),
        ),
        (
            Some(("bob", "bob")),
            "service=reg&scope=registry:catalog:*",
            json!([{"type": "registry", "name": "catalog", "actions": []}]),
        ),
        // Anonymous: public yes, private no.
        (
            None,
            "service=reg&scope=repository:public/debian:pull",
            json!([{"type": "repository", "name": "public/debian", "actions": ["pull"]}]),
        ),
        (
            None,
            "service=reg&scope=repository:team/app:pull",
            json!([{"type": "repository", "name": "team/app", "actions": []}]),
        ),
        // Duplicates merge; space-separated scopes in one value; class dropped.
        (
            Some(("alice", "alice")),
            "service=reg&scope=repository:a/b:pull&scope=repository:a/b:pull&scope=repository(plugin):a/b:push+repository:localhost:5000/c:pull",
            json!([
                {"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
                {"type": "repository", "name": "localhost:5000/c", "actions": ["pull"]}
            ]),
        ),
        // Empty scope values are ignored; account equal to the user is fine.
        (Some(("alice", "alice")), "service=reg&scope=&account=alice", json!([])),
    ];
    for (user, query, want) in cases {
        let resp = s.get(&format!("/auth?{query}"), user).await;
        assert_eq!(resp.status(), 200, "{user:?} {query}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{query}"
        );
        let body: Value = resp.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        assert_eq!(body["access_token"], body["token"]);
        assert_eq!(body["expires_in"], 300);
        assert!(body.get("refresh_token").is_none());
        let issued_at = body["issued_at"].as_str().unwrap();
        assert!(
            issued_at.ends_with('Z') && issued_at.len() == 20,
            "RFC 3339 UTC: {issued_at}"
        );
        let (header, claims) = verify(token, "p256", "reg");
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(access(&claims), want, "{user:?} {query}");
        assert_eq!(claims["sub"], user.map_or("", |u| u.0));
        assert_eq!(claims["iss"], ISSUER);
        assert!(claims["aud"].is_string());
        let (exp, iat) = (
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap(),
        );
        assert!(exp > iat && exp - iat <= 300 + 10);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    }
}

#[tokio::test]
async fn errors_table() {
    let s = default_server().await;
    // (user, query, status, body fragment)
    let cases: Vec<(User, &str, u16, &str)> = vec![
        (
            Some(("alice", "wrong")),
            "service=reg",
            401,
            "authentication failed",
        ),
        (
            Some(("nobody", "x")),
            "service=reg",
            401,
            "authentication failed",
        ),
        (
            Some(("alice", "")),
            "service=reg",
            401,
            "authentication failed",
        ),
        (
            Some(("alice", "alice")),
            "service=reg&scope=repository:Bad:pull",
            400,
            "invalid scope",
        ),
        (
            Some(("alice", "alice")),
            "service=reg&scope=repository:a",
            400,
            "invalid scope",
        ),
        (
            Some(("alice", "alice")),
            "service=reg&account=bob",
            400,
            "account does not match",
        ),
        (None, "service=reg&service=x", 400, "given more than once"),
        (None, "service=%FF", 400, "not valid UTF-8"),
    ];
    for (user, query, status, fragment) in cases {
        let resp = s.get(&format!("/auth?{query}"), user).await;
        assert_eq!(resp.status().as_u16(), status, "{user:?} {query}");
        if status == 401 {
            assert_eq!(
                resp.headers()["www-authenticate"],
                format!("Basic realm=\"{ISSUER}\""),
            );
        }
        let body = resp.text().await.unwrap();
        assert!(body.contains(fragment), "{query}: {body}");
        assert_eq!(body.trim_end().lines().count(), 1, "one line: {body}");
        assert!(!body.contains("wrong"), "no secret echoed: {body}");
    }
    // Malformed Basic header.
    let resp = s
        .client
        .get(s.url("/auth?service=reg"))
        .header("authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The server keeps serving.
    assert_eq!(s.get("/auth?service=reg", None).await.status(), 200);
}

#[tokio::test]
async fn anonymous_refused_without_the_empty_user() {
    let yaml = config_yaml("p256", "", DEFAULT_ACL).replace("  \"\": {}\n", "");
    let s = Server::start(&yaml).await;
    let resp = s
        .get("/auth?service=reg&scope=repository:public/x:pull", None)
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn post_password_grant_and_token_path() {
    let s = default_server().await;
    let post = |form: &'static str| {
        s.client
            .post(s.url("/auth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let ok = post("grant_type=password&username=alice&password=alice&service=reg&client_id=containerd&scope=repository:x/y:pull%20repository:x/z:push")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let (_, claims) = verify(body["access_token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["access"].as_array().unwrap().len(), 2);
    let cases: &[(&str, u16)] = &[
        (
            "grant_type=password&username=alice&password=bad&service=reg",
            401,
        ),
        ("grant_type=password&username=alice&service=reg", 400),
        ("service=reg", 400),
        ("grant_type=magic&service=reg", 400),
        ("grant_type=refresh_token&refresh_token=x&service=reg", 400),
    ];
    for (form, status) in cases {
        assert_eq!(
            post(form).await.unwrap().status().as_u16(),
            *status,
            "{form}"
        );
    }
    // The form only under its own media type (parameters allowed).
    let form = "grant_type=password&username=alice&password=alice&service=reg";
    let types: &[(Option<&str>, u16)] = &[
        (
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            200,
        ),
        (Some("APPLICATION/X-WWW-FORM-URLENCODED"), 200),
        (None, 415),
        (Some("application/json"), 415),
        (Some("text/plain"), 415),
        (Some("multipart/form-data; boundary=x"), 415),
    ];
    for (content_type, status) in types {
        let mut rb = s.client.post(s.url("/auth")).body(form);
        if let Some(t) = content_type {
            rb = rb.header("content-type", *t);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{content_type:?}");
        if *status == 415 {
            assert_eq!(
                resp.text().await.unwrap(),
                "POST needs Content-Type: application/x-www-form-urlencoded\n"
            );
        }
    }
    assert_eq!(s.get("/auth/token?service=reg", None).await.status(), 200);
    let put = s.client.put(s.url("/auth")).send().await.unwrap();
    assert_eq!(put.status(), 405);
}

#[tokio::test]
async fn path_prefix_moves_the_endpoint() {
    let yaml = config_yaml("p256", "", DEFAULT_ACL).replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  path_prefix: /regauth/",
    );
    let s = Server::start(&yaml).await;
    assert_eq!(s.get("/regauth/auth?service=reg", None).await.status(), 200);
    assert_eq!(
        s.get("/regauth/auth/token?service=reg", None)
            .await
            .status(),
        200
    );
    assert_eq!(s.get("/auth?service=reg", None).await.status(), 404);
}

#[tokio::test]
async fn every_key_type_signs_tokens_a_jwt_library_verifies() {
    let golden = std::fs::read_to_string(crate::support::fixture("../golden/kids.txt")).unwrap();
    for (key, alg) in [
        ("rsa2048", "RS256"),
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("ed25519", "EdDSA"),
    ] {
        for (kid_mode, column) in [("libtrust", 1), ("thumbprint", 2)] {
            let s = Server::start(&config_yaml(
                key,
                &format!("  kid: {kid_mode}"),
                DEFAULT_ACL,
            ))
            .await;
            let resp = s
                .get(
                    "/auth?service=reg&scope=repository:a/b:pull",
                    Some(("alice", "alice")),
                )
                .await;
            let body: Value = resp.json().await.unwrap();
            let (header, claims) = verify(body["token"].as_str().unwrap(), key, "reg");
            let want_kid = golden
                .lines()
                .find(|l| l.starts_with(&format!("{key}.pem ")))
                .unwrap()
                .split(' ')
                .nth(column)
                .unwrap();
            assert_eq!(format!("{:?}", header.alg), alg);
            assert_eq!(header.kid.as_deref(), Some(want_kid), "{key} {kid_mode}");
            assert_eq!(claims["access"][0]["actions"], json!(["pull"]));
        }
    }
    let s = Server::start(&config_yaml("p256", "  kid: none", DEFAULT_ACL)).await;
    let body: Value = s.get("/auth?service=reg", None).await.json().await.unwrap();
    let (header, _) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(header.kid, None);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_its_kid() {
    let s = Server::start(&config_yaml("p256", "  kid: thumbprint", DEFAULT_ACL)).await;
    let jwks: Value = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    let body: Value = s.get("/auth?service=reg", None).await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(key["kid"].as_str(), header.kid.as_deref());
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    // The published key verifies the token.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["reg"]);
    jsonwebtoken::decode::<Value>(body["token"].as_str().unwrap(), &dk, &v).unwrap();
}

#[tokio::test]
async fn zot_audiences_get_exact_actions_and_the_catalog_entry() {
    let s = Server::start(&config_yaml(
        "p256",
        "  zot_audiences: [zot.local]",
        DEFAULT_ACL,
    ))
    .await;
    let q = "scope=repository:a/b:*&scope=registry:catalog:*";
    let body: Value = s
        .get(
            &format!("/auth?service=zot.local&{q}"),
            Some(("alice", "alice")),
        )
        .await
        .json()
        .await
        .unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "zot.local");
    assert_eq!(
        claims["access"],
        json!([
            {"type": "repository", "name": "a/b", "actions": ["*", "delete", "pull", "push"]},
            {"type": "registry", "name": "catalog", "actions": ["*", "delete", "pull", "push"]},
            {"type": "registry", "name": "", "actions": ["pull"]}
        ])
    );
    // Other audiences are untouched.
    let body: Value = s
        .get(&format!("/auth?service=reg&{q}"), Some(("alice", "alice")))
        .await
        .json()
        .await
        .unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["access"][0]["actions"], json!(["*"]));
    assert_eq!(claims["access"].as_array().unwrap().len(), 2);
}

/// `X-Forwarded-For` sent on two lines is one list (RFC 9110): with
/// `real_ip_pos: -1` the last line's entry, the one a proxy such as
/// HAProxy adds, is the address, not the first line a client forged.
#[tokio::test]
async fn forwarded_for_on_several_lines_is_one_list() {
    let acl = r#"acl:
  - match: {ip: "10.0.0.0/8", name: "internal/*"}
    actions: ["pull"]
    comment: "internal network"
"#;
    let yaml = config_yaml("p256", "", acl).replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: -1",
    );
    let s = Server::start(&yaml).await;
    // (header lines, granted actions)
    let cases: &[(&[&str], Value)] = &[
        (&["10.1.2.3"], json!(["pull"])),
        (&["127.0.0.1, 10.1.2.3"], json!(["pull"])),
        (&["127.0.0.1", "10.1.2.3"], json!(["pull"])),
        (&["10.1.2.3", "127.0.0.1"], json!([])),
        (&["10.1.2.3, 10.9.9.9", "127.0.0.1"], json!([])),
    ];
    for (lines, want) in cases {
        let mut headers = reqwest::header::HeaderMap::new();
        for l in *lines {
            headers.append("x-forwarded-for", l.parse().unwrap());
        }
        let resp = s
            .client
            .get(s.url("/auth?service=reg&scope=repository:internal/app:pull"))
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{lines:?}");
        let body: Value = resp.json().await.unwrap();
        let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
        assert_eq!(access(&claims)[0]["actions"], *want, "{lines:?}");
    }
}
