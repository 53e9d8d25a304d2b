//! A recording's file, whichever container it is: WebM for VP8, MP4 for H.264 (both with Opus).

use std::{
    fs::File,
    io::{self, Seek, SeekFrom, Write},
};

use super::{mp4::Mp4File, webm::WebmFile};

/// Appends `bytes` at `end` whole, or nothing: a failed write (a full disk) is cut off again, so
/// the file keeps ending with a whole cluster or fragment.
pub(super) fn append_whole(file: &mut File, end: &mut u64, bytes: &[u8]) -> io::Result<()> {
    if let Err(err) = file.write_all(bytes) {
        let _ = file.set_len(*end);
        let _ = file.seek(SeekFrom::Start(*end));
        return Err(err);
    }
    *end += bytes.len() as u64;
    Ok(())
}

pub enum RecordingFile {
    Webm(WebmFile),
    Mp4(Mp4File),
}

impl RecordingFile {
    /// `webm` or `mp4`: the extension and the API's `container`.
    pub fn container(&self) -> &'static str {
        match self {
            Self::Webm(_) => "webm",
            Self::Mp4(_) => "mp4",
        }
    }

    pub fn write_frame(&mut self, track: u64, time_ms: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Webm(file) => file.write_frame(track, time_ms, keyframe, data),
            Self::Mp4(file) => file.write_frame(track, time_ms, keyframe, data),
        }
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Self::Webm(file) => file.bytes(),
            Self::Mp4(file) => file.bytes(),
        }
    }

    pub fn duration_ms(&self) -> u64 {
        match self {
            Self::Webm(file) => file.duration_ms(),
            Self::Mp4(file) => file.duration_ms(),
        }
    }

    /// Writes what is gathered and what seeking needs; answers the file's size.
    pub fn finish(self) -> io::Result<u64> {
        match self {
            Self::Webm(file) => file.finish(),
            Self::Mp4(file) => file.finish(),
        }
    }
}
