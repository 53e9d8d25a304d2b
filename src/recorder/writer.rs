//! The recording thread: every recording's reorder windows, frame assembly and file, fed by the
//! SFU through a bounded queue ([`super::Recorder::offer`]), so that no disk write ever happens
//! on the media path. What it does is reported as [`Event`]s; the server keeps the database.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use super::{
    assemble::{Frame, Ordered, Packet, Reorder, VideoFrames},
    disk::DiskStatus,
    file::RecordingFile,
    h264,
    mp4::{AvcTrack, Mp4File},
    webm::{AudioTrack, VideoTrack, WebmFile},
    Control, Event, Input, MediaCodec, RecordingId, RecordingStart, AUDIO_TRACK, VIDEO_TRACK,
};

/// After a stop, packets still queued for the recording get this long to be written.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// How often progress is reported and the disk's free space measured.
const TICK: Duration = Duration::from_millis(500);
/// Without a video keyframe by then, a recording that expects video fails (with the reason).
const FIRST_KEYFRAME_WAIT: Duration = Duration::from_secs(10);
/// While video waits for a keyframe (the first, or the next after a loss), the publisher is
/// asked again this often (the SFU's own throttle applies on top).
const KEYFRAME_ASK_AGAIN: Duration = Duration::from_secs(1);

struct Recording {
    start: RecordingStart,
    /// The recordings folder.
    folder: PathBuf,
    began: Instant,
    file: Option<RecordingFile>,
    /// When the file's time 0 is (the first video keyframe, or the first audio without video).
    origin: Option<Instant>,
    video: Track,
    audio: Track,
    /// Chosen by the first video packet's codec; a new one for each publisher.
    frames: Option<VideoFrames>,
    /// The video codec in the file.
    video_codec: Option<MediaCodec>,
    /// The video size the file was opened with.
    size: Option<(u16, u16)>,
    last_progress: Instant,
    /// When a keyframe was last asked for, while video waits for one.
    keyframe_asked: Option<Instant>,
}

/// One track's clock: its first packet's RTP time and arrival, mapping RTP time to wall time.
#[derive(Default)]
struct Track {
    reorder: Reorder,
    anchor: Option<(u32, Instant)>,
    /// The publisher the anchor and the sequence numbers belong to.
    origin: u64,
}

impl Track {
    /// Takes `packet`'s publisher as the clock: a replacement starts its own numbering, so the
    /// reorder window and the anchor begin again with it (wall time stays continuous).
    /// Returns whether the publisher changed.
    fn follow(&mut self, packet: &Packet) -> bool {
        let changed = self.anchor.is_some() && self.origin != packet.origin;
        if changed {
            self.reorder = Reorder::default();
            self.anchor = None;
        }
        self.origin = packet.origin;
        self.anchor.get_or_insert((packet.rtp_ts, packet.arrival));
        changed
    }

    /// When a frame with RTP time `rtp_ts` was captured, as this track's first packet arrived.
    fn wall_time(&self, rtp_ts: u32, clock_rate: u32) -> Option<Instant> {
        let (first_ts, first_arrival) = self.anchor?;
        let ticks = rtp_ts.wrapping_sub(first_ts) as i32 as i64;
        let micros = ticks * 1_000_000 / i64::from(clock_rate);
        if micros >= 0 {
            first_arrival.checked_add(Duration::from_micros(micros as u64))
        } else {
            first_arrival.checked_sub(Duration::from_micros((-micros) as u64))
        }
    }
}

pub(super) fn run(
    controls: Receiver<Control>,
    inputs: Receiver<Input>,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    folder: PathBuf,
    disk: &DiskStatus,
) {
    let mut recordings: HashMap<RecordingId, Recording> = HashMap::new();
    // Stopped recordings finish once the packets queued before the stop are written.
    let mut stopping: Vec<(RecordingId, Instant, Option<String>)> = Vec::new();
    let mut ordered = Vec::new();
    let mut last_tick = Instant::now();
    watch_disk(disk, &folder, &mut recordings, &events);
    'serving: loop {
        while let Ok(control) = controls.try_recv() {
            match control {
                Control::Start(start) => {
                    let id = start.id;
                    let _ = events.send(Event::Started(start.clone()));
                    let report = disk.report();
                    if report.low {
                        let _ = events.send(Event::Failed { id, reason: format!("not recorded: {}", report.reason()) });
                        continue;
                    }
                    let now = Instant::now();
                    recordings.insert(
                        id,
                        Recording {
                            start,
                            folder: folder.clone(),
                            began: now,
                            file: None,
                            origin: None,
                            video: Track::default(),
                            audio: Track::default(),
                            frames: None,
                            video_codec: None,
                            size: None,
                            last_progress: now,
                            keyframe_asked: None,
                        },
                    );
                }
                Control::Stop { id, reason } => stopping.push((id, Instant::now(), reason)),
                Control::Finish => break 'serving,
            }
        }
        match inputs.recv_timeout(TICK) {
            Ok(Input { id, video, codec, packet }) => {
                let Some(recording) = recordings.get_mut(&id) else { continue };
                let had_file = recording.file.is_some();
                let taken = recording.take(video, codec, packet, &mut ordered);
                if let Err(reason) = taken {
                    if let Some(recording) = recordings.remove(&id) {
                        let _ = events.send(recording.end(Some(reason)));
                    }
                    continue;
                }
                if video && recording.wants_keyframe(Instant::now()) {
                    let _ = events.send(Event::KeyframeWanted { id });
                }
                if let (false, Some(file)) = (had_file, &recording.file) {
                    let container = file.container();
                    let _ = events.send(Event::Described {
                        id,
                        container,
                        file_name: format!("{}.{container}", recording.start.file_stem),
                        video: recording.size.zip(recording.video_codec).map(|((w, h), codec)| (codec.id(), w, h)),
                        audio: recording.start.has_audio.then_some("opus"),
                    });
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        stopping.retain_mut(|(id, since, reason)| {
            if now.duration_since(*since) < STOP_GRACE {
                return true;
            }
            if let Some(recording) = recordings.remove(id) {
                let _ = events.send(recording.end(reason.take()));
            }
            false
        });
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            watch_disk(disk, &folder, &mut recordings, &events);
            let mut failed = Vec::new();
            for (id, recording) in &mut recordings {
                if recording.file.is_none()
                    && recording.start.has_video
                    && now.duration_since(recording.began) > FIRST_KEYFRAME_WAIT
                {
                    failed.push(*id);
                    continue;
                }
                if now.duration_since(recording.last_progress) >= Duration::from_secs(1) {
                    recording.last_progress = now;
                    if let Some(file) = &recording.file {
                        let _ = events.send(Event::Progress {
                            id: *id,
                            bytes: file.bytes(),
                            duration_ms: file.duration_ms(),
                        });
                    }
                }
            }
            for id in failed {
                if let Some(recording) = recordings.remove(&id) {
                    let reason = "no video keyframe arrived in 10 s: nothing could be recorded".to_owned();
                    let _ = events.send(recording.end(Some(reason)));
                }
            }
        }
    }
    // The server is stopping: finish what is open. A recording whose broadcast had already
    // ended is simply complete; the others say why they end here.
    for (id, recording) in recordings.drain() {
        let ended = stopping.iter_mut().find(|(stopped, ..)| *stopped == id).map(|(.., reason)| reason.take());
        let reason = ended.unwrap_or_else(|| Some("the server was stopped during the broadcast".to_owned()));
        let _ = events.send(recording.end(reason));
    }
}

/// Measures the free space; crossing below the minimum ends every running recording (each file
/// finished and playable) and is logged once, as is the way back.
fn watch_disk(
    disk: &DiskStatus,
    folder: &std::path::Path,
    recordings: &mut HashMap<RecordingId, Recording>,
    events: &tokio::sync::mpsc::UnboundedSender<Event>,
) {
    let Some(report) = disk.measure(folder) else { return };
    if !report.low {
        tracing::info!(free = report.free, "the recordings disk has room again: new recordings start");
        return;
    }
    tracing::warn!(ended = recordings.len(), "recording stops: {}", report.reason());
    for (_, recording) in recordings.drain() {
        let _ = events.send(recording.end(Some(format!("stopped: {}", report.reason()))));
    }
}

impl Recording {
    /// One packet in; frames out into the file. An error ends the recording with its reason.
    fn take(
        &mut self,
        video: bool,
        codec: MediaCodec,
        packet: Packet,
        ordered: &mut Vec<Ordered>,
    ) -> Result<(), String> {
        if video {
            if self.video.follow(&packet) {
                self.frames = None; // a replacement: its own frames
            }
            let mut frames = match self.frames.take() {
                Some(frames) => frames,
                None => match self.video_codec {
                    // A replacement may continue the file only with the same codec.
                    Some(in_file) if in_file != codec => {
                        return Err(format!(
                            "the video codec changed from {} to {}: this recording ends here",
                            in_file.name(),
                            codec.name()
                        ))
                    }
                    _ => VideoFrames::for_codec(codec)?,
                },
            };
            self.video.reorder.push(packet, ordered);
            let mut written = Ok(());
            for item in ordered.drain(..) {
                if let Some(frame) = frames.push(item) {
                    if written.is_ok() {
                        written = self.write_video(frame, &frames);
                    }
                }
            }
            self.frames = Some(frames);
            written?;
        } else {
            if codec != MediaCodec::Opus {
                return Err(format!("recording {} audio is not supported (Opus is)", codec.name()));
            }
            self.audio.follow(&packet);
            self.audio.reorder.push(packet, ordered);
            for item in ordered.drain(..) {
                if let Ordered::Packet(packet) = item {
                    self.write_audio(&packet)?;
                }
            }
        }
        Ok(())
    }

    /// Whether to ask the publisher for a keyframe now: video waits for one (nothing written
    /// yet, or a loss since the last), and the last ask is [`KEYFRAME_ASK_AGAIN`] old.
    fn wants_keyframe(&mut self, now: Instant) -> bool {
        let waiting = self.file.is_none() || self.frames.as_ref().is_some_and(VideoFrames::needs_keyframe);
        if !waiting {
            self.keyframe_asked = None;
            return false;
        }
        match self.keyframe_asked {
            Some(asked) if now.duration_since(asked) < KEYFRAME_ASK_AGAIN => false,
            _ => {
                self.keyframe_asked = Some(now);
                true
            }
        }
    }

    /// Creates the file, its container chosen by the video (`None`: audio only, WebM).
    fn open(&mut self, video: Option<(&VideoFrames, u16, u16)>, origin: Instant) -> Result<(), String> {
        let channels = self.start.has_audio.then_some(2);
        let path = |container: &str| self.folder.join(format!("{}.{container}", self.start.file_stem));
        let cannot = |path: &std::path::Path, err: std::io::Error| format!("cannot create {}: {err}", path.display());
        let file = match video {
            Some((VideoFrames::H264(h264), ..)) => {
                let path = path("mp4");
                let (Some(sps), Some(pps)) = (h264.params.sps.as_deref(), h264.params.pps.as_deref()) else {
                    return Ok(()); // a keyframe always has them; wait for one that does
                };
                let facts = h264::parse_sps(sps).ok_or("the H.264 sequence parameter set cannot be read")?;
                let track = AvcTrack { sps, pps, facts };
                RecordingFile::Mp4(Mp4File::create(&path, Some(&track), channels).map_err(|err| cannot(&path, err))?)
            }
            Some((VideoFrames::Vp8(_), width, height)) => {
                let path = path("webm");
                let track = VideoTrack { codec_id: "V_VP8", width, height };
                let audio = channels.map(|channels| AudioTrack { channels });
                RecordingFile::Webm(
                    WebmFile::create(&path, Some(&track), audio.as_ref()).map_err(|err| cannot(&path, err))?,
                )
            }
            None => {
                let path = path("webm");
                let audio = channels.map(|channels| AudioTrack { channels });
                RecordingFile::Webm(WebmFile::create(&path, None, audio.as_ref()).map_err(|err| cannot(&path, err))?)
            }
        };
        self.file = Some(file);
        self.origin = Some(origin);
        Ok(())
    }

    fn write_video(&mut self, frame: Frame, frames: &VideoFrames) -> Result<(), String> {
        let Some(at) = self.video.wall_time(frame.rtp_ts, 90_000) else { return Ok(()) };
        if self.file.is_none() {
            // The file begins at the first keyframe (its size is the track's size).
            let Some((width, height)) = frame.size else { return Ok(()) };
            self.open(Some((frames, width, height)), at)?;
            if self.file.is_none() {
                return Ok(());
            }
            self.size = Some((width, height));
            self.video_codec = Some(frames.codec());
        }
        self.write(VIDEO_TRACK, at, frame.keyframe, &frame.data)
    }

    fn write_audio(&mut self, packet: &Packet) -> Result<(), String> {
        let Some(at) = self.audio.wall_time(packet.rtp_ts, 48_000) else { return Ok(()) };
        if self.file.is_none() {
            if self.start.has_video {
                return Ok(()); // waiting for the first keyframe
            }
            self.open(None, at)?;
        }
        self.write(AUDIO_TRACK, at, false, &packet.payload)
    }

    fn write(&mut self, track: u64, at: Instant, keyframe: bool, data: &[u8]) -> Result<(), String> {
        let (Some(file), Some(origin)) = (self.file.as_mut(), self.origin) else { return Ok(()) };
        let Some(since) = at.checked_duration_since(origin) else { return Ok(()) }; // before the start
        file.write_frame(track, since.as_millis() as u64, keyframe, data)
            .map_err(|err| format!("stopped: the recordings disk refused a write ({err}); the file plays up to there"))
    }

    /// Closes the file; `reason` says why it ends early (failed when nothing was written).
    fn end(self, reason: Option<String>) -> Event {
        let id = self.start.id;
        match self.file {
            Some(file) => {
                let duration_ms = file.duration_ms();
                match file.finish() {
                    Ok(bytes) => Event::Ended { id, bytes, duration_ms, reason },
                    Err(err) => Event::Failed { id, reason: format!("cannot finish the file: {err}") },
                }
            }
            None => Event::Failed { id, reason: reason.unwrap_or_else(|| "nothing was recorded".to_owned()) },
        }
    }
}
