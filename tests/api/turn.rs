//! TURN with time-limited credentials: Debian's coturn with `use-auth-secret` accepts the
//! credentials the WHIP answer's `Link` header carries, and a publisher that may only use the
//! relay (`iceTransportPolicy: relay`) goes live through it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ferrocast::sfu::IceServer;
use serde_json::json;

use crate::{
    helpers::{bound_udp_v4, free_port, spawn_app_with},
    rtc::{self, PublishOptions, RelayOnly},
    whip_whep::{signal_only_publish, streamer, wait_stream},
};

const TURNSERVER: &str = "/usr/bin/turnserver";
const SECRET: &str = "test-turn-secret";

/// coturn on loopback, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Coturn {
    fn start() -> Coturn {
        assert!(Path::new(TURNSERVER).exists(), "{TURNSERVER} is missing: `scripts/setup.sh --test` installs coturn");
        let dir = tempfile::TempDir::new().unwrap();
        let port = free_port();
        // A relay port range of its own, away from the ephemeral ports other tests take.
        let min = 20_000 + (port % 200) * 50;
        let child = Command::new(TURNSERVER)
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers"])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={min}"))
            .arg(format!("--max-port={}", min + 49))
            .args(["--use-auth-secret", &format!("--static-auth-secret={SECRET}"), "--realm=ferrocast.test"])
            .args(["--no-tls", "--no-dtls", "--no-cli", "--no-software-attribute", "--simple-log", "--verbose"])
            .arg(format!("--pidfile={}", dir.path().join("turnserver.pid").display()))
            .arg(format!("--userdb={}", dir.path().join("turndb").display()))
            .arg(format!("--log-file={}", dir.path().join("turn.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let mut coturn = Coturn { child, port, _dir: dir };
        // It listens on UDP: wait until the socket is there (bounded).
        let started = Instant::now();
        while !bound_udp_v4().contains(&std::net::SocketAddr::from(([127, 0, 0, 1], port))) {
            assert!(coturn.child.try_wait().unwrap().is_none(), "turnserver exited:\n{}", coturn.log());
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "turnserver did not listen in 10 s:\n{}",
                coturn.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        coturn
    }

    fn log(&self) -> String {
        // coturn adds the date to the file name it is given.
        std::fs::read_dir(self._dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("turn"))
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("turnserver's log:\n{}", self.log());
        }
    }
}

/// `username` and `credential` of the first `rel="ice-server"` Link naming `url`.
fn credentials_in(links: &[String], url: &str) -> Option<(String, String)> {
    let link = links.iter().find(|l| l.starts_with(&format!("<{url}>")) && l.contains("rel=\"ice-server\""))?;
    let param = |name: &str| {
        let start = link.find(&format!("{name}=\""))? + name.len() + 2;
        Some(link[start..start + link[start..].find('"')?].to_owned())
    };
    Some((param("username")?, param("credential")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_publisher_goes_live_through_coturn_with_credentials_from_the_link_header() {
    let coturn = Coturn::start();
    let url = format!("turn:127.0.0.1:{}?transport=udp", coturn.port);
    let app = spawn_app_with(|c| {
        c.ice_servers = vec![IceServer { url: url.clone(), username: None, credential: None }];
        c.turn_secret = Some(SECRET.into());
    })
    .await;
    let s = streamer(&app, "turn@example.com", json!({ "label": "t", "streams": ["main", "probe"] })).await;

    // The credentials a page would get: from a WHIP answer's Link header.
    let probe = signal_only_publish(&app, &s.token, "probe").await;
    let links: Vec<String> = probe.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let (username, credential) =
        credentials_in(&links, &url).unwrap_or_else(|| panic!("TURN credentials in {links:?}"));
    let expiry: u64 = username.split_once(':').expect("expiry:tag").0.parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(expiry > now + 3500 && expiry <= now + 3601, "valid for the default hour: {username}");
    assert!(!links.iter().any(|l| l.contains(SECRET)), "the secret itself never leaves the server");

    let relay = RelayOnly { url: url.clone(), username: username.clone(), credential };
    let publisher = rtc::publish(&app, PublishOptions { relay: Some(relay), ..PublishOptions::new(&s.token, "main") })
        .await
        .expect("publish through the relay");
    wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.expect("view");
    viewer.wait_for("video relayed by coturn", |v| v.video(0).is_some_and(|t| t.frames().len() >= 5)).await;
    assert!(publisher.is_connected());
    // coturn accepted this very username (its log names the user of each allocation it made).
    let log = coturn.log();
    assert!(log.contains(&format!("username=<{username}>")) && log.contains("ALLOCATE processed, success"), "{log}");
    app.stop().await;
}
