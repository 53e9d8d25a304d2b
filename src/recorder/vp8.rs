//! VP8 frames out of RTP payloads (RFC 7741): strip each packet's payload descriptor, join the
//! partitions of one frame (same RTP timestamp, marker on the last), and read what a container
//! needs from a keyframe's header (RFC 6386 §9.1): that it is one, and its size.

/// The payload of one packet without its descriptor, and whether it starts a frame.
pub fn strip_descriptor(payload: &[u8]) -> Option<(&[u8], bool)> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut at = 1;
    if extended {
        let flags = *payload.get(at)?;
        at += 1;
        if flags & 0x80 != 0 {
            // PictureID: 7 bits, or 15 when its M bit is set.
            let picture = *payload.get(at)?;
            at += if picture & 0x80 != 0 { 2 } else { 1 };
        }
        if flags & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if flags & 0x30 != 0 {
            at += 1; // TID / Y / KEYIDX
        }
    }
    let rest = payload.get(at..)?;
    Some((rest, start))
}

/// A frame's key facts from its first bytes: `Some((width, height))` for a keyframe.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    // Frame tag: bit 0 of the first byte is 0 for a keyframe; then the start code 9d 01 2a and
    // 14-bit width and height (the top two bits are scaling).
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_of_every_shape_are_stripped() {
        // Minimal: S=1, PID=0.
        assert_eq!(strip_descriptor(&[0x10, 1, 2]), Some((&[1u8, 2][..], true)));
        // Continuation (S=0).
        assert_eq!(strip_descriptor(&[0x00, 9]), Some((&[9u8][..], false)));
        // X with a 15-bit PictureID, TL0PICIDX and TID/KEYIDX.
        assert_eq!(strip_descriptor(&[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 7]), Some((&[7u8][..], true)));
        // X with a 7-bit PictureID only.
        assert_eq!(strip_descriptor(&[0x90, 0x80, 0x11, 8]), Some((&[8u8][..], true)));
        // A later partition (PID 1) does not start a frame.
        assert_eq!(strip_descriptor(&[0x11, 3]), Some((&[3u8][..], false)));
        // Truncated descriptors are refused, never read past the end.
        for bad in [&[][..], &[0x80], &[0x90, 0x80], &[0x90, 0xe0, 0x81]] {
            assert_eq!(strip_descriptor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_keyframe_header_gives_the_size_and_an_interframe_none() {
        // 640x480 keyframe: tag (3 bytes, bit 0 clear), start code, 14-bit sizes.
        let key = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0xff];
        assert_eq!(keyframe_size(&key), Some((640, 480)));
        let inter = [0x51, 0x42, 0x00, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(keyframe_size(&inter), None);
        assert_eq!(keyframe_size(&key[..6]), None, "too short");
    }
}
