//! bcrypt verification of the password tables' hashes, on the blocking
//! pool (see [`super::Chain`]).

use crate::secret::Secret;

/// bcrypt reads at most this many bytes of a password.
pub(crate) const BCRYPT_MAX_PASSWORD: usize = 72;

/// Verifies a password against a bcrypt hash. Passwords longer than bcrypt's
/// 72-byte limit never match (no silent truncation). The crate's
/// `non_truncating_verify` is not used: it also refuses exactly 72 bytes,
/// which Go's and Apache's bcrypt accept.
pub(crate) fn verify(hash: &str, password: &Secret) -> bool {
    password.expose().len() <= BCRYPT_MAX_PASSWORD
        && bcrypt::verify(password.expose(), hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H2Y: &str = "$2y$04$48LdAX7zlsrW3AyNusJUhOPNc/6g.GwSNdjHmh33nqyCHYy/lrf3K";

    #[test]
    fn verify_accepts_every_bcrypt_prefix_and_rejects_truncation() {
        for prefix in ["$2y$", "$2a$", "$2b$"] {
            let h = H2Y.replacen("$2y$", prefix, 1);
            assert!(verify(&h, &Secret::new("secret")), "{prefix}");
            assert!(!verify(&h, &Secret::new("Secret")), "{prefix}");
        }
        let long = "a".repeat(72);
        let h = bcrypt::hash(&long, 4).unwrap();
        assert!(verify(&h, &Secret::new(long.clone())));
        // bcrypt only reads 72 bytes: a longer password must not match the
        // hash of its 72-byte prefix.
        assert!(!verify(&h, &Secret::new(format!("{long}EXTRA"))));
    }
}
