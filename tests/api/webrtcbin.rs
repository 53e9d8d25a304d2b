//! GStreamer's `webrtcbin` (libnice ICE, OpenSSL DTLS with an RSA certificate, no ICE consent
//! checks, max-bundle offers with `a=bundle-only`) as a third client stack beside webrtc-rs and
//! Chromium, through `end2end/gst/webrtcbin_client.py` with webrtcbin's defaults.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, TestApp},
    rtc::{self, Media, PublishOptions},
    whip_whep::{public_stream, streamer, wait_stream},
};

/// Long enough to pass the ICE-lite agent's 15 s without consent checks twice over.
const PUBLISH_SECONDS: u64 = 32;

/// The client script, killed if a test ends before it does.
struct Script(Option<Child>);

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the client script; its one JSON line comes from [`finished`].
fn webrtcbin(args: &[&str]) -> Script {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/gst/webrtcbin_client.py");
    Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        // libnice gathers on no loopback interface by itself.
        .args(["--local-address", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|child| Script(Some(child)))
        .expect("python3 runs (scripts/setup.sh --test installs GStreamer and PyGObject)")
}

/// Waits for the script (its own `--timeout` bounds it) and returns its verdict and report.
async fn finished(mut script: Script, what: &str) -> (bool, Value) {
    let child = script.0.take().expect("a running script");
    let output = tokio::time::timeout(
        Duration::from_secs(PUBLISH_SECONDS + 60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: the script outlived its own timeout"))
    .expect("the waiting task")
    .expect("the script's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("{what}: no JSON report; stdout: {stdout}\nstderr (end):\n{tail}"));
    if !output.status.success() {
        eprintln!("{what} failed: {report}\nstderr (end):\n{tail}");
    }
    (output.status.success(), report)
}

/// Publishes with webrtcbin for [`PUBLISH_SECONDS`]; a webrtc-rs viewer and a webrtcbin viewer
/// watch, the stream is still live after the 15 s that used to cut it, and both viewers get audio
/// and video.
async fn webrtcbin_publishes(app: &TestApp, codec: &str, mime: &str) {
    let s = streamer(app, &format!("gst-{codec}@example.com"), json!({ "label": "gst", "streams": ["gst"] })).await;
    let started = Instant::now();
    let url = app.url("/whip/gst");
    let publisher = webrtcbin(&[
        "publish",
        "--url",
        &url,
        "--token",
        &s.token,
        "--video",
        codec,
        "--seconds",
        &PUBLISH_SECONDS.to_string(),
    ]);
    wait_stream(app, &s.account, "gst", "webrtcbin's feed is live", |state| {
        state["live"] == true && state["sources"][0]["tracks"].as_array().is_some_and(|t| t.len() == 2)
    })
    .await;

    let whep = format!("/whep/{}/gst", s.account);
    let gst_viewer = webrtcbin(&["view", "--url", &app.url(&whep), "--seconds", "20"]);
    let viewer = rtc::view(app, &whep, 1).await.expect("the webrtc-rs viewer is admitted");
    viewer
        .wait_for("webrtcbin's video and audio", |v| {
            v.video(0).is_some_and(|t| t.packets.len() >= 30) && v.audio(0).is_some_and(|t| t.packets.len() >= 30)
        })
        .await;
    assert_eq!(viewer.video(0).unwrap().mime.to_ascii_lowercase(), mime);
    assert_eq!(viewer.audio(0).unwrap().mime.to_ascii_lowercase(), "audio/opus");

    // Past the point where a client without consent checks used to be cut (15 s), and then some.
    let past_cut = started + Duration::from_secs(24);
    tokio::time::sleep_until(past_cut.into()).await;
    let state = public_stream(app, &s.account, "gst").await;
    assert_eq!(state["live"], true, "webrtcbin's feed still live at 24 s: {state}");
    let (video_before, audio_before) = (viewer.video(0).unwrap().packets.len(), viewer.audio(0).unwrap().packets.len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (video_after, audio_after) = (viewer.video(0).unwrap().packets.len(), viewer.audio(0).unwrap().packets.len());
    assert!(
        video_after > video_before + 20 && audio_after > audio_before + 50,
        "media still flows at 26 s: video {video_before} → {video_after}, audio {audio_before} → {audio_after}"
    );

    let (ok, report) = finished(gst_viewer, "the webrtcbin viewer").await;
    assert!(ok, "the webrtcbin viewer decoded webrtcbin's audio and video: {report}");
    assert!(report["videoFrames"].as_u64().unwrap_or(0) >= 100, "{report}");
    assert!(report["audioBuffers"].as_u64().unwrap_or(0) >= 200, "{report}");

    let (ok, report) = finished(publisher, "the webrtcbin publisher").await;
    assert!(ok, "webrtcbin published {PUBLISH_SECONDS} s without a cut: {report}");
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["deleteStatus"], 200, "the publisher's DELETE ends its session: {report}");
    // Its DELETE ended the feed.
    wait_stream(app, &s.account, "gst", "the feed ends with the publisher's DELETE", |state| state["live"] == false)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtcbin_publishes_vp8_and_opus_past_the_consent_timeout_to_two_stacks_of_viewers() {
    let app = spawn_app().await;
    webrtcbin_publishes(&app, "vp8", "video/vp8").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtcbin_publishes_h264_and_opus_past_the_consent_timeout_to_two_stacks_of_viewers() {
    let app = spawn_app().await;
    webrtcbin_publishes(&app, "h264", "video/h264").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtcbin_viewer_plays_a_webrtc_rs_publish_with_its_audio() {
    let app = spawn_app().await;
    let s = streamer(&app, "rs@example.com", json!({ "label": "rs", "streams": ["rs"] })).await;
    // The real clip: webrtcbin decodes what it gets.
    let options = PublishOptions { media: Media::Clip, ..PublishOptions::new(&s.token, "rs") };
    let _publisher = rtc::publish(&app, options).await.expect("publish accepted");
    wait_stream(&app, &s.account, "rs", "live", |state| state["live"] == true).await;

    let whep = app.url(&format!("/whep/{}/rs", s.account));
    let (ok, report) = finished(webrtcbin(&["view", "--url", &whep, "--seconds", "8"]), "the webrtcbin viewer").await;
    assert!(ok, "webrtcbin decoded video and audio of a webrtc-rs publish: {report}");
    assert!(report["videoFrames"].as_u64().unwrap_or(0) >= 30, "{report}");
    assert!(report["audioBuffers"].as_u64().unwrap_or(0) >= 50, "{report}");
    assert_eq!(report["deleteStatus"], 200, "{report}");
    app.stop().await;
}
