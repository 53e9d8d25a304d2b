//! A fragmented MP4 file written live (ISO/IEC 14496-12; boxes encoded by `mp4-atom`), for H.264
//! video (`avc3`: parameter sets travel in the stream too, so a broadcast that changes its
//! resolution at a keyframe stays one playable track, ISO/IEC 14496-15 §5.4) with Opus audio (the Opus mapping of "Encapsulation of Opus in ISO Base Media File
//! Format"). The header (`ftyp`, `moov` with `mvex`) is written first; then every second or at
//! each video keyframe one fragment (`moof` + `mdat`, both tracks) is written whole, so after a
//! crash the file plays up to the last fragment. [`Mp4File::finish`] writes the total duration
//! into the `mehd` reserved in the header.

use std::{
    fs::File,
    io::{self, Seek, SeekFrom, Write},
    path::Path,
};

use mp4_atom::{
    Audio, Avc3, Avcc, Codec, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Mdhd, Mdia, Mehd, Mfhd, Minf, Moof, Moov, Mvex,
    Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url, Visual, Vmhd,
};

use super::{h264::Sps, AUDIO_TRACK, FLUSH_MS, VIDEO_TRACK};

const VIDEO_TIMESCALE: u32 = 90_000;
/// Opus in MP4 counts in 48 kHz samples.
const AUDIO_TIMESCALE: u32 = 48_000;
/// Sample flags (ISO/IEC 14496-12 §8.8.3.1): a sync sample depends on no other; any other video
/// sample depends on others and is not a sync sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The H.264 track as the container describes it.
pub struct AvcTrack<'a> {
    pub sps: &'a [u8],
    pub pps: &'a [u8],
    pub facts: Sps,
}

struct Track {
    id: u32,
    timescale: u32,
    /// Samples of the fragment being gathered: (time in the track's units, sync, data).
    pending: Vec<(u64, bool, Vec<u8>)>,
    /// The last duration written, the guess for a fragment's last sample (the next fragment's
    /// decode time then says exactly where the track is).
    last_duration: u32,
    last_ms: Option<u64>,
}

impl Track {
    fn new(id: u64, timescale: u32, typical_ms: u32) -> Self {
        Self {
            id: id as u32,
            timescale,
            pending: Vec::new(),
            last_duration: typical_ms * timescale / 1000,
            last_ms: None,
        }
    }

    fn units(&self, ms: u64) -> u64 {
        ms * u64::from(self.timescale) / 1000
    }
}

pub struct Mp4File {
    file: File,
    end: u64,
    /// Where the 8 bytes of `mehd`'s fragment duration are.
    mehd_at: u64,
    sequence: u32,
    /// Video first (when there is video), then audio.
    tracks: Vec<Track>,
    fragment_start_ms: Option<u64>,
    /// The end of the latest fragment written, in ms.
    last_ms: u64,
}

impl Mp4File {
    /// Creates the file and writes `ftyp` and `moov`.
    pub fn create(path: &Path, video: Option<&AvcTrack>, audio_channels: Option<u8>) -> io::Result<Self> {
        let mut file = File::create_new(path)?;
        let mut header = Vec::new();
        let fail = |err: mp4_atom::Error| io::Error::other(err.to_string());
        Ftyp {
            major_brand: b"isom".into(),
            minor_version: 512,
            compatible_brands: vec![b"isom".into(), b"iso6".into(), b"mp41".into(), b"Opus".into()],
        }
        .encode(&mut header)
        .map_err(fail)?;
        let mut traks = Vec::new();
        let mut tracks = Vec::new();
        if let Some(video) = video {
            traks.push(video_trak(video));
            tracks.push(Track::new(VIDEO_TRACK, VIDEO_TIMESCALE, 33));
        }
        if let Some(channels) = audio_channels {
            traks.push(audio_trak(channels));
            tracks.push(Track::new(AUDIO_TRACK, AUDIO_TIMESCALE, 20));
        }
        let moov = Moov {
            mvhd: Mvhd { timescale: 1000, rate: 1.into(), volume: 1.into(), next_track_id: 3, ..Default::default() },
            mvex: Some(Mvex {
                mehd: Some(Mehd { fragment_duration: 0 }),
                trex: tracks
                    .iter()
                    .map(|t| Trex { track_id: t.id, default_sample_description_index: 1, ..Default::default() })
                    .collect(),
            }),
            trak: traks,
            ..Default::default()
        };
        let moov_at = header.len();
        moov.encode(&mut header).map_err(fail)?;
        // mehd: size, "mehd", version and flags, then the 64-bit duration.
        let found = header[moov_at..].windows(4).position(|w| w == b"mehd").expect("the mehd was just written");
        let mehd_at = (moov_at + found + 4 + 4) as u64;
        file.write_all(&header)?;
        Ok(Self { file, end: header.len() as u64, mehd_at, sequence: 0, tracks, fragment_start_ms: None, last_ms: 0 })
    }

    /// Adds a frame; `time_ms` counts from the start of the recording. A fragment that is due (a
    /// video keyframe, or [`FLUSH_MS`] gathered) is written first.
    pub fn write_frame(&mut self, track: u64, time_ms: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        let Some(index) = self.tracks.iter().position(|t| u64::from(t.id) == track) else { return Ok(()) };
        // A track's times increase (a replacement's first frame may land on its predecessor's last).
        let time_ms = match self.tracks[index].last_ms {
            Some(last) if time_ms <= last => last + 1,
            _ => time_ms,
        };
        self.tracks[index].last_ms = Some(time_ms);
        let video_key = track == VIDEO_TRACK && keyframe;
        let has_samples = self.tracks.iter().any(|t| !t.pending.is_empty());
        let due = match self.fragment_start_ms {
            None => false,
            Some(start) => has_samples && (video_key || time_ms >= start + FLUSH_MS),
        };
        if due {
            let next = self.tracks[index].units(time_ms);
            self.write_fragment(Some((index, next)))?;
        }
        self.fragment_start_ms.get_or_insert(time_ms);
        let track = &mut self.tracks[index];
        let at = track.units(time_ms);
        // Audio is always a sync sample; video only at a keyframe.
        track.pending.push((at, keyframe || track.id as u64 == AUDIO_TRACK, data.to_vec()));
        Ok(())
    }

    /// Writes the gathered samples as one fragment. `next`: the track whose sample arrived and
    /// that sample's time, which gives that track's last duration exactly.
    fn write_fragment(&mut self, next: Option<(usize, u64)>) -> io::Result<()> {
        self.fragment_start_ms = None;
        if self.tracks.iter().all(|t| t.pending.is_empty()) {
            return Ok(());
        }
        self.sequence += 1;
        let mut trafs = Vec::new();
        let mut payload_sizes = Vec::new();
        for (index, track) in self.tracks.iter_mut().enumerate() {
            if track.pending.is_empty() {
                continue;
            }
            let mut entries = Vec::with_capacity(track.pending.len());
            for (i, (time, sync, data)) in track.pending.iter().enumerate() {
                let following = match track.pending.get(i + 1) {
                    Some((next_time, ..)) => Some(*next_time),
                    None => next.filter(|(n, _)| *n == index).map(|(_, time)| time),
                };
                let duration = match following {
                    Some(next_time) => u32::try_from(next_time.saturating_sub(*time)).unwrap_or(u32::MAX),
                    None => track.last_duration,
                };
                track.last_duration = duration.max(1);
                entries.push(TrunEntry {
                    duration: Some(duration),
                    size: Some(data.len() as u32),
                    flags: Some(if *sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
                    cts: None,
                });
            }
            payload_sizes.push(track.pending.iter().map(|(.., data)| data.len()).sum::<usize>());
            trafs.push(Traf {
                tfhd: Tfhd { track_id: track.id, default_base_is_moof: true, ..Default::default() },
                tfdt: Some(Tfdt { base_media_decode_time: track.pending[0].0 }),
                trun: vec![Trun { data_offset: Some(0), samples: TrunSamples::Explicit(entries) }],
                ..Default::default()
            });
        }
        let fail = |err: mp4_atom::Error| io::Error::other(err.to_string());
        let mut moof = Moof { mfhd: Mfhd { sequence_number: self.sequence }, traf: trafs };
        // The data offsets count from the moof's first byte: measure the moof, then set them
        // (their size does not change with their value).
        let mut measured = Vec::new();
        moof.encode(&mut measured).map_err(fail)?;
        let mut offset = measured.len() + 8;
        for (traf, size) in moof.traf.iter_mut().zip(&payload_sizes) {
            traf.trun[0].data_offset = Some(offset as i32);
            offset += size;
        }
        let mdat_size = 8 + payload_sizes.iter().sum::<usize>();
        let mut bytes = Vec::with_capacity(measured.len() + mdat_size);
        moof.encode(&mut bytes).map_err(fail)?;
        bytes.extend_from_slice(&(mdat_size as u32).to_be_bytes());
        bytes.extend_from_slice(b"mdat");
        let mut end_ms = self.last_ms;
        for track in &mut self.tracks {
            if let Some((time, ..)) = track.pending.last() {
                let end = time + u64::from(track.last_duration);
                end_ms = end_ms.max(end * 1000 / u64::from(track.timescale));
            }
            for (.., data) in track.pending.drain(..) {
                bytes.extend_from_slice(&data);
            }
        }
        self.append(&bytes)?;
        self.last_ms = end_ms;
        Ok(())
    }

    /// Appends `bytes` whole, or nothing (a failed write is cut off again).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        super::file::append_whole(&mut self.file, &mut self.end, bytes)
    }

    /// Writes what is gathered as a fragment (the recording thread calls it when it stops).
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_fragment(None)
    }

    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// The end of the last fragment written, in ms.
    pub fn duration_ms(&self) -> u64 {
        self.last_ms
    }

    /// Writes the last fragment and the duration.
    pub fn finish(mut self) -> io::Result<u64> {
        let _ = self.flush();
        self.file.seek(SeekFrom::Start(self.mehd_at))?;
        self.file.write_all(&self.last_ms.to_be_bytes())?;
        self.file.sync_all()?;
        Ok(self.end)
    }
}

fn video_trak(video: &AvcTrack) -> Trak {
    let (width, height) = (video.facts.width, video.facts.height);
    let avc3 = Avc3 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            horizresolution: 72.into(),
            vertresolution: 72.into(),
            frame_count: 1,
            compressor: "".into(),
            depth: 24,
        },
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: video.facts.profile,
            profile_compatibility: video.facts.compatibility,
            avc_level_indication: video.facts.level,
            length_size: 4,
            sequence_parameter_sets: vec![video.sps.to_vec()],
            picture_parameter_sets: vec![video.pps.to_vec()],
            ext: None,
        },
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    trak(
        Tkhd {
            track_id: VIDEO_TRACK as u32,
            enabled: true,
            in_movie: true,
            width: width.into(),
            height: height.into(),
            ..Default::default()
        },
        VIDEO_TIMESCALE,
        b"vide",
        "ferrocast video",
        Minf { vmhd: Some(Vmhd::default()), ..Default::default() },
        Codec::Avc3(avc3),
    )
}

fn audio_trak(channels: u8) -> Trak {
    let opus = Opus {
        audio: Audio {
            data_reference_index: 1,
            channel_count: channels.into(),
            sample_size: 16,
            sample_rate: 48_000.into(),
        },
        // Pre-skip: what libopus encoders use (as in the WebM OpusHead).
        dops: Dops {
            output_channel_count: channels,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
            channel_mapping: None,
        },
        btrt: None,
    };
    trak(
        Tkhd {
            track_id: AUDIO_TRACK as u32,
            alternate_group: 1,
            enabled: true,
            in_movie: true,
            volume: 1.into(),
            ..Default::default()
        },
        AUDIO_TIMESCALE,
        b"soun",
        "ferrocast audio",
        Minf { smhd: Some(Smhd::default()), ..Default::default() },
        Codec::Opus(opus),
    )
}

/// A track of a fragmented file: its sample table is empty (the fragments hold the samples).
fn trak(tkhd: Tkhd, timescale: u32, handler: &[u8; 4], name: &str, header: Minf, codec: Codec) -> Trak {
    Trak {
        tkhd,
        mdia: Mdia {
            mdhd: Mdhd { timescale, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: handler.into(), name: name.into() },
            minf: Minf {
                dinf: Dinf { dref: Dref { entries: vec![Url { location: String::new() }.into()] } },
                stbl: Stbl {
                    stsd: Stsd { codecs: vec![codec] },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..header
            },
        },
        ..Default::default()
    }
}
