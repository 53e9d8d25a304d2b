//! The Live page's figures (README "Live page"): a publisher's health (str0m's statistics and
//! the engine's keyframe requests), ten minutes of graphs sampled every five seconds, and viewers
//! counted by the site that embeds them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{
    helpers::*,
    rtc::{self, PublishOptions},
    whip_whep::{streamer, wait_stream},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_publisher_shows_its_loss_nacks_and_keyframe_requests_and_the_page_draws_its_graphs() {
    let app = spawn_app().await;
    let s = streamer(&app, "health@example.com", json!({ "label": "h", "streams": ["show"] })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.lose_video = Some(20);
    let _publisher = rtc::publish(&app, options).await.expect("publish");
    wait_stream(&app, &s.account, "show", "live", |state| state["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/show", s.account), 1).await.expect("viewer");
    viewer.wait_for("connected", rtc::Viewer::is_connected).await;

    // One video packet in 20 lost on the way in: str0m reports the loss and asks for resends.
    let deadline = Instant::now() + Duration::from_secs(15);
    let health = loop {
        let streams: Value = s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
        let health = streams[0]["sources"][0]["health"].clone();
        let lossy = health["lossPercent"].as_f64().is_some_and(|p| p > 0.0);
        if lossy && health["nacks"].as_u64().unwrap() > 0 && health["keyframeRequests"].as_u64().unwrap() > 0 {
            break health;
        }
        assert!(Instant::now() < deadline, "no loss, NACKs or keyframe requests shown: {streams}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // One packet in 20 never arrives: about 5 %.
    let loss = health["lossPercent"].as_f64().unwrap();
    assert!((2.0..=10.0).contains(&loss), "{health}");

    // A sample every 5 s: the page draws the source's graphs and says its health.
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let page = s.client.get(app.url("/live")).send().await.unwrap().text().await.unwrap();
        if page.contains(r#"class="graphs""#) {
            assert!(page.contains("<polyline"), "a line per figure");
            for label in ["Bitrate", "Frame rate", "Resolution", "Viewers", "NACKs", "keyframe requests"] {
                assert!(page.contains(label), "{label}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no graphs on the Live page");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_counted_by_the_site_that_embeds_them() {
    let app = spawn_app().await;
    let s = streamer(&app, "sites@example.com", json!({ "label": "h", "streams": ["show"] })).await;
    let _publisher = rtc::publish(&app, PublishOptions::new(&s.token, "show")).await.expect("publish");
    wait_stream(&app, &s.account, "show", "live", |state| state["live"] == true).await;
    // The hosted viewer framed by a site names it in `embed`.
    let path = format!("/whep/{}/show?embed=https%3A%2F%2FFans.example", s.account);
    let framed = rtc::view(&app, &path, 1).await.expect("framed viewer");
    let direct = rtc::view(&app, &format!("/whep/{}/show", s.account), 1).await.expect("direct viewer");
    framed.wait_for("connected", rtc::Viewer::is_connected).await;
    direct.wait_for("connected", rtc::Viewer::is_connected).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let streams: Value = s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
        if streams[0]["viewers"] == 2
            && streams[0]["viewersBySite"] == json!([{ "origin": "https://fans.example", "viewers": 1 }])
        {
            break;
        }
        assert!(Instant::now() < deadline, "not counted by site: {streams}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = s.client.get(app.url("/live")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("On https://fans.example"), "the Live page names the site");

    // A malformed site is a clear 400, and the stream plays on for the others.
    for bad in ["notanorigin", "https%3A%2F%2Fa.example%2Fpath", "null"] {
        let response = reqwest::Client::new()
            .post(app.url(&format!("/whep/{}/show?embed={bad}", s.account)))
            .header("content-type", "application/sdp")
            .body("v=0\r\n")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response.text().await.unwrap().contains("embed"), "{bad}");
    }
    assert!(framed.is_connected() && direct.is_connected());
    app.stop().await;
}
