//! Simulcast publishing (RFC 8853): a publisher's layers are learnt per RID, and each viewer
//! receives one of them as one continuous track.

use std::collections::HashSet;

use serde_json::json;

use crate::{
    helpers::{spawn_app, TestApp},
    rtc::{self, Media, PublishOptions},
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
    wait_stream(&app, &s.account, "main", "three measured layers", |v| {
        v["sources"][0]["layers"].as_array().is_some_and(|l| l.len() == 3 && l.iter().all(|l| l["fps"] != 0))
    })
    .await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    // A fixed quality: auto follows the viewer's bandwidth estimate, which may move it on a
    // loaded machine (tested below and in the Chromium tests).
    let (status, body) = select(&app, &viewer, json!({ "pair": 0, "layer": "medium" })).await;
    assert_eq!(status, 204, "{body}");
    wait_layer(&viewer, 1, "the medium layer").await;
    let since = viewer.video(0).unwrap().frame_starts().len();
    viewer
        .wait_for("60 frames of the medium layer", |v| v.video(0).is_some_and(|t| t.frame_starts().len() >= since + 60))
        .await;

    let log = viewer.video(0).unwrap();
    let starts = log.frame_starts();
    let layers: HashSet<u8> = starts[since..].iter().map(|(_, layer, _)| *layer).collect();
    assert_eq!(layers, HashSet::from([1]), "the viewer got frames of layers {layers:?}, not of the medium one");
    // Before that, whatever auto showed: each layer change at a keyframe of the new layer, so
    // layers never interleave.
    let firsts: Vec<&rtc::Got> = log.packets.iter().filter(|p| p.layer.is_some()).collect();
    for w in firsts.windows(2) {
        assert!(
            w[0].layer == w[1].layer || w[1].keyframe,
            "layer {:?} then {:?} without a keyframe",
            w[0].layer,
            w[1].layer
        );
    }
    assert_frames_go_forward(&log);
    rtc::assert_continuous(&log, "video");
    app.stop().await;
}

/// Frames go forward across layer switches: a frame number repeats only where the layer changes
/// (the new layer's keyframe can be the same picture, in another size, as the last one sent).
fn assert_frames_go_forward(log: &rtc::TrackLog) {
    let starts = log.frame_starts();
    for w in starts.windows(2) {
        let ((a, layer_a, _), (b, layer_b, _)) = (w[0], w[1]);
        assert!(b > a || b == a && layer_a != layer_b, "frame {a} (layer {layer_a}) then {b} (layer {layer_b})");
    }
}

/// `POST {session}/layer` with this body; answers the status and the body.
async fn select(app: &TestApp, viewer: &rtc::Viewer, body: serde_json::Value) -> (u16, String) {
    let url = app.url(&format!("{}/layer", viewer.session.location));
    let response = app.client().post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits until the viewer's pair 0 shows frames of `layer` (the index into SIMULCAST_LAYERS).
async fn wait_layer(viewer: &rtc::Viewer, layer: u8, what: &str) {
    viewer.wait_for(what, |v| v.video(0).is_some_and(|t| t.last_layer() == Some(layer))).await;
}

/// Reads the session's event feed until an event `name` whose data satisfies `check`.
async fn wait_event(
    app: &TestApp,
    viewer: &rtc::Viewer,
    name: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let url = app.url(&format!("{}/events", viewer.session.location));
    let mut feed = app.client().get(url).send().await.unwrap();
    let deadline = tokio::time::Instant::now() + rtc::MEDIA_TIMEOUT;
    let mut text = String::new();
    let mut seen = Vec::new();
    loop {
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default().to_owned();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if event == name && check(&data) {
                return data;
            }
            seen.push(data);
        }
        match tokio::time::timeout_at(deadline, feed.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("no {name} event as wanted; saw {seen:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_a_simulcast_sources_layers_best_first() {
    let app = spawn_app().await;
    let (s, _publisher) = simulcast_publisher(&app, "sim-list@example.com").await;
    // The test layers have no real picture: they rank by bitrate (h, then m, then l).
    let state = wait_stream(&app, &s.account, "main", "three layers at about 30 fps", |v| {
        v["sources"][0]["layers"]
            .as_array()
            .is_some_and(|l| l.len() == 3 && l.iter().all(|l| l["fps"].as_u64().is_some_and(|fps| fps >= 25)))
    })
    .await;
    let layers = state["sources"][0]["layers"].as_array().unwrap();
    let described: Vec<(&str, &str)> =
        layers.iter().map(|l| (l["layer"].as_str().unwrap(), l["rid"].as_str().unwrap())).collect();
    assert_eq!(described, [("high", "h"), ("medium", "m"), ("low", "l")], "{state}");
    let rates: Vec<u64> = layers.iter().map(|l| l["bitrateBps"].as_u64().unwrap()).collect();
    assert!(rates.windows(2).all(|w| w[0] > w[1]) && rates[2] > 50_000, "{rates:?}");
    for layer in layers {
        // 30 fps, measured over a second of a loaded machine's bursts.
        assert!((20..=40).contains(&layer["fps"].as_u64().unwrap()), "{layer}");
        assert_eq!(layer["active"], true);
    }
    // The account's own list has the exact figures: the video track's rate is its layers' sum.
    let list: serde_json::Value = s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    let source = &list[0]["sources"][0];
    let track_rate =
        source["tracks"].as_array().unwrap().iter().find(|t| t["kind"] == "video").unwrap()["bitrateBps"].as_u64();
    let sum: u64 = source["layers"].as_array().unwrap().iter().map(|l| l["bitrateBps"].as_u64().unwrap()).sum();
    assert_eq!(track_rate, Some(sum), "{list}");
    assert_eq!(source["layers"][0]["rid"], "h", "{list}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframes_tell_each_codecs_picture_size() {
    let app = spawn_app().await;
    let s = streamer(&app, "sim-size@example.com", json!({ "label": "s", "streams": ["vp8", "vp9", "h264"] })).await;
    let cases =
        [("vp8", Media::Clip, 160, 120), ("vp9", Media::Vp9Clip, 320, 240), ("h264", Media::H264Clip, 320, 240)];
    let mut publishers = Vec::new();
    for (stream, media, _, _) in cases {
        let options = PublishOptions { media, ..PublishOptions::new(&s.token, stream) };
        publishers.push(rtc::publish(&app, options).await.expect("publish"));
    }
    for (stream, _, width, height) in cases {
        let state = wait_stream(&app, &s.account, stream, "a layer with its size", |v| {
            v["sources"][0]["layers"][0]["width"].is_u64()
        })
        .await;
        let layers = state["sources"][0]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{state}");
        assert_eq!((layers[0]["width"].as_u64(), layers[0]["height"].as_u64()), (Some(width), Some(height)), "{state}");
        assert_eq!(layers[0]["rid"], serde_json::Value::Null);
        assert_eq!(layers[0]["layer"], "high");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_chooses_its_layer_and_its_track_stays_one_continuous_stream() {
    let app = spawn_app().await;
    let (s, _publisher) = simulcast_publisher(&app, "sim-choose@example.com").await;
    wait_stream(&app, &s.account, "main", "three layers", |v| {
        v["sources"][0]["layers"].as_array().is_some_and(|l| l.len() == 3)
    })
    .await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    // Auto, with nothing limiting the viewer: the best layer (h, index 2).
    wait_layer(&viewer, 2, "the high layer").await;
    let shown = wait_event(&app, &viewer, "sources", |d| d["pairs"][0]["layer"] == "high").await;
    assert_eq!(shown["pairs"][0]["auto"], true, "{shown}");
    let layers: Vec<&str> =
        shown["sources"][0]["layers"].as_array().unwrap().iter().map(|l| l["rid"].as_str().unwrap()).collect();
    assert_eq!(layers, ["h", "m", "l"], "{shown}");

    for (asked, index) in [("low", 0u8), ("medium", 1), ("high", 2), ("low", 0)] {
        let (status, body) = select(&app, &viewer, json!({ "pair": 0, "layer": asked })).await;
        assert_eq!(status, 204, "{body}");
        wait_layer(&viewer, index, asked).await;
        let shown = wait_event(&app, &viewer, "sources", |d| d["pairs"][0]["layer"] == asked).await;
        assert_eq!(shown["pairs"][0]["auto"], false, "{shown}");
        assert_eq!(shown["pairs"][0]["sourceId"], serde_json::Value::Null, "the pair keeps its source: {shown}");
    }
    // Frames keep arriving on the layer chosen, and nothing else.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = viewer.video(0).unwrap();
    let starts = log.frame_starts();
    let after = starts.iter().rposition(|(_, layer, _)| *layer != 0).unwrap() + 1;
    assert!(starts.len() - after >= 10, "frames of the low layer keep coming: {}", starts.len() - after);

    // One RTP stream across four switches: sequence numbers without a gap or a repeat, frame
    // numbers and timestamps going forward, each switch at a keyframe.
    rtc::assert_continuous(&log, "video across layer switches");
    assert_frames_go_forward(&log);
    assert!(
        log.packets.windows(2).all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) < 1 << 31),
        "timestamps go back"
    );
    let switches: Vec<&rtc::Got> = log
        .packets
        .iter()
        .filter(|p| p.layer.is_some())
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].layer != w[1].layer)
        .map(|w| w[1])
        .collect();
    // Auto may have moved once or twice before (from what the estimator knew at the start).
    let targets: Vec<Option<u8>> = switches.iter().map(|p| p.layer).collect();
    assert!(targets.ends_with(&[Some(0), Some(1), Some(2), Some(0)]), "{switches:?}");
    assert!(switches.iter().all(|p| p.keyframe), "every switch starts at a keyframe: {switches:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_stops_moves_its_viewers_down_without_a_freeze_and_back_when_it_returns() {
    let app = spawn_app().await;
    let (s, publisher) = simulcast_publisher(&app, "sim-stop@example.com").await;
    wait_stream(&app, &s.account, "main", "three layers", |v| {
        v["sources"][0]["layers"].as_array().is_some_and(|l| l.len() == 3)
    })
    .await;
    // Fixed qualities: auto would also follow the bandwidth estimate, which a loaded machine moves.
    let high = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    let low = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    for (viewer, layer) in [(&high, "high"), (&low, "low")] {
        let (status, body) = select(&app, viewer, json!({ "pair": 0, "layer": layer })).await;
        assert_eq!(status, 204, "{body}");
    }
    wait_layer(&high, 2, "the high layer").await;
    wait_layer(&low, 0, "the low layer").await;
    let before = high.video(0).unwrap().frame_starts().len();

    publisher.send_layer("h", false);
    wait_layer(&high, 1, "the medium layer once high stops").await;
    wait_stream(&app, &s.account, "main", "the high layer shown stopped", |v| {
        v["sources"][0]["layers"][0]["active"] == false
    })
    .await;
    let starts = high.video(0).unwrap().frame_starts();
    let moved = before + starts[before..].iter().position(|(_, layer, _)| *layer == 1).unwrap();
    let freeze = starts[moved].2 - starts[moved - 1].2;
    assert!(freeze < std::time::Duration::from_millis(500), "the picture froze for {freeze:?}");
    assert_eq!(low.video(0).unwrap().last_layer(), Some(0), "a viewer on another layer is not moved");

    publisher.send_layer("h", true);
    wait_layer(&high, 2, "the high layer again").await;
    let log = high.video(0).unwrap();
    rtc::assert_continuous(&log, "video across a layer stopping and returning");
    assert_frames_go_forward(&log);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_layer_selections_are_400_and_a_stream_without_simulcast_ignores_the_layer() {
    let app = spawn_app().await;
    let (s, _publisher) = simulcast_publisher(&app, "sim-bad@example.com").await;
    wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    let (status, body) = select(&app, &viewer, json!({ "pair": 0, "layer": "high" })).await;
    assert_eq!(status, 204, "{body}");
    wait_layer(&viewer, 2, "the high layer").await;
    for (body, says) in [
        (json!({ "pair": 0, "layer": "ultra" }), "layer must be one of auto, high, medium, low"),
        (json!({ "pair": 0, "layer": 3 }), "auto|high|medium|low"),
        (json!({ "pair": 4, "layer": "low" }), "there is no pair 4"),
        (json!({ "pair": 0, "layer": "low", "quality": "low" }), "unknown field"),
    ] {
        let (status, text) = select(&app, &viewer, body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    // Nothing changed for the viewer.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(viewer.video(0).unwrap().last_layer(), Some(2));

    // Without simulcast the layer is remembered but there is nothing to choose: no layer shown.
    let plain = streamer(&app, "sim-plain@example.com", json!({ "label": "p", "streams": ["main"] })).await;
    let _plain_publisher = rtc::publish(&app, PublishOptions::new(&plain.token, "main")).await.unwrap();
    wait_stream(&app, &plain.account, "main", "live", |v| v["live"] == true).await;
    let plain_viewer = rtc::view(&app, &format!("/whep/{}/main", plain.account), 1).await.unwrap();
    plain_viewer.wait_for("frames", |v| v.video(0).is_some_and(|t| t.frames().len() >= 10)).await;
    let (status, text) = select(&app, &plain_viewer, json!({ "pair": 0, "layer": "low" })).await;
    assert_eq!(status, 204, "{text}");
    let shown = wait_event(&app, &plain_viewer, "sources", |d| d["pairs"][0]["auto"] == false).await;
    assert_eq!(shown["pairs"][0]["layer"], serde_json::Value::Null, "{shown}");
    let before = plain_viewer.video(0).unwrap().frames().len();
    plain_viewer.wait_for("more frames", |v| v.video(0).is_some_and(|t| t.frames().len() >= before + 10)).await;
    rtc::assert_continuous(&plain_viewer.video(0).unwrap(), "video of a stream without simulcast");
    app.stop().await;
}
