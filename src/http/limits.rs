//! Request-shape limits checked before routing: the request target (path
//! and query) and the header block, each refused with a status and a
//! one-line body. Body size, time and concurrency limits are tower layers
//! set up in [`super::router`].
//!
//! The token endpoint needs little: at most [`crate::service::MAX_SCOPES`]
//! scopes of at most 255-byte names fit, percent-encoded, in far less than
//! [`MAX_TARGET`]; clients send a handful of short headers. hyper's own
//! limits sit behind these (the whole request head ≤ 408 KiB and at most
//! 100 headers → 431, request target ≤ 65 534 bytes → 414, closing the
//! connection without a body); `axum::serve` does not expose them.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest accepted request target (path and query), in bytes.
pub const MAX_TARGET: usize = 32 * 1024;
/// Largest accepted header block (names and values), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest accepted request body (POST form), in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Most requests served at once; more wait (up to the request timeout).
pub const MAX_IN_FLIGHT: usize = 512;
/// Longest time a request may take, body reading and waiting included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

/// Refuses over-long request targets (414) and header blocks (431).
pub async fn middleware(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_TARGET {
        return refuse(
            StatusCode::URI_TOO_LONG,
            &format!("request URI too long (limit {MAX_TARGET} bytes)"),
        );
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("request headers too large (limit {MAX_HEADER_BYTES} bytes)"),
        );
    }
    next.run(req).await
}
