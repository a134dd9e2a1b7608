//! Prometheus metrics: one registry per process, owned by the server state
//! (no globals). Rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackendLabel {
    pub(crate) backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RobotLabel {
    pub(crate) robot: String,
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FederationLabel {
    pub(crate) binding: String,
    /// `ok`, `unavailable`, or the check that failed (`aud`, `exp`, ...).
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub(crate) result: &'static str,
}

/// The outcome of one token request, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// Every requested action granted (or a login without scopes).
    Granted,
    /// Some requested actions granted, some not.
    Partial,
    /// Scopes requested, none granted.
    Denied,
    BadRequest,
    Unauthorized,
    BackendError,
    /// Refused without work: saturated pool or rate limit.
    Throttled,
}

impl RequestOutcome {
    pub(crate) const ALL: [RequestOutcome; 7] = [
        RequestOutcome::Granted,
        RequestOutcome::Partial,
        RequestOutcome::Denied,
        RequestOutcome::BadRequest,
        RequestOutcome::Unauthorized,
        RequestOutcome::BackendError,
        RequestOutcome::Throttled,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Granted => "granted",
            RequestOutcome::Partial => "partial",
            RequestOutcome::Denied => "denied",
            RequestOutcome::BadRequest => "bad_request",
            RequestOutcome::Unauthorized => "unauthorized",
            RequestOutcome::BackendError => "backend_error",
            RequestOutcome::Throttled => "throttled",
        }
    }
}

/// One key of the JWKS (`regauth_token_keys`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KeyLabel {
    pub(crate) kid: String,
    pub(crate) role: &'static str,
    pub(crate) alg: &'static str,
    /// notAfter of its certificate (RFC 3339), empty without one.
    pub(crate) not_after: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KidLabel {
    pub(crate) kid: String,
}

pub struct Metrics {
    registry: Registry,
    pub(crate) authn_seconds: Family<BackendLabel, Histogram>,
    pub(crate) authn_errors: Family<BackendLabel, Counter>,
    pub(crate) reloads: Family<ResultLabel, Counter>,
    pub(crate) rate_limited: Counter,
    /// Robot logins by robot and outcome (the robots file bounds the names).
    pub(crate) robot_logins: Family<RobotLabel, Counter>,
    pub(crate) config_generation: Gauge,
    /// Set from the serving generation each time metrics are rendered.
    token_keys: Family<KeyLabel, Gauge>,
    signing_cert_expiry: Family<KidLabel, Gauge>,
    /// Held while the key series are replaced and rendered, so that two
    /// scrapes at once each see a whole set.
    keys_lock: std::sync::Mutex<()>,
    pub(crate) federation_logins: Family<FederationLabel, Counter>,
    /// The series every request updates, looked up once (indexed like
    /// [`RequestOutcome::ALL`]): a family lookup takes a lock and hashes the label.
    by_outcome: Vec<(Counter, Histogram)>,
    cache_hit: Counter,
    cache_miss: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s: cached requests sit at the bottom, bcrypt and LDAP
    // binds in the middle.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("regauth");
        let requests = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "token_requests",
            "Token requests by outcome",
            requests.clone(),
        );
        let request_seconds = Family::<OutcomeLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "token_request_duration_seconds",
            "Token request latency by outcome",
            request_seconds.clone(),
        );
        let authn_seconds = Family::<BackendLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "authn_duration_seconds",
            "Password verification latency by backend (cache misses)",
            authn_seconds.clone(),
        );
        let authn_errors = Family::<BackendLabel, Counter>::default();
        registry.register(
            "authn_errors",
            "Authentication backend failures (unavailable, busy)",
            authn_errors.clone(),
        );
        let cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "authn_cache",
            "Credential cache lookups by result (hit, miss)",
            cache.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by brute-force throttling",
            rate_limited.clone(),
        );
        let robot_logins = Family::<RobotLabel, Counter>::default();
        registry.register(
            "robot_logins",
            "Robot logins by robot and outcome (ok, wrong_secret, expired)",
            robot_logins.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Number of the configuration generation serving (1 = initial)",
            config_generation.clone(),
        );
        config_generation.set(1);
        let token_keys = Family::<KeyLabel, Gauge>::default();
        registry.register(
            "token_keys",
            "Keys served in the JWKS (1 each): role signing or published, with kid and certificate expiry",
            token_keys.clone(),
        );
        let signing_cert_expiry = Family::<KidLabel, Gauge>::default();
        registry.register(
            "signing_certificate_expiry_seconds",
            "Seconds until the signing certificate's notAfter (negative once expired); absent without a certificate",
            signing_cert_expiry.clone(),
        );
        let federation_logins = Family::<FederationLabel, Counter>::default();
        registry.register(
            "federation_logins",
            "Federated (ID token) logins by binding and result: ok, unavailable, or the check that failed",
            federation_logins.clone(),
        );
        // Every outcome's series exists from the start (at zero).
        let by_outcome = RequestOutcome::ALL
            .iter()
            .map(|o| {
                let l = OutcomeLabel {
                    outcome: o.as_str(),
                };
                (
                    requests.get_or_create(&l).clone(),
                    request_seconds.get_or_create(&l).clone(),
                )
            })
            .collect();
        let cache_hit = cache.get_or_create(&ResultLabel { result: "hit" }).clone();
        let cache_miss = cache.get_or_create(&ResultLabel { result: "miss" }).clone();
        Metrics {
            by_outcome,
            cache_hit,
            cache_miss,
            registry,
            authn_seconds,
            authn_errors,
            reloads,
            rate_limited,
            robot_logins,
            config_generation,
            token_keys,
            signing_cert_expiry,
            keys_lock: std::sync::Mutex::new(()),
            federation_logins,
        }
    }
}

impl Metrics {
    pub(crate) fn request(&self, outcome: RequestOutcome, seconds: f64) {
        let (count, latency) = &self.by_outcome[outcome as usize];
        count.inc();
        latency.observe(seconds);
    }

    /// A credential-cache lookup for a password login.
    pub(crate) fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hit.inc();
        } else {
            self.cache_miss.inc();
        }
    }

    /// A login as robot `robot`: `ok`, `wrong_secret` or `expired`.
    pub(crate) fn robot_login(&self, robot: &str, outcome: &'static str) {
        self.robot_logins
            .get_or_create(&RobotLabel {
                robot: robot.to_owned(),
                outcome,
            })
            .inc();
    }

    /// A federated login under `binding` (`""`: a token exchange that
    /// matched no binding's issuer) ended with `result`.
    pub(crate) fn federation(&self, binding: &str, result: &'static str) {
        self.federation_logins
            .get_or_create(&FederationLabel {
                binding: binding.to_owned(),
                result,
            })
            .inc();
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
        if ok {
            self.config_generation.inc();
        }
    }

    /// [`Metrics::render`], with the key series set from `keys` and
    /// `expires_in` first (see [`Metrics::observe_keys`]).
    pub(crate) fn render_with_keys(
        &self,
        keys: &[crate::token::KeyInfo],
        expires_in: Option<i64>,
    ) -> String {
        let _whole = self.keys_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.observe_keys(keys, expires_in);
        self.render()
    }

    /// The keys the serving generation signs with and publishes, and the
    /// seconds left to the signing certificate (`expires_in`).
    fn observe_keys(&self, keys: &[crate::token::KeyInfo], expires_in: Option<i64>) {
        self.token_keys.clear();
        self.signing_cert_expiry.clear();
        for k in keys {
            let kid = k.kid.clone().unwrap_or_default();
            let label = KeyLabel {
                kid: kid.clone(),
                role: k.role.as_str(),
                alg: k.alg.as_str(),
                not_after: k
                    .not_after
                    .map(crate::token::chain::format_time)
                    .unwrap_or_default(),
            };
            self.token_keys.get_or_create(&label).set(1);
            if k.role == crate::token::Role::Signing {
                if let Some(left) = expires_in {
                    self.signing_cert_expiry
                        .get_or_create(&KidLabel { kid })
                        .set(left);
                }
            }
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_index_their_own_series() {
        for (i, o) in RequestOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{o:?}");
        }
        let m = Metrics::default();
        m.request(RequestOutcome::Throttled, 0.001);
        m.cache_lookup(true);
        let text = m.render();
        for want in [
            "regauth_token_requests_total{outcome=\"throttled\"} 1",
            "regauth_token_requests_total{outcome=\"granted\"} 0",
            "regauth_authn_cache_total{result=\"hit\"} 1",
            "regauth_authn_cache_total{result=\"miss\"} 0",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }

    #[test]
    fn keys_render_and_follow_the_generation() {
        use crate::token::{Alg, KeyInfo, Role};
        let m = Metrics::default();
        let key = |role, kid: &str, not_after| KeyInfo {
            role,
            kid: Some(kid.into()),
            alg: Alg::ES256,
            not_after,
            path: "k".into(),
        };
        m.observe_keys(
            &[
                key(Role::Signing, "OLD", Some(0)),
                key(Role::Published, "NEW", None),
            ],
            Some(86_400),
        );
        let text = m.render();
        for want in [
            "regauth_token_keys{kid=\"OLD\",role=\"signing\",alg=\"ES256\",not_after=\"1970-01-01T00:00:00Z\"} 1",
            "regauth_token_keys{kid=\"NEW\",role=\"published\",alg=\"ES256\",not_after=\"\"} 1",
            "regauth_signing_certificate_expiry_seconds{kid=\"OLD\"} 86400",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        m.observe_keys(&[key(Role::Signing, "NEW", None)], None);
        let text = m.render();
        assert!(!text.contains("OLD"), "{text}");
        assert!(
            !text.contains("regauth_signing_certificate_expiry_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn counters_render() {
        let m = Metrics::default();
        m.request(RequestOutcome::Granted, 0.001);
        m.request(RequestOutcome::Granted, 0.002);
        m.request(RequestOutcome::Unauthorized, 0.05);
        m.reload(false);
        let text = m.render();
        assert!(
            text.contains("regauth_token_requests_total{outcome=\"granted\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("regauth_token_requests_total{outcome=\"unauthorized\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("regauth_config_reloads_total{result=\"failure\"} 1"),
            "{text}"
        );
        assert!(text.contains("regauth_config_generation 1"), "{text}");
        assert!(
            text.contains("regauth_token_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
