//! Abuse, faults and malformed input (issue 14): each weakness found, shown to be closed.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{spawn_app, TestApp};

/// POSTs to `path` over a raw connection: the head, then up to 4 MB of body (stopping when the
/// server stops reading); answers the response's status line and body. A server that refuses
/// early answers before the body is sent, which an HTTP client library reports as a write error.
async fn raw_post(app: &TestApp, path: &str, content_type: &str, chunked: bool) -> (String, String) {
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let length = 4 << 20;
    let framing = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {length}") };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..length / block.len() {
            let sent = if chunked {
                let mut chunk = format!("{:x}\r\n", block.len()).into_bytes();
                chunk.extend_from_slice(&block);
                chunk.extend_from_slice(b"\r\n");
                writer.write_all(&chunk).await
            } else {
                writer.write_all(&block).await
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut response)).await;
    send.abort();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413_on_every_door_not_a_500() {
    let app = spawn_app().await;
    let form = "application/x-www-form-urlencoded";
    for (path, content_type) in [
        ("/rpc/login", form),
        ("/api/v1/login", "application/json"),
        ("/tokens/new", form),
        ("/whip/show", "application/sdp"),
    ] {
        for chunked in [false, true] {
            let (status, body) = raw_post(&app, path, content_type, chunked).await;
            assert!(status.starts_with("HTTP/1.1 413"), "{path} (chunked: {chunked}): {status} {body}");
            assert!(body.contains("payload_too_large"), "{path}: {body}");
        }
    }
    // And the server goes on answering.
    assert_eq!(app.client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_verified_no_more_than_the_limit_allows() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "target@example.com").await;
    let client = app.client();
    let guesses = (0..60).map(|i| {
        let (client, url) = (client.clone(), app.url("/api/v1/login"));
        async move {
            let body = serde_json::json!({ "email": "target@example.com", "password": format!("guess number {i}") });
            client.post(url).json(&body).send().await.unwrap().status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(verified + refused, 60, "{statuses:?}");
    assert!(verified <= ferrocast::server::accounts::LOGIN_FAILURES_PER_ACCOUNT, "{verified} guesses were checked");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_cancelled_while_its_password_is_checked_counts_as_a_failure() {
    let app = spawn_app().await;
    app.sign_up(&app.client(), "patient@example.com").await;
    let body = |password: &str| serde_json::json!({ "email": "patient@example.com", "password": password });
    // How long one check takes here, so the cancelled ones give up in the middle of theirs.
    let started = std::time::Instant::now();
    let wrong = app.client().post(app.url("/api/v1/login")).json(&body("not it")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let check = started.elapsed();
    // Argon2 here takes ~15-30 ms depending on load; half of it is well inside the check and
    // well after the request reached the server.
    assert!(check >= Duration::from_millis(10), "a password check takes {check:?}: too quick to cancel in its middle");
    let impatient = reqwest::Client::builder().timeout(check / 2).build().unwrap();
    // One failure above, and these use up the rest of the limit.
    for i in 1..ferrocast::server::accounts::LOGIN_FAILURES_PER_ACCOUNT {
        let sent = impatient.post(app.url("/api/v1/login")).json(&body(&format!("guess {i}"))).send().await;
        assert!(sent.is_err(), "the client gave up before the answer");
    }
    tokio::time::sleep(check * 2).await;
    // Every cancelled guess counted: even the right password must wait now.
    let right = app.client().post(app.url("/api/v1/login")).json(&body(crate::helpers::PASSWORD)).send().await.unwrap();
    assert_eq!(right.status(), 429);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_from_one_address_are_limited() {
    let app = spawn_app().await;
    let limit = ferrocast::server::accounts::SIGNUPS_PER_ADDRESS;
    let sign_up = |n: usize| {
        let body = serde_json::json!({ "email": format!("many{n}@example.com"), "password": crate::helpers::PASSWORD });
        app.client().post(app.url("/api/v1/signup")).json(&body).send()
    };
    for n in 0..limit {
        assert_eq!(sign_up(n).await.unwrap().status(), 201, "sign-up {n}");
    }
    let refused = sign_up(limit).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(app.count("accounts").await, limit as i64, "the refused one wrote nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_that_never_connect_cannot_keep_real_viewers_out() {
    let app = crate::helpers::spawn_app_with(|c| c.max_viewers_per_stream = 2).await;
    let s =
        crate::whip_whep::streamer(&app, "busy@example.com", serde_json::json!({ "label": "b", "streams": ["main"] }))
            .await;
    let _publisher = crate::rtc::publish(&app, crate::rtc::PublishOptions::new(&s.token, "main")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let whep = format!("/whep/{}/main", s.account);

    // Another address posts offers and never does ICE: a few wait their turn, the rest are refused.
    let flood = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let offer = crate::whip_whep::offer_with(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
    );
    let mut statuses = Vec::new();
    for _ in 0..ferrocast::sfu::PENDING_VIEWERS_PER_ADDRESS + 8 {
        let response =
            flood.post(app.url(&whep)).header("content-type", "application/sdp").body(offer.clone()).send().await;
        statuses.push(response.unwrap().status().as_u16());
    }
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(accepted, ferrocast::sfu::PENDING_VIEWERS_PER_ADDRESS, "one address's connecting viewers: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 503), "{statuses:?}");

    // Real viewers from elsewhere connect and play up to the stream's cap of two.
    let mut watching = Vec::new();
    for _ in 0..2 {
        let viewer = crate::rtc::view(&app, &whep, 1).await.expect("a real viewer is let in");
        viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;
        watching.push(viewer); // stays connected for the cap below
    }
    let third = crate::rtc::view(&app, &whep, 1).await.err().expect("the cap counts connected viewers");
    assert_eq!(third.status, 503);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_does_not_keep_the_server_from_stopping() {
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base) = crate::recording::start_binary(data.path());
    let address = base.trim_start_matches("http://").to_owned();
    // A request whose body never comes: it is in flight when the stop signal arrives.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    let term = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = asked + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running 20 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "a clean exit: {status}");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(13), "stopped within the grace: {took:?}");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_fail_api_calls_that_only_read() {
    let data = tempfile::TempDir::new().unwrap();
    // The data folder on a small tmpfs of the server's own (a mount namespace).
    let mut command = std::process::Command::new("unshare");
    if !crate::recording::is_root() {
        command.arg("-r");
    }
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=16m tmpfs "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(data.path())
        .arg(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--signup", "open", "--recordings-min-free", "0", "--data-dir"])
        .arg(data.path());
    let (server, base) = crate::recording::spawn_server(command);
    let seen =
        std::path::PathBuf::from(format!("/proc/{}/root", server.id())).join(data.path().strip_prefix("/").unwrap());
    let app = TestApp::running_at(base, data.path().to_owned());
    let client = app.client();
    app.sign_up(&client, "full@example.com").await;
    let created: serde_json::Value =
        app.post_json(&client, "/api/v1/api-keys", serde_json::json!({ "label": "k" })).await.json().await.unwrap();
    let key = created["secret"].as_str().unwrap().to_owned();
    // Something else fills the disk.
    let mut filler = std::fs::File::create(seen.join("filler")).unwrap();
    let block = vec![1u8; 1 << 20];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    let listed = reqwest::Client::new().get(app.url("/api/v1/tokens")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(listed.status(), 200, "reading needs no write: {}", listed.text().await.unwrap());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_patch_carries_a_bounded_number_of_candidates() {
    let app = spawn_app().await;
    let s = crate::whip_whep::streamer(
        &app,
        "trickle@example.com",
        serde_json::json!({ "label": "t", "streams": ["main"] }),
    )
    .await;
    let _publisher = crate::rtc::publish(&app, crate::rtc::PublishOptions::new(&s.token, "main")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let offer = crate::whip_whep::offer_with(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
    );
    let client = app.client();
    let created = client
        .post(app.url(&format!("/whep/{}/main", s.account)))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let session = created.headers()["location"].to_str().unwrap().to_owned();
    let fragment = |count: usize| {
        let mut body =
            "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
                .to_owned();
        for i in 0..count {
            body.push_str(&format!("a=candidate:{i} 1 udp 2122260223 127.0.0.1 {} typ host\r\n", 40000 + i));
        }
        body
    };
    let patch = |body: String| {
        client.patch(app.url(&session)).header("content-type", "application/trickle-ice-sdpfrag").body(body).send()
    };
    let many = patch(fragment(ferrocast::sfu::offer::MAX_CANDIDATES_PER_FRAGMENT + 1)).await.unwrap();
    assert_eq!(many.status(), 400);
    assert!(many.text().await.unwrap().contains("at most 64 candidates"));
    let enough = patch(fragment(ferrocast::sfu::offer::MAX_CANDIDATES_PER_FRAGMENT)).await.unwrap();
    assert_eq!(enough.status(), 204, "{}", enough.text().await.unwrap());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_token_or_logging_out_revokes_its_publish_grants() {
    let app = spawn_app().await;
    let s = crate::whip_whep::streamer(
        &app,
        "grants@example.com",
        serde_json::json!({ "label": "g", "streams": ["main"] }),
    )
    .await;
    let mint = || async {
        let minted = app
            .post_json(
                &s.client,
                &format!("/api/v1/tokens/{}/grants", s.token_id),
                serde_json::json!({ "streamName": "main" }),
            )
            .await;
        assert_eq!(minted.status(), 201);
        minted.json::<serde_json::Value>().await.unwrap()["grant"].as_str().unwrap().to_owned()
    };
    let shared = &app;
    let refused = |grant: String| async move {
        crate::rtc::publish(shared, crate::rtc::PublishOptions::new(&grant, "main")).await.err().map(|r| r.status)
    };
    let before_rotation = mint().await;
    let rotated =
        app.post_json(&s.client, &format!("/api/v1/tokens/{}/rotate", s.token_id), serde_json::json!({})).await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(refused(before_rotation).await, Some(401), "rotation revokes the token's grants");
    let before_logout = mint().await;
    let out = app.post_json(&s.client, "/api/v1/logout", serde_json::json!({})).await;
    assert_eq!(out.status(), 204);
    assert_eq!(refused(before_logout).await, Some(401), "logging out revokes the session's grants");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_takes_the_whole_open_files_limit_it_is_allowed() {
    let data = tempfile::TempDir::new().unwrap();
    // Started with the soft limit far below the hard one, as a shell's default would.
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", r#"ulimit -S -n 256 && exec "$@""#, "sh"])
        .arg(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--signup", "open", "--data-dir"])
        .arg(data.path());
    let (server, _) = crate::recording::spawn_server(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("a limits line").to_owned();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    assert_ne!(numbers[0], "256", "{line}");
    drop(server);
}

/// Opens `GET path` from `from` over a raw connection and reads the response head: the status,
/// and the connection (held open: a feed lives as long as it) when the status is 200.
async fn open_feed(server: &str, from: std::net::Ipv4Addr, path: &str) -> (u16, Option<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(5), socket.connect(server.parse().unwrap())).await
    else {
        return (0, None);
    };
    let head = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return (0, None);
    }
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            _ => return (0, None),
        }
    }
    let status = String::from_utf8_lossy(&received).split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status = status.unwrap_or(0);
    (status, (status == 200).then_some(stream))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_feeds_are_capped_and_every_other_route_keeps_answering() {
    let data = tempfile::TempDir::new().unwrap();
    // The usual soft limit, and no hard limit above it to raise it to.
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", r#"ulimit -S -n 1024 && ulimit -H -n 1024 && exec "$@""#, "sh"])
        .arg(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--signup", "open", "--data-dir"])
        .arg(data.path());
    let (server, base) = crate::recording::spawn_server(command);
    let app = TestApp::running_at(base.clone(), data.path().to_owned());
    let s =
        crate::whip_whep::streamer(&app, "feeds@example.com", serde_json::json!({ "label": "f", "streams": ["main"] }))
            .await;
    let address = base.trim_start_matches("http://").to_owned();
    let path = format!("/api/v1/streams/{}/main/events", s.account);

    // More feeds than the server has descriptors, from 20 addresses (each under its own cap).
    let mut held = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..1100u32 {
        let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % 20) as u8);
        let (status, feed) = open_feed(&address, from, &path).await;
        *statuses.entry(status).or_default() += 1;
        held.extend(feed);
    }
    assert_eq!(statuses.get(&200), Some(&512), "half the open-files limit: {statuses:?}");
    assert_eq!(statuses.get(&503), Some(&588), "the rest are refused, not left hanging: {statuses:?}");

    // While they are held, the rest of the server answers.
    let health = app.client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.client().get(app.url("/login")).send().await.unwrap().status(), 200);
    let one = app.client().get(app.url(&format!("/api/v1/streams/{}/main", s.account))).send().await.unwrap();
    assert_eq!(one.status(), 200);

    // A dropped feed gives its place back.
    held.truncate(500);
    let mut reopened = None;
    for _ in 0..50 {
        let (status, feed) = open_feed(&address, std::net::Ipv4Addr::new(127, 0, 1, 99), &path).await;
        if status == 200 {
            reopened = feed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a place freed by a closed feed is given again");
    drop(held);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_a_bounded_number_of_feeds_and_unknown_streams_get_none() {
    let app = spawn_app().await;
    let s =
        crate::whip_whep::streamer(&app, "few@example.com", serde_json::json!({ "label": "f", "streams": ["main"] }))
            .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let from = std::net::Ipv4Addr::new(127, 0, 2, 1);
    let path = format!("/api/v1/streams/{}/main/events", s.account);
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..ferrocast::server::live::FEEDS_PER_ADDRESS + 3 {
        let (status, feed) = open_feed(&address, from, &path).await;
        statuses.push(status);
        held.extend(feed);
    }
    assert_eq!(held.len(), ferrocast::server::live::FEEDS_PER_ADDRESS, "{statuses:?}");
    assert_eq!(&statuses[held.len()..], &[429, 429, 429]);
    // Another address is not held back by this one.
    let (status, _other) = open_feed(&address, std::net::Ipv4Addr::new(127, 0, 2, 2), &path).await;
    assert_eq!(status, 200);

    for bad in ["/api/v1/streams/nosuchaccount/main/events", "/api/v1/streams/UPPER/main/events"] {
        let (status, _) = open_feed(&address, std::net::Ipv4Addr::new(127, 0, 2, 3), bad).await;
        assert_eq!(status, 404, "{bad}");
    }
    let bad_name = format!("/api/v1/streams/{}/bad%20name/events", s.account);
    assert_eq!(open_feed(&address, std::net::Ipv4Addr::new(127, 0, 2, 3), &bad_name).await.0, 404);
    let unknown = app.client().get(app.url("/api/v1/streams/nosuchaccount/main")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    drop(held);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_owned();

    // Slow-loris: a header line a second, never the blank line that ends them.
    let mut loris = TcpStream::connect(&address).await.unwrap();
    loris.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let closed = async {
        let mut buffer = [0u8; 256];
        for i in 0.. {
            if loris.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await.is_err() {
                return;
            }
            if let Ok(read) = tokio::time::timeout(Duration::from_secs(1), loris.read(&mut buffer)).await {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), closed).await.expect("a slow-loris connection is closed");
    let took = started.elapsed();
    let limit = ferrocast::server::transport::serve::HEADER_READ_TIMEOUT;
    assert!(took >= limit - Duration::from_secs(1) && took < limit + Duration::from_secs(5), "closed after {took:?}");

    // A body that stalls halfway is answered 408, not held.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), slow.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "a stalled body is not held forever");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");

    // Meanwhile, and after, the server answers everyone else.
    assert_eq!(app.client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    app.stop().await;
}

/// The session id at the end of a session URL.
fn session_id(location: &str) -> &str {
    location.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_viewers_packets_ends_that_viewer_only() {
    use crate::rtc;
    let app = spawn_app().await;
    let s =
        crate::whip_whep::streamer(&app, "pv@example.com", serde_json::json!({ "label": "p", "streams": ["main"] }))
            .await;
    let _publisher = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "main")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let whep = format!("/whep/{}/main", s.account);
    let healthy = rtc::view(&app, &whep, 1).await.unwrap();
    let doomed = rtc::view(&app, &whep, 1).await.unwrap();
    for viewer in [&healthy, &doomed] {
        viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;
    }
    ferrocast::sfu::fault::panic_on_packets(session_id(&doomed.session.location));

    // The doomed viewer's session is gone; the other keeps playing, the stream stays live.
    let gone = async {
        loop {
            let patch = app
                .client()
                .patch(app.url(&doomed.session.location))
                .header("content-type", "application/trickle-ice-sdpfrag")
                .body("a=end-of-candidates\r\n")
                .send()
                .await
                .unwrap();
            if patch.status() == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone).await.expect("the panicking viewer is dropped");
    let before = healthy.video(0).unwrap().packets.len();
    healthy.wait_for("more video", |v| v.video(0).is_some_and(|t| t.packets.len() >= before + 30)).await;
    assert_eq!(crate::whip_whep::public_stream(&app, &s.account, "main").await["live"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_a_publishers_packet_or_offer_ends_that_publisher_only() {
    use crate::rtc;
    let app = spawn_app().await;
    let s =
        crate::whip_whep::streamer(&app, "pp@example.com", serde_json::json!({ "label": "p", "streams": ["*"] })).await;
    let doomed = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "doomed")).await.unwrap();
    let _other = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "other")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "doomed", "live", |v| v["live"] == true).await;
    crate::whip_whep::wait_stream(&app, &s.account, "other", "live", |v| v["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/other", s.account), 1).await.unwrap();
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;

    ferrocast::sfu::fault::panic_on_packets(session_id(&doomed.session.location));
    crate::whip_whep::wait_stream(&app, &s.account, "doomed", "offline", |v| v["live"] == false).await;
    let before = viewer.video(0).unwrap().packets.len();
    viewer.wait_for("more video", |v| v.video(0).is_some_and(|t| t.packets.len() >= before + 30)).await;

    // An offer whose parsing panics is refused (400) and nothing else notices.
    ferrocast::sfu::fault::panic_on_offer(&format!("{}/broken", s.account));
    let refused = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "broken")).await.err().expect("refused");
    assert_eq!(refused.status, 400, "{}", refused.body);
    let again = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "fine")).await.expect("the next offer is taken");
    crate::whip_whep::wait_stream(&app, &s.account, "fine", "live", |v| v["live"] == true).await;
    drop(again);
    let before = viewer.video(0).unwrap().packets.len();
    viewer.wait_for("still more video", |v| v.video(0).is_some_and(|t| t.packets.len() >= before + 30)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_dies_stops_the_server_with_an_error() {
    let mut app = spawn_app().await;
    assert_eq!(app.client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    ferrocast::sfu::fault::panic_engine(app.rtc_addrs[0]);
    let ended = app.ended_by_itself(Duration::from_secs(10)).await.expect("the server stops by itself");
    let err = ended.expect_err("it stops with an error (the binary exits non-zero)");
    assert!(err.to_string().contains("media engine died"), "{err}");
}

/// A WHIP offer that never connects: enough to hold a feed's place until the connect timeout.
async fn post_publish(app: &TestApp, token: &str, stream: &str, from: std::net::Ipv4Addr) -> reqwest::Response {
    let offer = crate::whip_whep::offer_with(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
    );
    let client = reqwest::Client::builder().local_address(std::net::IpAddr::from(from)).build().unwrap();
    client
        .post(app.url(&format!("/whip/{stream}")))
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_per_token_and_per_account_are_capped() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.max_publishers_per_account = 3;
        c.max_publishers_per_token = 2;
    })
    .await;
    let s = crate::whip_whep::streamer(&app, "caps@example.com", serde_json::json!({ "label": "a", "streams": ["*"] }))
        .await;
    let second =
        app.post_json(&s.client, "/api/v1/tokens", serde_json::json!({ "label": "b", "streams": ["*"] })).await;
    let second: serde_json::Value = second.json().await.unwrap();
    let second = second["secret"].as_str().unwrap().to_owned();
    let from = std::net::Ipv4Addr::new(127, 0, 3, 1);

    assert_eq!(post_publish(&app, &s.token, "one", from).await.status(), 201);
    assert_eq!(post_publish(&app, &s.token, "two", from).await.status(), 201);
    let over_token = post_publish(&app, &s.token, "three", from).await;
    assert_eq!(over_token.status(), 429);
    assert!(over_token.headers().contains_key("retry-after"));
    assert!(over_token.text().await.unwrap().contains("this token publishes 2 feeds"));
    // Replacing a running feed is not a new one.
    assert_eq!(post_publish(&app, &s.token, "one", from).await.status(), 201);

    assert_eq!(post_publish(&app, &second, "four", from).await.status(), 201);
    let over_account = post_publish(&app, &second, "five", from).await;
    assert_eq!(over_account.status(), 503, "the account's own limit (README: Sign-up and the operator)");
    assert!(over_account.headers().contains_key("retry-after"));
    assert!(over_account.text().await.unwrap().contains("this account publishes 3 feeds"));

    // Another account is not held back.
    let other =
        crate::whip_whep::streamer(&app, "free@example.com", serde_json::json!({ "label": "o", "streams": ["*"] }))
            .await;
    assert_eq!(post_publish(&app, &other.token, "one", from).await.status(), 201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_flood_the_signaling_doors() {
    use ferrocast::server::signaling_limits::OFFER_BURST;
    let app = spawn_app().await;
    let s =
        crate::whip_whep::streamer(&app, "flood@example.com", serde_json::json!({ "label": "f", "streams": ["*"] }))
            .await;
    let flood = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 4, 1])).build().unwrap();
    let whep = app.url(&format!("/whep/{}/nothing", s.account));
    let offer = crate::whip_whep::offer_with(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
    );
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..OFFER_BURST + 20 {
        let response = flood
            .post(&whep)
            .header("content-type", "application/sdp")
            .header("origin", "https://player.example")
            .body(offer.clone())
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 && refusal.is_none() {
            refusal = Some(response);
        }
    }
    assert!(statuses[..OFFER_BURST as usize].iter().all(|s| *s == 404), "the burst passes: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 10, "{statuses:?}");
    let refusal = refusal.unwrap();
    assert!(refusal.headers().contains_key("retry-after"));
    assert_eq!(refusal.headers()["access-control-allow-origin"], "*", "a browser player can read the refusal");

    // Others still get in: a publisher from another address, and pages for the flooding one.
    let publisher = crate::rtc::publish(&app, crate::rtc::PublishOptions::new(&s.token, "main")).await;
    assert!(publisher.is_ok());
    let page = flood.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_media_path_and_refusals_to_loopback_only() {
    let app = crate::helpers::spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let s = crate::whip_whep::streamer(
        &app,
        "metrics@example.com",
        serde_json::json!({ "label": "m", "streams": ["main"] }),
    )
    .await;
    let _publisher = crate::rtc::publish(&app, crate::rtc::PublishOptions::new(&s.token, "main")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let viewer = crate::rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.unwrap();
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 30)).await;
    let wrong = app
        .post_json(
            &app.client(),
            "/api/v1/login",
            serde_json::json!({ "email": "metrics@example.com", "password": "wrong-password" }),
        )
        .await;
    assert_eq!(wrong.status(), 401);

    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    // The engine hands its counters over once a second.
    let mut text = String::new();
    for _ in 0..30 {
        let response = app.client().get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        text = response.text().await.unwrap();
        if text.contains("ferrocast_packets_forwarded_total ")
            && value(&text, "ferrocast_packets_forwarded_total") >= 30.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(value(&text, "ferrocast_packets_forwarded_total") >= 30.0, "{text}");
    assert!(value(&text, "ferrocast_bytes_forwarded_total") > 1000.0);
    assert!(value(&text, "ferrocast_login_failures_total") >= 1.0);
    assert!(text.contains("ferrocast_viewers{state=\"connected\"}"), "{text}");
    assert!(text.contains("ferrocast_datagrams_dropped_total"), "{text}");
    assert!(text.contains("ferrocast_http_requests_total{route=\"/api/v1/login\",status=\"401\"}"), "{text}");
    assert!(
        text.contains("ferrocast_http_request_duration_seconds_bucket{route=\"/healthz\"")
            || text.contains("ferrocast_http_request_duration_seconds_bucket{route=\"/api/v1/login\""),
        "{text}"
    );

    // A client that is not on this machine (as a trusted proxy says) is told nothing is there.
    let remote = app.client().get(app.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    assert_eq!(remote.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_metrics_on_an_address_of_its_own() {
    let data = tempfile::TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--signup",
            "open",
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path());
    let (server, _base) = crate::recording::spawn_server(command);
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("ferrocast_"), "{text}");
    let other = reqwest::get(format!("http://127.0.0.1:{port}/login")).await.unwrap();
    assert_eq!(other.status(), 404, "only /metrics is served there");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_a_201_loses_no_account_token_or_key() {
    use crate::helpers::PASSWORD;
    let data = tempfile::TempDir::new().unwrap();
    let (mut server, base) = crate::recording::start_binary(data.path());
    let app = TestApp::running_at(base, data.path().to_owned());
    let client = app.client();
    app.sign_up(&client, "durable@example.com").await;
    let token =
        app.post_json(&client, "/api/v1/tokens", serde_json::json!({ "label": "t", "streams": ["main"] })).await;
    assert_eq!(token.status(), 201);
    let token: serde_json::Value = token.json().await.unwrap();
    let key = app.post_json(&client, "/api/v1/api-keys", serde_json::json!({ "label": "k" })).await;
    assert_eq!(key.status(), 201);
    let key: serde_json::Value = key.json().await.unwrap();
    // No graceful stop: SIGKILL the moment the last 201 is read.
    server.kill().unwrap();
    server.wait().unwrap();

    let (_again, base) = crate::recording::start_binary(data.path());
    let app = TestApp::running_at(base, data.path().to_owned());
    let client = app.client();
    let login = app
        .post_json(
            &client,
            "/api/v1/login",
            serde_json::json!({ "email": "durable@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status(), 200, "the account survived");
    let tokens: serde_json::Value = client.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tokens[0]["id"], token["token"]["id"], "the token survived: {tokens}");
    let with_key =
        app.client().get(app.url("/api/v1/me")).bearer_auth(key["secret"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(with_key.status(), 200, "the key survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_the_database_while_the_server_runs() {
    let data = tempfile::TempDir::new().unwrap();
    let (_server, base) = crate::recording::start_binary(data.path());
    let app = TestApp::running_at(base, data.path().to_owned());
    let client = app.client();
    app.sign_up(&client, "backed@example.com").await;
    // Writes go on while the copy is made.
    let writer = {
        let client = client.clone();
        let url = app.url("/api/v1/tokens");
        tokio::spawn(async move {
            for i in 0..40 {
                let body = serde_json::json!({ "label": format!("t{i}"), "streams": ["main"] });
                assert_eq!(client.post(&url).json(&body).send().await.unwrap().status(), 201);
            }
        })
    };
    let copy = data.path().join("copy.sqlite3");
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferrocast"))
            .arg("--data-dir")
            .arg(data.path())
            .arg("backup")
            .arg(file)
            .output()
            .unwrap()
    };
    let made = run(&copy);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    writer.await.unwrap();

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&copy).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
    assert_eq!(check, "ok");
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM accounts").fetch_all(&pool).await.unwrap();
    assert_eq!(emails, ["backed@example.com"]);
    pool.close().await;

    // Bad input: an existing file is not overwritten; a folder without a database is named.
    let again = run(&copy);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let empty = tempfile::TempDir::new().unwrap();
    let nothing = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocast"))
        .arg("--data-dir")
        .arg(empty.path())
        .arg("backup")
        .arg(empty.path().join("copy"))
        .output()
        .unwrap();
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("there is no database"));
}

/// Two bundled video sections that give payload type 96 two codecs (a shape a fuzzer found:
/// str0m asserts on it). `dir` is the offerer's direction.
fn offer_with_one_payload_type_for_two_codecs(dir: &str) -> String {
    crate::whip_whep::offer_with(&format!(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na={dir}\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na={dir}\r\na=rtcp-mux\r\na=rtpmap:96 H264/90000\r\n"
    ))
    .replace("a=group:BUNDLE 0\r\n", "a=group:BUNDLE 0 1\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_giving_one_payload_type_two_codecs_is_400_with_the_reason() {
    use crate::rtc;
    let app = spawn_app().await;
    let s =
        crate::whip_whep::streamer(&app, "pt@example.com", serde_json::json!({ "label": "p", "streams": ["*"] })).await;
    let _publisher = rtc::publish(&app, rtc::PublishOptions::new(&s.token, "main")).await.unwrap();
    crate::whip_whep::wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let whep = format!("/whep/{}/main", s.account);
    let viewer = rtc::view(&app, &whep, 1).await.unwrap();
    viewer.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;

    for (door, dir, token) in [(whep.clone(), "recvonly", None), ("/whip/other".to_owned(), "sendonly", Some(&s.token))]
    {
        let mut request = app
            .client()
            .post(app.url(&door))
            .header("content-type", "application/sdp")
            .body(offer_with_one_payload_type_for_two_codecs(dir));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{door}");
        let body = response.text().await.unwrap();
        assert!(body.contains("payload type 96") && body.contains("RFC 8843"), "{door}: {body}");
    }

    // Nothing else noticed: the viewer keeps playing, and a good offer is still taken.
    let before = viewer.video(0).unwrap().packets.len();
    viewer.wait_for("more video", |v| v.video(0).is_some_and(|t| t.packets.len() >= before + 30)).await;
    let second = rtc::view(&app, &whep, 1).await.expect("a well-formed offer is taken");
    second.wait_for("video", |v| v.video(0).is_some_and(|t| t.packets.len() >= 10)).await;
    app.stop().await;
}
