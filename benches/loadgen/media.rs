//! A synthetic publisher's media: VP8 RTP payloads with realistic sizes (720p30 at a set bitrate,
//! a keyframe every 2 s or when asked) and Opus-sized audio. No encoder: the SFU never looks past
//! the VP8 payload descriptor and header, and viewers do not decode.
//!
//! Every payload carries its send time (nanoseconds since the Unix epoch, little endian) at
//! [`SENT_AT`], stamped by [`stamp`] as it leaves, so a viewer in the same process measures the
//! latency through the SFU.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Offset of the 8-byte send time in every payload (after the VP8 descriptor and keyframe header).
pub const SENT_AT: usize = 12;
/// Largest payload per packet, leaving room for RTP header, extensions and SRTP under a 1200 MTU.
const MAX_PAYLOAD: usize = 1100;
pub const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const KEYFRAME_INTERVAL: u64 = 60; // frames: 2 s at 30 fps
const KEYFRAME_BYTES: usize = 40_000;
const AUDIO_BYTES: usize = 120; // Opus at ~48 kbit/s in 20 ms frames
const VIDEO_CLOCK_PER_FRAME: u32 = 3000; // 90 kHz / 30
const AUDIO_CLOCK_PER_FRAME: u32 = 960; // 48 kHz × 20 ms

/// One RTP payload to send.
pub struct Packet {
    pub payload: Vec<u8>,
    pub marker: bool,
    pub timestamp: u32,
}

pub struct VideoSource {
    keyframe_bytes: usize,
    delta_bytes: usize,
    /// The picture size its keyframes announce (the SFU ranks simulcast layers by it).
    size: (u16, u16),
    frame: u64,
    since_keyframe: u64,
    keyframe_asked: bool,
    timestamp: u32,
}

impl VideoSource {
    /// 1280×720 at `bitrate_bps`.
    pub fn new(bitrate_bps: u64) -> Self {
        Self::sized(bitrate_bps, 1280, 720)
    }

    /// A picture of `width`×`height` at `bitrate_bps`; its keyframes take the share of a GOP that
    /// [`KEYFRAME_BYTES`] takes at 2.5 Mbit/s (an encoder's keyframes shrink with its bitrate).
    pub fn sized(bitrate_bps: u64, width: u16, height: u16) -> Self {
        let gop_bytes = (bitrate_bps / 8 * KEYFRAME_INTERVAL / 30) as usize;
        let keyframe_bytes =
            (KEYFRAME_BYTES as u64 * bitrate_bps / 2_500_000).clamp(1_200, KEYFRAME_BYTES as u64) as usize;
        let delta_bytes = gop_bytes.saturating_sub(keyframe_bytes) / (KEYFRAME_INTERVAL as usize - 1);
        Self {
            keyframe_bytes,
            delta_bytes: delta_bytes.max(200),
            size: (width, height),
            frame: 0,
            since_keyframe: 0,
            keyframe_asked: true,
            timestamp: 0,
        }
    }

    /// A viewer asked for a keyframe (PLI/FIR): the next frame is one, as an encoder does.
    pub fn ask_keyframe(&mut self) {
        self.keyframe_asked = true;
    }

    /// The packets of the next frame.
    pub fn next_frame(&mut self, out: &mut Vec<Packet>) {
        let keyframe = self.keyframe_asked || self.since_keyframe >= KEYFRAME_INTERVAL;
        self.keyframe_asked = false;
        self.since_keyframe = if keyframe { 1 } else { self.since_keyframe + 1 };
        let size = if keyframe { self.keyframe_bytes } else { self.delta_bytes };
        let count = size.div_ceil(MAX_PAYLOAD);
        for i in 0..count {
            let len = if i + 1 == count { size - MAX_PAYLOAD * (count - 1) } else { MAX_PAYLOAD };
            let mut payload = vec![0u8; len.max(SENT_AT + 8)];
            if i == 0 {
                payload[0] = 0x10; // descriptor: S=1, PID=0
                if keyframe {
                    // Frame tag with P=0 (keyframe), shown; start code; width and height (14 bits
                    // each, little endian, no scaling).
                    payload[1..7].copy_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
                    payload[7..9].copy_from_slice(&self.size.0.to_le_bytes());
                    payload[9..11].copy_from_slice(&self.size.1.to_le_bytes());
                } else {
                    payload[1..4].copy_from_slice(&[0x11, 0x02, 0x00]);
                }
            }
            out.push(Packet { payload, marker: i + 1 == count, timestamp: self.timestamp });
        }
        self.frame += 1;
        self.timestamp = self.timestamp.wrapping_add(VIDEO_CLOCK_PER_FRAME);
    }
}

#[derive(Default)]
pub struct AudioSource {
    timestamp: u32,
}

impl AudioSource {
    pub fn next_frame(&mut self) -> Packet {
        let packet = Packet { payload: vec![0x78u8; AUDIO_BYTES], marker: false, timestamp: self.timestamp };
        self.timestamp = self.timestamp.wrapping_add(AUDIO_CLOCK_PER_FRAME);
        packet
    }
}

/// Writes the send time into a payload made here, just before it is sent.
pub fn stamp(payload: &mut [u8]) {
    if let Some(at) = payload.get_mut(SENT_AT..SENT_AT + 8) {
        at.copy_from_slice(&now_nanos().to_le_bytes());
    }
}

/// Wall-clock nanoseconds (the clock the kernel stamps received datagrams with).
pub fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The send time stamped into a payload by [`VideoSource`] or [`AudioSource`].
pub fn sent_at(payload: &[u8]) -> Option<u64> {
    let bytes = payload.get(SENT_AT..SENT_AT + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// VP8 payload descriptor: first packet of a frame (S=1, partition 0; no extension bytes here).
pub fn vp8_frame_start(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0 && b & 0x80 == 0)
}
