//! H.264 access units out of RTP payloads (RFC 6184, packetization mode 1: single NAL units,
//! STAP-A and FU-A), written as MP4 samples want them (each NAL unit after a 4-byte length),
//! and the facts a container needs from a sequence parameter set (ITU-T H.264 §7.3.2.1.1):
//! the profile and level, and the picture size after cropping.

/// NAL unit types this module looks at.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Longest access unit kept (a 4K keyframe is a few MB; anything beyond is not H.264 we can use).
const MAX_ACCESS_UNIT: usize = 16 << 20;

/// One access unit being joined from its packets.
#[derive(Debug, Default)]
pub struct AccessUnit {
    /// Length-prefixed NAL units.
    pub data: Vec<u8>,
    pub idr: bool,
    /// Where the NAL unit that a FU-A is filling starts in `data` (its length is written at
    /// the end).
    open_fragment: Option<usize>,
    /// A packet of it could not be used: the whole unit is dropped.
    pub broken: bool,
}

impl AccessUnit {
    /// Adds one RTP payload; the parameter sets seen are handed to `params`.
    pub fn push(&mut self, payload: &[u8], params: &mut ParameterSets) {
        let Some(&header) = payload.first() else {
            self.broken = true;
            return;
        };
        match header & 0x1f {
            1..=23 => self.nal(payload, params),
            STAP_A => {
                let mut rest = &payload[1..];
                while rest.len() >= 2 {
                    let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let Some(nal) = rest.get(2..2 + size) else {
                        self.broken = true;
                        return;
                    };
                    if !nal.is_empty() {
                        self.nal(nal, params);
                    }
                    rest = &rest[2 + size..];
                }
            }
            FU_A => self.fragment(payload, params),
            // STAP-B, MTAP and FU-B belong to the interleaved mode, which WebRTC does not use.
            _ => self.broken = true,
        }
    }

    fn nal(&mut self, nal: &[u8], params: &mut ParameterSets) {
        if self.open_fragment.is_some() {
            self.broken = true; // a fragmented NAL unit never got its end
        }
        params.saw(nal);
        self.idr |= nal[0] & 0x1f == NAL_IDR;
        self.data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.data.extend_from_slice(nal);
    }

    fn fragment(&mut self, payload: &[u8], params: &mut ParameterSets) {
        let (Some(&indicator), Some(&fu)) = (payload.first(), payload.get(1)) else {
            self.broken = true;
            return;
        };
        let (start, end, kind) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x1f);
        let body = &payload[2..];
        if start {
            if self.open_fragment.is_some() {
                self.broken = true;
            }
            self.open_fragment = Some(self.data.len());
            self.data.extend_from_slice(&[0; 4]);
            self.data.push((indicator & 0xe0) | kind);
            self.idr |= kind == NAL_IDR;
        } else if self.open_fragment.is_none() {
            self.broken = true; // its start was lost
            return;
        }
        self.data.extend_from_slice(body);
        if end {
            let at = self.open_fragment.take().expect("checked above");
            let length = (self.data.len() - at - 4) as u32;
            self.data[at..at + 4].copy_from_slice(&length.to_be_bytes());
            params.saw(&self.data[at + 4..]);
        }
        if self.data.len() > MAX_ACCESS_UNIT {
            self.broken = true;
            self.data.clear();
        }
    }

    /// Whether the unit is whole: nothing broken, no fragment left open, something in it.
    pub fn complete(&self) -> bool {
        !self.broken && self.open_fragment.is_none() && !self.data.is_empty()
    }
}

/// The latest sequence and picture parameter sets of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterSets {
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

impl ParameterSets {
    fn saw(&mut self, nal: &[u8]) {
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_SPS) if self.sps.as_deref() != Some(nal) => self.sps = Some(nal.to_vec()),
            Some(NAL_PPS) if self.pps.as_deref() != Some(nal) => self.pps = Some(nal.to_vec()),
            _ => {}
        }
    }
}

/// What a sequence parameter set tells a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sps {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    pub width: u16,
    pub height: u16,
}

/// Reads an SPS NAL unit (with its one-byte header).
pub fn parse_sps(nal: &[u8]) -> Option<Sps> {
    if nal.first()? & 0x1f != NAL_SPS || nal.len() < 4 {
        return None;
    }
    let rbsp = unescape(&nal[1..]);
    let mut bits = Bits { data: &rbsp, at: 0 };
    let profile = bits.u(8)? as u8;
    let compatibility = bits.u(8)? as u8;
    let level = bits.u(8)? as u8;
    bits.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format = bits.ue()?;
        if chroma_format == 3 {
            separate_planes = bits.u(1)? == 1;
        }
        bits.ue()?; // bit_depth_luma_minus8
        bits.ue()?; // bit_depth_chroma_minus8
        bits.u(1)?; // qpprime_y_zero_transform_bypass_flag
        if bits.u(1)? == 1 {
            for list in 0..if chroma_format == 3 { 12 } else { 8 } {
                if bits.u(1)? == 1 {
                    bits.skip_scaling_list(if list < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    bits.ue()?; // log2_max_frame_num_minus4
    match bits.ue()? {
        0 => {
            bits.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            bits.u(1)?;
            bits.se()?;
            bits.se()?;
            for _ in 0..bits.ue()?.min(255) {
                bits.se()?;
            }
        }
        _ => {}
    }
    bits.ue()?; // max_num_ref_frames
    bits.u(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = bits.ue()? + 1;
    let height_map_units = bits.ue()? + 1;
    let frame_mbs_only = bits.u(1)?;
    if frame_mbs_only == 0 {
        bits.u(1)?; // mb_adaptive_frame_field_flag
    }
    bits.u(1)?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if bits.u(1)? == 1 {
        (left, right, top, bottom) = (bits.ue()?, bits.ue()?, bits.ue()?, bits.ue()?);
    }
    let chroma_array = if separate_planes { 0 } else { chroma_format };
    let (sub_width, sub_height) = match chroma_array {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (crop_x, crop_y) =
        if chroma_array == 0 { (1, 2 - frame_mbs_only) } else { (sub_width, sub_height * (2 - frame_mbs_only)) };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = ((2 - frame_mbs_only) * height_map_units * 16).checked_sub(crop_y * (top + bottom))?;
    Some(Sps { profile, compatibility, level, width: u16::try_from(width).ok()?, height: u16::try_from(height).ok()? })
}

/// The RBSP of a NAL unit: every emulation prevention byte (`00 00 03`) taken out.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// A big-endian bit reader with the Exp-Golomb codes of §9.1.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn u(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.at += 1;
        }
        Some(value)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.u(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.u(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let code = self.ue()?;
        let magnitude = code.div_ceil(2) as i32;
        Some(if code % 2 == 1 { magnitude } else { -magnitude })
    }

    fn skip_scaling_list(&mut self, size: usize) -> Option<()> {
        let (mut last, mut next) = (8i32, 8i32);
        for _ in 0..size {
            if next != 0 {
                next = (last + self.se()? + 256) % 256;
            }
            last = if next == 0 { last } else { next };
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1280×720 High-profile SPS and a 320×240 Constrained Baseline one (the test fixture's),
    /// both as x264 writes them.
    const SPS_720P_HIGH: &[u8] = b"gd\0\x1f\xac$\x84\x01@\x16\xec\x04@\0\0\x03\0@\0\0\x0c#\xc6\x0c\x92";
    const SPS_240P_BASELINE: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
        0x03, 0xc0, 0xf1, 0x62, 0xe4, 0x80,
    ];

    #[test]
    fn an_sps_gives_profile_level_and_cropped_size() {
        let high = parse_sps(SPS_720P_HIGH).expect("parses");
        assert_eq!((high.profile, high.level, high.width, high.height), (100, 31, 1280, 720));
        let baseline = parse_sps(SPS_240P_BASELINE).expect("parses");
        assert_eq!((baseline.profile, baseline.width, baseline.height), (66, 320, 240));
        assert_eq!(parse_sps(&[0x68, 1, 2, 3]), None, "a PPS is not an SPS");
        assert_eq!(parse_sps(&SPS_720P_HIGH[..6]), None, "cut short");
    }

    fn nals(unit: &AccessUnit) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = unit.data.as_slice();
        while rest.len() >= 4 {
            let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            out.push(rest[4..4 + size].to_vec());
            rest = &rest[4 + size..];
        }
        out
    }

    #[test]
    fn single_stap_a_and_fu_a_packets_become_length_prefixed_nal_units() {
        let mut params = ParameterSets::default();
        let mut unit = AccessUnit::default();
        // STAP-A: the SPS and a PPS.
        let mut stap = vec![0x78];
        for nal in [SPS_240P_BASELINE, &[0x68, 0xce, 0x3c, 0x80]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        unit.push(&stap, &mut params);
        // An IDR slice in three FU-A packets.
        unit.push(&[0x7c, 0x85, 1, 2], &mut params);
        unit.push(&[0x7c, 0x05, 3, 4], &mut params);
        assert!(!unit.complete(), "a fragment is still open");
        unit.push(&[0x7c, 0x45, 5], &mut params);
        assert!(unit.complete() && unit.idr);
        assert_eq!(nals(&unit), [SPS_240P_BASELINE.to_vec(), vec![0x68, 0xce, 0x3c, 0x80], vec![0x65, 1, 2, 3, 4, 5]]);
        assert_eq!(params.sps.as_deref(), Some(SPS_240P_BASELINE));

        let mut lost_start = AccessUnit::default();
        lost_start.push(&[0x7c, 0x05, 3, 4], &mut params);
        assert!(!lost_start.complete(), "a fragment without its start is unusable");
        let mut single = AccessUnit::default();
        single.push(&[0x41, 9, 9], &mut params);
        assert!(single.complete() && !single.idr);
        let mut interleaved = AccessUnit::default();
        interleaved.push(&[0x79, 0, 0], &mut params);
        assert!(!interleaved.complete(), "STAP-B is not of packetization mode 1");
    }
}
