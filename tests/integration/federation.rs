//! Federation against an issuer on 127.0.0.1 run by the test (axum serving
//! a discovery document and a JWK Set; P-256 keys from aws-lc-rs; tokens
//! signed by jsonwebtoken): each way an ID token can be wrong is a 401
//! that grants nothing and whose log line names the failed check; key
//! rotation, a stopped issuer, a never-reachable issuer, the throttle,
//! refresh tokens and the RFC 8693 exchange.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{hash, verify, Server};

const KEY: &str = "p256";
const AUD: &str = "reg.test";

/// A signing key of the test issuer.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    /// The public point, as the PEM an attacker would use as an HMAC secret.
    public_key: Vec<u8>,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        SigningKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            public_key: point.to_vec(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(self.kid.clone());
        encode(&h, claims, &self.encoding).unwrap()
    }
}

/// The test issuer: discovery and JWKS over HTTP on 127.0.0.1.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Issuer {
    async fn start(keys: &[&SigningKey]) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(json!({"keys": []})));
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url, "jwks_uri": format!("{url}/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let (j, f) = (jwks.clone(), fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = j.lock().unwrap().clone();
                    axum::Json(body)
                }),
            );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let issuer = Issuer {
            url,
            jwks,
            fetches,
            stop: Some(tx),
        };
        issuer.publish(keys);
        issuer
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn stop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// GitHub Actions-shaped claims for `iss`.
fn claims(iss: &str) -> Value {
    let t = now();
    json!({
        "iss": iss, "aud": AUD, "sub": "repo:org/app:ref:refs/heads/main",
        "repository": "org/app", "repository_owner_id": "42", "ref": "refs/heads/main",
        "iat": t - 5, "nbf": t - 5, "exp": t + 300,
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

/// Log lines written by this test's thread (the server runs on it too:
/// `#[tokio::test]` is single-threaded).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Takes the lines written so far.
    fn take(&self) -> String {
        let mut v = self.0.lock().unwrap();
        let out = String::from_utf8_lossy(&v).into_owned();
        v.clear();
        out
    }
}

/// A server with user alice (in an htpasswd file), binding `ci` for
/// `issuer` (GitHub-shaped: owner 42, main only), binding `other` for the
/// same issuer and another audience, binding `down` for an issuer that
/// never answers, and `extra` top-level YAML.
async fn server(issuer: &str, extra: &str) -> Server {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{}\n", hash("alice"))).unwrap();
    let yaml = format!(
        r#"{head}htpasswd: {htpasswd:?}
federation:
  - name: ci
    issuer: {issuer}
    audience: {AUD}
    max_age: 600
    require: {{repository_owner_id: "42", ref: "refs/heads/main"}}
    account: "gh:${{claims:repository}}"
    labels: {{repository: "${{claims:repository}}"}}
    session: 3600
  - name: other
    issuer: {issuer}
    audience: other.test
    account: "other:${{claims:sub}}"
  - name: down
    issuer: http://{closed}
    audience: {AUD}
acl:
  - match: {{account: alice}}
    actions: ["*"]
  - match: {{account: "/^gh:/", name: "${{labels:repository}}"}}
    actions: [push, pull]
    comment: CI pushes its own repository
{extra}"#,
        head = crate::support::server_and_token_yaml(KEY, ""),
    );
    Server::start_in(dir, &yaml).await
}

const SCOPE: &str = "scope=repository:org/app:pull,push";

async fn basic(s: &Server, binding: &str, token: &str) -> reqwest::Response {
    s.get(
        &format!("/auth?service={AUD}&{SCOPE}"),
        Some((binding, token)),
    )
    .await
}

/// The `access` of a 200 answer's token.
async fn access(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), KEY, AUD);
    claims["access"].clone()
}

fn pull_push(repo: &str) -> Value {
    json!([{"type": "repository", "name": repo, "actions": ["pull", "push"]}])
}

#[tokio::test]
async fn every_wrong_token_is_a_401_whose_log_names_the_check() {
    let log = Captured::default();
    let _guard = log.install();
    let key = SigningKey::generate("k1");
    let stranger = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    // More refusals than the throttle's default allows one account.
    let s = server(&issuer.url, "throttle: {max_failures_per_account: 0}\n").await;
    let good = claims(&issuer.url);

    assert_eq!(
        access(basic(&s, "ci", &key.sign(&good)).await).await,
        pull_push("org/app")
    );

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "k1"}).to_string()),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        encode(&h, &good, &EncodingKey::from_secret(&key.public_key)).unwrap()
    };
    let tampered = {
        let signed = key.sign(&good);
        let parts: Vec<&str> = signed.split('.').collect();
        let forged = with(good.clone(), "repository", json!("org/victim"));
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged.to_string()),
            parts[2]
        )
    };
    let unknown_kid = {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k-unknown".into());
        encode(&h, &good, &stranger.encoding).unwrap()
    };
    let t = now();
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "wrong iss",
            "ci",
            key.sign(&with(good.clone(), "iss", json!("https://evil.example"))),
            "check=iss",
        ),
        (
            "wrong aud",
            "ci",
            key.sign(&with(good.clone(), "aud", json!("elsewhere"))),
            "check=aud",
        ),
        (
            "expired",
            "ci",
            key.sign(&with(good.clone(), "exp", json!(t - 120))),
            "check=exp",
        ),
        (
            "nbf in the future",
            "ci",
            key.sign(&with(good.clone(), "nbf", json!(t + 600))),
            "check=nbf",
        ),
        (
            "iat older than max_age",
            "ci",
            key.sign(&with(good.clone(), "iat", json!(t - 3600))),
            "check=max_age",
        ),
        ("alg none", "ci", unsigned, "check=alg"),
        ("HS256 under the public key", "ci", hs256, "check=alg"),
        (
            "unknown kid after the refetch",
            "ci",
            unknown_kid,
            "check=kid",
        ),
        ("tampered payload", "ci", tampered, "check=signature"),
        (
            "other owner id",
            "ci",
            key.sign(&with(good.clone(), "repository_owner_id", json!("43"))),
            "check=require",
        ),
        (
            "other ref",
            "ci",
            key.sign(&with(good.clone(), "ref", json!("refs/heads/feature"))),
            "check=require",
        ),
        (
            "token for binding other presented as ci",
            "ci",
            key.sign(&with(good.clone(), "aud", json!("other.test"))),
            "check=aud",
        ),
        (
            "token for ci presented as other",
            "other",
            key.sign(&good),
            "check=aud",
        ),
        ("not a JWT", "ci", "not-a-token".to_owned(), "check=token"),
    ];
    for (name, binding, token, check) in cases {
        log.take();
        let resp = basic(&s, binding, &token).await;
        assert_eq!(resp.status(), 401, "{name}");
        assert!(resp.headers().contains_key("www-authenticate"), "{name}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("token\""), "{name}: {body}");
        let lines = log.take();
        let line = lines
            .lines()
            .find(|l| l.contains("federated login refused"))
            .unwrap_or_else(|| panic!("{name}: no refusal line in {lines}"));
        assert!(
            line.contains(check) && line.contains(&format!("binding={binding}")),
            "{name}: {line}"
        );
        assert!(!lines.contains(&token), "{name}: the token was logged");
    }
    // The unknown kid cost one refetch, no more.
    assert_eq!(issuer.fetches(), 2);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"regauth_federation_logins_total{binding="ci",result="require"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"regauth_federation_logins_total{binding="ci",result="ok"} 1"#),
        "{metrics}"
    );
    // Another repository than the token's: a token, granting nothing.
    let resp = s
        .get(
            &format!("/auth?service={AUD}&scope=repository:org/other:pull,push"),
            Some(("ci", &key.sign(&good))),
        )
        .await;
    assert_eq!(
        access(resp).await,
        json!([{"type": "repository", "name": "org/other", "actions": []}])
    );
    assert!(!log.text().contains(&key.sign(&good)[..40]));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_a_stopped_issuer_keeps_cached_keys_working() {
    let old = SigningKey::generate("2026-old");
    let new = SigningKey::generate("2026-new");
    let mut issuer = Issuer::start(&[&old]).await;
    let s = server(&issuer.url, "").await;
    let good = claims(&issuer.url);
    // The keys are fetched at start, in the background, before any login.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while issuer.fetches() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no JWKS fetch at start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        access(basic(&s, "ci", &old.sign(&good)).await).await,
        pull_push("org/app")
    );
    let before = issuer.fetches();

    issuer.publish(&[&new]);
    assert_eq!(
        access(basic(&s, "ci", &new.sign(&good)).await).await,
        pull_push("org/app")
    );
    assert_eq!(issuer.fetches(), before + 1, "one refetch for the new kid");
    assert_eq!(
        access(basic(&s, "ci", &new.sign(&good)).await).await,
        pull_push("org/app")
    );
    assert_eq!(issuer.fetches(), before + 1, "cached afterwards");

    issuer.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_eq!(
            access(basic(&s, "ci", &new.sign(&good)).await).await,
            pull_push("org/app")
        );
    }
    // A reload while the issuer is down keeps the keys the running
    // generation had.
    regauth::reload::reload(&s.state, None).await.unwrap();
    assert_eq!(
        access(basic(&s, "ci", &new.sign(&good)).await).await,
        pull_push("org/app")
    );
}

#[tokio::test]
async fn a_never_reachable_issuer_makes_only_its_binding_answer_503() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let s = server(&issuer.url, "").await;
    let mut c = claims(&issuer.url);
    // Signed by a key of the test issuer, claiming the unreachable one.
    let down_url = {
        let yaml = std::fs::read_to_string(s.dir.path().join("config.yml")).unwrap();
        let line = yaml
            .lines()
            .find(|l| l.contains("issuer: http://") && !l.contains(&issuer.url))
            .unwrap()
            .to_owned();
        line.split("issuer: ").nth(1).unwrap().to_owned()
    };
    c["iss"] = json!(down_url);
    for _ in 0..2 {
        let resp = basic(&s, "down", &key.sign(&c)).await;
        assert_eq!(resp.status(), 503);
    }
    let alice = s
        .get(
            &format!("/auth?service={AUD}&{SCOPE}"),
            Some(("alice", "alice")),
        )
        .await;
    assert_eq!(alice.status(), 200);
    assert_eq!(
        access(basic(&s, "ci", &key.sign(&claims(&issuer.url))).await).await,
        pull_push("org/app")
    );
    let metrics = s.metrics().await;
    assert!(
        metrics
            .contains(r#"regauth_federation_logins_total{binding="down",result="unavailable"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn failed_federated_logins_are_throttled_like_passwords() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let s = server(&issuer.url, "throttle: {max_failures_per_ip: 3}\n").await;
    let bad = key.sign(&with(claims(&issuer.url), "aud", json!("x")));
    for _ in 0..3 {
        assert_eq!(basic(&s, "ci", &bad).await.status(), 401);
    }
    assert_eq!(basic(&s, "ci", &bad).await.status(), 429);
    // The address is refused for everything, as after wrong passwords.
    assert_eq!(
        basic(&s, "ci", &key.sign(&claims(&issuer.url)))
            .await
            .status(),
        429
    );
}

fn exchange_form(token: &str, token_type: &str) -> String {
    format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token={token}&subject_token_type={token_type}&service={AUD}&scope=repository:org/app:pull,push%20repository:org/other:pull"
    )
}

#[tokio::test]
async fn token_exchange_grants_what_the_acl_grants_the_mapped_account() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let s = server(&issuer.url, "").await;
    let id_token = key.sign(&claims(&issuer.url));
    for token_type in [
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:ietf:params:oauth:token-type:jwt",
    ] {
        let resp = s.post(&exchange_form(&id_token, token_type)).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(body["token_type"], "Bearer");
        let (_, c) = verify(body["access_token"].as_str().unwrap(), KEY, AUD);
        assert_eq!(c["sub"], "gh:org/app");
        assert_eq!(
            c["access"],
            json!([
                {"type": "repository", "name": "org/app", "actions": ["pull", "push"]},
                {"type": "repository", "name": "org/other", "actions": []},
            ])
        );
    }
    // Refused tokens and malformed exchanges.
    let expired = key.sign(&with(claims(&issuer.url), "exp", json!(now() - 600)));
    let id = "urn:ietf:params:oauth:token-type:id_token";
    assert_eq!(s.post(&exchange_form(&expired, id)).await.status(), 401);
    let stranger = key.sign(&with(claims(&issuer.url), "iss", json!("https://nobody")));
    assert_eq!(s.post(&exchange_form(&stranger, id)).await.status(), 401);
    let wrong_type = exchange_form(&id_token, "urn:ietf:params:oauth:token-type:saml2");
    assert_eq!(s.post(&wrong_type).await.status(), 400);
    let no_token = format!("grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token_type={id}&service={AUD}");
    assert_eq!(s.post(&no_token).await.status(), 400);
}

#[tokio::test]
async fn a_federated_refresh_token_lasts_the_session_and_follows_the_binding() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let s = server(&issuer.url, "").await;
    let good = claims(&issuer.url);
    let resp = s
        .get(
            &format!("/auth?service={AUD}&offline_token=true&client_id=docker&account=ci"),
            Some(("ci", &key.sign(&good))),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let rt = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(rt.strip_prefix("rt1.").unwrap().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["exp"], good["iat"].as_u64().unwrap() + 3600);
    assert_eq!(payload["backend"], "federation:ci");
    assert_eq!(payload["account"], "gh:org/app");

    let form = format!("grant_type=refresh_token&refresh_token={rt}&client_id=docker&service={AUD}&scope=repository:org/app:pull,push");
    let resp = s.post(&form).await;
    let body: Value = resp.json().await.unwrap();
    let (_, c) = verify(body["access_token"].as_str().unwrap(), KEY, AUD);
    assert_eq!(c["access"], pull_push("org/app"));
    assert!(body.get("refresh_token").is_none(), "not rotated");
    // The same refresh token again: still good.
    assert_eq!(s.post(&form).await.status(), 200);

    // The OAuth2 form: password grant with the binding as user name and
    // access_type=offline.
    let resp = s
        .post(&format!(
            "grant_type=password&username=ci&password={}&service={AUD}&access_type=offline&scope=repository:org/app:pull",
            key.sign(&good)
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("rt1.")));
    let (_, c) = verify(body["access_token"].as_str().unwrap(), KEY, AUD);
    assert_eq!(c["sub"], "gh:org/app");

    // A binding without session gives none.
    let other = key.sign(&with(good.clone(), "aud", json!("other.test")));
    let resp = s
        .get(
            &format!("/auth?service={AUD}&offline_token=true"),
            Some(("other", &other)),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());

    // Changing the binding's require revokes the session.
    let path = s.dir.path().join("config.yml");
    let yaml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("refs/heads/main\"}", "refs/heads/*\"}");
    std::fs::write(&path, &yaml).unwrap();
    regauth::reload::reload(&s.state, None).await.unwrap();
    assert_eq!(s.post(&form).await.status(), 401);
}

#[test]
fn check_lists_bindings_and_warns_about_unreachable_issuers_and_missing_require() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    let yaml = format!(
        "{head}federation:\n  - name: ci\n    issuer: http://{closed}\n    audience: {AUD}\n    session: 86400\nacl: []\n",
        head = crate::support::server_and_token_yaml(KEY, ""),
    );
    std::fs::write(&path, yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("federation: \"ci\" trusts http://{closed}")),
        "{stdout}"
    );
    for want in [
        "federation \"ci\": no require",
        "federation \"ci\": session is 86400 s",
        "federation \"ci\": session without max_age",
        "federation \"ci\": keys cannot be fetched now",
    ] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}

#[test]
fn a_binding_named_like_a_user_is_a_load_error() {
    let yaml = format!(
        "{head}users:\n  alice: {{password: \"{pw}\"}}\nfederation:\n  - {{name: alice, issuer: \"https://i.example\", audience: a}}\nacl: []\n",
        head = crate::support::server_and_token_yaml(KEY, ""),
        pw = hash("alice"),
    );
    let e = regauth::config::Config::from_yaml(std::path::Path::new("c.yml"), &yaml).unwrap_err();
    assert!(e.to_string().contains("federation[0] (alice).name"), "{e}");
    assert!(e.to_string().contains("also a user"), "{e}");
}
