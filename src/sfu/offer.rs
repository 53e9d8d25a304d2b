//! Reading offers and trickle fragments before str0m sees them, so that a bad one gets a precise
//! reason (RFC 9725 asks for 400 on a malformed offer and 406 when nothing can be negotiated), and
//! fixing up answers.

use std::collections::HashMap;

use str0m::media::{Direction, MediaKind};

use super::api::SfuError;

/// What the server does with each codec it may meet, by the name in `a=rtpmap`.
const SUPPORTED: &[&str] = &["opus", "vp8", "vp9", "h264", "av1"];
/// Helper formats that never carry media by themselves.
const HELPERS: &[&str] = &["rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Audio or video; `None` for any other m-line (data channels, text).
    pub kind: Option<MediaKind>,
    pub mid: Option<String>,
    /// As the offerer sees it (`a=sendrecv` when none is given, RFC 8866 §6.7).
    pub direction: Direction,
    /// Port 0 outside the BUNDLE group, or without `a=bundle-only`: no media. A max-bundle offer
    /// writes every section after the first as port 0 + `a=bundle-only` (RFC 8843 §7.3.1):
    /// those are live.
    pub rejected: bool,
    /// Lowercase codec names from `a=rtpmap`, helpers excluded.
    pub codecs: Vec<String>,
}

impl MediaSection {
    pub fn is_av(&self) -> bool {
        self.kind.is_some()
    }

    pub fn sends(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::SendRecv)
    }

    pub fn receives(&self) -> bool {
        matches!(self.direction, Direction::RecvOnly | Direction::SendRecv)
    }

    fn usable(&self) -> bool {
        self.codecs.iter().any(|c| SUPPORTED.contains(&c.as_str()))
    }
}

/// Which way media flows for the offerer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// WHIP: the offerer sends.
    Publish,
    /// WHEP: the offerer receives.
    View,
}

/// Checks an offer's shape and returns its media sections in order.
pub fn inspect(sdp: &str, intent: Intent) -> Result<Vec<MediaSection>, SfuError> {
    let bad = |why: &str| SfuError::BadOffer(why.to_owned());
    let sdp = sdp.trim_start_matches('\u{feff}');
    if sdp.trim().is_empty() {
        return Err(bad("the body is empty; send an SDP offer"));
    }
    if !sdp.starts_with("v=0") {
        return Err(bad("the body is not an SDP offer (it must start with \"v=0\")"));
    }
    let mut sections: Vec<MediaSection> = Vec::new();
    // Per section: port 0, and `a=bundle-only`; decided once the BUNDLE group is known.
    let mut port_zero: Vec<(bool, bool)> = Vec::new();
    let mut bundle: Vec<&str> = Vec::new();
    let mut payload_types = PayloadTypes::default();
    let mut has_fingerprint = false;
    let mut has_ufrag = false;
    for raw in sdp.lines() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(SfuError::BadOffer(format!("malformed SDP line: {:?}", truncate(line, 60))));
        }
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let kind = match parts.next().unwrap_or_default() {
                "audio" => Some(MediaKind::Audio),
                "video" => Some(MediaKind::Video),
                _ => None,
            };
            let port = parts.next().unwrap_or_default();
            if parts.next().is_none() {
                return Err(SfuError::BadOffer(format!("malformed m= line: {:?}", truncate(line, 60))));
            }
            sections.push(MediaSection {
                kind,
                mid: None,
                direction: Direction::SendRecv,
                rejected: false,
                codecs: Vec::new(),
            });
            port_zero.push((port == "0", false));
            continue;
        }
        if let Some(attr) = line.strip_prefix("a=") {
            if attr.starts_with("fingerprint:") {
                has_fingerprint = true;
            } else if attr.starts_with("ice-ufrag:") {
                has_ufrag = true;
            }
            if let Some(mids) = attr.strip_prefix("group:BUNDLE") {
                bundle.extend(mids.split_whitespace());
                continue;
            }
            let Some(section) = sections.last_mut() else { continue };
            if attr == "bundle-only" {
                if let Some(last) = port_zero.last_mut() {
                    last.1 = true;
                }
            } else if let Some(mid) = attr.strip_prefix("mid:") {
                section.mid = Some(mid.trim().to_owned());
            } else if let Some(direction) = direction_attribute(attr) {
                section.direction = direction;
            } else if let Some(map) = attr.strip_prefix("rtpmap:") {
                let name = map.split_whitespace().nth(1).and_then(|enc| enc.split('/').next()).unwrap_or_default();
                let name = name.to_ascii_lowercase();
                if !HELPERS.contains(&name.as_str()) {
                    section.codecs.push(name);
                }
                payload_types.note(sections.len() - 1, map, Said::Rtpmap);
            } else if let Some(fmtp) = attr.strip_prefix("fmtp:") {
                payload_types.note(sections.len() - 1, fmtp, Said::Fmtp);
            }
        }
    }
    for (section, (zero, bundle_only)) in sections.iter_mut().zip(port_zero) {
        let bundled = section.mid.as_deref().is_some_and(|mid| bundle.contains(&mid));
        section.rejected = zero && !(bundle_only && bundled);
    }
    payload_types.forget_rejected(&sections);
    let media: Vec<&MediaSection> = sections.iter().filter(|s| s.is_av() && !s.rejected).collect();
    if media.is_empty() {
        return Err(bad("the offer has no audio or video"));
    }
    if !has_fingerprint {
        return Err(bad("the offer has no DTLS fingerprint (a=fingerprint)"));
    }
    if !has_ufrag {
        return Err(bad("the offer has no ICE credentials (a=ice-ufrag)"));
    }
    payload_types.check_shared()?;
    let directed: Vec<&&MediaSection> = match intent {
        Intent::Publish => media.iter().filter(|s| s.sends()).collect(),
        Intent::View => media.iter().filter(|s| s.receives()).collect(),
    };
    if directed.is_empty() {
        return Err(bad(match intent {
            Intent::Publish => "the offer sends no media (WHIP needs sendonly or sendrecv audio/video)",
            Intent::View => "the offer receives no media (WHEP needs recvonly audio/video)",
        }));
    }
    if !directed.iter().any(|s| s.usable()) {
        let offered: Vec<&str> = directed.iter().flat_map(|s| s.codecs.iter().map(String::as_str)).collect();
        return Err(SfuError::NoCommonCodec(format!(
            "offered {}; this server takes Opus, VP8, VP9, H.264 and AV1",
            if offered.is_empty() { "none".to_owned() } else { offered.join(", ") }
        )));
    }
    Ok(sections)
}

/// Which attribute described a payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Said {
    Rtpmap,
    Fmtp,
}

/// Every `a=rtpmap` and `a=fmtp` of the offer's live m-sections, by payload type.
///
/// All bundled m-sections are one RTP session, so a payload type used in several of them must
/// stand for one codec configuration in all of them: same encoding name, clock rate and
/// parameters (RFC 8843 §9.1). An offer that breaks this cannot be demultiplexed, and str0m
/// asserts on it, so it is refused here with the reason.
#[derive(Default)]
struct PayloadTypes<'a> {
    /// (payload type, attribute, m-section index, normalised value), in offer order.
    said: Vec<(&'a str, Said, usize, String)>,
}

impl<'a> PayloadTypes<'a> {
    fn note(&mut self, section: usize, attr: &'a str, what: Said) {
        let (pt, value) = attr.trim().split_once(char::is_whitespace).unwrap_or((attr.trim(), ""));
        let value = match what {
            // Encoding names are case-insensitive (RFC 8866 §6.6).
            Said::Rtpmap => value.trim().to_ascii_lowercase(),
            // Parameter order carries no meaning.
            Said::Fmtp => {
                let mut params: Vec<&str> = value.split(';').map(str::trim).filter(|p| !p.is_empty()).collect();
                params.sort_unstable();
                params.join(";")
            }
        };
        self.said.push((pt, what, section, value));
    }

    /// A rejected section carries no media: its payload types clash with nothing.
    fn forget_rejected(&mut self, sections: &[MediaSection]) {
        self.said.retain(|(_, _, section, _)| sections.get(*section).is_some_and(|s| !s.rejected));
    }

    fn check_shared(&self) -> Result<(), SfuError> {
        // The first section to describe each payload type, and how (one pass: this runs on the
        // media task, for offers of up to the body limit).
        let mut first: HashMap<(&str, Said), (usize, &str)> = HashMap::new();
        for (pt, what, section, value) in &self.said {
            let (first_section, first_value) = *first.entry((*pt, *what)).or_insert((*section, value.as_str()));
            if first_section == *section || first_value == value {
                continue;
            }
            let attribute = match what {
                Said::Rtpmap => "a=rtpmap",
                Said::Fmtp => "a=fmtp",
            };
            return Err(SfuError::BadOffer(format!(
                "payload type {} is {attribute} {:?} in m-section {} but {:?} in m-section {}; \
                 bundled m-sections must give a payload type one codec configuration (RFC 8843 §9.1)",
                truncate(pt, 8),
                truncate(first_value, 60),
                first_section + 1,
                truncate(value, 60),
                section + 1,
            )));
        }
        Ok(())
    }
}

/// `a=sendonly` and its kin.
fn direction_attribute(attr: &str) -> Option<Direction> {
    match attr {
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "sendrecv" => Some(Direction::SendRecv),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// A parsed `application/trickle-ice-sdpfrag` body (RFC 8840).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TrickleFragment {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `candidate:...` values (without `a=`).
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

/// Most candidates one trickle PATCH may carry: a client gathers a handful per interface; each
/// is parsed and checked on the media task.
pub const MAX_CANDIDATES_PER_FRAGMENT: usize = 64;

pub fn parse_fragment(body: &str) -> Result<TrickleFragment, SfuError> {
    let mut fragment = TrickleFragment::default();
    for raw in body.lines() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            if line.starts_with("m=") || line.len() > 1 && line.as_bytes()[1] == b'=' {
                continue;
            }
            return Err(SfuError::BadRequest(format!("malformed SDP fragment line: {:?}", truncate(line, 60))));
        };
        if let Some(ufrag) = attr.strip_prefix("ice-ufrag:") {
            fragment.ufrag = Some(ufrag.trim().to_owned());
        } else if let Some(pwd) = attr.strip_prefix("ice-pwd:") {
            fragment.pwd = Some(pwd.trim().to_owned());
        } else if attr.starts_with("candidate:") {
            if fragment.candidates.len() == MAX_CANDIDATES_PER_FRAGMENT {
                return Err(SfuError::BadRequest(format!(
                    "a trickle fragment may carry at most {MAX_CANDIDATES_PER_FRAGMENT} candidates"
                )));
            }
            fragment.candidates.push(attr.to_owned());
        } else if attr == "end-of-candidates" {
            fragment.end_of_candidates = true;
        }
    }
    Ok(fragment)
}

/// Gives the answer's m-lines the `msid` of their pair, so that a browser puts the audio and video
/// of one pair in one `MediaStream` (str0m invents one stream id per m-line for a recvonly offer).
/// `stream_for_mid` names the stream of an m-line; lines it returns `None` for are left alone.
pub fn set_msids(answer: &str, stream_for_mid: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(answer.len() + 128);
    let mut current: Option<String> = None;
    let lines: Vec<&str> = answer.split("\r\n").collect();
    // First pass: find each section's mid so lines before `a=mid` are handled too.
    let mut mids: Vec<Option<String>> = Vec::new();
    for line in &lines {
        if line.starts_with("m=") {
            mids.push(None);
        } else if let (Some(mid), Some(last)) = (line.strip_prefix("a=mid:"), mids.last_mut()) {
            *last = Some(mid.to_owned());
        }
    }
    let mut section = 0usize;
    let mut in_media = false;
    for line in lines.iter() {
        if line.starts_with("m=") {
            if in_media {
                section += 1;
            }
            in_media = true;
            current =
                mids.get(section).cloned().flatten().and_then(|mid| stream_for_mid(&mid).map(|s| format!("{s} {mid}")));
        }
        if let Some(msid) = current.as_deref() {
            if line.starts_with("a=msid:") {
                out.push_str("a=msid:");
                out.push_str(msid);
                out.push_str("\r\n");
                continue;
            }
            if let Some(rest) = line.strip_prefix("a=ssrc:") {
                if let Some((ssrc, attr)) = rest.split_once(' ') {
                    if attr.starts_with("msid:") {
                        out.push_str(&format!("a=ssrc:{ssrc} msid:{msid}\r\n"));
                        continue;
                    }
                }
            }
        }
        out.push_str(line);
        if !line.is_empty() {
            out.push_str("\r\n");
        }
    }
    out
}

/// Puts each answer m-line's formats in the order of the matching offer m-line. A sender uses
/// the first codec of the answer it can, and str0m lists its own order; following the offer keeps
/// the offerer's choice (a browser's `setCodecPreferences`, the broadcaster's codec setting).
pub fn follow_offer_order(answer: &str, offer: &str) -> String {
    let offered: Vec<Vec<&str>> = offer
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("m="))
        .map(|m| m.split_whitespace().skip(3).collect())
        .collect();
    let mut index = 0;
    let mut out = String::with_capacity(answer.len());
    for line in answer.split_inclusive("\r\n") {
        let Some(m) = line.strip_prefix("m=") else {
            out.push_str(line);
            continue;
        };
        let body = m.trim_end_matches("\r\n");
        let mut parts = body.split_whitespace();
        let head: Vec<&str> = parts.by_ref().take(3).collect();
        let mut formats: Vec<&str> = parts.collect();
        if let Some(order) = offered.get(index) {
            formats.sort_by_key(|f| order.iter().position(|o| o == f).unwrap_or(usize::MAX));
        }
        index += 1;
        out.push_str("m=");
        out.push_str(&head.iter().chain(formats.iter()).copied().collect::<Vec<_>>().join(" "));
        out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "" });
    }
    out
}

/// The offerer's ICE ufrag (session or first media level).
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines().find_map(|line| line.trim_end_matches('\r').strip_prefix("a=ice-ufrag:")).map(str::trim)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";

    fn offer(media: &str) -> String {
        format!("{HEAD}{media}")
    }

    const VIDEO_SEND: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";
    const AUDIO_RECV: &str =
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn a_publish_offer_is_read_section_by_section() {
        let sections = inspect(&offer(VIDEO_SEND), Intent::Publish).unwrap();
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].kind, Some(MediaKind::Video));
        assert_eq!(sections[0].mid.as_deref(), Some("0"));
        assert_eq!(sections[0].direction, Direction::SendOnly);
        assert_eq!(sections[0].codecs, vec!["vp8"]);
    }

    #[test]
    fn bad_offers_get_their_reason() {
        let cases: Vec<(String, Intent, &str)> = vec![
            (String::new(), Intent::Publish, "empty"),
            ("{\"type\":\"offer\"}".into(), Intent::Publish, "v=0"),
            ("v=0\r\nthis is not sdp\r\n".into(), Intent::Publish, "malformed SDP line"),
            (HEAD.into(), Intent::Publish, "no audio or video"),
            (offer("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"), Intent::Publish, "no audio or video"),
            (offer(AUDIO_RECV), Intent::Publish, "sends no media"),
            (offer(VIDEO_SEND), Intent::View, "receives no media"),
            (offer("m=video\r\n"), Intent::Publish, "malformed m= line"),
            (offer(VIDEO_SEND).replace("a=fingerprint:sha-256 AA:BB\r\n", ""), Intent::Publish, "fingerprint"),
            (offer(VIDEO_SEND).replace("a=ice-ufrag:abcd\r\n", ""), Intent::Publish, "ICE credentials"),
        ];
        for (sdp, intent, expected) in cases {
            let err = inspect(&sdp, intent).unwrap_err();
            assert!(err.to_string().contains(expected), "{sdp:?}: {err} should mention {expected:?}");
        }
    }

    #[test]
    fn an_offer_with_only_unsupported_codecs_is_not_acceptable() {
        let h265 = VIDEO_SEND.replace("VP8/90000", "H265/90000");
        let err = inspect(&offer(&h265), Intent::Publish).unwrap_err();
        assert!(matches!(err, SfuError::NoCommonCodec(ref why) if why.contains("h265")), "{err:?}");
    }

    fn video_recv(mid: u8, port: u16, pt: u8, codec: &str, fmtp: &str) -> String {
        format!(
            "m=video {port} UDP/TLS/RTP/SAVPF {pt} 97\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=recvonly\r\n\
             a=rtpmap:{pt} {codec}/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 {fmtp}\r\n"
        )
    }

    #[test]
    fn one_payload_type_must_mean_one_codec_in_every_bundled_section() {
        // Two codecs behind payload type 96: str0m asserts on this, so it must never get there.
        let two_codecs = offer(&(video_recv(0, 9, 96, "VP8", "apt=96") + &video_recv(1, 9, 96, "H264", "apt=96")));
        let err = inspect(&two_codecs, Intent::View).unwrap_err();
        assert!(matches!(err, SfuError::BadOffer(_)), "{err:?}");
        let why = err.to_string();
        assert!(why.contains("payload type 96") && why.contains("RFC 8843"), "{why}");
        assert!(why.contains("m-section 1") && why.contains("m-section 2"), "{why}");

        // The same retransmission payload type pointing at different codecs.
        let rtx = offer(&(video_recv(0, 9, 96, "VP8", "apt=96") + &video_recv(1, 9, 98, "VP8", "apt=98")));
        let why = inspect(&rtx, Intent::View).unwrap_err().to_string();
        assert!(why.contains("payload type 97") && why.contains("a=fmtp"), "{why}");

        // The same configuration twice is fine, whatever the case and parameter order; so is a
        // conflict in a rejected (port 0) section, which carries no media.
        let same = offer(
            &(video_recv(0, 9, 96, "VP8", "apt=96;x=1")
                + &video_recv(1, 9, 96, "vp8", "x=1; apt=96")
                + &video_recv(2, 0, 96, "H264", "apt=96")),
        );
        assert_eq!(inspect(&same, Intent::View).unwrap().len(), 3);
    }

    #[test]
    fn bundle_only_sections_are_live_and_port_zero_elsewhere_is_rejected() {
        let audio = |mid: u8, port: u16, extra: &str| {
            format!(
                "m=audio {port} UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=recvonly\r\n{extra}\
                 a=rtpmap:111 opus/48000/2\r\n"
            )
        };
        // A max-bundle offer (RFC 8843 §7.3.1): the second section is port 0 + bundle-only.
        let max_bundle = offer(&(video_recv(0, 9, 96, "VP8", "apt=96") + &audio(1, 0, "a=bundle-only\r\n")));
        let sections = inspect(&max_bundle, Intent::View).unwrap();
        assert_eq!(sections.iter().map(|s| s.rejected).collect::<Vec<_>>(), [false, false]);
        // The attribute may come after a=mid, or before it.
        let before_mid =
            max_bundle.replace("a=mid:1\r\na=recvonly\r\na=bundle-only", "a=bundle-only\r\na=mid:1\r\na=recvonly");
        assert!(!inspect(&before_mid, Intent::View).unwrap()[1].rejected);
        // Port 0 without bundle-only, or bundle-only outside the BUNDLE group: rejected.
        let plain = offer(&(video_recv(0, 9, 96, "VP8", "apt=96") + &audio(1, 0, "")));
        assert!(inspect(&plain, Intent::View).unwrap()[1].rejected);
        let outside = offer(&(video_recv(0, 9, 96, "VP8", "apt=96") + &audio(2, 0, "a=bundle-only\r\n")));
        assert!(inspect(&outside, Intent::View).unwrap()[1].rejected);
        // A live bundle-only section's payload types must agree with the others' too.
        let clash = offer(
            &(video_recv(0, 9, 96, "VP8", "apt=96")
                + &video_recv(1, 0, 96, "H264", "apt=96").replace("a=recvonly\r\n", "a=recvonly\r\na=bundle-only\r\n")),
        );
        assert!(inspect(&clash, Intent::View).unwrap_err().to_string().contains("payload type 96"));
    }

    #[test]
    fn answer_formats_follow_the_offer_order() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        let answer =
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\na=mid:0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        let fixed = follow_offer_order(answer, offer);
        assert!(fixed.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97\r\na=mid:0\r\n"), "{fixed}");
        assert!(fixed.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "{fixed}");
    }

    #[test]
    fn trickle_fragments_yield_credentials_and_candidates() {
        let body = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 127.0.0.1 61764 typ host generation 0\r\na=end-of-candidates\r\n";
        let fragment = parse_fragment(body).unwrap();
        assert_eq!(fragment.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(fragment.candidates.len(), 1);
        assert!(fragment.candidates[0].starts_with("candidate:1387637174"));
        assert!(fragment.end_of_candidates);
        assert!(parse_fragment("\u{1}\u{2}garbage").is_err());
    }

    #[test]
    fn msids_are_rewritten_per_pair() {
        let answer = "v=0\r\nm=video 9 X 96\r\na=mid:0\r\na=msid:random1 track1\r\na=ssrc:1 msid:random1 track1\r\nm=audio 9 X 111\r\na=msid:random2 track2\r\na=mid:1\r\na=ssrc:2 cname:x\r\na=ssrc:2 msid:random2 track2\r\n";
        let fixed = set_msids(answer, |_| Some("pair-0".to_owned()));
        assert!(fixed.contains("a=msid:pair-0 0\r\n"), "{fixed}");
        assert!(fixed.contains("a=msid:pair-0 1\r\n"), "an msid before a=mid is found too: {fixed}");
        assert!(fixed.contains("a=ssrc:2 msid:pair-0 1\r\n"));
        assert!(fixed.contains("a=ssrc:2 cname:x\r\n"));
        assert!(!fixed.contains("random"));
    }
}
