//! The load benchmark's baseline, its practical ceiling: an axum server that
//! only parses the token request's query and signs an ES256 token with a
//! key parsed once, with the crates regauth uses (axum, tokio, aws-lc-rs,
//! serde_json). No authentication, no ACL, no logging, no metrics: the
//! least any token server must do per request. Like regauth, it writes a
//! busy server's responses in bursts (the yield before the response).
//!
//! Usage: `baseline KEY.pem 127.0.0.1:PORT` (PKCS#8 P-256 key, as written
//! by `regauth keygen --alg ES256`). Runs until killed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

struct Baseline {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// `{"typ":"JWT","alg":"ES256"}`, base64url, encoded once.
    header_b64: String,
}

async fn token(State(st): State<Arc<Baseline>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let (mut service, mut access) = (String::new(), Vec::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "service" => service = v.into_owned(),
            "scope" => {
                for s in v.split(' ').filter(|s| !s.is_empty()) {
                    let (typ, rest) = s.split_once(':').unwrap_or((s, ""));
                    let (name, actions) = rest.rsplit_once(':').unwrap_or((rest, ""));
                    access.push(json!({"type": typ, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}));
                }
            }
            _ => {}
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jti: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let claims = json!({
        "iss": "regauth-bench", "sub": "", "aud": service,
        "exp": now + 900, "nbf": now - 10, "iat": now - 10,
        "jti": jti, "access": access,
    });
    let payload = serde_json::to_vec(&claims).expect("claims serialize");
    let mut jwt = st.header_b64.clone();
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
    let sig = st.key.sign(&st.rng, jwt.as_bytes()).expect("ECDSA signs");
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut jwt);
    let issued_at = time::OffsetDateTime::from_unix_timestamp(now as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    // As regauth's handler does: let the other ready requests be answered
    // first, so the responses are written in bursts (BENCHMARKS.md,
    // "Responses written in bursts"); without it the baseline serves
    // about 0.9 of the requests on the benchmark's VM.
    tokio::task::yield_now().await;
    Json(json!({"token": jwt, "access_token": jwt, "expires_in": 900, "issued_at": issued_at}))
        .into_response()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, key_path, addr] = args.as_slice() else {
        eprintln!("usage: baseline KEY.pem ADDR");
        std::process::exit(2);
    };
    let pem = std::fs::read_to_string(key_path).expect("read the key");
    let der: Vec<u8> = {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("a PEM key")
    };
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .expect("a PKCS#8 P-256 key");
    let header_b64 = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let state = Arc::new(Baseline {
        key,
        rng,
        header_b64,
    });
    let app = Router::new()
        .route("/auth", get(token))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .expect("bind");
            axum::serve(listener, app).await.expect("serve");
        });
}
