//! Webhooks (README "Webhooks"): endpoints, signed deliveries of stream events in order, retries
//! after a failure, the delivery log, resends and test events, and a queue that survives a
//! restart. A small HTTP receiver on loopback plays the account's own system.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU16, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use hmac::{Hmac, Mac};
use reqwest::Client;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{
    helpers::*,
    rtc::{self, PublishOptions},
    whip_whep::{streamer, wait_stream},
};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: String,
    at: Instant,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// An HTTP server on loopback that keeps every request and answers with `status` (changeable).
#[derive(Clone)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Log,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let got: Log = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let state = (got.clone(), status.clone());
        let app = Router::new().route(
            "/hook",
            post(|State((got, status)): State<(Log, Arc<AtomicU16>)>, headers: HeaderMap, body: Bytes| async move {
                let body = String::from_utf8(body.to_vec()).unwrap();
                got.lock().unwrap().push(Received { headers, body, at: Instant::now() });
                StatusCode::from_u16(status.load(Ordering::Relaxed)).unwrap()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await });
        Self { addr, got, status }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<String> {
        self.all().iter().map(Received::kind).collect()
    }

    /// Waits (bounded) until `count` requests have arrived.
    pub(crate) async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= count {
                return all;
            }
            assert!(Instant::now() < deadline, "{} of {count} deliveries arrived: {:?}", all.len(), self.kinds());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks `Ferrocast-Signature: t=…,v1=…` as a receiver would: HMAC-SHA256 over `t.body`.
pub(crate) fn assert_signed(received: &Received, secret: &str) {
    let header = received.headers["ferrocast-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature of {}", received.body);
    let now = ferrocast::db::now_unix();
    assert!((now - t.parse::<i64>().unwrap()).abs() < 60, "the signed time is now");
    assert_eq!(received.headers["content-type"], "application/json");
    assert_eq!(received.headers["ferrocast-event"].to_str().unwrap(), received.kind());
}

pub(crate) async fn new_endpoint(app: &TestApp, client: &Client, body: Value) -> (String, String) {
    let created = app.post_json(client, "/api/v1/webhooks", body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    (created["endpoint"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

async fn deliveries(app: &TestApp, client: &Client, id: &str) -> Vec<Value> {
    let log = client.get(app.url(&format!("/api/v1/webhooks/{id}/deliveries"))).send().await.unwrap();
    assert_eq!(log.status(), 200);
    log.json().await.unwrap()
}

pub(crate) fn private_networks(config: &mut ferrocast::config::Config) {
    config.webhooks_private_networks = true;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_have_shapes_rules_and_owners() {
    let app = spawn_app().await;
    let s = streamer(&app, "hooks@example.com", json!({ "label": "p", "streams": ["main"] })).await;
    let created = app
        .post_json(
            &s.client,
            "/api/v1/webhooks",
            json!({ "url": "https://hooks.example.com/in", "events": ["stream.ended", "stream.started"] }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("fcw_") && secret.len() == 68, "{secret}");
    let endpoint = &created["endpoint"];
    assert_eq!(endpoint["events"], json!(["stream.started", "stream.ended"]));
    assert_eq!(
        (endpoint["enabled"].clone(), endpoint["url"].clone()),
        (json!(true), json!("https://hooks.example.com/in"))
    );
    assert!(endpoint["hint"].as_str().unwrap().starts_with("fcw_…"));
    let id = endpoint["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/webhooks/{id}"));
    let list = s.client.get(app.url("/api/v1/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains(id) && !list.contains(secret), "{list}");
    let patched: Value =
        s.client.patch(&url).json(&json!({ "enabled": false })).send().await.unwrap().json().await.unwrap();
    assert_eq!((patched["enabled"].clone(), patched["events"].clone()), (json!(false), endpoint["events"].clone()));
    let rotated: Value = s.client.post(format!("{url}/rotate")).send().await.unwrap().json().await.unwrap();
    assert_ne!(rotated["secret"], created["secret"]);

    // Bad input: a 4xx naming the field, nothing saved or changed.
    for (body, status, field) in [
        (json!({ "url": "ftp://hooks.example.com/", "events": ["stream.started"] }), 422, Some("url")),
        (json!({ "url": "https://user:pw@hooks.example.com/", "events": ["stream.started"] }), 422, Some("url")),
        (json!({ "url": "http://127.0.0.1:9/hook", "events": ["stream.started"] }), 422, Some("url")),
        (json!({ "url": "http://169.254.169.254/", "events": ["stream.started"] }), 422, Some("url")),
        (json!({ "url": "not a url", "events": ["stream.started"] }), 422, Some("url")),
        (json!({ "url": "https://hooks.example.com/", "events": [] }), 422, Some("events")),
        (json!({ "url": "https://hooks.example.com/", "events": ["stream.begun"] }), 422, Some("events")),
        (json!({ "url": "https://hooks.example.com/", "events": ["webhook.test"] }), 422, Some("events")),
        (json!({ "url": "https://hooks.example.com/", "events": "stream.started" }), 422, None),
        (json!({ "url": "https://hooks.example.com/", "events": ["stream.started"], "secret": "x" }), 422, None),
        (json!({ "events": ["stream.started"] }), 422, None),
    ] {
        let response = app.post_json(&s.client, "/api/v1/webhooks", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{body}");
        }
    }
    let bad_patch = s.client.patch(&url).json(&json!({ "url": "http://10.0.0.1/" })).send().await.unwrap();
    assert_eq!(bad_patch.status(), 422);
    assert_eq!(app.count("webhook_endpoints").await, 1);
    let unchanged: Value = s.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(unchanged["url"], "https://hooks.example.com/in");

    // Another account, or nobody, reaches none of it.
    let other = streamer(&app, "hooks-other@example.com", json!({ "label": "p", "streams": ["main"] })).await;
    for path in ["", "/deliveries"] {
        assert_eq!(other.client.get(format!("{url}{path}")).send().await.unwrap().status(), 404);
    }
    assert_eq!(other.client.post(format!("{url}/test")).send().await.unwrap().status(), 404);
    assert_eq!(other.client.delete(&url).send().await.unwrap().status(), 404);
    assert_eq!(app.client().get(app.url("/api/v1/webhooks")).send().await.unwrap().status(), 401);
    assert_eq!(s.client.post(format!("{url}/deliveries/x/resend")).send().await.unwrap().status(), 404);
    assert_eq!(s.client.post(format!("{url}/deliveries/999/resend")).send().await.unwrap().status(), 404);

    // At most 16 per account.
    for n in 1..16 {
        let made = app
            .post_json(
                &s.client,
                "/api/v1/webhooks",
                json!({ "url": format!("https://h{n}.example.com/"), "events": ["stream.started"] }),
            )
            .await;
        assert_eq!(made.status(), 201);
    }
    let seventeenth = app
        .post_json(
            &s.client,
            "/api/v1/webhooks",
            json!({ "url": "https://h17.example.com/", "events": ["stream.started"] }),
        )
        .await;
    assert_eq!(seventeenth.status(), 409);
    assert_eq!(s.client.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_arrive_signed_and_in_order_and_refused_publishes_say_why() {
    let app = spawn_app_with(private_networks).await;
    let receiver = Receiver::start().await;
    let s = streamer(&app, "events@example.com", json!({ "label": "p", "streams": ["show"] })).await;
    let all_events = [
        "stream.started",
        "stream.ended",
        "source.started",
        "source.ended",
        "viewers.first",
        "viewers.none",
        "recording.ready",
        "publish.refused",
    ];
    let (id, secret) = new_endpoint(&app, &s.client, json!({ "url": receiver.url(), "events": all_events })).await;
    // An endpoint that wants only stream.ended hears nothing else.
    let narrow = Receiver::start().await;
    new_endpoint(&app, &s.client, json!({ "url": narrow.url(), "events": ["stream.ended"] })).await;
    let account = s.account.as_str();

    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.expect("publish");
    wait_stream(&app, account, "show", "live", |state| state["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{account}/show"), 1).await.expect("viewer");
    viewer.wait_for("connected", rtc::Viewer::is_connected).await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    let left = Client::new().delete(app.url(&viewer.session.location)).send().await.unwrap();
    assert_eq!(left.status(), 200);
    receiver.wait_for(4, Duration::from_secs(10)).await;
    let ended = Client::new().delete(app.url(&publisher.session.location)).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    // A publish the token does not allow: its owner hears why.
    let refused = rtc::publish(&app, PublishOptions::new(&s.token, "elsewhere")).await;
    assert!(refused.is_err());
    let got = receiver.wait_for(7, Duration::from_secs(10)).await;
    assert_eq!(
        receiver.kinds(),
        [
            "stream.started",
            "source.started",
            "viewers.first",
            "viewers.none",
            "source.ended",
            "stream.ended",
            "publish.refused"
        ]
    );
    for received in &got {
        assert_signed(received, &secret);
        let body = received.json();
        assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
        assert_eq!(body["data"]["accountId"], account);
    }
    assert_eq!(got[0].json()["data"]["streamName"], "show");
    assert_eq!(got[1].json()["data"]["sourceId"], Value::Null);
    let refusal = got[6].json();
    assert_eq!(
        (refusal["data"]["streamName"].clone(), refusal["data"]["status"].clone()),
        (json!("elsewhere"), json!(403))
    );
    assert!(refusal["data"]["reason"].as_str().unwrap().contains("does not allow this stream name"), "{refusal}");
    assert_eq!(narrow.wait_for(1, Duration::from_secs(5)).await[0].kind(), "stream.ended");
    assert_eq!(narrow.all().len(), 1);

    // The log shows each delivery, newest first (written once the answer is in).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = deliveries(&app, &s.client, &id).await;
    assert_eq!(log.len(), 7);
    assert_eq!(log[0]["type"], "publish.refused");
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["lastStatus"] == 200), "{log:?}");
    assert!(log.iter().all(|d| d["latencyMs"].as_i64().is_some()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_resent_and_survive_a_restart() {
    let app = spawn_app_with(private_networks).await;
    let receiver = Receiver::start().await;
    let s = streamer(&app, "retries@example.com", json!({ "label": "p", "streams": ["show"] })).await;
    let (id, secret) =
        new_endpoint(&app, &s.client, json!({ "url": receiver.url(), "events": ["stream.started"] })).await;
    let hook = |path: &str| app.url(&format!("/api/v1/webhooks/{id}{path}"));

    // A 500, then the retry 5 s later succeeds.
    receiver.status.store(500, Ordering::Relaxed);
    let test = s.client.post(hook("/test")).send().await.unwrap();
    assert_eq!(test.status(), 202);
    let queued: Value = test.json().await.unwrap();
    assert_eq!((queued["type"].clone(), queued["status"].clone()), (json!("webhook.test"), json!("pending")));
    let first = receiver.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = deliveries(&app, &s.client, &id).await;
    assert_eq!((log[0]["status"].clone(), log[0]["lastStatus"].clone()), (json!("pending"), json!(500)));
    assert!(log[0]["lastError"].as_str().unwrap().starts_with("HTTP 500"), "{log:?}");
    assert!(log[0]["nextAttemptAt"].is_string());
    receiver.status.store(200, Ordering::Relaxed);
    let both = receiver.wait_for(2, Duration::from_secs(10)).await;
    let waited = both[1].at - first[0].at;
    assert!(waited >= Duration::from_secs(4), "retried after {waited:?}");
    assert_eq!(both[0].body, both[1].body, "a retry sends the same event");
    assert_signed(&both[1], &secret);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = deliveries(&app, &s.client, &id).await;
    assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone()), (json!("delivered"), json!(2)));

    // Resend: the same event again, at the end of the queue.
    let resent = s.client.post(hook(&format!("/deliveries/{}/resend", log[0]["id"]))).send().await.unwrap();
    assert_eq!(resent.status(), 202);
    let three = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(three[2].json()["id"], three[0].json()["id"]);

    // Down while the stream starts; the queue survives a restart and delivers after it.
    receiver.status.store(503, Ordering::Relaxed);
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.expect("publish");
    let four = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(four[3].kind(), "stream.started");
    drop(publisher);
    let (data_dir, _guard) = app.stop().await;
    receiver.status.store(200, Ordering::Relaxed);
    // The stopped server sends nothing more (its retry would be due by now).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.all().len(), 4, "nothing is sent while the server is down");
    let app = spawn_on(data_dir, private_networks).await;
    let five = receiver.wait_for(5, Duration::from_secs(15)).await;
    assert_eq!(five[4].body, four[3].body, "the same delivery, after the restart");
    assert_signed(&five[4], &secret);
    app.stop().await;
}
