//! The operator's view of accounts: `/api/v1/admin/accounts` and `/admin` (README "Sign-up and
//! the operator").

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

use crate::{
    helpers::{error_code, spawn_app, TestApp, PASSWORD},
    rtc::{self, PublishOptions},
    whip_whep::{public_stream, streamer, wait_stream},
};

async fn accounts(app: &TestApp, operator: &Client) -> Vec<Value> {
    let response = operator.get(app.url("/api/v1/admin/accounts")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn find<'a>(list: &'a [Value], email: &str) -> &'a Value {
    list.iter().find(|a| a["email"] == email).unwrap_or_else(|| panic!("{email} in {list:?}"))
}

async fn patch(app: &TestApp, operator: &Client, account: &str, body: Value) -> reqwest::Response {
    operator.patch(app.url(&format!("/api/v1/admin/accounts/{account}"))).json(&body).send().await.unwrap()
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(&app.client(), "/api/v1/login", json!({ "email": email, "password": password })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_every_account_and_what_it_has_live() {
    let app = spawn_app().await;
    let owner = streamer(&app, "owner@example.com", json!({ "label": "o", "streams": ["*"] })).await;
    let ana = streamer(&app, "ana@example.com", json!({ "label": "a", "streams": ["show"] })).await;
    let _publisher = rtc::publish(&app, PublishOptions::new(&ana.token, "show")).await.unwrap();
    wait_stream(&app, &ana.account, "show", "live", |v| v["live"] == true).await;
    let _viewer = rtc::view(&app, &format!("/whep/{}/show", ana.account), 1).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = accounts(&app, &owner.client).await;
        if find(&list, "ana@example.com")["viewers"] == 1 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(list.len(), 2);
    let (first, second) = (find(&list, "owner@example.com"), find(&list, "ana@example.com"));
    assert_eq!((first["operator"].clone(), second["operator"].clone()), (json!(true), json!(false)));
    assert_eq!(second["accountId"], ana.account);
    assert_eq!(
        (second["tokens"].clone(), second["liveStreams"].clone(), second["viewers"].clone()),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!((first["liveStreams"].clone(), first["disabled"].clone()), (json!(0), json!(false)));
    assert!(second["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(second["lastLoginAt"].is_null(), "signed up, never logged in: {second}");
    assert_eq!(log_in(&app, "ana@example.com", PASSWORD).await.status(), 200);
    let list = accounts(&app, &owner.client).await;
    assert!(find(&list, "ana@example.com")["lastLoginAt"].as_str().is_some_and(|t| t.ends_with('Z')));

    // The instance: what is live now, its last hour, its limits; nothing recorded yet.
    let deadline = Instant::now() + Duration::from_secs(12);
    let instance = loop {
        let instance: Value =
            owner.client.get(app.url("/api/v1/admin/instance")).send().await.unwrap().json().await.unwrap();
        let sampled = instance["history"].as_array().unwrap().iter().any(|s| s["viewers"] == 1);
        if sampled || Instant::now() > deadline {
            break instance;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        (instance["streams"].clone(), instance["publishers"].clone(), instance["viewers"].clone()),
        (json!(1), json!(1), json!(1))
    );
    assert!(instance["history"].as_array().unwrap().iter().any(|s| s["viewers"] == 1), "sampled: {instance}");
    assert_eq!(instance["recordings"], Value::Null);
    assert_eq!(instance["limits"]["maxViewers"], 4000);
    assert_eq!(instance["limits"]["account"]["maxPublishers"], 32);
    assert_eq!(ana.client.get(app.url("/api/v1/admin/instance")).send().await.unwrap().status(), 404);
    // The same sample counted Ana's traffic for the last 24 hours; the owner has none.
    let list = accounts(&app, &owner.client).await;
    let traffic = |email| {
        let account = find(&list, email);
        (account["publishedBytes24h"].as_u64().unwrap(), account["viewedBytes24h"].as_u64().unwrap())
    };
    let (published, viewed) = traffic("ana@example.com");
    assert!(published > 0 && viewed > 0, "{published} {viewed}");
    assert_eq!(traffic("owner@example.com"), (0, 0));

    // The page shows the same, to the operator only.
    let page = owner.client.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("ana@example.com") && page.contains(&ana.account) && page.contains("1 stream(s), 1 viewer(s)")
    );
    assert_eq!(ana.client.get(app.url("/admin")).send().await.unwrap().status(), 404);
    // Everyone else gets 404 from each operator route, whatever they send.
    for client in [&ana.client, &app.client()] {
        assert_eq!(client.get(app.url("/api/v1/admin/accounts")).send().await.unwrap().status(), 404);
        let url = app.url(&format!("/api/v1/admin/accounts/{}", owner.account));
        assert_eq!(client.patch(&url).json(&json!({ "disabled": true })).send().await.unwrap().status(), 404);
        assert_eq!(client.delete(&url).send().await.unwrap().status(), 404);
        // A method the route lacks is the same 404, not a 405 that would tell it exists.
        assert_eq!(client.post(app.url("/api/v1/admin/accounts")).json(&json!({})).send().await.unwrap().status(), 404);
        assert_eq!(client.put(app.url("/api/v1/invites")).send().await.unwrap().status(), 404);
    }
    let key = app.post_json(&ana.client, "/api/v1/api-keys", json!({ "label": "k" })).await;
    let key = key.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let with_key = Client::new().get(app.url("/api/v1/admin/accounts")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(with_key.status(), 404);

    // The traffic is in the database: a restart keeps it.
    let (data_dir, _guard) = app.stop().await;
    let app = crate::helpers::spawn_on(data_dir, |_| {}).await;
    let operator = app.client();
    let logged_in =
        app.post_json(&operator, "/api/v1/login", json!({ "email": "owner@example.com", "password": PASSWORD })).await;
    assert_eq!(logged_in.status(), 200);
    let list = accounts(&app, &operator).await;
    let after = find(&list, "ana@example.com");
    // (A sample may have come between the reading and the stop: at least what was read.)
    assert!(after["publishedBytes24h"].as_u64().unwrap() >= published, "{after}");
    assert!(after["viewedBytes24h"].as_u64().unwrap() >= viewed, "{after}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_ends_the_live_feed_and_refuses_token_key_session_and_login_until_enabled() {
    let app = spawn_app().await;
    let owner = streamer(&app, "owner@example.com", json!({ "label": "o", "streams": ["*"] })).await;
    let ana = streamer(&app, "ana@example.com", json!({ "label": "a", "streams": ["show"] })).await;
    let other = streamer(&app, "other@example.com", json!({ "label": "x", "streams": ["show"] })).await;
    let key = app.post_json(&ana.client, "/api/v1/api-keys", json!({ "label": "k" })).await;
    let key = key.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let publisher = rtc::publish(&app, PublishOptions::new(&ana.token, "show")).await.unwrap();
    let stays = rtc::publish(&app, PublishOptions::new(&other.token, "show")).await.unwrap();
    wait_stream(&app, &ana.account, "show", "live", |v| v["live"] == true).await;
    wait_stream(&app, &other.account, "show", "live", |v| v["live"] == true).await;

    let started = Instant::now();
    let disabled = patch(&app, &owner.client, &ana.account, json!({ "disabled": true })).await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(disabled.json::<Value>().await.unwrap()["disabled"], true);
    // The SFU drops the feed before the answer (the publisher's own stack notices when its
    // consent checks go unanswered, later).
    let state = public_stream(&app, &ana.account, "show").await;
    assert_eq!(state["live"], false, "the feed ended before the answer: {state}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let list = accounts(&app, &owner.client).await;
    assert_eq!(
        (find(&list, "ana@example.com")["liveStreams"].clone(), find(&list, "ana@example.com")["disabled"].clone()),
        (json!(0), json!(true))
    );
    drop(publisher);

    // Its token, key, session and password are refused, each saying why.
    let refused = rtc::publish(&app, PublishOptions::new(&ana.token, "show")).await.err().expect("refused");
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("account disabled"), "{}", refused.body);
    let with_key = Client::new().get(app.url("/api/v1/me")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(with_key, 403).await, "account_disabled");
    assert_eq!(ana.client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "its session ended");
    assert_eq!(error_code(log_in(&app, "ana@example.com", PASSWORD).await, 403).await, "account_disabled");
    assert_eq!(error_code(log_in(&app, "ana@example.com", "wrong password").await, 401).await, "invalid_credentials");
    // Nobody else is touched.
    assert!(stays.is_connected());
    assert_eq!(public_stream(&app, &other.account, "show").await["live"], true);
    assert_eq!(other.client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);

    // Enabled again: everything works as before.
    let enabled = patch(&app, &owner.client, &ana.account, json!({ "disabled": false })).await;
    assert_eq!(enabled.json::<Value>().await.unwrap()["disabled"], false);
    assert_eq!(log_in(&app, "ana@example.com", PASSWORD).await.status(), 200);
    assert_eq!(Client::new().get(app.url("/api/v1/me")).bearer_auth(&key).send().await.unwrap().status(), 200);
    let _again = rtc::publish(&app, PublishOptions::new(&ana.token, "show")).await.expect("publishes again");
    wait_stream(&app, &ana.account, "show", "live again", |v| v["live"] == true).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_stay_and_deleting_takes_everything_of_an_account() {
    let app = spawn_app().await;
    let owner = streamer(&app, "owner@example.com", json!({ "label": "o", "streams": ["*"] })).await;
    let ana = streamer(&app, "ana@example.com", json!({ "label": "a", "streams": ["show"] })).await;
    let bob = streamer(&app, "bob@example.com", json!({ "label": "b", "streams": ["show"] })).await;

    // The last operator keeps the role; an operator is neither disabled nor deleted.
    let alone = patch(&app, &owner.client, &owner.account, json!({ "operator": false })).await;
    assert_eq!(error_code(alone, 409).await, "conflict");
    let url = app.url(&format!("/api/v1/admin/accounts/{}", owner.account));
    assert_eq!(
        error_code(patch(&app, &owner.client, &owner.account, json!({ "disabled": true })).await, 409).await,
        "conflict"
    );
    assert_eq!(error_code(owner.client.delete(&url).send().await.unwrap(), 409).await, "conflict");
    // Ana becomes an operator (and sees /admin); then the first one may step down.
    let promoted = patch(&app, &owner.client, &ana.account, json!({ "operator": true })).await;
    assert_eq!(promoted.json::<Value>().await.unwrap()["operator"], true);
    assert_eq!(ana.client.get(app.url("/api/v1/admin/accounts")).send().await.unwrap().status(), 200);
    assert_eq!(patch(&app, &owner.client, &owner.account, json!({ "operator": false })).await.status(), 200);
    assert_eq!(owner.client.get(app.url("/api/v1/admin/accounts")).send().await.unwrap().status(), 404);
    assert_eq!(
        error_code(patch(&app, &ana.client, &ana.account, json!({ "operator": false })).await, 409).await,
        "conflict"
    );

    // Bad input: 4xx, nothing changed.
    for body in [json!({}), json!({ "disabled": "yes" }), json!({ "colour": "red" }), json!([1])] {
        let status = patch(&app, &ana.client, &bob.account, body.clone()).await.status().as_u16();
        assert!(status == 400 || status == 422, "{body}: {status}");
    }
    assert_eq!(
        error_code(patch(&app, &ana.client, "nobody", json!({ "disabled": true })).await, 404).await,
        "not_found"
    );
    let list = accounts(&app, &ana.client).await;
    assert_eq!(find(&list, "bob@example.com")["disabled"], false);

    // Deleting Bob takes his tokens with him; his email is free again.
    let _publisher = rtc::publish(&app, PublishOptions::new(&bob.token, "show")).await.unwrap();
    wait_stream(&app, &bob.account, "show", "live", |v| v["live"] == true).await;
    let bob_url = app.url(&format!("/api/v1/admin/accounts/{}", bob.account));
    assert_eq!(ana.client.delete(&bob_url).send().await.unwrap().status(), 204);
    assert_eq!(error_code(ana.client.delete(&bob_url).send().await.unwrap(), 404).await, "not_found");
    assert_eq!(bob.client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    let refused = rtc::publish(&app, PublishOptions::new(&bob.token, "show")).await.err().expect("the token is gone");
    assert_eq!(refused.status, 401);
    let list = accounts(&app, &ana.client).await;
    assert_eq!(list.len(), 2);
    app.sign_up(&app.client(), "bob@example.com").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_account_limits_refuse_the_next_publisher_and_viewer_with_503() {
    let app = crate::helpers::spawn_app_with(|c| c.max_publishers_per_account = 5).await;
    let owner = streamer(&app, "owner@example.com", json!({ "label": "o", "streams": ["*"] })).await;
    let ana = streamer(&app, "ana@example.com", json!({ "label": "a", "streams": ["*"] })).await;
    let other = streamer(&app, "other@example.com", json!({ "label": "x", "streams": ["*"] })).await;

    // Defaults come from the flags; the operator sets Ana's own.
    let before = find(&accounts(&app, &owner.client).await, "ana@example.com").clone();
    assert_eq!(before["limits"], json!({ "maxPublishers": 5, "maxViewers": null, "maxEgressMbps": null }));
    assert_eq!(before["ownLimits"], json!({ "maxPublishers": null, "maxViewers": null, "maxEgressMbps": null }));
    for (body, field) in [
        (json!({ "maxPublishers": 0 }), "maxPublishers"),
        (json!({ "maxViewers": 0 }), "maxViewers"),
        (json!({ "maxEgressMbps": -1 }), "maxEgressMbps"),
        (json!({ "maxEgressMbps": 0.01 }), "maxEgressMbps"),
        (json!({ "maxPublishers": 2, "maxViewers": 10_000_000 }), "maxViewers"),
    ] {
        let refused = patch(&app, &owner.client, &ana.account, body.clone()).await;
        assert_eq!(refused.status(), 422, "{body}");
        let error: Value = refused.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().starts_with(field), "{body}: {error}");
    }
    let bad_type = patch(&app, &owner.client, &ana.account, json!({ "maxViewers": "many" })).await.status().as_u16();
    assert!(bad_type == 400 || bad_type == 422);
    let unchanged = find(&accounts(&app, &owner.client).await, "ana@example.com").clone();
    assert_eq!(unchanged["ownLimits"], before["ownLimits"], "a refused patch changes nothing");
    let set = patch(&app, &owner.client, &ana.account, json!({ "maxPublishers": 1, "maxViewers": 2 })).await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["limits"], json!({ "maxPublishers": 1, "maxViewers": 2, "maxEgressMbps": null }));

    // Publishers: the next one is refused with 503, Retry-After and the reason.
    let _a = rtc::publish(&app, PublishOptions::new(&ana.token, "a")).await.unwrap();
    let refused = rtc::publish(&app, PublishOptions::new(&ana.token, "b")).await.err().expect("over the limit");
    assert_eq!(refused.status, 503);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.body.contains("this account publishes 1 feeds, the most it may"), "{}", refused.body);
    let _other = rtc::publish(&app, PublishOptions::new(&other.token, "a")).await.expect("other accounts publish");
    wait_stream(&app, &ana.account, "a", "live", |v| v["live"] == true).await;
    wait_stream(&app, &other.account, "a", "live", |v| v["live"] == true).await;

    // Viewers: two, then 503; another account's stream is not held back.
    let path = format!("/whep/{}/a", ana.account);
    let _v1 = rtc::view(&app, &path, 1).await.unwrap();
    let _v2 = rtc::view(&app, &path, 1).await.unwrap();
    let refused = rtc::view(&app, &path, 1).await.err().expect("over the viewer limit");
    assert_eq!(refused.status, 503);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.body.contains("this account's streams have 2 viewers, the most it may (2)"), "{}", refused.body);
    let _elsewhere = rtc::view(&app, &format!("/whep/{}/a", other.account), 1).await.expect("other accounts' viewers");

    // Its Live page says where it stands.
    let live = ana.client.get(app.url("/live")).send().await.unwrap().text().await.unwrap();
    assert!(live.contains("1 of 1 feeds") && live.contains("2 of 2 viewers"), "{live}");

    // Egress: once the stream's rate is known, a cap below what two viewers take refuses a third.
    let deadline = Instant::now() + Duration::from_secs(10);
    let egress = loop {
        let streams: Value = ana.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
        let egress = streams[0]["egressBps"].as_u64().unwrap();
        if egress > 100_000 || Instant::now() > deadline {
            break egress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(egress > 100_000, "two viewers of a live stream take something: {egress}");
    let cap = patch(&app, &owner.client, &ana.account, json!({ "maxViewers": null, "maxEgressMbps": 0.1 })).await;
    assert_eq!(cap.status(), 200);
    let refused = rtc::view(&app, &path, 1).await.err().expect("over the egress limit");
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("Mbit/s") && refused.body.contains("the most it may (0.1"), "{}", refused.body);
    // Back to the defaults: the viewer gets in.
    let cleared = patch(&app, &owner.client, &ana.account, json!({ "maxEgressMbps": null })).await;
    assert_eq!(cleared.json::<Value>().await.unwrap()["ownLimits"]["maxEgressMbps"], Value::Null);
    let _v3 = rtc::view(&app, &path, 1).await.expect("no limit any more");
    app.stop().await;
}
