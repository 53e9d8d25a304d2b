//! Simulcast publishing (RFC 8853): a publisher's layers are learnt per RID, and each viewer
//! receives one of them as one continuous track.

use std::collections::HashSet;

use serde_json::json;

use crate::{
    helpers::{spawn_app, TestApp},
    rtc::{self, Media, PublishOptions, LAYER_BYTE},
    whip_whep::{streamer, wait_stream, Streamer},
};

/// A streamer publishing `main` with the three-layer simulcast test publisher.
async fn simulcast_publisher(app: &TestApp, email: &str) -> (Streamer, rtc::Publisher) {
    let s = streamer(app, email, json!({ "label": "s", "streams": ["main"] })).await;
    let options = PublishOptions { media: Media::Simulcast, ..PublishOptions::new(&s.token, "main") };
    let publisher = rtc::publish(app, options).await.expect("a simulcast offer is taken");
    (s, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_offer_is_answered_per_rfc_8853() {
    let app = spawn_app().await;
    let (_, publisher) = simulcast_publisher(&app, "sim-answer@example.com").await;
    let answer = &publisher.session.answer;
    for rid in ["l", "m", "h"] {
        assert!(answer.contains(&format!("a=rid:{rid} recv")), "{answer}");
    }
    assert!(answer.contains("a=simulcast:recv l;m;h"), "{answer}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_a_simulcast_publisher_gets_one_layer_continuously() {
    let app = spawn_app().await;
    let (s, _publisher) = simulcast_publisher(&app, "sim-view@example.com").await;
    wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    viewer.wait_for("60 frames", |v| v.video(0).is_some_and(|t| t.units.len() >= 60)).await;

    let log = viewer.video(0).unwrap();
    let layers: HashSet<u8> = log.units.iter().filter_map(|unit| unit.get(LAYER_BYTE).copied()).collect();
    assert_eq!(layers.len(), 1, "the viewer got frames of layers {layers:?}, not of one");
    let frames = log.frames();
    assert!(frames.windows(2).all(|w| w[1] > w[0]), "frame numbers go back or repeat: {frames:?}");
    rtc::assert_continuous(&log, "video");
    app.stop().await;
}
