//! A WebM file written live and kept playable (Matroska, EBML elements encoded by
//! `webm-iterable`): clusters are written whole as they close, at a video keyframe or after at
//! most [`FLUSH_MS`], so after a crash the file plays up to the last closed cluster. A clean
//! [`WebmFile::finish`] adds what seeking needs: the duration, the segment's size, cues (one per
//! keyframe cluster) and a seek head pointing at them, in space reserved at the start.

use std::{
    fs::File,
    io::{self, Seek, SeekFrom, Write},
    path::Path,
    sync::OnceLock,
};

use super::{AUDIO_TRACK, FLUSH_MS, VIDEO_TRACK};
use webm_iterable::{
    errors::TagWriterError,
    matroska_spec::{Master, MatroskaSpec, SimpleBlock},
    WebmWriter, WriteOptions,
};

/// The EBML "unknown size" for an 8-byte size field.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const SEGMENT_ID: [u8; 4] = [0x18, 0x53, 0x80, 0x67];
const CLUSTER_ID: [u8; 4] = [0x1f, 0x43, 0xb6, 0x75];
const CUES_ID: [u8; 4] = [0x1c, 0x53, 0xbb, 0x6b];
const DURATION_ID: u64 = 0x4489;
const VOID_ID: u64 = 0xec;
/// Bytes kept free after the segment start for the seek head written at the end.
const SEEK_SPACE: usize = 64;

/// The video track as the container describes it.
#[derive(Clone, Debug)]
pub struct VideoTrack {
    /// `V_VP8`, `V_VP9`, `V_AV1`.
    pub codec_id: &'static str,
    pub width: u16,
    pub height: u16,
    /// What the codec needs before the first frame (AV1: its `av1C`).
    pub codec_private: Option<Vec<u8>>,
}

/// The Opus track.
#[derive(Clone, Debug)]
pub struct AudioTrack {
    pub channels: u8,
}

pub struct WebmFile {
    file: File,
    /// Offsets in the file: where the segment's 8-byte size is, where its content starts (the
    /// origin of every position in cues and the seek head), the reserved seek-head space, and
    /// the 8 bytes of the duration.
    segment_size_at: u64,
    segment_start: u64,
    seek_space_at: u64,
    duration_at: u64,
    end: u64,
    cluster: Option<Cluster>,
    /// (time in ms, position of a cluster that starts with a video keyframe).
    cues: Vec<(u64, u64)>,
    last_ms: u64,
    /// The last time written on each track (video, audio): a track's times must increase.
    track_last_ms: [Option<u64>; 2],
}

struct Cluster {
    start_ms: u64,
    /// The latest frame time in it.
    last_ms: u64,
    starts_with_keyframe: bool,
    blocks: Vec<u8>,
}

/// Where encoded elements stand: the writer checks that each element may stand there.
#[derive(Clone, Copy)]
enum Within {
    Top = 0,
    Segment = 1,
    Cluster = 2,
}

impl Within {
    /// Opens the parents, unknown-sized.
    fn open(self, writer: &mut WebmWriter<&mut Vec<u8>>) -> Result<(), TagWriterError> {
        if !matches!(self, Within::Top) {
            writer.write_advanced(&MatroskaSpec::Segment(Master::Start), WriteOptions::is_unknown_sized_element())?;
        }
        if matches!(self, Within::Cluster) {
            writer.write_advanced(&MatroskaSpec::Cluster(Master::Start), WriteOptions::is_unknown_sized_element())?;
        }
        Ok(())
    }

    /// How many bytes the parents' headers take before the children (measured once).
    fn prefix(self) -> usize {
        static PREFIX: [OnceLock<usize>; 3] = [const { OnceLock::new() }; 3];
        *PREFIX[self as usize].get_or_init(|| {
            let mut headers = Vec::new();
            let mut writer = WebmWriter::new(&mut headers);
            // The writer holds the headers back until something follows; flush lets them out.
            self.open(&mut writer).and_then(|()| writer.flush()).expect("the parents' headers encode");
            drop(writer);
            headers.len()
        })
    }
}

/// Encodes the elements `write` writes, standing `within`: their bytes only.
fn encode(
    within: Within,
    write: impl FnOnce(&mut WebmWriter<&mut Vec<u8>>) -> Result<(), TagWriterError>,
) -> io::Result<Vec<u8>> {
    let fail = |err: TagWriterError| io::Error::other(err.to_string());
    let mut out = Vec::new();
    let mut writer = WebmWriter::new(&mut out);
    within.open(&mut writer).map_err(fail)?;
    write(&mut writer).map_err(fail)?;
    drop(writer);
    out.drain(..within.prefix());
    Ok(out)
}

/// An EBML size field of exactly 8 bytes.
fn size8(size: u64) -> [u8; 8] {
    let mut bytes = size.to_be_bytes();
    bytes[0] = 0x01;
    bytes
}

/// OpusHead (RFC 7845 §5.1), the Opus track's codec private data.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip: what libopus encoders use
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0 (mono or stereo)
    head
}

impl WebmFile {
    /// Creates the file and writes the header and the track descriptions.
    pub fn create(path: &Path, video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> io::Result<Self> {
        let mut file = File::create_new(path)?;
        let header = encode(Within::Top, |w| {
            w.write(&MatroskaSpec::Ebml(Master::Full(vec![
                MatroskaSpec::EbmlVersion(1),
                MatroskaSpec::EbmlReadVersion(1),
                MatroskaSpec::EbmlMaxIdLength(4),
                MatroskaSpec::EbmlMaxSizeLength(8),
                MatroskaSpec::DocType("webm".into()),
                MatroskaSpec::DocTypeVersion(4),
                MatroskaSpec::DocTypeReadVersion(2),
            ])))
        })?;
        let info = encode(Within::Segment, |w| {
            w.write(&MatroskaSpec::Info(Master::Start))?;
            w.write(&MatroskaSpec::TimestampScale(1_000_000))?; // block times in ms
            w.write(&MatroskaSpec::MuxingApp("ferrocast".into()))?;
            w.write(&MatroskaSpec::WritingApp("ferrocast".into()))?;
            w.write_raw(DURATION_ID, &0f64.to_be_bytes())?;
            w.write(&MatroskaSpec::Info(Master::End))
        })?;
        let mut entries = Vec::new();
        if let Some(video) = video {
            let mut entry = vec![
                MatroskaSpec::TrackNumber(VIDEO_TRACK),
                MatroskaSpec::TrackUID(VIDEO_TRACK),
                MatroskaSpec::TrackType(1),
                MatroskaSpec::CodecID(video.codec_id.into()),
            ];
            if let Some(private) = &video.codec_private {
                entry.push(MatroskaSpec::CodecPrivate(private.clone()));
            }
            entry.push(MatroskaSpec::Video(Master::Full(vec![
                MatroskaSpec::PixelWidth(video.width.into()),
                MatroskaSpec::PixelHeight(video.height.into()),
            ])));
            entries.push(MatroskaSpec::TrackEntry(Master::Full(entry)));
        }
        if let Some(audio) = audio {
            entries.push(MatroskaSpec::TrackEntry(Master::Full(vec![
                MatroskaSpec::TrackNumber(AUDIO_TRACK),
                MatroskaSpec::TrackUID(AUDIO_TRACK),
                MatroskaSpec::TrackType(2),
                MatroskaSpec::CodecID("A_OPUS".into()),
                MatroskaSpec::CodecPrivate(opus_head(audio.channels)),
                // Pre-skip (6.5 ms) and the 80 ms a decoder needs after a seek (RFC 7845).
                MatroskaSpec::CodecDelay(6_500_000),
                MatroskaSpec::SeekPreRoll(80_000_000),
                MatroskaSpec::Audio(Master::Full(vec![
                    MatroskaSpec::SamplingFrequency(48_000.0),
                    MatroskaSpec::Channels(audio.channels.into()),
                ])),
            ])));
        }
        let tracks = encode(Within::Segment, |w| w.write(&MatroskaSpec::Tracks(Master::Full(entries))))?;
        let void = encode(Within::Segment, |w| w.write_raw(VOID_ID, &[0; SEEK_SPACE - 2]))?;

        let mut start = header;
        start.extend_from_slice(&SEGMENT_ID);
        let segment_size_at = start.len() as u64;
        start.extend_from_slice(&UNKNOWN_SIZE);
        let segment_start = start.len() as u64;
        let seek_space_at = segment_start;
        start.extend_from_slice(&void);
        let info_at = start.len();
        start.extend_from_slice(&info);
        start.extend_from_slice(&tracks);
        // The duration's 8 bytes follow its id and its one-byte size (0x88).
        let id_and_size = [0x44, 0x89, 0x88];
        let found = start[info_at..].windows(3).position(|w| w == id_and_size).expect("the duration was just written");
        let duration_at = (info_at + found + 3) as u64;
        file.write_all(&start)?;
        Ok(Self {
            file,
            segment_size_at,
            segment_start,
            seek_space_at,
            duration_at,
            end: start.len() as u64,
            cluster: None,
            cues: Vec::new(),
            last_ms: 0,
            track_last_ms: [None; 2],
        })
    }

    /// Adds a frame; `time_ms` counts from the start of the recording. A cluster that is due
    /// (a video keyframe, or [`FLUSH_MS`] old) is written first.
    pub fn write_frame(&mut self, track: u64, time_ms: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        // Two frames of a track never share a time (a replacement publisher's first frame can
        // land on its predecessor's last millisecond): players refuse times that do not increase.
        let slot = &mut self.track_last_ms[usize::from(track != VIDEO_TRACK)];
        let time_ms = match *slot {
            Some(last) if time_ms <= last => last + 1,
            _ => time_ms,
        };
        *slot = Some(time_ms);
        let video_key = track == VIDEO_TRACK && keyframe;
        let due = match &self.cluster {
            None => true,
            Some(c) => (video_key && !c.blocks.is_empty()) || time_ms >= c.start_ms + FLUSH_MS,
        };
        if due {
            self.close_cluster()?;
            self.cluster = Some(Cluster {
                start_ms: time_ms,
                last_ms: time_ms,
                starts_with_keyframe: video_key,
                blocks: Vec::new(),
            });
        }
        let cluster = self.cluster.as_mut().expect("opened above");
        // The other track may run a little behind the frame that opened the cluster: its block
        // time is then negative (the field is signed, RFC 9559 §10.1). Clamping it to the
        // cluster's start would give two frames of one track the same time.
        let Ok(relative) = i16::try_from(time_ms as i64 - cluster.start_ms as i64) else {
            return Ok(()); // more than 32 s behind the other track: no player would show it
        };
        let block = SimpleBlock::new_uncheked(data, track, relative, false, None, false, keyframe);
        let encoded = encode(Within::Cluster, |w| w.write(&MatroskaSpec::from(block)))?;
        cluster.blocks.extend_from_slice(&encoded);
        cluster.last_ms = cluster.last_ms.max(time_ms);
        Ok(())
    }

    /// Writes the open cluster, whole (one write), and makes it durable against a crash of
    /// the process. A failed write (a full disk) is cut off again: the file keeps ending with
    /// a whole cluster, and the cluster is lost.
    pub fn close_cluster(&mut self) -> io::Result<()> {
        let Some(cluster) = self.cluster.take() else { return Ok(()) };
        if cluster.blocks.is_empty() {
            return Ok(());
        }
        let timestamp = encode(Within::Cluster, |w| w.write(&MatroskaSpec::Timestamp(cluster.start_ms)))?;
        let mut bytes = Vec::with_capacity(12 + timestamp.len() + cluster.blocks.len());
        bytes.extend_from_slice(&CLUSTER_ID);
        bytes.extend_from_slice(&size8((timestamp.len() + cluster.blocks.len()) as u64));
        bytes.extend_from_slice(&timestamp);
        bytes.extend_from_slice(&cluster.blocks);
        let position = self.end - self.segment_start;
        self.append(&bytes)?;
        self.last_ms = self.last_ms.max(cluster.last_ms);
        if cluster.starts_with_keyframe {
            self.cues.push((cluster.start_ms, position));
        }
        Ok(())
    }

    /// Bytes in the file so far.
    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// Appends `bytes` whole, or nothing.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        super::file::append_whole(&mut self.file, &mut self.end, bytes)
    }

    /// The latest frame time in the file (written clusters), in ms.
    pub fn duration_ms(&self) -> u64 {
        self.last_ms
    }

    /// Ends the file: the last cluster, cues, the seek head, the duration and the segment size.
    /// On a full disk the last cluster and the cues are left out (players then seek without
    /// them); what is written in place needs no new space.
    pub fn finish(mut self) -> io::Result<u64> {
        let _ = self.close_cluster();
        let duration = self.last_ms;
        let cues_position = self.end - self.segment_start;
        if !self.cues.is_empty() {
            // Without room for them the file still plays; players seek by scanning.
            let _ = self.write_cues(cues_position);
        }
        self.file.seek(SeekFrom::Start(self.duration_at))?;
        self.file.write_all(&(duration as f64).to_be_bytes())?;
        self.file.seek(SeekFrom::Start(self.segment_size_at))?;
        self.file.write_all(&size8(self.end - self.segment_start))?;
        self.file.sync_all()?;
        Ok(self.end)
    }

    /// Appends the cues and points the reserved seek head at them.
    fn write_cues(&mut self, cues_position: u64) -> io::Result<()> {
        let points = self
            .cues
            .iter()
            .map(|&(time, position)| {
                MatroskaSpec::CuePoint(Master::Full(vec![
                    MatroskaSpec::CueTime(time),
                    MatroskaSpec::CueTrackPositions(Master::Full(vec![
                        MatroskaSpec::CueTrack(VIDEO_TRACK),
                        MatroskaSpec::CueClusterPosition(position),
                    ])),
                ]))
            })
            .collect();
        let cues = encode(Within::Segment, |w| w.write(&MatroskaSpec::Cues(Master::Full(points))))?;
        self.append(&cues)?;
        let seek_head = encode(Within::Segment, |w| {
            w.write(&MatroskaSpec::SeekHead(Master::Full(vec![MatroskaSpec::Seek(Master::Full(vec![
                MatroskaSpec::SeekID(CUES_ID.to_vec()),
                MatroskaSpec::SeekPosition(cues_position),
            ]))])))
        })?;
        // The rest of the reserved space stays a Void element (id, one-byte size, zeros).
        let rest = SEEK_SPACE - seek_head.len();
        let void = encode(Within::Segment, |w| w.write_raw(VOID_ID, &vec![0; rest - 2]))?;
        self.file.seek(SeekFrom::Start(self.seek_space_at))?;
        self.file.write_all(&seek_head)?;
        self.file.write_all(&void)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webm_iterable::WebmIterator;

    /// Every block's absolute time, per track, as a reader computes it.
    fn block_times(path: &Path) -> Vec<(u64, i64)> {
        let mut cluster = 0i64;
        let mut times = Vec::new();
        for tag in WebmIterator::new(File::open(path).unwrap(), &[]) {
            match tag.expect("the file parses") {
                MatroskaSpec::Timestamp(t) => cluster = t as i64,
                tag @ MatroskaSpec::SimpleBlock(_) => {
                    let block = SimpleBlock::try_from(&tag).expect("a block");
                    times.push((block.track, cluster + i64::from(block.timestamp)));
                }
                _ => {}
            }
        }
        times
    }

    #[test]
    fn a_track_behind_the_cluster_start_keeps_its_own_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lag.webm");
        let video = VideoTrack { codec_id: "V_VP8", width: 64, height: 48, codec_private: None };
        let mut file = WebmFile::create(&path, Some(&video), Some(&AudioTrack { channels: 2 })).unwrap();
        // Audio runs 50 ms behind video: each video keyframe opens a cluster ahead of the
        // audio frames that belong before it.
        let mut sent = Vec::new();
        for step in 0..60u64 {
            let video_ms = step * 40;
            file.write_frame(VIDEO_TRACK, video_ms, step % 10 == 0, b"v").unwrap();
            sent.push((VIDEO_TRACK, video_ms as i64));
            for audio_ms in [video_ms.saturating_sub(50), video_ms.saturating_sub(30)] {
                if step > 1 {
                    file.write_frame(AUDIO_TRACK, audio_ms, false, b"a").unwrap();
                    sent.push((AUDIO_TRACK, audio_ms as i64));
                }
            }
        }
        file.finish().unwrap();
        let read = block_times(&path);
        assert_eq!(read, sent, "every frame keeps the time it was written with");
    }
}
