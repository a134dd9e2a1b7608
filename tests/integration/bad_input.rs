//! Hostile input against the running server, sent as raw bytes over TCP so
//! that nothing is cleaned up by a client library: oversized request lines
//! and headers, thousands of scopes, broken percent-encoding and UTF-8,
//! malformed Basic credentials, over-long passwords, `account` ≠ user, path
//! traversal and control characters, unknown methods. Every case checks the
//! status, the body, and that the server still issues a correct token
//! afterwards.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{config_yaml, hash, verify, Server, DEFAULT_ACL};

/// A 72-byte password (bcrypt's limit) and its user.
const P72: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&()*+,";

async fn server() -> Server {
    let yaml = config_yaml(
        "p256",
        "",
        &format!(
            "{DEFAULT_ACL}htpasswd: HTPASSWD\n\
             # Failures here are deliberate: keep them from being throttled.\n\
             throttle: {{max_failures_per_ip: 100000, max_failures_per_account: 100000}}\n"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let ht = dir.path().join("htpasswd");
    assert_eq!(P72.len(), 72);
    std::fs::write(&ht, format!("long:{}\n", hash(P72))).unwrap();
    let yaml = yaml.replace("HTPASSWD", &ht.display().to_string());
    Server::start_in(dir, &yaml).await
}

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` as is and reads the response until the server closes
/// (requests ask for `Connection: close`; hyper closes after its own errors).
async fn raw(s: &Server, request: &[u8]) -> Raw {
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    // The server may answer and close before it read everything.
    let _ = c.write_all(request).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Raw {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A GET of `target` with extra header lines.
fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}

fn basic(userpass: &[u8]) -> String {
    format!("Authorization: Basic {}\r\n", STANDARD.encode(userpass))
}

fn post(form: &str) -> Vec<u8> {
    format!(
        "POST /auth HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .into_bytes()
}

/// A POST with a chunked body (no Content-Length to refuse up front).
fn chunked(form: &str) -> Vec<u8> {
    let mut r = b"POST /auth HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in form.as_bytes().chunks(4096) {
        r.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        r.extend(chunk);
        r.extend(b"\r\n");
    }
    r.extend(b"0\r\n\r\n");
    r
}

/// The server still answers health checks and issues a correct token.
async fn still_serves(s: &Server, case: &str) {
    let r = raw(s, &get("/healthz", "")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"), "after {case}");
    let resp = s
        .get(
            "/auth?service=reg&scope=repository:team/app:pull",
            Some(("alice", "alice")),
        )
        .await;
    assert_eq!(resp.status(), 200, "after {case}");
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull"]),
        "after {case}"
    );
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    /// A fragment of the body; `None` = hyper's own refusal, no body.
    body: Option<&'static str>,
}

fn case(name: &'static str, request: Vec<u8>, status: u16, body: Option<&'static str>) -> Case {
    Case {
        name,
        request,
        status,
        body,
    }
}

async fn run(s: &Server, cases: Vec<Case>) {
    for c in cases {
        let r = raw(s, &c.request).await;
        assert_eq!(r.status, c.status, "{}: {r:?}", c.name);
        match c.body {
            Some(fragment) => {
                assert!(r.body.contains(fragment), "{}: body {:?}", c.name, r.body);
                assert_eq!(
                    r.body.trim_end().lines().count(),
                    1,
                    "{}: one line: {:?}",
                    c.name,
                    r.body
                );
                assert!(
                    r.head.contains("content-type: text/plain"),
                    "{}: {}",
                    c.name,
                    r.head
                );
            }
            None => assert!(r.body.is_empty(), "{}: body {:?}", c.name, r.body),
        }
        // Nothing secret is ever echoed.
        for secret in ["alice-secret", P72, "hunter2"] {
            assert!(!r.body.contains(secret), "{}: echoed {secret}", c.name);
        }
        still_serves(s, c.name).await;
    }
}

fn scopes(n: usize) -> String {
    (0..n)
        .map(|i| format!("scope=repository:r{i}:pull"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn oversized_requests() {
    let s = server().await;
    let long_scope = format!(
        "/auth?service=reg&scope=repository:{}:pull",
        "a".repeat(40_000)
    );
    let huge_target = format!("/auth?service=reg&x={}", "a".repeat(70_000));
    let big_header = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let huge_headers = format!("X-Huge: {}\r\n", "a".repeat(500_000));
    let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big_form = format!(
        "grant_type=password&username=alice&password=x&{}",
        scopes(3000)
    );
    assert!(big_form.len() > 64 * 1024);
    let cases = vec![
        case(
            "query over 32 KiB",
            get(&long_scope, ""),
            414,
            Some("request URI too long (limit 32768 bytes)"),
        ),
        // Past hyper's own limit (65 534 bytes): hyper refuses, no body.
        case(
            "request target over 64 KiB",
            get(&huge_target, ""),
            414,
            None,
        ),
        case(
            "one 20 KB header",
            get("/auth?service=reg", &big_header),
            431,
            Some("request headers too large (limit 16384 bytes)"),
        ),
        case(
            "500 KB of headers",
            get("/auth?service=reg", &huge_headers),
            431,
            None,
        ),
        case(
            "150 headers",
            get("/auth?service=reg", &many_headers),
            431,
            None,
        ),
        case(
            "1000 scopes in a query",
            get(&format!("/auth?service=reg&{}", scopes(1000)), ""),
            400,
            Some("too many scopes (limit 64)"),
        ),
        case(
            "1000 scopes in one space-separated value",
            get(
                &format!(
                    "/auth?service=reg&scope={}",
                    (0..1000)
                        .map(|i| format!("repository:r{i}:pull"))
                        .collect::<Vec<_>>()
                        .join("+")
                ),
                "",
            ),
            400,
            Some("too many scopes (limit 64)"),
        ),
        case(
            "2000 scopes in a POST form",
            post(&format!(
                "grant_type=password&username=alice&password=alice&service=reg&{}",
                scopes(2000)
            )),
            400,
            Some("too many scopes (limit 64)"),
        ),
        case(
            "POST body over 64 KiB",
            post(&big_form),
            413,
            Some("request body too large (limit 65536 bytes)"),
        ),
        case(
            "chunked POST body over 64 KiB",
            chunked(&big_form),
            413,
            Some("request body too large (limit 65536 bytes)"),
        ),
    ];
    run(&s, cases).await;

    // The limit is exact: 64 distinct scopes pass, 65 do not.
    let resp = s
        .get(
            &format!("/auth?service=reg&{}", scopes(64)),
            Some(("alice", "alice")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["access"].as_array().unwrap().len(), 64);
    let resp = s
        .get(
            &format!("/auth?service=reg&{}", scopes(65)),
            Some(("alice", "alice")),
        )
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn broken_encoding() {
    let s = server().await;
    let mut raw_ff = b"GET /auth?service=reg&scope=repository:a\xff:pull HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    let mut raw_nul_header = get("/auth?service=reg", "");
    let at = raw_nul_header.len() - 2;
    raw_nul_header.splice(at..at, b"X-Nul: a\0b\r\n".iter().copied());
    let cases = vec![
        case(
            "invalid percent-escape",
            get("/auth?service=reg&scope=%zz", ""),
            400,
            Some("invalid scope \"%zz\""),
        ),
        case(
            "truncated percent-escape in a name",
            get("/auth?service=reg&scope=repository:a%2:pull", ""),
            400,
            Some("invalid repository name"),
        ),
        case(
            "percent-encoded invalid UTF-8",
            get("/auth?service=reg&scope=repository:a%FF:pull", ""),
            400,
            Some("parameters are not valid UTF-8"),
        ),
        case(
            "overlong UTF-8 encoding of '/'",
            get("/auth?service=reg&scope=repository:a%C0%AFb:pull", ""),
            400,
            Some("parameters are not valid UTF-8"),
        ),
        case(
            "invalid UTF-8 in service",
            get("/auth?service=%C3%28", ""),
            400,
            Some("parameters are not valid UTF-8"),
        ),
        case(
            "invalid UTF-8 in a POST form",
            post("grant_type=password&username=%FF&password=x&service=reg"),
            400,
            Some("parameters are not valid UTF-8"),
        ),
        // Raw bytes that are not URI characters: refused by hyper.
        case(
            "raw 0xFF in the request target",
            std::mem::take(&mut raw_ff),
            400,
            None,
        ),
        case(
            "NUL in a header value",
            std::mem::take(&mut raw_nul_header),
            400,
            None,
        ),
        case(
            "garbage request line",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
            None,
        ),
    ];
    run(&s, cases).await;
}

#[tokio::test]
async fn malformed_basic_credentials() {
    let s = server().await;
    let q = "/auth?service=reg&scope=repository:team/app:pull";
    let cases = vec![
        case(
            "no colon",
            get(q, &basic(b"alice")),
            400,
            Some("malformed Basic credentials: no colon"),
        ),
        case(
            "bad base64",
            get(q, "Authorization: Basic !!!not-base64\r\n"),
            400,
            Some("malformed Basic credentials: invalid base64"),
        ),
        case(
            "no credentials after the scheme",
            get(q, "Authorization: Basic\r\n"),
            400,
            Some("malformed Basic credentials"),
        ),
        case(
            "NUL in the user",
            get(q, &basic(b"ali\0ce:alice")),
            400,
            Some("control character in user name"),
        ),
        case(
            "newline in the user",
            get(q, &basic(b"alice\nadmin:alice")),
            400,
            Some("control character in user name"),
        ),
        case(
            "invalid UTF-8 in the credentials",
            get(q, &basic(b"alice:\xff\xfe")),
            400,
            Some("malformed Basic credentials: not UTF-8"),
        ),
        case(
            "non-ASCII header bytes",
            get(q, "Authorization: Basic \u{e9}\r\n"),
            400,
            Some("malformed Basic credentials"),
        ),
        case(
            "another scheme",
            get(q, "Authorization: Bearer abc.def.ghi\r\n"),
            400,
            Some("unsupported Authorization scheme \"Bearer\"; use Basic"),
        ),
        // NUL inside a password is just a wrong password.
        case(
            "NUL in the password",
            get(q, &basic(b"alice:ali\0ce")),
            401,
            Some("authentication failed"),
        ),
        case(
            "empty password",
            get(q, &basic(b"alice:")),
            401,
            Some("authentication failed"),
        ),
    ];
    run(&s, cases).await;
}

#[tokio::test]
async fn passwords_beyond_bcrypt_limit_never_match() {
    let s = server().await;
    let ok = s.get("/auth?service=reg", Some(("long", P72))).await;
    assert_eq!(ok.status(), 200, "exactly 72 bytes is a valid password");
    // bcrypt reads 72 bytes: each of these would match a truncating check.
    let over = [
        format!("{P72}X"),
        format!("{P72}{P72}"),
        format!("{P72}{}", "z".repeat(10_000)),
    ];
    for pw in &over {
        let resp = s.get("/auth?service=reg", Some(("long", pw))).await;
        assert_eq!(resp.status(), 401, "{} bytes", pw.len());
        assert_eq!(resp.text().await.unwrap(), "authentication failed\n");
        // The same through the POST password grant.
        let form = format!("grant_type=password&username=long&password={pw}&service=reg");
        let r = raw(&s, &post(&form)).await;
        assert_eq!(r.status, 401, "POST {} bytes", pw.len());
    }
    still_serves(&s, "long passwords").await;
}

#[tokio::test]
async fn account_must_be_the_authenticated_user() {
    let s = server().await;
    let cases = vec![
        case(
            "account differs from the Basic user",
            get("/auth?service=reg&account=alice", &basic(b"bob:bob")),
            400,
            Some("account does not match the authenticated user"),
        ),
        case(
            "account differs only in case",
            get("/auth?service=reg&account=Alice", &basic(b"alice:alice")),
            400,
            Some("account does not match the authenticated user"),
        ),
        case(
            "account given twice",
            get(
                "/auth?service=reg&account=alice&account=bob",
                &basic(b"alice:alice"),
            ),
            400,
            Some("parameter \"account\" given more than once"),
        ),
        case(
            "account differs from the POST username",
            post("grant_type=password&username=bob&password=bob&account=alice&service=reg"),
            400,
            Some("account does not match the authenticated user"),
        ),
    ];
    run(&s, cases).await;
    // `account` without credentials claims nothing: the token is anonymous.
    let resp = s
        .get(
            "/auth?service=reg&account=alice&scope=repository:team/app:push",
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["token"].as_str().unwrap(), "p256", "reg");
    assert_eq!(claims["sub"], "");
    assert_eq!(claims["access"][0]["actions"], serde_json::json!([]));
}

#[tokio::test]
async fn traversal_and_control_characters_in_names() {
    let s = server().await;
    let q = |scope: &str| format!("/auth?service=reg&scope={scope}");
    let a = basic(b"alice:alice");
    let cases = vec![
        case(
            "dot-dot component",
            get(&q("repository:team/../admin:pull"), &a),
            400,
            Some("invalid repository name"),
        ),
        case(
            "leading dot-dot",
            get(&q("repository:../etc/passwd:pull"), &a),
            400,
            Some("invalid repository name"),
        ),
        case(
            "encoded traversal",
            get(&q("repository:team%2F..%2F..%2Fadmin:pull"), &a),
            400,
            Some("invalid repository name"),
        ),
        case(
            "absolute name",
            get(&q("repository:/etc/passwd:pull"), &a),
            400,
            Some("invalid repository name"),
        ),
        case(
            "backslash",
            get(&q("repository:team%5C..%5Cadmin:pull"), &a),
            400,
            Some("invalid repository name"),
        ),
        case(
            "newline in a name",
            get(&q("repository:team/app%0Aevil:pull"), &a),
            400,
            Some("whitespace or control character"),
        ),
        case(
            "NUL in a name",
            get(&q("repository:team/app%00:pull"), &a),
            400,
            Some("whitespace or control character"),
        ),
        case(
            "escape sequence in a type",
            get(&q("repo%1B[31msitory:a:pull"), &a),
            400,
            Some("whitespace or control character"),
        ),
        case(
            "control character in a POST username",
            post("grant_type=password&username=alice%0Aadmin&password=x&service=reg"),
            400,
            Some("control character in parameter \"username\""),
        ),
        case(
            "control character in service",
            get("/auth?service=reg%0D%0AX-Evil:%201", &a),
            400,
            Some("control character in parameter \"service\""),
        ),
        case(
            "dot-dot in the path",
            get("/auth/../healthz", ""),
            404,
            None,
        ),
        case(
            "encoded dot-dot in the path",
            get("/%2e%2e/auth", ""),
            404,
            None,
        ),
    ];
    run(&s, cases).await;
}

#[tokio::test]
async fn unknown_and_unexpected_methods() {
    let s = server().await;
    let req = |m: &str| {
        format!("{m} /auth?service=reg HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    let cases = vec![
        case("PUT", req("PUT"), 405, None),
        case("DELETE", req("DELETE"), 405, None),
        case("PATCH", req("PATCH"), 405, None),
        case("OPTIONS", req("OPTIONS"), 405, None),
        case("TRACE", req("TRACE"), 405, None),
        case("made-up method", req("BREW"), 405, None),
        case("lower-case get", req("get"), 405, None),
        case(
            "POST to healthz",
            req("POST").replace_path("/healthz"),
            405,
            None,
        ),
    ];
    run(&s, cases).await;
    // HEAD of the token endpoint is a GET without a body.
    let r = raw(&s, &req("HEAD")).await;
    assert_eq!(r.status, 200);
}

trait ReplacePath {
    fn replace_path(self, to: &str) -> Vec<u8>;
}

impl ReplacePath for Vec<u8> {
    fn replace_path(self, to: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replacen("/auth?service=reg", to, 1)
            .into_bytes()
    }
}
