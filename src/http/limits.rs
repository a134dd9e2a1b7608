//! Request limits, applied once around the whole router by [`Limits`]: the
//! request target (414) and header block (431) sizes, a cap on requests in
//! flight (more wait for a slot), a smaller cap per client address so that
//! one address cannot take every slot (its further requests wait for one of
//! its own slots), and a timeout on each request, waiting included (408).
//! The probes (`/healthz`, `/readyz`, `/metrics`, the JWKS) take no slot:
//! a liveness probe is answered however busy the token endpoint is.
//! [`around`] also marks credential headers sensitive, so that they print
//! as `Sensitive` in any `Debug` output. The body limits are applied where
//! a body is read (`to_bytes` with [`MAX_BODY`]: 413; all of it within
//! [`BODY_READ_TIMEOUT`]: 408).
//!
//! The per-client cap counts the connection's peer address. Behind a proxy
//! every request shares the proxy's address, so the proxy's own limits
//! (nginx `limit_conn`, HAProxy `maxconn`) are what separates its clients;
//! the cap then bounds what the proxy as a whole can hold.
//!
//! One hand-written service rather than a stack of tower layers: no crate
//! limits requests in flight per client address, and the limits belong
//! together (a probe takes no slot, the timeout counts the wait for one).
//! tower's concurrency limit, tower-http's timeout and a size check
//! stacked on the same application add 0.2–0.4 µs per request
//! (`alternatives/limits` in `benches/micro.rs`; BENCHMARKS.md,
//! "Hand-written parts and their crate alternatives"): the reason to keep
//! this service is the per-client limit, not speed.
//!
//! The token endpoint needs little: at most [`crate::service::MAX_SCOPES`]
//! scopes of at most 255-byte names fit, percent-encoded, in far less than
//! [`MAX_TARGET`]; clients send a handful of short headers. hyper's own
//! limits sit behind these (the whole request head ≤ 408 KiB and at most
//! 100 headers → 431, request target ≤ 65 534 bytes → 414, closing the
//! connection without a body).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Service, ServiceExt};
use tower_http::sensitive_headers::SetSensitiveRequestHeaders;

/// Longest accepted request target (path and query), in bytes.
pub(crate) const MAX_TARGET: usize = 32 * 1024;
/// Largest accepted header block (names and values), in bytes.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest accepted request body (POST form), in bytes.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Most requests served at once; more wait (up to the request timeout).
pub(crate) const MAX_IN_FLIGHT: usize = 512;
/// Most requests served at once for one client address; more from that
/// address wait for one of its slots.
pub(crate) const MAX_IN_FLIGHT_PER_CLIENT: usize = 64;
/// Longest time the whole request body (a POST form) may take to arrive.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time a request may take, body reading and waiting included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A plain-text refusal: `status` and a one-line body.
pub(crate) fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

/// The 414 or 431 answer when the request's shape is over a limit.
fn over_limit(req: &Request) -> Option<Response> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_TARGET {
        return Some(refuse(
            StatusCode::URI_TOO_LONG,
            &format!("request URI too long (limit {MAX_TARGET} bytes)"),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("request headers too large (limit {MAX_HEADER_BYTES} bytes)"),
        ));
    }
    None
}

/// `inner` with credential headers (`Authorization`, `Cookie`) marked
/// sensitive, inside [`Limits`].
pub(crate) fn around<S>(inner: S) -> Limits<SetSensitiveRequestHeaders<S>> {
    Limits::new(SetSensitiveRequestHeaders::new(
        inner,
        [header::AUTHORIZATION, header::COOKIE],
    ))
}

/// The service around the router (see the module docs). Cheap to clone:
/// the router and the in-flight slots are shared.
#[derive(Clone)]
pub struct Limits<S> {
    inner: S,
    slots: Arc<Semaphore>,
    clients: Arc<ClientSlots>,
    timeout: Duration,
}

impl<S> Limits<S> {
    pub(crate) fn new(inner: S) -> Limits<S> {
        Limits::with(
            inner,
            MAX_IN_FLIGHT,
            MAX_IN_FLIGHT_PER_CLIENT,
            REQUEST_TIMEOUT,
        )
    }

    /// With other in-flight and time limits (tests).
    pub(crate) fn with(
        inner: S,
        max_in_flight: usize,
        per_client: usize,
        timeout: Duration,
    ) -> Limits<S> {
        Limits {
            inner,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            clients: Arc::new(ClientSlots {
                per_client,
                map: Mutex::new(HashMap::new()),
            }),
            timeout,
        }
    }
}

/// The paths answered without an in-flight slot.
fn is_probe(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/.well-known/jwks.json"
    )
}

/// Each client address's own in-flight slots. An address's semaphore lives
/// in the map only while one of its requests is in flight.
struct ClientSlots {
    per_client: usize,
    map: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// One of a client address's slots; gives the address's entry back when
/// it was the last.
struct ClientSlot {
    permit: Option<OwnedSemaphorePermit>,
    ip: IpAddr,
    owner: Arc<ClientSlots>,
}

impl ClientSlots {
    /// The semaphore of `ip`, created when absent.
    fn semaphore(&self, ip: IpAddr) -> Arc<Semaphore> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(ip)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_client))),
        )
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let sem = Arc::clone(permit.semaphore());
        drop(permit);
        let mut map = self.owner.map.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and `sem` hold it, and every slot is free: nobody
        // else is in flight or waiting, so the entry can go.
        if Arc::strong_count(&sem) == 2 && sem.available_permits() == self.owner.per_client {
            map.remove(&self.ip);
        }
    }
}

impl ClientSlots {
    /// A slot for `ip` if one is free now.
    fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let permit = self.semaphore(ip).try_acquire_owned().ok()?;
        Some(ClientSlot {
            permit: Some(permit),
            ip,
            owner: Arc::clone(self),
        })
    }

    /// A slot for `ip`, waiting for one.
    async fn take(self: Arc<Self>, ip: IpAddr) -> ClientSlot {
        let sem = self.semaphore(ip);
        // `slot` exists before the wait so that a cancelled wait still
        // gives the address's entry back.
        let mut slot = ClientSlot {
            permit: None,
            ip,
            owner: Arc::clone(&self),
        };
        let permit = sem.acquire_owned().await.expect("never closed");
        slot.permit = Some(permit);
        slot
    }
}

/// The client address a request is counted under: the connection's peer,
/// IPv4-mapped addresses as IPv4.
fn client_of(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip().to_canonical())
}

impl<S> Service<Request> for Limits<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the inner service's, checked per request below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(refused) = over_limit(&req) {
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let inner = self.inner.clone();
        let timeout = self.timeout;
        if is_probe(req.uri().path()) {
            return Box::pin(async move {
                tokio::time::timeout(timeout, inner.oneshot(req))
                    .await
                    .unwrap_or_else(|_| Ok(too_long()))
            });
        }
        let ip = client_of(&req);
        let free = self.clients.try_take(ip).and_then(|client| {
            let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
            Some((client, slot))
        });
        match free {
            // The usual case, free slots: the future holds only the
            // request's own work, no wait for a slot.
            Some(slots) => Box::pin(async move {
                let answer = tokio::time::timeout(timeout, inner.oneshot(req)).await;
                drop(slots);
                answer.unwrap_or_else(|_| Ok(too_long()))
            }),
            None => {
                let slots = Arc::clone(&self.slots);
                let clients = Arc::clone(&self.clients);
                Box::pin(async move {
                    let work = async move {
                        let _client = clients.take(ip).await;
                        let _slot = slots
                            .acquire_owned()
                            .await
                            .expect("the semaphore is never closed");
                        inner.oneshot(req).await
                    };
                    tokio::time::timeout(timeout, work)
                        .await
                        .unwrap_or_else(|_| Ok(too_long()))
                })
            }
        }
    }
}

fn too_long() -> Response {
    refuse(StatusCode::REQUEST_TIMEOUT, "request took too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;

    type TestApp = Limits<SetSensitiveRequestHeaders<Router>>;

    fn app(max_in_flight: usize, timeout: Duration) -> TestApp {
        app_per_client(max_in_flight, max_in_flight, timeout)
    }

    fn app_per_client(max_in_flight: usize, per_client: usize, timeout: Duration) -> TestApp {
        let router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow"
                }),
            )
            .route(
                "/debug",
                get(|req: Request| async move { format!("{:?}", req.headers()) }),
            );
        let sensitive = around(router).inner;
        Limits::with(sensitive, max_in_flight, per_client, timeout)
    }

    async fn send(app: &TestApp, req: Request) -> (StatusCode, String) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_req(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn shape_limits_table() {
        let app = app(8, Duration::from_secs(5));
        let long_query = format!("/ok?q={}", "a".repeat(MAX_TARGET));
        let fitting_query = format!("/ok?q={}", "a".repeat(MAX_TARGET - 10));
        let big = "b".repeat(MAX_HEADER_BYTES);
        let half = "h".repeat(MAX_HEADER_BYTES / 2);
        type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, StatusCode);
        let cases: [Case; 5] = [
            ("plain", "/ok".into(), vec![], StatusCode::OK),
            ("target at the limit", fitting_query, vec![], StatusCode::OK),
            ("target over", long_query, vec![], StatusCode::URI_TOO_LONG),
            (
                "one header over",
                "/ok".into(),
                vec![("x-big", &big)],
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            (
                "two halves over",
                "/ok".into(),
                vec![("x-a", &half), ("x-b", &half)],
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
        ];
        for (name, uri, headers, want) in cases {
            let (status, _) = send(&app, get_req(&uri, &headers)).await;
            assert_eq!(status, want, "{name}");
        }
    }

    #[tokio::test]
    async fn credentials_are_marked_sensitive() {
        let app = app(8, Duration::from_secs(5));
        let (status, debug) = send(
            &app,
            get_req(
                "/debug",
                &[
                    ("authorization", "Basic c2VjcmV0OnNlY3JldA=="),
                    ("cookie", "s=topsecret"),
                ],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(debug.contains("Sensitive"), "{debug}");
        assert!(
            !debug.contains("c2VjcmV0") && !debug.contains("topsecret"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn a_request_over_time_gets_408() {
        let app = app(8, Duration::from_millis(50));
        assert_eq!(
            send(&app, get_req("/slow", &[])).await.0,
            StatusCode::REQUEST_TIMEOUT
        );
        assert_eq!(send(&app, get_req("/ok", &[])).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_over_the_in_flight_cap_wait_for_a_slot() {
        let app = app(2, Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let all: Vec<_> = (0..4)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app, get_req("/slow", &[])).await.0 })
            })
            .collect();
        for t in all {
            assert_eq!(t.await.unwrap(), StatusCode::OK);
        }
        // Two at a time, 300 ms each: at least two rounds.
        assert!(
            start.elapsed() >= Duration::from_millis(600),
            "{:?}",
            start.elapsed()
        );
    }

    fn from(uri: &str, peer: &str) -> Request {
        let mut req = get_req(uri, &[]);
        let peer: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }

    #[tokio::test]
    async fn a_probe_is_answered_while_every_slot_is_taken() {
        let app = app(1, Duration::from_secs(5));
        let busy = {
            let app = app.clone();
            tokio::spawn(async move { send(&app, get_req("/slow", &[])).await.0 })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = tokio::time::Instant::now();
        assert_eq!(send(&app, get_req("/healthz", &[])).await.0, StatusCode::OK);
        // The slow request holds the only slot for 300 ms.
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(busy.await.unwrap(), StatusCode::OK);
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_slot() {
        // Two slots, one per address: `a`'s second request waits for `a`'s
        // first, while `b` is served at once.
        let app = app_per_client(2, 1, Duration::from_secs(5));
        let mut held = Vec::new();
        for _ in 0..2 {
            let app = app.clone();
            held.push(tokio::spawn(async move {
                send(&app, from("/slow", "127.0.0.2:1000")).await.0
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = tokio::time::Instant::now();
        assert_eq!(
            send(&app, from("/ok", "[::ffff:127.0.0.1]:1000")).await.0,
            StatusCode::OK
        );
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        for h in held {
            assert_eq!(h.await.unwrap(), StatusCode::OK);
        }
        // Every address gave its entry back.
        assert!(app.clients.map.lock().unwrap().is_empty());
    }
}
