//! Micro-benchmarks of the per-request path (criterion; `make bench` runs
//! them with a short measurement time): scope parsing, ACL evaluation at
//! 10 / 1,000 / 10,000 entries (indexed and, for reference, the linear
//! scan), signing per algorithm (key parsed once, and `jsonwebtoken::encode`
//! for comparison), the credential-cache hit against one bcrypt
//! verification, the whole in-process `issue_token`, and whole HTTP
//! requests: anonymous, an htpasswd login from the credential cache, and a
//! federated login with an ID token under a binding whose keys are cached.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use regauth::authn::{CredCache, Credentials};
use regauth::config::Config;
use regauth::core::acl::{Acl, MatchSpec, Request, RuleSpec};
use regauth::core::claims::{self, Access, ClaimInput};
use regauth::core::{scope, Labels};
use regauth::metrics::Metrics;
use regauth::secret::Secret;
use regauth::service::{self, Generation, Login, TokenRequest};
use regauth::token::{new_jti, Signer};

/// Counts heap allocations, so `http/` can report allocations per request
/// (a cost a time measurement on a quiet machine understates).
struct Counting;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The password of every benchmark user.
const PASSWORD: &str = "correct horse battery staple";

/// A single-threaded tokio runtime to drive one request at a time.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The ACL sizes the issue asks for.
const ACL_SIZES: [usize; 3] = [10, 1_000, 10_000];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn scopes(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope");
    for (what, s) in [
        ("parse", "repository:team/app:pull,push"),
        (
            "parse_host_port",
            "repository:registry.example.com:5000/team/app:push,pull",
        ),
    ] {
        g.bench_function(what, |b| b.iter(|| scope::parse(black_box(s)).unwrap()));
    }
    let many = "repository:team/app:pull,push repository:team/base:pull registry:catalog:*";
    g.bench_function("parse_all_3", |b| {
        b.iter(|| scope::parse_all([black_box(many)], 64).unwrap())
    });
    g.finish();
}

fn rule(m: MatchSpec, actions: &[&str]) -> RuleSpec {
    RuleSpec {
        matches: m,
        actions: actions.iter().map(|a| a.to_string()).collect(),
        comment: None,
    }
}

/// An organisation's ACL of `n` entries: an admin rule, `n - 3` team rules
/// `{name: teamI/*, labels: {group: teamI}}`, a personal-namespace rule with
/// a placeholder and a public-pull rule.
fn org_acl(n: usize) -> Acl {
    let mut rules = vec![rule(
        MatchSpec {
            account: Some("admin".into()),
            ..MatchSpec::default()
        },
        &["*"],
    )];
    for i in 0..n.saturating_sub(3) {
        rules.push(rule(
            MatchSpec {
                name: Some(format!("team{i}/*")),
                labels: BTreeMap::from([("group".into(), format!("team{i}"))]),
                ..MatchSpec::default()
            },
            &["pull", "push"],
        ));
    }
    rules.push(rule(
        MatchSpec {
            account: Some("/.+/".into()),
            name: Some("${account}/*".into()),
            ..MatchSpec::default()
        },
        &["*"],
    ));
    rules.push(rule(
        MatchSpec {
            name: Some("public/*".into()),
            ..MatchSpec::default()
        },
        &["pull"],
    ));
    Acl::compile(rules).expect("benchmark ACL compiles")
}

fn acl(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl");
    let actions: regauth::core::scope::Actions = ["pull".into(), "push".into()].into();
    for n in ACL_SIZES {
        let acl = org_acl(n);
        // The last team: a scan in order would test (almost) every entry.
        let team = format!("team{}", n - 4);
        let labels: Labels = BTreeMap::from([("group".into(), vec![team.clone()])]);
        let name = format!("{team}/app");
        let hit = Request {
            account: "ci",
            typ: "repository",
            name: &name,
            service: "registry.example.com",
            ip: None,
            labels: &labels,
            actions: &actions,
        };
        assert_eq!(acl.evaluate(&hit).rule, Some(n - 3));
        let miss = Request {
            name: "other/app",
            ..hit
        };
        assert_eq!(acl.evaluate(&miss).rule, None);
        g.bench_with_input(BenchmarkId::new("indexed_last_team", n), &hit, |b, r| {
            b.iter(|| acl.evaluate(black_box(r)))
        });
        g.bench_with_input(BenchmarkId::new("indexed_no_match", n), &miss, |b, r| {
            b.iter(|| acl.evaluate(black_box(r)))
        });
    }
    g.finish();
}

fn sample_claims() -> claims::Claims<'static> {
    claims::build(ClaimInput {
        issuer: "regauth",
        account: "ci",
        audience: "registry.example.com",
        ttl_secs: 900,
        now: 1_700_000_000,
        jti: "0123456789abcdef0123456789abcdef".into(),
        access: vec![Access {
            typ: "repository",
            name: "team/app",
            actions: vec!["pull", "push"],
        }],
    })
}

/// The signer a configuration with `token.key` = fixture `file` gets.
fn signer_for(file: &str) -> Signer {
    let yaml = format!(
        "server: {{addr: \"127.0.0.1:0\"}}\n\
         token: {{issuer: regauth-bench, expiration: 900, key: {key:?}}}\n\
         users: {{\"\": {{}}}}\nacl: []\n",
        key = fixture(file),
    );
    let config = regauth::config::Config::from_yaml(Path::new("bench.yml"), &yaml).unwrap();
    Signer::from_settings(&config.token).unwrap()
}

fn signing(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    let claims = sample_claims();
    for (alg, file) in [
        ("ES256", "p256.pem"),
        ("ES384", "p384.pem"),
        ("ES512", "p521.pem"),
        ("EdDSA", "ed25519.pem"),
        ("RS256", "rsa2048.pem"),
    ] {
        let signer = signer_for(file);
        assert_eq!(signer.alg().as_str(), alg);
        g.bench_function(BenchmarkId::new("parsed_key", alg), |b| {
            b.iter(|| signer.sign(black_box(&claims)))
        });
    }
    // What docker_auth-style code pays: `jsonwebtoken::encode` parses the
    // key on every call.
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let jwt_keys = [
        (
            Algorithm::ES256,
            "p256.pem",
            EncodingKey::from_ec_pem as fn(&[u8]) -> _,
        ),
        (
            Algorithm::RS256,
            "rsa2048.pkcs1.pem",
            EncodingKey::from_rsa_pem,
        ),
    ];
    for (alg, file, load) in jwt_keys {
        let key = load(&std::fs::read(fixture(file)).unwrap()).unwrap();
        let header = Header::new(alg);
        g.bench_function(
            BenchmarkId::new("jsonwebtoken_encode", format!("{alg:?}")),
            |b| b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &key).unwrap()),
        );
    }
    // ring with a key parsed once: the signature alone (the payload is the
    // encoded header and claims of a typical token), to compare with
    // aws-lc-rs, the provider regauth signs with (`parsed_key` above).
    use ring::signature::{self as rs, EcdsaKeyPair, RsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let msg = signer_for("p256.pem").sign(&claims);
    let msg = msg.rsplit_once('.').unwrap().0.as_bytes();
    let der = |file: &str| {
        let pem = std::fs::read_to_string(fixture(file)).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
    };
    let es256 =
        EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &der("p256.pem"), &rng)
            .unwrap();
    g.bench_function(BenchmarkId::new("ring_parsed_key", "ES256"), |b| {
        b.iter(|| es256.sign(&rng, black_box(msg)).unwrap())
    });
    let rs256 = RsaKeyPair::from_pkcs8(&der("rsa2048.pem")).unwrap();
    let mut sig = vec![0; rs256.public().modulus_len()];
    g.bench_function(BenchmarkId::new("ring_parsed_key", "RS256"), |b| {
        b.iter(|| {
            rs256
                .sign(&rs::RSA_PKCS1_SHA256, &rng, black_box(msg), &mut sig)
                .unwrap()
        })
    });
    g.finish();
}

fn authn(c: &mut Criterion) {
    let mut g = c.benchmark_group("authn");
    let cache = CredCache::new(Duration::from_secs(600), 10_000);
    let pw = Secret::new(PASSWORD);
    let now = Instant::now();
    let hit = regauth::authn::cache::Hit {
        backend: "htpasswd",
        labels: Labels::new(),
        account: None,
    };
    cache.put("ci", &pw, hit, now);
    g.bench_function("cache_hit", |b| {
        b.iter(|| cache.get(black_box("ci"), black_box(&pw), now).unwrap())
    });
    // A robot login: SHA-256 of the secret, compared in constant time
    // (never cached: it costs about what a cache hit does).
    let secret = regauth::authn::robots::new_secret();
    let robots = regauth::authn::robots::RobotTable::new([regauth::authn::robots::RobotEntry {
        name: "robot-ci".into(),
        sha256: regauth::authn::robots::sha256(&secret),
        expires: i64::MAX,
        ceiling: Default::default(),
        labels: Labels::new(),
    }]);
    g.bench_function("robot_verify", |b| {
        b.iter(|| {
            assert!(matches!(
                robots.check(black_box("robot-ci"), black_box(&secret), 1_700_000_000),
                regauth::authn::robots::Check::Valid(_)
            ))
        })
    });
    let hash = bcrypt::hash(pw.expose(), 10).unwrap();
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(1));
    g.bench_function("bcrypt_cost10_verify", |b| {
        b.iter(|| assert!(bcrypt::verify(pw.expose(), black_box(&hash)).unwrap()))
    });
    g.finish();
}

/// A configuration like the load benchmark's: anonymous allowed, one
/// htpasswd user (bcrypt cost 10), and the `org_acl` of `acl_size` entries
/// (written as YAML, so it goes through the real loader).
fn runtime(dir: &Path, acl_size: usize, password: &str) -> Generation {
    runtime_with(dir, acl_size, password, "")
}

/// [`runtime`] with `extra` top-level YAML.
fn runtime_with(dir: &Path, acl_size: usize, password: &str, extra: &str) -> Generation {
    let htpasswd = dir.join("htpasswd");
    let hash = bcrypt::hash(password, 10).unwrap();
    std::fs::write(&htpasswd, format!("ci:{hash}\n")).unwrap();
    let acl = org_acl(acl_size);
    let acl_file = dir.join(format!("acl{acl_size}.yml"));
    std::fs::write(&acl_file, serde_yaml::to_string(acl.rules()).unwrap()).unwrap();
    let yaml = format!(
        "server: {{addr: \"127.0.0.1:0\"}}\n\
         token: {{issuer: regauth-bench, expiration: 900, key: {key:?}}}\n\
         users: {{\"\": {{}}}}\n\
         htpasswd: {htpasswd:?}\n\
         acl_file: {acl_file:?}\n{extra}",
        key = fixture("p256.pem"),
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, &yaml).unwrap();
    Generation::build(Config::load(&path).unwrap()).unwrap()
}

fn issue(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let password = PASSWORD;
    let tokio = current_thread();
    let metrics = Metrics::default();
    let now = 1_700_000_000;
    let mut g = c.benchmark_group("issue_token");
    for acl_size in [10, 10_000] {
        let rt = runtime(dir.path(), acl_size, password);
        let team = format!("team{}", acl_size - 4);
        let base = TokenRequest {
            service: "registry.example.com".into(),
            scopes: vec![format!("repository:{team}/app:pull,push")],
            ip: Some([127, 0, 0, 1].into()),
            ..TokenRequest::default()
        };
        let authed = TokenRequest {
            login: Login::Password(Credentials {
                user: "ci".into(),
                password: Secret::new(password),
            }),
            ..base.clone()
        };
        // Warm the credential cache, as the first request of a CI job does.
        let first = tokio
            .block_on(service::issue_token(&rt, &metrics, &authed, now, new_jti()))
            .unwrap();
        assert_eq!(first.account, "ci");
        for (what, req) in [("anonymous", &base), ("htpasswd_cached", &authed)] {
            g.bench_function(BenchmarkId::new(what, format!("acl{acl_size}")), |b| {
                b.iter(|| {
                    tokio
                        .block_on(service::issue_token(&rt, &metrics, req, now, new_jti()))
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

/// The log batch `regauth serve` writes to, into a sink, with audit records
/// going to it as they do in the server (installed once per process).
/// The batch may grow to 64 MiB rather than 1 MiB: a benchmark loop writes
/// far faster than a server and would otherwise fill it and wait for the
/// writer thread's next round.
fn log_sink() -> regauth::logging::BatchWriter {
    static SINK: std::sync::OnceLock<regauth::logging::BatchWriter> = std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let (log, flush) = regauth::logging::batch_writer(
            std::io::sink(),
            regauth::logging::FLUSH_DELAY,
            64 << 20,
        )
        .unwrap();
        std::mem::forget(flush); // the writer thread lives as long as the bench
        regauth::logging::record::install(log.clone(), false);
        log
    })
    .clone()
}

/// One audit record (the line every token request writes), as the server
/// writes it: built directly into the log batch.
fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let password = PASSWORD;
    let tokio = current_thread();
    let metrics = Metrics::default();
    let rt = runtime(dir.path(), 10, password);
    let req = TokenRequest {
        service: "registry.example.com".into(),
        scopes: vec!["repository:team6/app:pull,push".into()],
        login: Login::Password(Credentials {
            user: "ci".into(),
            password: Secret::new(password),
        }),
        ip: Some([127, 0, 0, 1].into()),
        ..TokenRequest::default()
    };
    let result = tokio.block_on(service::issue_token(
        &rt,
        &metrics,
        &req,
        1_700_000_000,
        new_jti(),
    ));
    assert!(result.is_ok());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(log_sink())
        .finish();
    let ip = [127, 0, 0, 1].into();
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("audit/record", |b| {
            b.iter(|| {
                regauth::service::audit::record(
                    &rt,
                    &req,
                    ip,
                    regauth::service::Method::Get,
                    false,
                    black_box(&result),
                )
            })
        });
    });
}

/// A whole token request through the HTTP application (limits, router,
/// handler, audit line into a sink, JSON answer), without the network:
/// what regauth adds to the signature, per request.
/// A federation binding `github` whose issuer's key (ES256, generated
/// here) is in a `jwks_file`, so the keys are cached from the start and
/// nothing is fetched; and a GitHub-shaped ID token it accepts for ten
/// years, mapped to the account `ci`. (GitHub signs RS256, whose
/// verification costs less than ES256's: this figure is the dearer one.)
fn federation(dir: &Path) -> (String, String) {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = dir.join("jwks.json");
    let set = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "bench", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    }]});
    std::fs::write(&jwks, set.to_string()).unwrap();
    let yaml = format!(
        "federation:\n  - {{name: github, issuer: \"https://token.actions.githubusercontent.com\", \
         audience: registry.example.com, jwks_file: {jwks:?}, max_age: 315360000, \
         require: {{repository_owner_id: \"42\", ref: refs/heads/main}}, account: ci, \
         labels: {{repository: \"${{claims:repository}}\"}}}}\n"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "https://token.actions.githubusercontent.com", "aud": "registry.example.com",
        "sub": "repo:org/app:ref:refs/heads/main", "repository": "org/app",
        "repository_owner_id": "42", "ref": "refs/heads/main",
        "iat": now, "nbf": now, "exp": now + 315_360_000,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    (yaml, token)
}

/// One GET of `uri` through a clone of `svc` from `peer`, answered 200;
/// the body.
fn get<S>(
    rt: &tokio::runtime::Runtime,
    svc: &S,
    peer: std::net::SocketAddr,
    uri: &str,
    auth: Option<&str>,
) -> axum::body::Bytes
where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    use tower::ServiceExt;
    let mut req = axum::http::Request::get(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let mut req = req.body(axum::body::Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    rt.block_on(async {
        let resp = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap()
    })
}

fn http(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let password = PASSWORD;
    let tokio = current_thread();
    let (federation_yaml, id_token) = federation(dir.path());
    let app = regauth::http::app(regauth::service::TokenService::new(runtime_with(
        dir.path(),
        10,
        password,
        &federation_yaml,
    )));
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 40000).into();
    let basic = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("ci:{password}"))
        )
    };
    let call = |uri: &str, auth: Option<&str>| get(&tokio, &app, peer, uri, auth);
    let anonymous = "/auth?service=registry.example.com&scope=repository:public/app:pull";
    let cached = "/auth?service=registry.example.com&scope=repository:team6/app:pull,push";
    let federated = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("github:{id_token}"))
        )
    };
    call(cached, Some(&basic)); // fills the credential cache
    let log = log_sink();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(log)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for (what, uri, auth) in [
            ("anonymous", anonymous, None),
            ("htpasswd_cached", cached, Some(basic.as_str())),
            ("federated_cached_keys", cached, Some(federated.as_str())),
        ] {
            let before = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
            for _ in 0..100 {
                call(uri, auth);
            }
            let n = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
            println!("http/{what}: {} heap allocations per request", n / 100);
        }
        let mut g = c.benchmark_group("http");
        g.bench_function("anonymous", |b| b.iter(|| call(anonymous, None)));
        g.bench_function("htpasswd_cached", |b| b.iter(|| call(cached, Some(&basic))));
        // An ID token under a binding whose keys are cached: the ES256
        // verification and the claim checks are the difference.
        g.bench_function("federated_cached_keys", |b| {
            b.iter(|| call(cached, Some(&federated)))
        });
        g.finish();
        // The crate alternative to `http::limits`: tower's concurrency
        // limit, tower-http's timeout and a size check as a `map_request`
        // layer, stacked on the same application. The difference between
        // the two figures is what the layers add per request (a clone and a
        // future each); tower has no per-client limit, so a full
        // replacement would add one more layer of its own.
        let layered = tower::ServiceBuilder::new()
            .layer(tower::limit::ConcurrencyLimitLayer::new(512))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ))
            .map_request(|req: axum::http::Request<axum::body::Body>| {
                let long = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len()) > 32 * 1024;
                black_box(long);
                req
            })
            .service(app.clone());

        let mut g = c.benchmark_group("alternatives");
        g.bench_function("limits/anonymous_hand_written", |b| {
            b.iter(|| call(anonymous, None))
        });
        g.bench_function("limits/anonymous_plus_tower_layers", |b| {
            b.iter(|| get(&tokio, &layered, peer, anonymous, None))
        });
        g.finish();
    });
}

/// The hand-written logging and body parts against their crate
/// alternatives, measured in the same run (BENCHMARKS.md): the audit line
/// as `Record` and as a `tracing` event through `tracing_subscriber`'s
/// formatters (text and JSON), the log batch against `tracing-appender`'s
/// non-blocking writer, the token body written by hand and by
/// `serde_json`.
fn alternatives(c: &mut Criterion) {
    use std::io::Write as _;
    let mut g = c.benchmark_group("alternatives");
    let requested = vec!["repository:team6/app:pull,push".to_string()];
    let grants = [("repository", "team6/app", ["pull", "push"], 3usize)];
    let ip: std::net::IpAddr = [127, 0, 0, 1].into();
    // The audit line as an ordinary event, with the fields `Record` writes.
    let event = || {
        let granted: Vec<String> = grants
            .iter()
            .map(|(t, n, a, i)| format!("{t}:{n}:[{}] by acl[{i}]", a.join(",")))
            .collect();
        tracing::info!(
            target: "regauth::audit",
            outcome = "issued",
            method = "GET",
            grant = "password",
            client_id = "",
            ip = %ip,
            account = "ci",
            backend = "htpasswd",
            service = "registry.example.com",
            audience = "registry.example.com",
            requested = ?requested,
            granted = ?granted,
            offline_requested = false,
            refresh_token_issued = false,
        );
    };
    let record = || {
        use std::fmt::Write as _;
        let Some(mut r) = regauth::logging::record::Record::audit() else {
            return;
        };
        r.str("outcome", "issued")
            .str("method", "GET")
            .str("grant", "password")
            .str("client_id", "")
            .unquoted("ip", ip)
            .str("account", "ci")
            .str("backend", "htpasswd")
            .str("service", "registry.example.com")
            .str("audience", "registry.example.com")
            .list("requested", &requested, |s, w| w.write_str(s))
            .list("granted", &grants, |(t, n, a, i), w| {
                write!(w, "{t}:{n}:[{}] by acl[{i}]", a.join(","))
            })
            .bool("offline_requested", false)
            .bool("refresh_token_issued", false);
        r.emit();
    };
    let log = log_sink();
    let filter = || tracing_subscriber::EnvFilter::new("info");
    // Formatters, into the log writer.
    let full = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    tracing::subscriber::with_default(full, || {
        g.bench_function("text_line/tracing_subscriber_full", |b| b.iter(event));
        g.bench_function("audit_line/record", |b| b.iter(record));
    });
    let json = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .with_writer(log.clone())
        .json()
        .finish();
    tracing::subscriber::with_default(json, || {
        g.bench_function("json_line/tracing_subscriber_json", |b| b.iter(event));
    });
    // The writers: one 300-byte line, back to back (so that
    // tracing-appender's thread is rarely asleep when a line comes).
    let line = [b'x'; 299]
        .iter()
        .chain(b"\n")
        .copied()
        .collect::<Vec<u8>>();
    let (mut appender, _appender_guard) =
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::new(std::io::sink()));
    g.bench_function("write_line/tracing_appender_lossless", |b| {
        b.iter(|| appender.write_all(black_box(&line)).unwrap())
    });
    g.bench_function("write_line/batch", |b| {
        b.iter(|| (&log).write_all(black_box(&line)).unwrap())
    });
    // Paced as requests come: 20 µs of other work (not timed) before each
    // line, long enough for tracing-appender's thread to fall asleep.
    let paced = |write: &mut dyn FnMut(), iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let until = Instant::now() + Duration::from_micros(20);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            write();
            total += start.elapsed();
        }
        total
    };
    g.bench_function("write_line_paced/tracing_appender_lossless", |b| {
        b.iter_custom(|iters| paced(&mut || appender.write_all(black_box(&line)).unwrap(), iters))
    });
    g.bench_function("write_line_paced/batch", |b| {
        b.iter_custom(|iters| paced(&mut || (&log).write_all(black_box(&line)).unwrap(), iters))
    });
    // The token body.
    #[derive(serde::Serialize)]
    struct Body<'a> {
        token: &'a str,
        access_token: &'a str,
        expires_in: u64,
        #[serde(serialize_with = "rfc3339")]
        issued_at: time::OffsetDateTime,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
    }
    fn rfc3339<S: serde::Serializer>(t: &time::OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = t
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
    let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQ0Q6RUZHSCIsInR5cCI6IkpXVCJ9.".repeat(8);
    let at = time::OffsetDateTime::from_unix_timestamp(1_795_455_792).unwrap();
    g.bench_function("token_body/serde_json", |b| {
        b.iter(|| {
            let t: &str = black_box(&token);
            let mut out = Vec::with_capacity(2 * t.len() + 128);
            let body = Body {
                token: t,
                access_token: t,
                expires_in: 300,
                issued_at: at,
                refresh_token: None,
            };
            serde_json::to_writer(&mut out, &body).unwrap();
            out
        })
    });
    g.bench_function("token_body/hand_written", |b| {
        b.iter(|| {
            use std::fmt::Write as _;
            let t: &str = black_box(&token);
            let mut out = String::with_capacity(2 * t.len() + 128);
            out.push_str("{\"token\":\"");
            out.push_str(t);
            out.push_str("\",\"access_token\":\"");
            out.push_str(t);
            out.push_str("\",\"expires_in\":");
            let _ = write!(out, "{}", 300);
            out.push_str(",\"issued_at\":\"");
            let _ = regauth::logging::record::write_rfc3339(&mut out, at, false);
            out.push_str("\"}");
            out.into_bytes()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = scopes, acl, signing, authn, issue, audit, http, alternatives
}
criterion_main!(benches);
