//! What an account does to itself (issue 14): change its password, log out everywhere, delete
//! itself with everything it owns.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, TestApp, PASSWORD},
    rtc::{self, PublishOptions},
    whip_whep::{streamer, wait_stream},
};

async fn me(app: &TestApp, client: &reqwest::Client) -> u16 {
    client.get(app.url("/api/v1/me")).send().await.unwrap().status().as_u16()
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> (reqwest::Client, u16) {
    let client = app.client();
    let response = app.post_json(&client, "/api/v1/login", json!({ "email": email, "password": password })).await;
    (client, response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let here = app.client();
    app.sign_up(&here, "change@example.com").await;
    let (elsewhere, status) = log_in(&app, "change@example.com", PASSWORD).await;
    assert_eq!(status, 200);

    let change = |current: &str, new: &str| {
        app.post_json(&here, "/api/v1/me/password", json!({ "currentPassword": current, "newPassword": new }))
    };
    let wrong = change("not-the-password", "a brand new secret").await;
    assert_eq!(wrong.status(), 422);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["field"], "password", "{body}");
    let short = change(PASSWORD, "short").await;
    assert_eq!(short.status(), 422);
    assert_eq!(short.json::<Value>().await.unwrap()["error"]["field"], "newPassword");
    assert_eq!(me(&app, &elsewhere).await, 200, "refused changes end nothing");

    assert_eq!(change(PASSWORD, "a brand new secret").await.status(), 204);
    assert_eq!(me(&app, &here).await, 200, "the session that changed it stays");
    assert_eq!(me(&app, &elsewhere).await, 401, "every other session ends");
    assert_eq!(log_in(&app, "change@example.com", PASSWORD).await.1, 401);
    assert_eq!(log_in(&app, "change@example.com", "a brand new secret").await.1, 200);

    let anonymous = app
        .post_json(&app.client(), "/api/v1/me/password", json!({ "currentPassword": "x", "newPassword": "yyyyyyyy" }))
        .await;
    assert_eq!(anonymous.status(), 401);
    let malformed = here
        .post(app.url("/api/v1/me/password"))
        .header("content-type", "application/json")
        .body("{not json}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_current_password_is_limited_like_logins() {
    let app = spawn_app().await;
    let client = app.client();
    app.sign_up(&client, "guess@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..ferrocast::server::accounts::LOGIN_FAILURES_PER_ACCOUNT + 2 {
        let response = app
            .post_json(
                &client,
                "/api/v1/me/password",
                json!({ "currentPassword": "guess", "newPassword": "whatever-new" }),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.ends_with(&[429, 429]), "{statuses:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_everywhere_ends_every_session_but_not_keys_or_tokens() {
    let app = spawn_app().await;
    let s = streamer(&app, "everywhere@example.com", json!({ "label": "e", "streams": ["main"] })).await;
    let (other, _) = log_in(&app, "everywhere@example.com", PASSWORD).await;
    let key: Value = app.post_json(&s.client, "/api/v1/api-keys", json!({ "label": "ci" })).await.json().await.unwrap();
    let key = key["secret"].as_str().unwrap().to_owned();

    let response = app.post_json(&s.client, "/api/v1/me/logout-everywhere", json!({})).await;
    assert_eq!(response.status(), 204);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Max-Age=0"), "the cookie is cleared: {cookie}");
    assert_eq!(me(&app, &s.client).await, 401);
    assert_eq!(me(&app, &other).await, 401);
    let with_key = app.client().get(app.url("/api/v1/me")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(with_key.status(), 200, "API keys are not sessions");
    assert!(rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.is_ok(), "tokens still publish");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_takes_everything_it_owns_and_nothing_else() {
    let app = spawn_app().await;
    let s = streamer(&app, "leaving@example.com", json!({ "label": "l", "streams": ["show"], "record": true })).await;
    let staying = streamer(&app, "staying@example.com", json!({ "label": "s", "streams": ["show"] })).await;
    let _key = app.post_json(&s.client, "/api/v1/api-keys", json!({ "label": "ci" })).await;
    let mut recorded = PublishOptions::new(&s.token, "show");
    recorded.media = rtc::Media::Clip;
    let publisher = rtc::publish(&app, recorded).await.unwrap();
    let _stays = rtc::publish(&app, PublishOptions::new(&staying.token, "show")).await.unwrap();
    wait_stream(&app, &s.account, "show", "live", |v| v["live"] == true).await;
    let rows = crate::recording::wait_recordings(&app, "a recording writes", |rows| {
        rows.len() == 1
            && std::fs::metadata(app.data_dir.join("recordings").join(&rows[0].1)).is_ok_and(|m| m.len() > 0)
    })
    .await;
    let file = app.data_dir.join("recordings").join(&rows[0].1);
    // A finished recording too, so both kinds of file are gone afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(publisher);

    let delete = |password: &str| s.client.delete(app.url("/api/v1/me")).json(&json!({ "password": password })).send();
    let refused = delete("not-my-password").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(me(&app, &s.client).await, 200, "a refused deletion deletes nothing");

    let deleted = delete(PASSWORD).await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(me(&app, &s.client).await, 401);
    assert_eq!(log_in(&app, "leaving@example.com", PASSWORD).await.1, 401);
    assert!(!file.exists(), "the recording's file is deleted: {}", file.display());
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    for table in ["sessions", "publish_tokens", "api_keys", "recordings"] {
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE account_id NOT IN (SELECT id FROM accounts)"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table} rows of the deleted account");
    }
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM publish_tokens").fetch_one(&pool).await.unwrap();
    assert_eq!(tokens, 1, "the other account's token stays");
    pool.close().await;
    // Its stream stops and, the account gone, is not found at all.
    let gone = async {
        loop {
            let url = app.url(&format!("/api/v1/streams/{}/show", s.account));
            if app.client().get(url).send().await.unwrap().status() == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone).await.expect("the deleted account's stream is gone");
    let refused = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.err().expect("the token is gone");
    assert_eq!(refused.status, 401);
    assert_eq!(crate::whip_whep::public_stream(&app, &staying.account, "show").await["live"], true);

    // The email is free again.
    app.sign_up(&app.client(), "leaving@example.com").await;
    app.stop().await;
}
