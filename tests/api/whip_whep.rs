//! WHIP ingest and WHEP playback with real WebRTC clients (webrtc-rs) over loopback.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

use crate::{
    helpers::{self, spawn_app, spawn_app_with, TestApp},
    rtc::{self, assert_continuous, Candidates, Media, PublishOptions},
};

/// A signed-up account with a publish token.
pub struct Streamer {
    pub client: Client,
    pub account: String,
    pub token: String,
    pub token_id: String,
}

pub async fn streamer(app: &TestApp, email: &str, token: Value) -> Streamer {
    let client = app.client();
    app.sign_up(&client, email).await;
    let me: Value = client.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let created = app.post_json(&client, "/api/v1/tokens", token).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    Streamer {
        client,
        account: me["accountId"].as_str().unwrap().to_owned(),
        token: created["secret"].as_str().unwrap().to_owned(),
        token_id: created["token"]["id"].as_str().unwrap().to_owned(),
    }
}

pub async fn public_stream(app: &TestApp, account: &str, name: &str) -> Value {
    let response = app.client().get(app.url(&format!("/api/v1/streams/{account}/{name}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls the public API until `check` holds (bounded).
pub async fn wait_stream(
    app: &TestApp,
    account: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + rtc::MEDIA_TIMEOUT;
    loop {
        let state = public_stream(app, account, name).await;
        if check(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_live(state: &Value) -> bool {
    state["live"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_stream_reaches_a_viewer_in_order_with_keyframe_first() {
    let app = spawn_app().await;
    let s = streamer(&app, "pub@example.com", json!({ "label": "cam", "streams": ["main"] })).await;

    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.expect("publish accepted");
    let session = &publisher.session;
    assert!(
        session.location.starts_with("/whip/main/") && session.location.len() == "/whip/main/".len() + 32,
        "Location is /whip/{{stream}}/{{32 hex}}: {}",
        session.location
    );
    assert!(session.etag.starts_with('"') && session.etag.ends_with('"'), "quoted ETag: {}", session.etag);
    assert_eq!(session.headers["content-type"], "application/sdp");
    assert_eq!(session.headers["access-control-allow-origin"], "*");
    let exposed = session.headers["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["location", "etag", "link"] {
        assert!(exposed.contains(header), "CORS exposes {header}: {exposed}");
    }
    assert!(session.answer.contains("a=candidate:") && session.answer.contains("127.0.0.1"), "{}", session.answer);
    assert!(session.answer.contains("a=msid:"), "WHIP answers carry a=msid too: {}", session.answer);

    let live = wait_stream(&app, &s.account, "main", "live", is_live).await;
    assert_eq!(live["sources"][0]["sourceId"], Value::Null);

    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.expect("view accepted");
    assert!(viewer.session.location.starts_with(&format!("/whep/{}/main/", s.account)));
    assert!(viewer.session.answer.contains("a=msid:ferrocast-0 "), "answers carry a=msid: {}", viewer.session.answer);
    let links: Vec<&str> = viewer.session.headers.get_all("link").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(links.iter().any(|l| l.contains("urn:ietf:params:whep:ext:core:server-sent-events")), "{links:?}");
    assert!(links.iter().any(|l| l.contains("urn:ietf:params:whep:ext:core:layer")), "{links:?}");

    viewer
        .wait_for("60 video and 30 audio packets", |v| {
            v.video(0).is_some_and(|t| t.packets.len() >= 60) && v.audio(0).is_some_and(|t| t.packets.len() >= 30)
        })
        .await;
    let video = viewer.video(0).unwrap();
    assert_eq!(video.mime.to_ascii_lowercase(), "video/vp8");
    assert!(video.first_sent().unwrap().keyframe, "the first packet a viewer gets starts a keyframe");
    let frames = video.frames();
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "every frame, in order: {frames:?}");
    assert_continuous(&video, "video");
    let audio = viewer.audio(0).unwrap();
    assert_eq!(audio.mime.to_ascii_lowercase(), "audio/opus");
    let voice = audio.frames();
    assert!(voice.windows(2).all(|w| w[1] > w[0]), "audio in order: {voice:?}");
    assert!(
        publisher.keyframe_requests.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "a joining viewer asks for a keyframe"
    );

    let state = public_stream(&app, &s.account, "main").await;
    assert_eq!(state["viewers"], 1);
    assert_eq!(state["sources"][0]["tracks"].as_array().unwrap().len(), 2);
    let token: Value =
        s.client.get(app.url(&format!("/api/v1/tokens/{}", s.token_id))).send().await.unwrap().json().await.unwrap();
    assert!(token["lastUsedAt"].is_string(), "publishing marks the token used: {token}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_without_candidates_completed_by_trickle_patches_connects() {
    let app = spawn_app().await;
    let s = streamer(&app, "trickle@example.com", json!({ "label": "t", "streams": ["*"] })).await;
    let options = PublishOptions { candidates: Candidates::Trickled, ..PublishOptions::new(&s.token, "live") };
    let _publisher = rtc::publish(&app, options).await.expect("publish accepted");
    wait_stream(&app, &s.account, "live", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/live", s.account), 1).await.expect("view");
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_feed_for_its_viewers() {
    let app = spawn_app().await;
    let s = streamer(&app, "del@example.com", json!({ "label": "d", "streams": ["show"] })).await;
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.unwrap();
    wait_stream(&app, &s.account, "show", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/show", s.account), 1).await.unwrap();
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;

    let client = app.client();
    let deleted = client.delete(app.url(&publisher.session.location)).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.headers()["access-control-allow-origin"], "*");
    wait_stream(&app, &s.account, "show", "not live", |s| !is_live(s)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = viewer.video(0).unwrap().packets.len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(viewer.video(0).unwrap().packets.len(), before, "no media after DELETE");

    let again = client.delete(app.url(&publisher.session.location)).send().await.unwrap();
    assert_eq!(again.status(), 404, "the session is gone");
    let offer = "v=0\r\n";
    let not_live = client
        .post(app.url(&format!("/whep/{}/show", s.account)))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert!(not_live.status() == 404 || not_live.status() == 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publish_replaces_the_first_seamlessly() {
    let app = spawn_app().await;
    let s = streamer(&app, "rep@example.com", json!({ "label": "r", "streams": ["main"] })).await;
    let first = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.unwrap();
    wait_stream(&app, &s.account, "main", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    viewer.wait_for("the first feed", |v| v.video(0).is_some_and(|t| t.frames().len() >= 10)).await;

    let posted = Instant::now();
    let second = rtc::publish(&app, PublishOptions { first_frame: 100_000, ..PublishOptions::new(&s.token, "main") })
        .await
        .unwrap();
    viewer
        .wait_for("the replacement's frames", |v| v.video(0).is_some_and(|t| t.frames().iter().any(|f| *f >= 100_000)))
        .await;
    let video = viewer.video(0).unwrap();
    let switch = video.packets.iter().position(|p| p.frame.is_some_and(|f| f >= 100_000)).unwrap();
    assert!(video.packets[switch].keyframe, "the replacement starts with a keyframe");
    let delay = video.packets[switch].at.duration_since(posted);
    assert!(delay < Duration::from_secs(2), "first keyframe of the replacement after {delay:?}");
    viewer
        .wait_for("more of the replacement", |v| {
            v.video(0).is_some_and(|t| t.frames().iter().filter(|f| **f >= 100_000).count() >= 10)
        })
        .await;
    let video = viewer.video(0).unwrap();
    assert_continuous(&video, "video across the replacement");
    let frames = video.frames();
    let after: Vec<u32> = frames.iter().copied().skip_while(|f| *f < 100_000).collect();
    assert!(after.iter().all(|f| *f >= 100_000), "no frame of the old feed after the switch: {frames:?}");
    let timestamps: Vec<u32> = video.packets.iter().map(|p| p.timestamp).collect();
    assert!(timestamps.windows(2).all(|w| w[1].wrapping_sub(w[0]) < 90_000), "timestamps move forward: {timestamps:?}");
    assert!(viewer.is_connected(), "the viewer kept its connection");

    let old = app.client().delete(app.url(&first.session.location)).send().await.unwrap();
    assert_eq!(old.status(), 404, "the replaced session was closed");
    let state = public_stream(&app, &s.account, "main").await;
    assert_eq!(state["sources"].as_array().unwrap().len(), 1, "{state}");
    drop(second);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multisource_viewers_get_sources_in_pairs_and_can_switch_them() {
    let app = spawn_app().await;
    let s =
        streamer(&app, "multi@example.com", json!({ "label": "m", "streams": ["room"], "multisource": true })).await;
    let _main = rtc::publish(&app, PublishOptions::new(&s.token, "room")).await.unwrap();
    let _cam2 = rtc::publish(
        &app,
        PublishOptions { source: Some("cam2"), first_frame: 500_000, ..PublishOptions::new(&s.token, "room") },
    )
    .await
    .unwrap();
    wait_stream(&app, &s.account, "room", "two live sources", |st| {
        st["sources"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|x| x["active"] == true))
    })
    .await;

    let viewer = rtc::view(&app, &format!("/whep/{}/room", s.account), 2).await.unwrap();
    viewer
        .wait_for("both pairs", |v| {
            v.video(0).is_some_and(|t| t.frames().len() >= 5) && v.video(1).is_some_and(|t| t.frames().len() >= 5)
        })
        .await;
    assert!(viewer.video(0).unwrap().frames().iter().all(|f| *f < 500_000), "pair 0 shows the main source");
    assert!(viewer.video(1).unwrap().frames().iter().all(|f| *f >= 500_000), "pair 1 shows cam2");

    // The layer extension moves pair 0 to cam2.
    let layer = format!("{}/layer", viewer.session.location);
    let client = app.client();
    let moved = client.post(app.url(&layer)).json(&json!({ "pair": 0, "sourceId": "cam2" })).send().await.unwrap();
    assert_eq!(moved.status(), 204, "{}", moved.text().await.unwrap());
    viewer
        .wait_for("pair 0 on cam2", |v| v.video(0).is_some_and(|t| t.frames().last().is_some_and(|f| *f >= 500_000)))
        .await;
    assert_continuous(&viewer.video(0).unwrap(), "pair 0 across the switch");
    let unknown = client.post(app.url(&layer)).json(&json!({ "pair": 0, "sourceId": "nope" })).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let no_pair = client.post(app.url(&layer)).json(&json!({ "pair": 7, "sourceId": "cam2" })).send().await.unwrap();
    assert_eq!(no_pair.status(), 400);

    // The events extension announces both sources and the pairs.
    let mut events = client.get(app.url(&format!("{}/events", viewer.session.location))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !text.contains("event: sources") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(text.contains("event: active"), "{text}");
    assert!(text.contains("event: viewercount"), "{text}");
    assert!(text.contains("\"sourceId\":\"cam2\""), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_at_once_all_get_the_stream() {
    let app = spawn_app().await;
    let s = streamer(&app, "fifty@example.com", json!({ "label": "f", "streams": ["big"] })).await;
    let _publisher = rtc::publish(&app, PublishOptions::new(&s.token, "big")).await.unwrap();
    wait_stream(&app, &s.account, "big", "live", is_live).await;
    let path = format!("/whep/{}/big", s.account);
    // Fifty people: a few share an address, as behind a NAT (each address may have a limited
    // number of viewers connecting at once).
    let people: Vec<TestApp> = (0..50u8)
        .map(|i| {
            let address = std::net::IpAddr::from([127, 0, 1, i / 8 + 1]);
            app.via(app.base.clone(), move || helpers::browser_like(reqwest::Client::builder().local_address(address)))
        })
        .collect();
    let viewers = futures_util::future::join_all(people.iter().map(|person| rtc::view(person, &path, 1))).await;
    let viewers: Vec<_> = viewers.into_iter().map(|v| v.expect("every viewer is accepted")).collect();
    // Every viewer gets a keyframe and the frames after it.
    for (i, viewer) in viewers.iter().enumerate() {
        viewer
            .wait_for(&format!("viewer {i}"), |v| {
                v.video(0).is_some_and(|t| {
                    t.packets
                        .iter()
                        .position(|p| p.keyframe)
                        .is_some_and(|k| t.packets[k..].iter().filter(|p| p.frame.is_some()).count() >= 5)
                })
            })
            .await;
    }
    // And the server starts each at a keyframe. A few may miss their very first datagrams: the
    // client stack drops SRTP that arrives before its own DTLS handshake has finished, and a loss
    // before the first packet received cannot be NACKed. A server that started viewers mid-GOP
    // would fail all fifty.
    let started_at_keyframe =
        viewers.iter().filter(|v| v.video(0).and_then(|t| t.first_sent().map(|p| p.keyframe)).unwrap_or(false)).count();
    assert!(started_at_keyframe >= 45, "only {started_at_keyframe} of 50 viewers got a keyframe first");
    let state = public_stream(&app, &s.account, "big").await;
    assert_eq!(state["viewers"], 50);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_on_a_stream_that_is_not_live_is_404_with_retry_after() {
    let app = spawn_app().await;
    let s = streamer(&app, "idle@example.com", json!({ "label": "i", "streams": ["x"] })).await;
    let refused = rtc::view(&app, &format!("/whep/{}/x", s.account), 1).await.err().expect("refused");
    assert_eq!(refused.status, 404);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.body.contains("not live"), "{}", refused.body);
    assert_eq!(refused.headers["access-control-allow-origin"], "*");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_rule_who_may_publish() {
    let app = spawn_app().await;
    let s = streamer(&app, "rules@example.com", json!({ "label": "r", "streams": ["allowed"] })).await;
    let refuse = |token: String, stream: &'static str, source: Option<&'static str>| {
        let app = &app;
        async move {
            let options = PublishOptions { source, ..PublishOptions::new(&token, stream) };
            rtc::publish(app, options).await.err().expect("refused")
        }
    };
    let unknown = refuse("fcp_0000".into(), "allowed", None).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.headers["www-authenticate"], "Bearer");
    let other_stream = refuse(s.token.clone(), "other", None).await;
    assert_eq!(other_stream.status, 403);
    assert!(other_stream.body.contains("stream name"), "{}", other_stream.body);
    let source = refuse(s.token.clone(), "allowed", Some("cam2")).await;
    assert_eq!(source.status, 403);
    assert!(source.body.contains("multisource"), "{}", source.body);

    // Disabling stops new publishes but not a live feed; deleting ends it.
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "allowed")).await.unwrap();
    wait_stream(&app, &s.account, "allowed", "live", is_live).await;
    let patched = s
        .client
        .patch(app.url(&format!("/api/v1/tokens/{}", s.token_id)))
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let disabled = refuse(s.token.clone(), "allowed", None).await;
    assert_eq!(disabled.status, 403);
    assert!(disabled.body.contains("disabled"), "{}", disabled.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_live(&public_stream(&app, &s.account, "allowed").await), "a disabled token's feed stays live");
    let mine: Value = s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["sources"][0]["tokenId"], s.token_id.as_str());

    let deleted = s.client.delete(app.url(&format!("/api/v1/tokens/{}", s.token_id))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    wait_stream(&app, &s.account, "allowed", "the feed ended", |st| !is_live(st)).await;
    drop(publisher);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.max_sources_per_stream = 1;
        c.max_viewers_per_stream = 1;
    })
    .await;
    let s = streamer(&app, "limits@example.com", json!({ "label": "l", "streams": ["s"], "multisource": true })).await;
    let _main = rtc::publish(&app, PublishOptions::new(&s.token, "s")).await.unwrap();
    let second = rtc::publish(&app, PublishOptions { source: Some("b"), ..PublishOptions::new(&s.token, "s") })
        .await
        .err()
        .expect("a second source is over the limit");
    assert_eq!(second.status, 503);
    assert!(second.headers.contains_key("retry-after"));
    wait_stream(&app, &s.account, "s", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/s", s.account), 1).await.unwrap();
    // The cap counts viewers who connected.
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| !t.packets.is_empty())).await;
    let over = rtc::view(&app, &format!("/whep/{}/s", s.account), 1).await.err().expect("over the viewer limit");
    assert_eq!(over.status, 503);
    assert!(over.headers.contains_key("retry-after"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_reconnects_after_vanishing_takes_its_viewers_back() {
    let app = spawn_app().await;
    let s = streamer(&app, "crash@example.com", json!({ "label": "c", "streams": ["main"] })).await;
    let first = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.unwrap();
    wait_stream(&app, &s.account, "main", "live", is_live).await;
    assert!(first.is_connected());
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    viewer.wait_for("the first feed", |v| v.video(0).is_some_and(|t| t.frames().len() >= 5)).await;

    first.vanish().await; // no DELETE, like an encoder that crashed
    let _again = rtc::publish(&app, PublishOptions { first_frame: 7_000, ..PublishOptions::new(&s.token, "main") })
        .await
        .expect("the reconnect is accepted");
    viewer
        .wait_for("the reconnected feed", |v| {
            v.video(0).is_some_and(|t| t.frames().iter().filter(|f| **f >= 7_000).count() >= 5)
        })
        .await;
    assert_continuous(&viewer.video(0).unwrap(), "video across the reconnect");
    assert!(viewer.is_connected());
    app.stop().await;
}

/// POSTs a valid-looking audio-only WHIP offer for `stream` and expects 201: signalling only,
/// no peer behind it, so nothing is ever sent to the candidates of the answer.
pub async fn signal_only_publish(app: &TestApp, token: &str, stream: &str) -> reqwest::Response {
    let offer = offer_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n");
    let response = app
        .client()
        .post(app.url(&format!("/whip/{stream}")))
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response
}

/// A valid-looking WHIP offer with only the given media section.
pub fn offer_with(media: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 {fp}\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n{media}",
        fp = ["AB"; 32].join(":")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_disturbs_no_live_stream() {
    let app = spawn_app().await;
    let s = streamer(&app, "junk@example.com", json!({ "label": "j", "streams": ["main", "other"] })).await;
    let disabled =
        streamer(&app, "off@example.com", json!({ "label": "off", "streams": ["main"], "enabled": false })).await;
    let expired = {
        let created = app
            .post_json(
                &s.client,
                "/api/v1/tokens",
                json!({ "label": "old", "streams": ["main"], "expiresAt": "2099-01-01T00:00:00Z" }),
            )
            .await;
        let created: Value = created.json().await.unwrap();
        let pool = ferrocast::db::open(&app.data_dir).await.unwrap();
        sqlx::query("UPDATE publish_tokens SET expires_at = 1 WHERE id = ?")
            .bind(created["token"]["id"].as_str().unwrap())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        created["secret"].as_str().unwrap().to_owned()
    };
    let origins = {
        let created = app
            .post_json(
                &s.client,
                "/api/v1/tokens",
                json!({ "label": "o", "streams": ["main"], "allowedOrigins": ["https://studio.example"] }),
            )
            .await;
        let created: Value = created.json().await.unwrap();
        created["secret"].as_str().unwrap().to_owned()
    };

    // A live stream with a viewer, watched while the junk goes in.
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.unwrap();
    wait_stream(&app, &s.account, "main", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;

    let good = s.token.as_str();
    let h264_only = offer_with("m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:102 H265/90000\r\n");
    let no_media = offer_with("");
    let datachannel = offer_with("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n");
    let vp8 = offer_with("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n");
    let truncated = vp8[..vp8.len() / 2].to_owned();
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let huge = format!("{vp8}{}", "a=x-filler:0123456789abcdef0123456789abcdef0123456789\r\n".repeat(2000));
    let sdp = "application/sdp";
    let whip = "/whip/main";
    let session = publisher.session.location.clone();
    let viewer_session = viewer.session.location.clone();

    struct Case {
        method: &'static str,
        path: String,
        token: Option<String>,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        status: u16,
        mentions: &'static str,
    }
    let case = |method: &'static str,
                path: &str,
                token: Option<&str>,
                content_type: Option<&'static str>,
                body: &[u8],
                status: u16,
                mentions: &'static str| Case {
        method,
        path: path.to_owned(),
        token: token.map(str::to_owned),
        content_type,
        body: body.to_vec(),
        status,
        mentions,
    };
    let cases = vec![
        case("POST", whip, None, Some(sdp), vp8.as_bytes(), 401, "token"),
        case("POST", whip, Some("fcp_nope"), Some(sdp), vp8.as_bytes(), 401, "unknown"),
        case("POST", whip, Some(&disabled.token), Some(sdp), vp8.as_bytes(), 403, "disabled"),
        case("POST", whip, Some(&expired), Some(sdp), vp8.as_bytes(), 403, "expired"),
        case("POST", "/whip/elsewhere", Some(good), Some(sdp), vp8.as_bytes(), 403, "stream name"),
        case("POST", "/whip/main?sourceId=cam2", Some(good), Some(sdp), vp8.as_bytes(), 403, "multisource"),
        case("POST", "/whip/bad%20name", Some(good), Some(sdp), vp8.as_bytes(), 400, "stream name"),
        case("POST", whip, Some(good), Some(sdp), b"", 400, "empty"),
        case("POST", whip, Some(good), Some(sdp), b"hello, world", 400, "v=0"),
        case("POST", whip, Some(good), Some(sdp), &binary, 400, ""),
        case("POST", whip, Some(good), Some(sdp), br#"{"type":"offer","sdp":"v=0"}"#, 400, "v=0"),
        case("POST", whip, Some(good), Some("application/json"), br#"{"type":"offer"}"#, 415, "application/sdp"),
        case("POST", whip, Some(good), None, vp8.as_bytes(), 415, "application/sdp"),
        case("POST", whip, Some(good), Some(sdp), no_media.as_bytes(), 400, "no audio or video"),
        case("POST", whip, Some(good), Some(sdp), datachannel.as_bytes(), 400, "no audio or video"),
        case("POST", whip, Some(good), Some(sdp), truncated.as_bytes(), 400, ""),
        case("POST", whip, Some(good), Some(sdp), h264_only.as_bytes(), 406, "codec"),
        case("POST", whip, Some(good), Some(sdp), huge.as_bytes(), 413, "larger"),
        case("GET", whip, None, None, b"", 405, "POST"),
        case("PUT", whip, Some(good), Some(sdp), vp8.as_bytes(), 405, "POST"),
        case("GET", &session, None, None, b"", 405, "PATCH"),
        case("PUT", &session, None, None, b"", 405, "PATCH"),
        case("POST", &session, None, Some(sdp), vp8.as_bytes(), 405, "PATCH"),
        case(
            "PATCH",
            &session,
            None,
            Some("application/sdp"),
            b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
            415,
            "trickle",
        ),
        case(
            "PATCH",
            "/whip/main/00000000000000000000000000000000",
            None,
            Some("application/trickle-ice-sdpfrag"),
            b"a=end-of-candidates\r\n",
            404,
            "session",
        ),
        case("PATCH", "/whip/main/not-a-session", None, Some("application/trickle-ice-sdpfrag"), b"", 404, "session"),
        case("PATCH", &session, None, Some("application/trickle-ice-sdpfrag"), b"\x01\x02 garbage", 400, "fragment"),
        case(
            "PATCH",
            &session,
            None,
            Some("application/trickle-ice-sdpfrag"),
            b"a=ice-ufrag:zzzz\r\na=ice-pwd:zzzzzzzzzzzzzzzzzzzzzzzz\r\n",
            422,
            "restart",
        ),
        case("DELETE", "/whip/main/00000000000000000000000000000000", None, None, b"", 404, "session"),
        case(
            "DELETE",
            &viewer_session.replace("/whep/", "/whip/").replacen(&format!("/{}", s.account), "", 1),
            None,
            None,
            b"",
            404,
            "session",
        ),
        case("POST", &format!("/whep/{}/main", s.account), None, Some(sdp), vp8.as_bytes(), 400, "receives no media"),
        case("POST", &format!("/whep/{}/nothing", s.account), None, Some(sdp), b"v=0\r\n", 400, ""),
        case("POST", "/whep/NOT-AN-ID/main", None, Some(sdp), b"v=0\r\n", 400, "account"),
        case(
            "POST",
            &format!("/whep/{}/main", s.account),
            None,
            Some("text/plain"),
            b"v=0\r\n",
            415,
            "application/sdp",
        ),
        case(
            "DELETE",
            &format!("/whep/{}/other/{}", s.account, viewer_session.rsplit('/').next().unwrap()),
            None,
            None,
            b"",
            404,
            "session",
        ),
        case("POST", &format!("{viewer_session}/layer"), None, Some("application/json"), b"{not json", 400, "pair"),
        case("POST", &format!("{viewer_session}/layer"), None, Some("text/plain"), b"{}", 415, "json"),
        case(
            "POST",
            &format!("{viewer_session}/layer"),
            None,
            Some("application/json"),
            br#"{"pair": 0, "sourceId": "cam/2"}"#,
            400,
            "sourceId",
        ),
        case(
            "PATCH",
            "/whip/bad%20name/00000000000000000000000000000000",
            None,
            Some("application/trickle-ice-sdpfrag"),
            b"",
            404,
            "session",
        ),
    ];
    let client = app.client();
    for c in cases {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut request = client.request(method, app.url(&c.path)).body(c.body.clone());
        if let Some(token) = &c.token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = c.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let cors = response.headers().get("access-control-allow-origin").cloned();
        let allow = response.headers().get("allow").cloned();
        let text = response.text().await.unwrap();
        let what = format!("{} {} ({} bytes)", c.method, c.path, c.body.len());
        assert_eq!(status, c.status, "{what}: {text}");
        assert!(!text.trim().is_empty(), "{what}: a reason in words");
        assert!(
            text.to_ascii_lowercase().contains(&c.mentions.to_ascii_lowercase()),
            "{what}: {text:?} should mention {:?}",
            c.mentions
        );
        assert_eq!(cors.as_ref().map(|v| v.to_str().unwrap()), Some("*"), "{what}: CORS on errors too");
        if status == 405 {
            assert!(allow.is_some(), "{what}: 405 names the allowed methods");
        }
    }

    // A plain OPTIONS and a CORS preflight on the endpoint and the session.
    let plain = client.request(reqwest::Method::OPTIONS, app.url(whip)).send().await.unwrap();
    assert!(plain.status().is_success());
    assert_eq!(plain.headers()["accept-post"], "application/sdp");
    assert_eq!(plain.headers()["access-control-allow-origin"], "*");
    let preflight = client
        .request(reqwest::Method::OPTIONS, app.url(&session))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "content-type, if-match")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert_eq!(preflight.headers()["accept-patch"], "application/trickle-ice-sdpfrag");
    let methods = preflight.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("PATCH") && methods.contains("DELETE"), "{methods}");

    // Allowed origins: a browser page elsewhere is refused, the studio and encoders (no Origin) are not.
    let from = |origin: Option<&'static str>| {
        let mut request =
            client.post(app.url("/whip/main")).bearer_auth(&origins).header("content-type", sdp).body(no_media.clone());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request
    };
    let elsewhere = from(Some("https://evil.example")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert!(elsewhere.text().await.unwrap().contains("origin"));
    assert_eq!(
        from(Some("https://studio.example")).send().await.unwrap().status(),
        400,
        "allowed; then the offer is judged"
    );
    assert_eq!(from(None).send().await.unwrap().status(), 400, "no Origin: not a browser, not restricted");

    // The live stream never noticed.
    let before = viewer.video(0).unwrap().packets.len();
    viewer.wait_for("more video after the junk", |v| v.video(0).is_some_and(|t| t.packets.len() >= before + 20)).await;
    assert_continuous(&viewer.video(0).unwrap(), "video during the junk");
    assert!(is_live(&public_stream(&app, &s.account, "main").await));
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
}

/// Whether `received` is `clip` played in a loop from some keyframe on.
fn is_clip_in_order(received: &[bytes::Bytes], clip: &[bytes::Bytes]) -> Result<(), String> {
    let first = received.first().ok_or("nothing received")?;
    let start = clip.iter().position(|unit| unit == first).ok_or("the first unit is not from the clip")?;
    for (i, unit) in received.iter().enumerate() {
        let expected = &clip[(start + i) % clip.len()];
        if unit != expected {
            return Err(format!("unit {i} differs from clip unit {}", (start + i) % clip.len()));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_vp8_and_opus_arrive_byte_for_byte_in_order() {
    let app = spawn_app().await;
    let s = streamer(&app, "clip@example.com", json!({ "label": "clip", "streams": ["clip"] })).await;
    let options = PublishOptions { media: Media::Clip, ..PublishOptions::new(&s.token, "clip") };
    let _publisher = rtc::publish(&app, options).await.unwrap();
    wait_stream(&app, &s.account, "clip", "live", is_live).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/clip", s.account), 1).await.unwrap();
    // 1.5 s of media: past a keyframe boundary of the clip and into the next.
    viewer
        .wait_for("45 frames and 60 audio packets", |v| {
            v.video(0).is_some_and(|t| t.units.len() >= 45) && v.audio(0).is_some_and(|t| t.units.len() >= 60)
        })
        .await;
    let clip = rtc::clip();
    let video = viewer.video(0).unwrap();
    is_clip_in_order(&video.units, &clip.video).unwrap_or_else(|why| panic!("video: {why}"));
    assert_eq!(video.units[0][0] & 0x01, 0, "the first frame is a keyframe (VP8 P bit clear)");
    let audio = viewer.audio(0).unwrap();
    // Audio starts wherever the viewer joined; from then on every packet, in order.
    is_clip_in_order(&audio.units, &clip.audio).unwrap_or_else(|why| panic!("audio: {why}"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_ice_servers_are_handed_out_in_link_headers() {
    let app = spawn_app_with(|c| {
        c.ice_servers = vec![
            ferrocast::sfu::IceServer { url: "stun:stun.example.net:3478".into(), username: None, credential: None },
            ferrocast::sfu::IceServer {
                url: "turn:turn.example.net:3478?transport=udp".into(),
                username: Some("alice".into()),
                credential: Some("s3cret".into()),
            },
        ];
    })
    .await;
    let s = streamer(&app, "ice@example.com", json!({ "label": "i", "streams": ["main"] })).await;
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.unwrap();
    let links: Vec<String> =
        publisher.session.headers.get_all("link").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(links.contains(&"<stun:stun.example.net:3478>; rel=\"ice-server\"".to_owned()), "{links:?}");
    assert!(
        links.contains(
            &"<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"alice\"; credential=\"s3cret\"; credential-type=\"password\""
                .to_owned()
        ),
        "{links:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_event_feed_tells_when_a_stream_goes_live_and_stops() {
    let app = spawn_app().await;
    let s = streamer(&app, "feed@example.com", json!({ "label": "f", "streams": ["main"] })).await;
    let mut events =
        app.client().get(app.url(&format!("/api/v1/streams/{}/main/events", s.account))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {text}");
            if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(10), events.chunk()).await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    };
    read_until("\"live\":false", &mut text).await;
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.unwrap();
    read_until("\"live\":true", &mut text).await;
    assert!(text.contains("event: stream"), "{text}");
    text.clear();
    app.client().delete(app.url(&publisher.session.location)).send().await.unwrap();
    read_until("\"live\":false", &mut text).await;
    drop(events);
    app.stop().await;
}

/// RFC 8843 §7.3.1: a max-bundle offerer (GStreamer's webrtcbin) writes every m-section after the
/// first as port 0 + `a=bundle-only`. Those sections are live: the publisher's audio reaches a
/// viewer, and the answer does not reject them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_bundle_publishers_bundle_only_audio_reaches_viewers() {
    let app = spawn_app().await;
    let s = streamer(&app, "bundle@example.com", json!({ "label": "b", "streams": ["show"] })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.rewrite_offer = Some(rtc::as_max_bundle);
    let publisher = rtc::publish(&app, options).await.expect("a max-bundle offer is accepted");
    let answer = &publisher.session.answer;
    let audio = answer.split("m=").find(|m| m.starts_with("audio")).expect("an audio section in the answer");
    assert!(!audio.starts_with("audio 0 "), "the bundle-only audio is accepted: {answer}");
    wait_stream(&app, &s.account, "show", "live", |state| state["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/show", s.account), 1).await.expect("viewer");
    viewer
        .wait_for("audio and video", |v| {
            v.audio(0).is_some_and(|t| t.packets.len() >= 20) && v.video(0).is_some_and(|t| t.packets.len() >= 10)
        })
        .await;
    let streams: Value = s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> =
        streams[0]["sources"][0]["tracks"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"audio") && kinds.contains(&"video"), "{streams}");
    app.stop().await;
}

/// A publisher whose DTLS certificate does not match the fingerprint its offer announced is ended
/// when its handshake shows it (RFC 8122 §5), not left to the 10-s connect timeout, and never
/// goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_certificate_does_not_match_its_fingerprint_is_ended_at_its_handshake() {
    let app = spawn_app().await;
    let s = streamer(&app, "fingerprint@example.com", json!({ "label": "f", "streams": ["fp"] })).await;
    let mut options = PublishOptions::new(&s.token, "fp");
    options.rewrite_offer = Some(rtc::with_wrong_fingerprint);
    let started = Instant::now();
    let publisher = rtc::publish(&app, options).await.expect("the offer itself is well formed");
    // A PATCH with a wrong If-Match tells a live session (412) from a removed one (404).
    let gone = loop {
        let status = app
            .client()
            .patch(app.url(&publisher.session.location))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .header("if-match", "\"not-the-etag\"")
            .body("a=end-of-candidates\r\n")
            .send()
            .await
            .unwrap()
            .status();
        if status == 404 {
            break started.elapsed();
        }
        assert_eq!(status, 412, "the session is there until its handshake fails");
        assert!(started.elapsed() < Duration::from_secs(8), "not ended at its handshake");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(gone < Duration::from_secs(8), "ended after {gone:?}");
    assert_eq!(public_stream(&app, &s.account, "fp").await["live"], false);
    app.stop().await;
}
