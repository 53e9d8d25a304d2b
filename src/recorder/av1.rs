//! AV1 temporal units out of RTP payloads ("RTP Payload Format For AV1", AOMedia, §4): each
//! packet's aggregation header and OBU elements, fragments joined across packets, written as a
//! Matroska block wants them (AV1 in Matroska §2: the OBUs of one temporal unit, each with its
//! size field, without temporal delimiters). A sequence header gives the track's `av1C`
//! (AV1 in ISOBMFF §2.3) and its size; a keyframe is a temporal unit whose first frame is a
//! `KEY_FRAME` shown now.

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;
const OBU_TILE_LIST: u8 = 8;

/// Longest temporal unit kept.
const MAX_TEMPORAL_UNIT: usize = 16 << 20;

/// One temporal unit being joined from its packets.
#[derive(Debug, Default)]
pub struct TemporalUnit {
    /// Whole OBUs, each with its size field.
    pub data: Vec<u8>,
    /// The OBU a packet left unfinished (`Y`), continued by the next one (`Z`).
    open: Option<Vec<u8>>,
    pub broken: bool,
    /// A frame seen so far: whether the first was a keyframe shown now.
    pub keyframe: Option<bool>,
    /// The sequence header OBU in it, as written (with its size field).
    pub sequence_header: Option<Vec<u8>>,
}

impl TemporalUnit {
    pub fn push(&mut self, payload: &[u8]) {
        let Some((&aggregation, mut rest)) = payload.split_first() else {
            self.broken = true;
            return;
        };
        let continues = aggregation & 0x80 != 0; // Z
        let unfinished = aggregation & 0x40 != 0; // Y
        let count = usize::from((aggregation >> 4) & 0x03); // W
        if continues != self.open.is_some() {
            self.broken = true; // a fragment without its start, or a start left open
            self.open = None;
        }
        let mut index = 0;
        while !rest.is_empty() {
            index += 1;
            let last = count != 0 && index == count;
            let element = if last {
                std::mem::take(&mut rest)
            } else {
                let Some((length, used)) = leb128(rest) else {
                    self.broken = true;
                    return;
                };
                let Some(element) = rest.get(used..used + length as usize) else {
                    self.broken = true;
                    return;
                };
                rest = &rest[used + length as usize..];
                element
            };
            let first_of_packet = index == 1;
            let obu = match self.open.take() {
                Some(mut started) if first_of_packet => {
                    started.extend_from_slice(element);
                    started
                }
                _ => element.to_vec(),
            };
            let more = unfinished && (rest.is_empty() || last);
            if more {
                self.open = Some(obu);
            } else {
                self.finish_obu(&obu);
            }
            if last {
                break;
            }
        }
        if self.data.len() > MAX_TEMPORAL_UNIT {
            self.broken = true;
            self.data.clear();
        }
    }

    /// Writes one whole OBU with its size field (or drops the kinds a file does not keep).
    fn finish_obu(&mut self, obu: &[u8]) {
        let Some(&header) = obu.first() else { return };
        let kind = (header >> 3) & 0x0f;
        let extended = header & 0x04 != 0;
        let header_len = if extended { 2 } else { 1 };
        let Some(mut payload) = obu.get(header_len..) else {
            self.broken = true;
            return;
        };
        if header & 0x02 != 0 {
            // It carries its size already: keep what the size covers.
            let Some((size, used)) = leb128(payload) else {
                self.broken = true;
                return;
            };
            let Some(sized) = payload.get(used..used + size as usize) else {
                self.broken = true;
                return;
            };
            payload = sized;
        }
        if matches!(kind, OBU_TEMPORAL_DELIMITER | OBU_TILE_LIST) {
            return;
        }
        let start = self.data.len();
        self.data.push(header | 0x02);
        if extended {
            self.data.push(obu[1]);
        }
        write_leb128(&mut self.data, payload.len() as u64);
        self.data.extend_from_slice(payload);
        match kind {
            OBU_SEQUENCE_HEADER => self.sequence_header = Some(self.data[start..].to_vec()),
            OBU_FRAME | OBU_FRAME_HEADER if self.keyframe.is_none() => {
                // show_existing_frame = 0, frame_type = KEY_FRAME (0): the first three bits.
                self.keyframe = Some(payload.first().is_some_and(|b| b & 0xe0 == 0));
            }
            _ => {}
        }
    }

    /// Whether the unit is whole: nothing broken, no OBU left open, something in it.
    pub fn complete(&self) -> bool {
        !self.broken && self.open.is_none() && !self.data.is_empty()
    }
}

/// A LEB128 number (AV1 §4.10.5) and the bytes it took.
fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// What a sequence header tells a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceHeader {
    pub width: u16,
    pub height: u16,
    /// The `av1C` box's content: four bytes, then the sequence header OBU.
    pub av1c: Vec<u8>,
}

/// Reads a sequence header OBU (with its header and size field, as [`TemporalUnit`] keeps it).
pub fn parse_sequence_header(obu: &[u8]) -> Option<SequenceHeader> {
    let header = *obu.first()?;
    if (header >> 3) & 0x0f != OBU_SEQUENCE_HEADER {
        return None;
    }
    let at = if header & 0x04 != 0 { 2 } else { 1 };
    let (size, used) = leb128(obu.get(at..)?)?;
    let payload = obu.get(at + used..at + used + size as usize)?;
    let mut bits = Bits { data: payload, at: 0 };
    let profile = bits.f(3)? as u8;
    bits.f(1)?; // still_picture
    let reduced = bits.f(1)? == 1;
    let (level, tier);
    if reduced {
        level = bits.f(5)? as u8;
        tier = 0;
    } else {
        let mut buffer_delay_bits = 0;
        let mut decoder_model = false;
        if bits.f(1)? == 1 {
            // timing_info
            bits.f(32)?;
            bits.f(32)?;
            if bits.f(1)? == 1 {
                bits.uvlc()?;
            }
            decoder_model = bits.f(1)? == 1;
            if decoder_model {
                buffer_delay_bits = bits.f(5)? + 1;
                bits.f(32)?;
                bits.f(5)?;
                bits.f(5)?;
            }
        }
        let initial_display_delay = bits.f(1)? == 1;
        let points = bits.f(5)? + 1;
        let (mut first_level, mut first_tier) = (0, 0);
        for point in 0..points {
            bits.f(12)?; // operating_point_idc
            let point_level = bits.f(5)? as u8;
            let point_tier = if point_level > 7 { bits.f(1)? as u8 } else { 0 };
            if decoder_model && bits.f(1)? == 1 {
                bits.f(buffer_delay_bits)?;
                bits.f(buffer_delay_bits)?;
                bits.f(1)?;
            }
            if initial_display_delay && bits.f(1)? == 1 {
                bits.f(4)?;
            }
            if point == 0 {
                (first_level, first_tier) = (point_level, point_tier);
            }
        }
        (level, tier) = (first_level, first_tier);
    }
    let width_bits = bits.f(4)? + 1;
    let height_bits = bits.f(4)? + 1;
    let width = bits.f(width_bits)? + 1;
    let height = bits.f(height_bits)? + 1;
    if !reduced && bits.f(1)? == 1 {
        bits.f(4)?; // delta_frame_id_length_minus_2
        bits.f(3)?; // additional_frame_id_length_minus_1
    }
    bits.f(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        bits.f(4)?; // interintra, masked compound, warped motion, dual filter
        let order_hint = bits.f(1)? == 1;
        if order_hint {
            bits.f(2)?; // jnt_comp, ref_frame_mvs
        }
        let screen_content = if bits.f(1)? == 1 { 2 } else { bits.f(1)? };
        if screen_content > 0 && bits.f(1)? == 0 {
            bits.f(1)?; // seq_force_integer_mv
        }
        if order_hint {
            bits.f(3)?;
        }
    }
    bits.f(3)?; // superres, cdef, restoration
                // color_config
    let high_bitdepth = bits.f(1)? == 1;
    let twelve_bit = profile == 2 && high_bitdepth && bits.f(1)? == 1;
    let monochrome = profile != 1 && bits.f(1)? == 1;
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if bits.f(1)? == 1 {
        (primaries, transfer, matrix) = (bits.f(8)?, bits.f(8)?, bits.f(8)?);
    }
    let (subsampling_x, subsampling_y, mut sample_position) = if monochrome {
        bits.f(1)?;
        (1, 1, 0)
    } else if primaries == 1 && transfer == 13 && matrix == 0 {
        (0, 0, 0)
    } else {
        bits.f(1)?; // color_range
        match profile {
            0 => (1, 1, 0),
            1 => (0, 0, 0),
            _ if twelve_bit => {
                let x = bits.f(1)?;
                (x, if x == 1 { bits.f(1)? } else { 0 }, 0)
            }
            _ => (1, 0, 0),
        }
    };
    if !monochrome && subsampling_x == 1 && subsampling_y == 1 && !(primaries == 1 && transfer == 13 && matrix == 0) {
        sample_position = bits.f(2)?;
    }
    let mut av1c = vec![
        0x81,
        (profile << 5) | level,
        (tier << 7)
            | (u8::from(high_bitdepth) << 6)
            | (u8::from(twelve_bit) << 5)
            | (u8::from(monochrome) << 4)
            | ((subsampling_x as u8) << 3)
            | ((subsampling_y as u8) << 2)
            | sample_position as u8,
        0,
    ];
    av1c.extend_from_slice(obu);
    Some(SequenceHeader { width: u16::try_from(width).ok()?, height: u16::try_from(height).ok()?, av1c })
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn f(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            value = (value << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(value)
    }

    fn uvlc(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.f(1)? == 0 {
            zeros += 1;
            if zeros >= 32 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.f(zeros)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence header libaom wrote for a 320×240 stream (profile 0, 8-bit 4:2:0).
    const SEQUENCE_HEADER: [u8; 13] = [0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x00, 0x40];

    #[test]
    fn a_sequence_header_gives_the_size_and_the_av1c() {
        let parsed = parse_sequence_header(&SEQUENCE_HEADER).expect("parses");
        assert_eq!((parsed.width, parsed.height), (320, 240));
        assert_eq!(parsed.av1c[0], 0x81, "marker and version");
        assert_eq!(parsed.av1c[1] >> 5, 0, "profile 0");
        assert_eq!(parsed.av1c[2] & 0x0c, 0x0c, "4:2:0");
        assert_eq!(&parsed.av1c[4..], SEQUENCE_HEADER, "the OBU follows");
        assert_eq!(parse_sequence_header(&SEQUENCE_HEADER[..6]), None, "cut short");
    }

    #[test]
    fn obu_elements_and_fragments_become_sized_obus() {
        // Packet 1: W=2 — a sequence header (with its length) and the start of a frame OBU (Y).
        let frame_obu = [0x30, 0x10, 0x20, 0x30, 0x40]; // OBU_FRAME, no size field; KEY_FRAME bits
        let sequence = &SEQUENCE_HEADER; // has its own size field
        let mut first = vec![0b0110_1000]; // Y=1, W=2, N=1
        first.push(sequence.len() as u8);
        first.extend_from_slice(sequence);
        first.extend_from_slice(&frame_obu[..3]);
        // Packet 2: Z=1, W=1 — the rest of the frame.
        let mut second = vec![0b1001_0000];
        second.extend_from_slice(&frame_obu[3..]);
        let mut unit = TemporalUnit::default();
        unit.push(&first);
        assert!(!unit.complete(), "the frame is still open");
        unit.push(&second);
        assert!(unit.complete());
        assert_eq!(unit.keyframe, Some(true));
        assert_eq!(unit.sequence_header.as_deref(), Some(&SEQUENCE_HEADER[..]));
        let mut expected = SEQUENCE_HEADER.to_vec();
        expected.extend_from_slice(&[0x32, 4, 0x10, 0x20, 0x30, 0x40]);
        assert_eq!(unit.data, expected);

        let mut orphan = TemporalUnit::default();
        orphan.push(&second);
        assert!(!orphan.complete(), "a continuation without its start");
        let mut delimiter = TemporalUnit::default();
        delimiter.push(&[0b0001_0000, 0x12, 0x00]);
        assert!(delimiter.data.is_empty(), "temporal delimiters are not kept");
    }
}
