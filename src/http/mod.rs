//! HTTP: the router, shared state and thin handlers. Handlers only
//! translate between HTTP and [`crate::service`].

pub mod client_ip;
pub mod error;
pub mod params;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::authn::Credentials;
use crate::service::{self, Issued, Runtime, TokenRequest};
pub use error::ApiError;
use params::Params;

/// Shared state: the current configuration generation, swapped whole on
/// reload.
#[derive(Clone)]
pub struct AppState {
    pub runtime: Arc<ArcSwap<Runtime>>,
}

impl AppState {
    pub fn new(runtime: Runtime) -> AppState {
        AppState {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
        }
    }
}

/// Builds the router for `state`; routes live under the configured
/// `server.path_prefix` (read once: changing it needs a restart).
pub fn router(state: AppState) -> Router {
    let prefix = state.runtime.load().config.server.path_prefix.clone();
    let token = get(token_get).post(token_post);
    Router::new()
        .route(&format!("{prefix}/auth"), token.clone())
        .route(&format!("{prefix}/auth/token"), token)
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(
            tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]),
        )
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: String,
}

async fn token_get(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let rt = st.runtime.load_full();
    let result = async {
        let params = params::parse(query.unwrap_or_default().as_bytes()).map_err(bad)?;
        let creds =
            params::basic_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
                .map_err(bad)?;
        handle(&rt, peer, &headers, params, creds).await
    }
    .await;
    respond(result)
}

async fn token_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = st.runtime.load_full();
    let result = async {
        let params = params::parse(&body).map_err(bad)?;
        let creds = match params.grant_type.as_deref() {
            Some("password") => {
                let (Some(user), Some(password)) =
                    (params.username.clone(), params.password.clone())
                else {
                    return Err(ApiError::BadRequest(
                        "grant_type=password needs username and password".into(),
                    ));
                };
                Some(Credentials { user, password })
            }
            Some("refresh_token") => {
                return Err(ApiError::BadRequest(
                    "refresh tokens are not enabled on this server".into(),
                ))
            }
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "unsupported grant_type {:?}",
                    other.chars().take(32).collect::<String>()
                )))
            }
            None => return Err(ApiError::BadRequest("missing grant_type".into())),
        };
        handle(&rt, peer, &headers, params, creds).await
    }
    .await;
    respond(result)
}

fn bad(e: params::ParamError) -> ApiError {
    ApiError::BadRequest(e.0)
}

async fn handle(
    rt: &Runtime,
    peer: SocketAddr,
    headers: &HeaderMap,
    params: Params,
    credentials: Option<Credentials>,
) -> Result<Issued, ApiError> {
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
    .map_err(|e| ApiError::BadRequest(e.into()))?;
    let req = TokenRequest {
        service: params.service.unwrap_or_default(),
        scopes: params.scopes,
        account: params.account,
        credentials,
        ip: Some(ip),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jti = new_jti();
    let result = service::issue_token(&rt.config, &rt.authn, &req, now, jti).await;
    audit(&req, ip, &result);
    result.map_err(|e| ApiError::from_service(e, &rt.config.token.issuer))
}

/// A random token ID: 128 bits from the OS CSPRNG, hex.
fn new_jti() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One audit event per token request. Never the password or the token.
fn audit(req: &TokenRequest, ip: std::net::IpAddr, result: &Result<Issued, service::ServiceError>) {
    let account = req.credentials.as_ref().map_or("", |c| c.user.as_str());
    match result {
        Ok(issued) => {
            let granted: Vec<String> = issued
                .authorization
                .grants
                .iter()
                .map(|g| {
                    let actions: Vec<&str> = g.granted.iter().map(String::as_str).collect();
                    let rule = g.rule.map_or("none".to_owned(), |r| r.to_string());
                    format!(
                        "{}:{}:[{}] rule={rule}",
                        g.scope.typ,
                        g.scope.name,
                        actions.join(",")
                    )
                })
                .collect();
            tracing::info!(
                target: "regauth::audit",
                outcome = "issued",
                %ip,
                account,
                service = %req.service,
                audience = %issued.authorization.audience,
                mirror = issued.authorization.mirror.as_ref().map(|m| m.prefix.as_str()),
                requested = ?req.scopes,
                granted = ?granted,
                backend = issued.backend,
            );
        }
        Err(e) => {
            tracing::info!(
                target: "regauth::audit",
                outcome = "refused",
                %ip,
                account,
                service = %req.service,
                requested = ?req.scopes,
                reason = %e,
            );
        }
    }
}

fn respond(result: Result<Issued, ApiError>) -> Response {
    match result {
        Ok(issued) => {
            let issued_at = time::OffsetDateTime::from_unix_timestamp(issued.issued_at as i64)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let body = TokenResponse {
                token: &issued.token,
                access_token: &issued.token,
                expires_in: issued.expires_in,
                issued_at,
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
