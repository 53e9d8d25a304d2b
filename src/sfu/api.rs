//! The SFU's interface: commands with reply channels, their answers and errors, and the live-state
//! snapshots it publishes. Plain data; the HTTP side maps [`SfuError`] to status codes.

use std::{fmt, sync::Arc};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::names::{AccountId, SourceId, StreamName};

/// `{accountId}/{streamName}`: what viewers ask for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// The owner's public id (an [`AccountId`] from a URL, or an account's own from the database).
    pub account: Arc<str>,
    pub name: StreamName,
}

impl StreamKey {
    pub fn new(account: &str, name: &StreamName) -> Self {
        Self { account: account.into(), name: name.clone() }
    }

    /// The key of connectivity probes: no account is empty, so it is no stream's.
    pub fn probe() -> Self {
        Self { account: "".into(), name: StreamName::parse(PROBE_STREAM).expect("PROBE_STREAM is a stream name") }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.name)
    }
}

/// A WHIP publish, already authorised by the HTTP side.
#[derive(Debug)]
pub struct PublishRequest {
    pub stream: StreamKey,
    /// `None` is the main source.
    pub source: Option<SourceId>,
    /// The publish token that authorised it: deleting the token ends the feed.
    pub token_id: String,
    pub record: bool,
    pub offer: String,
    /// The owner's limits (its feeds at once count against `max_publishers`).
    pub limits: AccountLimits,
}

/// What one account may use of the SFU at once, over all its streams (README "Sign-up and the
/// operator"); past one, offers are refused with 503 and the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_publishers: usize,
    pub max_viewers: Option<u32>,
    /// Bits a second to its viewers, estimated as each stream's rate × its viewers.
    pub max_egress_bps: Option<u64>,
}

/// A WHEP view.
#[derive(Debug)]
pub struct ViewRequest {
    pub stream: StreamKey,
    /// The source to show in the first audio/video pair; `None` = the main source.
    pub source: Option<SourceId>,
    pub offer: String,
    /// Who asks: viewers still connecting have a budget per address.
    pub client: std::net::IpAddr,
    /// What let the viewer in, when the stream is not open to everyone.
    pub pass: Option<ViewerPass>,
    /// The site whose page plays the stream (counted on the Live page), when not this server's.
    pub embedded_on: Option<Arc<str>>,
    /// The stream owner's limits (viewers and egress over all its streams).
    pub limits: AccountLimits,
}

/// A subscribe token or signed viewer link a viewer was let in with: its viewers are counted
/// together (on every stream it covers) and held to its cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewerPass {
    pub kind: PassKind,
    /// The subscribe token's id, or the link's.
    pub id: Arc<str>,
    /// At most this many viewers at once (connected or connecting).
    pub max_viewers: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PassKind {
    SubscribeToken,
    Link,
}

/// A connectivity probe (`/api/v1/self-check/probe`): a session that only proves ICE and DTLS
/// get through, over the transport asked for.
#[derive(Debug)]
pub struct ProbeRequest {
    pub transport: ProbeTransport,
    pub offer: String,
}

/// The stream name a probe's session URL carries (no stream has an empty account).
pub const PROBE_STREAM: &str = "probe";

/// Which of the SFU's candidates a probe's answer offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeTransport {
    Udp,
    Tcp,
    /// Every candidate (a TURN relay picks what reaches it).
    Any,
}

/// What a successful POST answers.
#[derive(Debug)]
pub struct SessionCreated {
    pub session_id: String,
    pub etag: String,
    pub answer: String,
}

/// Which door a session came through; a session URL of the other kind does not find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    Publisher,
    Viewer,
    Probe,
}

/// A STUN or TURN server handed to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl IceServer {
    /// A TURN relay (`turn:` or `turns:`), as opposed to STUN.
    pub fn is_turn(&self) -> bool {
        self.url.starts_with("turn:") || self.url.starts_with("turns:")
    }
}

/// Why the SFU said no. Every variant is the client's problem or a limit, except `Unavailable`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    #[error("{0}")]
    BadOffer(String),
    #[error("no codec in common: {0}")]
    NoCommonCodec(String),
    #[error("the stream is not live")]
    NotLive,
    #[error("no such session")]
    SessionNotFound,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    LimitReached(String),
    /// A cap of the account or token that asks (not of the server): 429.
    #[error("{0}")]
    QuotaReached(String),
    #[error("ICE restarts are not supported; start a new session")]
    IceRestartUnsupported,
    #[error("the ETag in If-Match does not match this session")]
    PreconditionFailed,
    #[error("{0}")]
    BadRequest(String),
    #[error("the media server is unavailable")]
    Unavailable,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

/// Everything the engine can be asked to do.
pub(crate) enum Command {
    Publish(PublishRequest, Reply<SessionCreated>),
    View(ViewRequest, Reply<SessionCreated>),
    Probe(ProbeRequest, Reply<SessionCreated>),
    Trickle {
        session: SessionRef,
        if_match: Option<String>,
        fragment: String,
        reply: Reply<()>,
    },
    End {
        session: SessionRef,
        reply: Reply<()>,
    },
    Select {
        session: SessionRef,
        selection: Selection,
        reply: Reply<()>,
    },
    EndToken {
        token_id: String,
        reply: Reply<usize>,
    },
    Streams {
        account: Option<Arc<str>>,
        reply: oneshot::Sender<Vec<StreamInfo>>,
    },
    Stream {
        key: StreamKey,
        reply: oneshot::Sender<Option<StreamInfo>>,
    },
    Session {
        session: SessionRef,
        reply: Reply<SessionInfo>,
    },
    /// The feed of recording `from` is now recorded as `to` (it changed codec), or, with `None`,
    /// no more (the recording failed, or the disk is full).
    RecordingMoved {
        from: crate::recorder::RecordingId,
        to: Option<crate::recorder::RecordingId>,
    },
    /// The recorder lost video packets and waits for a keyframe of this recording's feed.
    RecordingKeyframe {
        id: crate::recorder::RecordingId,
    },
}

/// What a viewer asks of one of its audio/video pairs (the WHEP layer extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub pair: usize,
    pub source: SourceChoice,
    /// The simulcast layer; `None` leaves it as it is.
    pub quality: Option<crate::sfu::layers::Quality>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChoice {
    /// Whatever the pair shows now.
    Keep,
    Main,
    Id(SourceId),
}

/// A session URL as the HTTP side saw it: the id must belong to this stream and door.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id: String,
    pub kind: SessionKind,
    /// For WHIP the account is not in the URL; `None` matches any account.
    pub account: Option<AccountId>,
    pub stream_name: StreamName,
}

/// Enough about a session to serve its event feed.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub stream: StreamKey,
    /// What a viewer's audio/video pairs show, as it changes (`None` for a publisher).
    pub pairs: Option<tokio::sync::watch::Receiver<Vec<PairInfo>>>,
}

/// What one audio/video pair of a viewer shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PairInfo {
    pub pair: usize,
    /// Whether a source is assigned; `sourceId` `null` with `assigned` is the main source.
    pub assigned: bool,
    pub source_id: Option<String>,
    pub video: bool,
    pub audio: bool,
    /// The simulcast layer shown (`null` without simulcast, or before the first picture).
    pub layer: Option<crate::sfu::layers::LayerName>,
    /// Whether the layer is chosen by the SFU (the viewer asked for `auto`, the default).
    pub auto: bool,
}

/// The live state of one stream.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    pub account_id: String,
    pub stream_name: String,
    pub live: bool,
    pub viewers: usize,
    /// Unix seconds when the oldest live source started.
    pub started_at: Option<i64>,
    pub bitrate_bps: u64,
    /// What it sends to its viewers now, estimated: what one viewer receives at most (each live
    /// source, a simulcast video at its best layer) × the connected viewers.
    pub egress_bps: u64,
    pub recording: bool,
    pub sources: Vec<SourceInfo>,
    /// Connected viewers by what let them in (subscribe token, link); those who needed nothing
    /// are not listed.
    pub viewers_by_pass: Vec<PassViewers>,
    /// Connected viewers by the site whose page plays the stream; this server's own pages
    /// opened directly are not listed.
    pub viewers_by_site: Vec<SiteViewers>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SiteViewers {
    pub origin: String,
    pub viewers: usize,
}

/// How many connected viewers one subscribe token or link has on a stream.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PassViewers {
    pub kind: PassKind,
    pub id: String,
    pub viewers: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// `null` for the main source.
    pub source_id: Option<String>,
    pub active: bool,
    pub started_at: i64,
    pub bitrate_bps: u64,
    pub recording: bool,
    pub tracks: Vec<TrackInfo>,
    /// The video's layers, best first.
    pub layers: Vec<LayerInfo>,
    /// The publish token feeding it.
    pub token_id: String,
    pub health: SourceHealth,
}

/// How the publisher's connection fares.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceHealth {
    /// `null` until the publisher's RTCP allows a measure (many encoders send none that does).
    pub rtt_ms: Option<u32>,
    /// Packets lost on the way in over the last two seconds, in percent (`null` before a report).
    pub loss_percent: Option<f32>,
    /// Retransmissions asked for since the feed started.
    pub nacks: u64,
    /// Keyframes asked for (new viewers, layer switches, the recorder, losses).
    pub keyframe_requests: u64,
}

/// One simulcast layer of a source's video (a video track without simulcast shows as one layer,
/// `rid` `null`), best first.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LayerInfo {
    /// By rank: `high`, `medium`, `low`.
    pub layer: crate::sfu::layers::LayerName,
    pub rid: Option<String>,
    /// From the layer's last keyframe; `null` before one is read (and for AV1).
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub fps: u32,
    pub bitrate_bps: u64,
    /// Whether the publisher sends it now (browsers stop their top layer under pressure).
    pub active: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// `audio` or `video`.
    pub kind: &'static str,
    /// `opus`, `vp8`, `vp9`, `h264`, `av1`; `null` before the first packet.
    pub codec: Option<&'static str>,
    pub bitrate_bps: u64,
}
