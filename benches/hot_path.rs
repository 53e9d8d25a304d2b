//! Micro-benchmarks of the per-packet, per-viewer work of the SFU:
//! `cargo bench --bench hot_path` (criterion; `-- --test` runs each once).
//!
//! - `rewrite`: one viewer track's sequence/timestamp rewrite of a forwarded packet;
//! - `demux`: finding the peer of a datagram by its source address among 1,000 peers, and of a STUN
//!   request by its ufrag;
//! - `keyframe`: deciding whether a VP8 / H.264 payload starts a keyframe;
//! - `srtp`: protecting a 1,200-byte RTP payload with AEAD-AES-128-GCM, AEAD-AES-256-GCM (what two
//!   str0m peers negotiate) and AES-128-CM through str0m's crypto provider;
//! - `viewer send`: one packet through a connected viewer `Rtc` as the SFU sends it: `write_rtp`
//!   (send queue, RTX send-buffer insert), then `poll_output` until it wants a timeout (header,
//!   SRTP, the datagram). Everything the SFU's user space does per viewer per packet except the
//!   rewrite above; the fan-out benchmark adds the kernel's share.

use std::{
    hint::black_box,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocast::sfu::{
    demux::{Demux, Remote},
    forward::{starts_keyframe, OutTrack},
};
use str0m::{
    format::Codec,
    media::{Direction, MediaKind, Mid},
    net::{Protocol, Receive},
    rtp::{RtpWrite, SeqNo},
    Candidate, Event, Input, Output, Rtc,
};

fn rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite");
    group.throughput(Throughput::Elements(1));
    let mut track = OutTrack::new(Mid::from("0"), MediaKind::Video);
    let start = Instant::now();
    let mut seq = 70_000u64;
    group.bench_function("seq+timestamp, same origin", |b| {
        b.iter(|| {
            seq += 1;
            black_box(track.rewrite((7, 0x1234), SeqNo::from(seq), (seq as u32) * 3000, start, 90_000))
        })
    });
    let mut origin = 0u64;
    group.bench_function("seq+timestamp, new origin every packet", |b| {
        b.iter(|| {
            origin += 1;
            seq += 1;
            black_box(track.rewrite(
                (origin, 0x1234),
                SeqNo::from(seq),
                1000,
                start + Duration::from_millis(origin),
                90_000,
            ))
        })
    });
    group.finish();
}

fn demux(c: &mut Criterion) {
    let mut demux = Demux::default();
    for peer in 0..1000u64 {
        demux.add_peer(&format!("ufrag{peer:04}"), peer);
        demux.bind_addr(Remote::udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + peer as u16))), peer);
    }
    let rtp = [0x80u8; 1200];
    let known = Remote::udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 10_500)));
    let mut group = c.benchmark_group("demux");
    group.throughput(Throughput::Elements(1));
    group.bench_function("RTP by address, 1000 peers", |b| b.iter(|| black_box(demux.route(black_box(known), &rtp))));
    let stun = binding_request("ufrag0777:remote");
    let fresh = Remote::udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 30_000)));
    group.bench_function("STUN by ufrag, 1000 peers", |b| b.iter(|| black_box(demux.route(black_box(fresh), &stun))));
    group.finish();
}

/// A binding request carrying only USERNAME (all the demultiplexer reads).
fn binding_request(username: &str) -> Vec<u8> {
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut message = Vec::new();
    message.extend_from_slice(&0x0001u16.to_be_bytes());
    message.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    message.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    message.extend_from_slice(&[7; 12]);
    message.extend_from_slice(&attrs);
    message
}

fn keyframe(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyframe");
    group.throughput(Throughput::Elements(1));
    let mut vp8 = vec![0x10u8, 0x00];
    vp8.resize(1200, 0x55);
    group.bench_function("VP8 first packet", |b| b.iter(|| black_box(starts_keyframe(Codec::Vp8, black_box(&vp8)))));
    // FU-A fragment of a non-IDR slice: the common, negative case.
    let mut h264 = vec![0x7cu8, 0x81];
    h264.resize(1200, 0x55);
    group.bench_function("H.264 FU-A", |b| b.iter(|| black_box(starts_keyframe(Codec::H264, black_box(&h264)))));
    group.finish();
}

fn srtp(c: &mut Criterion) {
    let provider = str0m::crypto::from_feature_flags();
    let header = [0x80u8, 0x60, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef];
    let payload = vec![0x42u8; 1200 - header.len()];
    let mut out = vec![0u8; payload.len() + 16];
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    let mut gcm = provider.srtp_provider.aead_aes_128_gcm().create_cipher([7; 16], true);
    group.bench_function("AEAD-AES-128-GCM protect 1200 B", |b| {
        b.iter(|| black_box(gcm.encrypt(&[1; 12], &header, black_box(&payload), &mut out)))
    });
    let mut gcm256 = provider.srtp_provider.aead_aes_256_gcm().create_cipher([7; 32], true);
    group.bench_function("AEAD-AES-256-GCM protect 1200 B", |b| {
        b.iter(|| black_box(gcm256.encrypt(&[1; 12], &header, black_box(&payload), &mut out)))
    });
    let mut cm = provider.srtp_provider.aes_128_cm_sha1_80().create_cipher([7; 16], true);
    group.bench_function("AES-128-CM encrypt 1200 B (without the HMAC)", |b| {
        b.iter(|| black_box(cm.encrypt(&[1; 16], black_box(&payload), &mut out[..payload.len()])))
    });
    group.finish();
}

/// A viewer (offering, full ICE) and an SFU-side `Rtc` (ICE-lite, answering, the SFU's video
/// send buffer) connected in memory: their datagrams are handed across without sockets.
fn connected_viewer() -> (Rtc, Mid) {
    let viewer_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1000));
    let sfu_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 2000));
    let now = Instant::now();
    let mut viewer = Rtc::builder().set_rtp_mode(true).clear_codecs().enable_vp8(true).build(now);
    viewer.add_local_candidate(Candidate::host(viewer_addr, "udp").expect("candidate"));
    let mut api = viewer.sdp_api();
    let mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("offer");
    let mut sfu = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_vp8(true)
        .set_send_buffer_video(300)
        .build(now);
    sfu.add_local_candidate(Candidate::host(sfu_addr, "udp").expect("candidate"));
    let answer = sfu.sdp_api().accept_offer(offer).expect("answer");
    viewer.sdp_api().accept_answer(pending, answer).expect("accepted");

    let mut peers = [(viewer, viewer_addr, false), (sfu, sfu_addr, false)];
    let started = Instant::now();
    while !(peers[0].2 && peers[1].2) {
        assert!(started.elapsed() < Duration::from_secs(10), "the in-memory pair did not connect");
        for from in 0..2 {
            let mut datagrams = Vec::new();
            loop {
                match peers[from].0.poll_output().expect("poll") {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => datagrams.push((t.source, t.destination, t.contents.to_vec())),
                    Output::Event(Event::Connected) => peers[from].2 = true,
                    Output::Event(_) => {}
                }
            }
            let to = &mut peers[1 - from].0;
            for (source, destination, contents) in datagrams {
                let receive = Receive::new(Protocol::Udp, source, destination, &contents).expect("datagram");
                to.handle_input(Input::Receive(Instant::now(), receive)).expect("input");
            }
        }
        for (rtc, _, _) in &mut peers {
            rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
        }
    }
    let [_, (sfu, _, _)] = peers;
    (sfu, mid)
}

fn viewer_send(c: &mut Criterion) {
    let (mut rtc, mid) = connected_viewer();
    let pt = rtc.codec_config().find(|p| p.spec().codec == Codec::Vp8).map(|p| p.pt()).expect("VP8");
    let payload: Arc<[u8]> = vec![0x42u8; 1100].into();
    let mut seq = 1u64;
    let mut group = c.benchmark_group("viewer send");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write_rtp + poll_output, 1100 B payload", |b| {
        b.iter(|| {
            seq += 1;
            let mut api = rtc.direct_api();
            let tx = api.stream_tx_by_mid(mid, None).expect("send stream");
            tx.write_rtp(
                RtpWrite::new(pt, SeqNo::from(seq), (seq as u32) * 3000, Instant::now(), payload.clone())
                    .marker(true)
                    .nackable(true),
            );
            let mut bytes = 0;
            loop {
                match rtc.poll_output().expect("poll") {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => bytes += t.contents.len(),
                    Output::Event(_) => {}
                }
            }
            black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, rewrite, demux, keyframe, srtp, viewer_send);
criterion_main!(benches);
