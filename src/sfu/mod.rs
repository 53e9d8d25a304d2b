//! The SFU: WebRTC media in and out, nothing else (no HTTP, no SQL).
//!
//! # Design
//! * **One owner.** [`engine::Engine`] is a single tokio task that owns the UDP socket(s) and every
//!   peer connection (a sans-IO [`str0m::Rtc`] in RTP mode per WHIP or WHEP session). Nothing else
//!   touches a peer: HTTP handlers talk to it through [`SfuHandle`], which sends a typed
//!   [`Command`](api::Command) with a reply channel and waits (bounded) for the answer.
//! * **Where a packet enters.** [`engine::Engine::on_datagram`]: a datagram read from the socket is
//!   routed by [`demux::Demux`] (source address, else the ICE ufrag in a STUN request's USERNAME) to
//!   one peer and handed to its `Rtc`. Draining that `Rtc` yields events; a publisher's
//!   `Event::RtpPacket` goes to [`engine::Engine::forward`].
//! * **Where it leaves.** `forward` looks up the source's subscribers (a list kept on the source),
//!   rewrites the header per viewer ([`forward::OutTrack`]: SSRC via the viewer's own send stream,
//!   payload type, sequence number, timestamp), writes it into the viewer's `Rtc`, drains it, and
//!   each `Output::Transmit` is sent with a non-blocking `try_send_to`. The payload is an
//!   `Arc<[u8]>` shared by every viewer: no copy until SRTP encrypts.
//! * **A slow viewer** never blocks anything: sends never wait (a full socket buffer drops the
//!   datagram and counts it in `/metrics`), the viewer's NACKs are answered from its own send buffer, and a viewer
//!   that stops answering ICE is disconnected by str0m and removed.
//! * **Keyframes**: a viewer that joins or switches waits for a keyframe and asks the publisher for
//!   one through [`keyframe::KeyframeThrottle`] (one per 300 ms per layer, with a trailing request).
//! * **Simulcast** lives in [`layers`]: a track's layers are learnt by RID and ranked; each viewer
//!   pair targets one (its quality among the layers sending now, worked out on the housekeeping
//!   tick) and its track moves there at that layer's keyframe ([`forward::OutTrack::takes`]).
//! * **Multisource and replacement** live in [`registry`]: a stream has sources keyed by `sourceId`
//!   (none = main); a new publisher for a taken source waits as `pending` and takes over at its
//!   first keyframe, so viewers keep their connection and their sequence numbers stay continuous.

pub mod api;
pub mod board;
// `demux` and `forward` are public for the hot-path benchmarks (benches/hot_path.rs).
pub mod demux;
mod dtls;
mod ending;
mod engine;
pub mod fault;
pub mod forward;
mod handle;
mod keyframe;
pub mod layers;
pub mod offer;
mod peer;
mod registry;

pub use api::{
    AccountLimits, IceServer, LayerInfo, PairInfo, PublishRequest, Selection, SessionCreated, SessionInfo, SfuError,
    SourceChoice, SourceInfo, StreamInfo, StreamKey, TrackInfo, ViewRequest,
};
pub use board::{Board, LiveSource, LiveState, LiveTrack, StreamChange, StreamEvent, Watching};
pub use engine::rtc_config;
pub use handle::SfuHandle;

use std::{net::IpAddr, time::Duration};

use crate::recorder::Recorder;

/// Where media arrives and what candidates say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaAddresses {
    /// One socket per address, each announced as itself (`--rtc-ip`).
    Direct(Vec<IpAddr>),
    /// One socket bound to `bind`, announced as each of `public`: a machine behind 1:1 NAT has
    /// only a private address on its interface (`--rtc-public-ip`, `--rtc-bind`).
    Announced { bind: IpAddr, public: Vec<IpAddr> },
}

/// Which TCP port carries ICE-TCP (RFC 6544 passive candidates) beside the UDP one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpPort {
    /// The UDP port's number (the usual firewall rule opens both).
    SameAsUdp,
    /// This port; 0 picks one.
    Port(u16),
    /// UDP only.
    Off,
}

/// Viewers still connecting (offer answered, ICE not done) allowed per stream, per client
/// address, and in all. They do not count against the viewer caps, which count connected
/// viewers; these budgets keep offers that never connect from crowding real viewers out, and
/// leave room for a classroom behind one address, or a join storm of hundreds on one stream
/// (`cargo bench --bench fanout -- --viewers 150` joins 150 at once), connecting at once.
pub const PENDING_VIEWERS_PER_STREAM: usize = 512;
pub const PENDING_VIEWERS_PER_ADDRESS: usize = 16;
pub const PENDING_VIEWERS: usize = 2048;

/// How the SFU is set up (from the command line).
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// The UDP port every peer shares; 0 picks one.
    pub udp_port: u16,
    pub tcp_port: TcpPort,
    /// Where the UDP sockets (and TCP listeners) bind and which addresses their candidates announce.
    pub addresses: MediaAddresses,
    pub max_sources_per_stream: usize,
    /// Feeds one publish token may publish at once.
    pub max_publishers_per_token: usize,
    pub max_viewers_per_stream: usize,
    pub max_viewers: usize,
    /// How long a peer may take from its offer to ICE + DTLS connected.
    pub connect_timeout: Duration,
    /// How long viewers stay connected to a stream whose every source has gone.
    pub orphan_grace: Duration,
    /// Where recorded feeds go (`None`: nothing is recorded, whatever tokens allow).
    pub recorder: Option<Recorder>,
    /// Where the live board offers streams' changes (the webhooks); `None`: nobody listens.
    pub stream_events: Option<tokio::sync::mpsc::Sender<board::StreamEvent>>,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            udp_port: 0,
            tcp_port: TcpPort::SameAsUdp,
            addresses: MediaAddresses::Direct(vec![IpAddr::from([127, 0, 0, 1])]),
            max_sources_per_stream: 8,
            max_publishers_per_token: 16,
            max_viewers_per_stream: 1000,
            max_viewers: 4000,
            connect_timeout: Duration::from_secs(10),
            orphan_grace: Duration::from_secs(60),
            recorder: None,
            stream_events: None,
        }
    }
}

/// Binds the sockets and starts the engine task; the handle is how the rest of the program talks
/// to it.
pub async fn start(config: SfuConfig) -> std::io::Result<SfuHandle> {
    engine::spawn(config).await
}
