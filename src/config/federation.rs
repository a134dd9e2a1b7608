//! `federation:`: the OIDC issuers whose ID tokens log in (CI jobs'
//! workload identity), as plain validated data. Each binding names an
//! issuer, the audience its tokens must carry, the algorithms accepted,
//! the claims required (docker_auth patterns, as in the ACL) and how
//! claims become the account and labels the ACL sees. Keys are not
//! fetched here: `authn::federation` does that from this data.
//!
//! Rules checked at load, each an error naming the binding:
//! - the name is the Basic user name a job logs in with, so it must not
//!   be a user of `users` or the htpasswd file, nor another binding's;
//! - `audience` is required: without it, a token minted for any other
//!   service of the same issuer would log in;
//! - `algorithms` never holds `none` or an HMAC algorithm (`HS*`): an
//!   issuer's keys are public, so a MAC under them proves nothing;
//! - `issuer`, `jwks_url` are `https://`, or `http://` to a loopback
//!   address only (a test issuer on the same host);
//! - `require` values are ACL patterns without placeholders; `account`
//!   and `labels` are templates whose only placeholder is
//!   `${claims:NAME}`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use crate::core::acl::ValuePattern;

/// Algorithms accepted when a binding names none.
pub(crate) const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// Sessions longer than this get a `check` warning.
pub(crate) const LONG_SESSION_SECS: u64 = 12 * 3600;

/// One `federation:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBinding {
    pub(crate) name: String,
    pub(crate) issuer: String,
    #[serde(default)]
    pub(crate) audience: Option<String>,
    #[serde(default)]
    pub(crate) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) max_age: Option<u64>,
    #[serde(default)]
    pub(crate) require: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) account: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, RawLabel>,
    #[serde(default)]
    pub(crate) session: Option<u64>,
    #[serde(default)]
    pub(crate) jwks_url: Option<String>,
    #[serde(default)]
    pub(crate) jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) ca_certificate: Option<PathBuf>,
}

/// A label's value: one template or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawLabel {
    One(String),
    Many(Vec<String>),
}

/// An asymmetric JWS algorithm a binding may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub(crate) const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where a binding's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `{issuer}/.well-known/openid-configuration` names the `jwks_uri`.
    Discovery(String),
    /// `jwks_url`.
    Url(String),
    /// `jwks_file` (air-gapped): the file's text, read at load.
    File { path: PathBuf, text: String },
}

/// A template of `account` or a label: literal text and `${claims:NAME}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    src: String,
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Lit(String),
    Claim(String),
}

impl Template {
    pub(crate) fn parse(src: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start + 2..].find('}') else {
                return Err(format!("{src:?}: \"${{\" without a closing \"}}\""));
            };
            let inner = &rest[start + 2..start + 2 + len];
            let claim = inner
                .strip_prefix("claims:")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    format!("{src:?}: unknown placeholder ${{{inner}}} (only ${{claims:NAME}} is supported)")
                })?;
            if start > 0 {
                parts.push(TemplatePart::Lit(rest[..start].to_owned()));
            }
            parts.push(TemplatePart::Claim(claim.to_owned()));
            rest = &rest[start + 3 + len..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Lit(rest.to_owned()));
        }
        Ok(Template {
            src: src.to_owned(),
            parts,
        })
    }

    /// The text with each claim's value in place; `Err(name)` names the
    /// first claim `value` has no value for.
    pub(crate) fn render(
        &self,
        mut value: impl FnMut(&str) -> Option<String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Lit(s) => out.push_str(s),
                TemplatePart::Claim(c) => out.push_str(&value(c).ok_or_else(|| c.clone())?),
            }
        }
        Ok(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.src
    }
}

/// A validated binding.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) name: String,
    /// The exact `iss` tokens must carry.
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) algorithms: Vec<Algorithm>,
    /// Seconds: tokens whose `iat` is older are refused.
    pub(crate) max_age: Option<u64>,
    /// Claim -> pattern; every one must match.
    pub(crate) require: Vec<(String, ValuePattern)>,
    pub(crate) account: Template,
    pub(crate) labels: Vec<(String, Vec<Template>)>,
    /// Seconds after the ID token's `iat` a refresh token may last; 0 =
    /// no refresh tokens for this binding.
    pub(crate) session: u64,
    pub(crate) keys: KeySource,
    /// `ca_certificate`: the only roots trusted for this binding's
    /// fetches (DER); empty = the system's roots.
    pub(crate) ca_certificates: Vec<CertificateDer<'static>>,
    pub(crate) ca_path: Option<PathBuf>,
}

impl Binding {
    /// Whether the keys are fetched over the network.
    pub(crate) fn fetches(&self) -> bool {
        !matches!(self.keys, KeySource::File { .. })
    }

    /// A stable description of everything that decides who this binding
    /// lets in and as whom: refresh tokens are bound to it, so changing
    /// the binding revokes them.
    pub(crate) fn identity_record(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        put(&self.issuer);
        put(&self.audience);
        for (claim, p) in &self.require {
            put(claim);
            put(p.as_str());
        }
        put(self.account.as_str());
        for (label, values) in &self.labels {
            put(label);
            for v in values {
                put(v.as_str());
            }
        }
        out
    }
}

/// Whether `url` may be fetched: `https://`, or `http://` to a loopback
/// host. `what` names the key for the message.
pub(crate) fn check_url(what: &str, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{what}: {url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "{what}: {url:?}: plain http:// is accepted only for a loopback issuer (127.0.0.1, ::1, localhost); use https://"
        )),
        other => Err(format!("{what}: {url:?}: scheme {other:?} is not https")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Validates the `federation:` list. `is_user` says whether a name is a
/// user of `users` or the htpasswd file.
pub(crate) fn bindings(
    raw: Vec<RawBinding>,
    is_user: impl Fn(&str) -> bool,
) -> Result<Vec<Binding>, String> {
    let mut out: Vec<Binding> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let at = if r.name.is_empty() {
            format!("federation[{i}]")
        } else {
            format!("federation[{i}] ({})", r.name)
        };
        let b = binding(r, &is_user).map_err(|e| format!("{at}.{e}"))?;
        if let Some(j) = out.iter().position(|o| o.name == b.name) {
            return Err(format!(
                "{at}.name: {:?} is already the name of federation[{j}]",
                b.name
            ));
        }
        out.push(b);
    }
    Ok(out)
}

fn binding(r: RawBinding, is_user: &impl Fn(&str) -> bool) -> Result<Binding, String> {
    if r.name.is_empty() {
        return Err("name: must not be empty (it is the user name jobs log in with)".into());
    }
    if r.name.contains(|c: char| c.is_control() || c == ':') {
        return Err(format!(
            "name: {:?}: no control characters or ':' (it is a Basic user name)",
            r.name
        ));
    }
    if is_user(&r.name) {
        return Err(format!(
            "name: {:?} is also a user of users or htpasswd; a login as it would be ambiguous, rename one",
            r.name
        ));
    }
    if r.issuer.is_empty() {
        return Err("issuer: must not be empty (the exact iss of the tokens)".into());
    }
    check_url("issuer", &r.issuer)?;
    let audience = match r.audience {
        Some(a) if !a.is_empty() => a,
        _ => return Err("audience: missing; set it to the audience your CI requests tokens for (e.g. the registry's host name), so tokens minted for other services do not log in".into()),
    };
    let algorithms = match r.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) if list.is_empty() => {
            return Err("algorithms: must not be empty (omit it for RS256 and ES256)".into())
        }
        Some(list) => list
            .iter()
            .map(|a| {
                if a.eq_ignore_ascii_case("none") || a.to_ascii_uppercase().starts_with("HS") {
                    return Err(format!(
                        "algorithms: {a:?} is never accepted: unsigned and HMAC tokens prove nothing when the key is public"
                    ));
                }
                Algorithm::parse(a).ok_or_else(|| {
                    format!(
                        "algorithms: unknown algorithm {a:?} (one of {})",
                        Algorithm::ALL.map(Algorithm::as_str).join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if r.max_age == Some(0) {
        return Err("max_age: must be a positive number of seconds (omit it for no limit)".into());
    }
    let require = r
        .require
        .into_iter()
        .map(|(claim, pattern)| {
            if claim.is_empty() {
                return Err("require: a claim name must not be empty".to_owned());
            }
            ValuePattern::compile(&pattern)
                .map(|p| (claim.clone(), p))
                .map_err(|e| format!("require.{claim}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let account = Template::parse(
        r.account
            .as_deref()
            .unwrap_or(&format!("{}:${{claims:sub}}", r.name)),
    )
    .map_err(|e| format!("account: {e}"))?;
    let labels = r
        .labels
        .into_iter()
        .map(|(label, v)| {
            let list = match v {
                RawLabel::One(s) => vec![s],
                RawLabel::Many(l) => l,
            };
            list.iter()
                .map(|s| Template::parse(s).map_err(|e| format!("labels.{label}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map(|t| (label, t))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys = match (r.jwks_url, r.jwks_file) {
        (Some(_), Some(_)) => return Err("jwks_url and jwks_file are exclusive: keep one".into()),
        (Some(u), None) => {
            check_url("jwks_url", &u)?;
            KeySource::Url(u)
        }
        (None, Some(path)) => {
            let text = super::read(&path, "jwks_file")?;
            let set: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("jwks_file ({}): not JSON: {e}", path.display()))?;
            if !set.get("keys").is_some_and(|k| k.is_array()) {
                return Err(format!(
                    "jwks_file ({}): not a JWK Set (no \"keys\" list)",
                    path.display()
                ));
            }
            KeySource::File { path, text }
        }
        (None, None) => KeySource::Discovery(r.issuer.clone()),
    };
    let ca_certificates = match &r.ca_certificate {
        Some(path) => {
            let pem = super::read(path, "ca_certificate")?;
            let mut roots = rustls::RootCertStore::empty();
            let mut certs = Vec::new();
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let c =
                    c.map_err(|e| format!("ca_certificate ({}): bad PEM: {e}", path.display()))?;
                roots
                    .add(c.clone())
                    .map_err(|e| format!("ca_certificate ({}): {e}", path.display()))?;
                certs.push(c);
            }
            if certs.is_empty() {
                return Err(format!(
                    "ca_certificate ({}): no certificate found",
                    path.display()
                ));
            }
            certs
        }
        None => Vec::new(),
    };
    Ok(Binding {
        name: r.name,
        issuer: r.issuer,
        audience,
        algorithms,
        max_age: r.max_age,
        require,
        account,
        labels,
        session: r.session.unwrap_or(0),
        keys,
        ca_certificates,
        ca_path: r.ca_certificate,
    })
}

/// `check`'s warnings for the bindings (no network).
pub(crate) fn warnings(bindings: &[Binding]) -> Vec<String> {
    let mut out = Vec::new();
    for b in bindings {
        if b.require.is_empty() {
            out.push(format!(
                "federation {:?}: no require: every token {} issues for audience {:?} logs in (for GitHub or GitLab, any repository of any owner); pin e.g. repository_owner_id or project_id",
                b.name, b.issuer, b.audience
            ));
        }
        if b.session > LONG_SESSION_SECS {
            out.push(format!(
                "federation {:?}: session is {} s: a refresh token outlives the job's ID token by up to that long; keep it to the length of a build (e.g. 3600)",
                b.name, b.session
            ));
        }
        if b.max_age.is_none() && b.session > 0 {
            out.push(format!(
                "federation {:?}: session without max_age: an old ID token still within its exp can start a session; set max_age (e.g. 600)",
                b.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawBinding {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = "name: github\nissuer: https://token.actions.githubusercontent.com\naudience: reg.example\n";

    #[test]
    fn load_errors_table() {
        let cases: &[(&str, &str)] = &[
            (
                "name: ''\nissuer: https://i\naudience: a\n",
                "name: must not be empty",
            ),
            (
                "name: alice\nissuer: https://i\naudience: a\n",
                "also a user",
            ),
            (
                "name: a:b\nissuer: https://i\naudience: a\n",
                "no control characters",
            ),
            ("name: g\nissuer: https://i\n", "audience: missing"),
            (
                "name: g\nissuer: https://i\naudience: ''\n",
                "audience: missing",
            ),
            (
                "name: g\nissuer: http://ci.example\naudience: a\n",
                "only for a loopback issuer",
            ),
            ("name: g\nissuer: ftp://i\naudience: a\n", "is not https"),
            ("name: g\nissuer: not a url\naudience: a\n", "is not a URL"),
            (
                "name: g\nissuer: https://i\naudience: a\nalgorithms: [none]\n",
                "never accepted",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nalgorithms: [HS256]\n",
                "never accepted",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nalgorithms: [RS256, hs512]\n",
                "never accepted",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nalgorithms: [XX1]\n",
                "unknown algorithm",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nalgorithms: []\n",
                "must not be empty",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nmax_age: 0\n",
                "max_age",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nrequire: {ref: '/(/'}\n",
                "require.ref",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nrequire: {ref: '${account}'}\n",
                "placeholders",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\naccount: '${labels:x}'\n",
                "only ${claims:NAME}",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\nlabels: {r: '${claims:x'}\n",
                "labels.r",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\njwks_url: http://10.0.0.1/k\n",
                "jwks_url",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\njwks_url: https://x\njwks_file: /x\n",
                "exclusive",
            ),
            (
                "name: g\nissuer: https://i\naudience: a\njwks_file: /nonexistent/jwks.json\n",
                "jwks_file: cannot read",
            ),
        ];
        for (yaml, want) in cases {
            let e = bindings(vec![raw(yaml)], |n| n == "alice").unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        let dup = bindings(vec![raw(BASE), raw(BASE)], |_| false).unwrap_err();
        assert!(dup.contains("already the name of federation[0]"), "{dup}");
    }

    #[test]
    fn defaults_and_loopback_http() {
        let b = &bindings(vec![raw(BASE)], |_| false).unwrap()[0];
        assert_eq!(b.algorithms, DEFAULT_ALGORITHMS);
        assert_eq!(b.account.as_str(), "github:${claims:sub}");
        assert_eq!(b.session, 0);
        assert_eq!(
            b.keys,
            KeySource::Discovery("https://token.actions.githubusercontent.com".into())
        );
        for issuer in [
            "http://127.0.0.1:8080",
            "http://[::1]:1",
            "http://localhost:9/x",
        ] {
            let y = format!("name: t\nissuer: {issuer}\naudience: a\n");
            assert!(bindings(vec![raw(&y)], |_| false).is_ok(), "{issuer}");
        }
    }

    #[test]
    fn templates_render_claims() {
        let t = Template::parse("gh:${claims:repository}@${claims:ref}").unwrap();
        let claims = |c: &str| match c {
            "repository" => Some("org/app".to_owned()),
            "ref" => Some("refs/heads/main".to_owned()),
            _ => None,
        };
        assert_eq!(t.render(claims).unwrap(), "gh:org/app@refs/heads/main");
        let missing = Template::parse("${claims:nope}").unwrap();
        assert_eq!(missing.render(claims), Err("nope".to_owned()));
        assert_eq!(
            Template::parse("plain").unwrap().render(claims).unwrap(),
            "plain"
        );
    }

    #[test]
    fn the_ci_example_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/regauth.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Its paths are relative to the repository root.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(cwd, std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
        let policy = crate::config::Config::policy_from_yaml(&path, &text).unwrap();
        let names: Vec<&str> = policy.federation.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["github", "gitlab", "k8s"]);
        assert!(
            warnings(&policy.federation).is_empty(),
            "{:?}",
            warnings(&policy.federation)
        );
    }

    #[test]
    fn warnings_table() {
        let cases: &[(&str, &[&str])] = &[
            ("require: {ref: main}\n", &[]),
            ("", &["no require"]),
            (
                "require: {ref: main}\nsession: 86400\nmax_age: 600\n",
                &["session is 86400 s"],
            ),
            (
                "require: {ref: main}\nsession: 600\n",
                &["session without max_age"],
            ),
        ];
        for (extra, want) in cases {
            let b = bindings(vec![raw(&format!("{BASE}{extra}"))], |_| false).unwrap();
            let w = warnings(&b);
            assert_eq!(w.len(), want.len(), "{extra}: {w:?}");
            for (line, want) in w.iter().zip(want.iter()) {
                assert!(line.contains(want), "{extra}: {line}");
            }
        }
    }
}
