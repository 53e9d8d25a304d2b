//! The publishing side: a WHIP session sending [`media`](super::media) as a browser does: a
//! frame every 33 ms, its packets paced at 2.5× the bitrate (libwebrtc's pacing factor) instead of
//! one burst, and a keyframe whenever the SFU asks (as an encoder answers a PLI/FIR). With
//! simulcast it sends the broadcaster's three layers (RFC 8853): RIDs `h`, `m`, `l` at full, ½ and
//! ¼ size sharing the bitrate 75 / 20 / 5 %, paced together, each answering its own keyframe
//! requests.

use std::{
    cell::Cell,
    collections::VecDeque,
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use str0m::{
    format::Codec,
    media::{Direction, MediaKind, Mid, Pt, Rid},
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

/// The broadcaster's simulcast layers: RID, share of the bitrate in percent, picture size.
pub const SIMULCAST_LAYERS: [(&str, u64, (u16, u16)); 3] =
    [("h", 75, (1280, 720)), ("m", 20, (640, 360)), ("l", 5, (320, 180))];

pub struct Publisher {
    peer: Peer,
    video_mid: Mid,
    audio_mid: Mid,
    simulcast: bool,
    /// DELETE this to end the session.
    pub session_url: String,
}

/// One encoding the publisher sends: its RID (none without simulcast), its frames and sequence.
struct Encoding {
    rid: Option<Rid>,
    source: VideoSource,
    seq: u64,
}

impl Publisher {
    /// POSTs the offer to `whip_url` with the token and waits (bounded) until ICE and DTLS are up.
    pub async fn connect(http: &reqwest::Client, whip_url: &str, token: &str, simulcast: bool) -> io::Result<Self> {
        let rids: Vec<&str> = if simulcast { SIMULCAST_LAYERS.iter().map(|(rid, ..)| *rid).collect() } else { vec![] };
        let (mut peer, offer, pending, mids) = Peer::offer_with_rids(
            &[(MediaKind::Video, Direction::SendOnly), (MediaKind::Audio, Direction::SendOnly)],
            &rids,
        )?;
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
        Ok(Self { peer, video_mid: mids[0], audio_mid: mids[1], simulcast, session_url: created.location })
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
        let mut encodings: Vec<Encoding> = if self.simulcast {
            SIMULCAST_LAYERS
                .iter()
                .map(|&(rid, share, (width, height))| Encoding {
                    rid: Some(Rid::from(rid)),
                    source: VideoSource::sized(bitrate_bps * share / 100, width, height),
                    seq: 1,
                })
                .collect()
        } else {
            vec![Encoding { rid: None, source: VideoSource::new(bitrate_bps), seq: 1 }]
        };
        let mut audio = AudioSource::default();
        let mut stats = PublisherStats::default();
        let mut audio_seq = 1u64;
        let mut video_tick = tokio::time::interval(FRAME_INTERVAL);
        let mut audio_tick = tokio::time::interval(AUDIO_INTERVAL);
        video_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        audio_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut frame = Vec::new();
        // The pacer: video packets (with their encoding's index) wait here and leave at `pace_bps`.
        let pace_bps = (bitrate_bps * 5 / 2).max(1);
        let mut paced: VecDeque<(usize, Packet)> = VecDeque::new();
        let mut next_send = Instant::now();
        // Keyframe requests since the last look, by RID (`None`: the track as a whole).
        let asked: Cell<Vec<Option<Rid>>> = Cell::default();
        let on_event = |_: &mut Rtc, event: Event, _: Option<u64>| {
            if let Event::KeyframeRequest(request) = event {
                let mut rids = asked.take();
                rids.push(request.rid);
                asked.set(rids);
            }
        };
        while !*stop.borrow() {
            tokio::select! {
                _ = stop.changed() => {}
                r = self.peer.readable() => { r?; self.peer.receive_all(on_event)?; }
                () = tokio::time::sleep_until(self.peer.deadline.into()) => self.peer.on_deadline(on_event)?,
                _ = video_tick.tick() => {
                    if paced.is_empty() {
                        next_send = next_send.max(Instant::now());
                    }
                    for (index, encoding) in encodings.iter_mut().enumerate() {
                        encoding.source.next_frame(&mut frame);
                        paced.extend(frame.drain(..).map(|packet| (index, packet)));
                    }
                }
                () = tokio::time::sleep_until(next_send.into()), if !paced.is_empty() => {
                    let now = Instant::now();
                    while next_send <= now {
                        let Some((index, packet)) = paced.pop_front() else { break };
                        next_send += Duration::from_nanos(packet.payload.len() as u64 * 8 * 1_000_000_000 / pace_bps);
                        let encoding = &mut encodings[index];
                        self.write(self.video_mid, encoding.rid, video_pt, &mut encoding.seq, packet, true);
                        stats.video_packets += 1;
                    }
                    self.peer.drain(on_event)?;
                }
                _ = audio_tick.tick() => {
                    self.write(self.audio_mid, None, audio_pt, &mut audio_seq, audio.next_frame(), false);
                    stats.audio_packets += 1;
                    self.peer.drain(on_event)?;
                }
            }
            for rid in asked.take() {
                stats.keyframes_asked += 1;
                for encoding in encodings.iter_mut().filter(|e| rid.is_none() || e.rid == rid) {
                    encoding.source.ask_keyframe();
                }
            }
        }
        Ok(stats)
    }

    fn write(&mut self, mid: Mid, rid: Option<Rid>, pt: Pt, seq: &mut u64, mut packet: Packet, nackable: bool) {
        stamp(&mut packet.payload);
        let mut api = self.peer.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, rid) else { return };
        let write =
            RtpWrite::new(pt, SeqNo::from(*seq), packet.timestamp, Instant::now(), Arc::<[u8]>::from(packet.payload))
                .marker(packet.marker)
                .nackable(nackable);
        tx.write_rtp(write);
        *seq += 1;
    }
}
