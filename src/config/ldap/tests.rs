//! Tests of `ldap_auth` validation: docker_auth's examples load, mistakes
//! are errors naming the key.

use std::io::Write;
use std::path::PathBuf;

use super::*;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn temp_file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

fn load(yaml: &str) -> Result<LdapSettings, String> {
    let raw: RawLdap = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    settings(raw)
}

#[test]
fn docker_auth_reference_section_loads() {
    // docker_auth's examples/reference.yml, with a CA that exists here.
    let yaml = format!(
        r#"
addr: ldap.example.com:636
tls: always
insecure_tls_skip_verify: false
ca_certificate: {ca}
bind_dn:
bind_password_file:
base: o=example.com
filter: (&(uid=${{account}})(objectClass=person))
labels:
  groups:
    attribute: memberOf
    parse_cn: true
    lower_case: true
"#,
        ca = fixture("keys/p256.crt")
    );
    let s = load(&yaml).unwrap();
    assert_eq!(s.url, "ldaps://ldap.example.com:636");
    assert_eq!(s.tls, TlsMode::Always);
    assert!(matches!(s.bind, BindMode::Anonymous));
    assert!(s.tls_config.is_some());
    assert_eq!(
        s.labels,
        vec![LabelMap {
            label: "groups".into(),
            attribute: "memberOf".into(),
            parse_cn: true,
            lower_case: true
        }]
    );
    assert_eq!(
        (s.connect_timeout, s.timeout, s.pool_size),
        (DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_POOL_SIZE)
    );
}

#[test]
fn tls_mode_table() {
    let ca = fixture("keys/p256.crt");
    // (addr, tls key, expected mode, expected url)
    let cases = [
        ("h:389", "", TlsMode::None, "ldap://h:389"),
        ("h:389", "tls: none", TlsMode::None, "ldap://h:389"),
        ("h:389", "tls: \"\"", TlsMode::None, "ldap://h:389"),
        ("h:389", "tls: starttls", TlsMode::StartTls, "ldap://h:389"),
        ("h:1636", "tls: always", TlsMode::Always, "ldaps://h:1636"),
        ("h:636", "", TlsMode::Always, "ldaps://h:636"),
        ("h:636", "tls: none", TlsMode::None, "ldap://h:636"),
        ("[::1]:389", "", TlsMode::None, "ldap://[::1]:389"),
    ];
    for (addr, tls, mode, url) in cases {
        let yaml =
            format!("addr: \"{addr}\"\n{tls}\nca_certificate: {ca}\nfilter: (uid=${{account}})\n");
        let s = load(&yaml).unwrap_or_else(|e| panic!("{addr} {tls}: {e}"));
        assert_eq!((s.tls, s.url.as_str()), (mode, url), "{addr} {tls}");
        assert_eq!(s.tls_config.is_some(), mode != TlsMode::None);
    }
}

#[test]
fn service_password_is_read_trimmed_and_hidden() {
    let pw = temp_file("  s3cret-pw\n");
    let yaml = format!(
        "addr: h:389\nbind_dn: cn=reader,dc=x\nbind_password_file: {}\nfilter: (uid=${{account}})\ntimeout: 500ms\nconnect_timeout: 2\npool_size: 2\n",
        pw.path().display()
    );
    let s = load(&yaml).unwrap();
    let BindMode::Service { dn, password } = &s.bind else {
        panic!("{:?}", s.bind)
    };
    assert_eq!(
        (dn.as_str(), password.expose()),
        ("cn=reader,dc=x", "s3cret-pw")
    );
    assert_eq!(s.timeout, Duration::from_millis(500));
    assert_eq!(s.connect_timeout, Duration::from_secs(2));
    assert_eq!(s.pool_size, 2);
    let debug = format!("{s:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn initial_bind_as_user_modes() {
    let s = load("addr: h:389\ninitial_bind_as_user: true\nbind_dn: uid=${account},dc=x\nfilter: (uid=${account})\n").unwrap();
    assert!(matches!(&s.bind, BindMode::AsUser { template } if template == "uid=${account},dc=x"));
    // No bind_dn: docker_auth skips the initial bind (anonymous search).
    let s = load("addr: h:389\ninitial_bind_as_user: true\nfilter: (uid=${account})\n").unwrap();
    assert!(matches!(s.bind, BindMode::Anonymous));
}

#[test]
fn errors_name_the_key() {
    let empty = temp_file("\n");
    let not_pem = temp_file("hello\n");
    let base = "addr: h:389\nfilter: (uid=${account})\n";
    let cases = [
        (
            format!("{base}method: starttls\n"),
            "unknown field `method`",
        ),
        (
            format!("{base}tls: ssl\n"),
            "ldap_auth.tls: \"ssl\" is not one of",
        ),
        (
            "addr: ldap://h:389\nfilter: (uid=${account})\n".into(),
            "ldap_auth.addr: \"ldap://h:389\": expected host:port, not a URL",
        ),
        (
            "addr: h\nfilter: (uid=${account})\n".into(),
            "ldap_auth.addr:",
        ),
        (
            "addr: \"::1:389\"\nfilter: (uid=${account})\n".into(),
            "ldap_auth.addr:",
        ),
        (
            format!("{base}bind_dn: cn=r\n"),
            "ldap_auth.bind_password_file: required with bind_dn",
        ),
        (
            format!("{base}bind_dn: cn=r\nbind_password_file: /nonexistent/pw\n"),
            "ldap_auth.bind_password_file: cannot read /nonexistent/pw",
        ),
        (
            format!(
                "{base}bind_dn: cn=r\nbind_password_file: {}\n",
                empty.path().display()
            ),
            "is empty (an empty password is an unauthenticated bind)",
        ),
        (
            format!("{base}bind_dn: cn=r\nbind_password_env: REGAUTH_TEST_UNSET_BIND_PW\n"),
            "ldap_auth.bind_password_env: environment variable REGAUTH_TEST_UNSET_BIND_PW is not set",
        ),
        (
            format!("{base}bind_dn: cn=r\nbind_password_env: X\nbind_password_file: /x\n"),
            "bind_password_file and bind_password_env are exclusive",
        ),
        (
            "addr: h:389\nfilter: (uid=alice)\n".into(),
            "ldap_auth.filter: must contain ${account}",
        ),
        (
            "addr: h:389\nfilter: (uid=${account}\n".into(),
            "ldap_auth.filter: \"(uid=${account}\" is not a valid LDAP search filter",
        ),
        (
            format!("{base}labels: {{groups: {{parse_cn: true}}}}\n"),
            "ldap_auth.labels.groups.attribute: missing",
        ),
        (
            format!("{base}labels: {{groups: {{attribute: x, upper: true}}}}\n"),
            "unknown field `upper`",
        ),
        (
            format!("{base}group_search: {{base: dc=x, filter: (cn=x)}}\n"),
            "ldap_auth.group_search.filter: must contain ${dn} or ${account}",
        ),
        (
            format!("{base}group_search: {{base: dc=x, filter: \"(member=${{dn}}\"}}\n"),
            "ldap_auth.group_search.filter:",
        ),
        (
            format!("{base}tls: always\nca_certificate: /nonexistent/ca.pem\n"),
            "ldap_auth.ca_certificate: cannot read /nonexistent/ca.pem",
        ),
        (
            format!(
                "{base}tls: always\nca_certificate: {}\n",
                not_pem.path().display()
            ),
            "ldap_auth.ca_certificate:",
        ),
        (
            format!("{base}timeout: 0s\n"),
            "ldap_auth.timeout: must be more than 0",
        ),
        (format!("{base}connect_timeout: 10h\n"), "duration \"10h\""),
        (
            format!("{base}pool_size: 0\n"),
            "ldap_auth.pool_size: must be between 1 and 64",
        ),
    ];
    for (yaml, want) in cases {
        match load(&yaml) {
            Ok(s) => panic!("{yaml:?} loaded: {s:?}"),
            Err(e) => assert!(e.contains(want), "{yaml:?}: got {e:?}, want {want:?}"),
        }
    }
}

#[test]
fn group_search_defaults() {
    let s = load("addr: h:389\nfilter: (uid=${account})\ngroup_search: {base: \"ou=groups,dc=x\", filter: \"(member=${dn})\"}\n").unwrap();
    let g = s.groups.unwrap();
    assert_eq!(
        (g.map.attribute.as_str(), g.map.label.as_str()),
        ("cn", "groups")
    );
    assert!(!g.map.parse_cn && !g.map.lower_case);
}
