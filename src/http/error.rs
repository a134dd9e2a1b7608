//! The HTTP error type: the only place domain errors become status codes.
//! Clients get a short public message; the cause goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::service::ServiceError;

#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 with a one-line reason.
    BadRequest(String),
    /// 401 with `WWW-Authenticate: Basic realm="<realm>"`.
    Unauthorized { realm: String },
    /// 503: a backend could not answer.
    Unavailable,
    /// 503 with `Retry-After`: too many verifications in progress.
    Busy,
    /// 429 with `Retry-After` (whole seconds, at least 1): too many failed
    /// logins from this address or for this account
    /// ([`crate::service::throttle`]).
    TooManyFailures { retry_after: std::time::Duration },
}

impl ApiError {
    pub(crate) fn from_service(e: ServiceError, realm: &str) -> ApiError {
        match e {
            ServiceError::BadRequest(m) => ApiError::BadRequest(m),
            ServiceError::Unauthorized
            | ServiceError::Federation(crate::authn::federation::FederationError::Refused {
                ..
            }) => ApiError::Unauthorized {
                realm: realm.to_owned(),
            },
            // Logged by the service, with the binding.
            ServiceError::Federation(_) => ApiError::Unavailable,
            ServiceError::Backend(crate::authn::AuthnError::Busy) => ApiError::Busy,
            ServiceError::TooManyFailures { retry_after } => {
                ApiError::TooManyFailures { retry_after }
            }
            ServiceError::Backend(cause) => {
                tracing::error!(%cause, "authentication backend failed");
                ApiError::Unavailable
            }
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let why = match &self {
            ApiError::BadRequest(m) => format!("bad request: {}", one_line(m)),
            ApiError::Unauthorized { .. } => "authentication failed".to_owned(),
            ApiError::Unavailable => {
                "authentication backend unavailable, try again later".to_owned()
            }
            ApiError::Busy => "server busy, try again later".to_owned(),
            ApiError::TooManyFailures { retry_after } => format!(
                "too many failed login attempts; try again in {} seconds",
                retry_secs(*retry_after)
            ),
        };
        let mut resp = super::limits::refuse(self.status(), &why);
        match &self {
            ApiError::Busy => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyFailures { retry_after } => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_secs(*retry_after)),
                );
            }
            _ => {}
        }
        if let ApiError::Unauthorized { realm } = &self {
            let v = format!("Basic realm=\"{}\"", realm.replace(['"', '\\'], ""));
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// Whole seconds, rounded up, at least 1.
fn retry_secs(d: std::time::Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// Keeps a message on one line and bounded, whatever the input echoed in it.
fn one_line(m: &str) -> String {
    m.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        for (after, want) in [(1500, "2"), (0, "1"), (2000, "2"), (59_001, "60")] {
            let r = ApiError::TooManyFailures {
                retry_after: Duration::from_millis(after),
            }
            .into_response();
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(r.headers()[header::RETRY_AFTER], want, "{after} ms");
        }
    }
}
