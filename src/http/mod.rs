//! HTTP: the router and thin handlers. A handler maps a request to a
//! [`TokenRequest`] (parameters, credentials, the client's address) and
//! the [`TokenService`]'s answer or [`ServiceError`] to a status, headers
//! and body; the use case itself is [`crate::service`]'s.

mod body;
pub(crate) mod client_ip;
pub(crate) mod error;
pub(crate) mod limits;
pub mod params;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;

use crate::authn::Credentials;
use crate::metrics::{Metrics, RequestOutcome};
use crate::service::{Generation, Issued, Login, Method, TokenRequest, TokenService};
pub(crate) use error::ApiError;
use params::Params;

/// The whole HTTP application: [`router`] inside [`limits::around`].
pub(crate) type App =
    limits::Limits<tower_http::sensitive_headers::SetSensitiveRequestHeaders<Router>>;

/// Builds the application for `service`: the routes, with the request
/// limits around them.
pub fn app(service: TokenService) -> App {
    limits::around(router(service))
}

/// The `Strict-Transport-Security` value sent with `server.hsts: true`: one
/// year, this host only (`includeSubDomains` would bind every sibling host,
/// a decision for whoever owns the domain, not for the token server).
pub(crate) const HSTS: &str = "max-age=31536000";

/// The routes, under the configured `server.path_prefix` (read once:
/// changing it needs a restart). No limits: see [`app`]. With `server.hsts`
/// (read per response, so a reload applies it) every routed response carries
/// `Strict-Transport-Security`; it is sent over plain HTTP too, where clients
/// ignore it unless a TLS-terminating proxy in front passes it on.
pub(crate) fn router(service: TokenService) -> Router {
    let prefix = service.current().config.server.path_prefix.clone();
    let token = get(token_get).post(token_post);
    let generations = service.clone();
    let hsts = tower_http::set_header::SetResponseHeaderLayer::if_not_present(
        header::STRICT_TRANSPORT_SECURITY,
        move |_: &Response| {
            generations
                .current()
                .config
                .server
                .hsts
                .then_some(HeaderValue::from_static(HSTS))
        },
    );
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
        .layer(hsts)
        .with_state(service)
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
// await (reading the request, the client's address, the throttle's
// admission in `TokenService::token`) is done before the returned future
// is first polled, so the future that waits holds only the finished
// request: a request's future is allocated and copied on every request,
// and each byte of it counts.
fn token_get(
    State(svc): State<TokenService>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> impl std::future::Future<Output = Response> {
    let start = Instant::now();
    let gen = svc.current();
    let headers = req.headers();
    let query = req.uri().query().unwrap_or_default();
    let input = read_get(query, headers);
    let request = input.and_then(|input| token_request(&gen, peer, headers, input));
    answer(svc, gen, request, start)
}

fn read_get(query: &str, headers: &HeaderMap) -> Result<ClientInput, ApiError> {
    let params = params::parse(query.as_bytes()).map_err(bad)?;
    let login = match basic(headers)? {
        Some(c) => Login::Password(c),
        None => Login::Anonymous,
    };
    let offline = params.offline_token;
    Ok(ClientInput {
        params,
        login,
        offline,
        method: Method::Get,
    })
}

async fn token_post(
    State(svc): State<TokenService>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    let start = Instant::now();
    let gen = svc.current();
    if !is_form(req.headers().get(header::CONTENT_TYPE)) {
        return limits::refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST needs Content-Type: application/x-www-form-urlencoded",
        );
    }
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
    let request =
        read_post(&body).and_then(|input| token_request(&gen, peer, &parts.headers, input));
    drop((parts, body));
    answer(svc, gen, request, start).await
}

/// Whether a `Content-Type` names an OAuth2 form (RFC 6749 §4.3.2,
/// distribution's `oauth.md`): `application/x-www-form-urlencoded` in any
/// letter case, parameters (`; charset=utf-8`) allowed. A body under any
/// other type is not read as a form: what a client meant by it is unknown.
fn is_form(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn read_post(body: &[u8]) -> Result<ClientInput, ApiError> {
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
        Some(TOKEN_EXCHANGE) => exchange(&params)?,
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            return Err(ApiError::BadRequest(format!(
                "unsupported grant_type {shown:?}"
            )));
        }
        None => return Err(bad_request("missing grant_type")),
    };
    let offline = params.access_type.as_deref() == Some("offline") || params.offline_token;
    Ok(ClientInput {
        params,
        login,
        offline,
        method: Method::Post,
    })
}

/// RFC 8693's grant type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A token exchange's login: an ID token or JWT as `subject_token`, and
/// an access token (the default) as what is asked for.
fn exchange(params: &Params) -> Result<Login, ApiError> {
    const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
    let Some(token) = params.subject_token.clone() else {
        return Err(bad_request("token exchange needs subject_token"));
    };
    match params.subject_token_type.as_deref() {
        Some(ID_TOKEN | JWT) => {}
        Some(other) => {
            let shown: String = other.chars().take(64).collect();
            return Err(ApiError::BadRequest(format!(
                "unsupported subject_token_type {shown:?}: use {ID_TOKEN} or {JWT}"
            )));
        }
        None => return Err(bad_request("token exchange needs subject_token_type")),
    }
    match params.requested_token_type.as_deref() {
        None | Some(body::ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "unsupported requested_token_type: only {} is issued",
                body::ACCESS_TOKEN_TYPE
            )))
        }
    }
    Ok(Login::Exchange(Credentials {
        user: crate::service::EXCHANGE_ACCOUNT.to_owned(),
        password: token,
    }))
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
struct ClientInput {
    params: Params,
    login: Login,
    /// A refresh token was asked for.
    offline: bool,
    method: Method,
}

/// The common, synchronous part of both methods: the client's address and
/// the [`TokenRequest`].
fn token_request(
    gen: &Generation,
    peer: SocketAddr,
    headers: &HeaderMap,
    input: ClientInput,
) -> Result<TokenRequest, ApiError> {
    let server = &gen.config.server;
    // Every line of the header, in order (see `client_ip`).
    let lines = server.real_ip_header.as_deref().map(|h| {
        let all = headers.get_all(h);
        move || all.iter().map(|v| v.to_str().ok())
    });
    let ip = client_ip::client_ip(peer, lines, server.real_ip_pos).map_err(bad_request)?;
    let ClientInput {
        params,
        login,
        offline,
        method,
    } = input;
    Ok(TokenRequest {
        service: params.service.unwrap_or_default(),
        scopes: params.scopes,
        account: params.account,
        login,
        ip: Some(ip),
        offline,
        client_id: params.client_id,
        method,
    })
}

/// The service's answer to a request, as a response. The service's future
/// is created (and the throttle consulted) before this one is first polled.
///
/// The service's future (1,120 bytes) is boxed here, once. Unboxed, it
/// sat twice in this future (as `pending` and as the awaited value: 2,304
/// bytes), which axum moves into its handler future (2,600 bytes) and that
/// into a box, on every request; boxed, they are 96 and 584 bytes
/// (`-Zprint-type-sizes`), and the server serves 1.03–1.06 times the
/// requests (BENCHMARKS.md, "Responses written in bursts").
///
/// Once the answer is known, the task yields before the response is
/// written: tokio runs it again after the other tasks that are ready (the
/// requests that arrived in the same turn of its event loop) have had
/// theirs, so a busy server writes its responses in bursts. A response
/// that finds its client asleep wakes it, and when the client waits on
/// another CPU of the same host (a load generator, a proxy in front) that
/// costs the server's CPU an inter-processor interrupt; in a VM, an exit
/// to the hypervisor, about 7 µs. Written in bursts, one wake-up serves
/// many responses: under `make bench`'s load 0.05 interrupts per request
/// instead of 0.6, and 1.16 (anonymous) and 1.25 (cached) times the
/// requests served. With nothing else ready the task runs again right
/// after one non-blocking poll of the event loop: at one connection, the
/// request rate is 0.97–1.01 of the build without the yield
/// (BENCHMARKS.md, "Responses written in bursts").
fn answer(
    svc: TokenService,
    gen: Arc<Generation>,
    request: Result<TokenRequest, ApiError>,
    start: Instant,
) -> impl std::future::Future<Output = Response> {
    let pending = request.map(|r| Box::pin(svc.token(&gen, r)));
    async move {
        let result = match pending {
            Ok(issuing) => issuing
                .await
                .map_err(|e| ApiError::from_service(e, &gen.config.token.issuer)),
            Err(e) => Err(e),
        };
        tokio::task::yield_now().await;
        respond(result, svc.metrics(), start)
    }
}

fn outcome(result: &Result<Issued, ApiError>) -> RequestOutcome {
    match result {
        Ok(issued) => {
            let (n, full, partial) = issued.authorization.summary();
            if full == n {
                RequestOutcome::Granted
            } else if full > 0 || partial > 0 {
                RequestOutcome::Partial
            } else {
                RequestOutcome::Denied
            }
        }
        Err(ApiError::BadRequest(_)) => RequestOutcome::BadRequest,
        Err(ApiError::Unauthorized { .. }) => RequestOutcome::Unauthorized,
        Err(ApiError::Unavailable) => RequestOutcome::BackendError,
        Err(ApiError::Busy | ApiError::TooManyFailures { .. }) => RequestOutcome::Throttled,
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
async fn jwks(State(svc): State<TokenService>) -> Response {
    Json(svc.current().signer.jwks()).into_response()
}

async fn metrics(State(svc): State<TokenService>) -> Response {
    let g = svc.current();
    let keys = g.signer.keys(&g.config.token);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        svc.metrics().render_with_keys(&keys, g.cert_expires_in()),
    )
        .into_response()
}

/// Ready when a configuration is loaded and every backend that can be
/// down (LDAP) answers.
async fn readyz(State(svc): State<TokenService>) -> Response {
    let gen = svc.current();
    match gen.authn.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(%e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_content_types() {
        let cases: &[(Option<&str>, bool)] = &[
            (Some("application/x-www-form-urlencoded"), true),
            (Some("Application/X-WWW-Form-URLEncoded"), true),
            (
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                true,
            ),
            (
                Some(" application/x-www-form-urlencoded ;charset=UTF-8"),
                true,
            ),
            (None, false),
            (Some(""), false),
            (Some("application/json"), false),
            (Some("multipart/form-data; boundary=x"), false),
            (Some("text/plain"), false),
            (Some("application/x-www-form-urlencoded-evil"), false),
            (
                Some("application/x-www-form-urlencodedx; charset=utf-8"),
                false,
            ),
        ];
        for (value, want) in cases {
            let v = value.map(|v| HeaderValue::from_str(v).unwrap());
            assert_eq!(is_form(v.as_ref()), *want, "{value:?}");
        }
    }
}
