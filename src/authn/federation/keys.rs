//! An issuer's verification keys, fetched and cached. One [`IssuerKeys`]
//! per key source (bindings of the same issuer share it).
//!
//! - At load, the keys are fetched in the background: an issuer that
//!   cannot be reached never delays or fails a start or a reload.
//! - Until keys have been fetched once, a login waits for a fetch (one at a
//!   time; concurrent logins share it). A failed fetch is not repeated for
//!   [`RETRY_AFTER_FAILURE`], so an unreachable issuer costs each login
//!   nothing but a 503 in the meantime.
//! - A token whose `kid` is unknown triggers one refetch, at most once per
//!   [`KID_REFETCH_INTERVAL`] per issuer: a key rotation is picked up at
//!   the next login, and tokens with made-up `kid`s cannot make regauth
//!   hammer the issuer.
//! - Keys older than [`REFRESH_AFTER`] are refreshed in the background
//!   while the cached ones keep serving; a failed refresh keeps them.
//! - A reload builds new caches; each starts with the keys the running
//!   generation's cache holds for the same source (`seed_from`), so a
//!   reload while an issuer is down changes nothing for its logins.
//! - Every fetch has a deadline ([`FETCH_TIMEOUT`]) and a size cap.
//!
//! HTTP is reqwest over rustls with the aws-lc-rs provider (the process's
//! one), trusting the binding's `ca_certificate` or the system's roots.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::config::federation::{check_url, KeySource};

use super::verify::KeySet;

/// Deadline of one HTTP fetch (discovery or JWKS), connection included.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two refetches for unknown `kid`s.
pub(crate) const KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Least time between two fetches while none has succeeded.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Age after which cached keys are refreshed.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// Largest discovery document or JWK Set read.
const MAX_DOCUMENT: usize = 1 << 20;

/// The keys of one source, and when they were fetched.
pub(crate) struct IssuerKeys {
    source: KeySource,
    /// The issuer, checked against the discovery document's `issuer`.
    issuer: String,
    client: Option<reqwest::Client>,
    state: Mutex<State>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_failure: Option<(Instant, String)>,
    last_kid_refetch: Option<Instant>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("source", &self.source_name())
            .finish_non_exhaustive()
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FetchError(pub String);

impl IssuerKeys {
    /// Keys of `source` (for `issuer`), fetched over `client`; a file's
    /// keys are read at once.
    pub(crate) fn new(
        source: KeySource,
        issuer: String,
        client: Option<reqwest::Client>,
    ) -> Arc<IssuerKeys> {
        let keys = Arc::new(IssuerKeys {
            source,
            issuer,
            client,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        });
        if let KeySource::File { path, text } = &keys.source {
            match KeySet::parse(text.as_bytes()) {
                Ok(set) => {
                    keys.store(set);
                }
                Err(e) => keys.failed(format!("{}: {e}", path.display())),
            }
        }
        keys
    }

    /// What the keys come from, for log lines.
    pub(crate) fn source_name(&self) -> String {
        match &self.source {
            KeySource::Discovery(i) => format!("{i}/.well-known/openid-configuration"),
            KeySource::Url(u) => u.clone(),
            KeySource::File { path, .. } => path.display().to_string(),
        }
    }

    /// Starts the first fetch in the background, when there is a runtime
    /// to run it (there is in `serve` and on reload).
    pub(crate) fn prefetch(self: &Arc<Self>) {
        if self.client.is_none() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(self);
            rt.spawn(refresh_in_background(weak));
        }
    }

    /// Takes `previous`'s keys when this cache has none yet: after a
    /// reload, the keys the running generation had keep serving while the
    /// new generation's fetch runs (or fails: the issuer may be down).
    pub(crate) fn seed_from(&self, previous: &IssuerKeys) {
        if self.source != previous.source || self.issuer != previous.issuer {
            return;
        }
        let (keys, fetched_at) = {
            let p = previous.state.lock().unwrap_or_else(|p| p.into_inner());
            match &p.keys {
                Some(k) => (Arc::clone(k), p.fetched_at),
                None => return,
            }
        };
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.keys.is_none() {
            s.keys = Some(keys);
            s.fetched_at = fetched_at;
        }
    }

    /// The cached keys, fetching them first when there are none yet (and
    /// the last failure is old enough); refreshing stale ones in the
    /// background.
    pub(crate) async fn keys(self: &Arc<Self>) -> Result<Arc<KeySet>, FetchError> {
        if let Some(keys) = self.cached() {
            return Ok(keys);
        }
        let _one = self.fetching.lock().await;
        // Another login may have fetched while this one waited.
        if let Some(keys) = self.current() {
            return Ok(keys);
        }
        if let Some(e) = self.recent_failure() {
            return Err(FetchError(e));
        }
        self.fetch_and_store().await
    }

    /// After a token's `kid` was not found: refetches unless one was done
    /// for that reason within [`KID_REFETCH_INTERVAL`]. `None` = no
    /// refetch was made, or it failed (the cached keys stay).
    pub(crate) async fn refetch_for_unknown_kid(self: &Arc<Self>) -> Option<Arc<KeySet>> {
        self.client.as_ref()?;
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if s.last_kid_refetch
                .is_some_and(|t| now.duration_since(t) < KID_REFETCH_INTERVAL)
            {
                return None;
            }
            s.last_kid_refetch = Some(now);
        }
        let _one = self.fetching.lock().await;
        self.fetch_and_store().await.ok()
    }

    /// The keys, and a background refresh when they are stale.
    fn cached(self: &Arc<Self>) -> Option<Arc<KeySet>> {
        let (keys, stale) = {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let keys = s.keys.clone()?;
            let stale = s.fetched_at.is_some_and(|t| t.elapsed() >= REFRESH_AFTER)
                && s.last_failure
                    .as_ref()
                    .is_none_or(|(t, _)| t.elapsed() >= RETRY_AFTER_FAILURE);
            (keys, stale)
        };
        if stale && self.client.is_some() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(refresh_in_background(Arc::downgrade(self)));
            }
        }
        Some(keys)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .clone()
    }

    fn recent_failure(&self) -> Option<String> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last_failure
            .as_ref()
            .filter(|(t, _)| t.elapsed() < RETRY_AFTER_FAILURE || self.client.is_none())
            .map(|(_, e)| e.clone())
    }

    /// Fetches; stores the keys or the failure. The caller holds
    /// `fetching`.
    async fn fetch_and_store(&self) -> Result<Arc<KeySet>, FetchError> {
        match self.fetch().await {
            Ok(set) => {
                tracing::info!(source = %self.source_name(), "federation keys fetched");
                Ok(self.store(set))
            }
            Err(e) => {
                tracing::warn!(source = %self.source_name(), error = %e, "federation keys could not be fetched");
                self.failed(e.clone());
                Err(FetchError(e))
            }
        }
    }

    fn store(&self, set: KeySet) -> Arc<KeySet> {
        let set = Arc::new(set);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.keys = Some(Arc::clone(&set));
        s.fetched_at = Some(Instant::now());
        s.last_failure = None;
        set
    }

    fn failed(&self, e: String) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last_failure = Some((Instant::now(), e));
    }

    /// One fetch: discovery then JWKS, or the JWKS URL.
    pub(crate) async fn fetch(&self) -> Result<KeySet, String> {
        let Some(client) = &self.client else {
            return match &self.source {
                KeySource::File { text, .. } => KeySet::parse(text.as_bytes()),
                _ => Err("no HTTP client".into()),
            };
        };
        let jwks_url = match &self.source {
            KeySource::Discovery(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = serde_json::from_slice(&get(client, &url).await?)
                    .map_err(|e| format!("{url}: not JSON: {e}"))?;
                // OpenID Connect Discovery §4.3: the document is the
                // issuer's own.
                let said = doc.get("issuer").and_then(|i| i.as_str());
                if said != Some(self.issuer.as_str()) {
                    return Err(format!(
                        "{url}: the document's issuer {said:?} is not {:?}",
                        self.issuer
                    ));
                }
                let jwks = doc
                    .get("jwks_uri")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?
                    .to_owned();
                check_url("jwks_uri", &jwks).map_err(|e| format!("{url}: {e}"))?;
                jwks
            }
            KeySource::Url(u) => u.clone(),
            KeySource::File { text, .. } => return KeySet::parse(text.as_bytes()),
        };
        KeySet::parse(&get(client, &jwks_url).await?).map_err(|e| format!("{jwks_url}: {e}"))
    }
}

/// The first fetch, or a refresh of stale keys; gone with the generation.
async fn refresh_in_background(keys: Weak<IssuerKeys>) {
    let Some(keys) = keys.upgrade() else { return };
    let Ok(_one) = keys.fetching.try_lock() else {
        return;
    };
    let _ = keys.fetch_and_store().await;
}

/// A GET with the client's deadline and [`MAX_DOCUMENT`] bytes at most.
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let fail = |e: reqwest::Error| format!("{url}: {}", without_url(&e));
    let mut resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(fail)?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's message and its causes, without the URL it repeats.
fn without_url(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("no answer within {} s", FETCH_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The HTTP client for fetches trusting `ca` (DER certificates), or the
/// system's roots when empty.
pub(crate) fn client(
    ca: &[rustls::pki_types::CertificateDer<'static>],
    system_roots: &dyn Fn() -> rustls::RootCertStore,
) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = if ca.is_empty() {
        system_roots()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in ca {
            roots.add(c.clone()).map_err(|e| e.to_string())?;
        }
        roots
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.stop()
            } else if check_url("redirect", attempt.url().as_str()).is_ok() {
                attempt.follow()
            } else {
                attempt.error("redirect to plain http:// off loopback")
            }
        }))
        .user_agent(concat!("regauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}
