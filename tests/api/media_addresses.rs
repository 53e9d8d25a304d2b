//! Where the media socket binds and what candidates announce: behind 1:1 NAT a machine has only
//! a private address on its interface, and clients must be told the public one.

use std::net::SocketAddr;

use ferrocast::{config::Config, sfu::TcpPort};
use serde_json::json;

use crate::{
    helpers::{bound_udp_v4, free_port, spawn_app, spawn_app_with},
    rtc::{self, PublishOptions},
    whip_whep::{signal_only_publish, streamer, wait_stream},
};

/// The `a=candidate` lines of an SDP answer, as (address, port).
fn candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let fields: Vec<&str> = c.split_whitespace().collect();
            Some(SocketAddr::new(fields.get(4)?.parse().ok()?, fields.get(5)?.parse().ok()?))
        })
        .collect()
}

fn behind_nat(config: &mut Config) {
    config.rtc_public_ips = vec!["203.0.113.7".parse().unwrap()];
    config.rtc_bind = "127.0.0.1".parse().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_1_to_1_nat_candidates_name_the_public_address_and_the_socket_binds_to_the_private_one() {
    let app = spawn_app_with(behind_nat).await;
    let s = streamer(&app, "nat@example.com", json!({ "label": "n", "streams": ["main"] })).await;
    // Only signalling: nothing is ever sent to the documentation address 203.0.113.7.
    let answer = signal_only_publish(&app, &s.token, "main").await;
    let sdp = answer.text().await.unwrap();
    let announced = candidates(&sdp);
    assert!(!announced.is_empty(), "{sdp}");
    assert!(announced.iter().all(|a| a.ip().to_string() == "203.0.113.7"), "only the public address: {announced:?}");
    let port = announced[0].port();
    assert_eq!(app.rtc_addrs, vec![announced[0]], "the SFU reports what it announces");
    let bound = bound_udp_v4();
    assert!(bound.contains(&SocketAddr::from(([127, 0, 0, 1], port))), "bound to --rtc-bind on {port}: {bound:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_bound_to_every_address_serves_media_sent_to_the_announced_one() {
    // Bound to 0.0.0.0, announced as 127.0.0.1: the datagrams arrive on the wildcard socket and
    // must be matched to the announced candidate, as behind a NAT that forwards the public address.
    let app = spawn_app_with(|c| {
        c.rtc_public_ips = vec!["127.0.0.1".parse().unwrap()];
        c.rtc_bind = "0.0.0.0".parse().unwrap();
    })
    .await;
    let port = app.rtc_addrs[0].port();
    assert!(bound_udp_v4().contains(&SocketAddr::from(([0, 0, 0, 0], port))), "bound to 0.0.0.0:{port}");
    let s = streamer(&app, "wild@example.com", json!({ "label": "w", "streams": ["main"] })).await;
    let _publisher = rtc::publish(&app, PublishOptions::new(&s.token, "main")).await.expect("publish");
    wait_stream(&app, &s.account, "main", "live", |v| v["live"] == true).await;
    let viewer = rtc::view(&app, &format!("/whep/{}/main", s.account), 1).await.expect("view");
    viewer.wait_for("video through the wildcard socket", |v| v.video(0).is_some_and(|t| t.frames().len() >= 5)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_address_of_another_family_than_the_socket_is_refused_at_start() {
    let data = tempfile::TempDir::new().unwrap();
    let mut config = Config::for_data_dir(data.path());
    config.rtc_public_ips = vec!["2001:db8::7".parse().unwrap()];
    let err = ferrocast::server::Application::build(config).await.err().expect("refused").to_string();
    assert!(err.contains("--rtc-public-ip 2001:db8::7") && err.contains("--rtc-bind 0.0.0.0"), "{err}");
}

/// The `a=candidate` lines of an SDP answer that are TCP.
fn tcp_candidates(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("a=candidate:") && l.split_whitespace().nth(2) == Some("tcp")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_candidates_are_passive_on_the_udp_ports_number_and_off_turns_them_off() {
    let app = spawn_app().await;
    let udp_port = app.rtc_addrs[0].port();
    let s = streamer(&app, "tcp@example.com", json!({ "label": "t", "streams": ["main"] })).await;
    let sdp = signal_only_publish(&app, &s.token, "main").await.text().await.unwrap();
    let tcp = tcp_candidates(&sdp);
    assert_eq!(tcp.len(), 1, "one TCP candidate beside the UDP one: {sdp}");
    assert!(tcp[0].contains(" typ host tcptype passive"), "RFC 6544 passive host candidate: {}", tcp[0]);
    assert_eq!(candidates(tcp[0])[0], SocketAddr::from(([127, 0, 0, 1], udp_port)), "the UDP port's number");
    // Something listens there.
    tokio::net::TcpStream::connect(("127.0.0.1", udp_port)).await.expect("the ICE-TCP port accepts");
    app.stop().await;

    let app = spawn_app_with(|c| c.rtc_tcp_port = Some(TcpPort::Off)).await;
    let s = streamer(&app, "udp-only@example.com", json!({ "label": "u", "streams": ["main"] })).await;
    let sdp = signal_only_publish(&app, &s.token, "main").await.text().await.unwrap();
    assert!(tcp_candidates(&sdp).is_empty(), "off: UDP only: {sdp}");
    assert!(!candidates(&sdp).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nat_the_tcp_candidate_names_the_public_address_on_its_own_port() {
    let tcp_port = free_port();
    let app = spawn_app_with(|c| {
        behind_nat(c);
        c.rtc_tcp_port = Some(TcpPort::Port(tcp_port));
    })
    .await;
    let s = streamer(&app, "tcp-nat@example.com", json!({ "label": "n", "streams": ["main"] })).await;
    let sdp = signal_only_publish(&app, &s.token, "main").await.text().await.unwrap();
    let tcp = tcp_candidates(&sdp);
    assert_eq!(tcp.len(), 1, "{sdp}");
    assert_eq!(candidates(tcp[0])[0], SocketAddr::from(([203, 0, 113, 7], tcp_port)));
    tokio::net::TcpStream::connect(("127.0.0.1", tcp_port)).await.expect("bound to --rtc-bind");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_tcp_port_stops_the_start_with_a_reason_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::TempDir::new().unwrap();
    let mut config = Config::for_data_dir(data.path());
    config.rtc_tcp_port = Some(TcpPort::Port(port));
    let err = ferrocast::server::Application::build(config).await.err().expect("refused").to_string();
    assert!(err.contains(&format!("TCP 127.0.0.1:{port} (ICE-TCP, --rtc-tcp-port)")), "{err}");
}
