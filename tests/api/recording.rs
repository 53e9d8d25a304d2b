//! Recording: a broadcast published with a recording token becomes a WebM file that Debian's
//! ffprobe reads (both codecs, the size, every frame, a duration close to what was sent, audio
//! and video starting together); `?record=` chooses per publish.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    helpers::{spawn_app, TestApp},
    rtc::{self, Media, PublishOptions},
    webhooks,
    whip_whep::{streamer, wait_stream},
};

/// (status, file path, reason) of every recording row, oldest first.
async fn recordings(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let pool = ferrocast::db::open(&app.data_dir).await.expect("open db");
    let rows = sqlx::query_as::<_, (String, String, Option<String>)>(
        "SELECT status, path, reason FROM recordings ORDER BY started_at, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

pub(crate) async fn wait_recordings(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[(String, String, Option<String>)]) -> bool,
) -> Vec<(String, String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = recordings(app).await;
        if check(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    let output = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(path).output().expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Debian's ffmpeg decodes `path` to the end (its `-v error` output is what went wrong), frames
/// at the file's own times (at a guessed frame rate two close frames would share an output time).
fn decode(path: &Path) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .unwrap()
}

fn recording_file(app: &TestApp, path: &str) -> PathBuf {
    app.data_dir.join("recordings").join(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_vp8_and_opus_broadcast_becomes_a_webm_file_ffprobe_reads_whole() {
    let app = crate::helpers::spawn_app_with(webhooks::private_networks).await;
    let s = streamer(&app, "rec@example.com", json!({ "label": "rec", "streams": ["show"], "record": true })).await;
    // The recording.ready webhook says when the file is complete.
    let receiver = webhooks::Receiver::start().await;
    let (_, hook_secret) =
        webhooks::new_endpoint(&app, &s.client, json!({ "url": receiver.url(), "events": ["recording.ready"] })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_stream(&app, &s.account, "show", "live", |v| v["live"] == true).await;
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    let streams: serde_json::Value =
        s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams[0]["sources"][0]["recording"], true, "REC from the recorder: {streams}");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let ended = s.client.delete(app.url(&publisher.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "the recording is complete", |rows| rows[0].0 == "complete").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, None, "no reason: it ended with the broadcast");
    let file = recording_file(&app, &rows[0].1);
    let ready = receiver.wait_for(1, Duration::from_secs(10)).await;
    webhooks::assert_signed(&ready[0], &hook_secret);
    let ready = ready[0].json();
    assert_eq!((ready["type"].as_str(), ready["data"]["status"].as_str()), (Some("recording.ready"), Some("complete")));
    assert_eq!(ready["data"]["streamName"], "show");
    assert!(ready["data"]["bytes"].as_u64().unwrap() > 0, "{ready}");
    // The operator (the first account) sees what recordings take and what is left on their disk.
    let instance: serde_json::Value =
        s.client.get(app.url("/api/v1/admin/instance")).send().await.unwrap().json().await.unwrap();
    assert_eq!(instance["recordings"]["usedBytes"], ready["data"]["bytes"], "{instance}");
    assert!(instance["recordings"]["freeBytes"].as_u64().unwrap() > 0, "{instance}");

    let probe: serde_json::Value = serde_json::from_str(&ffprobe(
        &file,
        &["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames,start_time", "-of", "json"],
    ))
    .unwrap();
    let streams = probe["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "{probe}");
    let (video, audio) = (&streams[0], &streams[1]);
    let shape = (video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64());
    assert_eq!(shape, (Some("vp8"), Some(160), Some(120)), "{probe}");
    assert_eq!(audio["codec_name"], "opus", "{probe}");
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    // Published ~4 s; the file begins at the first keyframe (the clip has one a second).
    assert!((2.5..=5.0).contains(&duration), "duration {duration} s");
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).expect("a number");
    let frames = number(&video["nb_read_frames"]);
    assert!((frames - duration * 30.0).abs() <= 4.0, "{frames} frames in {duration} s at 30 fps: none lost");
    let (video_start, audio_start) = (number(&video["start_time"]), number(&audio["start_time"]));
    assert!(
        (video_start - audio_start).abs() <= 0.040,
        "audio and video start together: {video_start} / {audio_start}"
    );
    let decode = decode(&file);
    assert!(decode.stderr.is_empty(), "decodes without an error: {}", String::from_utf8_lossy(&decode.stderr));

    let streams: serde_json::Value =
        s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams, json!([]), "nothing live any more");

    // The API: the list, the file (ranges, download name), other accounts, deletion.
    let list: serde_json::Value =
        s.client.get(app.url("/api/v1/recordings")).send().await.unwrap().json().await.unwrap();
    let recording = &list[0];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(recording["streamName"], "show");
    assert_eq!(recording["status"], "complete");
    assert_eq!((recording["videoCodec"].as_str(), recording["audioCodec"].as_str()), (Some("vp8"), Some("opus")));
    assert_eq!((recording["width"].as_u64(), recording["height"].as_u64()), (Some(160), Some(120)));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(recording["bytes"].as_u64(), Some(bytes.len() as u64));
    let file_url = app.url(recording["fileUrl"].as_str().unwrap());
    let whole = s.client.get(&file_url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert!(whole.headers().contains_key("etag"));
    assert_eq!(whole.bytes().await.unwrap(), bytes);
    let part = s.client.get(&file_url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), bytes[100..200]);
    let download = s.client.get(format!("{file_url}?download=1")).send().await.unwrap();
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"show-") && disposition.ends_with(".webm\""),
        "{disposition}"
    );

    let other = streamer(&app, "other@example.com", json!({ "label": "o", "streams": ["x"] })).await;
    let id = recording["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/api/v1/recordings/{id}")),
        ("GET", format!("/api/v1/recordings/{id}/file")),
        ("DELETE", format!("/api/v1/recordings/{id}")),
    ] {
        let response = other.client.request(method.parse().unwrap(), app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path} from another account");
    }
    let anonymous = app.client().get(&file_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let deleted = s.client.delete(app.url(&format!("/api/v1/recordings/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(!file.exists(), "the file is gone");
    let list: serde_json::Value =
        s.client.get(app.url("/api/v1/recordings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_0_records_nothing_and_record_1_needs_a_token_that_allows_it() {
    let app = spawn_app().await;
    let s = streamer(&app, "norec@example.com", json!({ "label": "r", "streams": ["*"], "record": true })).await;
    let publisher = rtc::publish(&app, PublishOptions::new(&s.token, "quiet?record=0")).await.expect("publish");
    wait_stream(&app, &s.account, "quiet", "live", |v| v["live"] == true).await;
    let streams: serde_json::Value =
        s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams[0]["sources"][0]["recording"], false, "{streams}");
    drop(publisher);

    let plain = streamer(&app, "plain@example.com", json!({ "label": "p", "streams": ["*"] })).await;
    let refused = rtc::publish(&app, PublishOptions::new(&plain.token, "x?record=1")).await.err().expect("refused");
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("does not allow recording"), "{}", refused.body);
    let bad = rtc::publish(&app, PublishOptions::new(&s.token, "x?record=yes")).await.err().expect("refused");
    assert_eq!(bad.status, 400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(recordings(&app).await.is_empty(), "nothing was recorded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seamless_replacement_continues_the_same_recording() {
    let app = spawn_app().await;
    let s = streamer(&app, "swap@example.com", json!({ "label": "swap", "streams": ["show"], "record": true })).await;
    let clip = || {
        let mut options = PublishOptions::new(&s.token, "show");
        options.media = Media::Clip;
        options
    };
    let first = rtc::publish(&app, clip()).await.expect("publish");
    wait_stream(&app, &s.account, "show", "live", |v| v["live"] == true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The same encoder comes back (a new session for the same source): it takes over.
    let second = rtc::publish(&app, clip()).await.expect("replacement");
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(first);
    let ended = s.client.delete(app.url(&second.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "the recording is complete", |rows| rows.iter().all(|r| r.0 == "complete")).await;
    assert_eq!(rows.len(), 1, "one recording across the replacement: {rows:?}");
    let file = recording_file(&app, &rows[0].1);
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!((4.0..=7.0).contains(&duration), "both feeds in one file: {duration} s");
    let decode = decode(&file);
    assert!(decode.stderr.is_empty(), "decodes without an error: {}", String::from_utf8_lossy(&decode.stderr));
    app.stop().await;
}

/// A server process that a failing test does not leave running.
pub(crate) struct ServerProcess(std::process::Child);

impl std::ops::Deref for ServerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the real binary on `data`; answers the process and its base URL.
pub(crate) fn start_binary(data: &Path) -> (ServerProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    command.args(["--listen", "127.0.0.1:0", "--signup", "open"]).arg("--data-dir").arg(data);
    spawn_server(command)
}

/// Starts the real binary with its recordings folder on a tmpfs of `size` that only it sees (a
/// mount namespace of its own): the test reaches the folder through `/proc/{pid}/root`.
fn start_binary_on_small_disk(data: &Path, size: &str, min_free: &str) -> (ServerProcess, String, PathBuf) {
    let folder = data.join("recordings");
    std::fs::create_dir_all(&folder).unwrap();
    let mut command = Command::new("unshare");
    if !is_root() {
        command.arg("-r");
    }
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@""#)
        .args(["sh", size])
        .arg(&folder)
        .arg(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--signup", "open", "--recordings-min-free", min_free])
        .arg("--data-dir")
        .arg(data);
    let (child, base) = spawn_server(command);
    let seen = PathBuf::from(format!("/proc/{}/root", child.id())).join(folder.strip_prefix("/").unwrap());
    (child, base, seen)
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

pub(crate) fn spawn_server(mut command: Command) -> (ServerProcess, String) {
    use std::io::{BufRead, BufReader};
    let mut child = ServerProcess(
        command
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("ferrocast listening on ").expect("prints its address").to_owned();
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_kill_9_is_interrupted_and_plays_up_to_its_last_second() {
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base) = start_binary(data.path());
    let app = TestApp::running_at(base, data.path().to_owned());
    let s = streamer(&app, "crash@example.com", json!({ "label": "c", "streams": ["show"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.kill().unwrap(); // SIGKILL: no chance to finish anything
    server.wait().unwrap();
    let recorded = started.elapsed().as_secs_f64();
    drop(publisher);

    let (mut restarted, _) = start_binary(data.path());
    let rows = recordings(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "interrupted", "{rows:?}");
    assert!(rows[0].2.as_deref().is_some_and(|r| r.contains("stopped while recording")), "{rows:?}");
    let file = data.path().join("recordings").join(&rows[0].1);
    let frames: f64 = ffprobe(
        &file,
        &["-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"],
    )
    .trim()
    .parse()
    .expect("a frame count");
    // The file begins at the first keyframe (≤ 1 s in) and loses at most the last open cluster.
    assert!(frames >= (recorded - 2.0) * 30.0, "{frames} frames readable after {recorded:.1} s of recording");
    let decode = decode(&file);
    assert!(decode.status.success(), "ffmpeg reads it to the end: {}", String::from_utf8_lossy(&decode.stderr));
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_finishes_its_recordings_as_complete() {
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base) = start_binary(data.path());
    let app = TestApp::running_at(base, data.path().to_owned());
    let s = streamer(&app, "term@example.com", json!({ "label": "t", "streams": ["show"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let term = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(term.success());
    let exited = server.wait().unwrap();
    assert!(exited.success(), "a clean exit: {exited}");
    drop(publisher);

    // Read before any restart: the stopping server itself said it is complete.
    let rows = recordings(&app).await;
    assert_eq!(rows[0].0, "complete", "{rows:?}");
    assert!(rows[0].2.as_deref().is_some_and(|r| r.contains("server was stopped")), "{rows:?}");
    let file = data.path().join("recordings").join(&rows[0].1);
    // Finished: the cues a player seeks with are written at the end (a file cut off has none).
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.windows(4).any(|w| w == [0x1c, 0x53, 0xbb, 0x6b]), "the file ends with its cues");
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!(duration >= 1.5, "{duration} s recorded");
}

/// The API's view of an account's recordings.
async fn listed(s: &crate::whip_whep::Streamer, app: &TestApp) -> Vec<serde_json::Value> {
    s.client.get(app.url("/api/v1/recordings")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_minimum_free_space_recordings_end_playable_and_new_ones_are_refused() {
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base, folder) = start_binary_on_small_disk(data.path(), "4m", "1MiB");
    let app = TestApp::running_at(base, data.path().to_owned());
    let s = streamer(&app, "full@example.com", json!({ "label": "f", "streams": ["*"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Something else fills the disk until less than the minimum is left.
    let free = free_space(&folder);
    std::fs::write(folder.join("filler"), vec![1u8; (free - 512 * 1024) as usize]).unwrap();
    let rows = wait_recordings(&app, "the recording ends", |rows| rows[0].0 != "recording").await;
    assert_eq!(rows[0].0, "complete", "{rows:?}");
    let reason = rows[0].2.clone().unwrap_or_default();
    assert!(reason.contains("less than the 1 MiB"), "{reason}");
    let file = folder.join(&rows[0].1);
    let decode = decode(&file);
    assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
    let streams: serde_json::Value =
        s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams[0]["sources"][0]["recording"], false, "REC is off: {streams}");
    assert_eq!(streams[0]["live"], true, "the broadcast goes on: {streams}");

    // A new broadcast is not recorded, and its row says why.
    let mut options = PublishOptions::new(&s.token, "second");
    options.media = Media::Clip;
    let second = rtc::publish(&app, options).await.expect("publish");
    let rows = wait_recordings(&app, "the refusal is noted", |rows| rows.len() == 2 && rows[1].0 != "recording").await;
    assert_eq!(rows[1].0, "failed", "{rows:?}");
    assert!(rows[1].2.as_deref().is_some_and(|r| r.starts_with("not recorded: the recordings disk has")), "{rows:?}");
    let api = listed(&s, &app).await;
    assert!(api
        .iter()
        .any(|r| r["status"] == "failed" && r["reason"].as_str().unwrap().contains("--recordings-min-free")));
    drop((publisher, second));
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_full_disk_refuses_ends_that_one_recording_with_a_playable_file() {
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base, folder) = start_binary_on_small_disk(data.path(), "2m", "0");
    let app = TestApp::running_at(base, data.path().to_owned());
    let s = streamer(&app, "enospc@example.com", json!({ "label": "e", "streams": ["*"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Leave almost nothing: the next cluster cannot be written.
    let free = free_space(&folder);
    let filler = folder.join("filler");
    std::fs::write(&filler, vec![1u8; free.saturating_sub(2048) as usize]).unwrap();
    let rows = wait_recordings(&app, "the recording ends", |rows| rows[0].0 != "recording").await;
    assert_eq!(rows[0].0, "complete", "{rows:?}");
    assert!(rows[0].2.as_deref().is_some_and(|r| r.contains("refused a write")), "{rows:?}");
    let file = folder.join(&rows[0].1);
    let decode = decode(&file);
    assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!(duration >= 1.5, "what was written before stays: {duration} s");
    // Nothing else stopped: the server answers and the broadcast is live.
    wait_stream(&app, &s.account, "show", "still live", |v| v["live"] == true).await;
    drop(publisher);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Free bytes on `folder`'s file system (statfs of the path itself: `df` would look the mount
/// up in the test's own mount namespace).
fn free_space(folder: &Path) -> u64 {
    let out = Command::new("stat").args(["-f", "-c", "%a %S"]).arg(folder).output().expect("stat runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().expect("stat prints numbers"));
    numbers.next().unwrap() * numbers.next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_percent_video_loss_still_decodes_to_the_end_and_the_recorder_asks_for_keyframes() {
    let app = spawn_app().await;
    let s = streamer(&app, "lossy@example.com", json!({ "label": "l", "streams": ["show"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Clip;
    options.lose_video = Some(50);
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // No viewer watches: every keyframe request the publisher got came from the recorder.
    let asked = publisher.keyframe_requests.load(std::sync::atomic::Ordering::Relaxed);
    let ended = s.client.delete(app.url(&publisher.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "the recording is complete", |rows| rows[0].0 == "complete").await;
    let file = recording_file(&app, &rows[0].1);
    let decode = decode(&file);
    assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!(duration >= 6.0, "the file covers the broadcast: {duration} s");
    // One at the start, then after losses (at most one a second): more than the first.
    assert!(asked >= 2, "the recorder asked for keyframes after losses: {asked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_h264_and_opus_broadcast_becomes_a_fragmented_mp4_ffprobe_reads_whole() {
    let app = spawn_app().await;
    let s = streamer(&app, "avc@example.com", json!({ "label": "avc", "streams": ["show"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::H264Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ended = s.client.delete(app.url(&publisher.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "the recording is complete", |rows| rows[0].0 == "complete").await;
    assert!(rows[0].1.ends_with(".mp4"), "H.264 is written as MP4: {rows:?}");
    let file = recording_file(&app, &rows[0].1);

    let probe: serde_json::Value = serde_json::from_str(&ffprobe(
        &file,
        &["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames,start_time", "-of", "json"],
    ))
    .unwrap();
    let streams = probe["streams"].as_array().expect("streams");
    let (video, audio) = (&streams[0], &streams[1]);
    let shape = (video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64());
    assert_eq!(shape, (Some("h264"), Some(320), Some(240)), "{probe}");
    assert_eq!(audio["codec_name"], "opus", "{probe}");
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!((3.5..=6.0).contains(&duration), "duration {duration} s");
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).expect("a number");
    let frames = number(&video["nb_read_frames"]);
    assert!((frames - duration * 30.0).abs() <= 4.0, "{frames} frames in {duration} s at 30 fps: none lost");
    let (video_start, audio_start) = (number(&video["start_time"]), number(&audio["start_time"]));
    assert!((video_start - audio_start).abs() <= 0.040, "start together: {video_start} / {audio_start}");
    let decode = decode(&file);
    assert!(decode.stderr.is_empty(), "decodes without an error: {}", String::from_utf8_lossy(&decode.stderr));

    let list: serde_json::Value =
        s.client.get(app.url("/api/v1/recordings")).send().await.unwrap().json().await.unwrap();
    let recording = &list[0];
    assert_eq!(recording["container"], "mp4");
    assert_eq!((recording["videoCodec"].as_str(), recording["audioCodec"].as_str()), (Some("h264"), Some("opus")));
    assert_eq!((recording["width"].as_u64(), recording["height"].as_u64()), (Some(320), Some(240)));
    let whole = s.client.get(app.url(recording["fileUrl"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    let download = s.client.get(app.url(&format!("{}?download=1", recording["fileUrl"].as_str().unwrap()))).send();
    let disposition = download.await.unwrap().headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.ends_with(".mp4\""), "{disposition}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_vp9_and_opus_broadcast_becomes_a_webm_file_ffprobe_reads_whole() {
    let app = spawn_app().await;
    let s = streamer(&app, "vp9@example.com", json!({ "label": "vp9", "streams": ["show"], "record": true })).await;
    let mut options = PublishOptions::new(&s.token, "show");
    options.media = Media::Vp9Clip;
    let publisher = rtc::publish(&app, options).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ended = s.client.delete(app.url(&publisher.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "the recording is complete", |rows| rows[0].0 == "complete").await;
    assert!(rows[0].1.ends_with(".webm"), "{rows:?}");
    let file = recording_file(&app, &rows[0].1);
    let probe: serde_json::Value = serde_json::from_str(&ffprobe(
        &file,
        &["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames,start_time", "-of", "json"],
    ))
    .unwrap();
    let streams = probe["streams"].as_array().expect("streams");
    let (video, audio) = (&streams[0], &streams[1]);
    let shape = (video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64());
    assert_eq!(shape, (Some("vp9"), Some(320), Some(240)), "{probe}");
    assert_eq!(audio["codec_name"], "opus", "{probe}");
    let duration: f64 =
        ffprobe(&file, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
    assert!((3.5..=6.0).contains(&duration), "duration {duration} s");
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).expect("a number");
    let frames = number(&video["nb_read_frames"]);
    assert!((frames - duration * 30.0).abs() <= 4.0, "{frames} frames in {duration} s at 30 fps: none lost");
    let decode = decode(&file);
    assert!(decode.stderr.is_empty(), "decodes without an error: {}", String::from_utf8_lossy(&decode.stderr));
    let list: serde_json::Value =
        s.client.get(app.url("/api/v1/recordings")).send().await.unwrap().json().await.unwrap();
    assert_eq!((list[0]["container"].as_str(), list[0]["videoCodec"].as_str()), (Some("webm"), Some("vp9")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_with_another_codec_goes_on_in_a_new_recording() {
    let app = spawn_app().await;
    let s = streamer(&app, "switch@example.com", json!({ "label": "sw", "streams": ["show"], "record": true })).await;
    let mut vp8 = PublishOptions::new(&s.token, "show");
    vp8.media = Media::Clip;
    let first = rtc::publish(&app, vp8).await.expect("publish");
    wait_recordings(&app, "a recording starts", |rows| rows.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The same source comes back from an encoder set to H.264: it takes over.
    let mut h264 = PublishOptions::new(&s.token, "show");
    h264.media = Media::H264Clip;
    let second = rtc::publish(&app, h264).await.expect("replacement");
    wait_recordings(&app, "the first ends and a second records", |rows| {
        rows.len() == 2 && rows.iter().any(|r| r.0 == "complete") && rows.iter().any(|r| r.0 == "recording")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let streams: serde_json::Value =
        s.client.get(app.url("/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    assert_eq!(streams[0]["sources"][0]["recording"], true, "REC stays on across the change: {streams}");
    drop(first);
    let ended = s.client.delete(app.url(&second.session.location)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(ended.status(), 200);
    let rows = wait_recordings(&app, "both complete", |rows| rows.iter().all(|r| r.0 == "complete")).await;
    let webm = rows.iter().find(|r| r.1.ends_with(".webm")).expect("the VP8 part is WebM");
    let mp4 = rows.iter().find(|r| r.1.ends_with(".mp4")).expect("the H.264 part is MP4");
    assert!(webm.2.as_deref().is_some_and(|r| r.contains("from VP8 to H.264")), "{rows:?}");
    assert_eq!(mp4.2, None, "the second ended with the broadcast: {rows:?}");
    for (file, codec) in [(&webm.1, "vp8"), (&mp4.1, "h264")] {
        let path = recording_file(&app, file);
        let found = ffprobe(&path, &["-select_streams", "v", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]);
        assert_eq!(found.trim(), codec);
        let duration: f64 =
            ffprobe(&path, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().expect("a duration");
        assert!(duration >= 1.5, "{file}: {duration} s");
        let decode = decode(&path);
        assert!(decode.stderr.is_empty(), "{file}: {}", String::from_utf8_lossy(&decode.stderr));
    }
    app.stop().await;
}
