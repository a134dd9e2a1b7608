//! Valid but risky setups, reported by `regauth check` (one line each, exit
//! status 0): the configuration works, but something an operator probably
//! did not mean follows from it. Decided on a few facts drawn from a
//! [`Generation`] (the key's algorithm needs the parsed key) and whether
//! regauth runs in a container, so each rule is a row in a table test.

use super::Generation;
use crate::config::robots::Robots;
use crate::config::{KidMode, Listen};
use crate::token::Alg;

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
struct Facts {
    /// regauth itself serves HTTPS.
    tls: bool,
    /// Listening on a Unix socket or a loopback address: only a local proxy
    /// can reach it, and TLS is that proxy's business.
    local_only: bool,
    /// Listening on a loopback TCP address.
    loopback_tcp: bool,
    /// Running as a container's first process (see [`in_container`]).
    container: bool,
    /// Some login takes a password (`users` with passwords, `htpasswd`,
    /// `ldap_auth`).
    passwords: bool,
    kid: KidMode,
    x5c: bool,
    alg: Alg,
}

/// A signing certificate this close to its notAfter is a warning: two
/// weeks leave time to make, publish or chain the next one.
pub(crate) const CERT_EXPIRY_WARNING_SECS: i64 = 14 * 86_400;

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Generation {
    /// Seconds until the signing certificate's notAfter (negative once
    /// expired), when there is a certificate.
    pub(crate) fn cert_expires_in(&self) -> Option<i64> {
        self.signer.not_after().map(|t| t as i64 - now_unix())
    }

    /// The warning about the signing certificate's expiry, when it is
    /// within [`CERT_EXPIRY_WARNING_SECS`] or past: logged at load and reload,
    /// and one of [`Generation::warnings`].
    pub(crate) fn expiry_warning(&self) -> Option<String> {
        let (cert_name, left) = (
            self.config.token.signing_pair.keys().1,
            self.cert_expires_in()?,
        );
        let at = crate::token::chain::format_time(self.signer.not_after()?);
        expiry_warning(cert_name, left, &at)
    }

    /// One line per risky setting; empty when there is none.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let c = &self.config;
        let loopback_tcp = matches!(&c.server.addr, Listen::Tcp(a) if a.ip().is_loopback());
        let local_only = loopback_tcp || matches!(c.server.addr, Listen::Unix(_));
        let mut out = rules(Facts {
            tls: c.server.tls.is_some(),
            local_only,
            loopback_tcp,
            container: in_container(),
            passwords: c.users.as_ref().is_some_and(|u| !u.is_empty())
                || c.htpasswd.as_ref().is_some_and(|h| !h.is_empty())
                || c.ldap.is_some()
                || c.robots.as_ref().is_some_and(|r| !r.robots.is_empty())
                || !c.federation.is_empty(),
            kid: c.token.kid,
            x5c: c.token.x5c,
            alg: self.signer.alg(),
        });
        if let Some(r) = &c.robots {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let mode = std::fs::metadata(&r.path)
                .ok()
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
            out.extend(robot_rules(r, now, mode));
        }
        out.extend(crate::config::federation::warnings(&c.federation));
        out.extend(self.expiry_warning());
        for f in self.signer.published_signing_key() {
            out.push(format!(
                "token.publish: {} holds the signing key itself, which the JWKS and the bundle already carry; publish the next key (or the previous one) instead",
                f.display()
            ));
        }
        out
    }
}

fn expiry_warning(cert_name: &str, left: i64, at: &str) -> Option<String> {
    if left < 0 {
        Some(format!("{cert_name}: the signing certificate expired on {at}: registries that check it (x5c, rootcertbundle with a chain) refuse the tokens; make the next one (`regauth keygen --signed-by CA_DIR`, or publish a new key first) and switch to it"))
    } else if left < CERT_EXPIRY_WARNING_SECS {
        Some(format!("{cert_name}: the signing certificate expires in {} days ({at}); make the next one (`regauth keygen --signed-by CA_DIR`, or publish a new key first) and switch to it before then", left / 86_400))
    } else {
        None
    }
}

/// Whether regauth runs as a container's first process: PID 1, as the
/// image's entrypoint is (podman, Docker, Kubernetes). Marker files
/// (`/run/.containerenv`, `/.dockerenv`) would also say so for every child
/// of a shell or test runner inside a container, where a loopback address is
/// what was meant; an `--init` process in front hides the container from
/// this check, which only costs the warning.
fn in_container() -> bool {
    std::process::id() == 1
}

/// A robot this close to its expiry is warned about.
const EXPIRY_WARNING_SECS: i64 = 7 * 86_400;

/// The robots file's risks at `now` (Unix seconds), its mode when known.
fn robot_rules(r: &Robots, now: i64, mode: Option<u32>) -> Vec<String> {
    let mut out = Vec::new();
    let file = r.path.display();
    if mode.is_some_and(|m| m & 0o004 != 0) {
        out.push(format!(
            "robots_file {file} is readable by every user: its hashes cannot be turned back into secrets, but it tells anyone which robots exist and what they may push; chmod 600 (or 640 for the server's group)"
        ));
    }
    let expired: Vec<&str> = r
        .robots
        .iter()
        .filter(|x| x.expired(now))
        .map(|x| x.name.as_str())
        .collect();
    if !expired.is_empty() {
        out.push(format!(
            "robots_file {file}: expired robots (their logins are refused): {}; remove them with `regauth robot remove --file {file} --name NAME`",
            expired.join(", ")
        ));
    }
    let soon: Vec<String> = r
        .robots
        .iter()
        .filter(|x| !x.expired(now) && x.expires - now < EXPIRY_WARNING_SECS)
        .map(|x| format!("{} ({})", x.name, x.expires_text()))
        .collect();
    if !soon.is_empty() {
        out.push(format!(
            "robots_file {file}: robots expiring within 7 days: {}; rotate: `regauth robot add` a new one, move the client to it, then `regauth robot remove` the old one",
            soon.join(", ")
        ));
    }
    out
}

fn rules(f: Facts) -> Vec<String> {
    let mut out = Vec::new();
    if !f.tls && !f.local_only && f.passwords {
        out.push("plain HTTP on a network address with password logins: passwords cross the network in clear unless a TLS proxy terminates in front; set server.certificate and server.key, or listen on loopback or a Unix socket behind the proxy".to_owned());
    }
    if f.container && f.loopback_tcp {
        out.push("server.addr is a loopback address and regauth runs in a container: only processes in the container's network namespace reach it, not a published port (-p) or a Service; listen on \":5001\" unless the container shares the host's network (--network host) or a proxy runs beside it".to_owned());
    }
    if f.kid == KidMode::Thumbprint && !f.x5c && f.alg != Alg::RS256 {
        out.push(format!(
            "token kid thumbprint with an {} key: distribution 3.0.x computes the thumbprints of EC and Ed25519 keys wrongly and refuses these tokens (fixed in 3.1.0); set token.x5c: true with token.certificate, or use an RSA key",
            f.alg.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_table() {
        let robot = |name: &str, expires: i64| crate::config::robots::Robot {
            name: name.into(),
            secret_sha256: [0; 32],
            expires,
            ceiling: Default::default(),
            labels: Default::default(),
            comment: None,
        };
        let now = 1_000_000;
        let day = 86_400;
        let file = |robots| Robots {
            path: "robots.yaml".into(),
            robots,
        };
        // (robots, mode, warnings expected: the start of each)
        let cases: Vec<(Robots, Option<u32>, Vec<&str>)> = vec![
            (file(vec![]), Some(0o100600), vec![]),
            (file(vec![robot("a", now + 30 * day)]), Some(0o100640), vec![]),
            (file(vec![]), Some(0o100644), vec!["robots_file robots.yaml is readable by every user"]),
            (file(vec![robot("a", now + 30 * day)]), None, vec![]),
            (
                file(vec![robot("a", now), robot("b", now - 1), robot("c", now + day)]),
                Some(0o100600),
                vec!["robots_file robots.yaml: expired robots (their logins are refused): a, b;", "robots_file robots.yaml: robots expiring within 7 days: c (1970-01-13T13:46:40Z);"],
            ),
            (file(vec![robot("a", now + 7 * day - 1)]), Some(0o600), vec!["robots_file robots.yaml: robots expiring within 7 days: a"]),
            (file(vec![robot("a", now + 7 * day)]), Some(0o600), vec![]),
        ];
        for (robots, mode, want) in cases {
            let got = robot_rules(&robots, now, mode);
            assert_eq!(got.len(), want.len(), "{mode:?}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w) && !g.contains('\n'), "{g}");
            }
        }
    }

    #[test]
    fn table() {
        let safe = Facts {
            tls: true,
            local_only: false,
            loopback_tcp: false,
            container: false,
            passwords: true,
            kid: KidMode::Libtrust,
            x5c: false,
            alg: Alg::ES256,
        };
        // (facts, warnings expected: the start of each)
        let cases: Vec<(Facts, Vec<&str>)> = vec![
            (safe, vec![]),
            (
                Facts { tls: false, ..safe },
                vec!["plain HTTP on a network address"],
            ),
            (
                Facts {
                    tls: false,
                    local_only: true,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    tls: false,
                    passwords: false,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    local_only: true,
                    loopback_tcp: true,
                    container: true,
                    ..safe
                },
                vec!["server.addr is a loopback address and regauth runs in a container"],
            ),
            (
                Facts {
                    local_only: true,
                    loopback_tcp: true,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    local_only: true,
                    container: true,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    container: true,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    kid: KidMode::Thumbprint,
                    ..safe
                },
                vec!["token kid thumbprint with an ES256 key"],
            ),
            (
                Facts {
                    kid: KidMode::Thumbprint,
                    alg: Alg::EdDSA,
                    ..safe
                },
                vec!["token kid thumbprint with an EdDSA key"],
            ),
            (
                Facts {
                    kid: KidMode::Thumbprint,
                    alg: Alg::RS256,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    kid: KidMode::Thumbprint,
                    x5c: true,
                    ..safe
                },
                vec![],
            ),
            (
                Facts {
                    tls: false,
                    kid: KidMode::Thumbprint,
                    alg: Alg::ES384,
                    ..safe
                },
                vec!["plain HTTP", "token kid thumbprint with an ES384 key"],
            ),
        ];
        for (facts, want) in cases {
            let got = rules(facts);
            assert_eq!(got.len(), want.len(), "{facts:?}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w) && !g.contains('\n'), "{facts:?}: {g}");
            }
        }
    }

    #[test]
    fn expiry() {
        // (seconds left, warning expected: its start)
        let cases = [
            (400 * 86_400, None),
            (15 * 86_400, None),
            (
                13 * 86_400 + 5,
                Some("token.certificate: the signing certificate expires in 13 days (DATE)"),
            ),
            (
                0,
                Some("token.certificate: the signing certificate expires in 0 days"),
            ),
            (
                -5,
                Some("token.certificate: the signing certificate expired on DATE"),
            ),
        ];
        for (left, want) in cases {
            let got = expiry_warning("token.certificate", left, "DATE");
            match (&got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.starts_with(w), "{left}: {g}"),
                _ => panic!("{left}: got {got:?}, want {want:?}"),
            }
        }
    }
}
