//! The publishing side: a WHIP session sending [`media`](super::media) as a browser does: a
//! frame every 33 ms, its packets paced at 2.5× the bitrate (libwebrtc's pacing factor) instead of
//! one burst, and a keyframe whenever the SFU asks (as an encoder answers a PLI/FIR).

use std::{
    cell::Cell,
    collections::VecDeque,
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use str0m::{
    format::Codec,
    media::{Direction, MediaKind, Mid, Pt},
    rtp::{RtpWrite, SeqNo},
    Event, Rtc,
};
use tokio::{sync::watch, time::MissedTickBehavior};

use super::{
    media::{stamp, AudioSource, Packet, VideoSource, AUDIO_INTERVAL, FRAME_INTERVAL},
    peer::Peer,
    signaling,
};

#[derive(Clone, Debug, Default)]
pub struct PublisherStats {
    pub video_packets: u64,
    pub audio_packets: u64,
    pub keyframes_asked: u64,
}

pub struct Publisher {
    peer: Peer,
    video_mid: Mid,
    audio_mid: Mid,
    /// DELETE this to end the session.
    pub session_url: String,
}

impl Publisher {
    /// POSTs the offer to `whip_url` with the token and waits (bounded) until ICE and DTLS are up.
    pub async fn connect(http: &reqwest::Client, whip_url: &str, token: &str) -> io::Result<Self> {
        let (mut peer, offer, pending, mids) =
            Peer::offer(&[(MediaKind::Video, Direction::SendOnly), (MediaKind::Audio, Direction::SendOnly)])?;
        let created = signaling::post_offer(http, whip_url, Some(token), offer).await?;
        peer.accept_answer(pending, &created.answer)?;
        let mut connected = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !connected {
            // (str0m's `PartialEq` for events says false for `Connected`.)
            let on_event = |_: &mut Rtc, event: Event, _: Option<u64>| connected |= matches!(event, Event::Connected);
            tokio::select! {
                r = peer.readable() => { r?; peer.receive_all(on_event)?; }
                () = tokio::time::sleep_until(peer.deadline.into()) => peer.on_deadline(on_event)?,
                () = tokio::time::sleep_until(deadline) => return Err(io::Error::other("publisher: no connection in 10 s")),
            }
        }
        Ok(Self { peer, video_mid: mids[0], audio_mid: mids[1], session_url: created.location })
    }

    /// Sends until `stop` turns true.
    pub async fn run(mut self, bitrate_bps: u64, mut stop: watch::Receiver<bool>) -> io::Result<PublisherStats> {
        let pt = |codec: Codec| {
            self.peer
                .rtc
                .codec_config()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt())
                .ok_or_else(|| io::Error::other("codec not negotiated"))
        };
        let (video_pt, audio_pt) = (pt(Codec::Vp8)?, pt(Codec::Opus)?);
        let mut video = VideoSource::new(bitrate_bps);
        let mut audio = AudioSource::default();
        let mut stats = PublisherStats::default();
        let (mut video_seq, mut audio_seq) = (1u64, 1u64);
        let mut video_tick = tokio::time::interval(FRAME_INTERVAL);
        let mut audio_tick = tokio::time::interval(AUDIO_INTERVAL);
        video_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        audio_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut frame = Vec::new();
        // The pacer: video packets wait here and leave at `pace_bps`.
        let pace_bps = (bitrate_bps * 5 / 2).max(1);
        let mut paced: VecDeque<Packet> = VecDeque::new();
        let mut next_send = Instant::now();
        let asked = Cell::new(false);
        let on_event = |_: &mut Rtc, event: Event, _: Option<u64>| {
            if matches!(event, Event::KeyframeRequest(_)) {
                asked.set(true);
            }
        };
        while !*stop.borrow() {
            tokio::select! {
                _ = stop.changed() => {}
                r = self.peer.readable() => { r?; self.peer.receive_all(on_event)?; }
                () = tokio::time::sleep_until(self.peer.deadline.into()) => self.peer.on_deadline(on_event)?,
                _ = video_tick.tick() => {
                    video.next_frame(&mut frame);
                    if paced.is_empty() {
                        next_send = next_send.max(Instant::now());
                    }
                    paced.extend(frame.drain(..));
                }
                () = tokio::time::sleep_until(next_send.into()), if !paced.is_empty() => {
                    let now = Instant::now();
                    while next_send <= now {
                        let Some(packet) = paced.pop_front() else { break };
                        next_send += Duration::from_nanos(packet.payload.len() as u64 * 8 * 1_000_000_000 / pace_bps);
                        self.write(self.video_mid, video_pt, &mut video_seq, packet, true);
                        stats.video_packets += 1;
                    }
                    self.peer.drain(on_event)?;
                }
                _ = audio_tick.tick() => {
                    self.write(self.audio_mid, audio_pt, &mut audio_seq, audio.next_frame(), false);
                    stats.audio_packets += 1;
                    self.peer.drain(on_event)?;
                }
            }
            if asked.take() {
                stats.keyframes_asked += 1;
                video.ask_keyframe();
            }
        }
        Ok(stats)
    }

    fn write(&mut self, mid: Mid, pt: Pt, seq: &mut u64, mut packet: Packet, nackable: bool) {
        stamp(&mut packet.payload);
        let mut api = self.peer.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else { return };
        let write =
            RtpWrite::new(pt, SeqNo::from(*seq), packet.timestamp, Instant::now(), Arc::<[u8]>::from(packet.payload))
                .marker(packet.marker)
                .nackable(nackable);
        tx.write_rtp(write);
        *seq += 1;
    }
}
