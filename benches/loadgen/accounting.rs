//! What one viewer received, judged the way a player would: packets lost after NACK recovery,
//! frames a decoder could show, freezes, time to first frame, latency.
//!
//! Pure (every time is passed in), so it is unit-tested on synthetic packet sequences
//! (`tests/loadgen_accounting.rs` includes this file).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// No new frame shown for longer than this is a freeze.
pub const FREEZE: Duration = Duration::from_millis(500);

/// A player keeps at most this many unfinished frames (10 s at 30 fps); older ones are given up.
const MAX_PENDING_FRAMES: usize = 300;

/// Unique packets of one RTP stream against the span of sequence numbers seen.
///
/// Fed with extended sequence numbers of packets seen for the first time: str0m folds RTX
/// retransmissions back into their stream and drops duplicates, so a packet recovered by NACK
/// counts as received and a lost one stays a hole in the span.
#[derive(Clone, Debug, Default)]
pub struct SeqCounter {
    lowest: Option<u64>,
    highest: u64,
    received: u64,
}

impl SeqCounter {
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        self.lowest = Some(self.lowest.map_or(seq, |low| low.min(seq)));
        self.highest = self.highest.max(seq);
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn expected(&self) -> u64 {
        self.lowest.map_or(0, |low| self.highest - low + 1)
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// One received video packet, as the playout model needs it.
#[derive(Clone, Copy, Debug)]
pub struct VideoPacket {
    /// Extended sequence number.
    pub seq: u64,
    /// Extended RTP timestamp: one value per frame.
    pub timestamp: u64,
    /// Last packet of its frame.
    pub marker: bool,
    /// First packet of its frame.
    pub frame_start: bool,
    /// First packet of a keyframe.
    pub keyframe: bool,
}

#[derive(Debug, Default)]
struct Frame {
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    packets: u64,
    keyframe: bool,
}

impl Frame {
    fn complete(&self) -> bool {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => last >= first && last - first + 1 == self.packets,
            _ => false,
        }
    }
}

/// A decoder's view of the video: a frame is shown once it is complete and follows the last shown
/// frame without a gap, or is a keyframe (a decoder stuck behind a lost frame skips to the next
/// complete keyframe, as a real one does after its PLI).
#[derive(Debug)]
pub struct Playout {
    joined: Instant,
    /// Unfinished or not yet showable frames, by RTP timestamp.
    pending: BTreeMap<u64, Frame>,
    /// (timestamp, last sequence number) of the last frame shown.
    shown: Option<(u64, u64)>,
    first_frame: Option<Duration>,
    last_shown_at: Option<Instant>,
    pub frames_shown: u64,
    pub freezes: u32,
    pub longest_gap: Duration,
}

impl Playout {
    /// `joined`: when the viewer asked to watch (its WHEP POST).
    pub fn new(joined: Instant) -> Self {
        Self {
            joined,
            pending: BTreeMap::new(),
            shown: None,
            first_frame: None,
            last_shown_at: None,
            frames_shown: 0,
            freezes: 0,
            longest_gap: Duration::ZERO,
        }
    }

    /// Time from joining to the first frame shown (a complete keyframe).
    pub fn time_to_first_frame(&self) -> Option<Duration> {
        self.first_frame
    }

    pub fn packet(&mut self, packet: VideoPacket, now: Instant) {
        if self.shown.is_some_and(|(timestamp, _)| packet.timestamp <= timestamp) {
            return; // its frame was shown or skipped already
        }
        let frame = self.pending.entry(packet.timestamp).or_default();
        frame.packets += 1;
        if packet.frame_start {
            frame.first_seq = Some(packet.seq);
            frame.keyframe = packet.keyframe;
        }
        if packet.marker {
            frame.last_seq = Some(packet.seq);
        }
        self.show_ready(now);
        while self.pending.len() > MAX_PENDING_FRAMES {
            self.pending.pop_first();
        }
    }

    /// Ends the viewing at `now`: a stall since the last frame counts as a freeze too.
    pub fn finish(&mut self, now: Instant) {
        if let Some(last) = self.last_shown_at {
            self.note_gap(now.saturating_duration_since(last));
        }
    }

    fn show_ready(&mut self, now: Instant) {
        while let Some((&timestamp, frame)) = self.pending.first_key_value() {
            let follows = match self.shown {
                Some((_, last_seq)) => frame.first_seq == Some(last_seq + 1),
                None => false,
            };
            if frame.complete() && (frame.keyframe || follows) {
                let last_seq = frame.last_seq.unwrap_or_default();
                self.pending.pop_first();
                self.show(timestamp, last_seq, now);
                continue;
            }
            let next_keyframe = self.pending.iter().find(|(_, f)| f.keyframe && f.complete()).map(|(&ts, _)| ts);
            match next_keyframe {
                // Skip what stands before it; the loop then shows it.
                Some(keyframe) => self.pending.retain(|&ts, _| ts >= keyframe),
                None => return,
            }
        }
    }

    fn show(&mut self, timestamp: u64, last_seq: u64, now: Instant) {
        self.frames_shown += 1;
        if self.first_frame.is_none() {
            self.first_frame = Some(now.saturating_duration_since(self.joined));
        }
        if let Some(last) = self.last_shown_at {
            self.note_gap(now.saturating_duration_since(last));
        }
        self.last_shown_at = Some(now);
        self.shown = Some((timestamp, last_seq));
    }

    fn note_gap(&mut self, gap: Duration) {
        if gap > FREEZE {
            self.freezes += 1;
        }
        self.longest_gap = self.longest_gap.max(gap);
    }
}

/// The `p`-th percentile (0–100) of sorted values, nearest rank; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Loss in percent of what was expected; 0 when nothing was expected.
pub fn loss_pct(lost: u64, expected: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        lost as f64 * 100.0 / expected as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(33);

    /// Packets of one frame: `len` packets from `seq`, timestamp `ts`.
    fn frame(seq: u64, ts: u64, len: u64, keyframe: bool) -> Vec<VideoPacket> {
        (0..len)
            .map(|i| VideoPacket {
                seq: seq + i,
                timestamp: ts,
                marker: i == len - 1,
                frame_start: i == 0,
                keyframe: keyframe && i == 0,
            })
            .collect()
    }

    /// A stream: a keyframe every `gop` frames, `len` packets per frame, one frame per 33 ms.
    fn stream(frames: u64, gop: u64, len: u64) -> Vec<Vec<VideoPacket>> {
        (0..frames).map(|f| frame(1000 + f * len, f * 3000, len, f % gop == 0)).collect()
    }

    #[test]
    fn a_clean_stream_shows_every_frame_without_freezes() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        let mut counter = SeqCounter::default();
        let mut now = start + Duration::from_millis(120);
        for packets in stream(90, 60, 4) {
            for p in packets {
                counter.record(p.seq);
                playout.packet(p, now);
            }
            now += FRAME;
        }
        playout.finish(now);
        assert_eq!(playout.time_to_first_frame(), Some(Duration::from_millis(120)));
        assert_eq!(playout.frames_shown, 90);
        assert_eq!(playout.freezes, 0);
        assert_eq!((counter.expected(), counter.lost()), (360, 0));
    }

    #[test]
    fn delta_frames_before_the_first_keyframe_are_not_shown() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        let mut now = start;
        // Joined mid-GOP: frames 50..59 are deltas, frame 60 the keyframe.
        for packets in stream(90, 60, 3).into_iter().skip(50) {
            for p in packets {
                playout.packet(p, now);
            }
            now += FRAME;
        }
        assert_eq!(playout.time_to_first_frame(), Some(FRAME * 10));
        assert_eq!(playout.frames_shown, 30);
    }

    #[test]
    fn a_packet_repaired_by_nack_costs_no_loss_and_no_freeze() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        let mut counter = SeqCounter::default();
        let mut now = start;
        let frames = stream(30, 60, 4);
        let mut late = None;
        for (i, packets) in frames.into_iter().enumerate() {
            for p in packets {
                if i == 10 && p.frame_start {
                    late = Some(p); // arrives two frames later, as a retransmission
                    continue;
                }
                counter.record(p.seq);
                playout.packet(p, now);
            }
            if i == 12 {
                let p = late.take().unwrap();
                counter.record(p.seq);
                playout.packet(p, now);
            }
            now += FRAME;
        }
        playout.finish(now);
        assert_eq!(counter.lost(), 0);
        assert_eq!(playout.frames_shown, 30, "frames 10–12 are shown once frame 10 is whole");
        assert_eq!(playout.freezes, 0);
        assert!(playout.longest_gap <= FRAME * 3);
    }

    #[test]
    fn a_packet_lost_for_good_freezes_the_picture_until_the_next_keyframe() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        let mut counter = SeqCounter::default();
        let mut now = start;
        for (i, packets) in stream(120, 60, 4).into_iter().enumerate() {
            for p in packets {
                if i == 5 && p.seq % 4 == 2 {
                    continue; // one packet of frame 5 never comes
                }
                counter.record(p.seq);
                playout.packet(p, now);
            }
            now += FRAME;
        }
        playout.finish(now);
        assert_eq!((counter.lost(), counter.expected()), (1, 480));
        assert!((loss_pct(counter.lost(), counter.expected()) - 100.0 / 480.0).abs() < 1e-9);
        assert_eq!(playout.freezes, 1, "frames 5..59 cannot be decoded");
        assert_eq!(playout.longest_gap, FRAME * 56);
        assert_eq!(playout.frames_shown, 5 + 60);
    }

    #[test]
    fn a_stall_at_the_end_counts_as_a_freeze() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        let mut now = start;
        for packets in stream(10, 60, 2) {
            for p in packets {
                playout.packet(p, now);
            }
            now += FRAME;
        }
        playout.finish(now + Duration::from_millis(400));
        assert_eq!(playout.freezes, 0, "433 ms is not a freeze");
        playout.finish(now + Duration::from_millis(600));
        assert_eq!(playout.freezes, 1);
    }

    #[test]
    fn a_viewer_that_never_gets_a_keyframe_has_no_first_frame() {
        let start = Instant::now();
        let mut playout = Playout::new(start);
        for p in frame(10, 3000, 5, true).into_iter().filter(|p| !p.marker) {
            playout.packet(p, start);
        }
        assert_eq!(playout.time_to_first_frame(), None);
        assert_eq!(playout.frames_shown, 0);
    }

    #[test]
    fn out_of_order_arrival_counts_each_packet_once_against_the_span() {
        let mut counter = SeqCounter::default();
        for seq in [105, 101, 104, 100, 107] {
            counter.record(seq);
        }
        assert_eq!((counter.received(), counter.expected(), counter.lost()), (5, 8, 3));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&[7u32], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }
}
