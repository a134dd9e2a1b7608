//! Test harness: write a config, start regauth in-process on 127.0.0.1:0,
//! and decode the tokens it issues with an independent JWT library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use regauth::config::Config;
use regauth::http::app;
use regauth::service::{Generation, TokenService};

pub const ISSUER: &str = "regauth-test";

/// Basic credentials for a request, `None` = anonymous.
pub type User<'a> = Option<(&'a str, &'a str)>;

/// bcrypt at the lowest cost: tests check behaviour, not bcrypt's speed.
pub fn hash(pw: &str) -> String {
    bcrypt::hash(pw, 4).unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `server:` and `token:` sections every test config starts with: port
/// 0, issuer [`ISSUER`], the key fixture `keys/KEY.pem`, then `token_extra`
/// (more `token:` keys, indented).
pub fn server_and_token_yaml(key: &str, token_extra: &str) -> String {
    format!(
        "server:\n  addr: \"127.0.0.1:0\"\ntoken:\n  issuer: \"{ISSUER}\"\n  expiration: 300\n  key: \"{}\"\n{token_extra}\n",
        fixture(&format!("keys/{key}.pem")).display()
    )
}

/// A config with the given key fixture (`keys/NAME.pem`), users
/// alice/alice (admin), bob/bob (pull team/*, label group=team), anonymous,
/// plus `extra` YAML appended at top level.
pub fn config_yaml(key: &str, token_extra: &str, extra: &str) -> String {
    format!(
        r#"{head}users:
  "": {{}}
  alice: {{password: "{alice}"}}
  bob: {{password: "{bob}", labels: {{group: [team, qa]}}}}
{extra}"#,
        head = server_and_token_yaml(key, token_extra),
        alice = hash("alice"),
        bob = hash("bob"),
    )
}

pub const DEFAULT_ACL: &str = r#"acl:
  - match: {account: "alice"}
    actions: ["*"]
    comment: "alice is admin"
  - match: {account: "bob", name: "${labels:group}/*"}
    actions: ["pull"]
    comment: "bob pulls his groups"
  - match: {account: "", name: "public/*"}
    actions: ["pull"]
    comment: "anonymous public pulls"
"#;

/// A reqwest client builder. reqwest's TLS is built without a provider of
/// its own (regauth gives its clients an aws-lc-rs configuration), so a
/// client that does not bring one needs the process default installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

pub struct Server {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: TokenService,
    /// Directory holding `config.yml` (and whatever the test puts there).
    pub dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// Writes `yaml` to a temp dir's `config.yml` (so reload works) and
    /// serves it on 127.0.0.1:0.
    pub async fn start(yaml: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, yaml).await
    }

    pub async fn start_in(dir: tempfile::TempDir, yaml: &str) -> Server {
        let path = dir.path().join("config.yml");
        std::fs::write(&path, yaml).unwrap();
        let config = Config::load(&path).expect("test config is valid");
        let state = TokenService::new(Generation::build(config).expect("test key parses"));
        let app = app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(regauth::server::serve(
            listener,
            app,
            Default::default(),
            async {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            client: client_builder().build().unwrap(),
            state,
            dir,
            _stop: tx,
        }
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// POSTs a form to `/auth`.
    pub async fn post(&self, form: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// GET `path_and_query`, with Basic credentials when `user` is given.
    pub async fn get(&self, path_and_query: &str, user: Option<(&str, &str)>) -> reqwest::Response {
        let mut rb = self.client.get(self.url(path_and_query));
        if let Some((u, p)) = user {
            rb = rb.basic_auth(u, Some(p));
        }
        rb.send().await.unwrap()
    }
}

/// Decodes and verifies a token with `jsonwebtoken` (not regauth's code),
/// checking signature, issuer, audience and expiry.
pub fn verify(token: &str, key: &str, audience: &str) -> (jsonwebtoken::Header, serde_json::Value) {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let header = decode_header(token).unwrap();
    let pem = std::fs::read(fixture(&format!("keys/{key}.pub.pem"))).unwrap();
    let (dk, alg) = match key {
        k if k.starts_with("rsa") => (DecodingKey::from_rsa_pem(&pem).unwrap(), Algorithm::RS256),
        "p256" => (DecodingKey::from_ec_pem(&pem).unwrap(), Algorithm::ES256),
        "p384" => (DecodingKey::from_ec_pem(&pem).unwrap(), Algorithm::ES384),
        "ed25519" => (DecodingKey::from_ed_pem(&pem).unwrap(), Algorithm::EdDSA),
        other => panic!("no verifier for {other}"),
    };
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let data = decode::<serde_json::Value>(token, &dk, &v).unwrap();
    (header, data.claims)
}
