//! Federation: logins with an OIDC ID token (a CI job's workload
//! identity) under a `federation:` binding. A binding is picked by name
//! (Basic and password-grant logins, where the user name is the binding's)
//! or, for a token exchange, as the first binding whose checks all hold.
//! The token is verified against the issuer's keys ([`keys`]) with the
//! checks of [`verify`]; its claims become the account and labels the
//! ACL sees.
//!
//! Failures stay separate: an issuer whose keys cannot be had makes only
//! its bindings unavailable (a 503), and only while no key is cached.
//! Errors name the binding and the failed check, never the token.

mod keys;
mod verify;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::config::federation::{Binding, KeySource};
use crate::core::Labels;

use keys::IssuerKeys;
pub use verify::{Check, Refusal};

/// A successful federated login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Federated {
    /// The binding's name.
    pub(crate) binding: String,
    /// The token's `sub`.
    pub(crate) subject: String,
    /// What the ACL sees as the account (the binding's `account` template).
    pub(crate) account: String,
    pub(crate) labels: Labels,
    /// The token's `iat`, when it has one (refresh tokens last at most
    /// the binding's `session` after it).
    pub(crate) issued_at: Option<u64>,
    /// The token's `exp`.
    pub(crate) expires_at: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FederationError {
    /// The token failed a check: a 401.
    #[error("federated login refused by binding {binding:?}: check={}{}", refusal.check, refusal.claim.as_ref().map_or(String::new(), |c| format!(" claim={c}")))]
    Refused { binding: String, refusal: Refusal },
    /// No key of the binding's issuer could be had: a 503.
    #[error("binding {binding:?}: issuer keys unavailable: {reason}")]
    Unavailable { binding: String, reason: String },
}

impl FederationError {
    /// The binding named (`""` when a token exchange found no binding of
    /// the token's issuer).
    pub(crate) fn binding(&self) -> &str {
        match self {
            FederationError::Refused { binding, .. }
            | FederationError::Unavailable { binding, .. } => binding,
        }
    }
}

struct Bound {
    binding: Arc<Binding>,
    keys: Arc<IssuerKeys>,
}

/// The bindings of one configuration with their key caches.
#[derive(Default)]
pub(crate) struct Federation {
    bindings: Vec<Bound>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.bindings.iter().map(|b| &b.binding.name))
            .finish()
    }
}

impl Federation {
    /// The bindings' key caches (one per key source and trust anchors),
    /// empty: [`Federation::prefetch`] starts their first fetch.
    pub(crate) fn new(bindings: &[Binding]) -> Federation {
        let system_roots = OnceLock::new();
        let roots = || {
            system_roots
                .get_or_init(|| {
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    roots
                })
                .clone()
        };
        let mut shared: HashMap<(String, Vec<Vec<u8>>), Arc<IssuerKeys>> = HashMap::new();
        let mut out = Vec::with_capacity(bindings.len());
        for b in bindings {
            let ca: Vec<Vec<u8>> = b.ca_certificates.iter().map(|c| c.to_vec()).collect();
            let source_key = match &b.keys {
                KeySource::Discovery(i) => format!("discovery {i}"),
                KeySource::Url(u) => format!("url {u}"),
                KeySource::File { path, .. } => format!("file {}", path.display()),
            };
            let keys = shared
                .entry((format!("{source_key} {}", b.issuer), ca))
                .or_insert_with(|| {
                    let client = if b.fetches() {
                        match keys::client(&b.ca_certificates, &roots) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                tracing::error!(binding = %b.name, error = %e, "federation: no HTTP client");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    IssuerKeys::new(b.keys.clone(), b.issuer.clone(), client)
                })
                .clone();
            out.push(Bound {
                binding: Arc::new(b.clone()),
                keys,
            });
        }
        Federation { bindings: out }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Starts fetching every issuer's keys in the background, when there
    /// is a runtime to run the fetches: a start or a reload never waits
    /// for an issuer.
    pub(crate) fn prefetch(&self) {
        let mut started: Vec<&Arc<IssuerKeys>> = Vec::new();
        for b in &self.bindings {
            if !started.iter().any(|k| Arc::ptr_eq(k, &b.keys)) {
                b.keys.prefetch();
                started.push(&b.keys);
            }
        }
    }

    /// Seeds each key cache with the keys `previous` (the generation this
    /// one replaces) holds for the same source and trust anchors: a reload
    /// while an issuer is down keeps its logins working.
    pub(crate) fn inherit(&self, previous: &Federation) {
        for b in &self.bindings {
            let same = previous.bindings.iter().find(|p| {
                p.binding.keys == b.binding.keys
                    && p.binding.issuer == b.binding.issuer
                    && p.binding.ca_certificates == b.binding.ca_certificates
            });
            if let Some(p) = same {
                b.keys.seed_from(&p.keys);
            }
        }
    }

    /// The binding named `name`.
    pub(crate) fn binding(&self, name: &str) -> Option<&Binding> {
        self.find(name).map(|b| &*b.binding)
    }

    fn find(&self, name: &str) -> Option<&Bound> {
        self.bindings.iter().find(|b| b.binding.name == name)
    }

    /// A login under the binding `name` (`None`: no such binding).
    pub(crate) async fn login(
        &self,
        name: &str,
        token: &str,
        now: u64,
    ) -> Option<Result<Federated, FederationError>> {
        let bound = self.find(name)?;
        let refused = |refusal: Refusal| FederationError::Refused {
            binding: name.to_owned(),
            refusal,
        };
        Some(match verify::peek(token) {
            Ok(head) => Box::pin(verify_one(bound, token, &head, now)).await,
            Err(check) => Err(refused(check.into())),
        })
    }

    /// A token exchange: the first binding of the token's issuer whose
    /// checks all hold. When none does, the first one's refusal.
    pub(crate) async fn exchange(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Federated, FederationError> {
        let head = verify::peek(token).map_err(|check| FederationError::Refused {
            binding: String::new(),
            refusal: check.into(),
        })?;
        let mut first_error = None;
        for bound in self
            .bindings
            .iter()
            .filter(|b| head.iss.as_deref() == Some(b.binding.issuer.as_str()))
        {
            match Box::pin(verify_one(bound, token, &head, now)).await {
                Ok(f) => return Ok(f),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(FederationError::Refused {
            binding: String::new(),
            refusal: Check::Iss.into(),
        }))
    }

    /// Fetches every binding's keys now (for `regauth check`): one line
    /// per binding whose issuer cannot give them.
    pub(crate) async fn probe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.bindings {
            if let Err(e) = b.keys.fetch().await {
                out.push(format!(
                    "federation {:?}: keys cannot be fetched now ({e}); logins under it answer 503 until they can",
                    b.binding.name
                ));
            }
        }
        out
    }
}

/// Every check of `bound` on `token`, then the claims mapped.
async fn verify_one(
    bound: &Bound,
    token: &str,
    head: &verify::Unverified,
    now: u64,
) -> Result<Federated, FederationError> {
    let b = &*bound.binding;
    let refused = |refusal: Refusal| FederationError::Refused {
        binding: b.name.clone(),
        refusal,
    };
    // Checks that need no key first: a token of another issuer or with a
    // refused algorithm costs no fetch.
    verify::allowed_alg(b, head).map_err(|c| refused(c.into()))?;
    if head.iss.as_deref() != Some(b.issuer.as_str()) {
        return Err(refused(Check::Iss.into()));
    }
    let mut keys = bound
        .keys
        .keys()
        .await
        .map_err(|e| FederationError::Unavailable {
            binding: b.name.clone(),
            reason: e.0,
        })?;
    if !keys.knows(head.kid.as_deref()) {
        if let Some(fresh) = bound.keys.refetch_for_unknown_kid().await {
            keys = fresh;
        }
    }
    let claims = verify::verify(b, &keys, token, head, now).map_err(refused)?;
    map_claims(b, &claims).map_err(refused)
}

/// The account and labels the binding's templates make of `claims`.
fn map_claims(b: &Binding, claims: &verify::Claims) -> Result<Federated, Refusal> {
    let text = |c: &str| verify::claim_text(claims, c);
    let missing = |claim: String| Refusal {
        check: Check::Claims,
        claim: Some(claim),
    };
    let subject = text("sub").ok_or_else(|| missing("sub".into()))?;
    let account = b.account.render(text).map_err(missing)?;
    let mut labels = Labels::new();
    for (label, templates) in &b.labels {
        let values = templates
            .iter()
            .map(|t| t.render(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(missing)?;
        labels.insert(label.clone(), values);
    }
    let time = |c: &str| claims.get(c).and_then(serde_json::Value::as_u64);
    Ok(Federated {
        binding: b.name.clone(),
        subject,
        account,
        labels,
        issued_at: time("iat"),
        expires_at: time("exp").unwrap_or(0),
    })
}
