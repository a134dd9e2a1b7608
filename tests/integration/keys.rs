//! Key fixtures: every supported PEM form loads, and key IDs equal the
//! golden values computed independently (tests/fixtures/keys/golden.py).

use regauth::token::keys::{libtrust_kid, thumbprint_kid, PrivateKey};
use regauth::token::Alg;

use crate::support::fixture;

#[test]
fn key_ids_match_the_golden_file() {
    let golden = std::fs::read_to_string(fixture("../golden/kids.txt")).unwrap();
    let mut n = 0;
    for line in golden.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [file, libtrust, thumb] = parts[..] else {
            panic!("bad golden line {line}")
        };
        let pem = std::fs::read_to_string(fixture(&format!("keys/{file}"))).unwrap();
        let key = PrivateKey::from_pem(&pem, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            libtrust_kid(&key.public_spki_der()),
            libtrust,
            "{file} libtrust"
        );
        assert_eq!(
            thumbprint_kid(&key.public_jwk()),
            thumb,
            "{file} thumbprint"
        );
        n += 1;
    }
    assert!(n >= 8, "golden file lists every fixture");
}

#[test]
fn pem_forms_and_algorithms() {
    let cases = [
        ("rsa2048.pem", Alg::RS256),
        ("rsa2048.pkcs1.pem", Alg::RS256),
        ("p256.pem", Alg::ES256),
        ("p256.sec1.pem", Alg::ES256),
        ("p256-leading-zero.pem", Alg::ES256),
        ("p384.pem", Alg::ES384),
        ("p521.pem", Alg::ES512),
        ("ed25519.pem", Alg::EdDSA),
    ];
    for (file, alg) in cases {
        let pem = std::fs::read_to_string(fixture(&format!("keys/{file}"))).unwrap();
        assert_eq!(
            PrivateKey::from_pem(&pem, None).unwrap().alg(),
            alg,
            "{file}"
        );
    }
    let bad = [
        ("", "no PRIVATE KEY block"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "no PRIVATE KEY block",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "unsupported or malformed",
        ),
    ];
    for (pem, want) in bad {
        let err = PrivateKey::from_pem(pem, None).unwrap_err().to_string();
        assert!(err.contains(want), "{pem:?}: {err}");
    }
    let dbg = format!(
        "{:?}",
        PrivateKey::from_pem(
            &std::fs::read_to_string(fixture("keys/p256.pem")).unwrap(),
            None
        )
        .unwrap()
    );
    assert_eq!(dbg, "PrivateKey(ES256, ***)");
}

#[test]
fn es512_signatures_verify() {
    // jsonwebtoken cannot verify ES512: check against the fixture's public
    // key file, with aws-lc-rs's verifier.
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P521_SHA512_FIXED};
    let pem = std::fs::read_to_string(fixture("keys/p521.pem")).unwrap();
    let key = PrivateKey::from_pem(&pem, None).unwrap();
    let sig = key.sign(b"header.payload");
    assert_eq!(sig.len(), 132);
    let pub_pem = std::fs::read_to_string(fixture("keys/p521.pub.pem")).unwrap();
    let b64: String = pub_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let spki = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
    UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, &spki)
        .verify(b"header.payload", &sig)
        .unwrap();
    let wrong = UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, &spki).verify(b"other", &sig);
    assert!(wrong.is_err());
}

#[test]
fn encrypted_keys_need_their_passphrase() {
    use regauth::secret::Secret;
    let pem = std::fs::read_to_string(fixture("keys/p256.enc.pem")).unwrap();
    let err = PrivateKey::from_pem(&pem, None).unwrap_err().to_string();
    assert!(err.contains("key_passphrase_file"), "{err}");
    let wrong = PrivateKey::from_pem(&pem, Some(&Secret::new("nope")));
    assert!(wrong.unwrap_err().to_string().contains("wrong passphrase"));
    let key = PrivateKey::from_pem(&pem, Some(&Secret::new("fixture-pass"))).unwrap();
    assert_eq!(key.alg(), Alg::ES256);
    let plain = PrivateKey::from_pem(
        &std::fs::read_to_string(fixture("keys/p256.pem")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(key.public_spki_der(), plain.public_spki_der());
    let legacy = std::fs::read_to_string(fixture("keys/rsa2048.legacy-enc.pem")).unwrap();
    let err = PrivateKey::from_pem(&legacy, None).unwrap_err().to_string();
    assert!(err.contains("openssl pkcs8 -topk8"), "{err}");
}

/// The refresh-token key derived from each fixture key, as a fingerprint
/// of a fixed record: a refresh token issued before a change of the
/// cryptography code must verify after it.
#[test]
fn refresh_keys_match_the_golden_file() {
    let golden = std::fs::read_to_string(fixture("../golden/refresh_keys.txt")).unwrap();
    let mut n = 0;
    for line in golden.lines() {
        let [file, want] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad golden line {line}")
        };
        let pem = std::fs::read_to_string(fixture(&format!("keys/{file}"))).unwrap();
        let key = PrivateKey::from_pem(&pem, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = regauth::token::refresh::RefreshKey::derive(&key.secret_material())
            .fingerprint("backend", "user", b"record");
        if std::env::var_os("REGAUTH_PRINT_GOLDEN").is_some() {
            println!("{file} {got}");
            continue;
        }
        assert_eq!(got, want, "{file}");
        n += 1;
    }
    assert!(n >= 8, "golden file lists every fixture");
}
