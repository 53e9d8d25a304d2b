//! One WHIP or WHEP session: its `Rtc` and what it means to the SFU.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    time::Instant,
};

use str0m::{
    format::PayloadParams,
    media::{MediaKind, Mid, Pt, Rid},
    rtp::Ssrc,
    Event, Output, Rtc,
};

use crate::names::SourceId;

use super::{
    api::{PairInfo, SessionKind, StreamKey},
    demux::Remote,
    forward::OutTrack,
    keyframe::KeyframeThrottle,
};

pub type PeerId = u64;

/// Which of a stream's sources: the main one, or a multisource `sourceId`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceName {
    Main,
    Id(SourceId),
}

impl SourceName {
    /// A request's `sourceId`: none is the main source.
    pub fn asked(source: Option<SourceId>) -> Self {
        source.map_or(Self::Main, Self::Id)
    }

    /// As the API shows it: `null` for the main source.
    pub fn source_id(&self) -> Option<String> {
        match self {
            Self::Main => None,
            Self::Id(id) => Some(id.to_string()),
        }
    }
}

/// `main`, or the `sourceId` in quotes, as messages name a source.
impl std::fmt::Display for SourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Main => f.write_str("main"),
            Self::Id(id) => write!(f, "\"{id}\""),
        }
    }
}

pub struct Peer {
    pub id: PeerId,
    pub session_id: String,
    pub etag: String,
    pub stream: StreamKey,
    /// Boxed: an `Rtc` is ~10 kB, and the engine's peer table would otherwise hold that inline
    /// for every slot of its capacity and move it on every resize.
    pub rtc: Box<Rtc>,
    /// Our ICE ufrag (routes STUN to this peer) and the client's (tells trickle from restart).
    pub local_ufrag: String,
    pub remote_ufrag: Option<String>,
    /// Remote addresses bound to this peer in the demultiplexer.
    pub addrs: Vec<Remote>,
    pub created: Instant,
    pub connected: bool,
    /// str0m's next timeout, as last drained.
    pub deadline: Instant,
    /// The timer-heap entry that will wake this peer, if any (older entries are stale).
    pub scheduled: Option<Instant>,
    pub role: Role,
}

pub enum Role {
    Publisher(Publisher),
    Viewer(Viewer),
    /// A connectivity check: ICE and DTLS, no media, no stream; ends after a short while.
    Probe,
}

pub struct Publisher {
    pub source: SourceName,
    pub token_id: String,
    pub record: bool,
    pub tracks: Vec<TrackIn>,
}

/// One simulcast layer of an incoming track, as its packets taught us (a track without
/// simulcast has one, without a RID).
pub struct LayerIn {
    pub rid: Option<Rid>,
    pub ssrc: Ssrc,
}

/// One incoming m-line of a publisher.
pub struct TrackIn {
    pub mid: Mid,
    pub kind: MediaKind,
    /// In the order their first packets came (not ranked by quality).
    pub layers: Vec<LayerIn>,
    /// The codec of the last packet (payload type → params), looked up when the type changes.
    pub params: Option<PayloadParams>,
    pub keyframes: KeyframeThrottle,
    pub bytes: u64,
    pub bitrate_bps: u64,
}

impl TrackIn {
    pub fn new(mid: Mid, kind: MediaKind) -> Self {
        Self {
            mid,
            kind,
            layers: Vec::new(),
            params: None,
            keyframes: KeyframeThrottle::default(),
            bytes: 0,
            bitrate_bps: 0,
        }
    }
}

impl Publisher {
    /// The track and layer an incoming packet belongs to, with its codec: an SSRC is learnt on
    /// first sight (through the m-line and RID str0m matched it to; a new SSRC for a known RID
    /// replaces the old one), the codec looked up again only when the payload type changes.
    /// `None` for a packet of no negotiated track or codec.
    pub fn track_for(&mut self, rtc: &mut Rtc, ssrc: Ssrc, pt: Pt) -> Option<(&mut TrackIn, u8, PayloadParams)> {
        let known = self.tracks.iter().enumerate().find_map(|(index, track)| {
            track.layers.iter().position(|layer| layer.ssrc == ssrc).map(|layer| (index, layer))
        });
        let (index, layer) = match known {
            Some(known) => known,
            None => {
                let (mid, rid) = rtc.direct_api().stream_rx(&ssrc).map(|rx| (rx.mid(), rx.rid()))?;
                let index = self.tracks.iter().position(|t| t.mid == mid)?;
                let layers = &mut self.tracks[index].layers;
                let layer = match layers.iter().position(|layer| layer.rid == rid) {
                    Some(layer) => {
                        layers[layer].ssrc = ssrc;
                        layer
                    }
                    None => {
                        layers.push(LayerIn { rid, ssrc });
                        layers.len() - 1
                    }
                };
                (index, layer)
            }
        };
        let layer = u8::try_from(layer).ok()?;
        let track = &mut self.tracks[index];
        if track.params.map(|p| p.pt()) != Some(pt) {
            track.params = rtc.codec_config().find(|p| p.pt() == pt).copied();
        }
        let params = track.params?;
        Some((track, layer, params))
    }

    pub fn has_video(&self) -> bool {
        self.tracks.iter().any(|t| t.kind == MediaKind::Video)
    }
}

pub struct Viewer {
    pub pairs: Vec<Pair>,
    /// The address that asked (its viewers still connecting are limited).
    pub client: std::net::IpAddr,
    /// What the pairs show, for the session's event feed (written when a pair changes source).
    pub shown: tokio::sync::watch::Sender<Vec<PairInfo>>,
}

impl Viewer {
    pub fn new(pairs: Vec<Pair>, client: std::net::IpAddr) -> Self {
        let shown = tokio::sync::watch::Sender::new(Self::describe(&pairs));
        Self { pairs, client, shown }
    }

    fn describe(pairs: &[Pair]) -> Vec<PairInfo> {
        pairs
            .iter()
            .enumerate()
            .map(|(pair, p)| PairInfo {
                pair,
                assigned: p.bound.is_some(),
                source_id: p.bound.as_ref().and_then(SourceName::source_id),
                video: p.video.is_some(),
                audio: p.audio.is_some(),
            })
            .collect()
    }

    /// Tells the session's feed what the pairs show now, if that changed.
    pub fn publish_pairs(&self) {
        let now = Self::describe(&self.pairs);
        self.shown.send_if_modified(|shown| {
            let changed = *shown != now;
            if changed {
                *shown = now;
            }
            changed
        });
    }
}

/// An audio/video pair of a viewer's offer, showing one source.
pub struct Pair {
    /// The source shown; `None` while nothing is assigned.
    pub bound: Option<SourceName>,
    pub video: Option<OutTrack>,
    pub audio: Option<OutTrack>,
}

impl Pair {
    pub fn track_mut(&mut self, kind: MediaKind) -> Option<&mut OutTrack> {
        match kind {
            MediaKind::Video => self.video.as_mut(),
            MediaKind::Audio => self.audio.as_mut(),
        }
    }

    pub fn tracks_mut(&mut self) -> impl Iterator<Item = &mut OutTrack> {
        self.video.iter_mut().chain(self.audio.iter_mut())
    }

    pub fn waits_for_keyframe(&self) -> bool {
        self.video.as_ref().is_some_and(OutTrack::waits_for_keyframe)
    }
}

impl Peer {
    pub fn kind(&self) -> SessionKind {
        match self.role {
            Role::Publisher(_) => SessionKind::Publisher,
            Role::Viewer(_) => SessionKind::Viewer,
            Role::Probe => SessionKind::Probe,
        }
    }

    pub fn publisher(&self) -> Option<&Publisher> {
        match &self.role {
            Role::Publisher(p) => Some(p),
            Role::Viewer(_) | Role::Probe => None,
        }
    }

    pub fn publisher_mut(&mut self) -> Option<&mut Publisher> {
        match &mut self.role {
            Role::Publisher(p) => Some(p),
            Role::Viewer(_) | Role::Probe => None,
        }
    }

    pub fn viewer_mut(&mut self) -> Option<&mut Viewer> {
        match &mut self.role {
            Role::Viewer(v) => Some(v),
            Role::Publisher(_) | Role::Probe => None,
        }
    }

    /// Runs `f` on the `Rtc`, turning a panic inside str0m into a dead peer instead of a dead
    /// SFU. Returns `None` when the peer must be dropped.
    pub fn guarded<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.rtc))) {
            Ok(r) => Some(r),
            Err(_) => {
                tracing::error!(session = %self.session_id, "str0m panicked; dropping the peer");
                None
            }
        }
    }

    /// Drains every output after a mutation (str0m's rule), sending datagrams through `send` and
    /// queueing events. Returns `false` when the peer is finished.
    pub fn drain(&mut self, mut send: impl FnMut(str0m::net::Transmit), events: &mut Vec<(PeerId, Event)>) -> bool {
        let id = self.id;
        let outcome = catch_unwind(AssertUnwindSafe(|| loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Ok(at),
                Ok(Output::Transmit(t)) => send(t),
                Ok(Output::Event(e)) => events.push((id, e)),
                Err(err) => return Err(err.to_string()),
            }
        }));
        match outcome {
            Ok(Ok(at)) => {
                self.deadline = at;
                self.rtc.is_alive()
            }
            Ok(Err(err)) => {
                tracing::debug!(session = %self.session_id, %err, "peer failed");
                false
            }
            Err(_) => {
                tracing::error!(session = %self.session_id, "str0m panicked while draining; dropping the peer");
                false
            }
        }
    }
}
