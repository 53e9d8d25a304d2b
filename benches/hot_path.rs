//! Micro-benchmarks of the per-packet, per-viewer work of the SFU:
//! `cargo bench --bench hot_path` (criterion; `-- --test` runs each once).
//!
//! - `rewrite`: one viewer track's sequence/timestamp rewrite of a forwarded packet;
//! - `demux`: finding the peer of a datagram by its source address among 1,000 peers, and of a STUN
//!   request by its ufrag;
//! - `keyframe`: deciding whether a VP8 / H.264 payload starts a keyframe;
//! - `srtp`: protecting a 1,200-byte RTP payload with AEAD-AES-128-GCM and AES-128-CM-SHA1-80
//!   through str0m's crypto provider (the floor of sending one packet to one viewer).
//!
//! The send buffer (str0m's RTX cache) is internal to str0m; it is measured as part of the
//! forwarding cost by the fan-out benchmark.

use std::{
    hint::black_box,
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocast::sfu::{
    demux::Demux,
    forward::{starts_keyframe, OutTrack},
};
use str0m::{
    format::Codec,
    media::{MediaKind, Mid},
    rtp::SeqNo,
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
        demux.bind_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + peer as u16)), peer);
    }
    let rtp = [0x80u8; 1200];
    let known = SocketAddr::from((Ipv4Addr::LOCALHOST, 10_500));
    let mut group = c.benchmark_group("demux");
    group.throughput(Throughput::Elements(1));
    group.bench_function("RTP by address, 1000 peers", |b| b.iter(|| black_box(demux.route(black_box(known), &rtp))));
    let stun = binding_request("ufrag0777:remote");
    let fresh = SocketAddr::from((Ipv4Addr::LOCALHOST, 30_000));
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
    let mut cm = provider.srtp_provider.aes_128_cm_sha1_80().create_cipher([7; 16], true);
    group.bench_function("AES-128-CM encrypt 1200 B (without the HMAC)", |b| {
        b.iter(|| black_box(cm.encrypt(&[1; 16], black_box(&payload), &mut out[..payload.len()])))
    });
    group.finish();
}

criterion_group!(benches, rewrite, demux, keyframe, srtp);
criterion_main!(benches);
