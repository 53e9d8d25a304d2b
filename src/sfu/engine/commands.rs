//! The engine's commands: sessions created from offers, trickle, source selection, snapshots.

use std::{collections::HashMap, time::Instant};

use str0m::{
    bwe::Bitrate,
    change::SdpOffer,
    media::{MediaKind, Mid},
    net::TcpType,
    rtp::{Extension, ExtensionMap},
    Candidate, Rtc, RtcConfig,
};

use super::{settle, Engine, MAX_PROBES};
use crate::sfu::ending::{Ending, Liveness};
use crate::sfu::{PENDING_VIEWERS, PENDING_VIEWERS_PER_ADDRESS, PENDING_VIEWERS_PER_STREAM};

/// Video packets each viewer keeps for NACK retransmission: ~1.1 s at 2.5 Mbit/s, longer than any
/// retransmission a live player can still use. str0m's default (1,000 packets, up to 3 s) keeps
/// ~550 bytes of packet metadata per entry per viewer (the payloads themselves are shared):
/// ~420 kB per 2.5 Mbit/s viewer, most of the SFU's memory per viewer (`--bench fanout`).
const VIEWER_VIDEO_SEND_BUFFER: usize = 300;
/// A viewer's statistics come this often: each says whether a receiver report came since the
/// last, the viewer's sign of life when it sends no ICE consent checks (well inside the 30-s
/// grace, and rare enough to cost nothing per packet).
const VIEWER_STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Transport-wide sequence numbers, for viewers whose bandwidth is estimated (Chrome's id).
const TWCC_EXTENSION_ID: u8 = 3;
/// Where a viewer's estimate starts: enough for a middle layer at once; str0m probes upwards.
const INITIAL_ESTIMATE_KBPS: u64 = 1000;

/// str0m's standard header extensions (Chrome's ids) without transport-wide sequence numbers.
const VIEWER_EXTENSIONS: [(u8, Extension); 6] = [
    (1, Extension::AudioLevel),
    (2, Extension::AbsoluteSendTime),
    (4, Extension::RtpMid),
    (10, Extension::RtpStreamId),
    (11, Extension::RepairedRtpStreamId),
    (13, Extension::VideoOrientation),
];
use super::lifecycle::RECORDED_LAYER;
use crate::sfu::{
    api::{
        AccountLimits, Command, PassKind, PassViewers, ProbeRequest, ProbeTransport, PublishRequest, Selection,
        SessionCreated, SessionInfo, SessionRef, SfuError, SiteViewers, SourceChoice, SourceHealth, SourceInfo,
        StreamInfo, StreamKey, TrackInfo, ViewRequest, ViewerPass,
    },
    board::{LiveSource, LiveState, LiveTrack},
    forward::{codec_name, OutTrack},
    offer::{self, Intent},
    peer::{Health, LayerMask, Pair, Peer, PeerId, Publisher, Role, SourceName, TrackIn, Viewer},
    registry::{Source, Stream},
};

impl Engine {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(request, reply) => {
                let _ = reply.send(self.publish(request));
            }
            Command::View(request, reply) => {
                let _ = reply.send(self.view(request));
            }
            Command::Probe(request, reply) => {
                let _ = reply.send(self.probe(request));
            }
            Command::Trickle { session, if_match, fragment, reply } => {
                let _ = reply.send(self.trickle(&session, if_match.as_deref(), &fragment));
            }
            Command::End { session, reply } => {
                let result = self.find_session(&session).map(|id| self.doomed.push((id, Ending::Deleted)));
                let _ = reply.send(result);
            }
            Command::Select { session, selection, reply } => {
                let _ = reply.send(self.select(&session, selection));
            }
            Command::EndToken { token_id, reply } => {
                let ids: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|p| p.publisher().is_some_and(|p| p.token_id == token_id))
                    .map(|p| p.id)
                    .collect();
                self.doomed.extend(ids.iter().map(|&id| (id, Ending::Revoked)));
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
            Command::RecordingMoved { from, to } => {
                for (_, stream) in self.streams.iter_mut() {
                    for source in stream.sources.iter_mut().filter(|s| s.recording == Some(from)) {
                        source.recording = to;
                    }
                }
            }
            Command::RecordingKeyframe { id } => {
                let recorded = self.streams.iter().find_map(|(_, stream)| {
                    stream.sources.iter().find(|s| s.recording == Some(id)).map(|s| s.publisher)
                });
                if let Some(publisher) = recorded {
                    self.request_keyframe_from(publisher, LayerMask::one(RECORDED_LAYER));
                }
            }
            Command::Stream { key, reply } => {
                let _ = reply.send(self.streams.get(&key).map(|stream| self.snapshot(&key, stream)));
            }
            Command::Session { session, reply } => {
                let result = self.find_session(&session).map(|id| {
                    let peer = &self.peers[&id];
                    let pairs = match &peer.role {
                        Role::Viewer(viewer) => Some(viewer.shown.subscribe()),
                        Role::Publisher(_) | Role::Probe => None,
                    };
                    SessionInfo { stream: peer.stream.clone(), pairs }
                });
                let _ = reply.send(result);
            }
        }
    }

    /// A peer's `Rtc` ([`rtc_config`]) with the SFU's certificate and host candidates.
    pub(super) fn new_rtc(&self, role: &Role, transport: ProbeTransport) -> Result<Rtc, SfuError> {
        let mut config = rtc_config(matches!(role, Role::Publisher(_)));
        if matches!(role, Role::Viewer(Viewer { estimation: Some(_), .. })) {
            let mut extensions = viewer_extensions();
            extensions.set(TWCC_EXTENSION_ID, Extension::TransportSequenceNumber);
            config = config.set_extension_map(extensions).enable_bwe(Some(Bitrate::kbps(INITIAL_ESTIMATE_KBPS)));
        }
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let mut rtc = config.build(Instant::now());
        let udp = transport != ProbeTransport::Tcp;
        let tcp = transport != ProbeTransport::Udp;
        for addr in self.io.sockets.iter().flat_map(|s| &s.announced).filter(|_| udp) {
            let candidate = Candidate::host(*addr, "udp").map_err(|err| {
                tracing::error!(%err, %addr, "cannot make a host candidate");
                SfuError::Unavailable
            })?;
            rtc.add_local_candidate(candidate);
        }
        for addr in self.io.tcp_announced.iter().filter(|_| tcp) {
            let candidate =
                Candidate::builder().tcp().host(*addr).tcptype(TcpType::Passive).build().map_err(|err| {
                    tracing::error!(%err, %addr, "cannot make a TCP host candidate");
                    SfuError::Unavailable
                })?;
            rtc.add_local_candidate(candidate);
        }
        Ok(rtc)
    }

    /// Builds a peer for an offer and answers it.
    pub(super) fn accept(
        &mut self,
        sdp: &str,
        stream: StreamKey,
        role: Role,
    ) -> Result<(PeerId, SessionCreated), SfuError> {
        self.accept_over(sdp, stream, role, ProbeTransport::Any)
    }

    /// [`Self::accept`], offering only the candidates of `transport`.
    fn accept_over(
        &mut self,
        sdp: &str,
        stream: StreamKey,
        role: Role,
        transport: ProbeTransport,
    ) -> Result<(PeerId, SessionCreated), SfuError> {
        // str0m's parser meets the client's bytes first: a panic in it refuses this offer only.
        let parsed = std::panic::catch_unwind(|| {
            crate::sfu::fault::offer(&stream.to_string());
            SdpOffer::from_sdp_string(sdp)
        });
        let offer = match parsed {
            Ok(Ok(offer)) => offer,
            Ok(Err(err)) => return Err(SfuError::BadOffer(format!("the SDP offer does not parse: {err}"))),
            Err(_) => {
                tracing::error!(%stream, "str0m panicked parsing an offer; refused");
                return Err(SfuError::BadOffer("the SDP offer cannot be parsed".to_owned()));
            }
        };
        let mut rtc = self.new_rtc(&role, transport)?;
        let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
        {
            Ok(Ok(answer)) => offer::follow_offer_order(&answer.to_sdp_string(), sdp),
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
            rtc: Box::new(rtc),
            local_ufrag: local_ufrag.clone(),
            remote_ufrag: offer::ice_ufrag(sdp).map(str::to_owned),
            addrs: Vec::new(),
            created: Instant::now(),
            connected: false,
            deadline: Instant::now(),
            scheduled: None,
            liveness: Liveness::new(Instant::now()),
            role,
        };
        settle(&mut peer, &mut self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        self.demux.add_peer(&local_ufrag, id);
        self.sessions.insert(session_id.clone(), id);
        self.peers.insert(id, peer);
        Ok((id, SessionCreated { session_id, etag, answer }))
    }

    pub(super) fn publish(&mut self, request: PublishRequest) -> Result<SessionCreated, SfuError> {
        let sections = offer::inspect(&request.offer, Intent::Publish)?;
        let name = SourceName::asked(request.source);
        let existing = self.streams.get(&request.stream);
        let replacing = existing.and_then(|s| s.source(&name)).is_some();
        let sources = existing.map_or(0, |s| s.sources.len());
        if !replacing && sources >= self.config.max_sources_per_stream {
            return Err(SfuError::LimitReached(format!(
                "this stream already has {sources} sources, the most allowed; try again when one ends"
            )));
        }
        if !replacing {
            self.admit_publisher(&request.stream, &request.token_id, request.limits)?;
        }
        let mut tracks = Vec::new();
        for section in sections.iter().filter(|s| !s.rejected && s.sends()) {
            let Some(kind) = section.kind else { continue };
            let mid = section.mid.as_deref().ok_or_else(|| SfuError::BadOffer("every m-line needs an a=mid".into()))?;
            tracks.push(TrackIn::new(Mid::from(mid), kind));
        }
        let role = Role::Publisher(Publisher {
            source: name.clone(),
            token_id: request.token_id,
            record: request.record,
            tracks,
            health: Default::default(),
        });
        let (id, created) = self.accept(&request.offer, request.stream.clone(), role)?;
        let stream = self.streams.entry(&request.stream);
        match stream.source_mut(&name) {
            Some(source) => {
                if let Some(previous) = source.pending.replace(id) {
                    self.doomed.push((previous, Ending::Superseded));
                }
            }
            None => stream.sources.push(Source::new(name.clone(), id)),
        }
        tracing::info!(session = %created.session_id, stream = %request.stream, source = ?name, replacing, "publisher joined");
        self.notify(&request.stream);
        Ok(created)
    }

    /// A connectivity probe: answered with the candidates of one transport, dropped after
    /// PROBE_LIFETIME. It joins no stream.
    pub(super) fn probe(&mut self, request: ProbeRequest) -> Result<SessionCreated, SfuError> {
        offer::inspect(&request.offer, Intent::View)?;
        if request.transport == ProbeTransport::Tcp && self.io.tcp_announced.is_empty() {
            return Err(SfuError::NotFound("ICE-TCP is off on this server (--rtc-tcp-port off)".into()));
        }
        let probes = self.peers.values().filter(|p| matches!(p.role, Role::Probe)).count();
        if probes >= MAX_PROBES {
            return Err(SfuError::LimitReached("too many connection tests at once; try again in a minute".into()));
        }
        let (_, created) = self.accept_over(&request.offer, StreamKey::probe(), Role::Probe, request.transport)?;
        Ok(created)
    }

    /// The caps count viewers who connected; those still connecting (an offer costs nothing to
    /// send, and a session waits [`crate::sfu::SfuConfig::connect_timeout`] for ICE) have small
    /// budgets of their own, per stream, per address and in all, so that offers which never
    /// connect cannot keep real viewers out.
    /// The account's and the token's caps on feeds published at once (replacements waiting to
    /// take over are not counted: they end one feed as they start another).
    fn admit_publisher(&self, stream: &StreamKey, token_id: &str, limits: AccountLimits) -> Result<(), SfuError> {
        let (mut of_account, mut of_token) = (0, 0);
        for (_, registered) in self.streams.iter().filter(|(key, _)| key.account == stream.account) {
            for source in &registered.sources {
                of_account += 1;
                let token = self.peers.get(&source.publisher).and_then(Peer::publisher).map(|p| p.token_id.as_str());
                if token == Some(token_id) {
                    of_token += 1;
                }
            }
        }
        if of_account >= limits.max_publishers {
            return Err(SfuError::LimitReached(format!(
                "this account publishes {of_account} feeds, the most it may; end one first"
            )));
        }
        if of_token >= self.config.max_publishers_per_token {
            return Err(SfuError::QuotaReached(format!(
                "this token publishes {of_token} feeds, the most allowed; end one or use another token"
            )));
        }
        Ok(())
    }

    fn admit_viewer(
        &self,
        key: &StreamKey,
        stream: &Stream,
        client: std::net::IpAddr,
        pass: Option<&ViewerPass>,
        limits: AccountLimits,
    ) -> Result<(), SfuError> {
        let connected = |id: &PeerId| self.peers.get(id).is_some_and(|p| p.connected);
        self.admit_account_viewer(key, stream, limits)?;
        let watching = stream.viewers.iter().filter(|id| connected(id)).count();
        if watching >= self.config.max_viewers_per_stream {
            return Err(SfuError::LimitReached(format!(
                "this stream has {watching} viewers, the most allowed; try again later"
            )));
        }
        if stream.viewers.len() - watching >= PENDING_VIEWERS_PER_STREAM {
            return Err(SfuError::LimitReached(
                "too many viewers are connecting to this stream at once; try again in a few seconds".into(),
            ));
        }
        let (mut connected_total, mut pending_total, mut pending_here, mut of_pass) = (0, 0, 0, 0);
        for peer in self.peers.values() {
            let Role::Viewer(viewer) = &peer.role else { continue };
            if peer.connected {
                connected_total += 1;
            } else {
                pending_total += 1;
                pending_here += usize::from(viewer.client == client);
            }
            // A pass's cap counts its viewers still connecting too: it is a promise to whoever
            // handed the pass out, so it is never exceeded, not even for a moment.
            if let (Some(pass), Some(theirs)) = (pass, &viewer.pass) {
                of_pass += usize::from(theirs.kind == pass.kind && theirs.id == pass.id);
            }
        }
        if connected_total >= self.config.max_viewers {
            return Err(SfuError::LimitReached("this server has as many viewers as it allows; try again later".into()));
        }
        if let Some(pass) = pass {
            if let Some(max) = pass.max_viewers.filter(|max| of_pass >= *max as usize) {
                let what = match pass.kind {
                    PassKind::SubscribeToken => "viewer token",
                    PassKind::Link => "viewer link",
                };
                return Err(SfuError::LimitReached(format!(
                    "this {what} allows {max} viewers at once and all are watching; try again later"
                )));
            }
        }
        if pending_here >= PENDING_VIEWERS_PER_ADDRESS {
            return Err(SfuError::LimitReached(
                "too many viewers from your address are still connecting; try again in a few seconds".into(),
            ));
        }
        if pending_total >= PENDING_VIEWERS {
            return Err(SfuError::LimitReached(
                "too many viewers are connecting at once; try again in a few seconds".into(),
            ));
        }
        Ok(())
    }

    /// The stream owner's limits on viewers (connected or connecting) and on egress, over all its
    /// streams.
    fn admit_account_viewer(&self, key: &StreamKey, stream: &Stream, limits: AccountLimits) -> Result<(), SfuError> {
        if limits.max_viewers.is_none() && limits.max_egress_bps.is_none() {
            return Ok(());
        }
        let (mut viewers, mut egress) = (0usize, 0u64);
        for (_, theirs) in self.streams.iter().filter(|(k, _)| k.account == key.account) {
            viewers += theirs.viewers.len();
            egress += self.egress_bps(theirs);
        }
        if let Some(max) = limits.max_viewers.filter(|max| viewers >= *max as usize) {
            return Err(SfuError::LimitReached(format!(
                "this account's streams have {viewers} viewers, the most it may ({max}); try again later"
            )));
        }
        if let Some(max) = limits.max_egress_bps.filter(|max| egress + self.viewer_rate_bps(stream) > *max) {
            return Err(SfuError::LimitReached(format!(
                "this account's streams send {:.1} Mbit/s to viewers and one more would pass the most it may ({:.1} \
                 Mbit/s); try again later",
                egress as f64 / 1e6,
                max as f64 / 1e6
            )));
        }
        Ok(())
    }

    /// At most what one viewer of the stream receives: each live source's tracks, a simulcast
    /// video at its best layer (rates of the last stats tick).
    pub(super) fn viewer_rate_bps(&self, stream: &Stream) -> u64 {
        stream
            .sources
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| self.peers.get(&s.publisher).and_then(Peer::publisher))
            .flat_map(|publisher| &publisher.tracks)
            .map(|t| match t.is_simulcast() {
                true => t.layers.iter().map(|l| l.stats.bitrate_bps).max().unwrap_or(0),
                false => t.bitrate_bps(),
            })
            .sum()
    }

    /// What the stream sends to its connected viewers now, estimated (see `viewer_rate_bps`).
    pub(super) fn egress_bps(&self, stream: &Stream) -> u64 {
        let connected = stream.viewers.iter().filter(|id| self.peers.get(id).is_some_and(|p| p.connected)).count();
        self.viewer_rate_bps(stream) * connected as u64
    }

    pub(super) fn view(&mut self, request: ViewRequest) -> Result<SessionCreated, SfuError> {
        let sections = offer::inspect(&request.offer, Intent::View)?;
        let asked = SourceName::asked(request.source);
        let stream = self.streams.get(&request.stream).filter(|s| s.is_live()).ok_or(SfuError::NotLive)?;
        let first = stream.default_source(&asked).ok_or(SfuError::NotLive)?;
        self.admit_viewer(&request.stream, stream, request.client, request.pass.as_ref(), request.limits)?;
        let receiving = |kind: MediaKind| -> Result<Vec<String>, SfuError> {
            sections
                .iter()
                .filter(|s| s.kind == Some(kind) && !s.rejected && s.receives())
                .map(|s| s.mid.clone().ok_or_else(|| SfuError::BadOffer("every m-line needs an a=mid".into())))
                .collect()
        };
        let videos = receiving(MediaKind::Video)?;
        let audios = receiving(MediaKind::Audio)?;
        let others: Vec<SourceName> =
            stream.sources.iter().filter(|s| s.active && s.name != first).map(|s| s.name.clone()).collect();
        let pair_count = videos.len().max(audios.len());
        let pairs: Vec<Pair> = (0..pair_count)
            .map(|i| {
                Pair::new(
                    if i == 0 { Some(first.clone()) } else { others.get(i - 1).cloned() },
                    videos.get(i).map(|mid| OutTrack::new(Mid::from(mid.as_str()), MediaKind::Video)),
                    audios.get(i).map(|mid| OutTrack::new(Mid::from(mid.as_str()), MediaKind::Audio)),
                )
            })
            .collect();
        let pair_of_mid: HashMap<String, usize> =
            videos.iter().enumerate().chain(audios.iter().enumerate()).map(|(i, mid)| (mid.clone(), i)).collect();
        let bindings: Vec<(usize, SourceName)> =
            pairs.iter().enumerate().filter_map(|(i, p)| p.bound.clone().map(|b| (i, b))).collect();

        // Estimation (and TWCC feedback for it) only where there are layers to choose from.
        let estimating = stream
            .source(&first)
            .and_then(|s| self.peers.get(&s.publisher))
            .and_then(Peer::publisher)
            .and_then(Publisher::video)
            .is_some_and(TrackIn::is_simulcast);
        let role = Role::Viewer(Viewer::new(pairs, request.client, request.pass, request.embedded_on, estimating));
        let (id, mut created) = self.accept(&request.offer, request.stream.clone(), role)?;
        created.answer =
            offer::set_msids(&created.answer, |mid| pair_of_mid.get(mid).map(|pair| format!("ferrocast-{pair}")));
        let stream = self.streams.entry(&request.stream);
        stream.viewers.push(id);
        for (pair, name) in &bindings {
            stream.subscribe(name, id, *pair);
        }
        // Each pair's layer from the start, so that its first picture is of that layer.
        for (_, name) in &bindings {
            self.retarget_source(&request.stream, name);
        }
        tracing::info!(session = %created.session_id, stream = %request.stream, pairs = pair_count, "viewer joined");
        self.notify(&request.stream);
        Ok(created)
    }

    pub(super) fn trickle(
        &mut self,
        session: &SessionRef,
        if_match: Option<&str>,
        fragment: &str,
    ) -> Result<(), SfuError> {
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
            let parsed = std::panic::catch_unwind(|| Candidate::from_sdp_string(line));
            if let Ok(Ok(candidate)) = parsed {
                if peer.guarded(|rtc| rtc.add_remote_candidate(candidate)).is_none() {
                    self.doomed.push((id, Ending::Panicked));
                }
            }
        }
        settle(peer, &mut self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        Ok(())
    }

    pub(super) fn select(&mut self, session: &SessionRef, selection: Selection) -> Result<(), SfuError> {
        let id = self.find_session(session)?;
        let peer = self.peers.get_mut(&id).ok_or(SfuError::SessionNotFound)?;
        let key = peer.stream.clone();
        let viewer = peer.viewer_mut().ok_or(SfuError::SessionNotFound)?;
        let pairs = viewer.pairs.len();
        let pair = selection.pair;
        let Some(slot) = viewer.pairs.get_mut(pair) else {
            return Err(SfuError::BadRequest(format!(
                "this session has {pairs} audio/video pairs; there is no pair {pair}"
            )));
        };
        let stream = self.streams.get_mut(&key).ok_or(SfuError::NotLive)?;
        let name = match selection.source {
            SourceChoice::Keep => slot.bound.clone(),
            SourceChoice::Main => Some(SourceName::Main),
            SourceChoice::Id(id) => Some(SourceName::Id(id)),
        };
        let Some(name) = name else {
            return Err(SfuError::NotFound(format!("pair {pair} shows no source; choose one with sourceId")));
        };
        if !stream.source(&name).is_some_and(|s| s.active) {
            return Err(SfuError::NotFound(format!("source {name} is not live")));
        }
        let quality_changed = selection.quality.is_some_and(|q| q != slot.quality);
        if let Some(quality) = selection.quality {
            slot.quality = quality;
        }
        let source_changed = slot.bound.as_ref() != Some(&name);
        if source_changed {
            if let Some(old) = slot.bound.replace(name.clone()) {
                stream.unsubscribe(&old, id, pair);
            }
            slot.tracks_mut().for_each(OutTrack::switch);
            stream.subscribe(&name, id, pair);
        }
        if !(source_changed || quality_changed) {
            return Ok(());
        }
        slot.climb = Default::default();
        // The new target now rather than at the next tick: its keyframe is asked for at once.
        let layers = self.retarget_source(&key, &name);
        if let Some(viewer) = self.peers.get(&id).and_then(Peer::viewer) {
            viewer.publish_pairs();
        }
        self.request_keyframe(&key, &name, layers);
        Ok(())
    }

    pub(super) fn find_session(&self, session: &SessionRef) -> Result<PeerId, SfuError> {
        let id = *self.sessions.get(&session.id).ok_or(SfuError::SessionNotFound)?;
        let peer = self.peers.get(&id).ok_or(SfuError::SessionNotFound)?;
        let matches = peer.kind() == session.kind
            && peer.stream.name == session.stream_name
            && session.account.as_ref().is_none_or(|a| a.as_str() == &*peer.stream.account);
        if matches {
            Ok(id)
        } else {
            Err(SfuError::SessionNotFound)
        }
    }

    /// What the stream's feeds show (see [`crate::sfu::board`]).
    pub(super) fn live_state(&self, stream: &Stream) -> LiveState {
        let now = Instant::now();
        let sources: Vec<LiveSource> = stream
            .sources
            .iter()
            .map(|source| {
                let publisher = self.peers.get(&source.publisher).and_then(Peer::publisher);
                LiveSource {
                    source_id: source.name.source_id(),
                    active: source.active,
                    tracks: publisher
                        .map(|p| {
                            p.tracks
                                .iter()
                                .map(|t| LiveTrack {
                                    kind: if t.kind == MediaKind::Video { "video" } else { "audio" },
                                    codec: t.params.map(|p| codec_name(p.spec().codec)),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    layers: publisher.and_then(Publisher::video).map(|t| t.layer_infos(now, true)).unwrap_or_default(),
                }
            })
            .collect();
        LiveState {
            exists: true,
            live: stream.is_live(),
            viewers: stream.viewers.len(),
            started_at: stream.sources.iter().filter(|s| s.active).map(|s| s.started_at).min(),
            sources,
        }
    }

    /// The stream's connected viewers counted by `key` (those without one are left out), most
    /// first. A few keys at most: a linear merge beats a map.
    fn tally<'a, K: PartialEq + Ord + 'a>(
        &'a self,
        stream: &'a Stream,
        key: impl Fn(&'a Viewer) -> Option<K>,
    ) -> Vec<(K, usize)> {
        let mut counts: Vec<(K, usize)> = Vec::new();
        let viewers = stream.viewers.iter().filter_map(|id| self.peers.get(id)).filter(|p| p.connected);
        for k in viewers.filter_map(|peer| peer.viewer().and_then(&key)) {
            match counts.iter_mut().find(|(seen, _)| *seen == k) {
                Some((_, n)) => *n += 1,
                None => counts.push((k, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    fn viewers_by_pass(&self, stream: &Stream) -> Vec<PassViewers> {
        let by_pass = self.tally(stream, |v| v.pass.as_ref().map(|p| (&*p.id, p.kind)));
        by_pass.into_iter().map(|((id, kind), viewers)| PassViewers { kind, id: id.to_owned(), viewers }).collect()
    }

    fn viewers_by_site(&self, stream: &Stream) -> Vec<SiteViewers> {
        let by_site = self.tally(stream, |v| v.embedded_on.as_deref());
        by_site.into_iter().map(|(origin, viewers)| SiteViewers { origin: origin.to_owned(), viewers }).collect()
    }

    pub(super) fn snapshot(&self, key: &StreamKey, stream: &Stream) -> StreamInfo {
        let now = Instant::now();
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
                                bitrate_bps: t.bitrate_bps(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let health = publisher.map(|p| &p.health);
                SourceInfo {
                    health: SourceHealth {
                        rtt_ms: health.and_then(|h| h.rtt_ms),
                        loss_percent: health.and_then(Health::loss).map(|loss| (loss * 1000.0).round() / 10.0),
                        nacks: health.map_or(0, |h| h.nacks()),
                        keyframe_requests: health.map_or(0, |h| h.keyframe_requests),
                    },
                    source_id: source.name.source_id(),
                    active: source.active,
                    started_at: source.started_at,
                    bitrate_bps: tracks.iter().map(|t| t.bitrate_bps).sum(),
                    recording: source.recording.is_some(),
                    token_id: publisher.map(|p| p.token_id.clone()).unwrap_or_default(),
                    layers: publisher.and_then(Publisher::video).map(|t| t.layer_infos(now, false)).unwrap_or_default(),
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
            egress_bps: self.egress_bps(stream),
            recording: sources.iter().any(|s| s.active && s.recording),
            sources,
            viewers_by_pass: self.viewers_by_pass(stream),
            viewers_by_site: self.viewers_by_site(stream),
        }
    }
}

/// A peer as the SFU runs it: ICE-lite, RTP mode, the codecs it forwards. Publishers get
/// transport-wide congestion control feedback (their encoder's bandwidth estimate lives on it);
/// viewers do not, unless they watch a simulcast source (`Engine::new_rtc` adds it, with
/// str0m's send-side estimator, so that auto can pick the layer that fits): for each viewer
/// str0m keeps a history of every packet sent (~90 kB) and parses a feedback packet every
/// ~100 ms (`--bench fanout` with a heap profile), worth it only where there is a choice.
/// Receiver reports still give loss and RTT.
/// Public so that the offer fuzz target meets str0m exactly as the engine does.
pub fn rtc_config(publisher: bool) -> RtcConfig {
    let extensions = if publisher { ExtensionMap::standard() } else { viewer_extensions() };
    Rtc::builder()
        .set_crypto_provider(crate::sfu::dtls::crypto_provider())
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_h264(true)
        .enable_av1(true)
        .set_send_buffer_video(VIEWER_VIDEO_SEND_BUFFER)
        .set_extension_map(extensions)
        // Loss, RTT and NACKs of publishers for the Live page;
        // and viewers' receiver reports tell that a viewer without ICE consent checks is there.
        .set_stats_interval(Some(if publisher { crate::sfu::peer::STATS_INTERVAL } else { VIEWER_STATS_INTERVAL }))
}

fn viewer_extensions() -> ExtensionMap {
    let mut viewer = ExtensionMap::empty();
    for (id, extension) in VIEWER_EXTENSIONS {
        viewer.set(id, extension);
    }
    viewer
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
