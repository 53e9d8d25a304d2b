//! Recording (README "Recording"): what a publisher sends, written to a file a person can play,
//! download and keep, without transcoding and off the media path.
//!
//! The SFU hands every packet of a recorded source to [`Recorder::offer`], which never waits: a
//! bounded queue feeds one thread ([`writer`]) that reorders packets and joins frames
//! ([`assemble`], dropping what a decoder could not use after a loss) and writes WebM files
//! ([`webm`]) that stay playable if the process dies. The thread reports [`Event`]s; the server
//! keeps the `recordings` table from them.

pub mod assemble;
pub mod av1;
pub mod disk;
mod file;
pub mod h264;
pub mod mp4;
pub mod vp8;
pub mod vp9;
pub mod webm;
mod writer;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{channel, sync_channel, Sender, SyncSender, TrySendError},
        Arc,
    },
};

pub use assemble::Packet;

/// Packets waiting for the recording thread (~10 s of one 2.5 Mbit/s stream).
const QUEUE: usize = 4096;

/// The most of a recording a container gathers before writing it (a WebM cluster, an MP4
/// fragment): what a crash can lose.
pub const FLUSH_MS: u64 = 1_000;
/// Track numbers, the same in every container.
pub const VIDEO_TRACK: u64 = 1;
pub const AUDIO_TRACK: u64 = 2;

/// A recording's id (also its database key and file name stem).
pub type RecordingId = u64;

/// How a recording's id is written in rows, URLs and its file name.
pub fn key(id: RecordingId) -> String {
    format!("{id:016x}")
}

/// A new recording's id: random, so ids (and file names) never repeat across restarts.
pub fn new_id() -> RecordingId {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the system's random source works");
    u64::from_le_bytes(bytes) >> 1
}

/// The codec of a recorded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaCodec {
    Vp8,
    Vp9,
    Av1,
    H264,
    Opus,
    Other,
}

impl MediaCodec {
    /// How the API names it: `vp8`, `h264`, `opus`…
    pub fn id(self) -> &'static str {
        match self {
            Self::Vp8 => "vp8",
            Self::Vp9 => "vp9",
            Self::Av1 => "av1",
            Self::H264 => "h264",
            Self::Opus => "opus",
            Self::Other => "other",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Vp8 => "VP8",
            Self::Vp9 => "VP9",
            Self::Av1 => "AV1",
            Self::H264 => "H.264",
            Self::Opus => "Opus",
            Self::Other => "this",
        }
    }
}

/// A feed starts being recorded.
#[derive(Clone, Debug)]
pub struct RecordingStart {
    pub id: RecordingId,
    pub account: String,
    pub stream_name: String,
    pub source_id: Option<String>,
    pub token_id: String,
    pub has_video: bool,
    pub has_audio: bool,
    /// The file's name in the recordings folder, without the extension (the container, WebM
    /// or MP4, is chosen by the first video packet's codec).
    pub file_stem: String,
}

/// What the recording thread is told, besides packets. Never dropped: it travels apart from
/// the bounded packet queue.
pub(crate) enum Control {
    Start(RecordingStart),
    /// `reason` when it ends for another reason than the broadcast ending.
    Stop {
        id: RecordingId,
        reason: Option<String>,
    },
    /// The server stops: every recording is finished and the thread ends.
    Finish,
}

/// One packet of a recorded source.
pub(crate) struct Input {
    id: RecordingId,
    video: bool,
    codec: MediaCodec,
    packet: Packet,
}

/// What the recording thread reports.
#[derive(Debug)]
pub enum Event {
    Started(RecordingStart),
    /// Recording `from` ends (its `Ended` follows) and the same feed goes on in `start`: the
    /// feed changed codec, which its file cannot hold.
    Continued {
        from: RecordingId,
        start: RecordingStart,
    },
    /// The file exists: its container and name, and what it holds.
    Described {
        id: RecordingId,
        container: &'static str,
        file_name: String,
        video: Option<(&'static str, u16, u16)>,
        audio: Option<&'static str>,
    },
    Progress {
        id: RecordingId,
        bytes: u64,
        duration_ms: u64,
    },
    /// Video was lost: nothing is written until the next keyframe, so ask the publisher for one.
    KeyframeWanted {
        id: RecordingId,
    },
    /// The file is complete and playable; `reason` when it ended early.
    Ended {
        id: RecordingId,
        bytes: u64,
        duration_ms: u64,
        reason: Option<String>,
    },
    /// Nothing playable was written.
    Failed {
        id: RecordingId,
        reason: String,
    },
}

/// The SFU's end of the recorder: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Recorder {
    control: Sender<Control>,
    input: SyncSender<Input>,
    /// Packets dropped because the queue was full (the recording shows a gap there).
    dropped: Arc<AtomicU64>,
    disk: Arc<disk::DiskStatus>,
}

impl Recorder {
    /// Starts the recording thread writing into `folder`, keeping `min_free` bytes free on
    /// its disk; `events` receives what it does, and closes when the thread has finished.
    pub fn start(
        folder: PathBuf,
        min_free: u64,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&folder)?;
        let (input, inputs) = sync_channel(QUEUE);
        let (control, controls) = channel();
        let disk = Arc::new(disk::DiskStatus::new(min_free));
        let watched = disk.clone();
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer::run(controls, inputs, events, folder, &watched))?;
        Ok(Self { control, input, dropped: Arc::default(), disk })
    }

    /// Finishes every recording and ends the thread (the server is stopping); its event
    /// channel closes once the last recording is reported.
    pub fn finish_all(&self) {
        let _ = self.control.send(Control::Finish);
    }

    /// The recordings disk as last measured.
    pub fn disk(&self) -> disk::DiskReport {
        self.disk.report()
    }

    pub fn start_recording(&self, start: RecordingStart) {
        let _ = self.control.send(Control::Start(start));
    }

    pub fn stop_recording(&self, id: RecordingId, reason: Option<String>) {
        let _ = self.control.send(Control::Stop { id, reason });
    }

    /// A packet of a recorded source; dropped (and counted) when the thread is behind.
    pub fn offer(&self, id: RecordingId, video: bool, codec: MediaCodec, packet: Packet) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.input.try_send(Input { id, video, codec, packet })
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Packets dropped so far because the recording thread was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::{fs::File, io::BufReader, path::Path, process::Command};

    use rtc::media::io::{ivf_reader::IVFReader, ogg_reader::OggReader};

    use super::{
        h264,
        mp4::{AvcTrack, Mp4File},
        vp8,
        webm::{AudioTrack, VideoTrack, WebmFile},
        AUDIO_TRACK, VIDEO_TRACK,
    };

    /// The test clip's frames: VP8 (30 fps) and Opus (20 ms).
    fn clip() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (mut ivf, _) = IVFReader::new(BufReader::new(File::open(dir.join("video.ivf")).unwrap())).unwrap();
        let mut video = Vec::new();
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            video.push(frame.to_vec());
        }
        let (mut ogg, _) = OggReader::new(BufReader::new(File::open(dir.join("audio.ogg")).unwrap()), true).unwrap();
        let mut audio = Vec::new();
        while let Ok((page, _)) = ogg.parse_next_page() {
            if !page.starts_with(b"OpusTags") && !page.is_empty() {
                audio.push(page.to_vec());
            }
        }
        (video, audio)
    }

    fn ffprobe(path: &Path, args: &[&str]) -> String {
        let output = Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(path)
            .output()
            .expect("ffprobe runs (Debian's ffmpeg; scripts/setup.sh --test installs it)");
        assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Writes the clip as a recording would, interleaved by time; `cut` stops without finish().
    fn write_clip(path: &Path, finish: bool) -> (usize, usize) {
        let (video, audio) = clip();
        let (width, height) = vp8::keyframe_size(&video[0]).expect("the clip starts with a keyframe");
        let mut file = WebmFile::create(
            path,
            Some(&VideoTrack { codec_id: "V_VP8", width, height, codec_private: None }),
            Some(&AudioTrack { channels: 2 }),
        )
        .unwrap();
        let (mut v, mut a) = (0, 0);
        while v < video.len() || a < audio.len() {
            let video_ms = v as u64 * 100 / 3;
            let audio_ms = a as u64 * 20;
            if v < video.len() && (a >= audio.len() || video_ms <= audio_ms) {
                let key = vp8::keyframe_size(&video[v]).is_some();
                file.write_frame(VIDEO_TRACK, video_ms, key, &video[v]).unwrap();
                v += 1;
            } else {
                file.write_frame(AUDIO_TRACK, audio_ms, false, &audio[a]).unwrap();
                a += 1;
            }
        }
        if finish {
            file.finish().unwrap();
        } else {
            file.close_cluster().unwrap();
            drop(file);
        }
        (video.len(), audio.len())
    }

    #[test]
    fn a_finished_file_has_both_tracks_every_frame_and_its_duration() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("clip.webm");
        let (frames, packets) = write_clip(&path, true);
        let streams = ffprobe(
            &path,
            &["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"],
        );
        let lines: Vec<&str> = streams.lines().collect();
        assert_eq!(lines[0], format!("vp8,160,120,{frames}"), "{streams}");
        assert_eq!(lines[1].split(',').next(), Some("opus"), "{streams}");
        assert_eq!(lines[1].rsplit(',').next(), Some(packets.to_string().as_str()), "{streams}");
        let duration: f64 =
            ffprobe(&path, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().unwrap();
        let sent = (frames - 1) as f64 / 30.0;
        assert!((duration - sent).abs() < 0.5, "duration {duration} s for {sent} s sent");
        // Decodes to the end without an error.
        let decode = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-enc_time_base", "-1", "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
    }

    /// An H.264 fixture's access units, each NAL unit after a 4-byte length (as MP4 wants).
    fn h264_clip(name: &str) -> Vec<Vec<u8>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let data = std::fs::read(path).unwrap();
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                starts.push(i + 3);
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut units = Vec::new();
        let mut unit = Vec::new();
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
            let mut nal = &data[start..end];
            while nal.last() == Some(&0) && n + 1 < starts.len() {
                nal = &nal[..nal.len() - 1]; // the zero of the next four-byte start code
            }
            unit.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            unit.extend_from_slice(nal);
            if matches!(nal[0] & 0x1f, 1 | 5) {
                units.push(std::mem::take(&mut unit)); // one slice per picture in the fixture
            }
        }
        units
    }

    fn nal_units(unit: &[u8]) -> impl Iterator<Item = &[u8]> {
        let mut rest = unit;
        std::iter::from_fn(move || {
            let size = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let nal = rest.get(4..4 + size)?;
            rest = &rest[4 + size..];
            Some(nal)
        })
    }

    #[test]
    fn an_h264_and_opus_recording_is_a_fragmented_mp4_ffmpeg_reads_whole() {
        let video = h264_clip("video.h264");
        let (_, audio) = clip();
        let first = &video[0];
        let sps = nal_units(first).find(|n| n[0] & 0x1f == 7).expect("the clip starts with an SPS");
        let pps = nal_units(first).find(|n| n[0] & 0x1f == 8).expect("and a PPS");
        let facts = h264::parse_sps(sps).unwrap();
        assert_eq!((facts.width, facts.height), (320, 240));
        let dir = tempfile::TempDir::new().unwrap();
        for finish in [true, false] {
            let path = dir.path().join(format!("clip-{finish}.mp4"));
            let mut file = Mp4File::create(&path, Some(&AvcTrack { sps, pps, facts }), Some(2)).unwrap();
            let (mut v, mut a) = (0, 0);
            while v < video.len() || a < audio.len() {
                let video_ms = v as u64 * 100 / 3;
                let audio_ms = a as u64 * 20;
                if v < video.len() && (a >= audio.len() || video_ms <= audio_ms) {
                    let key = nal_units(&video[v]).any(|n| n[0] & 0x1f == 5);
                    file.write_frame(VIDEO_TRACK, video_ms, key, &video[v]).unwrap();
                    v += 1;
                } else {
                    file.write_frame(AUDIO_TRACK, audio_ms, false, &audio[a]).unwrap();
                    a += 1;
                }
            }
            if finish {
                file.finish().unwrap();
            } else {
                drop(file); // cut off: what was gathered after the last fragment is lost
            }
            let streams = ffprobe(
                &path,
                &["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"],
            );
            let lines: Vec<&str> = streams.lines().collect();
            let frames: usize = lines[0].rsplit(',').next().unwrap().parse().unwrap();
            assert!(lines[0].starts_with("h264,320,240,"), "{streams}");
            assert_eq!(lines[1].split(',').next(), Some("opus"), "{streams}");
            let decode = Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&path)
                .args(["-enc_time_base", "-1", "-f", "null", "-"])
                .output();
            let decode = decode.unwrap();
            assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
            if finish {
                assert_eq!(frames, video.len(), "every frame: {streams}");
                let duration: f64 =
                    ffprobe(&path, &["-show_entries", "format=duration", "-of", "csv=p=0"]).trim().parse().unwrap();
                let sent = video.len() as f64 / 30.0;
                assert!((duration - sent).abs() < 0.5, "duration {duration} s for {sent} s sent");
            } else {
                assert!(frames + 31 >= video.len(), "all but the last second: {frames} of {}", video.len());
            }
        }
    }

    /// Decodes `path` whole with Debian's ffmpeg: the frame count, and the widths shown.
    fn decoded(path: &Path) -> (usize, Vec<String>) {
        let decode =
            Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args(["-f", "framemd5", "-"]).output();
        let decode = decode.unwrap();
        assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
        let frames = String::from_utf8_lossy(&decode.stdout).lines().filter(|l| !l.starts_with('#')).count();
        let sizes = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=width", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        let widths: std::collections::BTreeSet<String> = String::from_utf8_lossy(&sizes.stdout)
            .lines()
            .filter_map(|l| l.split(',').next())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        (frames, widths.into_iter().collect())
    }

    #[test]
    fn a_resolution_change_at_a_keyframe_stays_one_playable_vp8_track() {
        let (small, _) = clip();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (mut ivf, _) = IVFReader::new(BufReader::new(File::open(dir.join("video-240p.ivf")).unwrap())).unwrap();
        let mut large = Vec::new();
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            large.push(frame.to_vec());
        }
        let out = tempfile::TempDir::new().unwrap();
        let path = out.path().join("resized.webm");
        let (width, height) = vp8::keyframe_size(&small[0]).unwrap();
        let track = VideoTrack { codec_id: "V_VP8", width, height, codec_private: None };
        let mut file = WebmFile::create(&path, Some(&track), None).unwrap();
        for (n, frame) in small.iter().chain(&large).enumerate() {
            let key = vp8::keyframe_size(frame).is_some();
            file.write_frame(VIDEO_TRACK, n as u64 * 100 / 3, key, frame).unwrap();
        }
        file.finish().unwrap();
        let (frames, widths) = decoded(&path);
        assert_eq!(frames, small.len() + large.len(), "every frame of both sizes decodes");
        assert_eq!(widths, ["160", "320"], "both sizes are shown");
    }

    #[test]
    fn a_resolution_change_at_a_keyframe_stays_one_playable_h264_track() {
        let (large, small) = (h264_clip("video.h264"), h264_clip("video-120p.h264"));
        let sps = nal_units(&large[0]).find(|n| n[0] & 0x1f == 7).unwrap();
        let pps = nal_units(&large[0]).find(|n| n[0] & 0x1f == 8).unwrap();
        let track = AvcTrack { sps, pps, facts: h264::parse_sps(sps).unwrap() };
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("resized.mp4");
        let mut file = Mp4File::create(&path, Some(&track), None).unwrap();
        for (n, frame) in large.iter().chain(&small).enumerate() {
            let key = nal_units(frame).any(|nal| nal[0] & 0x1f == 5);
            file.write_frame(VIDEO_TRACK, n as u64 * 100 / 3, key, frame).unwrap();
        }
        file.finish().unwrap();
        let (frames, widths) = decoded(&path);
        assert_eq!(frames, large.len() + small.len(), "every frame of both sizes decodes");
        assert_eq!(widths, ["160", "320"], "both sizes are shown");
    }

    #[test]
    fn a_file_cut_off_without_finishing_still_plays() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("cut.webm");
        let (frames, _) = write_clip(&path, false);
        let streams = ffprobe(
            &path,
            &["-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"],
        );
        assert_eq!(streams.trim(), frames.to_string(), "every closed cluster is readable");
    }
}
