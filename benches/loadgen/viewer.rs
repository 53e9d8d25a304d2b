//! The watching side: a WHEP session that receives audio and video and accounts for every packet
//! ([`accounting`](super::accounting)); nothing is decoded.

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

use str0m::{
    media::{Direction, MediaKind, Mid},
    rtp::Ssrc,
    Event, IceConnectionState, Rtc,
};
use tokio::sync::watch;

use super::{
    accounting::{Playout, SeqCounter, VideoPacket},
    media::{sent_at, vp8_frame_start},
    peer::Peer,
    signaling,
};

/// Counters every viewer of a run adds to, read by the benchmark while it runs.
#[derive(Default)]
pub struct Shared {
    /// RTP packets received by all viewers (each counted once).
    pub packets: Cell<u64>,
    /// Viewers that have shown their first frame.
    pub first_frames: Cell<usize>,
}

#[derive(Debug)]
pub struct ViewerReport {
    pub error: Option<String>,
    pub time_to_first_frame: Option<Duration>,
    pub freezes: u32,
    pub longest_gap: Duration,
    pub video: SeqCounter,
    pub audio: SeqCounter,
    /// Publisher send → kernel receive at this viewer, in µs, one per video packet.
    pub latencies_us: Vec<u32>,
}

impl ViewerReport {
    fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            time_to_first_frame: None,
            freezes: 0,
            longest_gap: Duration::ZERO,
            video: SeqCounter::default(),
            audio: SeqCounter::default(),
            latencies_us: Vec::new(),
        }
    }
}

/// Watches `whep_url` until `stop` turns true; with a `quality` (`auto`, `high`, `medium`, `low`)
/// it asks for that simulcast layer through the layer extension once its session exists.
pub async fn watch(
    http: reqwest::Client,
    whep_url: String,
    quality: Option<&'static str>,
    stop: watch::Receiver<bool>,
    shared: Rc<Shared>,
) -> ViewerReport {
    let joined = Instant::now();
    let (mut peer, offer, pending, mids) =
        match Peer::offer(&[(MediaKind::Video, Direction::RecvOnly), (MediaKind::Audio, Direction::RecvOnly)]) {
            Ok(created) => created,
            Err(err) => return ViewerReport::failed(format!("socket: {err}")),
        };
    let created = match signaling::post_offer(&http, &whep_url, None, offer).await {
        Ok(created) => created,
        Err(err) => return ViewerReport::failed(err.to_string()),
    };
    if let Err(err) = peer.accept_answer(pending, &created.answer) {
        return ViewerReport::failed(format!("answer: {err}"));
    }
    if let Some(quality) = quality {
        if let Err(err) = signaling::select_layer(&http, &created.location, quality).await {
            signaling::delete(&http, &created.location).await;
            return ViewerReport::failed(err.to_string());
        }
    }
    let report = receive(peer, mids[0], joined, stop, &shared).await;
    signaling::delete(&http, &created.location).await;
    report
}

async fn receive(
    mut peer: Peer,
    video_mid: Mid,
    joined: Instant,
    mut stop: watch::Receiver<bool>,
    shared: &Shared,
) -> ViewerReport {
    let mut playout = Playout::new(joined);
    let mut video = SeqCounter::default();
    let mut audio = SeqCounter::default();
    let mut latencies_us = Vec::with_capacity(4096);
    let mut kinds: Vec<(Ssrc, bool)> = Vec::new(); // (ssrc, is video)
    let disconnected = Cell::new(false);
    let mut on_event = |rtc: &mut Rtc, event: Event, received_at: Option<u64>| match event {
        Event::RtpPacket(packet) => {
            let ssrc = packet.header.ssrc;
            let is_video = match kinds.iter().find(|(s, _)| *s == ssrc) {
                Some(&(_, is_video)) => is_video,
                None => {
                    let is_video = rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) == Some(video_mid);
                    kinds.push((ssrc, is_video));
                    is_video
                }
            };
            shared.packets.set(shared.packets.get() + 1);
            let seq = *packet.seq_no;
            if !is_video {
                audio.record(seq);
                return;
            }
            video.record(seq);
            if let (Some(sent), Some(received)) = (sent_at(&packet.payload), received_at) {
                latencies_us.push((received.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32);
            }
            let had_frame = playout.time_to_first_frame().is_some();
            let frame_start = vp8_frame_start(&packet.payload);
            playout.packet(
                VideoPacket {
                    seq,
                    timestamp: packet.time.numer(),
                    marker: packet.header.marker,
                    frame_start,
                    keyframe: frame_start && str0m::format::detect_vp8_keyframe(&packet.payload),
                },
                Instant::now(),
            );
            if !had_frame && playout.time_to_first_frame().is_some() {
                shared.first_frames.set(shared.first_frames.get() + 1);
            }
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => disconnected.set(true),
        _ => {}
    };
    let mut error = None;
    while !*stop.borrow() && error.is_none() {
        let step = tokio::select! {
            _ = stop.changed() => Ok(()),
            r = peer.readable() => match r {
                Ok(()) => peer.receive_all(&mut on_event),
                Err(err) => Err(err),
            },
            () = tokio::time::sleep_until(peer.deadline.into()) => peer.on_deadline(&mut on_event),
        };
        if let Err(err) = step {
            error = Some(err.to_string());
        } else if disconnected.get() {
            error = Some("ICE disconnected".to_owned());
        }
    }
    playout.finish(Instant::now());
    ViewerReport {
        error,
        time_to_first_frame: playout.time_to_first_frame(),
        freezes: playout.freezes,
        longest_gap: playout.longest_gap,
        video,
        audio,
        latencies_us,
    }
}
