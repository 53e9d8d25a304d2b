//! The engine task: owns the sockets and every peer; see the module comment in `sfu/mod.rs`.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    future::poll_fn,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::Poll,
    time::{Duration, Instant},
};

use str0m::{
    change::SdpOffer,
    config::DtlsCert,
    media::{KeyframeRequestKind, MediaKind, Mid},
    net::{Protocol, Receive, Transmit},
    rtp::{ExtensionValues, RtpPacket, RtpWrite},
    Candidate, Event, IceConnectionState, Input, Rtc,
};
use tokio::{
    net::UdpSocket,
    sync::{broadcast, mpsc},
};

use super::{
    api::{
        Command, PairInfo, PublishRequest, SessionCreated, SessionInfo, SessionRef, SfuError, SourceInfo, StreamChange,
        StreamInfo, StreamKey, TrackInfo, ViewRequest,
    },
    demux::{Demux, Route},
    forward::{codec_name, map_payload_type, starts_keyframe, OutTrack},
    handle::SfuHandle,
    offer::{self, Intent},
    peer::{Pair, Peer, PeerId, Publisher, Role, SourceName, TrackIn, Viewer},
    registry::{Source, Stream, Streams},
    SfuConfig,
};

/// Datagrams handled per wake-up before commands and timers get a turn.
const READ_BATCH: usize = 64;
/// Housekeeping: trailing keyframe requests, timeouts, bitrates.
const TICK: Duration = Duration::from_millis(100);
/// A replacement that has not sent a keyframe by then takes over anyway.
const PROMOTE_AFTER: Duration = Duration::from_secs(3);
/// Socket buffers: a burst of keyframe packets to many viewers must not overflow them.
const SOCKET_BUFFER: usize = 4 << 20;

pub(super) async fn spawn(config: SfuConfig) -> io::Result<SfuHandle> {
    let mut sockets = Vec::new();
    let mut port = config.udp_port;
    let ips = if config.ips.is_empty() { SfuConfig::default().ips } else { config.ips.clone() };
    for ip in ips {
        let udp = bind_udp(SocketAddr::new(ip, port))?;
        let local = udp.local_addr()?;
        port = local.port();
        sockets.push(Socket { udp, local });
    }
    let addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.local).collect();
    let (commands_tx, commands) = mpsc::channel(1024);
    let (changes, _) = broadcast::channel(1024);
    let cert = str0m::crypto::from_feature_flags().dtls_provider.generate_certificate();
    let engine = Engine {
        config,
        io: Io { sockets, dropped: AtomicU64::new(0) },
        commands,
        changes: changes.clone(),
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
        buffer: vec![0; 2048],
    };
    tracing::info!(udp = ?addrs, "SFU listening");
    tokio::spawn(engine.run());
    Ok(SfuHandle::new(commands_tx, changes, addrs))
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

struct Socket {
    udp: UdpSocket,
    local: SocketAddr,
}

/// The sending side, borrowed separately from the peers.
struct Io {
    sockets: Vec<Socket>,
    /// Datagrams dropped because a socket buffer was full (a slow path never waits).
    dropped: AtomicU64,
}

impl Io {
    fn send(&self, t: &Transmit) {
        let socket = match self.sockets.as_slice() {
            [only] => only,
            many => many.iter().find(|s| s.local == t.source).unwrap_or(&many[0]),
        };
        match socket.udp.try_send_to(&t.contents, t.destination) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => tracing::debug!(%err, to = %t.destination, "send failed"),
        }
    }

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
    changes: broadcast::Sender<StreamChange>,
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
    /// Peers to remove once the current batch of events is handled.
    doomed: Vec<PeerId>,
    next_peer: PeerId,
    last_stats: Instant,
    buffer: Vec<u8>,
}

enum Wake {
    Command(Option<Command>),
    Readable(usize),
    Timer,
    Tick,
}

/// Drains a peer after a mutation and keeps its timer entry current.
fn settle(
    peer: &mut Peer,
    io: &Io,
    timers: &mut BinaryHeap<Reverse<(Instant, PeerId)>>,
    events: &mut Events,
    doomed: &mut Vec<PeerId>,
) {
    if !peer.drain(|t| io.send(t), events) {
        doomed.push(peer.id);
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
                let timer = async {
                    match next_timer {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    command = commands.recv() => Wake::Command(command),
                    index = io.readable() => Wake::Readable(index),
                    () = timer => Wake::Timer,
                    _ = tick.tick() => Wake::Tick,
                }
            };
            match wake {
                Wake::Command(None) => break,
                Wake::Command(Some(command)) => self.on_command(command),
                Wake::Readable(index) => self.read_datagrams(index),
                Wake::Timer => self.on_timers(),
                Wake::Tick => self.housekeeping(),
            }
            self.settle_all();
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
            for peer in doomed {
                self.remove_peer(peer);
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
            self.on_datagram(index, source, &buffer[..len]);
            self.settle_all();
        }
        self.buffer = buffer;
    }

    fn on_datagram(&mut self, index: usize, source: SocketAddr, data: &[u8]) {
        let route = self.demux.route(source, data);
        let id = match route {
            Route::Known(id) | Route::Ufrag(id) => id,
            Route::Unknown => return,
        };
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.io.sockets[index].local, data) else { return };
        let now = Instant::now();
        let input = Input::Receive(now, receive);
        if route == Route::Ufrag(id) {
            // A new address for this peer: let str0m check the message integrity first.
            if !peer.guarded(|rtc| rtc.accepts(&input)).unwrap_or(false) {
                return;
            }
            if let Some(previous) = self.demux.bind_addr(source, id) {
                tracing::debug!(%source, previous, now = id, "address moved to another session");
            }
            if !peer.addrs.contains(&source) {
                peer.addrs.push(source);
            }
        }
        match peer.guarded(|rtc| rtc.handle_input(input)) {
            Some(Ok(())) => {}
            Some(Err(err)) => tracing::debug!(session = %peer.session_id, %err, "input rejected"),
            None => self.doomed.push(id),
        }
        settle(peer, &self.io, &mut self.timers, &mut self.events, &mut self.doomed);
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
            if peer.guarded(|rtc| rtc.handle_input(Input::Timeout(now))).is_none() {
                self.doomed.push(id);
            }
            settle(peer, &self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        }
    }

    fn on_event(&mut self, id: PeerId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(id, packet),
            Event::Connected => self.on_connected(id),
            Event::KeyframeRequest(request) => self.on_viewer_keyframe_request(id, request.mid),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => self.doomed.push(id),
            _ => {}
        }
    }

    // ---- packets out ---------------------------------------------------------------------

    /// A publisher's packet goes to every viewer pair showing its source.
    fn forward(&mut self, from: PeerId, packet: RtpPacket) {
        let Engine { peers, streams, io, timers, events, doomed, .. } = self;
        let Some(publisher_peer) = peers.get_mut(&from) else { return };
        let Peer { rtc, role: Role::Publisher(publisher), stream: key, .. } = publisher_peer else { return };
        let ssrc = packet.header.ssrc;
        let index = match publisher.tracks.iter().position(|t| t.ssrc == Some(ssrc)) {
            Some(index) => index,
            None => {
                let Some(mid) = rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) else { return };
                let Some(index) = publisher.tracks.iter().position(|t| t.mid == mid) else { return };
                publisher.tracks[index].ssrc = Some(ssrc);
                index
            }
        };
        let has_video = publisher.tracks.iter().any(|t| t.kind == MediaKind::Video);
        let track = &mut publisher.tracks[index];
        track.bytes += packet.payload.len() as u64;
        let pt = packet.header.payload_type;
        if track.params.map(|p| p.pt()) != Some(pt) {
            track.params = rtc.codec_config().find(|p| p.pt() == pt).copied();
        }
        let Some(params) = track.params else { return };
        let kind = track.kind;
        let is_keyframe = kind == MediaKind::Video && starts_keyframe(params.spec().codec, &packet.payload);
        let Some(stream) = streams.get_mut(key) else { return };
        let Some(source) = stream.source_mut(&publisher.source) else { return };

        if source.publisher != from {
            let takes_over = source.pending == Some(from) && (is_keyframe || !has_video && kind == MediaKind::Audio);
            if !takes_over {
                return;
            }
            let replaced = std::mem::replace(&mut source.publisher, from);
            source.pending = None;
            source.active = true;
            doomed.push(replaced);
            for (viewer, pair) in &source.subscribers {
                if let Some(Role::Viewer(v)) = peers.get_mut(viewer).map(|p| &mut p.role) {
                    if let Some(pair) = v.pairs.get_mut(*pair) {
                        pair.tracks_mut().for_each(OutTrack::switch);
                    }
                }
            }
            tracing::info!("a replacement publisher took over its source");
        }

        let origin = (from, *ssrc);
        let clock_rate = params.spec().clock_rate.get();
        // Only what describes the media travels on; str0m fills in the transport extensions.
        let ext = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..Default::default()
        };

        for &(viewer_id, pair_index) in &source.subscribers {
            let Some(viewer) = peers.get_mut(&viewer_id) else { continue };
            if !viewer.connected {
                continue;
            }
            let Peer { rtc, role: Role::Viewer(v), .. } = viewer else { continue };
            let Some(out) = v.pairs.get_mut(pair_index).and_then(|p| p.track_mut(kind)) else { continue };
            if out.waiting_keyframe {
                if !is_keyframe {
                    continue;
                }
                out.waiting_keyframe = false;
            }
            let out_pt = match out.cached_pt(pt) {
                Some(known) => known,
                None => {
                    let viewer_pts = rtc.media(out.mid).map(|m| m.remote_pts().to_vec()).unwrap_or_default();
                    let mapped = map_payload_type(&params, rtc.codec_config().params(), &viewer_pts);
                    out.cache_pt(pt, mapped);
                    mapped
                }
            };
            let Some(out_pt) = out_pt else { continue };
            let Some((seq, ts)) =
                out.rewrite(origin, packet.seq_no, packet.header.timestamp, packet.timestamp, clock_rate)
            else {
                continue;
            };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(out.mid, None) else { continue };
            tx.write_rtp(
                RtpWrite::new(out_pt, seq, ts, packet.timestamp, packet.payload.clone())
                    .marker(packet.header.marker)
                    .ext_vals(ext.clone())
                    .nackable(kind == MediaKind::Video),
            );
            settle(viewer, io, timers, events, doomed);
        }
    }

    // ---- commands ------------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(request, reply) => {
                let _ = reply.send(self.publish(request));
            }
            Command::View(request, reply) => {
                let _ = reply.send(self.view(request));
            }
            Command::Trickle { session, if_match, fragment, reply } => {
                let _ = reply.send(self.trickle(&session, if_match.as_deref(), &fragment));
            }
            Command::End { session, reply } => {
                let result = self.find_session(&session).map(|id| self.doomed.push(id));
                let _ = reply.send(result);
            }
            Command::Select { session, pair, source, reply } => {
                let _ = reply.send(self.select(&session, pair, source));
            }
            Command::EndToken { token_id, reply } => {
                let ids: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|p| p.publisher().is_some_and(|p| p.token_id == token_id))
                    .map(|p| p.id)
                    .collect();
                self.doomed.extend(&ids);
                let _ = reply.send(Ok(ids.len()));
            }
            Command::Streams { account, reply } => {
                let mut list: Vec<StreamInfo> = self
                    .streams
                    .iter()
                    .filter(|(key, stream)| {
                        account.as_ref().is_none_or(|a| a == &key.account) && !stream.sources.is_empty()
                    })
                    .map(|(key, stream)| self.snapshot(key, stream))
                    .collect();
                list.sort_by(|a, b| (&a.account_id, &a.stream_name).cmp(&(&b.account_id, &b.stream_name)));
                let _ = reply.send(list);
            }
            Command::Stream { key, reply } => {
                let _ = reply.send(self.streams.get(&key).map(|stream| self.snapshot(&key, stream)));
            }
            Command::Session { session, reply } => {
                let result = self.find_session(&session).map(|id| {
                    let peer = &self.peers[&id];
                    let pairs = match &peer.role {
                        Role::Viewer(v) => v
                            .pairs
                            .iter()
                            .enumerate()
                            .map(|(pair, p)| PairInfo {
                                pair,
                                assigned: p.bound.is_some(),
                                source_id: p.bound.clone().flatten().as_deref().map(str::to_owned),
                                video: p.video.is_some(),
                                audio: p.audio.is_some(),
                            })
                            .collect(),
                        Role::Publisher(_) => Vec::new(),
                    };
                    SessionInfo { stream: peer.stream.clone(), pairs }
                });
                let _ = reply.send(result);
            }
        }
    }

    fn new_rtc(&self) -> Result<Rtc, SfuError> {
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .enable_av1(true);
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let mut rtc = config.build(Instant::now());
        for socket in &self.io.sockets {
            let candidate = Candidate::host(socket.local, "udp").map_err(|err| {
                tracing::error!(%err, addr = %socket.local, "cannot make a host candidate");
                SfuError::Unavailable
            })?;
            rtc.add_local_candidate(candidate);
        }
        Ok(rtc)
    }

    /// Builds a peer for an offer and answers it.
    fn accept(&mut self, sdp: &str, stream: StreamKey, role: Role) -> Result<(PeerId, SessionCreated), SfuError> {
        let offer = SdpOffer::from_sdp_string(sdp)
            .map_err(|err| SfuError::BadOffer(format!("the SDP offer does not parse: {err}")))?;
        let mut rtc = self.new_rtc()?;
        let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
        {
            Ok(Ok(answer)) => answer.to_sdp_string(),
            Ok(Err(err)) => return Err(SfuError::BadOffer(format!("the offer cannot be accepted: {err}"))),
            Err(_) => return Err(SfuError::BadOffer("the offer cannot be accepted".to_owned())),
        };
        let local_ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let id = self.next_peer;
        self.next_peer += 1;
        let session_id = random_hex(16);
        let etag = format!("\"{}\"", random_hex(8));
        let mut peer = Peer {
            id,
            session_id: session_id.clone(),
            etag: etag.clone(),
            stream,
            rtc,
            local_ufrag: local_ufrag.clone(),
            remote_ufrag: offer::ice_ufrag(sdp).map(str::to_owned),
            addrs: Vec::new(),
            created: Instant::now(),
            connected: false,
            deadline: Instant::now(),
            scheduled: None,
            role,
        };
        settle(&mut peer, &self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        self.demux.add_peer(&local_ufrag, id);
        self.sessions.insert(session_id.clone(), id);
        self.peers.insert(id, peer);
        Ok((id, SessionCreated { session_id, etag, answer }))
    }

    fn publish(&mut self, request: PublishRequest) -> Result<SessionCreated, SfuError> {
        let sections = offer::inspect(&request.offer, Intent::Publish)?;
        let name: SourceName = request.source.as_deref().map(Arc::from);
        let existing = self.streams.get(&request.stream);
        let replacing = existing.and_then(|s| s.source(&name)).is_some();
        let sources = existing.map_or(0, |s| s.sources.len());
        if !replacing && sources >= self.config.max_sources_per_stream {
            return Err(SfuError::LimitReached(format!(
                "this stream already has {sources} sources, the most allowed; try again when one ends"
            )));
        }
        let mut tracks = Vec::new();
        for section in sections.iter().filter(|s| s.is_av() && !s.rejected && s.sends()) {
            let mid = section.mid.as_deref().ok_or_else(|| SfuError::BadOffer("every m-line needs an a=mid".into()))?;
            let kind = if section.kind == "video" { MediaKind::Video } else { MediaKind::Audio };
            tracks.push(TrackIn::new(Mid::from(mid), kind));
        }
        let role = Role::Publisher(Publisher {
            source: name.clone(),
            token_id: request.token_id,
            record: request.record,
            tracks,
        });
        let (id, created) = self.accept(&request.offer, request.stream.clone(), role)?;
        let stream = self.streams.entry(&request.stream);
        match stream.source_mut(&name) {
            Some(source) => {
                if let Some(previous) = source.pending.replace(id) {
                    self.doomed.push(previous);
                }
            }
            None => stream.sources.push(Source::new(name.clone(), id)),
        }
        tracing::info!(stream = %request.stream, source = ?name, replacing, "publisher joined");
        self.notify(&request.stream);
        Ok(created)
    }

    fn view(&mut self, request: ViewRequest) -> Result<SessionCreated, SfuError> {
        let sections = offer::inspect(&request.offer, Intent::View)?;
        let asked: SourceName = request.source.as_deref().map(Arc::from);
        let stream = self.streams.get(&request.stream).filter(|s| s.is_live()).ok_or(SfuError::NotLive)?;
        let first = stream.default_source(&asked).ok_or(SfuError::NotLive)?;
        if stream.viewers.len() >= self.config.max_viewers_per_stream {
            return Err(SfuError::LimitReached(format!(
                "this stream has {} viewers, the most allowed; try again later",
                stream.viewers.len()
            )));
        }
        let total = self.streams.total_viewers();
        if total >= self.config.max_viewers {
            return Err(SfuError::LimitReached("this server has as many viewers as it allows; try again later".into()));
        }
        let receiving = |kind: &str| -> Result<Vec<String>, SfuError> {
            sections
                .iter()
                .filter(|s| s.kind == kind && !s.rejected && (s.direction == "recvonly" || s.direction == "sendrecv"))
                .map(|s| s.mid.clone().ok_or_else(|| SfuError::BadOffer("every m-line needs an a=mid".into())))
                .collect()
        };
        let videos = receiving("video")?;
        let audios = receiving("audio")?;
        let others: Vec<SourceName> =
            stream.sources.iter().filter(|s| s.active && s.name != first).map(|s| s.name.clone()).collect();
        let pair_count = videos.len().max(audios.len());
        let pairs: Vec<Pair> = (0..pair_count)
            .map(|i| Pair {
                bound: if i == 0 { Some(first.clone()) } else { others.get(i - 1).cloned() },
                video: videos.get(i).map(|mid| OutTrack::new(Mid::from(mid.as_str()), MediaKind::Video)),
                audio: audios.get(i).map(|mid| OutTrack::new(Mid::from(mid.as_str()), MediaKind::Audio)),
            })
            .collect();
        let pair_of_mid: HashMap<String, usize> =
            videos.iter().enumerate().chain(audios.iter().enumerate()).map(|(i, mid)| (mid.clone(), i)).collect();
        let bindings: Vec<(usize, SourceName)> =
            pairs.iter().enumerate().filter_map(|(i, p)| p.bound.clone().map(|b| (i, b))).collect();

        let (id, mut created) = self.accept(&request.offer, request.stream.clone(), Role::Viewer(Viewer { pairs }))?;
        created.answer =
            offer::set_msids(&created.answer, |mid| pair_of_mid.get(mid).map(|pair| format!("ferrocast-{pair}")));
        let stream = self.streams.entry(&request.stream);
        stream.viewers.push(id);
        for (pair, name) in bindings {
            stream.subscribe(&name, id, pair);
        }
        tracing::info!(stream = %request.stream, pairs = pair_count, "viewer joined");
        self.notify(&request.stream);
        Ok(created)
    }

    fn trickle(&mut self, session: &SessionRef, if_match: Option<&str>, fragment: &str) -> Result<(), SfuError> {
        let id = self.find_session(session)?;
        let peer = self.peers.get_mut(&id).ok_or(SfuError::SessionNotFound)?;
        match if_match.map(str::trim) {
            Some("*") => return Err(SfuError::IceRestartUnsupported),
            Some(tag) if tag != peer.etag => return Err(SfuError::PreconditionFailed),
            _ => {}
        }
        let fragment = offer::parse_fragment(fragment)?;
        if fragment.ufrag.is_some() && fragment.ufrag != peer.remote_ufrag {
            return Err(SfuError::IceRestartUnsupported);
        }
        for line in &fragment.candidates {
            // mDNS (.local) and other unresolvable candidates are skipped: with ICE-lite the
            // client's checks reveal its address anyway.
            if let Ok(candidate) = Candidate::from_sdp_string(line) {
                if peer.guarded(|rtc| rtc.add_remote_candidate(candidate)).is_none() {
                    self.doomed.push(id);
                }
            }
        }
        settle(peer, &self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        Ok(())
    }

    fn select(&mut self, session: &SessionRef, pair: usize, source: Option<String>) -> Result<(), SfuError> {
        let id = self.find_session(session)?;
        let name: SourceName = source.as_deref().map(Arc::from);
        let peer = self.peers.get_mut(&id).ok_or(SfuError::SessionNotFound)?;
        let key = peer.stream.clone();
        let viewer = peer.viewer_mut().ok_or(SfuError::SessionNotFound)?;
        let pairs = viewer.pairs.len();
        let Some(slot) = viewer.pairs.get_mut(pair) else {
            return Err(SfuError::BadRequest(format!(
                "this session has {pairs} audio/video pairs; there is no pair {pair}"
            )));
        };
        let stream = self.streams.get_mut(&key).ok_or(SfuError::NotLive)?;
        if !stream.source(&name).is_some_and(|s| s.active) {
            return Err(SfuError::NotFound(format!("source {} is not live", display_source(&name))));
        }
        if slot.bound.as_ref() == Some(&name) {
            return Ok(());
        }
        if let Some(old) = slot.bound.replace(name.clone()) {
            stream.unsubscribe(&old, id, pair);
        }
        slot.tracks_mut().for_each(OutTrack::switch);
        stream.subscribe(&name, id, pair);
        self.request_keyframe(&key, &name);
        Ok(())
    }

    fn find_session(&self, session: &SessionRef) -> Result<PeerId, SfuError> {
        let id = *self.sessions.get(&session.id).ok_or(SfuError::SessionNotFound)?;
        let peer = self.peers.get(&id).ok_or(SfuError::SessionNotFound)?;
        let matches = peer.kind() == session.kind
            && *peer.stream.name == *session.stream_name
            && session.account.as_deref().is_none_or(|a| a == &*peer.stream.account);
        if matches {
            Ok(id)
        } else {
            Err(SfuError::SessionNotFound)
        }
    }

    // ---- lifecycle -----------------------------------------------------------------------

    fn on_connected(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.connected = true;
        let key = peer.stream.clone();
        let shown: Vec<SourceName> = match &peer.role {
            Role::Publisher(_) => Vec::new(),
            Role::Viewer(viewer) => viewer.pairs.iter().filter_map(|p| p.bound.clone()).collect(),
        };
        match peer.publisher().map(|p| p.source.clone()) {
            Some(name) => {
                let Some(stream) = self.streams.get_mut(&key) else { return };
                let Some(source) = stream.source_mut(&name) else { return };
                if source.publisher == id {
                    source.active = true;
                    stream.empty_since = None;
                    self.attach_waiting_viewers(&key, &name);
                    self.notify(&key);
                } else if source.pending == Some(id) {
                    self.request_keyframe_from(id);
                }
                tracing::info!(stream = %key, source = ?name, "publisher connected");
            }
            None => {
                for name in shown {
                    self.request_keyframe(&key, &name);
                }
            }
        }
    }

    /// A source (re)appeared: viewer pairs bound to its name subscribe again, and pairs showing
    /// nothing pick it up.
    fn attach_waiting_viewers(&mut self, key: &StreamKey, name: &SourceName) {
        let Some(stream) = self.streams.get_mut(key) else { return };
        let viewers = stream.viewers.clone();
        for viewer_id in viewers {
            let Some(Role::Viewer(viewer)) = self.peers.get_mut(&viewer_id).map(|p| &mut p.role) else { continue };
            let already_shown = viewer.pairs.iter().any(|p| p.bound.as_ref() == Some(name));
            for (index, pair) in viewer.pairs.iter_mut().enumerate() {
                let rebind = pair.bound.as_ref() == Some(name) || pair.bound.is_none() && !already_shown;
                if rebind {
                    pair.bound = Some(name.clone());
                    pair.tracks_mut().for_each(OutTrack::switch);
                    stream.subscribe(name, viewer_id, index);
                    if !already_shown {
                        break;
                    }
                }
            }
        }
        self.request_keyframe(key, name);
    }

    fn on_viewer_keyframe_request(&mut self, id: PeerId, mid: Mid) {
        let Some(peer) = self.peers.get(&id) else { return };
        let Role::Viewer(viewer) = &peer.role else { return };
        let shown =
            viewer.pairs.iter().find(|p| p.video.as_ref().is_some_and(|v| v.mid == mid)).and_then(|p| p.bound.clone());
        if let Some(name) = shown {
            let key = peer.stream.clone();
            self.request_keyframe(&key, &name);
        }
    }

    fn request_keyframe(&mut self, key: &StreamKey, name: &SourceName) {
        let Some(source) = self.streams.get(key).and_then(|s| s.source(name)) else { return };
        let publisher = source.publisher;
        self.request_keyframe_from(publisher);
    }

    /// Asks a publisher for a keyframe on each video track, within the throttle.
    fn request_keyframe_from(&mut self, id: PeerId) {
        let now = Instant::now();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if !peer.connected {
            return;
        }
        let Peer { rtc, role: Role::Publisher(publisher), .. } = &mut *peer else { return };
        let mut sent = false;
        for track in publisher.tracks.iter_mut().filter(|t| t.kind == MediaKind::Video) {
            if track.keyframes.request(now) {
                sent |= send_keyframe_request(rtc, track);
            }
        }
        if sent {
            settle(peer, &self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        // Trailing keyframe requests.
        let Engine { peers, io, timers, events, doomed, .. } = self;
        for peer in peers.values_mut() {
            let Peer { rtc, role: Role::Publisher(publisher), connected: true, .. } = peer else { continue };
            let mut sent = false;
            for track in publisher.tracks.iter_mut().filter(|t| t.kind == MediaKind::Video) {
                if track.keyframes.poll_trailing(now) {
                    sent |= send_keyframe_request(rtc, track);
                }
            }
            if sent {
                settle(peer, io, timers, events, doomed);
            }
        }

        // Viewers still waiting for a picture ask again; replacements are pushed for a keyframe
        // and take over after PROMOTE_AFTER without one.
        let mut wanted: Vec<PeerId> = Vec::new();
        for (_, stream) in self.streams.iter_mut() {
            for source in &mut stream.sources {
                let waiting = source.subscribers.iter().any(|(viewer, pair)| {
                    self.peers.get(viewer).is_some_and(|p| {
                        p.connected
                            && matches!(&p.role, Role::Viewer(v) if v.pairs.get(*pair).is_some_and(Pair::waits_for_keyframe))
                    })
                });
                if waiting {
                    wanted.push(source.publisher);
                }
                if let Some(pending) = source.pending {
                    let Some(peer) = self.peers.get(&pending) else { continue };
                    if peer.connected {
                        wanted.push(pending);
                        if now.duration_since(peer.created) > PROMOTE_AFTER {
                            let replaced = std::mem::replace(&mut source.publisher, pending);
                            source.pending = None;
                            source.active = true;
                            self.doomed.push(replaced);
                            for (viewer, pair) in &source.subscribers {
                                if let Some(Role::Viewer(v)) = self.peers.get_mut(viewer).map(|p| &mut p.role) {
                                    if let Some(pair) = v.pairs.get_mut(*pair) {
                                        pair.tracks_mut().for_each(OutTrack::switch);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for id in wanted {
            self.request_keyframe_from(id);
        }

        // Peers that never connected, and viewers of a stream gone for good.
        for peer in self.peers.values() {
            if !peer.connected && now.duration_since(peer.created) > self.config.connect_timeout {
                self.doomed.push(peer.id);
            }
        }
        for (_, stream) in self.streams.iter() {
            if stream.empty_since.is_some_and(|since| now.duration_since(since) > self.config.orphan_grace) {
                self.doomed.extend(&stream.viewers);
            }
        }

        // Bitrates, once a second.
        let elapsed = now.duration_since(self.last_stats);
        if elapsed >= Duration::from_secs(1) {
            self.last_stats = now;
            for peer in self.peers.values_mut() {
                if let Some(publisher) = peer.publisher_mut() {
                    for track in &mut publisher.tracks {
                        track.bitrate_bps = (track.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
                        track.bytes = 0;
                    }
                }
            }
        }
    }

    fn remove_peer(&mut self, id: PeerId) {
        let Some(mut peer) = self.peers.remove(&id) else { return };
        self.sessions.remove(&peer.session_id);
        self.demux.remove_peer(&peer.local_ufrag, &peer.addrs, id);
        let key = peer.stream.clone();
        let mut reattach: Option<SourceName> = None;
        if let Some(stream) = self.streams.get_mut(&key) {
            match &peer.role {
                Role::Publisher(publisher) => {
                    if let Some(index) = stream.sources.iter().position(|s| s.name == publisher.source) {
                        let source = &mut stream.sources[index];
                        if source.pending == Some(id) {
                            source.pending = None;
                        } else if source.publisher == id {
                            match source.pending.take() {
                                Some(next) => {
                                    source.publisher = next;
                                    source.active = self.peers.get(&next).is_some_and(|p| p.connected);
                                    if source.active {
                                        reattach = Some(source.name.clone());
                                    }
                                }
                                None => {
                                    stream.sources.remove(index);
                                }
                            }
                        }
                    }
                    if !stream.is_live() && stream.empty_since.is_none() {
                        stream.empty_since = Some(Instant::now());
                    }
                    tracing::info!(stream = %key, source = ?publisher.source, "publisher left");
                }
                Role::Viewer(_) => stream.forget_viewer(id),
            }
        }
        if let Some(name) = reattach {
            self.attach_waiting_viewers(&key, &name);
        }
        self.streams.prune(&key);
        peer.rtc.disconnect();
        self.notify(&key);
    }

    fn notify(&self, key: &StreamKey) {
        let _ = self.changes.send(StreamChange { stream: key.clone() });
    }

    fn snapshot(&self, key: &StreamKey, stream: &Stream) -> StreamInfo {
        let sources: Vec<SourceInfo> = stream
            .sources
            .iter()
            .map(|source| {
                let publisher = self.peers.get(&source.publisher).and_then(Peer::publisher);
                let tracks: Vec<TrackInfo> = publisher
                    .map(|p| {
                        p.tracks
                            .iter()
                            .map(|t| TrackInfo {
                                kind: if t.kind == MediaKind::Video { "video" } else { "audio" },
                                codec: t.params.map(|p| codec_name(p.spec().codec)),
                                bitrate_bps: t.bitrate_bps,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                SourceInfo {
                    source_id: source.name.as_deref().map(str::to_owned),
                    active: source.active,
                    started_at: source.started_at,
                    bitrate_bps: tracks.iter().map(|t| t.bitrate_bps).sum(),
                    recording: publisher.is_some_and(|p| p.record),
                    token_id: publisher.map(|p| p.token_id.clone()).unwrap_or_default(),
                    tracks,
                }
            })
            .collect();
        StreamInfo {
            account_id: key.account.to_string(),
            stream_name: key.name.to_string(),
            live: stream.is_live(),
            viewers: stream.viewers.len(),
            started_at: sources.iter().filter(|s| s.active).map(|s| s.started_at).min(),
            bitrate_bps: sources.iter().map(|s| s.bitrate_bps).sum(),
            recording: sources.iter().any(|s| s.active && s.recording),
            sources,
        }
    }
}

fn send_keyframe_request(rtc: &mut Rtc, track: &TrackIn) -> bool {
    let kind = match track.params {
        Some(p) if !p.fb_pli() && p.fb_fir() => KeyframeRequestKind::Fir,
        _ => KeyframeRequestKind::Pli,
    };
    let mut api = rtc.direct_api();
    match api.stream_rx_by_mid(track.mid, None) {
        Some(rx) => {
            rx.request_keyframe(kind);
            true
        }
        None => false,
    }
}

fn display_source(name: &SourceName) -> String {
    match name {
        Some(id) => format!("\"{id}\""),
        None => "main".to_owned(),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
