//! The engine's bookkeeping: peers connecting and leaving, keyframe requests, housekeeping.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use str0m::{
    bwe::{Bitrate, BweKind},
    format::PayloadParams,
    media::{KeyframeRequestKind, MediaKind, Mid},
    Rtc,
};

use super::{settle, Engine, PROBE_LIFETIME, PROMOTE_AFTER};
use crate::sfu::ending::{Ending, Verdict};
use crate::{
    recorder::RecordingStart,
    sfu::{
        api::StreamKey,
        forward::OutTrack,
        layers::{self, LayerIn, LayerName, Quality, RankedLayer},
        peer::{LayerMask, Pair, Peer, PeerId, Role, SourceName, AUDIO_BPS, MAX_LAYERS},
        registry::Source,
    },
};

impl Engine {
    pub(super) fn on_connected(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.connected = true;
        let key = peer.stream.clone();
        let shown: Vec<(SourceName, LayerMask)> = match &peer.role {
            Role::Publisher(_) | Role::Probe => Vec::new(),
            Role::Viewer(viewer) => viewer
                .pairs
                .iter()
                .filter_map(|p| {
                    Some((p.bound.clone()?, LayerMask::one(p.video.as_ref().map_or(0, |v| v.target_layer))))
                })
                .collect(),
        };
        match peer.publisher().map(|p| p.source.clone()) {
            Some(name) => {
                // What a recording of this feed would be, should one begin now.
                let recording = peer.publisher().filter(|p| p.record && self.config.recorder.is_some()).map(|p| {
                    let recording = crate::recorder::new_id();
                    RecordingStart {
                        id: recording,
                        account: key.account.to_string(),
                        stream_name: key.name.to_string(),
                        source_id: name.source_id(),
                        token_id: p.token_id.clone(),
                        has_video: p.has_video(),
                        has_audio: p.tracks.iter().any(|t| t.kind == MediaKind::Audio),
                        file_stem: crate::recorder::key(recording),
                    }
                });
                let Some(stream) = self.streams.get_mut(&key) else { return };
                let Some(source) = stream.source_mut(&name) else { return };
                if source.publisher == id {
                    source.active = true;
                    // A replacement continues the recording that runs.
                    let begins = recording.filter(|_| source.recording.is_none());
                    if let Some(start) = &begins {
                        source.recording = Some(start.id);
                    }
                    stream.empty_since = None;
                    if let (Some(start), Some(recorder)) = (begins, &self.config.recorder) {
                        recorder.start_recording(start);
                        // The file starts at a keyframe: ask for one now rather than wait.
                        self.request_keyframe_from(id, LayerMask::one(RECORDED_LAYER));
                    }
                    self.attach_waiting_viewers(&key, &name);
                    self.notify(&key);
                } else if source.pending == Some(id) {
                    self.request_keyframe_from(id, LayerMask::ALL);
                }
                tracing::info!(stream = %key, source = ?name, "publisher connected");
            }
            None => {
                for (name, layers) in shown {
                    self.request_keyframe(&key, &name, layers);
                }
            }
        }
    }

    /// A source (re)appeared: viewer pairs bound to its name subscribe again, and pairs showing
    /// nothing pick it up.
    pub(super) fn attach_waiting_viewers(&mut self, key: &StreamKey, name: &SourceName) {
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
            viewer.publish_pairs();
        }
        let layers = self.retarget_source(key, name);
        self.request_keyframe(key, name, layers);
    }

    pub(super) fn on_viewer_keyframe_request(&mut self, id: PeerId, mid: Mid) {
        let Some(peer) = self.peers.get(&id) else { return };
        let Role::Viewer(viewer) = &peer.role else { return };
        let shown = viewer.pairs.iter().find_map(|p| {
            let video = p.video.as_ref().filter(|v| v.mid == mid)?;
            Some((p.bound.clone()?, video.layer.unwrap_or(video.target_layer)))
        });
        if let Some((name, layer)) = shown {
            let key = peer.stream.clone();
            self.request_keyframe(&key, &name, LayerMask::one(layer));
        }
    }

    pub(super) fn request_keyframe(&mut self, key: &StreamKey, name: &SourceName, layers: LayerMask) {
        let Some(source) = self.streams.get(key).and_then(|s| s.source(name)) else { return };
        let publisher = source.publisher;
        self.request_keyframe_from(publisher, layers);
    }

    /// Asks a publisher for a keyframe on these layers of each video track, each layer within
    /// its throttle.
    pub(super) fn request_keyframe_from(&mut self, id: PeerId, layers: LayerMask) {
        let now = Instant::now();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if !peer.connected {
            return;
        }
        let Peer { rtc, role: Role::Publisher(publisher), .. } = &mut *peer else { return };
        let mut sent = false;
        for track in publisher.tracks.iter_mut().filter(|t| t.kind == MediaKind::Video) {
            let params = track.params;
            for (_, layer) in track.layers.iter_mut().enumerate().filter(|(i, _)| layers.contains(*i)) {
                if layer.keyframes.request(now) {
                    sent |= send_keyframe_request(rtc, params, layer);
                }
            }
        }
        if sent {
            publisher.health.keyframe_requests += 1;
            self.counts.keyframe_requests += 1;
            settle(peer, &mut self.io, &mut self.timers, &mut self.events, &mut self.doomed);
        }
    }

    /// Aims the viewer pairs of one source now rather than at the next tick (a join, a switch, a
    /// source back), telling the feeds that changed; returns the layers their keyframes are
    /// wanted of.
    pub(super) fn retarget_source(&mut self, key: &StreamKey, name: &SourceName) -> LayerMask {
        let Some(source) = self.streams.get(key).and_then(|s| s.source(name)) else { return LayerMask::default() };
        let mut changed = Vec::new();
        let layers = Self::retarget_subscribers(&mut self.peers, source, Instant::now(), &mut changed);
        for id in changed {
            if let Some(viewer) = self.peers.get(&id).and_then(Peer::viewer) {
                viewer.publish_pairs();
            }
        }
        layers
    }

    /// What each viewer pair of a source should show, and what the session feeds say it shows:
    /// every pair's target layer follows its quality among the layers sending now; a pair not
    /// showing its target yet (after a join, a switch, or a layer that stopped) asks for a
    /// keyframe of it, through the throttle. Returns the layers the source's publisher is asked
    /// for, and adds the viewers whose feed changed to `changed`.
    pub(super) fn retarget_subscribers(
        peers: &mut HashMap<PeerId, Peer>,
        source: &Source,
        now: Instant,
        changed: &mut Vec<PeerId>,
    ) -> LayerMask {
        let plan = LayerPlan::of(peers.get(&source.publisher), now);
        let mut wanted = LayerMask::default();
        for &(viewer_id, index) in &source.subscribers {
            let Some(Peer { role: Role::Viewer(viewer), connected, .. }) = peers.get_mut(&viewer_id) else {
                continue;
            };
            let budget = viewer.estimation.as_ref().and_then(|e| e.budget_per_pair(viewer.pairs.len()));
            let Some(pair) = viewer.pairs.get_mut(index) else { continue };
            let was = pair.video.as_ref().map(|v| v.target_layer);
            // A viewer still connecting is aimed too, so that its first picture is of its layer.
            let waiting_for = plan.aim(pair, budget);
            let target = pair.video.as_ref().map(|v| v.target_layer);
            if was != target {
                tracing::debug!(viewer = %viewer_id, pair = index, ?target, quality = ?pair.quality, budget_bps = ?budget, "simulcast layer target");
            }
            if let Some(layer) = waiting_for.filter(|_| *connected) {
                wanted.add(layer);
            }
            if plan.name_shown(pair) {
                changed.push(viewer_id);
            }
        }
        wanted
    }

    pub(super) fn housekeeping(&mut self) {
        let now = Instant::now();
        // Trailing keyframe requests.
        let Engine { peers, io, timers, events, doomed, .. } = self;
        for peer in peers.values_mut() {
            let Peer { rtc, role: Role::Publisher(publisher), connected: true, .. } = peer else { continue };
            let mut sent = false;
            for track in publisher.tracks.iter_mut().filter(|t| t.kind == MediaKind::Video) {
                let params = track.params;
                for layer in &mut track.layers {
                    if layer.keyframes.poll_trailing(now) {
                        sent |= send_keyframe_request(rtc, params, layer);
                    }
                }
            }
            if sent {
                settle(peer, io, timers, events, doomed);
            }
        }

        // Each viewer pair's layer; pairs still waiting for a picture (or their target layer)
        // ask again; replacements are pushed for a keyframe and take over after PROMOTE_AFTER
        // without one.
        let mut wanted: Vec<(PeerId, LayerMask)> = Vec::new();
        let mut changed: Vec<PeerId> = Vec::new();
        for (_, stream) in self.streams.iter_mut() {
            for source in &mut stream.sources {
                let layers = Self::retarget_subscribers(&mut self.peers, source, now, &mut changed);
                if !layers.is_empty() {
                    wanted.push((source.publisher, layers));
                }
                if let Some(pending) = source.pending {
                    let Some(peer) = self.peers.get(&pending) else { continue };
                    if peer.connected {
                        wanted.push((pending, LayerMask::ALL));
                        if now.duration_since(peer.created) > PROMOTE_AFTER {
                            self.doomed.push((super::take_over(source, &mut self.peers), Ending::Replaced));
                        }
                    }
                }
            }
        }
        for (id, layers) in wanted {
            self.request_keyframe_from(id, layers);
        }
        for id in changed {
            if let Some(viewer) = self.peers.get(&id).and_then(Peer::viewer) {
                viewer.publish_pairs();
            }
        }
        self.steer_estimators();

        // Peers that never connected, probes past their time, and viewers of a stream gone for good.
        for peer in self.peers.values() {
            let age = now.duration_since(peer.created);
            let expired = matches!(peer.role, Role::Probe) && age > PROBE_LIFETIME;
            if expired {
                self.doomed.push((peer.id, Ending::ProbeOver));
            } else if !peer.connected && age > self.config.connect_timeout {
                self.doomed.push((peer.id, Ending::NeverConnected));
            } else if let Verdict::Gone = peer.liveness.verdict(now) {
                self.doomed.push((peer.id, Ending::Silent));
            }
        }
        for (_, stream) in self.streams.iter() {
            if stream.empty_since.is_some_and(|since| now.duration_since(since) > self.config.orphan_grace) {
                self.doomed.extend(stream.viewers.iter().map(|&id| (id, Ending::StreamGone)));
            }
        }

        // Bitrates, once a second.
        let elapsed = now.duration_since(self.last_stats);
        if elapsed >= Duration::from_secs(1) {
            self.last_stats = now;
            if self.io.dropped > self.reported_dropped {
                tracing::debug!(
                    dropped = self.io.dropped - self.reported_dropped,
                    "datagrams dropped in the last second: socket buffers or ICE-TCP queues full"
                );
                self.reported_dropped = self.io.dropped;
            }
            let behind = self.config.recorder.as_ref().map_or(0, |r| r.dropped());
            if behind > self.reported_recorder_dropped {
                tracing::warn!(
                    dropped = behind - self.reported_recorder_dropped,
                    "the recorder is behind: packets dropped (the recordings show a gap)"
                );
                self.reported_recorder_dropped = behind;
            }
            for peer in self.peers.values_mut() {
                if let Some(publisher) = peer.publisher_mut() {
                    for track in &mut publisher.tracks {
                        track.tick(now);
                    }
                }
            }
            self.report_metrics();
            // What changes without an event of its own (a codec learnt from the first packet, a
            // replacement promoted) reaches the board within a second; unchanged states wake nobody.
            for (key, stream) in self.streams.iter() {
                self.board.publish(key, self.live_state(stream));
            }
        }
    }

    /// Tells each estimating viewer's bandwidth estimator what its pairs' layers need (see
    /// `LayerPlan::wanted`), when that moved by a tenth.
    fn steer_estimators(&mut self) {
        let Engine { peers, io, timers, events, doomed, .. } = self;
        for peer in peers.values_mut() {
            let Peer { rtc, role: Role::Viewer(viewer), connected: true, .. } = peer else { continue };
            let Some(estimation) = viewer.estimation.as_mut() else { continue };
            let wanted = viewer.pairs.iter().fold((0, 0), |(min, max), p| (min + p.wanted_bps.0, max + p.wanted_bps.1));
            let wanted = (wanted.0 + AUDIO_BPS, wanted.1 + AUDIO_BPS);
            let moved = |now: u64, was: u64| now.abs_diff(was) * 10 > was;
            if !moved(wanted.0, estimation.steered.0) && !moved(wanted.1, estimation.steered.1) {
                continue;
            }
            estimation.steered = wanted;
            rtc.bwe().set_bitrate(Bitrate::bps(wanted.0), Bitrate::bps(wanted.1));
            settle(peer, io, timers, events, doomed);
        }
    }

    /// A viewer's bandwidth estimate (str0m's send-side estimator over the viewer's TWCC feedback).
    pub(super) fn on_estimate(&mut self, id: PeerId, kind: BweKind) {
        let Some(estimation) = self.peers.get_mut(&id).and_then(Peer::viewer_mut).and_then(|v| v.estimation.as_mut())
        else {
            return;
        };
        // REMB is ignored: browsers send TWCC feedback (which the estimate comes from) and
        // have deprecated REMB; a viewer without TWCC has no estimation at all.
        if let BweKind::Twcc { estimate, .. } = kind {
            tracing::trace!(viewer = %id, estimate_bps = estimate.as_u64(), "bandwidth estimate");
            estimation.bps = Some(estimate.as_u64());
        }
    }

    /// Hands the packet path's counters and the engine's census to the metrics recorder.
    fn report_metrics(&mut self) {
        let counts = &mut self.counts;
        let now = [counts.packets_forwarded, counts.bytes_forwarded, counts.keyframe_requests, self.io.dropped];
        let names = [
            "ferrocast_packets_forwarded_total",
            "ferrocast_bytes_forwarded_total",
            "ferrocast_keyframe_requests_total",
            "ferrocast_datagrams_dropped_total",
        ];
        for ((name, now), reported) in names.into_iter().zip(now).zip(&mut counts.reported) {
            metrics::counter!(name).increment(now - *reported);
            *reported = now;
        }
        let (mut publishers, mut connected, mut pending) = (0, 0, 0);
        for peer in self.peers.values() {
            match (&peer.role, peer.connected) {
                (Role::Publisher(_), _) => publishers += 1,
                (Role::Viewer(_), true) => connected += 1,
                (Role::Viewer(_), false) => pending += 1,
                (Role::Probe, _) => {}
            }
        }
        let live = self.streams.iter().filter(|(_, s)| s.is_live()).count();
        metrics::gauge!("ferrocast_streams_live").set(live as f64);
        metrics::gauge!("ferrocast_publishers").set(publishers as f64);
        metrics::gauge!("ferrocast_viewers", "state" => "connected").set(connected as f64);
        metrics::gauge!("ferrocast_viewers", "state" => "pending").set(pending as f64);
    }

    pub(super) fn remove_peer(&mut self, id: PeerId, ending: Ending) {
        let Some(mut peer) = self.peers.remove(&id) else { return };
        tracing::info!(session = %peer.session_id, stream = %peer.stream, role = ?peer.kind(), reason = %ending, "session ended");
        self.sessions.remove(&peer.session_id);
        self.demux.remove_peer(&peer.local_ufrag, &peer.addrs, id);
        if matches!(peer.role, Role::Probe) {
            // A probe belongs to no stream: nothing else to update or announce.
            peer.rtc.disconnect();
            return;
        }
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
                                    let gone = stream.sources.remove(index);
                                    if let (Some(recording), Some(recorder)) = (gone.recording, &self.config.recorder) {
                                        recorder.stop_recording(recording, None);
                                    }
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
                Role::Probe => {}
            }
        }
        if let Some(name) = reattach {
            self.attach_waiting_viewers(&key, &name);
        }
        self.streams.prune(&key);
        peer.rtc.disconnect();
        self.notify(&key);
    }

    /// Writes the stream's state on the board (what every feed of it shows).
    pub(super) fn notify(&self, key: &StreamKey) {
        match self.streams.get(key) {
            Some(stream) => self.board.publish(key, self.live_state(stream)),
            None => self.board.forget(key),
        }
    }
}

fn send_keyframe_request(rtc: &mut Rtc, params: Option<PayloadParams>, layer: &LayerIn) -> bool {
    let kind = match params {
        Some(p) if !p.fb_pli() && p.fb_fir() => KeyframeRequestKind::Fir,
        _ => KeyframeRequestKind::Pli,
    };
    // By SSRC: on a simulcast track a request by mid alone reaches an arbitrary layer.
    let mut api = rtc.direct_api();
    match api.stream_rx(&layer.ssrc) {
        Some(rx) => {
            rx.request_keyframe(kind);
            true
        }
        None => false,
    }
}

/// The layer a recording keeps to: the first learnt of each track.
pub(super) const RECORDED_LAYER: u8 = 0;

/// A source's layers as viewer pairs choose among them, copied once per source and tick (the
/// publisher's track cannot stay borrowed while viewers change): best first, and each layer's
/// name. Without simulcast every pair targets layer 0 and no name is shown.
struct LayerPlan {
    now: Instant,
    simulcast: bool,
    ranked: [RankedLayer; MAX_LAYERS],
    count: usize,
    names: [Option<LayerName>; MAX_LAYERS],
}

impl LayerPlan {
    fn of(publisher: Option<&Peer>, now: Instant) -> Self {
        let mut plan = Self { now, simulcast: false, ranked: Default::default(), count: 0, names: [None; MAX_LAYERS] };
        let video = publisher.and_then(Peer::publisher).and_then(|p| p.video()).filter(|t| t.is_simulcast());
        let Some(track) = video else { return plan };
        plan.simulcast = true;
        for (slot, layer) in plan.ranked.iter_mut().zip(layers::snapshot(&track.layers, &track.ranked, now)) {
            *slot = layer;
            plan.count += 1;
        }
        for (index, name) in plan.names.iter_mut().enumerate() {
            *name = track.layer_name(index as u8);
        }
        plan
    }

    fn ranked(&self) -> &[RankedLayer] {
        &self.ranked[..self.count]
    }

    /// Points the pair's video at the layer its quality (and, for auto, `budget_bps`, its share
    /// of the viewer's bandwidth estimate) asks for, and notes what the estimator should look
    /// for; returns the layer whose keyframe it waits for, if it is not showing it yet.
    fn aim(&self, pair: &mut Pair, budget_bps: Option<u64>) -> Option<u8> {
        let video = pair.video.as_mut()?;
        let mut pad_to_bps = None;
        if !self.simulcast {
            video.target_layer = 0;
        } else if let Some(chosen) = layers::choose(self.ranked(), pair.quality, budget_bps, video.layer) {
            match budget_bps.filter(|_| pair.quality == Quality::Auto) {
                Some(budget) => {
                    let current = video.layer.map(|_| video.target_layer);
                    let step = pair.climb.step(self.ranked(), current, chosen, budget, self.now);
                    video.target_layer = step.target;
                    pad_to_bps = step.pad_to_bps;
                }
                None => video.target_layer = chosen,
            }
        }
        // The estimator's minimum (what it pads up to) is what the pair receives, or what a
        // trial asks; its desired rate, which it probes for, is what auto would take at best. A
        // fixed quality wants no probing.
        pair.wanted_bps = match pair.quality {
            Quality::Auto => (pad_to_bps.unwrap_or(self.rate_of(video.target_layer)), self.best_with_room()),
            _ => (0, self.rate_of(video.target_layer)),
        };
        (video.layer != Some(video.target_layer)).then_some(video.target_layer)
    }

    fn rate_of(&self, layer: u8) -> u64 {
        self.ranked().iter().find(|l| l.index == layer).map_or(0, |l| l.bitrate_bps)
    }

    /// What an auto pair asks the bandwidth estimator to look for: the best sending layer with
    /// the room moving up to it needs. The estimator finds it with short probe bursts; it is not
    /// asked to pad up to it, since padding at the estimate keeps a bottleneck's queue full and
    /// costs the media its packets.
    fn best_with_room(&self) -> u64 {
        self.ranked().iter().find(|l| l.active).map_or(0, |l| l.bitrate_bps * layers::UP_HEADROOM_PERCENT / 100)
    }

    /// Updates the name the pair's feed shows for its layer; true when it changed.
    fn name_shown(&self, pair: &mut Pair) -> bool {
        let name =
            pair.video.as_ref().and_then(|v| v.layer).and_then(|l| self.names.get(usize::from(l)).copied().flatten());
        let changed = name != pair.layer_shown;
        pair.layer_shown = name;
        changed
    }
}
