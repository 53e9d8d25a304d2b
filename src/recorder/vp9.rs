//! VP9 frames out of RTP payloads (RFC 9628): strip each packet's payload descriptor, join the
//! packets of one frame (B on the first, E on the last), and read what a container needs from a
//! keyframe's uncompressed header (VP9 bitstream specification §6.2): that it is one, and its
//! size. Only the base spatial layer is kept: a file holds one resolution.

/// The payload of one packet without its descriptor: whether it begins and ends a frame, and
/// its spatial layer (0 without layer indices).
pub struct Payload<'a> {
    pub data: &'a [u8],
    pub begins: bool,
    pub ends: bool,
    pub spatial_layer: u8,
}

pub fn strip_descriptor(payload: &[u8]) -> Option<Payload<'_>> {
    let first = *payload.first()?;
    let has_picture_id = first & 0x80 != 0;
    let inter_predicted = first & 0x40 != 0;
    let has_layers = first & 0x20 != 0;
    let flexible = first & 0x10 != 0;
    let begins = first & 0x08 != 0;
    let ends = first & 0x04 != 0;
    let has_structure = first & 0x02 != 0;
    let mut at = 1;
    if has_picture_id {
        let picture = *payload.get(at)?;
        at += if picture & 0x80 != 0 { 2 } else { 1 };
    }
    let mut spatial_layer = 0;
    if has_layers {
        let layers = *payload.get(at)?;
        spatial_layer = (layers >> 1) & 0x07;
        at += 1;
        if !flexible {
            at += 1; // TL0PICIDX
        }
    }
    if flexible && inter_predicted {
        // Up to three reference indices, each with a "one more follows" bit.
        for _ in 0..3 {
            let diff = *payload.get(at)?;
            at += 1;
            if diff & 0x01 == 0 {
                break;
            }
        }
    }
    if has_structure {
        let structure = *payload.get(at)?;
        at += 1;
        let layers = usize::from(structure >> 5) + 1;
        if structure & 0x10 != 0 {
            at += layers * 4; // a width and a height per spatial layer
        }
        if structure & 0x08 != 0 {
            let groups = *payload.get(at)?;
            at += 1;
            for _ in 0..groups {
                let group = *payload.get(at)?;
                at += 1 + usize::from((group >> 2) & 0x03);
            }
        }
    }
    Some(Payload { data: payload.get(at..)?, begins, ends, spatial_layer })
}

/// A frame's key facts from its uncompressed header: `Some((width, height))` for a keyframe.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let mut bits = Bits { data: frame, at: 0 };
    if bits.take(2)? != 2 {
        return None; // frame_marker
    }
    let profile = bits.take(1)? | (bits.take(1)? << 1);
    if profile == 3 {
        bits.take(1)?; // reserved_zero
    }
    if bits.take(1)? == 1 {
        return None; // show_existing_frame
    }
    if bits.take(1)? != 0 {
        return None; // frame_type: not a keyframe
    }
    bits.take(2)?; // show_frame, error_resilient_mode
    if bits.take(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    // color_config
    if profile >= 2 {
        bits.take(1)?; // ten_or_twelve_bit
    }
    let color_space = bits.take(3)?;
    if color_space != 7 {
        bits.take(1)?; // color_range
        if profile == 1 || profile == 3 {
            bits.take(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        bits.take(1)?; // reserved_zero
    }
    let width = bits.take(16)? + 1;
    let height = bits.take(16)? + 1;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Option<u32> {
        let mut value = 0;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            value = (value << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a 320×240 profile 0 keyframe and of an interframe, as libvpx wrote them.
    const KEY_320X240: [u8; 10] = [0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x04];
    const INTER: [u8; 4] = [0x86, 0x00, 0x40, 0x92];

    #[test]
    fn a_keyframe_header_gives_the_size_and_an_interframe_none() {
        assert_eq!(keyframe_size(&KEY_320X240), Some((320, 240)));
        assert_eq!(keyframe_size(&INTER), None);
        assert_eq!(keyframe_size(&KEY_320X240[..5]), None, "cut short");
    }

    #[test]
    fn descriptors_of_every_shape_are_stripped() {
        // Begins, 15-bit picture id, layer indices (non-flexible: + TL0PICIDX), and a
        // scalability structure with one layer's size and no groups.
        let mut payload = vec![0b1010_1010, 0x80 | 0x12, 0x34, 0b0000_0010, 7, 0b0001_0000, 1, 64, 0, 240, 0xaa];
        let stripped = strip_descriptor(&payload).expect("parses");
        assert!(stripped.begins && !stripped.ends);
        assert_eq!((stripped.data, stripped.spatial_layer), (&[0xaa][..], 1));
        // Flexible mode, inter-predicted, two reference diffs; ends.
        payload = vec![0b0101_0100, 0x03, 0x04, 0xbb];
        let stripped = strip_descriptor(&payload).expect("parses");
        assert!(!stripped.begins && stripped.ends);
        assert_eq!(stripped.data, [0xbb]);
        assert!(strip_descriptor(&[0x80]).is_none(), "a picture id that is not there");
    }
}
