//! The recording thread: every recording's reorder windows, frame assembly and file, fed by the
//! SFU through a bounded queue ([`super::Recorder::offer`]), so that no disk write ever happens
//! on the media path. What it does is reported as [`Event`]s; the server keeps the database.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::{Duration, Instant, SystemTime},
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
    /// The last audio time written: audio placed earlier (once sender reports corrected its
    /// place) is dropped rather than squeezed.
    last_audio_ms: Option<u64>,
    /// The last video time written: a replacement publisher's video starts after it.
    last_video_ms: Option<u64>,
}

/// One track's clock: its first packet's RTP time and arrival map RTP time to wall time; its
/// sender reports map RTP time to the sender's wall clock, which its other track shares.
struct Track {
    clock_rate: u32,
    reorder: Reorder,
    anchor: Option<(u32, Instant)>,
    /// The latest sender report: an RTP time and the sender's wall-clock time for it.
    report: Option<(u32, SystemTime)>,
    /// The publisher the anchor and the sequence numbers belong to.
    origin: u64,
}

/// `base` moved by a signed number of microseconds.
fn shifted<T>(base: T, micros: i64) -> Option<T>
where
    T: std::ops::Add<Duration, Output = T> + std::ops::Sub<Duration, Output = T>,
{
    let by = Duration::from_micros(micros.unsigned_abs());
    Some(if micros >= 0 { base + by } else { base - by })
}

impl Track {
    fn new(clock_rate: u32) -> Self {
        Self { clock_rate, reorder: Reorder::default(), anchor: None, report: None, origin: 0 }
    }

    /// Takes `packet`'s publisher as the clock: a replacement starts its own numbering, so the
    /// reorder window and the anchor begin again with it (wall time stays continuous).
    /// Returns whether the publisher changed.
    fn follow(&mut self, packet: &Packet) -> bool {
        let changed = self.anchor.is_some() && self.origin != packet.origin;
        if changed {
            self.reorder = Reorder::default();
            self.anchor = None;
            self.report = None;
        }
        self.origin = packet.origin;
        self.anchor.get_or_insert((packet.rtp_ts, packet.arrival));
        if packet.sender_report.is_some() {
            self.report = packet.sender_report;
        }
        changed
    }

    /// Microseconds from RTP time `from` to `to` on this track's clock.
    fn micros_between(&self, from: u32, to: u32) -> i64 {
        let ticks = to.wrapping_sub(from) as i32 as i64;
        ticks * 1_000_000 / i64::from(self.clock_rate)
    }

    /// When the sender captured RTP time `rtp_ts`, on its wall clock, once it reported it.
    fn capture(&self, rtp_ts: u32) -> Option<SystemTime> {
        let (report_ts, report_time) = self.report?;
        let micros = self.micros_between(report_ts, rtp_ts);
        let by = Duration::from_micros(micros.unsigned_abs());
        if micros >= 0 {
            report_time.checked_add(by)
        } else {
            report_time.checked_sub(by)
        }
    }

    /// Where a frame with RTP time `rtp_ts` goes on our clock, by this track's first arrival.
    fn wall_time(&self, rtp_ts: u32) -> Option<Instant> {
        let (first_ts, first_arrival) = self.anchor?;
        shifted(first_arrival, self.micros_between(first_ts, rtp_ts))
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
    // A recording continued in a new one (the feed changed codec): packets and stops the SFU
    // still sends under the old id go to the new one.
    let mut continued: HashMap<RecordingId, RecordingId> = HashMap::new();
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
                    recordings.insert(id, Recording::new(start, &folder));
                }
                Control::Stop { id, reason } => {
                    let id = continued.remove(&id).unwrap_or(id);
                    stopping.push((id, Instant::now(), reason));
                }
                Control::Finish => break 'serving,
            }
        }
        match inputs.recv_timeout(TICK) {
            Ok(Input { id, video, codec, packet }) => {
                let id = continued.get(&id).copied().unwrap_or(id);
                match feed(&mut recordings, id, video, codec, packet, &mut ordered, &events) {
                    Ok(()) => {}
                    Err(Stop::Failed(reason)) => {
                        if let Some(recording) = recordings.remove(&id) {
                            let _ = events.send(recording.end(Some(reason)));
                        }
                    }
                    Err(Stop::CodecChanged { from, packet }) => {
                        // The file cannot take the new codec: it ends, and a new recording of the
                        // same feed begins with the packet that showed the change.
                        let Some(old) = recordings.remove(&id) else { continue };
                        let mut start = old.start.clone();
                        start.id = super::new_id();
                        start.file_stem = super::key(start.id);
                        let next = start.id;
                        let _ = events.send(Event::Continued { from: id, start: start.clone() });
                        let why = format!(
                            "the feed changed from {} to {}: it goes on in a new recording",
                            from.name(),
                            codec.name()
                        );
                        let _ = events.send(old.end(Some(why)));
                        recordings.insert(next, Recording::new(start, &folder));
                        continued.retain(|_, to| *to != id);
                        continued.insert(id, next);
                        if let Err(Stop::Failed(reason)) =
                            feed(&mut recordings, next, video, codec, packet, &mut ordered, &events)
                        {
                            if let Some(recording) = recordings.remove(&next) {
                                let _ = events.send(recording.end(Some(reason)));
                            }
                        }
                    }
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

/// Why a recording cannot take a packet.
enum Stop {
    /// It ends, with the reason.
    Failed(String),
    /// Its file has another video codec than the feed now sends: the packet is handed back.
    CodecChanged { from: MediaCodec, packet: Packet },
}

impl From<String> for Stop {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

/// One packet into recording `id`, and what follows from it: a keyframe asked for, the file
/// described once it exists.
fn feed(
    recordings: &mut HashMap<RecordingId, Recording>,
    id: RecordingId,
    video: bool,
    codec: MediaCodec,
    packet: Packet,
    ordered: &mut Vec<Ordered>,
    events: &tokio::sync::mpsc::UnboundedSender<Event>,
) -> Result<(), Stop> {
    let Some(recording) = recordings.get_mut(&id) else { return Ok(()) };
    let had_file = recording.file.is_some();
    recording.take(video, codec, packet, ordered)?;
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
    Ok(())
}

impl Recording {
    fn new(start: RecordingStart, folder: &std::path::Path) -> Self {
        let now = Instant::now();
        Self {
            start,
            folder: folder.to_owned(),
            began: now,
            file: None,
            origin: None,
            video: Track::new(90_000),
            audio: Track::new(48_000),
            frames: None,
            video_codec: None,
            size: None,
            last_progress: now,
            keyframe_asked: None,
            last_audio_ms: None,
            last_video_ms: None,
        }
    }

    /// One packet in; frames out into the file.
    fn take(&mut self, video: bool, codec: MediaCodec, packet: Packet, ordered: &mut Vec<Ordered>) -> Result<(), Stop> {
        if video {
            // A replacement may continue the file only with the same codec.
            if let Some(in_file) = self.video_codec.filter(|c| *c != codec) {
                return Err(Stop::CodecChanged { from: in_file, packet });
            }
            if self.video.follow(&packet) {
                self.frames = None; // a replacement: its own frames
                self.after_written(true);
            }
            let mut frames = match self.frames.take() {
                Some(frames) => frames,
                None => VideoFrames::for_codec(codec)?,
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
                return Err(Stop::Failed(format!("recording {} audio is not supported (Opus is)", codec.name())));
            }
            if self.audio.follow(&packet) {
                self.after_written(false);
            }
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
            Some((frames @ (VideoFrames::Vp8(_) | VideoFrames::Vp9(_) | VideoFrames::Av1(_)), width, height)) => {
                let path = path("webm");
                let (codec_id, codec_private) = match frames {
                    VideoFrames::Vp9(_) => ("V_VP9", None),
                    VideoFrames::Av1(av1) => ("V_AV1", av1.sequence.as_ref().map(|s| s.av1c.clone())),
                    _ => ("V_VP8", None),
                };
                let track = VideoTrack { codec_id, width, height, codec_private };
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
        let Some(at) = self.video.wall_time(frame.rtp_ts) else { return Ok(()) };
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
        let Some(at) = self.audio_time(packet.rtp_ts) else { return Ok(()) };
        if self.file.is_none() {
            if self.start.has_video {
                return Ok(()); // waiting for the first keyframe
            }
            self.open(None, at)?;
        }
        self.write(AUDIO_TRACK, at, false, &packet.payload)
    }

    /// A replacement publisher's track begins one frame after what its predecessor wrote: its
    /// first packet may arrive "earlier" than the last frame written (two clocks), and frames
    /// squeezed into the same millisecond are refused by players.
    fn after_written(&mut self, video: bool) {
        let (track, last, frame) = if video {
            (&mut self.video, self.last_video_ms, Duration::from_millis(34))
        } else {
            (&mut self.audio, self.last_audio_ms, Duration::from_millis(20))
        };
        let (Some(origin), Some(last)) = (self.origin, last) else { return };
        let earliest = origin + Duration::from_millis(last) + frame;
        if let Some((ts, arrival)) = track.anchor {
            if arrival < earliest {
                track.anchor = Some((ts, earliest));
            }
        }
    }

    /// Where audio with RTP time `rtp_ts` goes. Video keeps its own timeline (squeezing or
    /// stretching frames would show); audio is placed on it by the sender's clock once both
    /// tracks of the same publisher have a sender report (RFC 3550 §6.4.1), so what was
    /// captured together is written together however much later video arrives. Until then,
    /// by its own first arrival.
    fn audio_time(&self, rtp_ts: u32) -> Option<Instant> {
        let same_sender = self.video.origin == self.audio.origin;
        let video_start = self.video.anchor.filter(|_| same_sender);
        let mapped = video_start.and_then(|(video_ts, video_arrival)| {
            let audio_capture = self.audio.capture(rtp_ts)?;
            let video_capture = self.video.capture(video_ts)?;
            let micros = match audio_capture.duration_since(video_capture) {
                Ok(after) => after.as_micros() as i64,
                Err(before) => -(before.duration().as_micros() as i64),
            };
            shifted(video_arrival, micros)
        });
        mapped.or_else(|| self.audio.wall_time(rtp_ts))
    }

    fn write(&mut self, track: u64, at: Instant, keyframe: bool, data: &[u8]) -> Result<(), String> {
        let (Some(file), Some(origin)) = (self.file.as_mut(), self.origin) else { return Ok(()) };
        let Some(since) = at.checked_duration_since(origin) else { return Ok(()) }; // before the start
        let ms = since.as_millis() as u64;
        if track == AUDIO_TRACK {
            if self.last_audio_ms.is_some_and(|last| ms <= last) {
                return Ok(());
            }
            self.last_audio_ms = Some(ms);
        } else {
            self.last_video_ms = Some(self.last_video_ms.map_or(ms, |last| last.max(ms)));
        }
        file.write_frame(track, ms, keyframe, data)
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

#[cfg(test)]
mod tests {
    use std::{
        fs::File,
        sync::{
            mpsc::{channel, sync_channel},
            Arc,
        },
    };

    use webm_iterable::{
        matroska_spec::{MatroskaSpec, SimpleBlock},
        WebmIterator,
    };

    use super::*;

    /// A 160×120 VP8 keyframe header, and an interframe's; a frame number follows each.
    const KEY: [u8; 10] = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0xa0, 0x00, 0x78, 0x00];
    const INTER: [u8; 3] = [0x51, 0, 0];

    /// (track, time in ms, frame number) of every block, as a reader computes them.
    fn blocks(path: &std::path::Path) -> Vec<(u64, i64, u16)> {
        let mut cluster = 0i64;
        let mut out = Vec::new();
        for tag in WebmIterator::new(File::open(path).unwrap(), &[]) {
            match tag.expect("the file parses") {
                MatroskaSpec::Timestamp(t) => cluster = t as i64,
                tag @ MatroskaSpec::SimpleBlock(_) => {
                    let block = SimpleBlock::try_from(&tag).unwrap();
                    let data = block.read_frame_data().unwrap().remove(0).data;
                    let number = u16::from_be_bytes([data[data.len() - 2], data[data.len() - 1]]);
                    out.push((block.track, cluster + i64::from(block.timestamp), number));
                }
                _ => {}
            }
        }
        out
    }

    /// Records `inputs` (id 7) through a writer thread as a real recording would be, stopped
    /// once they are queued; answers every block of the file written.
    fn record(has_audio: bool, inputs: Vec<Input>) -> Vec<(u64, i64, u16)> {
        let dir = tempfile::tempdir().unwrap();
        let (control, controls) = channel();
        // A rendezvous: each packet is in the writer's hands before the next is sent, so the
        // stop below comes after all of them however busy the machine (a queue of 10,000 let a
        // loaded test runner stop the recording with frames still queued).
        let (input, queue) = sync_channel(0);
        let (events, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let folder = dir.path().to_owned();
        let writer = std::thread::spawn(move || run(controls, queue, events, folder, &DiskStatus::new(0)));
        let start = RecordingStart {
            id: 7,
            account: "a".into(),
            stream_name: "s".into(),
            source_id: None,
            token_id: "t".into(),
            has_video: true,
            has_audio,
            file_stem: "test".into(),
        };
        control.send(Control::Start(start)).unwrap();
        for packet in inputs {
            input.send(packet).unwrap();
        }
        // The stop waits out its grace for what is queued; then the thread ends with its queue.
        control.send(Control::Stop { id: 7, reason: None }).unwrap();
        std::thread::sleep(STOP_GRACE * 2);
        drop(input);
        writer.join().unwrap();
        let mut file_name = None;
        while let Ok(event) = reports.try_recv() {
            if let Event::Described { file_name: name, .. } = event {
                file_name = Some(name);
            }
        }
        blocks(&dir.path().join(file_name.expect("the file was described")))
    }

    /// A replacement publisher whose first packet arrives "before" the last frame its
    /// predecessor's clock placed: its frames start one frame later, never squeezed together.
    #[test]
    fn a_replacement_arriving_early_continues_after_the_last_frame_written() {
        let t0 = Instant::now();
        let frame = |origin: u64, n: u16, number: u16, arrival: Instant| {
            let mut payload = vec![0x10];
            payload.extend_from_slice(if n.is_multiple_of(30) { &KEY } else { &INTER });
            payload.extend_from_slice(&number.to_be_bytes());
            let packet = Packet {
                origin,
                seq: u64::from(n),
                rtp_ts: u32::from(n) * 3000,
                marker: true,
                payload: Arc::from(payload),
                arrival,
                sender_report: None,
            };
            Input { id: 7, video: true, codec: MediaCodec::Vp8, packet }
        };
        let mut sent = Vec::new();
        // The first publisher's first packet came late (its clock runs 100 ms ahead of capture)...
        for n in 0..30u16 {
            let at = t0 + Duration::from_millis(100) + Duration::from_micros(u64::from(n) * 100_000 / 3);
            sent.push(frame(1, n, n, at));
        }
        // ...and its replacement's first packet arrives right on time, before that clock's end.
        for n in 0..30u16 {
            let at = t0 + Duration::from_millis(1000) + Duration::from_micros(u64::from(n) * 100_000 / 3);
            sent.push(frame(2, n, 100 + n, at));
        }
        let times: Vec<i64> = record(false, sent).iter().map(|b| b.1).collect();
        assert_eq!(times.len(), 60, "{times:?}");
        assert!(times.windows(2).all(|w| w[1] - w[0] >= 20), "frames keep their spacing: {times:?}");
    }

    /// Video captured with audio but arriving 150 ms after it (as an encoder and a pacer make
    /// it): placed by arrival the two drift apart by ~140 ms; placed by the sender reports'
    /// shared clock, frames captured together are written together.
    #[test]
    fn sender_reports_put_audio_and_video_captured_together_at_the_same_time() {
        let t0 = Instant::now();
        let ntp0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut sent = Vec::new();
        for frame in 0..90u16 {
            let capture = Duration::from_micros(u64::from(frame) * 100_000 / 3);
            let mut payload = vec![0x10]; // VP8 descriptor: start of a frame
            payload.extend_from_slice(if frame.is_multiple_of(30) { &KEY } else { &INTER });
            payload.extend_from_slice(&frame.to_be_bytes());
            let rtp_ts = u32::from(frame) * 3000;
            let packet = Packet {
                origin: 1,
                seq: u64::from(frame),
                rtp_ts,
                marker: true,
                payload: Arc::from(payload),
                arrival: t0 + capture + Duration::from_millis(150),
                sender_report: Some((0, ntp0)),
            };
            sent.push(Input { id: 7, video: true, codec: MediaCodec::Vp8, packet });
        }
        for frame in 0..150u16 {
            let capture = Duration::from_millis(u64::from(frame) * 20);
            let packet = Packet {
                origin: 1,
                seq: u64::from(frame),
                rtp_ts: u32::from(frame) * 960,
                marker: false,
                payload: Arc::from([0xfc, (frame >> 8) as u8, frame as u8].as_slice()),
                arrival: t0 + capture + Duration::from_millis(10),
                sender_report: Some((0, ntp0)),
            };
            sent.push(Input { id: 7, video: false, codec: MediaCodec::Opus, packet });
        }
        sent.sort_by_key(|i| i.packet.arrival);
        let written = record(true, sent);
        let time = |track: u64, number: u16| written.iter().find(|b| b.0 == track && b.2 == number).map(|b| b.1);
        let mut compared = 0;
        // Every 100 ms, video frame 3k and audio frame 5k were captured at the same moment.
        for k in 0..30u16 {
            if let (Some(video), Some(audio)) = (time(VIDEO_TRACK, 3 * k), time(AUDIO_TRACK, 5 * k)) {
                assert!(
                    (video - audio).abs() <= 2,
                    "captured together at {} ms: video {video}, audio {audio}",
                    k * 100
                );
                compared += 1;
            }
        }
        assert!(compared >= 25, "{compared} pairs in the file");
    }
}
