//! The `regauth serve` process: HTTPS with a certificate reloaded from disk,
//! reloads refused or held back as configured, graceful shutdown that lets
//! an in-flight request finish, audit lines, the signing certificate's
//! expiry warning at start and reload; and `regauth explain` agreeing
//! with what `serve` grants.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fixture;

/// A `regauth serve` process (killed when dropped) and the port it
/// listens on: the configurations say port 0, so the OS picks a free one,
/// and the port is read from the "regauth listening" log line.
struct Proc(Child, u16);

impl Proc {
    fn port(&self) -> u16 {
        self.1
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port in a "regauth listening" line (`addr=127.0.0.1:PORT`, or the
/// JSON field).
fn listening_port(line: &str) -> u16 {
    let at = line
        .find("127.0.0.1:")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        + "127.0.0.1:".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"))
}

/// The log lines a server wrote so far.
type Log = Arc<Mutex<Vec<String>>>;

/// Starts `regauth serve` and waits for its "regauth listening" log line.
fn serve(config: &std::path::Path) -> Proc {
    serve_logged(config).0
}

/// [`serve`], keeping the log lines that follow "regauth listening".
fn serve_logged(config: &std::path::Path) -> (Proc, Log) {
    serve_logged_with(&[], config)
}

/// [`serve_logged`] with `options` before `serve` (`--log-format json`).
fn serve_logged_with(options: &[&str], config: &std::path::Path) -> (Proc, Log) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regauth"));
    cmd.args(options)
        .args(["serve", "--config", config.to_str().unwrap()]);
    serve_logged_cmd(cmd)
}

/// Starts `cmd` (a `regauth serve`) and waits for its "regauth listening"
/// log line.
fn serve_cmd(cmd: Command) -> Proc {
    serve_logged_cmd(cmd).0
}

/// [`serve_cmd`], keeping the log lines that follow "regauth listening".
fn serve_logged_cmd(mut cmd: Command) -> (Proc, Log) {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        assert!(Instant::now() < deadline, "regauth did not start");
        let line = lines.next().expect("regauth exited").unwrap();
        if line.contains("regauth listening") {
            break listening_port(&line);
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    let log = Log::default();
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    (Proc(child, port), log)
}

/// Waits (up to 10 s) for a log line containing every one of `parts`.
fn wait_for_line(log: &Log, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = log
            .lock()
            .unwrap()
            .iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .cloned();
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?} in:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A configuration listening on 127.0.0.1, port 0.
fn write_config(dir: &std::path::Path, server_extra: &str, cost: u32) -> std::path::PathBuf {
    let path = dir.join("config.yml");
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:0\"\n{server_extra}token:\n  issuer: t\n  expiration: 60\n  key: {key}\nusers:\n  alice: {{password: \"{pw}\"}}\nacl:\n  - match: {{account: alice}}\n    actions: [\"*\"]\n",
        key = fixture("keys/p256.pem").display(),
        pw = bcrypt::hash("alice", cost).unwrap(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn tls_pair(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// The HTTP status of a GET of `url` (with `-u user:password` when given),
/// as `curl`'s `(ok, "200", stderr)`.
fn status(basic: Option<&str>, url: &str) -> (bool, String, String) {
    let mut args = vec!["-w", "%{http_code}", "-o", "/dev/null", url];
    if let Some(b) = basic {
        args.splice(0..0, ["-u", b]);
    }
    curl(&args)
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn https_serving_with_certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_pair(dir.path(), "first");
    let extra = format!(
        "  certificate: {}\n  key: {}\n",
        dir.path().join("server.crt").display(),
        dir.path().join("server.key").display()
    );
    std::fs::copy(&cert, dir.path().join("server.crt")).unwrap();
    std::fs::copy(&key, dir.path().join("server.key")).unwrap();
    let config = write_config(dir.path(), &extra, 4);
    let p = serve(&config);
    let port = p.port();
    let url = format!("https://127.0.0.1:{port}/auth?service=r&scope=repository:a/b:pull");
    let (ok, body, err) = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-u",
        "alice:alice",
        &url,
    ]);
    assert!(ok && body.contains("\"token\""), "{err} {body}");
    // Plain HTTP on the TLS port is refused.
    let (ok, _, _) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(!ok);
    // A new certificate on disk is picked up without a restart.
    let (cert2, key2) = tls_pair(dir.path(), "second");
    std::fs::copy(&key2, dir.path().join("server.key")).unwrap();
    std::fs::copy(&cert2, dir.path().join("server.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, _, _) = curl(&[
            "--cacert",
            cert2.to_str().unwrap(),
            &format!("https://127.0.0.1:{port}/healthz"),
        ]);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, _, _) = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://127.0.0.1:{port}/healthz"),
    ]);
    assert!(!ok, "the old certificate is no longer served");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    // bcrypt cost 13 (~0.5 s or more): the request is still running when
    // SIGTERM arrives.
    let config = write_config(dir.path(), "", 13);
    let mut p = serve(&config);
    let port = p.port();
    let url = format!("http://127.0.0.1:{port}/auth?service=r");
    let request = std::thread::spawn(move || status(Some("alice:alice"), &url));
    std::thread::sleep(Duration::from_millis(150));
    let pid = p.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (ok, code, err) = request.join().unwrap();
    assert!(ok && code == "200", "in-flight request: {code} {err}");
    let status = p.0.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = crate::support::Server::start(&crate::support::config_yaml(
        "p256",
        "",
        crate::support::DEFAULT_ACL,
    ))
    .await;
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    // The server answers 408 or just closes; either way the read ends.
    let read = tokio::time::timeout(
        regauth::server::HEADER_READ_TIMEOUT + Duration::from_secs(5),
        slow.read(&mut buf),
    )
    .await
    .expect("the server must close a connection whose headers never end");
    assert!(read.is_ok());
    assert!(start.elapsed() >= regauth::server::HEADER_READ_TIMEOUT - Duration::from_secs(1));
    // Other clients are served meanwhile and after.
    assert_eq!(s.get("/healthz", None).await.status(), 200);
}

/// Runs `regauth [--log-format FORMAT] serve` with `RUST_LOG`, makes one
/// refused (anonymous) and one authenticated token request, stops it with
/// SIGTERM (which writes the pending log batch) and returns its stderr.
fn log_of_two_requests(format: &str, rust_log: &str) -> String {
    log_of(format, rust_log, |url| {
        // Anonymous: refused (no anonymous user), logged as refused.
        let (_, code, _) = status(None, &url("scope=repository:x:pull"));
        assert_eq!(code, "401");
        let (ok, code, err) = status(
            Some("alice:alice"),
            &url("scope=repository:other:pull&scope=repository:team/app:pull,push"),
        );
        assert!(ok && code == "200", "{code} {err}");
    })
}

/// Runs `regauth [--log-format FORMAT] serve` with `RUST_LOG`, calls
/// `requests` with a function that makes the token URL for a query, stops
/// it with SIGTERM (which writes the pending log batch) and returns its
/// stderr.
fn log_of(format: &str, rust_log: &str, requests: impl FnOnce(&dyn Fn(&str) -> String)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", 4);
    let mut child = Command::new(env!("CARGO_BIN_EXE_regauth"))
        .args(["--log-format", format, "serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every caller's RUST_LOG keeps `info`: the "regauth listening" line
    // (and the port in it) is there.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut head = Vec::new();
    let port = loop {
        let line = lines.next().expect("regauth exited").unwrap();
        head.push(line);
        let last = head.last().unwrap();
        if last.contains("regauth listening") {
            break listening_port(last);
        }
    };
    let reader = std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        rest
    });
    let mut child = Proc(child, port);
    let url = |q: &str| format!("http://127.0.0.1:{port}/auth?service=r&{q}");
    requests(&url);
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.0.wait().unwrap().success());
    head.extend(reader.join().unwrap());
    head.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn audit_lines_follow_the_log_format_and_rust_log() {
    // Text, default level: one audit line per request, scopes as a quoted list.
    let text = log_of_two_requests("text", "info");
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO regauth::audit: "))
        .collect();
    assert!(audit.len() >= 2, "{text}");
    let alice = audit
        .iter()
        .find(|l| l.contains(" account=\"alice\" "))
        .expect("alice's line");
    assert!(
        alice.contains(r#"requested=["repository:other:pull", "repository:team/app:pull,push"]"#),
        "{alice}"
    );
    assert!(
        alice.contains(r#"granted=["repository:other:[pull] by acl[0]", "repository:team/app:[pull,push] by acl[0]"]"#),
        "{alice}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains(r#"outcome="refused""#) && l.contains(r#"account="""#)),
        "no line for the refused anonymous request: {text}"
    );

    // JSON: every line an object; the audit's lists are arrays.
    let json = log_of_two_requests("json", "info");
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let alice = lines
        .iter()
        .find(|v| v["target"] == "regauth::audit" && v["fields"]["account"] == "alice")
        .unwrap_or_else(|| panic!("no audit line for alice in {json}"));
    assert_eq!(
        alice["fields"]["requested"],
        serde_json::json!(["repository:other:pull", "repository:team/app:pull,push"])
    );
    assert_eq!(alice["fields"]["outcome"], "issued");

    // Turned off by RUST_LOG: no audit line, the rest still logged.
    let quiet = log_of_two_requests("text", "info,regauth::audit=off");
    assert!(quiet.contains("regauth listening"), "{quiet}");
    assert!(!quiet.contains("regauth::audit"), "{quiet}");
}

/// A config on `port` whose ACL is `acl.yml` next to it (alice may pull
/// `team/*`), with `server_extra` under `server:`.
fn write_acl_file_config(dir: &std::path::Path, server_extra: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("acl.yml"),
        "- match: {account: alice, name: \"team/*\"}\n  actions: [pull]\n",
    )
    .unwrap();
    let path = dir.join("config.yml");
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:0\"\n{server_extra}token:\n  issuer: t\n  expiration: 60\n  key: {key}\nusers:\n  alice: {{password: \"{pw}\"}}\nacl_file: {acl}\n",
        key = fixture("keys/p256.pem").display(),
        pw = bcrypt::hash("alice", 4).unwrap(),
        acl = dir.join("acl.yml").display(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The actions alice is granted on `team/app` (pull and push asked).
fn alice_team_app(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/auth?service=r&scope=repository:team/app:pull,push");
    let (ok, body, err) = curl(&["-u", "alice:alice", &url]);
    assert!(ok && body.contains("\"token\""), "{err} {body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let payload = token["token"].as_str().unwrap().split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["access"][0]["actions"].to_string()
}

#[test]
fn an_acl_file_truncated_to_empty_keeps_the_running_acl_and_the_log_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_acl_file_config(dir.path(), "");
    let (p, log) = serve_logged(&config);
    let port = p.port();
    assert_eq!(alice_team_app(port), r#"["pull"]"#);
    std::fs::File::create(dir.path().join("acl.yml")).unwrap();
    let line = wait_for_line(
        &log,
        &["configuration reload failed", "the new ACL has no entries"],
    );
    assert!(line.contains("server.reload_allow_empty: [acl]"), "{line}");
    assert_eq!(alice_team_app(port), r#"["pull"]"#);
}

#[test]
fn with_reload_signal_only_sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_acl_file_config(dir.path(), "  reload: signal\n");
    let (p, log) = serve_logged(&config);
    let port = p.port();
    assert_eq!(alice_team_app(port), r#"["pull"]"#);
    let (tmp, acl) = (dir.path().join("acl.yml.tmp"), dir.path().join("acl.yml"));
    std::fs::write(
        &tmp,
        "- match: {account: alice, name: \"team/*\"}\n  actions: [pull, push]\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &acl).unwrap();
    // Over three times what a watched change takes (settle 1 s, polls 0.25 s).
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        alice_team_app(port),
        r#"["pull"]"#,
        "reloaded without SIGHUP"
    );
    assert!(Command::new("kill")
        .args(["-HUP", &p.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    wait_for_line(&log, &["configuration reloaded"]);
    assert_eq!(alice_team_app(port), r#"["pull","push"]"#);
}

/// An LDAP login typed in another case: the audit line names the entry's
/// account and the typed one beside it.
#[test]
fn the_audit_line_names_the_typed_account_when_the_directory_spells_it_otherwise() {
    use crate::slapd::{Slapd, BASE, READER_DN};
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:0\"\ntoken:\n  issuer: t\n  expiration: 60\n  key: {key}\nldap_auth:\n  addr: \"{addr}\"\n  bind_dn: \"{READER_DN}\"\n  bind_password_file: \"{pw}\"\n  base: \"{BASE}\"\n  filter: \"(&(objectClass=inetOrgPerson)(uid=${{account}}))\"\nacl:\n  - match: {{account: alice}}\n    actions: [pull]\n",
        key = fixture("keys/p256.pem").display(),
        addr = slapd.addr(),
        pw = slapd.reader_password_file().display(),
    );
    std::fs::write(&config, yaml).unwrap();
    let (p, log) = serve_logged(&config);
    let port = p.port();
    let url = format!("http://127.0.0.1:{port}/auth?service=r&scope=repository:x:pull");
    let (ok, code, err) = status(Some("ALICE:alicepw"), &url);
    assert!(ok && code == "200", "{code} {err}");
    wait_for_line(
        &log,
        &[
            "regauth::audit",
            r#"account="alice" typed_account="ALICE""#,
            r#"granted=["repository:x:[pull] by acl[0]"]"#,
        ],
    );
}

/// A JSON audit line for an account name holding U+202E (right-to-left
/// override) carries the escape, never the raw character.
#[test]
fn json_audit_lines_escape_bidirectional_controls() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", 4);
    let (p, log) = serve_logged_with(&["--log-format", "json"], &config);
    let port = p.port();
    let url = format!("http://127.0.0.1:{port}/auth?service=r&scope=repository:x:pull");
    let (ok, code, err) = status(Some("evil\u{202e}nimda\u{2028}:pw"), &url);
    assert!(ok && code == "401", "{code} {err}");
    let line = wait_for_line(&log, &["regauth::audit", "refused"]);
    assert!(
        line.contains(r#""account":"evil\u202enimda\u2028""#),
        "{line}"
    );
    assert!(!line.contains(['\u{202e}', '\u{2028}']), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["fields"]["account"], "evil\u{202e}nimda\u{2028}");
}

#[test]
fn the_audit_line_of_containerds_get_retry_says_so() {
    let text = log_of("text", "info", |url| {
        // containerd: a password POST, refused, then the same credentials
        // as a GET with Basic.
        let post_url = url("");
        let (ok, code, err) = curl(&[
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            "-H",
            "content-type: application/x-www-form-urlencoded",
            "--data",
            "grant_type=password&username=alice&password=wrong&service=r",
            &post_url,
        ]);
        assert!(ok && code == "401", "{code} {err}");
        let (_, code, _) = status(Some("alice:wrong"), &url("scope=repository:x:pull"));
        assert_eq!(code, "401");
        // Another wrong password as a GET is no retry.
        let (_, code, _) = status(Some("alice:other"), &url("scope=repository:x:pull"));
        assert_eq!(code, "401");
    });
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO regauth::audit: "))
        .collect();
    assert_eq!(audit.len(), 3, "{text}");
    assert!(
        audit[0].contains(r#"method="POST" grant="password""#),
        "{}",
        audit[0]
    );
    assert!(
        audit[1].contains(r#"method="GET" retry_of_post=true grant="password""#),
        "{}",
        audit[1]
    );
    assert!(!audit[2].contains("retry_of_post"), "{}", audit[2]);
    assert!(!text.contains("wrong"), "a password was logged: {text}");
}

/// `type:name` -> granted actions (sorted), from `regauth explain`'s
/// output: each scope line is followed by its `  granted: [...]` line.
fn explained(out: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut grants = std::collections::BTreeMap::new();
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(granted) = lines
            .peek()
            .and_then(|next| next.strip_prefix("  granted: ["))
        else {
            continue;
        };
        let (scope, _) = line.rsplit_once(':').unwrap();
        let mut actions: Vec<String> = granted
            .trim_end_matches(']')
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        actions.sort();
        grants.insert(scope.to_owned(), actions);
    }
    grants
}

/// `type:name` -> actions (sorted), from a token's `access` claim.
fn token_access(body: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let token = v["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut actions: Vec<String> = a["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            actions.sort();
            (
                format!(
                    "{}:{}",
                    a["type"].as_str().unwrap(),
                    a["name"].as_str().unwrap()
                ),
                actions,
            )
        })
        .collect()
}

#[test]
fn explain_shows_what_serve_grants_on_the_dev_config() {
    // The dev configuration as `make run` uses it: paths relative to the
    // working directory, the ACL in acl.example.yaml.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("examples/dev/config.yml"),
        dir.path().join("config.yml"),
    )
    .unwrap();
    std::fs::copy(
        root.join("acl.example.yaml"),
        dir.path().join("acl.example.yaml"),
    )
    .unwrap();
    let scopes = [
        "repository:team/app:pull,push",
        "repository:dev/tool:pull,push,delete",
        "repository:other/app:pull",
        "repository:docker.io/library/debian:pull",
        "registry:catalog:*",
    ];
    let regauth = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "regauth {args:?}: {stderr}{stdout}");
        stdout
    };

    // explain, with no signing key anywhere and no --label.
    assert!(!dir.path().join("certs/token.key").exists());
    let mut args = vec!["explain", "--config", "config.yml", "--account", "dev"];
    args.extend(["--service", "registry.local"]);
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let out = regauth(&args);
    assert!(
        out.contains("\nlabels: {group: [team]} (from users)\n"),
        "{out}"
    );
    let explained = explained(&out);
    assert_eq!(explained.len(), scopes.len(), "{out}");
    assert_eq!(explained["repository:team/app"], ["pull", "push"], "{out}");

    // serve on the same configuration, with the key `make run` makes.
    regauth(&["keygen", "--out", "certs"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regauth"));
    cmd.args(["serve", "--config", "config.yml", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path());
    let p = serve_cmd(cmd);
    let port = p.port();
    let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    let url = format!(
        "http://127.0.0.1:{port}/auth?service=registry.local&{}",
        query.join("&")
    );
    let (ok, body, err) = curl(&["-u", "dev:dev", &url]);
    assert!(ok && body.contains("\"token\""), "{err} {body}");
    assert_eq!(token_access(&body), explained, "{out}");
}

/// A signing certificate near its expiry is a warning in the log at start
/// and again at each reload.
#[test]
fn a_signing_certificate_near_expiry_is_logged_at_start_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keygen = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_regauth"))
            .current_dir(d)
            .arg("keygen")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    keygen(&["--ca", "--out", "ca"]);
    keygen(&["--out", "certs", "--signed-by", "ca", "--days", "3"]);
    let config = d.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "server: {{addr: \"127.0.0.1:0\"}}\ntoken:\n  issuer: t\n  expiration: 300\n  key: \"{d}/certs/token.key\"\n  certificate: \"{d}/certs/token.pem\"\n  x5c: true\nusers: {{\"\": {{}}}}\nacl: []\n",
            d = d.display()
        ),
    )
    .unwrap();
    // The notAfter date, as the warning spells it.
    let date_in = |days: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(days))
            .date()
            .to_string()
    };
    let (_proc, log) = serve_logged(&config);
    wait_for_line(
        &log,
        &[
            "WARN",
            "the signing certificate expires in",
            &format!("({}T", date_in(3)),
        ],
    );
    keygen(&[
        "--out",
        "certs",
        "--signed-by",
        "ca",
        "--days",
        "6",
        "--force",
    ]);
    wait_for_line(&log, &["configuration reloaded"]);
    wait_for_line(
        &log,
        &[
            "WARN",
            "the signing certificate expires in",
            &format!("({}T", date_in(6)),
        ],
    );
}
