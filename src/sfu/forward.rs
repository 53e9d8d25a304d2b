//! Per-viewer header rewriting, so that whatever feeds a viewer's track (a first source, a
//! replacement, another source after a switch) looks like one continuous RTP stream to its
//! jitter buffer. The viewer's SSRC is its own send stream's (str0m assigns it); this rewrites the
//! sequence number, the timestamp and the payload type, and for VP8 the picture numbering of the
//! payload descriptor (RFC 7741 §4.2): each simulcast layer and each publisher counts its own
//! PictureID, and a receiver that sees it jump back after a switch takes the new frames for old
//! ones and drops them (the picture freezes after the new layer's keyframe until the next one).

use std::time::Instant;

use str0m::{
    format::{Codec, PayloadParams},
    media::{MediaKind, Mid, Pt},
    rtp::{SeqNo, Vp8Descriptor, Vp8Patch},
};

/// Identifies one incoming RTP stream: the publisher peer and its SSRC. A new identity means a
/// new anchor point.
pub type Origin = (u64, u32);

/// One viewer m-line being fed.
#[derive(Debug)]
pub struct OutTrack {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The layer of the source's track this viewer track shows; `None` while video waits for a
    /// keyframe (after a join, a switch, or to change layer). Audio shows layer 0 from the start.
    pub layer: Option<u8>,
    /// The layer it should show: it moves there at that layer's next keyframe.
    pub target_layer: u8,
    /// Last (incoming pt → outgoing pt) decision, so the codec lookup runs once per change.
    pt_cache: Option<(Pt, Option<Pt>)>,
    rewriter: Rewriter,
    pictures: Vp8Numbering,
}

impl OutTrack {
    pub fn new(mid: Mid, kind: MediaKind) -> Self {
        let layer = (kind == MediaKind::Audio).then_some(0);
        let (rewriter, pictures) = (Rewriter::default(), Vp8Numbering::default());
        Self { mid, kind, layer, target_layer: 0, pt_cache: None, rewriter, pictures }
    }

    /// The next packet from a different origin re-anchors; video waits for a keyframe first.
    pub fn switch(&mut self) {
        if self.kind == MediaKind::Video {
            self.layer = None;
        }
        self.rewriter.origin = None;
    }

    /// Whether a packet of `layer` goes out on this track: one of the layer shown, or the first
    /// keyframe of the target layer (which makes it the layer shown; audio always shows layer 0).
    pub fn takes(&mut self, layer: u8, is_keyframe: bool) -> bool {
        if self.layer == Some(layer) {
            return true;
        }
        if layer == self.target_layer && is_keyframe {
            self.layer = Some(layer);
            return true;
        }
        false
    }

    pub fn cached_pt(&self, incoming: Pt) -> Option<Option<Pt>> {
        self.pt_cache.filter(|(pt, _)| *pt == incoming).map(|(_, out)| out)
    }

    pub fn cache_pt(&mut self, incoming: Pt, outgoing: Option<Pt>) {
        self.pt_cache = Some((incoming, outgoing));
    }

    pub fn rewrite(
        &mut self,
        origin: Origin,
        seq: SeqNo,
        ts: u32,
        arrival: Instant,
        clock_rate: u32,
    ) -> Option<(SeqNo, u32)> {
        self.rewriter.rewrite(origin, *seq, ts, arrival, clock_rate)
    }

    /// The patch that keeps a VP8 packet's picture numbering continuous on this track; `None`
    /// while it needs none (the first origin's numbers go out as they are).
    pub fn vp8_patch(&mut self, origin: Origin, numbers: &Vp8Numbers) -> Option<Vp8Patch> {
        let (picture, tl0) = self.pictures.rewrite(origin, numbers.picture, numbers.long, numbers.tl0)?;
        let patch = numbers.descriptor.patch().picture_id(picture);
        match tl0 {
            Some(tl0) => patch.tl0_pic_idx(tl0).build().ok(),
            None => patch.build().ok(),
        }
    }
}

/// A VP8 packet's picture numbering, read once per packet for all its viewers.
#[derive(Clone, Copy, Debug)]
pub struct Vp8Numbers {
    descriptor: Vp8Descriptor,
    picture: u16,
    /// The 15-bit PictureID form (its M bit; RFC 7741 §4.2), else 7 bits.
    long: bool,
    tl0: Option<u8>,
}

impl Vp8Numbers {
    /// `None` for a payload without a PictureID: nothing to keep continuous.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let descriptor = Vp8Descriptor::parse(payload).ok()?;
        let picture = descriptor.picture_id()?;
        // With a PictureID, the descriptor is X|S…, the extension byte, then the PictureID.
        let long = payload.get(2).is_some_and(|b| b & 0x80 != 0);
        Some(Self { descriptor, picture, long, tl0: descriptor.tl0_pic_idx() })
    }
}

/// VP8 PictureID and TL0PICIDX offsets of one outgoing track: a new origin continues after the
/// last numbers sent.
#[derive(Debug, Default)]
struct Vp8Numbering {
    origin: Option<Origin>,
    /// out = in + delta, modulo the field's width.
    picture_delta: u16,
    tl0_delta: u8,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
}

impl Vp8Numbering {
    /// The numbers to send for a packet's (PictureID, TL0PICIDX); `None` when they go out
    /// unchanged.
    fn rewrite(&mut self, origin: Origin, picture: u16, long: bool, tl0: Option<u8>) -> Option<(u16, Option<u8>)> {
        let mask = if long { 0x7fff } else { 0x7f };
        if self.origin != Some(origin) {
            self.origin = Some(origin);
            self.picture_delta = self.last_picture.map_or(0, |last| last.wrapping_add(1).wrapping_sub(picture));
            self.tl0_delta = match (self.last_tl0, tl0) {
                (Some(last), Some(tl0)) => last.wrapping_add(1).wrapping_sub(tl0),
                _ => 0,
            };
        }
        let picture_out = picture.wrapping_add(self.picture_delta) & mask;
        let tl0_out = tl0.map(|t| t.wrapping_add(self.tl0_delta));
        // Late packets (a retransmission, a reordered one) do not move the last number back.
        let newer = |last: u16| (picture_out.wrapping_sub(last) & mask) < mask / 2;
        if self.last_picture.is_none_or(newer) {
            self.last_picture = Some(picture_out);
            self.last_tl0 = tl0_out.or(self.last_tl0);
        }
        (picture_out != picture || tl0_out != tl0).then_some((picture_out, tl0_out))
    }
}

/// Sequence and timestamp offsets of one outgoing stream.
#[derive(Debug, Default)]
struct Rewriter {
    origin: Option<Origin>,
    /// out = in + seq_delta (extended, 64-bit).
    seq_delta: i64,
    /// Packets before this outgoing number belong to before the anchor and are dropped.
    floor: u64,
    ts_delta: u32,
    last: Option<Last>,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    ts: u32,
    at: Instant,
}

impl Rewriter {
    fn rewrite(
        &mut self,
        origin: Origin,
        seq_in: u64,
        ts_in: u32,
        arrival: Instant,
        clock_rate: u32,
    ) -> Option<(SeqNo, u32)> {
        if self.origin != Some(origin) {
            self.anchor(origin, seq_in, ts_in, arrival, clock_rate);
        }
        let out = seq_in as i64 + self.seq_delta;
        if out < self.floor as i64 {
            return None; // older than the anchor: it belongs to the previous origin's timeline
        }
        let out = out as u64;
        let ts_out = ts_in.wrapping_add(self.ts_delta);
        if self.last.is_none_or(|last| out > last.seq) {
            self.last = Some(Last { seq: out, ts: ts_out, at: arrival });
        }
        Some((SeqNo::from(out), ts_out))
    }

    fn anchor(&mut self, origin: Origin, seq_in: u64, ts_in: u32, arrival: Instant, clock_rate: u32) {
        self.origin = Some(origin);
        let (seq_out, ts_out) = match self.last {
            // The first origin: keep its 16-bit numbers but start the rollover count at zero,
            // as a new receiver (and its SRTP context) expects.
            None => (seq_in & 0xffff, ts_in),
            // A later origin continues where the last one stopped, with the timestamp advanced by
            // the wall-clock gap so the jitter buffer sees real time pass.
            Some(last) => {
                let elapsed = arrival.saturating_duration_since(last.at);
                let ticks = (elapsed.as_secs_f64() * f64::from(clock_rate)).round().max(1.0) as u64;
                (last.seq + 1, last.ts.wrapping_add(ticks as u32))
            }
        };
        self.seq_delta = seq_out as i64 - seq_in as i64;
        self.floor = seq_out;
        self.ts_delta = ts_out.wrapping_sub(ts_in);
    }
}

/// Whether this packet can start a viewer's picture: the first packet of a keyframe (for H.264,
/// the parameter sets before it count too, since the decoder needs them).
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    use str0m::format::{
        detect_av1_keyframe, detect_h264_keyframe, detect_h264_nalu, detect_vp8_keyframe, detect_vp9_keyframe,
    };
    const H264_SPS: u8 = 7;
    match codec {
        Codec::Vp8 => detect_vp8_keyframe(payload),
        Codec::Vp9 => detect_vp9_keyframe(payload),
        Codec::H264 => detect_h264_nalu(payload, H264_SPS) || detect_h264_keyframe(payload),
        Codec::Av1 => detect_av1_keyframe(payload),
        _ => true,
    }
}

/// The payload type on the viewer's m-line for the publisher's codec: same codec, and for codecs
/// with profiles (H.264, VP9) the same format parameters when the viewer offered them.
pub fn map_payload_type(publisher: &PayloadParams, viewer_params: &[PayloadParams], viewer_pts: &[Pt]) -> Option<Pt> {
    let wanted = publisher.spec();
    let candidates = || viewer_params.iter().filter(|p| viewer_pts.contains(&p.pt()) && p.spec().codec == wanted.codec);
    candidates().find(|p| p.spec().format == wanted.format).or_else(|| candidates().next()).map(|p| p.pt())
}

/// The short lowercase name used in the API.
pub fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "opus",
        Codec::Vp8 => "vp8",
        Codec::Vp9 => "vp9",
        Codec::H264 => "h264",
        Codec::Av1 => "av1",
        Codec::H265 => "h265",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn send(r: &mut Rewriter, origin: Origin, seq: u64, ts: u32, at: Instant) -> Option<(u64, u32)> {
        r.rewrite(origin, seq, ts, at, 90_000).map(|(s, t)| (*s, t))
    }

    #[test]
    fn vp8_picture_numbers_continue_across_origins_and_the_first_goes_out_unchanged() {
        let mut n = Vp8Numbering::default();
        let (a, b) = ((1, 10), (1, 11));
        // The first origin: its own numbers, no patch.
        assert_eq!(n.rewrite(a, 30_000, true, Some(200)), None);
        assert_eq!(n.rewrite(a, 30_001, true, Some(201)), None);
        // A switch to a layer whose numbers are behind: they continue after the last sent.
        assert_eq!(n.rewrite(b, 100, true, Some(7)), Some((30_002, Some(202))));
        assert_eq!(n.rewrite(b, 101, true, Some(8)), Some((30_003, Some(203))));
        // A late packet of before keeps its place and does not move the numbering back.
        assert_eq!(n.rewrite(b, 99, true, Some(6)), Some((30_001, Some(201))));
        assert_eq!(n.rewrite(b, 102, true, None), Some((30_004, None)));
        // And back to the first: on from there, wrapping at 15 bits.
        assert_eq!(n.rewrite(a, 32_767, true, Some(250)), Some((30_005, Some(204))));
        let mut n = Vp8Numbering::default();
        n.rewrite(a, 32_767, true, None);
        assert_eq!(n.rewrite(b, 5, true, None), Some((0, None)));
        assert_eq!(n.rewrite(b, 6, true, None), Some((1, None)));
        // The 7-bit form wraps at 7 bits.
        let mut n = Vp8Numbering::default();
        n.rewrite(a, 127, false, None);
        assert_eq!(n.rewrite(b, 40, false, None), Some((0, None)));
    }

    #[test]
    fn a_patch_rewrites_a_vp8_descriptor_in_its_own_width() {
        let mut track = OutTrack::new(Mid::from("0"), MediaKind::Video);
        // X, S; I, L and T; 15-bit PictureID 0x1234; TL0PICIDX 9; TID; then the VP8 frame.
        let first = [0x90u8, 0xe0, 0x92, 0x34, 9, 0x20, 0x10, 0x02, 0x00];
        assert!(track.vp8_patch((1, 1), &Vp8Numbers::read(&first).unwrap()).is_none());
        let other = [0x90u8, 0xe0, 0x80, 0x05, 3, 0x20, 0x10, 0x02, 0x00];
        let expected =
            Vp8Descriptor::parse(&first).unwrap().patch().picture_id(0x1235).tl0_pic_idx(10).build().unwrap();
        assert_eq!(track.vp8_patch((1, 2), &Vp8Numbers::read(&other).unwrap()), Some(expected));
        // Without a PictureID there is nothing to keep continuous.
        assert!(Vp8Numbers::read(&[0x10u8, 0x10, 0x02, 0x00]).is_none());
    }

    #[test]
    fn the_first_origin_keeps_its_wire_numbers_with_a_zero_rollover_count() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        let long_running = 5 * 65_536 + 1000;
        assert_eq!(send(&mut r, (1, 7), long_running, 3000, t0), Some((1000, 3000)));
        assert_eq!(send(&mut r, (1, 7), long_running + 2, 6000, t0), Some((1002, 6000)), "gaps are kept for NACK");
        assert_eq!(send(&mut r, (1, 7), long_running + 1, 4500, t0), Some((1001, 4500)), "reordering is kept");
    }

    #[test]
    fn a_new_origin_continues_the_sequence_and_advances_the_timestamp_by_wall_clock_time() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        send(&mut r, (1, 7), 100, 90_000, t0);
        send(&mut r, (1, 7), 101, 93_000, t0 + Duration::from_millis(33));
        // The replacement starts 100 ms later with unrelated numbers.
        let at = t0 + Duration::from_millis(133);
        assert_eq!(send(&mut r, (2, 9), 40_000, 12, at), Some((102, 93_000 + 9_000)));
        assert_eq!(send(&mut r, (2, 9), 40_001, 3012, at), Some((103, 93_000 + 9_000 + 3000)));
        // A late packet of the new origin from before its anchor is dropped, not sent backwards.
        assert_eq!(send(&mut r, (2, 9), 39_999, 0, at), None);
        // Late packets of the old origin re-anchor only if forwarded; the caller stops that.
    }

    #[test]
    fn switching_back_and_forth_never_repeats_a_sequence_number() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        let mut seen = Vec::new();
        for round in 0..4u64 {
            let origin = (round % 2, round as u32);
            for i in 0..10 {
                if let Some((seq, _)) =
                    send(&mut r, origin, 1000 * round + i, 0, t0 + Duration::from_millis(round * 10 + i))
                {
                    seen.push(seq);
                }
            }
        }
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(seen.len(), 40);
        assert_eq!(sorted, seen, "strictly increasing");
        assert_eq!(seen.last(), Some(&(seen[0] + 39)), "without gaps");
    }

    #[test]
    fn the_timestamp_wraps_around() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        assert_eq!(send(&mut r, (1, 1), 1, u32::MAX - 10, t0), Some((1, u32::MAX - 10)));
        assert_eq!(send(&mut r, (1, 1), 2, 20, t0), Some((2, 20)));
    }
}
