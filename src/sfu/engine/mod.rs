//! The engine task: owns the sockets and every peer; see the module comment in `sfu/mod.rs`.
//! This file is the loop and the packet path (in: `on_datagram`, out: `forward`); `commands.rs`
//! answers the handle, `lifecycle.rs` keeps peers, sources and keyframe requests in order.

mod commands;
mod lifecycle;
mod outbox;
mod tcp;

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    future::poll_fn,
    io,
    net::{IpAddr, SocketAddr},
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use str0m::{
    config::DtlsCert,
    format::PayloadParams,
    media::MediaKind,
    net::Receive,
    rtp::{ExtensionValues, RtpPacket, RtpWrite},
    Event, IceConnectionState, Input, Rtc,
};
use tokio::{
    net::UdpSocket,
    sync::{mpsc, Semaphore},
};

pub use commands::rtc_config;
use outbox::{Io, Socket};

use crate::recorder::{MediaCodec, Packet as RecordedPacket, Recorder, RecordingId};
use tcp::{TcpEvent, TcpLink};

use super::{
    api::Command,
    board::Board,
    demux::{Demux, Remote, Route},
    ending::{Ending, Verdict},
    fault,
    forward::{map_payload_type, starts_keyframe, Origin, OutTrack, Vp8Numbers},
    handle::SfuHandle,
    layers::keyframe_size,
    peer::{Peer, PeerId, Publisher, Role},
    registry::{Source, Streams},
    MediaAddresses, SfuConfig, TcpPort,
};

/// Datagrams handled per wake-up before commands and timers get a turn.
const READ_BATCH: usize = 64;
/// Housekeeping: trailing keyframe requests, timeouts, bitrates.
const TICK: Duration = Duration::from_millis(100);
/// A replacement that has not sent a keyframe by then takes over anyway.
const PROMOTE_AFTER: Duration = Duration::from_secs(3);
/// How long a connectivity probe may stay (the browser needs a few seconds at most).
const PROBE_LIFETIME: Duration = Duration::from_secs(30);
/// Probes at once, server-wide: each is a full peer connection.
const MAX_PROBES: usize = 32;
/// Socket buffers: a burst of keyframe packets to many viewers must not overflow them.
const SOCKET_BUFFER: usize = 4 << 20;

pub(super) async fn spawn(config: SfuConfig) -> io::Result<SfuHandle> {
    let MediaSockets { udp: sockets, tcp: listeners } = bind_media(&config)?;
    let udp_addrs: Vec<SocketAddr> = sockets.iter().flat_map(|s| s.announced.iter().copied()).collect();

    let (tcp_sender, tcp_events) = mpsc::channel(1024);
    let mut tcp_addrs = Vec::new();
    // Every connection is a viewer or a publisher at most; the rest are refused at accept.
    let tcp_limit = Arc::new(Semaphore::new(config.max_viewers + 64));
    for (listener, announced) in listeners {
        tcp::spawn_acceptor(listener, announced[0], tcp_sender.clone(), tcp_limit.clone());
        tcp_addrs.extend(announced);
    }
    drop(tcp_sender);

    let (commands_tx, commands) = mpsc::channel(1024);
    let board = Board::with_events(config.stream_events.clone());
    let cert = crate::sfu::dtls::crypto_provider().dtls_provider.generate_certificate();
    let engine = Engine {
        config,
        io: Io::new(sockets, tcp_addrs.clone()),
        commands,
        tcp_events: (!tcp_addrs.is_empty()).then_some(tcp_events),
        board: board.clone(),
        cert,
        peers: HashMap::new(),
        sessions: HashMap::new(),
        demux: Demux::default(),
        streams: Streams::default(),
        timers: BinaryHeap::new(),
        events: Vec::with_capacity(64),
        scratch: Vec::with_capacity(64),
        doomed: Vec::new(),
        next_peer: 1,
        last_stats: Instant::now(),
        reported_dropped: 0,
        reported_recorder_dropped: 0,
        counts: Counts::default(),
        buffer: vec![0; 2048],
    };
    tracing::info!(udp = ?udp_addrs, tcp = ?tcp_addrs, "SFU listening");
    // A panic that escapes every per-peer guard ends the engine: the server must then stop (and
    // be restarted by its supervisor) rather than serve pages without media.
    let (failed_tx, failed) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.run());
    tokio::spawn(async move {
        if let Err(err) = running.await {
            tracing::error!(%err, "the media engine died: every stream stopped");
            let _ = failed_tx.send(true);
        }
    });
    Ok(SfuHandle::new(commands_tx, board, failed, udp_addrs, tcp_addrs))
}

/// The engine's sockets before it runs: UDP ones, and ICE-TCP listeners with what they announce.
struct MediaSockets {
    udp: Vec<Socket>,
    tcp: Vec<(tokio::net::TcpListener, Vec<SocketAddr>)>,
}

/// Random UDP ports tried for one whose TCP twin is free as well, before TCP takes a port of its
/// own: the ephemeral range is shared with every outgoing TCP connection on the machine.
const PORT_PAIR_ATTEMPTS: usize = 32;

/// Binds the UDP sockets and ICE-TCP listeners the configuration asks for. One port number for
/// all, picked by the first bind; by default TCP takes the same number (one firewall rule).
fn bind_media(config: &SfuConfig) -> io::Result<MediaSockets> {
    // (where to bind, what to announce; nothing = the bound address).
    let plan: Vec<(IpAddr, &[IpAddr])> = match &config.addresses {
        MediaAddresses::Direct(ips) if ips.is_empty() => vec![(IpAddr::from([127, 0, 0, 1]), &[])],
        MediaAddresses::Direct(ips) => ips.iter().map(|ip| (*ip, &[][..])).collect(),
        MediaAddresses::Announced { bind, public } => vec![(*bind, public.as_slice())],
    };
    let announce = |bound: SocketAddr, public: &[IpAddr]| -> Vec<SocketAddr> {
        if public.is_empty() {
            vec![bound]
        } else {
            public.iter().map(|ip| SocketAddr::new(*ip, bound.port())).collect()
        }
    };
    let random_pair = config.udp_port == 0 && config.tcp_port == TcpPort::SameAsUdp;
    let mut attempt = 0;
    'attempt: loop {
        attempt += 1;
        let mut udp = Vec::new();
        let mut port = config.udp_port;
        for &(bind, public) in &plan {
            let addr = SocketAddr::new(bind, port);
            let socket = bind_udp(addr).map_err(|err| io::Error::new(err.kind(), format!("UDP {addr}: {err}")))?;
            let bound = socket.local_addr()?;
            port = bound.port();
            udp.push(Socket { udp: socket, announced: announce(bound, public) });
        }
        let mut tcp = Vec::new();
        let mut tcp_port = match config.tcp_port {
            TcpPort::Off => None,
            TcpPort::SameAsUdp => Some(port),
            TcpPort::Port(port) => Some(port),
        };
        for &(bind, public) in &plan {
            let Some(want) = tcp_port else { break };
            let addr = SocketAddr::new(bind, want);
            let listener = match tcp::bind(addr) {
                Ok(listener) => listener,
                // The UDP port was picked at random and its TCP twin is taken: try another pair,
                // and in the end let TCP pick a port of its own.
                Err(err) if random_pair && tcp.is_empty() && err.kind() == io::ErrorKind::AddrInUse => {
                    if attempt < PORT_PAIR_ATTEMPTS {
                        continue 'attempt;
                    }
                    tracing::info!(%err, "TCP {addr} taken; ICE-TCP on a port of its own");
                    tcp::bind(SocketAddr::new(bind, 0))?
                }
                Err(err) => {
                    return Err(io::Error::new(err.kind(), format!("TCP {addr} (ICE-TCP, --rtc-tcp-port): {err}")));
                }
            };
            let bound = listener.local_addr()?;
            tcp_port = Some(bound.port());
            tcp.push((listener, announce(bound, public)));
        }
        for socket in &udp {
            tracing::info!(bound = ?socket.udp.local_addr().ok(), announced = ?socket.announced, "SFU UDP socket");
        }
        for (listener, announced) in &tcp {
            tracing::info!(bound = ?listener.local_addr().ok(), announced = ?announced, "SFU ICE-TCP listener");
        }
        return Ok(MediaSockets { udp, tcp });
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    // Best effort: the kernel caps these at its configured maximum.
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl Io {
    /// Resolves with the index of a socket that has a datagram to read.
    async fn readable(&self) -> usize {
        poll_fn(|cx| {
            for (i, socket) in self.sockets.iter().enumerate() {
                if socket.udp.poll_recv_ready(cx).is_ready() {
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }
}

type Events = Vec<(PeerId, Event)>;

struct Engine {
    config: SfuConfig,
    io: Io,
    commands: mpsc::Receiver<Command>,
    /// What ICE-TCP connections deliver (`None` without a TCP listener).
    tcp_events: Option<mpsc::Receiver<TcpEvent>>,
    /// Each stream's live state, for feeds that must not ask the engine.
    board: Board,
    cert: Option<DtlsCert>,
    peers: HashMap<PeerId, Peer>,
    sessions: HashMap<String, PeerId>,
    demux: Demux,
    streams: Streams,
    /// (deadline, peer): a peer is woken when str0m's timeout passes. Entries whose peer has a
    /// newer schedule are skipped.
    timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    /// Events drained from peers, handled after each mutation; `scratch` keeps the second buffer.
    events: Events,
    scratch: Events,
    /// Peers to remove once the current batch of events is handled, and why.
    doomed: Doomed,
    next_peer: PeerId,
    last_stats: Instant,
    /// `io.dropped` and the recorder's dropped packets as last logged.
    reported_dropped: u64,
    reported_recorder_dropped: u64,
    /// What `/metrics` shows of the packet path, handed to the metrics recorder once a second.
    counts: Counts,
    buffer: Vec<u8>,
}

/// Plain counters of the packet path (a `u64` add per packet, no lookup); `reported` is what
/// the metrics recorder has already been given.
#[derive(Default)]
struct Counts {
    packets_forwarded: u64,
    bytes_forwarded: u64,
    keyframe_requests: u64,
    reported: [u64; 4],
}

enum Wake {
    Command(Option<Command>),
    Readable(usize),
    Tcp(Option<TcpEvent>),
    Timer,
    Tick,
}

/// The source's pending replacement becomes its publisher; every viewer pair showing the source
/// re-anchors (video from the next keyframe). Returns the replaced publisher, to be removed.
fn take_over(source: &mut Source, peers: &mut HashMap<PeerId, Peer>) -> PeerId {
    let next = source.pending.take().expect("only called with a pending replacement");
    let replaced = std::mem::replace(&mut source.publisher, next);
    source.active = true;
    for (viewer, pair) in &source.subscribers {
        if let Some(Role::Viewer(v)) = peers.get_mut(viewer).map(|p| &mut p.role) {
            if let Some(pair) = v.pairs.get_mut(*pair) {
                pair.tracks_mut().for_each(OutTrack::switch);
            }
        }
    }
    tracing::info!("a replacement publisher took over its source");
    replaced
}

/// Peers to remove, and why.
type Doomed = Vec<(PeerId, Ending)>;

/// Drains a peer after a mutation and keeps its timer entry current.
fn settle(
    peer: &mut Peer,
    io: &mut Io,
    timers: &mut BinaryHeap<Reverse<(Instant, PeerId)>>,
    events: &mut Events,
    doomed: &mut Doomed,
) {
    if let Err(ending) = peer.drain(|t| io.send(t), events) {
        doomed.push((peer.id, ending));
    }
    if peer.scheduled.is_none_or(|at| peer.deadline < at) {
        timers.push(Reverse((peer.deadline, peer.id)));
        peer.scheduled = Some(peer.deadline);
    }
}

impl Engine {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let wake = {
                let io = &self.io;
                let commands = &mut self.commands;
                let tcp = async {
                    match self.tcp_events.as_mut() {
                        Some(events) => events.recv().await,
                        None => std::future::pending().await,
                    }
                };
                let timer = async {
                    match next_timer {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    command = commands.recv() => Wake::Command(command),
                    index = io.readable() => Wake::Readable(index),
                    event = tcp => Wake::Tcp(event),
                    () = timer => Wake::Timer,
                    _ = tick.tick() => Wake::Tick,
                }
            };
            fault::engine(self.io.sockets[0].announced[0]);
            match wake {
                Wake::Command(None) => break,
                Wake::Command(Some(command)) => self.on_command(command),
                Wake::Readable(index) => self.read_datagrams(index),
                Wake::Tcp(Some(event)) => self.on_tcp_events(event),
                Wake::Tcp(None) => self.tcp_events = None,
                Wake::Timer => self.on_timers(),
                Wake::Tick => self.housekeeping(),
            }
            self.settle_all();
            self.io.flush();
        }
        tracing::info!("SFU stopped");
    }

    /// Handles queued events until none are left, then removes finished peers.
    fn settle_all(&mut self) {
        loop {
            while !self.events.is_empty() {
                let mut batch = std::mem::take(&mut self.scratch);
                std::mem::swap(&mut batch, &mut self.events);
                for (peer, event) in batch.drain(..) {
                    self.on_event(peer, event);
                }
                self.scratch = batch;
            }
            if self.doomed.is_empty() {
                break;
            }
            let doomed = std::mem::take(&mut self.doomed);
            for (peer, ending) in doomed {
                self.remove_peer(peer, ending);
            }
        }
    }

    // ---- packets in ----------------------------------------------------------------------

    fn read_datagrams(&mut self, index: usize) {
        let mut buffer = std::mem::take(&mut self.buffer);
        for _ in 0..READ_BATCH {
            let (len, source) = match self.io.sockets[index].udp.try_recv_from(&mut buffer) {
                Ok(got) => got,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => {
                    // ICMP errors surface here on some systems; they concern one peer only.
                    tracing::trace!(%err, "recv");
                    continue;
                }
            };
            // str0m knows a datagram by the candidate it was sent to: behind 1:1 NAT the public one.
            let local = self.io.sockets[index].announced[0];
            self.on_datagram(Remote::udp(source), local, &buffer[..len]);
            self.settle_all();
            // This datagram's consequences (a packet's fan-out) leave now, not after the batch.
            self.io.flush();
        }
        self.buffer = buffer;
    }

    /// ICE-TCP: a connection opened or closed, or framed datagrams (a batch, like UDP reads).
    fn on_tcp_events(&mut self, first: TcpEvent) {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(event) = next.take() {
            match event {
                TcpEvent::Opened { id, remote, local, out } => {
                    self.io.tcp.insert(remote, TcpLink { id, local, out });
                }
                TcpEvent::Frame { remote, data } => {
                    if let Some(local) = self.io.tcp.get(&remote).map(|link| link.local) {
                        self.on_datagram(Remote::tcp(remote), local, &data);
                        self.settle_all();
                        self.io.flush();
                    }
                }
                TcpEvent::Closed { id, remote } => {
                    if self.io.tcp.get(&remote).is_some_and(|link| link.id == id) {
                        self.io.tcp.remove(&remote);
                    }
                }
            }
            handled += 1;
            if handled < READ_BATCH {
                next = self.tcp_events.as_mut().and_then(|events| events.try_recv().ok());
            }
        }
    }

    fn on_datagram(&mut self, source: Remote, local: SocketAddr, data: &[u8]) {
        let route = self.demux.route(source, data);
        let id = match route {
            Route::Known(id) | Route::Ufrag(id) => id,
            Route::Unknown => return,
        };
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Ok(receive) = Receive::new(source.proto, source.addr, local, data) else {
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(now, receive);
        if route == Route::Ufrag(id) {
            // A new address for this peer: let str0m check the message integrity first.
            if !peer.guarded(|rtc| rtc.accepts(&input)).unwrap_or(false) {
                return;
            }
            if let Some(previous) = self.demux.bind_addr(source, id) {
                tracing::debug!(source = %source.addr, previous, now = id, "address moved to another session");
            }
            if !peer.addrs.contains(&source) {
                peer.addrs.push(source);
            }
        }
        if let Err(ending) = peer.handle(input) {
            self.doomed.push((id, ending));
        }
        settle(peer, &mut self.io, &mut self.timers, &mut self.events, &mut self.doomed);
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&id) else { continue };
            if peer.scheduled != Some(at) {
                continue; // superseded by an earlier entry, already handled
            }
            peer.scheduled = None;
            if peer.deadline > now {
                // str0m moved its timeout later since this entry was made.
                peer.scheduled = Some(peer.deadline);
                self.timers.push(Reverse((peer.deadline, id)));
                continue;
            }
            // A handshake's retransmission can fail it too.
            if let Err(ending) = peer.handle(Input::Timeout(now)) {
                self.doomed.push((id, ending));
            }
            settle(peer, &mut self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        }
    }

    fn on_event(&mut self, id: PeerId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(id, packet),
            Event::Connected => self.on_connected(id),
            Event::KeyframeRequest(request) => self.on_viewer_keyframe_request(id, request.mid),
            Event::EgressBitrateEstimate(kind) => self.on_estimate(id, kind),
            Event::PeerStats(stats) => self.health_of(id).into_iter().for_each(|h| h.note_peer(&stats)),
            Event::MediaIngressStats(stats) => self.health_of(id).into_iter().for_each(|h| h.note_ingress(&stats)),
            Event::IceConnectionStateChange(state) => self.on_consent(id, state),
            Event::MediaEgressStats(stats) => self.on_viewer_report(id, &stats),
            Event::Closed => self.doomed.push((id, Ending::Closed)),
            _ => {}
        }
    }

    /// ICE consent lapsed or came back. A peer whose checks stopped while its authenticated media
    /// still arrives stays ([`Liveness`](super::ending::Liveness)); the housekeeping tick ends it
    /// once that stops too.
    fn on_consent(&mut self, id: PeerId, state: IceConnectionState) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        match state {
            IceConnectionState::Disconnected => {
                peer.liveness.set_consent(false);
                match peer.liveness.verdict(Instant::now()) {
                    Verdict::Gone => self.doomed.push((id, Ending::Silent)),
                    Verdict::Grace { .. } => tracing::info!(
                        session = %peer.session_id,
                        "no ICE consent checks any more, but media arrives: the session stays while it does"
                    ),
                    Verdict::Alive => {}
                }
            }
            IceConnectionState::Connected | IceConnectionState::Completed => {
                if !peer.liveness.consent() {
                    tracing::info!(session = %peer.session_id, "ICE consent checks back");
                }
                peer.liveness.set_consent(true);
            }
            _ => {}
        }
    }

    /// A viewer's send statistics: a loss figure means an authenticated receiver report came
    /// since the last ones (str0m clears it otherwise), which is a viewer still there.
    fn on_viewer_report(&mut self, id: PeerId, stats: &str0m::stats::MediaEgressStats) {
        if stats.loss.is_some() {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.liveness.heard(stats.timestamp);
            }
        }
    }

    fn health_of(&mut self, id: PeerId) -> Option<&mut crate::sfu::peer::Health> {
        match &mut self.peers.get_mut(&id)?.role {
            Role::Publisher(publisher) => Some(&mut publisher.health),
            _ => None,
        }
    }

    // ---- packets out ---------------------------------------------------------------------

    /// A publisher's packet, in three steps: what it is ([`learn`]), whether its source forwards
    /// this publisher ([`forwards`]: a waiting replacement takes over at its first keyframe),
    /// then out: to the recorder ([`record`]) and to every viewer pair showing the source.
    fn forward(&mut self, from: PeerId, packet: RtpPacket) {
        let Engine { config, peers, streams, io, timers, events, doomed, counts, .. } = self;
        let Some(Peer { rtc, role: Role::Publisher(publisher), stream: key, session_id, liveness, .. }) =
            peers.get_mut(&from)
        else {
            return;
        };
        // str0m hands out only packets that passed SRTP authentication.
        liveness.heard(packet.timestamp);
        let inbound = match learn(rtc, publisher, session_id, &packet) {
            Learnt::Packet(inbound) => inbound,
            Learnt::Unknown => return,
            Learnt::Panicked => {
                tracing::error!(session = %session_id, "a publisher's packet panicked the media path; dropping the publisher");
                doomed.push((from, Ending::Panicked));
                return;
            }
        };
        let Some(source) = streams.get_mut(key).and_then(|stream| stream.source_mut(&publisher.source)) else { return };
        if !forwards(source, from, &inbound, peers, doomed) {
            return;
        }
        // A recording keeps to one layer of each track: the first learnt.
        if let (Some(recording), Some(recorder), 0) = (source.recording, &config.recorder, inbound.layer) {
            record(recorder, recording, from, &packet, &inbound);
        }

        // Parsed once here, patched per viewer only where a switch moved its picture numbering.
        let is_vp8 = inbound.kind == MediaKind::Video && inbound.params.spec().codec == str0m::format::Codec::Vp8;
        let outgoing = Outgoing {
            vp8: if is_vp8 { Vp8Numbers::read(&packet.payload) } else { None },
            is_keyframe: inbound.is_keyframe,
            kind: inbound.kind,
            layer: inbound.layer,
            params: inbound.params,
            origin: (from, *packet.header.ssrc),
            // Only what describes the media travels on; str0m fills in the transport extensions.
            ext: ExtensionValues {
                audio_level: packet.header.ext_vals.audio_level,
                voice_activity: packet.header.ext_vals.voice_activity,
                video_orientation: packet.header.ext_vals.video_orientation,
                ..Default::default()
            },
            packet: &packet,
        };
        for &(viewer_id, pair) in &source.subscribers {
            let Some(viewer) = peers.get_mut(&viewer_id) else { continue };
            // str0m's packetising and SRTP for one viewer: a panic there ends that viewer only.
            match catch_unwind(AssertUnwindSafe(|| send_to_viewer(viewer, pair, &outgoing))) {
                Ok(true) => {
                    counts.packets_forwarded += 1;
                    counts.bytes_forwarded += packet.payload.len() as u64;
                    settle(viewer, io, timers, events, doomed);
                }
                Ok(false) => {}
                Err(_) => {
                    tracing::error!(session = %viewer.session_id, "sending to a viewer panicked; dropping the viewer");
                    doomed.push((viewer_id, Ending::Panicked));
                }
            }
        }
    }
}

/// What a publisher's packet turned out to be.
enum Learnt {
    Packet(Inbound),
    /// No track or codec of this publisher's offer: dropped.
    Unknown,
    /// str0m's lookups or our keyframe parsers panicked on it: the publisher is dropped.
    Panicked,
}

/// A publisher's packet, known: its track's kind, its codec, and whether it starts a keyframe.
struct Inbound {
    kind: MediaKind,
    /// Which simulcast layer of its track (0 without simulcast).
    layer: u8,
    params: PayloadParams,
    is_keyframe: bool,
    /// Whether the publisher sends video at all (a replacement without video takes over at once).
    publisher_has_video: bool,
}

/// Finds the packet's track (learning its SSRC on first sight) and codec, and counts its bytes.
/// The packet meets str0m's lookups and our keyframe parsers here: a panic ends this publisher,
/// not the engine.
fn learn(rtc: &mut Rtc, publisher: &mut Publisher, session_id: &str, packet: &RtpPacket) -> Learnt {
    let publisher_has_video = publisher.has_video();
    let pt = packet.header.payload_type;
    let learnt = catch_unwind(AssertUnwindSafe(|| {
        fault::packet(session_id);
        let (track, layer, params) = publisher.track_for(rtc, packet.header.ssrc, pt, packet.timestamp)?;
        let codec = params.spec().codec;
        let is_video = track.kind == MediaKind::Video;
        let is_keyframe = is_video && starts_keyframe(codec, &packet.payload);
        let counted = &mut track.layers[usize::from(layer)];
        counted.count(packet.payload.len(), is_video && packet.header.marker, packet.timestamp);
        if is_keyframe {
            if let Some(size) = keyframe_size(codec, &packet.payload) {
                counted.stats.size = Some(size);
            }
        }
        Some(Inbound { kind: track.kind, layer, params, is_keyframe, publisher_has_video })
    }));
    match learnt {
        Ok(Some(inbound)) => Learnt::Packet(inbound),
        Ok(None) => Learnt::Unknown,
        Err(_) => Learnt::Panicked,
    }
}

/// Whether the source forwards this publisher's packet: yes from its publisher; from its waiting
/// replacement only once that sends its first keyframe (its first audio if it has no video),
/// which makes it the publisher (the replaced one is doomed).
fn forwards(
    source: &mut Source,
    from: PeerId,
    inbound: &Inbound,
    peers: &mut HashMap<PeerId, Peer>,
    doomed: &mut Doomed,
) -> bool {
    if source.publisher == from {
        return true;
    }
    let takes_over = source.pending == Some(from)
        && (inbound.is_keyframe || !inbound.publisher_has_video && inbound.kind == MediaKind::Audio);
    if takes_over {
        doomed.push((take_over(source, peers), Ending::Replaced));
    }
    takes_over
}

/// Hands the packet to the recorder: a refcounted payload through its bounded queue, never a wait.
fn record(recorder: &Recorder, recording: RecordingId, from: PeerId, packet: &RtpPacket, inbound: &Inbound) {
    let recorded = RecordedPacket {
        origin: from,
        seq: *packet.seq_no,
        rtp_ts: packet.header.timestamp,
        marker: packet.header.marker,
        payload: packet.payload.clone(),
        arrival: packet.timestamp,
        sender_report: packet.last_sender_info.map(|sr| (sr.rtp_time.numer() as u32, sr.ntp_time)),
    };
    recorder.offer(recording, inbound.kind == MediaKind::Video, media_codec(inbound.params.spec().codec), recorded);
}

fn media_codec(codec: str0m::format::Codec) -> MediaCodec {
    use str0m::format::Codec;
    match codec {
        Codec::Vp8 => MediaCodec::Vp8,
        Codec::Vp9 => MediaCodec::Vp9,
        Codec::Av1 => MediaCodec::Av1,
        Codec::H264 => MediaCodec::H264,
        Codec::Opus => MediaCodec::Opus,
        _ => MediaCodec::Other,
    }
}

/// One publisher packet on its way out, the same for every viewer.
struct Outgoing<'a> {
    packet: &'a RtpPacket,
    kind: MediaKind,
    layer: u8,
    params: PayloadParams,
    is_keyframe: bool,
    /// (publisher, SSRC): a viewer track re-anchors its numbering when this changes.
    origin: Origin,
    ext: ExtensionValues,
    /// A VP8 packet's picture numbering (kept continuous per viewer).
    vp8: Option<Vp8Numbers>,
}

/// Writes the packet into one viewer pair's track, rewritten for it (payload type, sequence
/// number, timestamp); false when this viewer takes nothing (not connected, waiting for a
/// keyframe, no such track or codec).
fn send_to_viewer(viewer: &mut Peer, pair: usize, out: &Outgoing) -> bool {
    if !viewer.connected {
        return false;
    }
    fault::packet(&viewer.session_id);
    let Peer { rtc, role: Role::Viewer(v), .. } = viewer else { return false };
    let Some(track) = v.pairs.get_mut(pair).and_then(|p| p.track_mut(out.kind)) else { return false };
    if !track.takes(out.layer, out.is_keyframe) {
        return false;
    }
    let packet = out.packet;
    let pt = packet.header.payload_type;
    let out_pt = match track.cached_pt(pt) {
        Some(known) => known,
        None => {
            let viewer_pts = rtc.media(track.mid).map(|m| m.remote_pts().to_vec()).unwrap_or_default();
            let mapped = map_payload_type(&out.params, rtc.codec_config().params(), &viewer_pts);
            track.cache_pt(pt, mapped);
            mapped
        }
    };
    let Some(out_pt) = out_pt else { return false };
    let clock_rate = out.params.spec().clock_rate.get();
    let Some((seq, ts)) =
        track.rewrite(out.origin, packet.seq_no, packet.header.timestamp, packet.timestamp, clock_rate)
    else {
        return false;
    };
    let patch = out.vp8.as_ref().and_then(|numbers| track.vp8_patch(out.origin, numbers));
    let mut api = rtc.direct_api();
    let Some(tx) = api.stream_tx_by_mid(track.mid, None) else { return false };
    let write = RtpWrite::new(out_pt, seq, ts, packet.timestamp, packet.payload.clone())
        .marker(packet.header.marker)
        .ext_vals(out.ext.clone())
        .nackable(out.kind == MediaKind::Video);
    tx.write_rtp(match patch {
        Some(patch) => write.vp8_patch(patch),
        None => write,
    });
    true
}
