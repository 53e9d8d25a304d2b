//! `/api/v1/tokens`, `/api/v1/api-keys`, API-key authentication and the publish rule against
//! the real database.

use ferrocast::server::publish_rule::{self, PublishDenied, PublishRequest};
use reqwest::{header, Client, Method};
use serde_json::{json, Value};

use crate::helpers::*;

/// Signs up and returns a client holding the session.
async fn member(app: &TestApp, email: &str) -> Client {
    let client = app.client();
    app.sign_up(&client, email).await;
    client
}

async fn create_token(app: &TestApp, client: &Client, body: Value) -> Value {
    let response = app.post_json(client, "/api/v1/tokens", body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn publish(app: &TestApp, secret: &str, stream: &str) -> Result<publish_rule::PublishGrant, PublishDenied> {
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    let stream_name = ferrocast::names::StreamName::parse(stream).unwrap();
    let request = PublishRequest { secret, stream_name: &stream_name, source_id: None, origin: None };
    let verdict = publish_rule::authorize(&pool, &Default::default(), request).await.unwrap();
    pool.close().await;
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_created_with_its_secret_shown_once() {
    let app = spawn_app().await;
    let client = member(&app, "t@example.com").await;
    let created = create_token(
        &app,
        &client,
        json!({ "label": " Studio A ", "streams": ["main", "cam-*", "main"], "record": true,
                "expiresAt": "2099-01-01T00:00:00+01:00", "allowedOrigins": ["https://Studio.example/"] }),
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("fcp_") && secret.len() > 40, "{secret}");
    let token = &created["token"];
    assert_eq!(token["label"], "Studio A");
    assert_eq!(token["streams"], json!(["main", "cam-*"]));
    assert_eq!(token["enabled"], true);
    assert_eq!(token["record"], true);
    assert_eq!(token["multisource"], false);
    assert_eq!(token["expiresAt"], "2098-12-31T23:00:00Z");
    assert_eq!(token["allowedOrigins"], json!(["https://studio.example"]));
    assert_eq!(token["lastUsedAt"], Value::Null);
    assert!(token["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(token["createdAt"], token["updatedAt"]);
    let hint = token["hint"].as_str().unwrap();
    assert!(hint.starts_with("fcp_…") && secret.ends_with(&hint["fcp_…".len()..]), "{hint}");

    // Nothing but create and rotate ever shows the secret, or its hash.
    let list = client.get(app.url("/api/v1/tokens")).send().await.unwrap().text().await.unwrap();
    let one = client.get(app.url(&format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(one.status(), 200);
    let one = one.text().await.unwrap();
    let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM publish_tokens").fetch_one(&pool).await.unwrap();
    pool.close().await;
    for body in [&list, &one] {
        assert!(!body.contains(secret) && !body.contains(&stored) && !body.contains("secret"), "{body}");
    }
    assert_ne!(stored, secret, "only a hash is stored");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_only_what_it_names() {
    let app = spawn_app().await;
    let client = member(&app, "p@example.com").await;
    let created = create_token(
        &app,
        &client,
        json!({ "label": "a", "streams": ["s1"], "multisource": true, "expiresAt": "2099-01-01T00:00:00Z",
                "allowedOrigins": ["https://a.example"] }),
    )
    .await;
    let url = app.url(&format!("/api/v1/tokens/{}", created["token"]["id"].as_str().unwrap()));

    let patched: Value = client
        .patch(&url)
        .json(&json!({ "label": "renamed", "enabled": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["label"], "renamed");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["streams"], json!(["s1"]));
    assert_eq!(patched["multisource"], true);
    assert_eq!(patched["expiresAt"], "2099-01-01T00:00:00Z");
    assert_eq!(patched["allowedOrigins"], json!(["https://a.example"]));

    // null clears the nullable fields; absent leaves them.
    let cleared: Value = client
        .patch(&url)
        .json(&json!({ "expiresAt": null, "allowedOrigins": null, "streams": ["*", "s1"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["expiresAt"], Value::Null);
    assert_eq!(cleared["allowedOrigins"], Value::Null);
    assert_eq!(cleared["streams"], json!(["*", "s1"]), "`*` beside names is kept as given");
    assert_eq!(cleared["label"], "renamed");
    assert_eq!(cleared["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_input_is_422_naming_the_field_and_saves_nothing() {
    let app = spawn_app().await;
    let client = member(&app, "v@example.com").await;
    let cases = [
        (json!({ "label": "", "streams": ["a"] }), "label"),
        (json!({ "label": "x".repeat(129), "streams": ["a"] }), "label"),
        (json!({ "label": "ok", "streams": [] }), "streams"),
        (json!({ "label": "ok", "streams": ["  "] }), "streams"),
        (json!({ "label": "ok", "streams": ["bad name"] }), "streams"),
        (json!({ "label": "ok", "streams": ["x".repeat(65)] }), "streams"),
        (json!({ "label": "ok", "streams": ["a**"] }), "streams"),
        (json!({ "label": "ok", "streams": ["a"], "expiresAt": "2001-01-01T00:00:00Z" }), "expiresAt"),
        (json!({ "label": "ok", "streams": ["a"], "expiresAt": "next week" }), "expiresAt"),
        (json!({ "label": "ok", "streams": ["a"], "allowedOrigins": ["studio.example"] }), "allowedOrigins"),
        (json!({ "label": "ok", "streams": ["a"], "allowedOrigins": ["https://a.example/path"] }), "allowedOrigins"),
    ];
    for (body, field) in cases {
        let response = app.post_json(&client, "/api/v1/tokens", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{body}");
        assert!(error["error"]["message"].as_str().unwrap().len() > 10);
    }
    let response = app.post_json(&client, "/api/v1/tokens", json!({ "label": "no streams" })).await;
    assert_eq!(error_code(response, 422).await, "invalid_body");
    assert_eq!(app.count("publish_tokens").await, 0);

    // A bad PATCH leaves the token as it was.
    let created = create_token(&app, &client, json!({ "label": "keep", "streams": ["a"] })).await;
    let url = app.url(&format!("/api/v1/tokens/{}", created["token"]["id"].as_str().unwrap()));
    let response = client.patch(&url).json(&json!({ "label": "new", "streams": ["no good"] })).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let token: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(token["label"], "keep");
    assert_eq!(token["streams"], json!(["a"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_replaces_the_secret_and_delete_is_forever() {
    let app = spawn_app().await;
    let client = member(&app, "r@example.com").await;
    let created = create_token(&app, &client, json!({ "label": "enc", "streams": ["live"] })).await;
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    let old = created["secret"].as_str().unwrap().to_owned();
    let grant = publish(&app, &old, "live").await.unwrap();
    assert_eq!(grant.token_id, id);

    let response = client.post(app.url(&format!("/api/v1/tokens/{id}/rotate"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["token"]["id"], id.as_str());
    assert_ne!(rotated["token"]["hint"], created["token"]["hint"]);
    assert_eq!(publish(&app, &old, "live").await, Err(PublishDenied::UnknownToken));
    assert!(publish(&app, &new, "live").await.is_ok());
    let token: Value = client.get(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().json().await.unwrap();
    assert!(token["lastUsedAt"].is_string(), "a grant marks the token used");

    let response = client.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(publish(&app, &new, "live").await, Err(PublishDenied::UnknownToken));
    for method in [Method::GET, Method::DELETE] {
        let response = client.request(method, app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap();
        assert_eq!(error_code(response, 404).await, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_rule_reads_the_stored_flags() {
    let app = spawn_app().await;
    let client = member(&app, "rule@example.com").await;
    let created = create_token(&app, &client, json!({ "label": "x", "streams": ["cam-*"], "record": true })).await;
    let secret = created["secret"].as_str().unwrap();
    let me: Value = client.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();

    let grant = publish(&app, secret, "cam-7").await.unwrap();
    assert_eq!(grant.account_public_id, me["accountId"].as_str().unwrap());
    assert!(grant.record && !grant.multisource);
    assert_eq!(publish(&app, secret, "other").await, Err(PublishDenied::StreamNotAllowed));
    assert_eq!(publish(&app, "fcp_not-a-real-secret", "cam-7").await, Err(PublishDenied::UnknownToken));

    let url = app.url(&format!("/api/v1/tokens/{}", created["token"]["id"].as_str().unwrap()));
    client.patch(&url).json(&json!({ "enabled": false })).send().await.unwrap();
    assert_eq!(publish(&app, secret, "cam-7").await, Err(PublishDenied::Disabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_tokens_are_404_on_every_route() {
    let app = spawn_app().await;
    let alice = member(&app, "alice@example.com").await;
    let bob = member(&app, "bob@example.com").await;
    let created = create_token(&app, &alice, json!({ "label": "alice's", "streams": ["a"] })).await;
    let id = created["token"]["id"].as_str().unwrap();

    let routes = [
        (Method::GET, format!("/api/v1/tokens/{id}"), None),
        (Method::PATCH, format!("/api/v1/tokens/{id}"), Some(json!({ "label": "mine now" }))),
        (Method::DELETE, format!("/api/v1/tokens/{id}"), None),
        (Method::POST, format!("/api/v1/tokens/{id}/rotate"), None),
    ];
    for (method, path, body) in &routes {
        let mut request = bob.request(method.clone(), app.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(error_code(response, 404).await, "not_found", "{method} {path}");
    }
    let bobs: Value = bob.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(bobs, json!([]));
    // Alice's token is untouched and its secret still works.
    let token: Value = alice.get(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(token["label"], "alice's");
    assert!(publish(&app, created["secret"].as_str().unwrap(), "a").await.is_ok());
    // Unknown ids look exactly the same.
    let response = bob.get(app.url("/api/v1/tokens/does-not-exist")).send().await.unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_routes_need_an_account() {
    let app = spawn_app().await;
    let anonymous = app.client();
    for (method, path) in [
        (Method::GET, "/api/v1/tokens"),
        (Method::POST, "/api/v1/tokens"),
        (Method::GET, "/api/v1/tokens/x"),
        (Method::PATCH, "/api/v1/tokens/x"),
        (Method::DELETE, "/api/v1/tokens/x"),
        (Method::POST, "/api/v1/tokens/x/rotate"),
        (Method::GET, "/api/v1/api-keys"),
        (Method::POST, "/api/v1/api-keys"),
        (Method::DELETE, "/api/v1/api-keys/x"),
    ] {
        let response = anonymous
            .request(method.clone(), app.url(path))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_work_like_a_session_until_revoked() {
    let app = spawn_app().await;
    let alice = member(&app, "keys@example.com").await;
    let response = app.post_json(&alice, "/api/v1/api-keys", json!({ "label": "deploy script" })).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let key = created["secret"].as_str().unwrap().to_owned();
    assert!(key.starts_with("fck_"));
    assert_eq!(created["apiKey"]["label"], "deploy script");
    let key_id = created["apiKey"]["id"].as_str().unwrap().to_owned();

    let listed = alice.get(app.url("/api/v1/api-keys")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("deploy script") && !listed.contains(&key));

    // A client with no cookie at all, only the key.
    let script = Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let bearer = format!("Bearer {key}");
    let me: Value = script
        .get(app.url("/api/v1/me"))
        .header(header::AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "keys@example.com");
    let response = script
        .post(app.url("/api/v1/tokens"))
        .header(header::AUTHORIZATION, &bearer)
        .json(&json!({ "label": "from a script", "streams": ["*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let tokens: Value = alice.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tokens[0]["label"], "from a script", "the key acts as its account");

    // Another account's key cannot reach this account's rows.
    let bob = member(&app, "bob-keys@example.com").await;
    let response = app.post_json(&bob, "/api/v1/api-keys", json!({ "label": "bob" })).await;
    let bob_key = response.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let token_id = tokens[0]["id"].as_str().unwrap();
    let response = script
        .get(app.url(&format!("/api/v1/tokens/{token_id}")))
        .header(header::AUTHORIZATION, format!("Bearer {bob_key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = bob.delete(app.url(&format!("/api/v1/api-keys/{key_id}"))).send().await.unwrap();
    assert_eq!(response.status(), 404, "bob cannot revoke alice's key");

    // Wrong or malformed keys are 401, never anonymous.
    for value in ["Bearer fck_wrong", "Bearer fcp_a_publish_token", "Basic abc", "Bearer"] {
        let response = script.get(app.url("/api/v1/me")).header(header::AUTHORIZATION, value).send().await.unwrap();
        assert_eq!(response.status(), 401, "{value}");
    }

    let response = alice.delete(app.url(&format!("/api/v1/api-keys/{key_id}"))).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = script.get(app.url("/api/v1/me")).header(header::AUTHORIZATION, &bearer).send().await.unwrap();
    assert_eq!(response.status(), 401, "a revoked key stops working");
    let response = app.post_json(&alice, "/api/v1/api-keys", json!({ "label": "" })).await;
    assert_eq!(response.status(), 422);
}
