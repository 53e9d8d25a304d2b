//! The connectivity self-check: what `GET /api/v1/self-check` reports, and the probe sessions
//! behind "Test my connection" (`/self-check/probe`), with their refusals. The browser half
//! (probes that connect, UDP blocked) is in end2end/tests/network.test.mjs.

use ferrocast::sfu::TcpPort;
use reqwest::Client;
use serde_json::Value;

use crate::{
    helpers::{spawn_app, spawn_app_with, TestApp},
    whip_whep::offer_with,
};

const SECRET: &str = "self-check-turn-secret";

fn probe_offer() -> String {
    offer_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n")
}

async fn logged_in(app: &TestApp, email: &str) -> Client {
    let client = app.client();
    app.sign_up(&client, email).await;
    client
}

async fn post_probe(
    app: &TestApp,
    client: &Client,
    query: &str,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    client
        .post(app.url(&format!("/self-check/probe{query}")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The transports (`udp`, `tcp`) of an answer's candidates.
fn transports(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_lowercase))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_names_the_announced_media_addresses_and_ice_servers_without_secrets() {
    let app = spawn_app_with(|c| {
        c.ice_servers = vec![
            ferrocast::sfu::IceServer { url: "turn:turn.example.net:3478".into(), username: None, credential: None },
            ferrocast::sfu::IceServer { url: "stun:stun.example.net".into(), username: None, credential: None },
        ];
        c.turn_secret = Some(SECRET.into());
        c.rtc_udp_port = crate::helpers::free_media_port();
    })
    .await;
    let anonymous = app.client().get(app.url("/api/v1/self-check")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "only for logged-in people");

    let client = logged_in(&app, "report@example.com").await;
    let response = client.get(app.url("/api/v1/self-check")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "the TURN secret never leaves the server: {text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    let udp = app.rtc_addrs[0].to_string();
    assert_eq!(report["media"]["udp"], serde_json::json!([udp]));
    assert_eq!(report["media"]["tcp"], serde_json::json!([udp]), "ICE-TCP on the UDP port's number");
    assert_eq!(report["publicUrl"], app.base);
    assert_eq!(report["https"]["enabled"], false);
    assert_eq!(report["https"]["terminatedBy"], "none");
    assert_eq!(report["iceServers"][0]["urls"], "turn:turn.example.net:3478");
    assert_eq!(report["iceServers"][0]["credentials"], "time-limited");
    assert_eq!(report["iceServers"][1]["credentials"], "none");
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains("only this machine can send or receive media")),
        "loopback media is called out: {warnings:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tcp_or_turn_is_told_that_udp_blocked_visitors_cannot_watch() {
    let app = spawn_app_with(|c| c.rtc_tcp_port = Some(TcpPort::Off)).await;
    let client = logged_in(&app, "no-tcp@example.com").await;
    let report: Value = client.get(app.url("/api/v1/self-check")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["media"]["tcp"], serde_json::json!([]));
    assert!(report["warnings"].to_string().contains("ICE-TCP is off and no TURN server is configured"), "{report}");

    let probe = post_probe(&app, &client, "?transport=tcp", "application/sdp", probe_offer()).await;
    assert_eq!(probe.status(), 404);
    assert!(probe.text().await.unwrap().contains("ICE-TCP is off"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answers_with_the_candidates_of_one_transport_and_ends_on_delete() {
    let app = spawn_app().await;
    let client = logged_in(&app, "probe@example.com").await;
    for (query, expected) in
        [("?transport=udp", vec!["udp"]), ("?transport=tcp", vec!["tcp"]), ("", vec!["udp", "tcp"])]
    {
        let response = post_probe(&app, &client, query, "application/sdp", probe_offer()).await;
        assert_eq!(response.status(), 201, "{query}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/self-check/probe/"), "{location}");
        let answer = response.text().await.unwrap();
        assert_eq!(transports(&answer), expected, "{query}: {answer}");
        let deleted = client.delete(app.url(&location)).send().await.unwrap();
        assert_eq!(deleted.status(), 200);
        let again = client.delete(app.url(&location)).send().await.unwrap();
        assert_eq!(again.status(), 404, "gone after DELETE");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_probe_requests_get_clear_refusals() {
    let app = spawn_app().await;
    let anonymous = post_probe(&app, &app.client(), "", "application/sdp", probe_offer()).await;
    assert_eq!(anonymous.status(), 401, "only for logged-in people");

    let client = logged_in(&app, "bad-probe@example.com").await;
    let wrong_type = post_probe(&app, &client, "", "application/json", probe_offer()).await;
    assert_eq!(wrong_type.status(), 415);
    let bad_transport = post_probe(&app, &client, "?transport=quic", "application/sdp", probe_offer()).await;
    assert_eq!(bad_transport.status(), 400);
    assert!(bad_transport.text().await.unwrap().contains("transport must be udp, tcp or any"));
    let garbage = post_probe(&app, &client, "", "application/sdp", "not an offer".into()).await;
    assert_eq!(garbage.status(), 400);
    // On a connection of its own: the server answers before reading the whole body and closes
    // that connection, which a pooled client could otherwise pick for the next request.
    let huge =
        post_probe(&app, &logged_in(&app, "huge@example.com").await, "", "application/sdp", "v=0\r\n".repeat(100_000))
            .await;
    assert_eq!(huge.status(), 413);
    let not_a_session = client.delete(app.url("/self-check/probe/zzz")).send().await.unwrap();
    assert_eq!(not_a_session.status(), 404);
    // A probe's URL is not a WHEP session URL, nor the other way round.
    let probe = post_probe(&app, &client, "", "application/sdp", probe_offer()).await;
    let id = probe.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let as_whep = client.delete(app.url(&format!("/whep/abc/probe/{id}"))).send().await.unwrap();
    assert_eq!(as_whep.status(), 404);
    // And the server still answers.
    let again = post_probe(&app, &client, "?transport=udp", "application/sdp", probe_offer()).await;
    assert_eq!(again.status(), 201);
    app.stop().await;
}
