//! The mistakes a newcomer makes, run through the `regauth` binary as an
//! operator would (relative paths, from the directory holding the files):
//! each case is the files, the command, the exit code and the exact lines
//! it prints, and every line names where the mistake is (file and line,
//! or the flag) and what to do about it.

use std::path::Path;
use std::process::Command;

use crate::support::fixture;

/// bcrypt("secret", cost 4).
const HASH: &str = "$2y$04$48LdAX7zlsrW3AyNusJUhOPNc/6g.GwSNdjHmh33nqyCHYy/lrf3K";

/// The configuration every case starts from: keys/ and acl.yml beside it.
const BASE: &str = "server: {addr: \"127.0.0.1:5001\"}
token:
  issuer: regauth-test
  expiration: 300
  key: keys/token.key
  certificate: keys/token.pem
users:
  alice: {password: \"HASH\"}
acl_file: acl.yml
";

const ACL: &str = "- match: {account: alice}
  actions: [\"*\"]
";

struct Case {
    name: &'static str,
    /// Files written in the working directory (`HASH` replaced); `c.yml`
    /// defaults to [`BASE`] and `acl.yml` to [`ACL`].
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    code: i32,
    /// Lines the command prints on stderr, exactly (`{dir}` is the working
    /// directory).
    stderr: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "an htpasswd line pasted as password:",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice:\n    password: \"alice:HASH\"\nacl: []\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: users (line 4): user \"alice\": password: holds an htpasswd line (\"alice\" followed by ':'); keep only the hash after the colon ($2y$04$...)"],
    },
    Case {
        name: "a user without a password, no htpasswd",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  bob:\n    labels: {group: [team]}\nacl: []\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: users (line 4): user \"bob\": no password (docker_auth would accept any password for this user; regauth refuses): set password: to a bcrypt hash (`regauth hash`); to give labels to a user of an htpasswd file, set htpasswd: and keep only labels: here"],
    },
    Case {
        name: "labels for a name the htpasswd file lacks",
        files: &[
            ("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nhtpasswd: users.htpasswd\nusers:\n  bob:\n    labels: {group: [team]}\nacl: []\n"),
            ("users.htpasswd", "alice:HASH\n"),
        ],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: users (line 5): user \"bob\": no password, and users.htpasswd has no user \"bob\"; set password: to a bcrypt hash (`regauth hash`), or add the user to the htpasswd file (an entry without password: only gives labels to an htpasswd user)"],
    },
    Case {
        name: "an MD5 htpasswd (htpasswd without -B)",
        files: &[
            ("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nhtpasswd: users.htpasswd\nacl: []\n"),
            ("users.htpasswd", "# team\nalice:$apr1$abc$def\n"),
        ],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: htpasswd (users.htpasswd): line 2: user \"alice\": password uses MD5 (apr1) scheme; only bcrypt ($2y$/$2a$/$2b$) is accepted (create one with `regauth hash` or `htpasswd -B`)"],
    },
    Case {
        name: "a misspelt action",
        files: &[("acl.yml", "# rules\n- match: {account: alice}\n  actions: [\"pul\", \"push\"]\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: acl.yml:3: acl[0].actions: unknown action \"pul\": registries ask for pull, push, delete, *, so it never grants anything"],
    },
    Case {
        name: "a scope type registries never ask for",
        files: &[("acl.yml", "- match: {account: alice, type: repo}\n  actions: [pull]\n- match: {account: alice}\n  actions: [pull]\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: acl.yml:1: acl[0].match.type: \"repo\" matches no scope type registries ask for (repository, registry), so the entry never matches"],
    },
    Case {
        name: "a regex without its closing slash",
        files: &[("acl.yml", "- match:\n    account: \"/.+\"\n    name: \"team/*\"\n  actions: [pull]\n- match: {account: alice}\n  actions: [\"*\"]\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: acl.yml:2: acl[0].match.account: \"/.+\" starts with / but does not end with one, so it is a glob matching that text literally; write \"/.+/\" for a regex"],
    },
    Case {
        name: "a rule after a broader one with the same match",
        files: &[("acl.yml", "- match: {account: alice}\n  actions: [pull]\n- match: {account: alice, name: \"alice/*\"}\n  actions: [push]\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: acl.yml:3: acl[1].match: this entry never decides: acl[0] comes first and matches every request it matches (its conditions are the same or broader); move it above acl[0] or remove it"],
    },
    Case {
        name: "a catch-all deny first",
        files: &[("acl.yml", "- match: {}\n  actions: []\n- match: {account: alice}\n  actions: [pull]\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &[
            "warning: acl.yml:3: acl[1].match: this entry never decides: acl[0] comes first and matches every request it matches (its conditions are the same or broader); move it above acl[0] or remove it",
        ],
    },
    Case {
        name: "a user no entry grants anything",
        files: &[("c.yml", "server: {addr: \"127.0.0.1:5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\n  carol: {password: \"HASH\"}\nacl_file: acl.yml\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: c.yml:5: user \"carol\": no ACL entry can grant it anything (none matches its account and labels with actions); add an entry, or remove the user"],
    },
    Case {
        name: "anonymous allowed but never granted",
        files: &[("c.yml", "server: {addr: \"127.0.0.1:5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  \"\": {}\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\n")],
        args: &["check", "--config", "c.yml"],
        code: 0,
        stderr: &["warning: c.yml:4: anonymous requests are allowed (users: \"\"), but no ACL entry can grant it anything (none matches its account and labels with actions); add an entry, or remove the user"],
    },
    Case {
        name: "a bad regex inside acl_file",
        files: &[("acl.yml", "- match: {account: alice}\n  actions: [pull]\n- match:\n    account: alice\n    name: \"/team/[a-z/\"\n  actions: [pull]\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: acl_file (acl.yml line 5): acl[1].match.name: invalid regex /team/[a-z/: unclosed character class"],
    },
    Case {
        name: "a bad regex inline",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl:\n  - match: {account: \"/a(/\"}\n    actions: [pull]\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: acl[0].match.account: invalid regex /a(/: unclosed group (line 6)"],
    },
    Case {
        name: "a misspelt key",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken:\n  issuer: i\n  expiraton: 60\n  key: keys/token.key\nusers:\n  alice: {password: \"HASH\"}\nacl: []\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: token: unknown field `expiraton`, expected one of `issuer`, `expiration`, `certificate`, `key`, `disable_legacy_key_id`, `kid`, `x5c`, `key_passphrase_file`, `key_passphrase_env`, `zot_audiences`, `refresh_expiration`, `publish` at line 4 column 3"],
    },
    Case {
        name: "acl and acl_file both",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl: []\nacl_file: acl.yml\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: acl and acl_file are exclusive: keep one"],
    },
    Case {
        name: "the configuration file is not where it was said to be",
        files: &[],
        args: &["check", "--config", "config.yml"],
        code: 1,
        stderr: &["error: config.yml: cannot read: No such file or directory (os error 2) (looked for in the working directory, {dir}; name the configuration file with --config FILE)"],
    },
    Case {
        name: "a relative key path run from elsewhere",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: certs/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl: []\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: token.key: cannot read certs/token.key: No such file or directory (os error 2) (relative paths are read from the working directory, {dir}: run regauth from the directory the configuration expects, or write the path in full)"],
    },
    Case {
        name: "explain without --service when several are listed",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\nservices: [reg.a, reg.b]\n")],
        args: &["explain", "--config", "c.yml", "--account", "alice", "--scope", "repository:x:pull"],
        code: 1,
        stderr: &["error: c.yml: --service is required: the configuration accepts several (services: [reg.a, reg.b])"],
    },
    Case {
        name: "explain with a service the configuration refuses",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\nservices: [reg.a]\nmirrors: [{service: docker.io, prefix: docker.io, audience: reg.a}]\n")],
        args: &["explain", "--config", "c.yml", "--account", "alice", "--scope", "repository:x:pull", "--service", "registry.local"],
        code: 1,
        stderr: &["error: c.yml: --service \"registry.local\" is not one the configuration accepts (services: [reg.a]; mirrors: [docker.io]); pass one of those"],
    },
    Case {
        name: "explain with a malformed scope",
        files: &[],
        args: &["explain", "--config", "c.yml", "--account", "alice", "--scope", "team/app:pull"],
        code: 1,
        stderr: &["error: --scope: invalid scope \"team/app:pull\": missing actions (a scope is type:name:actions, e.g. repository:team/app:pull,push)"],
    },
    Case {
        name: "registry-config for a service off the list",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key, certificate: keys/token.pem}\nusers:\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\nservices: [registry.newcomer]\n")],
        args: &["registry-config", "--config", "c.yml", "--service", "other.svc"],
        code: 1,
        stderr: &["error: c.yml: --service \"other.svc\" is not in services: [registry.newcomer]; regauth refuses tokens for it (400), so pass one of those or add it to services:"],
    },
    Case {
        name: "registry-config without services: and without --service",
        files: &[],
        args: &["registry-config", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: --service is required: the configuration has no services: list; pass the name the registry calls itself (e.g. --service registry.example.com), and list it in services: so that regauth refuses any other"],
    },
    Case {
        name: "registry-config for the mirror front's service",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key, certificate: keys/token.pem}\nusers:\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\nmirrors: [{service: docker.io, prefix: docker.io, audience: registry.local}]\n")],
        args: &["registry-config", "--config", "c.yml", "--service", "docker.io"],
        code: 1,
        stderr: &["error: c.yml: --service \"docker.io\" is the service of mirrors[0] (what the mirror front announces); the registry's own service is that mirror's audience: --service registry.local"],
    },
    Case {
        name: "mint for an account the ACL grants nothing",
        files: &[],
        args: &["mint", "--config", "c.yml", "--account", "bob", "--service", "reg", "--scope", "repository:team/app:pull"],
        code: 1,
        stderr: &[
            "labels: {} (no backend knows \"bob\": a login would be refused)",
            "error: the ACL grants \"bob\" none of the scopes asked; see why with `regauth explain --config c.yml --account \"bob\" --service \"reg\" --scope ...`, or pass --allow-empty to sign it anyway",
        ],
    },
    Case {
        name: "mint without --service, and no services: to take it from",
        files: &[],
        args: &["mint", "--config", "c.yml", "--account", "alice", "--scope", "repository:team/app:pull"],
        code: 1,
        stderr: &["error: c.yml: --service is required: the configuration has no services: list, so name the registry's service (the token's aud), e.g. --service registry.example.com"],
    },
    Case {
        name: "mint for a service off the list",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl_file: acl.yml\nservices: [reg.a]\n")],
        args: &["mint", "--config", "c.yml", "--account", "alice", "--service", "registry.local", "--scope", "repository:team/app:pull"],
        code: 1,
        stderr: &["error: c.yml: --service \"registry.local\" is not one the configuration accepts (services: [reg.a]); pass one of those"],
    },
    Case {
        name: "mint with a lifetime of years",
        files: &[],
        args: &["mint", "--config", "c.yml", "--account", "alice", "--service", "reg", "--scope", "repository:team/app:pull", "--ttl", "99999999"],
        code: 0,
        stderr: &["warning: --ttl 99999999 is 1157 days; a minted token cannot be revoked before it expires: give a CI job minutes (e.g. --ttl 600)"],
    },
    Case {
        name: "mint --format docker-config without --registry",
        files: &[],
        args: &["mint", "--config", "c.yml", "--account", "alice", "--service", "reg", "--scope", "repository:team/app:pull", "--format", "docker-config"],
        code: 1,
        stderr: &["error: --format docker-config needs --registry HOST[:PORT]"],
    },
    Case {
        name: "mint --label without a value",
        files: &[],
        args: &["mint", "--config", "c.yml", "--account", "alice", "--service", "reg", "--scope", "repository:team/app:pull", "--label", "admins"],
        code: 1,
        stderr: &["error: --label \"admins\": expected name=value"],
    },
    Case {
        name: "keygen over an existing key",
        files: &[],
        args: &["keygen", "--out", "keys"],
        code: 1,
        stderr: &["error: keys/token.key or keys/token.pem exists; pass --force to overwrite"],
    },
    Case {
        name: "keygen for an algorithm it does not know",
        files: &[],
        args: &["keygen", "--out", "new", "--alg", "HS256"],
        code: 2,
        stderr: &["  [possible values: ES256, ES384, ES512, RS256, EdDSA]"],
    },
    Case {
        name: "a mirror without the registry's service as audience",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl: []\nmirrors:\n  - service: docker.io\n    prefix: docker.io\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: mirrors[0].audience: missing (the registry's own service, the token's aud) (line 7)"],
    },
    Case {
        name: "a docker_auth section regauth does not implement",
        files: &[("c.yml", "server: {addr: \":5001\"}\ntoken: {issuer: i, expiration: 60, key: keys/token.key}\nusers:\n  alice: {password: \"HASH\"}\nacl: []\nmongo_auth: {}\n")],
        args: &["check", "--config", "c.yml"],
        code: 1,
        stderr: &["error: c.yml: mongo_auth (line 6): MongoDB authentication is not supported by regauth; remove the section (regauth never ignores configuration silently)"],
    },
];

fn run_case(c: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("keys")).unwrap();
    std::fs::copy(fixture("keys/p256.pem"), d.join("keys/token.key")).unwrap();
    std::fs::copy(fixture("keys/p256.crt"), d.join("keys/token.pem")).unwrap();
    write(d, "c.yml", BASE);
    write(d, "acl.yml", ACL);
    for (name, text) in c.files {
        write(d, name, text);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(c.args)
        .current_dir(d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    let dir_text = d.display().to_string();
    let missing: Vec<String> = c
        .stderr
        .iter()
        .map(|w| w.replace("{dir}", &dir_text))
        .filter(|w| !stderr.lines().any(|l| l == w))
        .collect();
    if code != c.code || !missing.is_empty() {
        return Err(format!(
            "{}: exit {code} (want {}), missing lines {missing:#?}\nstderr:\n{stderr}",
            c.name, c.code
        ));
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text.replace("HASH", HASH)).unwrap();
}

#[test]
fn newcomer_mistakes_are_named_with_their_place_and_fix() {
    assert!(CASES.len() >= 20);
    let failures: Vec<String> = CASES.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The configuration's `services:` entry is the snippet's `service`.
#[test]
fn registry_config_prints_the_configured_service() {
    let case = |services: &str, args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("keys")).unwrap();
        std::fs::copy(fixture("keys/p256.pem"), d.join("keys/token.key")).unwrap();
        std::fs::copy(fixture("keys/p256.crt"), d.join("keys/token.pem")).unwrap();
        write(d, "c.yml", &format!("{BASE}services: {services}\n"));
        write(d, "acl.yml", ACL);
        let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
            .args(["registry-config", "--config", "c.yml"])
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = case("[x]", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l == "    service: x"), "{out}");
    let (code, out, _) = case("[x, z]", &["--service", "z", "--for", "zot"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\"service\": \"z\""), "{out}");
    let (code, out, err) = case("[x]", &["--service", "y"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("not in services: [x]"), "{err}");
}

/// An htpasswd user takes the labels of its password-less `users:` entry,
/// in a login and in `explain` alike.
#[tokio::test]
async fn htpasswd_users_get_labels_from_users() {
    let dir = tempfile::tempdir().unwrap();
    let ht = dir.path().join("users.htpasswd");
    std::fs::write(&ht, format!("bob:{}\n", crate::support::hash("bob"))).unwrap();
    let acl =
        "acl:\n  - match: {labels: {group: team}, name: \"team/*\"}\n    actions: [pull, push]\n";
    let yaml = format!(
        "{}htpasswd: {}\nusers:\n  bob: {{labels: {{group: [team]}}}}\n{acl}",
        crate::support::server_and_token_yaml("p256", ""),
        ht.display()
    );
    let config = dir.path().join("c.yml");
    std::fs::write(&config, &yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["explain", "--config", config.to_str().unwrap()])
        .args(["--account", "bob", "--scope", "repository:team/app:push"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("labels: {group: [team]} (from htpasswd)"),
        "{stdout}"
    );
    assert!(stdout.contains("granted: [push]"), "{stdout}");

    let s = crate::support::Server::start_in(dir, &yaml).await;
    let resp = s
        .get(
            "/auth?service=reg&scope=repository:team/app:push",
            Some(("bob", "bob")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let (_, claims) = crate::support::verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["push"]));
}

/// `serve` without `--config` says which file it tried and how to name one.
#[test]
fn serve_without_config_says_to_pass_one() {
    if Path::new("/etc/regauth/config.yml").exists() {
        return; // a machine with a real configuration: nothing to show
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .arg("serve")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/etc/regauth/config.yml: cannot read: No such file or directory (os error 2) (name the configuration file with --config FILE; `serve` reads /etc/regauth/config.yml when --config is not given)"),
        "{stderr}"
    );
}
