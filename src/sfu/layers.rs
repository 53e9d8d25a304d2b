//! Simulcast layers (RFC 8853): what the SFU knows of each layer a publisher sends of one track,
//! how the layers rank, and which of them a viewer pair should be given.
//!
//! A layer is learnt by its RID from its first packet (see `Publisher::track_for`); its index is
//! the order of arrival and never changes, so a viewer track can hold it as a plain `u8`. Ranking
//! ("high", "medium", "low") is separate: by picture size from the layer's keyframes, then by
//! bitrate, recomputed once a second. A track without simulcast has one layer, index 0, and none
//! of this changes anything for it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use str0m::{format::Codec, media::Rid, rtp::Ssrc};

use super::keyframe::KeyframeThrottle;

/// A layer without a packet for this long counts as stopped: browsers drop their top layer under
/// CPU or bandwidth pressure, and its viewers must move down before their picture visibly
/// freezes (a 30 fps layer misses ~7 frames in this time).
pub const STALLED_AFTER: Duration = Duration::from_millis(250);

/// One simulcast layer of an incoming track.
pub struct LayerIn {
    pub rid: Option<Rid>,
    pub ssrc: Ssrc,
    pub keyframes: KeyframeThrottle,
    pub last_packet: Instant,
    /// Counted since then (the last stats tick, or when the layer was learnt).
    counting_since: Instant,
    bytes: u64,
    frames: u32,
    pub stats: LayerStats,
    /// The bitrate of the last interval it sent throughout: what ranks a layer, so that one that
    /// stops keeps its place (the interval in which it stops or returns counts only part of it).
    typical_bps: u64,
    /// No gap of `STALLED_AFTER` since the interval began (and it was sending when it began).
    sent_throughout: bool,
    /// `stats` as the live feeds show them: updated when a rate moves by a fifth or the size
    /// changes.
    pub settled: LayerStats,
}

/// What the API shows of a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub bitrate_bps: u64,
    pub fps: u32,
    /// Width and height from its last keyframe (`None` until one is read, and for AV1).
    pub size: Option<(u16, u16)>,
}

impl LayerIn {
    pub fn new(rid: Option<Rid>, ssrc: Ssrc, now: Instant) -> Self {
        Self {
            rid,
            ssrc,
            keyframes: KeyframeThrottle::default(),
            last_packet: now,
            counting_since: now,
            bytes: 0,
            frames: 0,
            stats: LayerStats::default(),
            typical_bps: 0,
            sent_throughout: true,
            settled: LayerStats::default(),
        }
    }

    /// Per packet: a few adds, nothing else (`ends_frame` is the RTP marker on video).
    pub fn count(&mut self, bytes: usize, ends_frame: bool, arrival: Instant) {
        self.sent_throughout &= arrival.saturating_duration_since(self.last_packet) < STALLED_AFTER;
        self.bytes += bytes as u64;
        self.frames += u32::from(ends_frame);
        self.last_packet = arrival;
    }

    /// Turns what was counted since the last tick into rates (the stats tick, once a second).
    pub fn tick(&mut self, now: Instant) {
        let seconds = now.saturating_duration_since(self.counting_since).as_secs_f64().max(0.001);
        self.counting_since = now;
        self.stats.bitrate_bps = (self.bytes as f64 * 8.0 / seconds) as u64;
        self.stats.fps = (f64::from(self.frames) / seconds).round() as u32;
        if self.stats.bitrate_bps > 0 && self.sent_throughout && self.is_active(now) {
            self.typical_bps = self.stats.bitrate_bps;
        }
        self.sent_throughout = self.is_active(now);
        self.bytes = 0;
        self.frames = 0;
        let moved = |now: u64, shown: u64| now.abs_diff(shown) * 5 > shown.max(1);
        if self.settled.size != self.stats.size
            || moved(self.stats.bitrate_bps, self.settled.bitrate_bps)
            || moved(u64::from(self.stats.fps), u64::from(self.settled.fps))
        {
            self.settled = self.stats;
        }
    }

    pub fn is_active(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_packet) < STALLED_AFTER
    }
}

/// The layers' indices from best to worst: larger pictures first, then higher bitrates (as they
/// were while sending: a layer that stops keeps its rank); a layer whose size is not known yet
/// ranks by bitrate among the others.
pub fn rank(layers: &[LayerIn]) -> Vec<u8> {
    let mut ranked: Vec<u8> = (0..layers.len().min(usize::from(u8::MAX)) as u8).collect();
    let pixels = |l: &LayerIn| l.stats.size.map_or(0, |(w, h)| u32::from(w) * u32::from(h));
    ranked.sort_by_key(|&i| {
        let layer = &layers[usize::from(i)];
        std::cmp::Reverse((pixels(layer), layer.typical_bps))
    });
    ranked
}

/// A layer's name by its rank among `count` layers: the best is `high`, the worst `low`, any in
/// between `medium`; a single layer is `high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerName {
    High,
    Medium,
    Low,
}

impl LayerName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    pub fn of_rank(rank: usize, count: usize) -> Self {
        match rank {
            0 => Self::High,
            r if r + 1 >= count => Self::Low,
            _ => Self::Medium,
        }
    }
}

/// What a viewer asks for on one pair (the layer extension's `layer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// The best layer that is sending and fits the viewer's bandwidth estimate (the best sending
    /// one while there is no estimate).
    #[default]
    Auto,
    High,
    Medium,
    Low,
}

impl Quality {
    /// The rank asked for among `count` layers (`medium` of two is the lower).
    fn rank(self, count: usize) -> usize {
        let last = count.saturating_sub(1);
        match self {
            Self::Auto | Self::High => 0,
            Self::Medium => 1.min(last),
            Self::Low => last,
        }
    }
}

/// A layer as a viewer's choice sees it at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RankedLayer {
    pub index: u8,
    /// What it sends when it sends ([`LayerIn`]'s last non-zero rate).
    pub bitrate_bps: u64,
    pub active: bool,
}

/// The track's layers best first, as [`choose`] takes them.
pub fn snapshot<'a>(layers: &'a [LayerIn], ranked: &'a [u8], now: Instant) -> impl Iterator<Item = RankedLayer> + 'a {
    ranked.iter().filter_map(move |&index| {
        let layer = layers.get(usize::from(index))?;
        Some(RankedLayer { index, bitrate_bps: layer.typical_bps, active: layer.is_active(now) })
    })
}

/// Moving up to a layer needs an estimate this much above its bitrate (in percent); staying on a
/// layer only needs it to fit. The gap keeps a viewer near a boundary from flapping.
pub const UP_HEADROOM_PERCENT: u64 = 120;

/// The layer a viewer pair should show (`ranked` best first). A fixed quality: the layer of the
/// rank asked for if it is sending, else the next one down that is, else the nearest one up.
/// Auto with a bandwidth estimate (`budget_bps`, for this pair's video): the best sending layer
/// that fits it (see [`UP_HEADROOM_PERCENT`]; `current` is the layer shown), else the lowest
/// sending one; auto without one: the best sending layer. `None` when no layer is sending (the
/// pair keeps what it has).
pub fn choose(ranked: &[RankedLayer], quality: Quality, budget_bps: Option<u64>, current: Option<u8>) -> Option<u8> {
    if let (Quality::Auto, Some(budget)) = (quality, budget_bps) {
        let current_rank = current.and_then(|c| ranked.iter().position(|l| l.index == c));
        let fits = |(rank, layer): &(usize, &RankedLayer)| {
            let moving_up = current_rank.is_none_or(|c| *rank < c);
            let need = if moving_up { layer.bitrate_bps * UP_HEADROOM_PERCENT / 100 } else { layer.bitrate_bps };
            layer.active && need <= budget
        };
        let lowest = || ranked.iter().rev().find(|l| l.active);
        return ranked.iter().enumerate().find(fits).map(|(_, l)| l).or_else(lowest).map(|l| l.index);
    }
    let wanted = quality.rank(ranked.len());
    let below = ranked.iter().skip(wanted).find(|l| l.active);
    let above = || ranked.iter().take(wanted).rev().find(|l| l.active);
    below.or_else(above).map(|l| l.index)
}

/// How an auto pair checks that it can move up. A bandwidth estimate that rose from a probe
/// burst alone is not trusted (a token-bucket policer lets a short burst through at any rate):
/// for [`TRIAL`] the estimator pads the viewer's stream from what it receives up to what the
/// better layer needs, rising over [`TRIAL_RAMP`] so that a link that cannot carry it is
/// overloaded only a little when its queue starts to show; the pair moves if the estimate
/// carried it throughout.
const TRIAL: Duration = Duration::from_millis(1500);
const TRIAL_RAMP: Duration = Duration::from_millis(1000);
/// A trial fails as soon as the estimate falls this much (percent) below its highest value
/// since the trial began: the link queues or loses what the padding added.
const TRIAL_DROP_PERCENT: u64 = 25;
/// After a trial fails, the next waits this long, doubling up to [`MAX_TRIAL_BACKOFF`].
const FIRST_TRIAL_BACKOFF: Duration = Duration::from_secs(2);
const MAX_TRIAL_BACKOFF: Duration = Duration::from_secs(6);

/// An auto pair's way up to a better layer: moving down (or staying) happens at once, moving up
/// after a trial (see [`TRIAL`]).
#[derive(Debug, Default)]
pub struct Climb {
    trial: Option<Trial>,
    next_trial: Option<Instant>,
    backoff: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Trial {
    layer: u8,
    since: Instant,
    from_bps: u64,
    need_bps: u64,
    peak_budget_bps: u64,
}

/// What [`Climb::step`] decides for one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The layer the pair should target now.
    pub target: u8,
    /// While a trial runs: the rate the estimator should pad this pair's video up to.
    pub pad_to_bps: Option<u64>,
}

impl Climb {
    /// `current`: the layer the pair targets now (`None` before its first picture, when any
    /// choice is taken at once); `chosen`: what [`choose`] says `budget_bps`, the pair's share of
    /// the estimate, allows.
    pub fn step(
        &mut self,
        ranked: &[RankedLayer],
        current: Option<u8>,
        chosen: u8,
        budget_bps: u64,
        now: Instant,
    ) -> Step {
        let rank = |index: u8| ranked.iter().position(|l| l.index == index);
        let rate = |index: u8| ranked.iter().find(|l| l.index == index).map_or(0, |l| l.bitrate_bps);
        let up = matches!((current.and_then(rank), rank(chosen)), (Some(c), Some(n)) if n < c);
        let (Some(current), true) = (current, up) else {
            if self.trial.take().is_some() {
                self.failed(now);
            }
            return Step { target: chosen, pad_to_bps: None };
        };
        let stay = Step { target: current, pad_to_bps: None };
        let Some(trial) = self.trial.as_mut() else {
            if self.next_trial.is_some_and(|at| now < at) {
                return stay;
            }
            let from_bps = rate(current);
            let need_bps = rate(chosen) * UP_HEADROOM_PERCENT / 100;
            self.trial = Some(Trial { layer: chosen, since: now, from_bps, need_bps, peak_budget_bps: budget_bps });
            return Step { target: current, pad_to_bps: Some(from_bps) };
        };
        trial.peak_budget_bps = trial.peak_budget_bps.max(budget_bps);
        if budget_bps * 100 < trial.peak_budget_bps * (100 - TRIAL_DROP_PERCENT) {
            self.trial = None;
            self.failed(now);
            return stay;
        }
        let elapsed = now.saturating_duration_since(trial.since);
        if elapsed < TRIAL {
            let ramped = elapsed.min(TRIAL_RAMP).as_millis() as u64;
            let added = trial.need_bps.saturating_sub(trial.from_bps) * ramped / TRIAL_RAMP.as_millis() as u64;
            return Step { target: current, pad_to_bps: Some(trial.from_bps + added) };
        }
        // Carried for the whole trial: move, but no higher than what was tried.
        let tried = trial.layer;
        self.trial = None;
        self.next_trial = None;
        self.backoff = Duration::ZERO;
        let target = match (rank(chosen), rank(tried)) {
            (Some(chosen_rank), Some(tried_rank)) if chosen_rank < tried_rank => tried,
            _ => chosen,
        };
        Step { target, pad_to_bps: None }
    }

    fn failed(&mut self, now: Instant) {
        self.backoff = (self.backoff * 2).clamp(FIRST_TRIAL_BACKOFF, MAX_TRIAL_BACKOFF);
        self.next_trial = Some(now + self.backoff);
    }
}

/// The picture size a keyframe's first packet gives: VP8's frame header, VP9's uncompressed
/// header, an H.264 SPS (alone or in a STAP-A); `None` otherwise (AV1's sequence header is not
/// read here). Called for keyframe packets only, so it costs nothing per ordinary packet.
pub fn keyframe_size(codec: Codec, payload: &[u8]) -> Option<(u16, u16)> {
    use crate::recorder::{h264, vp8, vp9};
    match codec {
        Codec::Vp8 => vp8::strip_descriptor(payload).and_then(|(frame, _)| vp8::keyframe_size(frame)),
        Codec::Vp9 => vp9::strip_descriptor(payload).filter(|p| p.begins).and_then(|p| vp9::keyframe_size(p.data)),
        Codec::H264 => {
            const STAP_A: u8 = 24;
            let sps = |nal: &[u8]| h264::parse_sps(nal).map(|sps| (sps.width, sps.height));
            if payload.first()? & 0x1f != STAP_A {
                return sps(payload);
            }
            let mut rest = payload.get(1..)?;
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let nal = rest.get(2..2 + size)?;
                if let Some(found) = sps(nal) {
                    return Some(found);
                }
                rest = &rest[2 + size..];
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rid: &str, size: Option<(u16, u16)>, bitrate_bps: u64, last_packet: Instant) -> LayerIn {
        let mut layer = LayerIn::new(Some(Rid::from(rid)), Ssrc::from(0), last_packet);
        layer.stats = LayerStats { bitrate_bps, fps: 30, size };
        layer.typical_bps = bitrate_bps;
        layer
    }

    #[test]
    fn layers_rank_by_picture_size_then_bitrate_whatever_their_order_of_arrival() {
        let now = Instant::now();
        let layers = [
            layer("m", Some((640, 360)), 500_000, now),
            layer("h", Some((1280, 720)), 1_500_000, now),
            layer("l", Some((320, 180)), 150_000, now),
        ];
        assert_eq!(rank(&layers), vec![1, 0, 2]);
        // Sizes not known yet (no keyframe read, or AV1): bitrate decides.
        let layers = [layer("a", None, 150_000, now), layer("b", None, 1_500_000, now), layer("c", None, 500_000, now)];
        assert_eq!(rank(&layers), vec![1, 2, 0]);
    }

    #[test]
    fn a_layer_that_stops_or_returns_partway_through_an_interval_keeps_its_rank() {
        let start = Instant::now();
        let mut layers = [
            LayerIn::new(Some(Rid::from("h")), Ssrc::from(1), start),
            LayerIn::new(Some(Rid::from("m")), Ssrc::from(2), start),
        ];
        // 20 ms packets: h sends 2500 B each (1 Mbit/s), m 1000 B (400 kbit/s).
        let send = |layers: &mut [LayerIn; 2], from_ms: u64, to_ms: u64, h: bool| {
            for at in (from_ms..to_ms).step_by(20) {
                let arrival = start + Duration::from_millis(at);
                if h {
                    layers[0].count(2500, true, arrival);
                }
                layers[1].count(1000, true, arrival);
            }
        };
        let tick = |layers: &mut [LayerIn; 2], at_ms: u64| {
            layers.iter_mut().for_each(|l| l.tick(start + Duration::from_millis(at_ms)))
        };
        send(&mut layers, 0, 1000, true);
        tick(&mut layers, 1000);
        assert_eq!(rank(&layers), vec![0, 1]);
        // h stops 100 ms into the next second: that second's rate (100 kbit/s) is below m's.
        send(&mut layers, 1000, 1100, true);
        send(&mut layers, 1100, 2000, false);
        tick(&mut layers, 2000);
        assert!(layers[0].stats.bitrate_bps < layers[1].stats.bitrate_bps);
        assert_eq!(rank(&layers), vec![0, 1], "a layer that stops keeps its place");
        // It returns 900 ms into a second: that partial second does not rank it either.
        send(&mut layers, 2000, 2900, false);
        send(&mut layers, 2900, 3000, true);
        tick(&mut layers, 3000);
        assert_eq!(rank(&layers), vec![0, 1]);
        send(&mut layers, 3000, 4000, true);
        tick(&mut layers, 4000);
        assert_eq!(layers[0].typical_bps, 1_000_000);
    }

    #[test]
    fn names_follow_rank() {
        assert_eq!(LayerName::of_rank(0, 3), LayerName::High);
        assert_eq!(LayerName::of_rank(1, 3), LayerName::Medium);
        assert_eq!(LayerName::of_rank(2, 3), LayerName::Low);
        assert_eq!(LayerName::of_rank(1, 2), LayerName::Low);
        assert_eq!(LayerName::of_rank(0, 1), LayerName::High);
    }

    fn pick(
        layers: &[LayerIn],
        quality: Quality,
        budget: Option<u64>,
        current: Option<u8>,
        now: Instant,
    ) -> Option<u8> {
        let ranked: Vec<RankedLayer> = snapshot(layers, &rank(layers), now).collect();
        choose(&ranked, quality, budget, current)
    }

    #[test]
    fn a_viewer_gets_the_layer_asked_for_or_the_next_one_down_that_sends() {
        let now = Instant::now();
        let stopped = now - STALLED_AFTER - Duration::from_millis(1);
        // Arrival order l, m, h; ranked h (2), m (1), l (0).
        let mut layers = vec![
            layer("l", Some((320, 180)), 150_000, now),
            layer("m", Some((640, 360)), 500_000, now),
            layer("h", Some((1280, 720)), 1_500_000, now),
        ];
        assert_eq!(rank(&layers), vec![2, 1, 0]);
        let fixed = |layers: &[LayerIn], quality| pick(layers, quality, None, None, now);
        assert_eq!(fixed(&layers, Quality::High), Some(2));
        assert_eq!(fixed(&layers, Quality::Auto), Some(2));
        assert_eq!(fixed(&layers, Quality::Medium), Some(1));
        assert_eq!(fixed(&layers, Quality::Low), Some(0));

        // The top layer stops: high and auto move down, the others stay.
        layers[2].last_packet = stopped;
        assert_eq!(fixed(&layers, Quality::High), Some(1));
        assert_eq!(fixed(&layers, Quality::Auto), Some(1));
        assert_eq!(fixed(&layers, Quality::Low), Some(0));

        // Only the top one sends: low moves up to it.
        layers[2].last_packet = now;
        layers[0].last_packet = stopped;
        layers[1].last_packet = stopped;
        assert_eq!(fixed(&layers, Quality::Low), Some(2));
        assert_eq!(fixed(&layers, Quality::Medium), Some(2));

        // Nothing sends: no choice (the pair keeps its layer).
        layers[2].last_packet = stopped;
        assert_eq!(fixed(&layers, Quality::High), None);
    }

    #[test]
    fn auto_takes_the_best_layer_the_estimate_carries_and_needs_headroom_to_move_up() {
        let now = Instant::now();
        let layers = vec![
            layer("l", Some((320, 180)), 150_000, now),
            layer("m", Some((640, 360)), 500_000, now),
            layer("h", Some((1280, 720)), 1_500_000, now),
        ];
        let auto = |budget, current| pick(&layers, Quality::Auto, Some(budget), current, now);
        // From nothing (a join): each layer with its headroom.
        assert_eq!(auto(5_000_000, None), Some(2));
        assert_eq!(auto(1_700_000, None), Some(1), "1.5 Mbit/s does not fit 1.7 with headroom");
        assert_eq!(auto(700_000, None), Some(1));
        assert_eq!(auto(400_000, None), Some(0));
        assert_eq!(auto(50_000, None), Some(0), "the lowest layer when none fits");
        // On high, it stays while high fits without headroom, and leaves as soon as it does not.
        assert_eq!(auto(1_550_000, Some(2)), Some(2));
        assert_eq!(auto(1_400_000, Some(2)), Some(1));
        // On medium, 1.7 Mbit/s is not enough to go up; 1.8 is.
        assert_eq!(auto(1_700_000, Some(1)), Some(1));
        assert_eq!(auto(1_800_000, Some(1)), Some(2));
        // A fixed quality ignores the estimate.
        assert_eq!(pick(&layers, Quality::High, Some(100_000), Some(0), now), Some(2));
    }

    #[test]
    fn auto_moves_up_only_after_a_trial_the_estimate_carries_and_backs_off_after_a_failed_one() {
        let now = Instant::now();
        let ranked = [
            RankedLayer { index: 2, bitrate_bps: 1_500_000, active: true },
            RankedLayer { index: 1, bitrate_bps: 500_000, active: true },
            RankedLayer { index: 0, bitrate_bps: 150_000, active: true },
        ];
        let at = |ms: u64| now + Duration::from_millis(ms);
        let stay = |target| Step { target, pad_to_bps: None };
        let mut climb = Climb::default();
        // The first choice, and moving down, are taken at once.
        assert_eq!(climb.step(&ranked, None, 2, 5_000_000, now), stay(2));
        assert_eq!(climb.step(&ranked, Some(2), 1, 1_000_000, now), stay(1));
        // Up: tried first, the pair staying where it is while padding rises from medium's
        let padding = |climb: &mut Climb, ms| climb.step(&ranked, Some(1), 2, 3_000_000, at(ms));
        // 500 kbit/s to high's need with headroom (1.8 Mbit/s) over 1 s, then held.
        assert_eq!(padding(&mut climb, 100), Step { target: 1, pad_to_bps: Some(500_000) });
        assert_eq!(padding(&mut climb, 600), Step { target: 1, pad_to_bps: Some(1_150_000) });
        assert_eq!(padding(&mut climb, 1100), Step { target: 1, pad_to_bps: Some(1_800_000) });
        assert_eq!(padding(&mut climb, 1500), Step { target: 1, pad_to_bps: Some(1_800_000) });
        // The estimate fell by more than a quarter: the trial failed, and the next waits 2 s.
        assert_eq!(climb.step(&ranked, Some(1), 2, 2_200_000, at(1550)), stay(1));
        assert_eq!(climb.next_trial, Some(at(3550)));
        assert_eq!(padding(&mut climb, 3500), stay(1));
        assert_eq!(padding(&mut climb, 3550).pad_to_bps, Some(500_000));
        // An estimate that no longer allows moving up fails it too; the wait doubles, up to 6 s.
        assert_eq!(climb.step(&ranked, Some(1), 1, 1_000_000, at(3600)), stay(1));
        assert_eq!(climb.next_trial, Some(at(7600)));
        padding(&mut climb, 7600);
        climb.step(&ranked, Some(1), 1, 1_000_000, at(7700));
        padding(&mut climb, 13_700);
        climb.step(&ranked, Some(1), 1, 1_000_000, at(13_800));
        assert_eq!(climb.next_trial, Some(at(19_800)), "the wait stays at 6 s");
        // A trial the estimate carries to its end moves the pair, and the waits start over; a
        // dip of less than a quarter does not fail it.
        padding(&mut climb, 19_800);
        assert_eq!(climb.step(&ranked, Some(1), 2, 2_400_000, at(20_500)).target, 1);
        assert_eq!(padding(&mut climb, 21_300), stay(2));
        assert_eq!((climb.next_trial, climb.backoff), (None, Duration::ZERO));
        // From low, a trial of medium that ends with room for high moves to medium only.
        let mut climb = Climb::default();
        climb.step(&ranked, Some(0), 1, 800_000, now);
        assert_eq!(climb.step(&ranked, Some(0), 2, 3_000_000, at(1500)), stay(1));
    }

    #[test]
    fn rates_come_from_what_was_counted_over_the_tick() {
        let now = Instant::now();
        let mut layer = LayerIn::new(None, Ssrc::from(1), now);
        for frame in 0..30 {
            for packet in 0..3 {
                layer.count(1000, packet == 2, now + Duration::from_millis(frame * 33));
            }
        }
        layer.tick(now + Duration::from_secs(1));
        assert_eq!(layer.stats.bitrate_bps, 90 * 1000 * 8);
        assert_eq!(layer.stats.fps, 30);
        // A layer learnt half-way through a second is measured over its half.
        let mut late = LayerIn::new(None, Ssrc::from(2), now + Duration::from_millis(500));
        for _ in 0..15 {
            late.count(1000, true, now);
        }
        late.tick(now + Duration::from_secs(1));
        assert_eq!(late.stats.fps, 30);
        layer.tick(now + Duration::from_secs(2));
        assert_eq!((layer.stats.bitrate_bps, layer.stats.fps), (0, 0), "counters restart each tick");
        assert_eq!(layer.typical_bps, 90 * 1000 * 8, "a stopped layer keeps the rate it ranks by");
    }

    #[test]
    fn the_settled_figures_move_only_by_a_fifth_or_more() {
        let now = Instant::now();
        let mut layer = LayerIn::new(None, Ssrc::from(1), now);
        let second = |layer: &mut LayerIn, bytes: usize, at: u64| {
            for _ in 0..30 {
                layer.count(bytes, true, now);
            }
            layer.tick(now + Duration::from_secs(at));
        };
        second(&mut layer, 1000, 1);
        assert_eq!(layer.settled.bitrate_bps, 240_000);
        second(&mut layer, 1100, 2);
        assert_eq!(layer.stats.bitrate_bps, 264_000);
        assert_eq!(layer.settled.bitrate_bps, 240_000, "a tenth more is noise");
        second(&mut layer, 1300, 3);
        assert_eq!(layer.settled.bitrate_bps, 312_000);
        layer.stats.size = Some((640, 360));
        second(&mut layer, 1300, 4);
        assert_eq!(layer.settled.size, Some((640, 360)), "a new size shows at once");
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
    }

    /// The first frame of an IVF file (32-byte file header, 12-byte frame header).
    fn first_ivf_frame(ivf: &[u8]) -> &[u8] {
        let size = u32::from_le_bytes(ivf[32..36].try_into().unwrap()) as usize;
        &ivf[44..44 + size]
    }

    #[test]
    fn keyframes_give_their_picture_size() {
        // VP8 with the smallest descriptor (S=1, PID 0), as one packet starts a frame.
        let vp8 = fixture("video.ivf");
        let packet = [&[0x10u8][..], first_ivf_frame(&vp8)].concat();
        assert_eq!(keyframe_size(Codec::Vp8, &packet), Some((160, 120)));
        // VP9: flexible mode, picture id, B bit; the uncompressed header follows.
        let vp9 = fixture("video-vp9.ivf");
        let packet = [&[0x98u8, 0x80, 0x01][..], first_ivf_frame(&vp9)].concat();
        assert_eq!(keyframe_size(Codec::Vp9, &packet), Some((320, 240)));
        // H.264: the SPS alone, and inside a STAP-A with the PPS.
        let h264 = fixture("video.h264");
        let start = h264.windows(4).position(|w| w == [0, 0, 1, 0x67]).unwrap() + 3;
        let end = start + h264[start..].windows(3).position(|w| w == [0, 0, 1]).unwrap();
        let sps = h264[start..end].strip_suffix(&[0]).unwrap_or(&h264[start..end]);
        assert_eq!(keyframe_size(Codec::H264, sps), Some((320, 240)));
        let pps = [0x68u8, 0xce, 0x38, 0x80];
        let mut stap = vec![24u8];
        for nal in [sps, &pps[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        assert_eq!(keyframe_size(Codec::H264, &stap), Some((320, 240)));
        // Not keyframes, or cut short: nothing, never a panic.
        assert_eq!(keyframe_size(Codec::Vp8, &[0x10, 0x01, 0, 0]), None);
        assert_eq!(keyframe_size(Codec::H264, &[24, 0, 9, 0x67]), None);
        assert_eq!(keyframe_size(Codec::Vp9, &[]), None);
        assert_eq!(keyframe_size(Codec::Opus, &packet), None);
    }
}
