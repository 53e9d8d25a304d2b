//! One WHIP or WHEP session: its `Rtc` and what it means to the SFU.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    time::Instant,
};

use str0m::{
    format::PayloadParams,
    media::{MediaKind, Mid, Pt, Rid},
    rtp::Ssrc,
    Event, Input, Output, Rtc,
};

use crate::names::SourceId;

use super::{
    api::{LayerInfo, PairInfo, SessionKind, StreamKey, ViewerPass},
    demux::Remote,
    ending::{Ending, Liveness},
    forward::OutTrack,
    layers::{self, Climb, LayerIn, LayerName, Quality},
};

/// Timeouts already due that [`Peer::drain`] handles itself before it hands the next one to the
/// engine's timer heap. str0m's pacer (on for viewers with bandwidth estimation) releases one
/// packet per timeout and asks for an immediate one after each, so without this every packet to
/// such a viewer takes two trips through the heap and the engine's loop. Bounded, so that a peer
/// that keeps asking cannot hold the media task.
const DUE_TIMEOUTS_INLINE: u32 = 16;

/// Simulcast layers kept per track: browsers send up to three or four; a layer index and a
/// [`LayerMask`] bit must fit.
pub const MAX_LAYERS: usize = 8;

/// A set of layer indices of a track (keyframe requests name the layers they are for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerMask(u8);

impl LayerMask {
    pub const ALL: Self = Self(u8::MAX);

    pub fn one(layer: u8) -> Self {
        Self(1u8.checked_shl(u32::from(layer)).unwrap_or(0))
    }

    pub fn add(&mut self, layer: u8) {
        self.0 |= Self::one(layer).0;
    }

    pub fn contains(self, layer: usize) -> bool {
        layer < MAX_LAYERS && self.0 & (1 << layer) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

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
    /// ICE consent and authenticated input: whether the peer is still there ([`Liveness`]).
    pub liveness: Liveness,
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
    pub health: Health,
}

/// How a publisher's connection fares, for the Live page: str0m's statistics (every
/// [`STATS_INTERVAL`], publishers only) and the keyframes the engine asked it for.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Round trip from RTCP, when the publisher's reports allow one.
    pub rtt_ms: Option<u32>,
    /// Fraction of packets lost on the way in over the last interval, from transport-wide
    /// sequence numbers (publishers that send them: browsers).
    pub loss: Option<f32>,
    /// Per incoming stream: NACKs sent (str0m reports running totals) and the fraction lost in
    /// our last receiver report.
    pub streams: Vec<IngressHealth>,
    pub keyframe_requests: u64,
}

#[derive(Clone, Debug)]
pub struct IngressHealth {
    pub mid: Mid,
    pub rid: Option<Rid>,
    pub nacks: u64,
    pub loss: Option<f32>,
}

/// How often str0m reports a publisher's statistics.
pub const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl Health {
    pub fn nacks(&self) -> u64 {
        self.streams.iter().map(|s| s.nacks).sum()
    }

    /// The connection's loss, else the worst stream's.
    pub fn loss(&self) -> Option<f32> {
        self.loss.or_else(|| self.streams.iter().filter_map(|s| s.loss).reduce(f32::max))
    }

    /// The connection's figures (every [`STATS_INTERVAL`]).
    pub fn note_peer(&mut self, stats: &str0m::stats::PeerStats) {
        self.loss = stats.ingress_loss_fraction.or(self.loss);
        self.rtt_ms = stats.rtt.map(millis).or(self.rtt_ms);
    }

    /// One incoming stream's figures: NACKs, its loss, and an RTT when the connection gave none.
    pub fn note_ingress(&mut self, stats: &str0m::stats::MediaIngressStats) {
        self.rtt_ms = self.rtt_ms.or(stats.rtt.map(millis));
        match self.streams.iter_mut().find(|s| s.mid == stats.mid && s.rid == stats.rid) {
            Some(stream) => {
                stream.nacks = stats.nacks;
                stream.loss = stats.loss.or(stream.loss);
            }
            None => self.streams.push(IngressHealth {
                mid: stats.mid,
                rid: stats.rid,
                nacks: stats.nacks,
                loss: stats.loss,
            }),
        }
    }
}

fn millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// One incoming m-line of a publisher.
pub struct TrackIn {
    pub mid: Mid,
    pub kind: MediaKind,
    /// In the order their first packets came (a track without simulcast has one, without a RID).
    pub layers: Vec<LayerIn>,
    /// `layers`' indices from best to worst ([`layers::rank`]).
    pub ranked: Vec<u8>,
    /// The codec of the last packet (payload type → params), looked up when the type changes.
    pub params: Option<PayloadParams>,
}

impl TrackIn {
    pub fn new(mid: Mid, kind: MediaKind) -> Self {
        Self { mid, kind, layers: Vec::new(), ranked: Vec::new(), params: None }
    }

    pub fn bitrate_bps(&self) -> u64 {
        self.layers.iter().map(|l| l.stats.bitrate_bps).sum()
    }

    pub fn is_simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// The name a layer goes by now (its rank among the track's layers).
    pub fn layer_name(&self, layer: u8) -> Option<LayerName> {
        let rank = self.ranked.iter().position(|&l| l == layer)?;
        Some(LayerName::of_rank(rank, self.ranked.len()))
    }

    /// The layers as the API shows them, best first (`settled`: the figures for live feeds).
    pub fn layer_infos(&self, now: Instant, settled: bool) -> Vec<LayerInfo> {
        self.ranked
            .iter()
            .enumerate()
            .filter_map(|(rank, &index)| {
                let layer = self.layers.get(usize::from(index))?;
                let stats = if settled { layer.settled } else { layer.stats };
                Some(LayerInfo {
                    layer: LayerName::of_rank(rank, self.ranked.len()),
                    rid: layer.rid.map(|rid| rid.to_string()),
                    width: stats.size.map(|(w, _)| w),
                    height: stats.size.map(|(_, h)| h),
                    fps: stats.fps,
                    bitrate_bps: stats.bitrate_bps,
                    active: layer.is_active(now),
                })
            })
            .collect()
    }

    /// Updates the rates once a second and ranks the layers again.
    pub fn tick(&mut self, now: Instant) {
        self.layers.iter_mut().for_each(|layer| layer.tick(now));
        self.ranked = layers::rank(&self.layers);
    }
}

impl Publisher {
    /// The track and layer an incoming packet belongs to, with its codec: an SSRC is learnt on
    /// first sight (through the m-line and RID str0m matched it to; a new SSRC for a known RID
    /// replaces the old one), the codec looked up again only when the payload type changes.
    /// `None` for a packet of no negotiated track or codec.
    pub fn track_for(
        &mut self,
        rtc: &mut Rtc,
        ssrc: Ssrc,
        pt: Pt,
        now: Instant,
    ) -> Option<(&mut TrackIn, u8, PayloadParams)> {
        let known = self.tracks.iter().enumerate().find_map(|(index, track)| {
            track.layers.iter().position(|layer| layer.ssrc == ssrc).map(|layer| (index, layer))
        });
        let (index, layer) = match known {
            Some(known) => known,
            None => {
                let (mid, rid) = rtc.direct_api().stream_rx(&ssrc).map(|rx| (rx.mid(), rx.rid()))?;
                let index = self.tracks.iter().position(|t| t.mid == mid)?;
                let track = &mut self.tracks[index];
                let layer = match track.layers.iter().position(|layer| layer.rid == rid) {
                    Some(layer) => {
                        track.layers[layer].ssrc = ssrc;
                        layer
                    }
                    None if track.layers.len() < MAX_LAYERS => {
                        track.layers.push(LayerIn::new(rid, ssrc, now));
                        track.ranked = layers::rank(&track.layers);
                        track.layers.len() - 1
                    }
                    None => return None,
                };
                (index, layer)
            }
        };
        let layer = layer as u8; // below MAX_LAYERS
        let track = &mut self.tracks[index];
        if track.params.map(|p| p.pt()) != Some(pt) {
            track.params = rtc.codec_config().find(|p| p.pt() == pt).copied();
        }
        let params = track.params?;
        Some((track, layer, params))
    }

    /// The video track viewers are given (a publisher sends one).
    pub fn video(&self) -> Option<&TrackIn> {
        self.tracks.iter().find(|t| t.kind == MediaKind::Video)
    }

    pub fn has_video(&self) -> bool {
        self.tracks.iter().any(|t| t.kind == MediaKind::Video)
    }
}

pub struct Viewer {
    pub pairs: Vec<Pair>,
    /// Send-side bandwidth estimation toward this viewer: on for viewers of a simulcast source
    /// (auto picks the layer that fits), off otherwise (it costs memory and CPU per viewer).
    pub estimation: Option<Estimation>,
    /// The address that asked (its viewers still connecting are limited).
    pub client: std::net::IpAddr,
    /// What the pairs show, for the session's event feed (written when a pair changes source).
    pub shown: tokio::sync::watch::Sender<Vec<PairInfo>>,
    /// The subscribe token or link that let it in, if the stream needed one.
    pub pass: Option<ViewerPass>,
    /// The site whose page plays it, when not this server's.
    pub embedded_on: Option<std::sync::Arc<str>>,
}

/// What is reserved of an estimate for each pair's audio (Opus at its usual rates, with headers).
pub const AUDIO_BPS: u64 = 64_000;

/// A viewer's bandwidth estimate and what the estimator was last told to look for.
#[derive(Debug, Default)]
pub struct Estimation {
    /// The latest estimate, once there is one.
    pub bps: Option<u64>,
    /// (minimum, desired) last handed to str0m's estimator.
    pub steered: (u64, u64),
}

impl Estimation {
    /// The share of the estimate one pair's video may use.
    pub fn budget_per_pair(&self, pairs: usize) -> Option<u64> {
        let pairs = pairs.max(1) as u64;
        self.bps.map(|bps| bps.saturating_sub(AUDIO_BPS * pairs) / pairs)
    }
}

impl Viewer {
    pub fn new(
        pairs: Vec<Pair>,
        client: std::net::IpAddr,
        pass: Option<ViewerPass>,
        embedded_on: Option<std::sync::Arc<str>>,
        estimating: bool,
    ) -> Self {
        let shown = tokio::sync::watch::Sender::new(Self::describe(&pairs));
        Self { pairs, estimation: estimating.then(Estimation::default), client, shown, pass, embedded_on }
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
                layer: p.layer_shown,
                auto: p.quality == Quality::Auto,
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
    /// The simulcast layer the viewer asked for (auto unless it chose one).
    pub quality: Quality,
    /// The layer's name as the session's feed last showed it (`None` without simulcast).
    pub layer_shown: Option<LayerName>,
    /// (minimum, desired) bitrate for the bandwidth estimator, from the pair's layers.
    pub wanted_bps: (u64, u64),
    /// Auto's way up to a better layer (a trial before each move up).
    pub climb: Climb,
}

impl Pair {
    pub fn new(bound: Option<SourceName>, video: Option<OutTrack>, audio: Option<OutTrack>) -> Self {
        let quality = Quality::Auto;
        Self { bound, video, audio, quality, layer_shown: None, wanted_bps: (0, 0), climb: Climb::default() }
    }

    pub fn track_mut(&mut self, kind: MediaKind) -> Option<&mut OutTrack> {
        match kind {
            MediaKind::Video => self.video.as_mut(),
            MediaKind::Audio => self.audio.as_mut(),
        }
    }

    pub fn tracks_mut(&mut self) -> impl Iterator<Item = &mut OutTrack> {
        self.video.iter_mut().chain(self.audio.iter_mut())
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

    pub fn viewer(&self) -> Option<&Viewer> {
        match &self.role {
            Role::Viewer(v) => Some(v),
            Role::Publisher(_) | Role::Probe => None,
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

    /// Hands an input to str0m. An error says the peer must end: a panic, or a DTLS handshake the
    /// input (or the timeout) failed; any other input str0m refuses is dropped.
    pub fn handle(&mut self, input: Input) -> Result<(), Ending> {
        match self.guarded(|rtc| rtc.handle_input(input)) {
            Some(Ok(())) => Ok(()),
            Some(Err(err)) => Ending::of_failed_dtls().map_or_else(
                || {
                    tracing::debug!(session = %self.session_id, %err, "input rejected");
                    Ok(())
                },
                Err,
            ),
            None => Err(Ending::Panicked),
        }
    }

    /// Drains every output after a mutation (str0m's rule), sending datagrams through `send` and
    /// queueing events. An error says why the peer is finished.
    pub fn drain(
        &mut self,
        mut send: impl FnMut(str0m::net::Transmit),
        events: &mut Vec<(PeerId, Event)>,
    ) -> Result<(), Ending> {
        let id = self.id;
        let mut inline = 0;
        let outcome = catch_unwind(AssertUnwindSafe(|| loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    let now = Instant::now();
                    if at > now || inline == DUE_TIMEOUTS_INLINE {
                        return Ok(at);
                    }
                    inline += 1;
                    // As the timer heap's turn does: a timeout str0m refuses is not the peer's end,
                    // unless it failed the DTLS handshake (a retransmission can).
                    if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                        return Ending::of_failed_dtls().map_or(Ok(at), Err);
                    }
                }
                Ok(Output::Transmit(t)) => send(t),
                Ok(Output::Event(e)) => events.push((id, e)),
                Err(err) => return Err(Ending::of_failed_dtls().unwrap_or(Ending::Failed(err.to_string()))),
            }
        }));
        match outcome {
            Ok(Ok(at)) => {
                self.deadline = at;
                if self.rtc.is_alive() {
                    Ok(())
                } else {
                    // str0m closes a peer whose DTLS failed inside its own poll.
                    Err(Ending::of_failed_dtls().unwrap_or(Ending::Closed))
                }
            }
            Ok(Err(ending)) => Err(ending),
            Err(_) => {
                tracing::error!(session = %self.session_id, "str0m panicked while draining; dropping the peer");
                Err(Ending::Panicked)
            }
        }
    }
}
