//! Key rotation: published keys (served and bundled, never signing),
//! certificate chains made by `keygen --ca` / `--signed-by` and carried in
//! `x5c`, chain errors, a leaf swapped by reload, and the expiry warning
//! and metrics.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{config_yaml, fixture, verify, Server, DEFAULT_ACL};

fn regauth(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = regauth(dir, args);
    assert!(success, "regauth {args:?}: {out}{err}");
    out + &err
}

async fn jwks(s: &Server) -> Value {
    s.client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn token(s: &Server) -> String {
    let body: Value = s.get("/auth?service=reg", None).await.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn published_keys_are_served_and_bundled_but_never_sign() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["keygen", "--out", "next", "--alg", "ES384"]);
    let next_cert = dir.path().join("next/token.pem");
    let extra = format!(
        "  certificate: \"{}\"\n  publish:\n    - \"{}\"\n    - \"{}\"",
        fixture("keys/p256.crt").display(),
        next_cert.display(),
        fixture("keys/ed25519.pub.pem").display()
    );
    let yaml = config_yaml("p256", &extra, DEFAULT_ACL);
    let s = Server::start_in(dir, &yaml).await;
    let set = jwks(&s).await;
    let kids = kids(&set);
    assert_eq!(kids.len(), 3, "{set}");
    let algs: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["ES256", "ES384", "EdDSA"]);
    // Tokens are signed by the signing key only, whatever the JWKS holds.
    for _ in 0..5 {
        let (header, _) = verify(&token(&s).await, "p256", "reg");
        assert_eq!(header.kid.as_deref(), Some(kids[0].as_str()));
    }
    let metrics = s.metrics().await;
    for (kid, role) in [
        (&kids[0], "signing"),
        (&kids[1], "published"),
        (&kids[2], "published"),
    ] {
        let want = format!("regauth_token_keys{{kid=\"{kid}\",role=\"{role}\"");
        assert!(metrics.contains(&want), "{want} in {metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "regauth_signing_certificate_expiry_seconds{{kid=\"{}\"}}",
            kids[0]
        )),
        "{metrics}"
    );

    // The bundle: jwks.json holds all three, token.pem the two
    // certificates; the bare public key is named on stderr.
    let d = s.dir.path();
    let (success, out, err) = regauth(
        d,
        &[
            "registry-config",
            "--config",
            "config.yml",
            "--service",
            "reg",
            "--out",
            "bundle",
        ],
    );
    assert!(success, "{out}{err}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bundle/jwks.json")).unwrap())
            .unwrap();
    assert_eq!(written, set);
    let pem = std::fs::read_to_string(d.join("bundle/token.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "{pem}");
    assert!(pem.contains(std::fs::read_to_string(&next_cert).unwrap().trim()));
    assert!(
        err.contains("ed25519.pub.pem is a bare public key"),
        "{err}"
    );
    // check names each key and its role.
    let shown = ok(d, &["check", "--config", "config.yml"]);
    assert!(
        shown.contains(&format!("key:        signing kid {}, ES256", kids[0])),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "key:        published kid {}, ES384, certificate expires",
            kids[1]
        )),
        "{shown}"
    );
}

#[test]
fn publishing_the_signing_key_itself_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml = config_yaml(
        "p256",
        &format!(
            "  publish: [\"{}\"]",
            fixture("keys/p256.pub.pem").display()
        ),
        DEFAULT_ACL,
    );
    std::fs::write(d.join("c.yml"), yaml).unwrap();
    let out = ok(d, &["check", "--config", "c.yml"]);
    assert!(
        out.contains("warning: token.publish: ")
            && out.contains("p256.pub.pem holds the signing key itself"),
        "{out}"
    );
}

#[test]
fn publish_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("junk.pem"), "not pem").unwrap();
    // (publish entry, expected in the error)
    let cases = [
        (fixture("keys/p384.pem"), "token.publish[0] ("),
        (
            d.join("junk.pem"),
            "junk.pem): not a PEM file: no CERTIFICATE or PUBLIC KEY block",
        ),
        (d.join("missing.pem"), "token.publish[0]: cannot read"),
    ];
    for (file, want) in cases {
        let yaml = config_yaml(
            "p256",
            &format!("  publish: [\"{}\"]", file.display()),
            DEFAULT_ACL,
        );
        std::fs::write(d.join("c.yml"), yaml).unwrap();
        let (success, out, err) = regauth(d, &["check", "--config", "c.yml"]);
        assert!(!success, "{file:?}: {out}");
        assert!(err.contains(want), "{file:?}: {err}");
    }
}

/// A CA, a leaf it signs valid `days`, and a config signing with the leaf
/// and its chain in `x5c`.
fn ca_and_leaf(d: &Path, days: &str) -> String {
    ok(d, &["keygen", "--ca", "--out", "ca"]);
    ok(
        d,
        &[
            "keygen",
            "--out",
            "certs",
            "--signed-by",
            "ca",
            "--days",
            days,
        ],
    );
    let yaml = format!(
        "server: {{addr: \"127.0.0.1:0\"}}\ntoken:\n  issuer: regauth-test\n  expiration: 300\n  key: \"{d}/certs/token.key\"\n  certificate: \"{d}/certs/token.pem\"\n  x5c: true\nusers: {{\"\": {{}}}}\nacl: [{{match: {{account: \"\"}}, actions: [pull]}}]\n",
        d = d.display()
    );
    std::fs::write(d.join("config.yml"), &yaml).unwrap();
    yaml
}

fn x5c(token: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let header = jsonwebtoken::decode_header(token).unwrap();
    header
        .x5c
        .unwrap()
        .iter()
        .map(|c| base64::engine::general_purpose::STANDARD.decode(c).unwrap())
        .collect()
}

fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    pem.split("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| {
            use base64::Engine;
            let body: String = b
                .lines()
                .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn keygen_ca_and_signed_by_make_a_chain_the_header_carries_and_a_reload_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let yaml = ca_and_leaf(&d, "5");
    let chain = std::fs::read_to_string(d.join("certs/token.pem")).unwrap();
    let ca = std::fs::read_to_string(d.join("ca/ca.pem")).unwrap();
    assert_eq!(pem_ders(&chain).len(), 2);
    assert_eq!(pem_ders(&chain)[1], pem_ders(&ca)[0]);

    // Within 14 days of expiry: check warns, and says when.
    let shown = ok(&d, &["check", "--config", "config.yml"]);
    assert!(
        shown.contains("warning: token.certificate: the signing certificate expires in 4 days")
            || shown
                .contains("warning: token.certificate: the signing certificate expires in 5 days"),
        "{shown}"
    );
    assert!(shown.contains("key:        signing kid "), "{shown}");

    let s = Server::start_in(dir, &yaml).await;
    let first = token(&s).await;
    assert_eq!(
        x5c(&first),
        pem_ders(&chain),
        "x5c is the chain, leaf first"
    );
    let metrics = s.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("regauth_signing_certificate_expiry_seconds{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let secs: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((4 * 86_400..=5 * 86_400 + 60).contains(&secs), "{line}");

    // A new leaf from the same CA: reloaded, the header carries it, the
    // CA stays the same.
    ok(
        &d,
        &[
            "keygen",
            "--out",
            "certs",
            "--signed-by",
            "ca",
            "--days",
            "90",
            "--force",
        ],
    );
    regauth::reload::reload(&s.state, None).await.unwrap();
    let second = token(&s).await;
    let (a, b) = (x5c(&first), x5c(&second));
    assert_ne!(a[0], b[0]);
    assert_eq!(a[1], b[1]);
    assert!(!s.metrics().await.contains(&line.to_string()));
}

#[test]
fn broken_chains_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_and_leaf(d, "30");
    ok(d, &["keygen", "--ca", "--out", "other"]);
    let leaf_and_ca = std::fs::read_to_string(d.join("certs/token.pem")).unwrap();
    let ders = leaf_and_ca
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect::<Vec<_>>();
    let other = std::fs::read_to_string(d.join("other/ca.pem")).unwrap();
    // (certificate file contents, expected in the error)
    let cases = [
        (
            format!("{}{}", ders[1], ders[0]),
            "token.certificate (",
        ),
        (
            format!("{}{}", ders[1], ders[0]),
            "certificate does not hold the public key of the signing key",
        ),
        (
            format!("{}{other}", ders[0]),
            "certificate 1 (CN=regauth token signer) is not issued by certificate 2 (CN=regauth token CA): the signature does not verify",
        ),
        (
            std::fs::read_to_string(fixture("keys/p256.crt")).unwrap(),
            "certificate does not hold the public key",
        ),
    ];
    for (pem, want) in cases {
        std::fs::write(d.join("certs/token.pem"), &pem).unwrap();
        let (success, out, err) = regauth(d, &["check", "--config", "config.yml"]);
        assert!(!success, "{out}");
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn signed_by_without_a_ca_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let (success, _, err) = regauth(dir.path(), &["keygen", "--out", "c", "--signed-by", "nope"]);
    assert!(!success);
    assert!(err.contains("regauth keygen --ca --out nope"), "{err}");
}

#[tokio::test]
async fn a_published_file_is_watched_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    ok(&d, &["keygen", "--out", "a"]);
    ok(&d, &["keygen", "--out", "b"]);
    std::fs::copy(d.join("a/token.pem"), d.join("next.pem")).unwrap();
    let extra = format!("  publish: [\"{}\"]", d.join("next.pem").display());
    let s = Server::start_in(dir, &config_yaml("p256", &extra, DEFAULT_ACL)).await;
    let before = kids(&jwks(&s).await);
    assert_eq!(before.len(), 2);
    let watcher = tokio::spawn(regauth::reload::watch(
        s.state.clone(),
        std::time::Duration::from_millis(250),
        None,
    ));
    // The watcher takes its first look before the file changes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Replaced the way an operator should: beside, then renamed over.
    std::fs::copy(d.join("b/token.pem"), d.join("next.pem.tmp")).unwrap();
    std::fs::rename(d.join("next.pem.tmp"), d.join("next.pem")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = kids(&jwks(&s).await);
        if now[1] != before[1] {
            assert_eq!(now[0], before[0], "the signing key stays");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    watcher.abort();
}
