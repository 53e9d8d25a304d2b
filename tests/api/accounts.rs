//! `/api/v1/signup`, `/login`, `/logout`, `/me`: sessions, limits and bad input.

use std::time::{Duration, Instant};

use reqwest::{header, Client};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_creates_a_lower_cased_account_and_logs_it_in() {
    let app = spawn_app().await;
    let client = app.client();
    let response =
        app.post_json(&client, "/api/v1/signup", json!({ "email": " Ada@Example.COM ", "password": PASSWORD })).await;
    assert_eq!(response.status(), 201);
    let cookie = set_cookie(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    let account_id = body["accountId"].as_str().unwrap();
    assert!(account_id.len() == 6 && account_id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));

    for attribute in ["fc_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http must not mark the cookie Secure: {cookie}");

    let me: Value = client.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me, json!({ "accountId": account_id, "email": "ada@example.com", "operator": true }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(https_public_url).await;
    let client = app.client();
    let response =
        app.post_json(&client, "/api/v1/signup", json!({ "email": "s@example.com", "password": PASSWORD })).await;
    let cookie = set_cookie(&response);
    assert!(cookie.contains("; Secure") && cookie.starts_with("__Host-fc_session="), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_as_argon2id_and_sessions_as_hashes() {
    let app = spawn_app().await;
    let client = app.client();
    let response =
        app.post_json(&client, "/api/v1/signup", json!({ "email": "h@example.com", "password": PASSWORD })).await;
    let session = session_value(&set_cookie(&response));

    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM accounts").fetch_one(&pool).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_all(&pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], session, "the raw session id is never stored");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_without_a_session_is_401() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(error_code(response, 401).await, "unauthenticated");
    let forged =
        app.client().get(app.url("/api/v1/me")).header(header::COOKIE, "fc_session=deadbeef").send().await.unwrap();
    assert_eq!(forged.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_a_session_and_logout_revokes_it() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "lee@example.com").await;

    let client = app.client();
    let response =
        app.post_json(&client, "/api/v1/login", json!({ "email": "LEE@example.com", "password": PASSWORD })).await;
    assert_eq!(response.status(), 200);
    let session = session_value(&set_cookie(&response));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "lee@example.com");
    assert_eq!(client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);

    let response = client.post(app.url("/api/v1/logout")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(set_cookie(&response).contains("Max-Age=0"), "the browser is told to drop the cookie");

    // A copy of the old cookie no longer works: the session was revoked server-side.
    let replay = Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, format!("fc_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert_eq!(app.count("sessions").await, 1, "only the sign-up session is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "known@example.com").await;
    let client = app.client();

    let mut timings = [Vec::new(), Vec::new()];
    let mut bodies = Vec::new();
    for round in 0..3 {
        for (i, email) in ["known@example.com", "nobody@example.com"].into_iter().enumerate() {
            let started = Instant::now();
            let response =
                app.post_json(&client, "/api/v1/login", json!({ "email": email, "password": "wrong password" })).await;
            timings[i].push(started.elapsed());
            assert_eq!(response.status(), 401);
            assert!(response.headers().get(header::SET_COOKIE).is_none());
            let body: Value = response.json().await.unwrap();
            if round == 0 {
                bodies.push(body);
            }
        }
    }
    assert_eq!(bodies[0], bodies[1], "same answer for an unknown email and a wrong password");
    assert_eq!(bodies[0]["error"]["code"], "invalid_credentials");

    // Both paths run one argon2 verification, so their medians stay close (generous bounds for
    // a busy 2-core machine; a missing verification would be ~100x faster).
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[1]
    };
    let (known, unknown) = (median(&mut timings[0]), median(&mut timings[1]));
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!((0.33..3.0).contains(&ratio), "known {known:?} vs unknown {unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_on_one_account_are_refused_with_429() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "target@example.com").await;
    let client = app.client();
    for _ in 0..5 {
        let response = app
            .post_json(&client, "/api/v1/login", json!({ "email": "target@example.com", "password": "guess guess" }))
            .await;
        assert_eq!(response.status(), 401);
    }
    // Even the right password waits now: the limit is on attempts, not on wrong answers.
    let response =
        app.post_json(&client, "/api/v1/login", json!({ "email": "Target@example.com", "password": PASSWORD })).await;
    let retry_after: u64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(response, 429).await, "too_many_requests");

    // Other accounts are not locked out by it.
    app.sign_up(&app.client(), "bystander@example.com").await;
    let response = app
        .post_json(&client, "/api/v1/login", json!({ "email": "bystander@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_refused_with_429() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "real@example.com").await;
    let client = app.client();
    for i in 0..20 {
        let response = app
            .post_json(
                &client,
                "/api/v1/login",
                json!({ "email": format!("spray{i}@example.com"), "password": "password1" }),
            )
            .await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    let response =
        app.post_json(&client, "/api/v1/login", json!({ "email": "real@example.com", "password": PASSWORD })).await;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(error_code(response, 429).await, "too_many_requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_requests_that_change_state_are_refused() {
    let app = spawn_app().await;
    let client = app.client();
    let response = client
        .post(app.url("/api/v1/signup"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "email": "victim@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 403).await, "cross_origin_request");
    assert_eq!(app.count("accounts").await, 0, "nothing was written");

    // Fetch metadata alone is enough to tell a cross-site form post.
    let response = client
        .post(app.url("/api/v1/signup"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "email": "victim@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // A logged-in victim's session survives another site's logout attempt...
    app.sign_up(&client, "victim@example.com").await;
    let response =
        client.post(app.url("/api/v1/logout")).header(header::ORIGIN, "http://127.0.0.1:1").send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .post(app.url("/rpc/logout"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);

    // ...while the same request from this site's own pages goes through.
    let response =
        client.post(app.url("/api/v1/logout")).header(header::ORIGIN, app.base.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_up_bodies_get_clear_errors_and_write_nothing() {
    let app = spawn_app().await;
    let client = app.client();
    let post_raw = |body: &'static str, content_type: &'static str| {
        client.post(app.url("/api/v1/signup")).header(header::CONTENT_TYPE, content_type).body(body).send()
    };
    assert_eq!(error_code(post_raw("", "application/json").await.unwrap(), 400).await, "malformed_body");
    assert_eq!(error_code(post_raw("{\"email\":", "application/json").await.unwrap(), 400).await, "malformed_body");
    assert_eq!(error_code(post_raw("[1,2]", "application/json").await.unwrap(), 422).await, "invalid_body");
    assert_eq!(
        error_code(post_raw("email=a@b.c&password=12345678", "application/x-www-form-urlencoded").await.unwrap(), 415)
            .await,
        "unsupported_media_type"
    );

    let missing = app.post_json(&client, "/api/v1/signup", json!({ "email": "a@example.com" })).await;
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("password"), "{body}");

    let cases = [
        (json!({ "email": "no-at-sign.example.com", "password": PASSWORD }), "email"),
        (json!({ "email": "", "password": PASSWORD }), "email"),
        (json!({ "email": "a@example.com", "password": "1234567" }), "password"),
        (json!({ "email": "a@example.com", "password": "x".repeat(1025) }), "password"),
    ];
    for (body, field) in cases {
        let response = app.post_json(&client, "/api/v1/signup", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "validation_failed");
        assert_eq!(error["error"]["field"], field, "{body}");
        assert!(error["error"]["message"].as_str().unwrap().starts_with(field));
    }

    let oversized = app
        .post_json(&client, "/api/v1/signup", json!({ "email": "a@example.com", "password": "x".repeat(100_000) }))
        .await;
    assert_eq!(error_code(oversized, 413).await, "payload_too_large");
    assert_eq!(app.count("accounts").await, 0, "no bad request wrote anything");
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "dup@example.com").await;
    let response = app
        .post_json(
            &app.client(),
            "/api/v1/signup",
            json!({ "email": "DUP@example.com", "password": "another password" }),
        )
        .await;
    assert_eq!(error_code(response, 409).await, "conflict");
    assert_eq!(app.count("accounts").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_login_bodies_get_clear_errors() {
    let app = spawn_app().await;
    let client = app.client();
    let response = app.post_json(&client, "/api/v1/login", json!({ "email": "x", "password": PASSWORD })).await;
    assert_eq!(error_code(response, 422).await, "validation_failed");
    let response = app
        .post_json(&client, "/api/v1/login", json!({ "email": "x@example.com", "password": "y".repeat(1025) }))
        .await;
    assert_eq!(error_code(response, 422).await, "validation_failed");
    let response = app.post_json(&client, "/api/v1/login", json!({ "password": PASSWORD })).await;
    assert_eq!(error_code(response, 422).await, "invalid_body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_can_be_closed() {
    let app = spawn_app_with(closed_signup).await;
    let response =
        app.post_json(&app.client(), "/api/v1/signup", json!({ "email": "a@example.com", "password": PASSWORD })).await;
    assert_eq!(error_code(response, 403).await, "signup_closed");
    assert_eq!(app.count("accounts").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let client = app.client();
    let response = client.get(app.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
    let response = client.get(app.url("/api/v1/login")).send().await.unwrap();
    assert_eq!(error_code(response, 405).await, "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_sessions_survive_a_restart() {
    let app = spawn_app().await;
    let client = app.client();
    let created = app.sign_up(&client, "keep@example.com").await;
    let (data_dir, guard) = app.stop().await;

    let app = spawn_on(data_dir, |_| {}).await;
    // The session cookie from before the restart still works...
    let me: Value = client.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me, created);
    // ...and the password still logs in, to the same account id.
    let response = app
        .post_json(&app.client(), "/api/v1/login", json!({ "email": "keep@example.com", "password": PASSWORD }))
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accountId"], created["accountId"]);
    app.stop().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}
