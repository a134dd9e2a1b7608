//! Refresh tokens: `docker login`-style (GET offline_token) and OAuth2
//! (POST access_type=offline) issue them; POST grant_type=refresh_token
//! exchanges them; a password change or removed user revokes them.

use serde_json::Value;

use crate::support::{hash, verify, Server, DEFAULT_ACL};

const KEY: &str = "p256";

/// A server whose users live in an htpasswd file we can rewrite.
async fn server(refresh: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ht = dir.path().join("htpasswd");
    std::fs::write(&ht, format!("carol:{}\n", hash("carol"))).unwrap();
    let yaml = crate::support::config_yaml(
        KEY,
        &format!("  refresh_expiration: {refresh}"),
        &format!(
            "htpasswd: {}\n{}",
            ht.display(),
            DEFAULT_ACL.replace("account: \"alice\"", "account: \"/^(alice|carol)$/\"")
        ),
    );
    Server::start_in(dir, &yaml).await
}

async fn refresh_token_via_login(s: &Server) -> String {
    let resp = s
        .get(
            "/auth?account=carol&client_id=docker&offline_token=true&service=reg",
            Some(("carol", "carol")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["refresh_token"]
        .as_str()
        .expect("refresh_token returned")
        .to_owned()
}

fn exchange_form(token: &str, service: &str) -> String {
    format!("grant_type=refresh_token&refresh_token={token}&client_id=docker&service={service}&scope=repository:team/app:pull%20repository:team/app:push")
}

#[tokio::test]
async fn login_then_refresh_then_revoke_on_password_change() {
    let s = server(3600).await;
    let rt = refresh_token_via_login(&s).await;
    assert!(
        rt.starts_with("rt1."),
        "not a JWS: a registry cannot accept it as an access token"
    );

    let resp = s.post(&exchange_form(&rt, "reg")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = verify(body["access_token"].as_str().unwrap(), KEY, "reg");
    assert_eq!(claims["sub"], "carol");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );

    // Refused: another service, a tampered token, an account mismatch.
    assert_eq!(s.post(&exchange_form(&rt, "other")).await.status(), 401);
    let tampered = format!("{}x", &rt[..rt.len() - 1]);
    assert_eq!(s.post(&exchange_form(&tampered, "reg")).await.status(), 401);
    let mismatch = format!("{}&account=alice", exchange_form(&rt, "reg"));
    assert_eq!(s.post(&mismatch).await.status(), 400);

    // The password changes: the stored identity token stops working.
    std::fs::write(
        s.dir.path().join("htpasswd"),
        format!("carol:{}\n", hash("new-password")),
    )
    .unwrap();
    regauth::reload::reload(&s.state, None).await.unwrap();
    let resp = s.post(&exchange_form(&rt, "reg")).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    // A fresh login with the new password works again; removing the user
    // revokes that token too.
    let s2 = s;
    let resp = s2
        .get(
            "/auth?offline_token=true&service=reg",
            Some(("carol", "new-password")),
        )
        .await;
    let rt2 = resp.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s2.post(&exchange_form(&rt2, "reg")).await.status(), 200);
    // (Another user stays: a reload that empties the file is refused.)
    std::fs::write(
        s2.dir.path().join("htpasswd"),
        format!("dave:{}\n", hash("dave")),
    )
    .unwrap();
    regauth::reload::reload(&s2.state, None).await.unwrap();
    assert_eq!(s2.post(&exchange_form(&rt2, "reg")).await.status(), 401);
}

#[tokio::test]
async fn oauth_password_grant_with_offline_access() {
    let s = server(3600).await;
    let resp = s
        .post("grant_type=password&username=carol&password=carol&service=reg&client_id=containerd&access_type=offline&scope=repository:team/app:pull")
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let rt = body["refresh_token"].as_str().unwrap();
    assert_eq!(s.post(&exchange_form(rt, "reg")).await.status(), 200);
    // Without access_type=offline: no refresh token.
    let body: Value = s
        .post("grant_type=password&username=carol&password=carol&service=reg")
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("refresh_token").is_none());
    // Anonymous never gets one.
    let body: Value = s
        .get("/auth?offline_token=true&service=reg", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn disabled_refresh_is_a_clear_400() {
    let s = server(0).await;
    let body: Value = s
        .get(
            "/auth?offline_token=true&service=reg",
            Some(("carol", "carol")),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("refresh_token").is_none());
    let resp = s.post(&exchange_form("rt1.x.y", "reg")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("refresh tokens are not enabled"));
}
