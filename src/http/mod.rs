//! HTTP: the router, shared state and thin handlers. Handlers only
//! translate between HTTP and [`crate::service`].

pub mod audit;
mod body;
pub mod client_ip;
pub mod error;
pub mod limits;
pub mod params;
pub mod throttle;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;

use crate::authn::Credentials;
use crate::metrics::{Metrics, Outcome};
use crate::service::{self, Issued, Login, Runtime, TokenRequest};
pub use error::ApiError;
use params::Params;

/// Shared state: the current configuration generation, swapped whole on
/// reload, the process's metrics, and the failed-login counts (kept across
/// reloads).
#[derive(Clone)]
pub struct AppState {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<throttle::Throttle>,
}

impl AppState {
    pub fn new(runtime: Runtime) -> AppState {
        AppState {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            metrics: Arc::new(Metrics::default()),
            throttle: Arc::new(throttle::Throttle::new()),
        }
    }
}

/// The whole HTTP application: [`router`] inside [`limits::around`].
pub type App = limits::Limits<tower_http::sensitive_headers::SetSensitiveRequestHeaders<Router>>;

/// Builds the application for `state`: the routes, with the request
/// limits around them.
pub fn app(state: AppState) -> App {
    limits::around(router(state))
}

/// The routes, under the configured `server.path_prefix` (read once:
/// changing it needs a restart). No limits: see [`app`].
pub fn router(state: AppState) -> Router {
    let prefix = state.runtime.load().config.server.path_prefix.clone();
    let token = get(token_get).post(token_post);
    Router::new()
        .route(&format!("{prefix}/auth"), token.clone())
        .route(&format!("{prefix}/auth/token"), token)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            not_found(method, uri, prefix.clone())
        })
        .with_state(state)
}

/// Any other path: 404, and a warning naming the path (never the query,
/// which may hold a refresh token) and where the token endpoint is. A
/// registry whose `auth.token.realm` points at a wrong path shows its
/// clients only "404" or "authentication required"; this line is where
/// the operator finds why.
async fn not_found(method: axum::http::Method, uri: axum::http::Uri, prefix: String) -> StatusCode {
    let path: String = uri.path().chars().take(200).collect();
    tracing::warn!(
        "no endpoint at {method} {path:?}: the token endpoint is {prefix}/auth (and {prefix}/auth/token); check the registry's auth.token.realm"
    );
    StatusCode::NOT_FOUND
}

// Handlers take the request itself rather than the `HeaderMap` extractor,
// which would copy every header on each request. Everything up to the one
// await (reading the request, the client's address, the throttle) is done
// synchronously by `prepare`, so the future that waits holds only the
// finished `TokenRequest`: a request's future is allocated and copied on
// every request, and each byte of it counts.
fn token_get(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> impl std::future::Future<Output = Response> {
    let start = Instant::now();
    let rt = st.runtime.load_full();
    let headers = req.headers();
    let query = req.uri().query().unwrap_or_default();
    let asked = read_get(query, headers);
    let prepared = asked.and_then(|asked| prepare(&rt, &st, peer, headers, asked));
    finish(st, rt, prepared, start)
}

fn read_get(query: &str, headers: &HeaderMap) -> Result<Asked, ApiError> {
    let params = params::parse(query.as_bytes()).map_err(bad)?;
    let login = match basic(headers)? {
        Some(c) => Login::Password(c),
        None => Login::Anonymous,
    };
    let offline = params.offline_token;
    Ok(Asked {
        params,
        login,
        offline,
        method: throttle::Method::Get,
    })
}

async fn token_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    let start = Instant::now();
    let rt = st.runtime.load_full();
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limits::MAX_BODY);
    let body = match tokio::time::timeout(limits::BODY_READ_TIMEOUT, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return body_error(&e),
        Err(_) => {
            return limits::refuse(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request body not received within {} s",
                    limits::BODY_READ_TIMEOUT.as_secs()
                ),
            )
        }
    };
    let prepared =
        read_post(&body).and_then(|asked| prepare(&rt, &st, peer, &parts.headers, asked));
    drop((parts, body));
    finish(st, rt, prepared, start).await
}

fn read_post(body: &[u8]) -> Result<Asked, ApiError> {
    let params = params::parse(body).map_err(bad)?;
    let login = match params.grant_type.as_deref() {
        Some("password") => match (params.username.clone(), params.password.clone()) {
            (Some(user), Some(password)) => Login::Password(Credentials { user, password }),
            _ => {
                return Err(bad_request(
                    "grant_type=password needs username and password",
                ))
            }
        },
        Some("refresh_token") => match params.refresh_token.clone() {
            Some(t) => Login::Refresh(t),
            None => return Err(bad_request("grant_type=refresh_token needs refresh_token")),
        },
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            return Err(ApiError::BadRequest(format!(
                "unsupported grant_type {shown:?}"
            )));
        }
        None => return Err(bad_request("missing grant_type")),
    };
    let offline = params.access_type.as_deref() == Some("offline") || params.offline_token;
    Ok(Asked {
        params,
        login,
        offline,
        method: throttle::Method::Post,
    })
}

/// 413 when the body is over [`limits::MAX_BODY`], 400 when it could not be
/// read.
fn body_error(e: &axum::Error) -> Response {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return limits::refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body too large (limit {} bytes)", limits::MAX_BODY),
            );
        }
        source = err.source();
    }
    limits::refuse(StatusCode::BAD_REQUEST, "cannot read the request body")
}

fn bad(e: params::ParamError) -> ApiError {
    ApiError::BadRequest(e.0)
}

fn bad_request(m: &str) -> ApiError {
    ApiError::BadRequest(m.to_owned())
}

fn basic(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    params::basic_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())).map_err(bad)
}

/// What the client sent, read out of the request by its method's handler.
struct Asked {
    params: Params,
    login: Login,
    /// A refresh token was asked for.
    offline: bool,
    method: throttle::Method,
}

/// A request ready for the service: who asks, from where, admitted by the
/// brute-force [`throttle`].
struct Prepared {
    req: TokenRequest,
    ip: IpAddr,
    method: throttle::Method,
    /// How a failure is counted; `None` when nothing is guessed.
    attempt: Option<throttle::Attempt>,
}

/// The common, synchronous part of both methods: the client's address,
/// the [`TokenRequest`], the throttle's admission.
fn prepare(
    rt: &Runtime,
    st: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    asked: Asked,
) -> Result<Prepared, ApiError> {
    let server = &rt.config.server;
    let header = server
        .real_ip_header
        .as_deref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok());
    let ip = client_ip::client_ip(
        peer,
        header,
        server.real_ip_header.is_some(),
        server.real_ip_pos,
    )
    .map_err(bad_request)?;
    let Asked {
        params,
        login,
        offline,
        method,
    } = asked;
    let attempt = match throttle::guess(&login) {
        Some(creds) => Some(
            st.throttle
                .admit(&rt.config.throttle, ip, creds, method, &st.metrics)
                .map_err(|r| ApiError::TooManyFailures {
                    retry_after: r.retry_after,
                })?,
        ),
        None => None,
    };
    let req = TokenRequest {
        service: params.service.unwrap_or_default(),
        scopes: params.scopes,
        account: params.account,
        login,
        ip: Some(ip),
        offline,
        client_id: params.client_id,
    };
    Ok(Prepared {
        req,
        ip,
        method,
        attempt,
    })
}

/// The token, the audit line, the failure count, the response.
async fn finish(
    st: AppState,
    rt: Arc<Runtime>,
    prepared: Result<Prepared, ApiError>,
    start: Instant,
) -> Response {
    // `ref`: the request stays where it is rather than being copied into
    // `issue`'s future.
    let result = match prepared {
        Ok(ref p) => issue(&rt, &st, p).await,
        Err(e) => Err(e),
    };
    respond(result, &st.metrics, start)
}

/// The service's answer to a prepared request, its audit line, and a
/// failed login counted by the throttle.
async fn issue(rt: &Runtime, st: &AppState, p: &Prepared) -> Result<Issued, ApiError> {
    let (req, ip, method) = (&p.req, p.ip, p.method);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = service::issue_token(rt, &st.metrics, req, now, crate::token::new_jti()).await;
    let retry = p.attempt == Some(throttle::Attempt::Retry);
    audit::record(rt, req, ip, method, retry, &result);
    if let (Err(service::ServiceError::Unauthorized), Some(attempt), Some(creds)) =
        (&result, p.attempt, throttle::guess(&req.login))
    {
        st.throttle
            .record_failure(&rt.config.throttle, ip, creds, attempt);
    }
    result.map_err(|e| ApiError::from_service(e, &rt.config.token.issuer))
}

fn outcome(result: &Result<Issued, ApiError>) -> Outcome {
    match result {
        Ok(issued) => {
            let (n, full, partial) = issued.authorization.summary();
            if full == n {
                Outcome::Granted
            } else if full > 0 || partial > 0 {
                Outcome::Partial
            } else {
                Outcome::Denied
            }
        }
        Err(ApiError::BadRequest(_)) => Outcome::BadRequest,
        Err(ApiError::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(ApiError::Unavailable) => Outcome::BackendError,
        Err(ApiError::Busy | ApiError::TooManyFailures { .. }) => Outcome::Throttled,
    }
}

fn respond(result: Result<Issued, ApiError>, metrics: &Metrics, start: Instant) -> Response {
    metrics.request(outcome(&result), start.elapsed().as_secs_f64());
    match result {
        Ok(issued) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body::token_json(&issued),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The public signing key as a JWK Set, with the `kid` tokens carry.
async fn jwks(State(st): State<AppState>) -> Response {
    let rt = st.runtime.load_full();
    Json(rt.config.signer.jwks()).into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Ready when a configuration is loaded and every backend that can be
/// down (LDAP) answers.
async fn readyz(State(st): State<AppState>) -> Response {
    let rt = st.runtime.load_full();
    match rt.authn.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(%e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
    }
}
