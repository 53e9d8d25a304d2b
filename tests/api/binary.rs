//! The `ferrocast` binary itself: flags, environment, health and a clean exit on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_flags_and_env_and_stops_cleanly_on_sigterm() {
    let data = tempfile::TempDir::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--signup", "closed"])
        .env("FERROCAST_DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("ferrocast listening on ").expect("prints its address").to_owned();

    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(data.path().join(ferrocast::db::DATABASE_FILE).exists(), "FERROCAST_DATA_DIR was used");
    let signup = client
        .post(format!("{base}/api/v1/signup"))
        .json(&serde_json::json!({ "email": "a@example.com", "password": "password123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 403, "--signup closed was applied");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit: {status:?}");
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocast")).args(["--signup", "maybe"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--signup"));
}
