//! Valid but risky setups, reported by `regauth check` (one line each, exit
//! status 0): the configuration works, but something an operator probably
//! did not mean follows from it. Decided on a few facts drawn from a
//! [`Generation`] (the key's algorithm needs the parsed key), so each rule
//! is a row in a table test.

use super::Generation;
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
    /// Some login takes a password (`users` with passwords, `htpasswd`,
    /// `ldap_auth`).
    passwords: bool,
    kid: KidMode,
    x5c: bool,
    alg: Alg,
}

impl Generation {
    /// One line per risky setting; empty when there is none.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let c = &self.config;
        let local_only = match &c.server.addr {
            Listen::Unix(_) => true,
            Listen::Tcp(a) => a.ip().is_loopback(),
        };
        rules(Facts {
            tls: c.server.tls.is_some(),
            local_only,
            passwords: c.users.as_ref().is_some_and(|u| !u.is_empty())
                || c.htpasswd.as_ref().is_some_and(|h| !h.is_empty())
                || c.ldap.is_some()
                || !c.federation.is_empty(),
            kid: c.token.kid,
            x5c: c.token.x5c,
            alg: self.signer.alg(),
        })
        .into_iter()
        .chain(crate::config::federation::warnings(&c.federation))
        .collect()
    }
}

fn rules(f: Facts) -> Vec<String> {
    let mut out = Vec::new();
    if !f.tls && !f.local_only && f.passwords {
        out.push("plain HTTP on a network address with password logins: passwords cross the network in clear unless a TLS proxy terminates in front; set server.certificate and server.key, or listen on loopback or a Unix socket behind the proxy".to_owned());
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
    fn table() {
        let safe = Facts {
            tls: true,
            local_only: false,
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
}
