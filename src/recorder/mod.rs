//! Recording (README "Recording"): what a publisher sends, written to a file a person can play,
//! download and keep, without transcoding and off the media path.
//!
//! This first part turns RTP into a file: [`assemble`] reorders packets and joins VP8 frames
//! (dropping what a decoder could not use after a loss), [`webm`] writes them into a WebM file
//! that stays playable if the process dies.

pub mod assemble;
pub mod vp8;
pub mod webm;

#[cfg(test)]
mod tests {
    use std::{fs::File, io::BufReader, path::Path, process::Command};

    use rtc::media::io::{ivf_reader::IVFReader, ogg_reader::OggReader};

    use super::{
        vp8,
        webm::{AudioTrack, VideoTrack, WebmFile, AUDIO_TRACK, VIDEO_TRACK},
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
            Some(&VideoTrack { codec_id: "V_VP8", width, height }),
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
        let decode =
            Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&path).args(["-f", "null", "-"]).output().unwrap();
        assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
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
