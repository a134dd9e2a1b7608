//! docker_auth's own configuration files, in their exact shapes (only file
//! paths differ: tests/fixtures/docker_auth/), load unchanged and serve
//! tokens that verify against the certificate docker_auth would have
//! signed with; its `reference.yml` is refused for the sections regauth does
//! not implement, and for nothing else. Also docker_auth's `server:` keys
//! through the whole server: `hsts` and `real_ip_header`.

use std::path::Path;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use regauth::config::{Config, Listen, SigningPair};
use serde_json::{json, Value};

use crate::slapd::{Slapd, BASE, READER_DN};
use crate::support::{fixture, Server};

const ISSUER: &str = "Acme auth server";
const SERVICE: &str = "Docker registry";

fn text(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("docker_auth/{name}"))).unwrap()
}

/// The public key of the first certificate in `cert` (a PEM file), as
/// jsonwebtoken takes it, and the algorithm that key signs with.
fn certificate_key(cert: &Path) -> (DecodingKey, Algorithm) {
    use der::{Decode, DecodePem};
    let pem = std::fs::read_to_string(cert).unwrap();
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let bits = spki.subject_public_key.raw_bytes();
    match spki.algorithm.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => (DecodingKey::from_rsa_der(bits), Algorithm::RS256),
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().unwrap();
            let curve = der::asn1::ObjectIdentifier::from_der(&der::Encode::to_der(curve).unwrap())
                .unwrap();
            let alg = match curve.to_string().as_str() {
                "1.2.840.10045.3.1.7" => Algorithm::ES256,
                "1.3.132.0.34" => Algorithm::ES384,
                other => panic!("curve {other}"),
            };
            (DecodingKey::from_ec_der(bits), alg)
        }
        other => panic!("key algorithm {other}"),
    }
}

/// Asks for `scope` as `user`, verifies the token against `cert` and
/// returns its `access`.
async fn access(s: &Server, cert: &Path, user: (&str, &str), scope: &str) -> Value {
    let query = format!("/auth?service=Docker%20registry&scope={scope}");
    let resp = s.get(&query, Some(user)).await;
    assert_eq!(resp.status(), 200, "{user:?}");
    let body: Value = resp.json().await.unwrap();
    let (key, alg) = certificate_key(cert);
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[SERVICE]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let token = body["token"].as_str().unwrap();
    let claims = decode::<Value>(token, &key, &v).unwrap().claims;
    assert_eq!(claims["sub"], user.0);
    claims["access"].clone()
}

#[tokio::test]
async fn simple_yml_signs_with_the_server_tls_pair() {
    let yaml = text("simple.yml");
    let c = Config::from_yaml(Path::new("simple.yml"), &yaml).unwrap();
    assert_eq!(c.token.signing_pair, SigningPair::Server);
    assert_eq!(c.server.addr, Listen::Tcp("0.0.0.0:5001".parse().unwrap()));
    assert!(c.server.tls_config.is_some());
    let s = Server::start(&yaml).await;
    let cert = fixture("keys/rsa2048.crt");
    let scope = "repository:foo/bar:push,pull";
    assert_eq!(
        access(&s, &cert, ("admin", "badmin"), scope).await,
        json!([{"type": "repository", "name": "foo/bar", "actions": ["pull", "push"]}])
    );
    assert_eq!(
        access(&s, &cert, ("test", "123"), scope).await,
        json!([{"type": "repository", "name": "foo/bar", "actions": ["pull"]}])
    );
    let resp = s.get("/auth?service=x", Some(("admin", "wrong"))).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn non_tls_yml_signs_with_the_token_pair() {
    let yaml = text("non_tls.yml");
    let c = Config::from_yaml(Path::new("non_tls.yml"), &yaml).unwrap();
    assert_eq!(c.token.signing_pair, SigningPair::Token);
    assert!(c.server.tls.is_none());
    let s = Server::start(&yaml).await;
    let cert = fixture("keys/p256.crt");
    let scope = "repository:foo/bar:pull";
    assert_eq!(
        access(&s, &cert, ("admin", "badmin"), scope).await,
        json!([{"type": "repository", "name": "foo/bar", "actions": ["pull"]}])
    );
    // The ACL names "user", who is not in `users`: test gets nothing.
    assert_eq!(
        access(&s, &cert, ("test", "123"), scope).await,
        json!([{"type": "repository", "name": "foo/bar", "actions": []}])
    );
}

#[test]
fn ldap_auth_yml_loads_without_the_directory() {
    // ldap.example.com is never resolved nor contacted: loading is data.
    let c = Config::from_yaml(Path::new("ldap_auth.yml"), &text("ldap_auth.yml")).unwrap();
    assert_eq!(c.token.signing_pair, SigningPair::Server);
    assert_eq!(c.ldap.as_ref().unwrap().url, "ldaps://ldap.example.com:636");
    assert!(c.users.is_none() && c.htpasswd.is_none());
}

#[tokio::test]
async fn ldap_auth_yml_serves_tokens_from_a_directory() {
    // The same file pointed at the test directory: its address and CA, the
    // service account (docker_auth's file binds anonymously, which the
    // test directory does not allow to search) and its base DN.
    let slapd = Slapd::start();
    let yaml = text("ldap_auth.yml")
        .replace(
            "addr: ldap.example.com:636",
            &format!(
                "addr: {}\n  ca_certificate: {}",
                slapd.tls_addr(),
                slapd.ca().display()
            ),
        )
        .replace("bind_dn:\n", &format!("bind_dn: {READER_DN}\n"))
        .replace(
            "bind_password_file:\n",
            &format!(
                "bind_password_file: {}\n",
                slapd.reader_password_file().display()
            ),
        )
        .replace("base: o=example.com", &format!("base: ou=people,{BASE}"));
    let s = Server::start(&yaml).await;
    let cert = fixture("keys/p256.crt");
    assert_eq!(
        access(
            &s,
            &cert,
            ("alice", "alicepw"),
            "repository:any/thing:push,pull"
        )
        .await,
        json!([{"type": "repository", "name": "any/thing", "actions": ["pull", "push"]}])
    );
    let resp = s.get("/auth?service=x", Some(("alice", "nope"))).await;
    assert_eq!(resp.status(), 401);
}

#[test]
fn reference_yml_is_refused_for_its_unsupported_sections_only() {
    let yaml = text("reference.yml");
    let err = Config::from_yaml(Path::new("reference.yml"), &yaml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("google_auth (line ")
            && err.contains("Google OAuth authentication is not supported by regauth"),
        "{err}"
    );
    for other in [
        "github_auth",
        "mongo_auth",
        "ext_auth",
        "acl_mongo",
        "ext_authz",
        "server.letsencrypt",
    ] {
        assert!(err.contains(other), "{other} in {err}");
    }
    // Without those sections, the rest of the file (every supported key,
    // and docker_auth's newer server keys) loads.
    let unsupported = [
        "google_auth",
        "github_auth",
        "mongo_auth",
        "ext_auth",
        "acl_mongo",
        "ext_authz",
    ];
    let (mut kept, mut skipping, mut in_letsencrypt) = (String::new(), false, false);
    for line in yaml.lines() {
        if !line.starts_with([' ', '#']) && !line.is_empty() {
            skipping = unsupported.contains(&line.split(':').next().unwrap());
        }
        in_letsencrypt =
            line.starts_with("  letsencrypt:") || (in_letsencrypt && line.starts_with("    "));
        if !skipping && !in_letsencrypt {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let kept = kept.replace(
        "  path_prefix: \"\"\n",
        "  path_prefix: \"\"\n  net: tcp\n  hsts: true\n  tls_min_version: TLS12\n  tls_curve_preferences: [X25519, P256]\n  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
    );
    let c = Config::from_yaml(Path::new("reference.yml"), &kept)
        .unwrap_or_else(|e| panic!("{e}\n{kept}"));
    assert_eq!(c.token.signing_pair, SigningPair::Server);
    assert!(c.server.hsts && c.ldap.is_some());
    assert_eq!(c.acl.len(), 16);
}

#[tokio::test]
async fn hsts_adds_strict_transport_security() {
    for (hsts, want) in [("true", Some("max-age=31536000")), ("false", None)] {
        let yaml = text("non_tls.yml").replace(
            "  addr: \":5001\"",
            &format!("  addr: \"127.0.0.1:0\"\n  hsts: {hsts}"),
        );
        let s = Server::start(&yaml).await;
        for path in ["/auth?service=x", "/healthz"] {
            let resp = s.get(path, Some(("admin", "badmin"))).await;
            assert_eq!(resp.status(), 200);
            let got = resp.headers().get("strict-transport-security");
            assert_eq!(got.map(|v| v.to_str().unwrap()), want, "hsts {hsts} {path}");
        }
    }
}

#[tokio::test]
async fn real_ip_header_is_required_and_decides_ip_rules() {
    let yaml = text("non_tls.yml")
        .replace(
            "  addr: \":5001\"",
            "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: -1",
        )
        .replace(
            "acl:\n",
            "acl:\n  - match: {ip: \"10.1.0.0/16\", account: \"test\"}\n    actions: [\"pull\"]\n",
        );
    let s = Server::start(&yaml).await;
    let scope = "/auth?service=Docker%20registry&scope=repository:a/b:pull";
    let ask = |xff: Option<&'static str>| {
        let mut rb = s.client.get(s.url(scope)).basic_auth("test", Some("123"));
        if let Some(v) = xff {
            rb = rb.header("x-forwarded-for", v);
        }
        rb.send()
    };
    // Without the header the request did not come through the proxy: it
    // must not pass as the proxy's (loopback) address.
    let resp = ask(None).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("client address not provided"));
    for (xff, granted) in [
        ("192.0.2.1, 10.1.2.3", true),
        ("10.1.2.3, 192.0.2.1", false),
    ] {
        let resp = ask(Some(xff)).await.unwrap();
        assert_eq!(resp.status(), 200, "{xff}");
        let body: Value = resp.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        let want: &[&str] = if granted { &["pull"] } else { &[] };
        assert_eq!(claims["access"][0]["actions"], json!(want), "{xff}");
    }
}

#[test]
fn check_warns_about_risky_setups_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    // (config text, warnings expected on stderr)
    let cases = [
        (text("simple.yml"), vec![]),
        (
            text("non_tls.yml"),
            vec!["warning: plain HTTP on a network address with password logins"],
        ),
        (
            text("non_tls.yml").replace(":5001", "127.0.0.1:5001"),
            vec![],
        ),
        (
            text("non_tls.yml").replace("expiration: 900", "expiration: 900\n  kid: thumbprint"),
            vec![
                "plain HTTP",
                "warning: token kid thumbprint with an ES256 key: distribution 3.0.x",
            ],
        ),
        (
            text("simple.yml").replace(
                "  # disable_legacy_key_id: true",
                "  disable_legacy_key_id: true",
            ),
            vec![],
        ),
    ];
    for (i, (yaml, want)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.yml"));
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
            .args(["check", "--config", path.to_str().unwrap()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{i}: {stderr}");
        // The risky-setup warnings only: the ACL lints (a user nothing is
        // granted to) have their own tests.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("no ACL entry can grant it anything"))
            .collect();
        assert_eq!(lines.len(), want.len(), "{i}: {stderr}");
        for w in want {
            assert!(stderr.contains(w), "{i}: {w} in {stderr}");
        }
    }
}
