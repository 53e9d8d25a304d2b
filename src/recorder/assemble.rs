//! From RTP packets to whole frames, for the recorder: a small reorder window per track, then
//! VP8, VP9 or AV1 frames or H.264 access units joined from their packets (audio packets are frames
//! already). A frame missing a packet is dropped, and so is every video frame after it until
//! the next keyframe: a decoder could not show them, and a recording should not contain what
//! cannot be played.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::{
    av1::{self, TemporalUnit},
    h264::{self, AccessUnit, ParameterSets},
    vp8, vp9, MediaCodec,
};

/// Packets held while waiting for a missing one.
const REORDER_PACKETS: usize = 64;
/// How long a missing packet is waited for before it counts as lost.
const REORDER_WAIT: Duration = Duration::from_millis(150);

/// One RTP packet as the recorder gets it (the payload shared with the viewers' copies).
#[derive(Clone, Debug)]
pub struct Packet {
    /// Who sent it (the publisher): a replacement publisher numbers and times its packets anew.
    pub origin: u64,
    /// Extended sequence number (no wrap).
    pub seq: u64,
    pub rtp_ts: u32,
    pub marker: bool,
    pub payload: Arc<[u8]>,
    pub arrival: Instant,
    /// The stream's latest RTCP sender report (RFC 3550 §6.4.1): an RTP time and the sender's
    /// wall-clock time for it. Audio and video of one sender share that clock.
    pub sender_report: Option<(u32, SystemTime)>,
}

/// Releases packets in sequence order; a gap is given up on after [`REORDER_WAIT`] or when
/// [`REORDER_PACKETS`] wait behind it.
#[derive(Default)]
pub struct Reorder {
    next: Option<u64>,
    held: BTreeMap<u64, Packet>,
}

/// What leaves the reorder window.
#[derive(Debug)]
pub enum Ordered {
    Packet(Packet),
    /// Packets were lost here.
    Gap,
}

impl Reorder {
    pub fn push(&mut self, packet: Packet, out: &mut Vec<Ordered>) {
        let next = *self.next.get_or_insert(packet.seq);
        if packet.seq < next {
            return; // late duplicate or given up on
        }
        let now = packet.arrival;
        self.held.insert(packet.seq, packet);
        self.release(now, out);
    }

    /// Gives up on gaps that waited too long (call on every packet and now and then).
    pub fn release(&mut self, now: Instant, out: &mut Vec<Ordered>) {
        loop {
            let Some(next) = self.next else { return };
            if let Some(packet) = self.held.remove(&next) {
                self.next = Some(next + 1);
                out.push(Ordered::Packet(packet));
                continue;
            }
            let Some((&first, oldest)) = self.held.first_key_value() else { return };
            let waited_long = now.saturating_duration_since(oldest.arrival) >= REORDER_WAIT;
            if self.held.len() >= REORDER_PACKETS || waited_long {
                self.next = Some(first);
                out.push(Ordered::Gap);
                continue;
            }
            return;
        }
    }
}

/// A whole encoded frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub rtp_ts: u32,
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// Width and height, from a video keyframe's header.
    pub size: Option<(u16, u16)>,
}

/// Joins VP8 packets into frames, dropping what a decoder could not use.
#[derive(Default)]
pub struct Vp8Frames {
    current: Option<(u32, Vec<u8>)>,
    /// A packet was lost since the last keyframe: only a keyframe may follow.
    broken: bool,
    /// Frames dropped (incomplete, or after a loss before the next keyframe).
    pub dropped: u64,
}

impl Vp8Frames {
    /// Takes one ordered packet or gap; a completed, usable frame comes out.
    pub fn push(&mut self, item: Ordered) -> Option<Frame> {
        let packet = match item {
            Ordered::Gap => {
                if self.current.take().is_some() {
                    self.dropped += 1;
                }
                self.broken = true;
                return None;
            }
            Ordered::Packet(packet) => packet,
        };
        let Some((body, starts)) = vp8::strip_descriptor(&packet.payload) else {
            self.broken = true;
            return None;
        };
        if starts {
            if self.current.take().is_some() {
                self.dropped += 1; // the previous frame never got its last packet
            }
            self.current = Some((packet.rtp_ts, Vec::with_capacity(body.len() * 4)));
        }
        let Some((ts, data)) = self.current.as_mut() else {
            return None; // the middle of a frame whose start was lost
        };
        if *ts != packet.rtp_ts {
            self.current = None;
            self.dropped += 1;
            self.broken = true;
            return None;
        }
        data.extend_from_slice(body);
        if !packet.marker {
            return None;
        }
        let (rtp_ts, data) = self.current.take()?;
        let size = vp8::keyframe_size(&data);
        let keyframe = size.is_some();
        if self.broken && !keyframe {
            self.dropped += 1;
            return None;
        }
        self.broken = false;
        Some(Frame { rtp_ts, data, keyframe, size })
    }

    /// Whether frames are being dropped until a keyframe arrives (the recorder asks for one).
    pub fn needs_keyframe(&self) -> bool {
        self.broken
    }
}

/// Joins VP9 packets into frames of the base spatial layer, dropping what a decoder could not
/// use.
#[derive(Default)]
pub struct Vp9Frames {
    current: Option<(u32, Vec<u8>)>,
    /// A packet was lost since the last keyframe: only a keyframe may follow.
    broken: bool,
    pub dropped: u64,
}

impl Vp9Frames {
    pub fn push(&mut self, item: Ordered) -> Option<Frame> {
        let packet = match item {
            Ordered::Gap => {
                if self.current.take().is_some() {
                    self.dropped += 1;
                }
                self.broken = true;
                return None;
            }
            Ordered::Packet(packet) => packet,
        };
        let Some(payload) = vp9::strip_descriptor(&packet.payload) else {
            self.broken = true;
            return None;
        };
        if payload.spatial_layer != 0 {
            return None; // a higher resolution of the same picture: the file keeps the base one
        }
        if payload.begins {
            if self.current.take().is_some() {
                self.dropped += 1; // the previous frame never got its end
            }
            self.current = Some((packet.rtp_ts, Vec::with_capacity(payload.data.len() * 4)));
        }
        let (ts, data) = self.current.as_mut()?;
        if *ts != packet.rtp_ts {
            self.current = None;
            self.dropped += 1;
            self.broken = true;
            return None;
        }
        data.extend_from_slice(payload.data);
        if !payload.ends {
            return None;
        }
        let (rtp_ts, data) = self.current.take()?;
        let size = vp9::keyframe_size(&data);
        let keyframe = size.is_some();
        if self.broken && !keyframe {
            self.dropped += 1;
            return None;
        }
        self.broken = false;
        Some(Frame { rtp_ts, data, keyframe, size })
    }
}

/// Joins AV1 packets into temporal units (the marker is on the last packet of each), dropping
/// what a decoder could not use.
#[derive(Default)]
pub struct Av1Frames {
    current: Option<(u32, TemporalUnit)>,
    /// A packet was lost since the last keyframe: only a keyframe may follow.
    broken: bool,
    /// The stream's latest sequence header, read.
    pub sequence: Option<av1::SequenceHeader>,
    pub dropped: u64,
}

impl Av1Frames {
    pub fn push(&mut self, item: Ordered) -> Option<Frame> {
        let packet = match item {
            Ordered::Gap => {
                if self.current.take().is_some() {
                    self.dropped += 1;
                }
                self.broken = true;
                return None;
            }
            Ordered::Packet(packet) => packet,
        };
        if self.current.as_ref().is_some_and(|(ts, _)| *ts != packet.rtp_ts) {
            self.current = None; // the previous unit never got its marker
            self.dropped += 1;
            self.broken = true;
        }
        let (_, unit) = self.current.get_or_insert_with(|| (packet.rtp_ts, TemporalUnit::default()));
        unit.push(&packet.payload);
        if !packet.marker {
            return None;
        }
        let (rtp_ts, unit) = self.current.take()?;
        if !unit.complete() {
            self.dropped += 1;
            self.broken = true;
            return None;
        }
        if let Some(parsed) = unit.sequence_header.as_deref().and_then(av1::parse_sequence_header) {
            self.sequence = Some(parsed);
        }
        let keyframe = unit.keyframe == Some(true) && unit.sequence_header.is_some() && self.sequence.is_some();
        if self.broken && !keyframe {
            self.dropped += 1;
            return None;
        }
        self.broken = false;
        let size = keyframe.then(|| self.sequence.as_ref().map(|s| (s.width, s.height))).flatten();
        Some(Frame { rtp_ts, data: unit.data, keyframe, size })
    }
}

/// Joins H.264 packets into access units (the marker is on the last packet of each), dropping
/// what a decoder could not use.
#[derive(Default)]
pub struct H264Frames {
    current: Option<(u32, AccessUnit)>,
    /// A packet was lost since the last IDR: only an IDR may follow.
    broken: bool,
    /// The stream's latest SPS and PPS (the container's description of the track).
    pub params: ParameterSets,
    pub dropped: u64,
}

impl H264Frames {
    pub fn push(&mut self, item: Ordered) -> Option<Frame> {
        let packet = match item {
            Ordered::Gap => {
                if self.current.take().is_some() {
                    self.dropped += 1;
                }
                self.broken = true;
                return None;
            }
            Ordered::Packet(packet) => packet,
        };
        if self.current.as_ref().is_some_and(|(ts, _)| *ts != packet.rtp_ts) {
            // The previous unit never got its marker.
            self.current = None;
            self.dropped += 1;
            self.broken = true;
        }
        let (_, unit) = self.current.get_or_insert_with(|| (packet.rtp_ts, AccessUnit::default()));
        unit.push(&packet.payload, &mut self.params);
        if !packet.marker {
            return None;
        }
        let (rtp_ts, unit) = self.current.take()?;
        if !unit.complete() {
            self.dropped += 1;
            self.broken = true;
            return None;
        }
        let size = unit
            .idr
            .then(|| self.params.pps.as_ref().and(self.params.sps.as_deref()).and_then(h264::parse_sps))
            .flatten()
            .map(|sps| (sps.width, sps.height));
        // A keyframe is an IDR whose parameter sets are known: decoding can start there.
        let keyframe = size.is_some();
        if self.broken && !keyframe {
            self.dropped += 1;
            return None;
        }
        self.broken = false;
        Some(Frame { rtp_ts, data: unit.data, keyframe, size })
    }
}

/// The video frame assembler of a recording, chosen by the codec.
pub enum VideoFrames {
    Vp8(Vp8Frames),
    Vp9(Vp9Frames),
    Av1(Av1Frames),
    H264(H264Frames),
}

impl VideoFrames {
    /// The assembler for `codec`, or why it cannot be recorded.
    pub fn for_codec(codec: MediaCodec) -> Result<Self, String> {
        match codec {
            MediaCodec::Vp8 => Ok(Self::Vp8(Vp8Frames::default())),
            MediaCodec::Vp9 => Ok(Self::Vp9(Vp9Frames::default())),
            MediaCodec::Av1 => Ok(Self::Av1(Av1Frames::default())),
            MediaCodec::H264 => Ok(Self::H264(H264Frames::default())),
            other => Err(format!("recording {} video is not supported (VP8, VP9, AV1 and H.264 are)", other.name())),
        }
    }

    pub fn codec(&self) -> MediaCodec {
        match self {
            Self::Vp8(_) => MediaCodec::Vp8,
            Self::Vp9(_) => MediaCodec::Vp9,
            Self::Av1(_) => MediaCodec::Av1,
            Self::H264(_) => MediaCodec::H264,
        }
    }

    pub fn push(&mut self, item: Ordered) -> Option<Frame> {
        match self {
            Self::Vp8(frames) => frames.push(item),
            Self::Vp9(frames) => frames.push(item),
            Self::Av1(frames) => frames.push(item),
            Self::H264(frames) => frames.push(item),
        }
    }

    /// Whether frames are being dropped until a keyframe arrives (the recorder asks for one).
    pub fn needs_keyframe(&self) -> bool {
        match self {
            Self::Vp8(frames) => frames.needs_keyframe(),
            Self::Vp9(frames) => frames.broken,
            Self::Av1(frames) => frames.broken,
            Self::H264(frames) => frames.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, ts: u32, marker: bool, payload: &[u8], at: Instant) -> Packet {
        Packet { origin: 1, seq, rtp_ts: ts, marker, payload: Arc::from(payload), arrival: at, sender_report: None }
    }

    #[test]
    fn reordered_packets_come_out_in_order_and_a_lost_one_becomes_a_gap() {
        let t0 = Instant::now();
        let mut reorder = Reorder::default();
        let mut out = Vec::new();
        reorder.push(packet(10, 0, false, &[1], t0), &mut out);
        reorder.push(packet(12, 0, false, &[3], t0), &mut out);
        reorder.push(packet(11, 0, false, &[2], t0), &mut out);
        let seqs: Vec<u64> = out.iter().map(|o| if let Ordered::Packet(p) = o { p.seq } else { 0 }).collect();
        assert_eq!(seqs, [10, 11, 12]);
        out.clear();
        reorder.push(packet(14, 0, false, &[5], t0), &mut out);
        assert!(out.is_empty(), "13 is still awaited");
        reorder.release(t0 + REORDER_WAIT, &mut out);
        assert!(matches!(out.as_slice(), [Ordered::Gap, Ordered::Packet(p)] if p.seq == 14));
        out.clear();
        reorder.push(packet(13, 0, false, &[4], t0), &mut out);
        assert!(out.is_empty(), "too late: given up on");
    }

    const KEY: [u8; 10] = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0xa0, 0x00, 0x78, 0x00];
    const INTER: [u8; 4] = [0x51, 0, 0, 0];

    fn with_descriptor(start: bool, body: &[u8]) -> Vec<u8> {
        let mut payload = vec![if start { 0x10 } else { 0x00 }];
        payload.extend_from_slice(body);
        payload
    }

    #[test]
    fn frames_are_joined_and_after_a_loss_only_a_keyframe_is_kept() {
        let t0 = Instant::now();
        let mut frames = Vp8Frames::default();
        let ordered = |seq, ts, marker, payload: Vec<u8>| Ordered::Packet(packet(seq, ts, marker, &payload, t0));
        assert_eq!(frames.push(ordered(1, 100, false, with_descriptor(true, &KEY[..5]))), None);
        let key = frames.push(ordered(2, 100, true, with_descriptor(false, &KEY[5..]))).expect("a keyframe");
        assert!(key.keyframe);
        assert_eq!(key.size, Some((160, 120)));
        assert_eq!(key.data, KEY);
        let inter = frames.push(ordered(3, 200, true, with_descriptor(true, &INTER))).expect("an interframe");
        assert!(!inter.keyframe && inter.size.is_none());

        assert_eq!(frames.push(Ordered::Gap), None);
        assert!(frames.needs_keyframe());
        assert_eq!(frames.push(ordered(6, 400, true, with_descriptor(true, &INTER))), None, "undecodable after a loss");
        let again = frames.push(ordered(7, 500, true, with_descriptor(true, &KEY))).expect("the next keyframe");
        assert!(again.keyframe && !frames.needs_keyframe());
        assert_eq!(frames.dropped, 1);
    }
}
