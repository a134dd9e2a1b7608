//! Loading configurations: docker_auth's files load unchanged; every
//! mistake is an error naming the key (and line where YAML knows it).

use std::path::Path;
use std::process::Command;

use regauth::config::{Config, Listen};
use regauth::service::Generation;

use crate::support::{config_yaml, fixture, DEFAULT_ACL};

/// `server.certificate` and `server.key` lines (a P-256 pair).
const TLS_PAIR: &str =
    "  certificate: tests/fixtures/keys/p256.crt\n  key: tests/fixtures/keys/p256.pem\n";

/// What `regauth check` and `serve` do with the text: validate it, then
/// build the generation it describes (the key is parsed there).
fn load(yaml: &str) -> Result<Config, String> {
    Config::from_yaml(Path::new("t.yml"), yaml)
        .and_then(Generation::build)
        .map(|g| g.config)
        .map_err(|e| e.to_string())
}

fn regauth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_a_docker_auth_config() {
    let path = fixture("docker_auth.yml");
    let (code, out, err) = regauth(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("RS256"), "{out}");
    assert!(out.contains("users:      2 (anonymous allowed)"), "{out}");
    assert!(out.contains("acl:        4 rules"), "{out}");
}

#[test]
fn check_warns_about_unanchored_regexes_and_exits_0() {
    let acl = r#"acl:
  - match: {account: "/.+/", name: "/team/"}
    actions: [pull]
  - match: {account: "/^ci$/", name: "/^(team|ci)\\//"}
    actions: [pull, push]
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regex.yml");
    std::fs::write(&path, config_yaml("p256", "", acl)).unwrap();
    let (code, out, err) = regauth(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    // Only the anchoring warnings: other checks (e.g. the anonymous user
    // nothing is granted to) have their own tests.
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("anchored"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].starts_with("warning: acl[0].match.name: regex /team/ is not anchored")
            && warnings[0].ends_with("write /^team$/"),
        "{err}"
    );
}

#[test]
fn check_warns_when_ldap_logins_keep_the_typed_name() {
    let dir = tempfile::tempdir().unwrap();
    // (filter, warned)
    let cases = [
        ("(uid=${account})", false),
        ("(|(uid=${account})(mail=${account}))", false),
        ("(cn=*${account}*)", true),
    ];
    for (filter, warned) in cases {
        let ldap = format!("ldap_auth:\n  addr: \"127.0.0.1:1\"\n  base: \"dc=x\"\n  filter: \"{filter}\"\n{DEFAULT_ACL}");
        let path = dir.path().join("ldap.yml");
        std::fs::write(&path, config_yaml("p256", "", &ldap)).unwrap();
        let (code, out, err) = regauth(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{filter}: {out}\n{err}");
        assert_eq!(
            err.contains("warning: ldap_auth.filter: no attribute is matched exactly"),
            warned,
            "{filter}: {err}"
        );
    }
}

#[test]
fn check_names_a_typo_and_its_line() {
    let text = std::fs::read_to_string(fixture("docker_auth.yml"))
        .unwrap()
        .replace("  expiration: 900", "  expiraton: 900");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yml");
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = regauth(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `expiraton`"), "{err}");
    assert!(
        err.contains("token: unknown field `expiraton`") && err.contains("line 11"),
        "{err}"
    );
    assert!(err.contains("typo.yml"), "{err}");
}

#[test]
fn bad_configs_table() {
    let base = config_yaml("p256", "", DEFAULT_ACL);
    let htpasswd_md5 = {
        let dir = std::env::temp_dir().join(format!("regauth-ht-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("htpasswd");
        std::fs::write(&p, "# users\nok:$2y$04$abcdefghijklmnopqrstuuHnMpbqtjObZJzwUTEWVDP1vFtyUnu9y\nold:$apr1$x$y\n").unwrap();
        p
    };
    let cases: Vec<(String, &str)> = vec![
        (base.replace("server:", "servr:"), "unknown field `servr`"),
        (base.replace("  bob: {password:", "  bob: {pasword:"), "unknown field `pasword`"),
        (format!("{base}mongo_auth:\n  dial_info: {{addrs: [x]}}\n"), "mongo_auth (line"),
        (format!("{base}github_auth:\n  organization: x\n"), "GitHub OAuth authentication is not supported"),
        (base.replace("  bob: {password: ", "  carol: {}\n  bob: {password: "), "user \"carol\": no password"),
        (format!("{base}acl_file: acl.example.yaml\n"), "acl and acl_file are exclusive"),
        (base.replace(DEFAULT_ACL, ""), "no ACL configured"),
        (base.replace("name: \"${labels:group}/*\"", "name: \"/a(/\""), "acl[1].match.name"),
        (base.replace("name: \"${labels:group}/*\"", "name: \"/foo?*/\""), "acl[1].match.name: invalid regex /foo?*/: invalid nested repetition operator: `?*`"),
        (base.replace("{account: \"alice\"}", "{account: \"/(?x) alice/\"}"), "acl[0].match.account: invalid regex /(?x) alice/: invalid or unsupported Perl syntax: flag `x`"),
        (base.replace("  expiration: 300", "  expiration: 0"), "token.expiration"),
        (base.replace("p256.pem", "missing.pem"), "token.key: cannot read"),
        (base.replace("keys/p256.pem", "keys/rsa1024.pem"), "RSA key too small"),
        (base.replace("keys/p256.pem", "docker_auth.yml"), "token.key"),
        (base.replace("  key: \"", "  certificate: \""), "token.certificate is set without token.key"),
        (base.replace("  key: \"", "  # key: \""), "token.key: missing; set token.key (and token.certificate), or server.certificate and server.key"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"nonsense\""), "server.addr"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  net: udp"), "server.net: unknown variant `udp`, expected `tcp` or `unix`"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"\"\n  net: unix"), "server.addr: must be the socket's path"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  letsencrypt: {email: a@example.org, cache_dir: /tmp}"), "server.letsencrypt: obtaining certificates from Let's Encrypt is not supported"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  tls_min_version: TLS12"), "server.tls_min_version: has no effect without server.certificate"),
        (base.replace("  addr: \"127.0.0.1:0\"", &format!("  addr: \"127.0.0.1:0\"\n{TLS_PAIR}  tls_curve_preferences: [P256, P521]")), "server.tls_curve_preferences: \"P521\" is not supported"),
        (base.replace("  addr: \"127.0.0.1:0\"", &format!("  addr: \"127.0.0.1:0\"\n{TLS_PAIR}  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]")), "server.tls_cipher_suites: \"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\" is not supported"),
        (base.replace("  addr: \"127.0.0.1:0\"", &format!("  addr: \"127.0.0.1:0\"\n{TLS_PAIR}  tls_min_version: TLS9")), "server.tls_min_version: \"TLS9\" is not one of"),
        (base.replace("  addr: \"127.0.0.1:0\"", &format!("  addr: \"127.0.0.1:0\"\n{TLS_PAIR}  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]")), "server.tls_cipher_suites: no TLS 1.2 suite listed can be used with the ECDSA key of server.key"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  reload: never"), "unknown variant `never`, expected `auto` or `signal`"),
        (base.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  reload_allow_empty: [users]"), "unknown variant `users`, expected `acl` or `htpasswd`"),
        (format!("{base}htpasswd: {}\n", htpasswd_md5.display()), "line 3: user \"old\": password uses MD5 (apr1) scheme"),
        (format!("{base}mirrors:\n  - {{service: docker.io, prefix: docker.io}}\n"), "mirrors[0].audience: missing"),
        (format!("{base}mirrors:\n  - {{service: docker.io, prefix: \"\", audience: r}}\n"), "mirrors[0].prefix: must not be empty"),
        (format!("{base}mirrors:\n  - {{service: docker.io, prefix: docker.io, audience: r}}\n  - {{service: hub, prefix: docker.io/library, audience: r}}\n"), "overlaps mirrors[0].prefix"),
        (format!("{base}services: [reg]\nmirrors:\n  - {{service: docker.io, prefix: docker.io, audience: other}}\n"), "mirrors[0].audience: \"other\" is not listed in services"),
        (format!("{base}services: [docker.io, r]\nmirrors:\n  - {{service: docker.io, prefix: docker.io, audience: r}}\n"), "also listed in services"),
    ];
    for (yaml, want) in cases {
        let err = load(&yaml).expect_err(want);
        assert!(err.contains(want), "want {want:?} in: {err}");
    }
    assert!(load(&base).is_ok());
}

#[test]
fn docker_auth_server_keys_load() {
    let base = config_yaml("p256", "", DEFAULT_ACL);
    let with = |server: &str| {
        base.replace(
            "  addr: \"127.0.0.1:0\"",
            &format!("  addr: \"127.0.0.1:0\"\n{server}"),
        )
    };
    let unix = load(&base.replace(
        "  addr: \"127.0.0.1:0\"",
        "  net: unix\n  addr: /run/regauth/auth.sock",
    ))
    .unwrap();
    assert_eq!(
        unix.server.addr,
        Listen::Unix("/run/regauth/auth.sock".into())
    );
    assert_eq!(unix.server.addr.to_string(), "unix:/run/regauth/auth.sock");
    let tcp = load(&with("  net: tcp")).unwrap();
    assert_eq!(tcp.server.addr, Listen::Tcp("127.0.0.1:0".parse().unwrap()));
    let tls = load(&with(&format!(
        "{TLS_PAIR}  hsts: true\n  tls_min_version: TLS10\n  tls_curve_preferences: [X25519, P256]\n  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305]"
    )))
    .unwrap();
    assert!(tls.server.hsts && tls.server.tls_config.is_some());
    let o = &tls.server.tls_options;
    assert_eq!(o.raised_min_version.as_deref(), Some("TLS10"));
    assert_eq!((o.curves.len(), o.suites.len()), (2, 5));
}

#[test]
fn x5c_needs_a_matching_certificate() {
    let with = |cert: &str| {
        config_yaml(
            "p256",
            &format!(
                "  x5c: true\n  certificate: {}",
                fixture(&format!("keys/{cert}")).display()
            ),
            DEFAULT_ACL,
        )
    };
    assert!(load(&with("p256.crt")).is_ok());
    let err = load(&with("rsa2048.crt")).unwrap_err();
    assert!(
        err.contains("certificate does not hold the public key"),
        "{err}"
    );
    let err = load(&config_yaml("p256", "  x5c: true", DEFAULT_ACL)).unwrap_err();
    assert!(err.contains("x5c: true needs token.certificate"), "{err}");
}

#[test]
fn explain_names_the_deciding_rule() {
    let path = fixture("docker_auth.yml");
    let (code, out, err) = regauth(&[
        "explain",
        "--config",
        path.to_str().unwrap(),
        "--account",
        "test",
        "--scope",
        "repository:dev/app:pull,push",
        "--label",
        "group=dev",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("granted: [pull]"), "{out}");
    assert!(out.contains("acl[1]"), "{out}");
    assert!(out.contains("User \"test\" can pull stuff."), "{out}");
}

#[test]
fn mint_signs_what_the_acl_grants_and_refuses_without_a_key() {
    let path = fixture("docker_auth.yml");
    let config = path.to_str().unwrap();
    let (code, out, err) = regauth(&[
        "mint",
        "--config",
        config,
        "--account",
        "test",
        "--service",
        "registry.example.com",
        "--scope",
        "repository:dev/app:pull,push",
        "--label",
        "group=dev",
        "--ttl",
        "60",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("granted only [pull]"), "{err}");
    let token = out.trim();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(format!("{:?}", header.alg), "RS256");
    let pem = std::fs::read(fixture("keys/rsa2048.pub.pem")).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["registry.example.com"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&pem).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "test");
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 70);

    let (code, out, _) = regauth(&[
        "mint",
        "--config",
        config,
        "--account",
        "ci",
        "--service",
        "r",
        "--scope",
        "repository:a/b:push",
        "--no-acl",
        "--format",
        "docker-config",
        "--registry",
        "127.0.0.1:5000",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["auths"]["127.0.0.1:5000"]["registrytoken"].is_string());

    let broken = tempfile::tempdir().unwrap();
    let cfg = broken.path().join("c.yml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "tests/fixtures/keys/rsa2048.pkcs1.pem",
        "/nonexistent/key.pem",
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, out, err) = regauth(&[
        "mint",
        "--config",
        cfg.to_str().unwrap(),
        "--account",
        "x",
        "--service",
        "r",
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("token.key: cannot read"), "{err}");
}

#[test]
fn key_passphrase_from_the_environment() {
    let base = config_yaml("p256", "", DEFAULT_ACL).replace("keys/p256.pem", "keys/p256.enc.pem");
    let err = load(&base).unwrap_err();
    assert!(err.contains("encrypted"), "{err}");
    std::env::set_var("REGAUTH_IT_KEY_PASS", "fixture-pass");
    let with_env = base.replace(
        "token:\n",
        "token:\n  key_passphrase_env: REGAUTH_IT_KEY_PASS\n",
    );
    assert!(load(&with_env).is_ok());
    std::env::set_var("REGAUTH_IT_KEY_PASS_WRONG", "nope");
    let wrong = base.replace(
        "token:\n",
        "token:\n  key_passphrase_env: REGAUTH_IT_KEY_PASS_WRONG\n",
    );
    let err = load(&wrong).unwrap_err();
    assert!(
        err.contains("wrong passphrase") && !err.contains("nope"),
        "{err}"
    );
}
