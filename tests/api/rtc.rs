//! WHIP publishers and WHEP viewers built on the async `webrtc` crate (webrtc-rs): a second,
//! independent WebRTC stack on the other end of the wire, on loopback only.
//!
//! Media is either synthetic, VP8- and Opus-shaped (every video frame carries its number after the
//! VP8 payload header, keyframes have the P bit clear, every audio packet carries its number, so a
//! viewer can tell which publisher a frame came from and in what order), or a real VP8 + Opus clip
//! (`tests/fixtures`, made with ffmpeg) that a viewer reassembles and compares byte for byte.

use std::{
    collections::HashMap,
    fs::File,
    io::BufReader,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use rtc::{
    ice::mdns::MulticastDnsMode,
    interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket},
    media::{
        io::{ivf_reader::IVFReader, ogg_reader::OggReader},
        Sample,
    },
    peer_connection::configuration::{
        interceptor_registry::register_default_interceptors,
        media_engine::{MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9},
    },
    rtcp::payload_feedbacks::{full_intra_request::FullIntraRequest, picture_loss_indication::PictureLossIndication},
    rtp_transceiver::{
        rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind},
        RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
    },
    sansio::Protocol,
    shared::error::Error as RtcError,
};
use webrtc::{
    media_stream::{
        track_local::{static_sample::TrackLocalStaticSample, TrackLocal, TrackLocalEvent},
        track_remote::{TrackRemote, TrackRemoteEvent},
        MediaStreamTrack,
    },
    peer_connection::{
        PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
        RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionState, RTCSessionDescription,
        SettingEngineBuilder,
    },
    runtime::{channel, Sender},
};

use crate::helpers::TestApp;

/// How long a test waits for media before failing.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(15);
/// A publisher stops by itself after this, whatever the test does.
const PUBLISH_LIMIT: Duration = Duration::from_secs(90);
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);

/// The real clip: 3 s of VP8 160x120 at 30 fps (a keyframe each second) and Opus in 20 ms packets.
pub struct Clip {
    pub video: Vec<Bytes>,
    pub audio: Vec<Bytes>,
}

pub fn clip() -> &'static Clip {
    static CLIP: std::sync::OnceLock<Clip> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (mut ivf, _) =
            IVFReader::new(BufReader::new(File::open(dir.join("video.ivf")).expect("video.ivf"))).expect("IVF header");
        let mut video = Vec::new();
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            video.push(frame.freeze());
        }
        let (mut ogg, _) = OggReader::new(BufReader::new(File::open(dir.join("audio.ogg")).expect("audio.ogg")), true)
            .expect("Ogg header");
        let mut audio = Vec::new();
        while let Ok((page, _)) = ogg.parse_next_page() {
            if !page.starts_with(b"OpusTags") && !page.is_empty() {
                audio.push(page.freeze());
            }
        }
        assert!(
            video.len() >= 60 && audio.len() >= 100,
            "the clip has {} frames, {} audio packets",
            video.len(),
            audio.len()
        );
        Clip { video, audio }
    })
}

/// The H.264 fixture (ffmpeg's libx264, 320x240 Constrained Baseline, 30 fps, an IDR with its
/// SPS and PPS each second): one Annex B access unit per frame, as an encoder hands them out.
/// Made with `ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -t 3 -c:v libx264 -profile:v
/// baseline -level 3.0 -pix_fmt yuv420p -x264-params
/// keyint=30:min-keyint=30:scenecut=0:bframes=0:repeat-headers=1 -f h264 video.h264`.
pub fn h264_clip() -> &'static [Bytes] {
    static CLIP: std::sync::OnceLock<Vec<Bytes>> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/video.h264")).unwrap();
        // Cut before each start code that opens a picture's first NAL unit (SPS, or a slice
        // that no SPS/PPS precedes): one slice per picture in the fixture.
        let mut units = Vec::new();
        let mut unit_start = 0;
        let mut previous_vcl = false;
        let mut i = 0;
        while i + 3 < data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                let kind = data[i + 3] & 0x1f;
                let opens = matches!(kind, 7 | 9) || (matches!(kind, 1 | 5) && previous_vcl);
                let code_start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
                if opens && code_start > unit_start {
                    units.push(Bytes::copy_from_slice(&data[unit_start..code_start]));
                    unit_start = code_start;
                }
                previous_vcl = matches!(kind, 1 | 5);
                i += 3;
            } else {
                i += 1;
            }
        }
        units.push(Bytes::copy_from_slice(&data[unit_start..]));
        assert_eq!(units.len(), 90, "3 s at 30 fps");
        units
    })
}

/// The VP9 fixture (ffmpeg's libvpx-vp9, 320x240 profile 0, 30 fps, a keyframe each second), one
/// frame per entry. Made with `ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -t 3 -c:v
/// libvpx-vp9 -b:v 300k -g 30 -keyint_min 30 -deadline realtime -cpu-used 8 -f ivf
/// video-vp9.ivf`.
pub fn vp9_clip() -> &'static [Bytes] {
    static CLIP: std::sync::OnceLock<Vec<Bytes>> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/video-vp9.ivf");
        let (mut ivf, _) = IVFReader::new(BufReader::new(File::open(path).expect("video-vp9.ivf"))).expect("IVF");
        let mut frames = Vec::new();
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            frames.push(frame.freeze());
        }
        assert_eq!(frames.len(), 90, "3 s at 30 fps");
        frames
    })
}

/// What a publisher sends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Numbered VP8-shaped frames, keyframes on request.
    Synthetic,
    /// The real clip, looped (keyframes once a second, whatever is asked).
    Clip,
    /// The H.264 fixture (looped) with the clip's Opus.
    H264Clip,
    /// The VP9 fixture (looped) with the clip's Opus.
    Vp9Clip,
    /// Numbered VP8-shaped frames on three simulcast layers (RIDs `l`, `m`, `h`, one SSRC each,
    /// MID and RID header extensions on every packet as browsers send them); each frame carries
    /// its layer at [`LAYER_BYTE`] and is larger the higher its layer.
    Simulcast,
}

/// The simulcast layers a [`Media::Simulcast`] publisher sends: RID, SSRC, frame size.
pub const SIMULCAST_LAYERS: [(&str, u32, usize); 3] =
    [("l", 0x1111_0001, 600), ("m", 0x1111_0002, 1500), ("h", 0x1111_0003, 3500)];
/// Where a synthetic frame says which simulcast layer it is (0 = l, 1 = m, 2 = h).
pub const LAYER_BYTE: usize = 5;
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// An RTP header extension's bytes as they are (webrtc-rs does not write MID or RID itself).
struct RawExtension(Bytes);

impl rtc::shared::marshal::MarshalSize for RawExtension {
    fn marshal_size(&self) -> usize {
        self.0.len()
    }
}

impl rtc::shared::marshal::Marshal for RawExtension {
    fn marshal_to(&self, buf: &mut [u8]) -> rtc::shared::error::Result<usize> {
        let out = buf.get_mut(..self.0.len()).ok_or(RtcError::ErrBufferTooSmall)?;
        out.copy_from_slice(&self.0);
        Ok(self.0.len())
    }
}

fn raw_extension(uri: &'static str, value: &str) -> rtc::rtp::extension::HeaderExtension {
    rtc::rtp::extension::HeaderExtension::Custom {
        uri: uri.into(),
        extension: Box::new(RawExtension(Bytes::copy_from_slice(value.as_bytes()))),
    }
}
const VIDEO_SSRC: u32 = 0x1111_0000;
const AUDIO_SSRC: u32 = 0x2222_0000;

/// Lets inbound PLI/FIR through to the application (the default chain keeps them), so a test
/// publisher can count keyframe requests and answer them.
struct KeyframeRequestsToApp {
    reads: std::collections::VecDeque<TaggedPacket>,
    writes: std::collections::VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted: Vec<_> = packets
                .iter()
                .filter(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
                .cloned()
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for KeyframeRequestsToApp {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// Loses every `every`-th outgoing video packet on the way to the wire, and every resend (on the
/// same stream or on RTX): a network that drops a share of the video, and no repair gets through.
struct LoseVideo {
    every: u32,
    sent: u32,
    lost: std::collections::HashSet<u16>,
    reads: std::collections::VecDeque<TaggedPacket>,
    writes: std::collections::VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LoseVideo {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &msg.message.packet {
            if rtp.header.ssrc != VIDEO_SSRC && rtp.header.ssrc != AUDIO_SSRC {
                return Ok(()); // a retransmission stream (RTX, RFC 4588): none gets through
            }
            if rtp.header.ssrc == VIDEO_SSRC {
                let seq = rtp.header.sequence_number;
                if self.lost.contains(&seq) {
                    return Ok(());
                }
                self.sent += 1;
                if self.sent.is_multiple_of(self.every) {
                    self.lost.insert(seq);
                    return Ok(());
                }
            }
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for LoseVideo {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

struct Handler {
    gathered: Sender<()>,
    tracks: Sender<Arc<dyn TrackRemote>>,
    state: Arc<Mutex<RTCPeerConnectionState>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        *self.state.lock().unwrap() = state;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.try_send(track);
    }
}

struct Pc {
    pc: Arc<dyn PeerConnection>,
    gathered: webrtc::runtime::Receiver<()>,
    tracks: webrtc::runtime::Receiver<Arc<dyn TrackRemote>>,
    state: Arc<Mutex<RTCPeerConnectionState>>,
}

/// A TURN server a test peer must send everything through (`iceTransportPolicy: relay`).
#[derive(Clone, Debug)]
pub struct RelayOnly {
    pub url: String,
    pub username: String,
    pub credential: String,
}

async fn peer_connection(relay: Option<&RelayOnly>, lose_video: Option<u32>) -> Pc {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    let registry = register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let mut registry = registry
        .with(Slot::from(14_000), KeyframeRequestsToApp { reads: Default::default(), writes: Default::default() });
    if let Some(every) = lose_video {
        // Closest to the wire: resends from the NACK responder pass it too.
        let lose = LoseVideo {
            every,
            sent: 0,
            lost: Default::default(),
            reads: Default::default(),
            writes: Default::default(),
        };
        registry = registry.with(Slot::from(500), lose);
    }
    // mDNS off: nothing may leave loopback.
    let settings = SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled).build();
    let (gathered_tx, gathered) = channel::<()>(1);
    let (tracks_tx, tracks) = channel::<Arc<dyn TrackRemote>>(16);
    let state = Arc::new(Mutex::new(RTCPeerConnectionState::New));
    let handler = Handler { gathered: gathered_tx, tracks: tracks_tx, state: state.clone() };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(match relay {
            None => RTCConfigurationBuilder::new().build(),
            Some(relay) => RTCConfigurationBuilder::new()
                .with_ice_servers(vec![RTCIceServer {
                    urls: vec![relay.url.clone()],
                    username: relay.username.clone(),
                    credential: relay.credential.clone(),
                }])
                .with_ice_transport_policy(RTCIceTransportPolicy::Relay)
                .build(),
        })
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .expect("peer connection");
    Pc { pc: Arc::new(pc), gathered, tracks, state }
}

/// A refused POST: status and plain-text reason.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

/// What a 201 answered.
#[derive(Debug, Clone)]
pub struct Answered {
    pub location: String,
    pub etag: String,
    pub answer: String,
    pub headers: reqwest::header::HeaderMap,
}

/// Which candidates the offer carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// Gathered before the offer (non-trickle).
    InOffer,
    /// Stripped from the offer and sent with PATCH after the answer, as some browser clients do.
    Trickled,
}

/// The offer as a max-bundle offerer writes it (RFC 8843 §7.3.1; GStreamer's webrtcbin does):
/// every m-section after the first on port 0 with `a=bundle-only`.
pub fn as_max_bundle(sdp: &str) -> String {
    let mut out = String::new();
    let mut sections = 0;
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if let Some(m) = line.strip_prefix("m=") {
            sections += 1;
            if sections > 1 {
                let mut parts: Vec<&str> = m.split(' ').collect();
                parts[1] = "0";
                out.push_str(&format!("m={}\r\n", parts.join(" ")));
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
        // Among the section's attributes (after c=, as RFC 8866's order wants).
        if sections > 1 && line.starts_with("a=mid:") {
            out.push_str("a=bundle-only\r\n");
        }
    }
    assert!(sections > 1 && out.contains("a=bundle-only"), "an offer of two sections or more: {sdp}");
    out
}

/// The offer with the first byte of its certificate fingerprint changed: the DTLS certificate the
/// client then presents does not match what its offer announced (RFC 8122 §5).
pub fn with_wrong_fingerprint(sdp: &str) -> String {
    let at = sdp.find("a=fingerprint:sha-256 ").expect("a sha-256 fingerprint") + "a=fingerprint:sha-256 ".len();
    let first = &sdp[at..at + 2];
    let other = if first == "00" { "01" } else { "00" };
    sdp.replace(&format!("a=fingerprint:sha-256 {first}:"), &format!("a=fingerprint:sha-256 {other}:"))
}

/// Offers, POSTs, applies the answer. With [`Candidates::Trickled`] the candidates follow in a
/// PATCH to the session URL; `rewrite` changes the offer before it is sent.
async fn negotiate(
    app: &TestApp,
    pc: &mut Pc,
    url: &str,
    token: Option<&str>,
    candidates: Candidates,
    rewrite: Option<fn(&str) -> String>,
) -> Result<Answered, Refused> {
    let offer = pc.pc.create_offer(None).await.expect("offer");
    pc.pc.set_local_description(offer).await.expect("local description");
    tokio::time::timeout(Duration::from_secs(5), pc.gathered.recv()).await.expect("ICE gathering completes");
    let mut sdp = pc.pc.local_description().await.expect("local description").sdp;
    if let Some(rewrite) = rewrite {
        sdp = rewrite(&sdp);
    }
    let (body, candidate_lines): (String, Vec<String>) = match candidates {
        Candidates::InOffer => (sdp, Vec::new()),
        Candidates::Trickled => {
            let lines: Vec<String> =
                sdp.split("\r\n").filter(|l| l.starts_with("a=candidate:")).map(str::to_owned).collect();
            let stripped: String = sdp
                .split("\r\n")
                .filter(|l| !l.starts_with("a=candidate:") && *l != "a=end-of-candidates")
                .map(|l| format!("{l}\r\n"))
                .collect::<String>()
                .trim_end()
                .to_owned()
                + "\r\n";
            (stripped, lines)
        }
    };
    let client = app.client();
    let mut request = client.post(app.url(url)).header("content-type", "application/sdp").body(body.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    if status != 201 {
        return Err(Refused { status, body: text, headers });
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let answered =
        Answered { location: header("location"), etag: header("etag"), answer: text, headers: headers.clone() };
    pc.pc
        .set_remote_description(RTCSessionDescription::answer(answered.answer.clone()).expect("answer parses"))
        .await
        .expect("remote description");
    if candidates == Candidates::Trickled {
        let ufrag = body.split("\r\n").find_map(|l| l.strip_prefix("a=ice-ufrag:")).unwrap_or_default();
        let pwd = body.split("\r\n").find_map(|l| l.strip_prefix("a=ice-pwd:")).unwrap_or_default();
        let mut fragment =
            format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n");
        for line in &candidate_lines {
            fragment.push_str(line);
            fragment.push_str("\r\n");
        }
        fragment.push_str("a=end-of-candidates\r\n");
        let response = client
            .patch(app.url(&answered.location))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .header("if-match", &answered.etag)
            .body(fragment)
            .send()
            .await
            .expect("PATCH sent");
        assert_eq!(response.status(), 204, "trickle PATCH: {}", response.text().await.unwrap_or_default());
    }
    Ok(answered)
}

// ---- publisher ----------------------------------------------------------------------------

pub struct PublishOptions<'a> {
    pub token: &'a str,
    pub stream: &'a str,
    pub source: Option<&'a str>,
    /// The number of the first frame, to tell publishers apart at the viewer.
    pub first_frame: u32,
    pub candidates: Candidates,
    pub media: Media,
    /// Reach the SFU only through this TURN server.
    pub relay: Option<RelayOnly>,
    /// Lose every n-th video packet (and its resends) on the way out.
    pub lose_video: Option<u32>,
    /// Changes the offer before it is sent ([`as_max_bundle`], [`with_wrong_fingerprint`]).
    pub rewrite_offer: Option<fn(&str) -> String>,
}

impl<'a> PublishOptions<'a> {
    pub fn new(token: &'a str, stream: &'a str) -> Self {
        Self {
            token,
            stream,
            source: None,
            first_frame: 0,
            candidates: Candidates::InOffer,
            media: Media::Synthetic,
            relay: None,
            lose_video: None,
            rewrite_offer: None,
        }
    }
}

pub struct Publisher {
    pub session: Answered,
    pc: Arc<dyn PeerConnection>,
    stop: Arc<AtomicBool>,
    pub keyframe_requests: Arc<AtomicUsize>,
    state: Arc<Mutex<RTCPeerConnectionState>>,
    /// [`Media::Simulcast`]: which of [`SIMULCAST_LAYERS`] are sent (a bit each).
    layers_sending: Arc<AtomicU8>,
}

pub async fn publish(app: &TestApp, options: PublishOptions<'_>) -> Result<Publisher, Refused> {
    let mut pc = peer_connection(options.relay.as_ref(), options.lose_video).await;
    let video_codec = match options.media {
        Media::H264Clip => RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".to_owned(),
            rtcp_feedback: vec![],
        },
        Media::Vp9Clip => RTCRtpCodec {
            mime_type: MIME_TYPE_VP9.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "profile-id=0".to_owned(),
            rtcp_feedback: vec![],
        },
        Media::Synthetic | Media::Clip | Media::Simulcast => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    };
    let opus = RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    };
    // One encoding per (RID, SSRC); the RID is empty unless the track is simulcast.
    let track = |kind, codec: RTCRtpCodec, encodings: &[(&str, u32)], id: &str| {
        let encodings = encodings
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: (*rid).to_owned(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new("publisher".into(), id.into(), id.into(), kind, encodings),
            )
            .expect("track"),
        )
    };
    let video_encodings: Vec<(&str, u32)> = match options.media {
        Media::Simulcast => SIMULCAST_LAYERS.iter().map(|(rid, ssrc, _)| (*rid, *ssrc)).collect(),
        _ => vec![("", VIDEO_SSRC)],
    };
    let video = track(RtpCodecKind::Video, video_codec, &video_encodings, "video");
    let audio = track(RtpCodecKind::Audio, opus, &[("", AUDIO_SSRC)], "audio");
    let sendonly =
        || Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, ..Default::default() });
    let video_tx =
        pc.pc.add_transceiver_from_track(video.clone() as Arc<dyn TrackLocal>, sendonly()).await.expect("video");
    let audio_tx =
        pc.pc.add_transceiver_from_track(audio.clone() as Arc<dyn TrackLocal>, sendonly()).await.expect("audio");

    let mut url = format!("/whip/{}", options.stream);
    if let Some(source) = options.source {
        url.push_str(&format!("?sourceId={source}"));
    }
    let session = negotiate(app, &mut pc, &url, Some(options.token), options.candidates, options.rewrite_offer).await?;
    let payload_type = |tx: Arc<dyn webrtc::rtp_transceiver::RtpTransceiver>| async move {
        let sender = tx.sender().await.expect("sender").expect("has a sender");
        sender.get_parameters().await.expect("parameters").rtp_parameters.codecs.first().expect("a codec").payload_type
    };
    let video_mid = video_tx.mid().await.ok().flatten().unwrap_or_default();
    let video_pt = payload_type(video_tx).await;
    let audio_pt = payload_type(audio_tx).await;

    let stop = Arc::new(AtomicBool::new(false));
    let keyframe_requests = Arc::new(AtomicUsize::new(0));
    let wants_keyframe = Arc::new(AtomicBool::new(false));
    let layers_sending = Arc::new(AtomicU8::new(0b111));
    {
        let (video, stop, requests, wants) =
            (video.clone(), stop.clone(), keyframe_requests.clone(), wants_keyframe.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), video.poll()).await {
                    Ok(Some(TrackLocalEvent::OnRtcpPacket(_))) => {
                        requests.fetch_add(1, Ordering::Relaxed);
                        wants.store(true, Ordering::Relaxed);
                    }
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => break,
                }
            }
        });
    }
    let media = options.media;
    {
        let (stop, first, layers_sending) = (stop.clone(), options.first_frame, layers_sending.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(FRAME_INTERVAL);
            let mut index = 0u32;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < PUBLISH_LIMIT {
                ticker.tick().await;
                let frame = match media {
                    // A keyframe every 3 s, and whenever one is asked for.
                    Media::Synthetic => {
                        let keyframe = index.is_multiple_of(90) || wants_keyframe.swap(false, Ordering::Relaxed);
                        video_frame(first + index, keyframe)
                    }
                    Media::Clip => clip().video[index as usize % clip().video.len()].clone(),
                    Media::H264Clip => h264_clip()[index as usize % h264_clip().len()].clone(),
                    Media::Vp9Clip => vp9_clip()[index as usize % vp9_clip().len()].clone(),
                    Media::Simulcast => {
                        let keyframe = index.is_multiple_of(90) || wants_keyframe.swap(false, Ordering::Relaxed);
                        let sending = layers_sending.load(Ordering::Relaxed);
                        for (layer, (rid, ssrc, size)) in SIMULCAST_LAYERS.iter().enumerate() {
                            if sending & (1 << layer) == 0 {
                                continue;
                            }
                            let mut frame = video_frame(first + index, keyframe).to_vec();
                            frame.resize(*size, layer as u8);
                            frame[LAYER_BYTE] = layer as u8;
                            let sample =
                                Sample { data: frame.into(), duration: FRAME_INTERVAL, ..Sample::new(Instant::now()) };
                            let _ = video
                                .sample_writer(*ssrc, video_pt)
                                .with_extension(raw_extension(MID_URI, &video_mid))
                                .with_extension(raw_extension(RID_URI, rid))
                                .write_sample(&sample)
                                .await;
                        }
                        index += 1;
                        continue;
                    }
                };
                let sample = Sample { data: frame, duration: FRAME_INTERVAL, ..Sample::new(Instant::now()) };
                let _ = video.sample_writer(VIDEO_SSRC, video_pt).write_sample(&sample).await;
                index += 1;
            }
        });
    }
    {
        let (stop, first) = (stop.clone(), options.first_frame);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(AUDIO_INTERVAL);
            let mut index = 0u32;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < PUBLISH_LIMIT {
                ticker.tick().await;
                let packet = match media {
                    Media::Synthetic | Media::Simulcast => {
                        let mut voice = vec![0xfc_u8];
                        voice.extend_from_slice(&(first + index).to_be_bytes());
                        voice.resize(60, 0);
                        Bytes::from(voice)
                    }
                    Media::Clip | Media::H264Clip | Media::Vp9Clip => {
                        clip().audio[index as usize % clip().audio.len()].clone()
                    }
                };
                let sample = Sample { data: packet, duration: AUDIO_INTERVAL, ..Sample::new(Instant::now()) };
                let _ = audio.sample_writer(AUDIO_SSRC, audio_pt).write_sample(&sample).await;
                index += 1;
            }
        });
    }
    Ok(Publisher { session, pc: pc.pc, stop, keyframe_requests, state: pc.state, layers_sending })
}

/// A VP8-shaped frame: payload header byte (P bit clear on keyframes), the frame number, filler
/// for three packets' worth.
fn video_frame(number: u32, keyframe: bool) -> Bytes {
    let mut frame = vec![if keyframe { 0x00 } else { 0x01 }];
    frame.extend_from_slice(&number.to_be_bytes());
    frame.resize(2500, (number % 251) as u8);
    Bytes::from(frame)
}

impl Publisher {
    pub fn is_connected(&self) -> bool {
        *self.state.lock().unwrap() == RTCPeerConnectionState::Connected
    }

    /// [`Media::Simulcast`]: stops or resumes one layer (as a browser drops its top layer).
    pub fn send_layer(&self, rid: &str, on: bool) {
        let index = SIMULCAST_LAYERS.iter().position(|(r, _, _)| *r == rid).expect("a test layer");
        if on {
            self.layers_sending.fetch_or(1 << index, Ordering::Relaxed);
        } else {
            self.layers_sending.fetch_and(!(1 << index), Ordering::Relaxed);
        }
    }

    /// Stops sending and closes the connection without a DELETE (like a crashed encoder).
    pub async fn vanish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pc.close().await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let pc = self.pc.clone();
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
    }
}

// ---- viewer -------------------------------------------------------------------------------

/// One received RTP packet, reduced to what tests look at.
#[derive(Debug, Clone, Copy)]
pub struct Got {
    pub seq: u16,
    pub timestamp: u32,
    /// The frame number, on the first packet of a video frame and on every audio packet.
    pub frame: Option<u32>,
    pub keyframe: bool,
    /// On the first packet of a video frame: the byte at [`LAYER_BYTE`] (a [`Media::Simulcast`]
    /// frame's layer; filler otherwise).
    pub layer: Option<u8>,
    pub at: Instant,
}

/// What one received track got; `stream_id` names the pair (`ferrocast-N`).
#[derive(Debug, Default, Clone)]
pub struct TrackLog {
    pub kind: String,
    pub mime: String,
    pub stream_id: String,
    pub packets: Vec<Got>,
    /// Video: whole VP8 frames put back together from their packets. Audio: every payload.
    pub units: Vec<Bytes>,
    partial: Vec<u8>,
    /// The last sequence numbers logged, to drop duplicates.
    recent: std::collections::HashSet<u16>,
    recent_order: std::collections::VecDeque<u16>,
}

impl TrackLog {
    pub fn frames(&self) -> Vec<u32> {
        self.packets.iter().filter_map(|p| p.frame).collect()
    }

    /// The first packets of frames: (frame number, layer byte, arrival).
    pub fn frame_starts(&self) -> Vec<(u32, u8, Instant)> {
        self.packets.iter().filter_map(|p| Some((p.frame?, p.layer?, p.at))).collect()
    }

    /// The layer of the last frame begun (see [`Got::layer`]).
    pub fn last_layer(&self) -> Option<u8> {
        self.packets.iter().rev().find_map(|p| p.layer)
    }

    /// The first packet the server sent on this track: the earliest sequence number (wrap-aware).
    /// Not always the first to arrive: under load the first datagram can be lost on loopback and
    /// come back later as a NACK retransmission.
    pub fn first_sent(&self) -> Option<&Got> {
        let arrived_first = self.packets.first()?.seq;
        self.packets.iter().min_by_key(|p| p.seq.wrapping_sub(arrived_first) as i16)
    }
}

pub struct Viewer {
    pub session: Answered,
    pc: Arc<dyn PeerConnection>,
    /// Keyed by track id (the m-line's mid).
    pub tracks: Arc<Mutex<HashMap<String, TrackLog>>>,
    state: Arc<Mutex<RTCPeerConnectionState>>,
}

/// Opens a WHEP session with `pairs` video+audio pairs.
pub async fn view(app: &TestApp, path: &str, pairs: usize) -> Result<Viewer, Refused> {
    view_with(app, path, pairs, None).await
}

/// [`view`] with `Authorization: Bearer {bearer}` (a viewer token, grant or link).
pub async fn view_with(app: &TestApp, path: &str, pairs: usize, bearer: Option<&str>) -> Result<Viewer, Refused> {
    let mut pc = peer_connection(None, None).await;
    let recvonly =
        || Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() });
    for _ in 0..pairs {
        pc.pc.add_transceiver_from_kind(RtpCodecKind::Video, recvonly()).await.expect("video transceiver");
        pc.pc.add_transceiver_from_kind(RtpCodecKind::Audio, recvonly()).await.expect("audio transceiver");
    }
    let session = negotiate(app, &mut pc, path, bearer, Candidates::InOffer, None).await?;
    let tracks: Arc<Mutex<HashMap<String, TrackLog>>> = Arc::default();
    let mut incoming = pc.tracks;
    {
        let tracks = tracks.clone();
        tokio::spawn(async move {
            while let Some(track) = incoming.recv().await {
                let tracks = tracks.clone();
                tokio::spawn(record_track(track, tracks));
            }
        });
    }
    Ok(Viewer { session, pc: pc.pc, tracks, state: pc.state })
}

async fn record_track(track: Arc<dyn TrackRemote>, tracks: Arc<Mutex<HashMap<String, TrackLog>>>) {
    let id = track.track_id().await;
    let stream_id = track.stream_id().await;
    let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
    let mime = track.codec(ssrc).await.map(|c| c.mime_type).unwrap_or_default();
    let kind = if mime.to_ascii_lowercase().starts_with("video") { "video" } else { "audio" }.to_owned();
    tracks.lock().unwrap().insert(id.clone(), TrackLog { kind: kind.clone(), mime, stream_id, ..TrackLog::default() });
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let payload = &packet.payload;
        let (frame, keyframe) = if kind == "video" { parse_vp8(payload) } else { (parse_audio(payload), false) };
        let layer =
            frame.filter(|_| kind == "video").and_then(|_| payload.get(vp8_descriptor_len(payload) + LAYER_BYTE));
        let got = Got {
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            frame,
            keyframe,
            layer: layer.copied(),
            at: Instant::now(),
        };
        if let Some(log) = tracks.lock().unwrap().get_mut(&id) {
            // A packet sent twice (a bandwidth probe resends old ones) is kept once, as a jitter
            // buffer does.
            if !log.recent.insert(got.seq) {
                continue;
            }
            log.recent_order.push_back(got.seq);
            if log.recent_order.len() > 4096 {
                log.recent_order.pop_front().map(|old| log.recent.remove(&old));
            }
            log.packets.push(got);
            if kind == "video" {
                let (start, data) = vp8_data(payload);
                if start {
                    log.partial.clear();
                }
                log.partial.extend_from_slice(data);
                if packet.header.marker {
                    let frame = Bytes::from(std::mem::take(&mut log.partial));
                    log.units.push(frame);
                }
            } else {
                log.units.push(payload.clone());
            }
        }
    }
}

/// Whether this packet starts a frame, and the VP8 data after the payload descriptor (RFC 7741).
fn vp8_data(payload: &[u8]) -> (bool, &[u8]) {
    let Some(&descriptor) = payload.first() else { return (false, payload) };
    let at = vp8_descriptor_len(payload);
    (descriptor & 0x10 != 0 && descriptor & 0x07 == 0, payload.get(at..).unwrap_or_default())
}

fn vp8_descriptor_len(payload: &[u8]) -> usize {
    let mut at = 1;
    if payload.first().is_some_and(|d| d & 0x80 != 0) {
        let ext = payload.get(1).copied().unwrap_or_default();
        at = 2;
        if ext & 0x80 != 0 {
            at += if payload.get(at).is_some_and(|b| b & 0x80 != 0) { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    at
}

/// Frame number and keyframe flag from the first packet of a frame (VP8 descriptor S bit).
fn parse_vp8(payload: &[u8]) -> (Option<u32>, bool) {
    let Some(&descriptor) = payload.first() else { return (None, false) };
    let at = vp8_descriptor_len(payload);
    let start = descriptor & 0x10 != 0 && descriptor & 0x07 == 0;
    if !start || payload.len() < at + 5 {
        return (None, false);
    }
    let number = u32::from_be_bytes(payload[at + 1..at + 5].try_into().expect("4 bytes"));
    (Some(number), payload[at] & 0x01 == 0)
}

fn parse_audio(payload: &[u8]) -> Option<u32> {
    (payload.len() >= 5 && payload[0] == 0xfc).then(|| u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes")))
}

impl Viewer {
    pub fn is_connected(&self) -> bool {
        *self.state.lock().unwrap() == RTCPeerConnectionState::Connected
    }

    pub fn snapshot(&self) -> HashMap<String, TrackLog> {
        self.tracks.lock().unwrap().clone()
    }

    /// The video track of pair `pair` (by its msid stream id).
    pub fn video(&self, pair: usize) -> Option<TrackLog> {
        let wanted = format!("ferrocast-{pair}");
        self.snapshot().into_values().find(|t| t.kind == "video" && t.stream_id == wanted)
    }

    pub fn audio(&self, pair: usize) -> Option<TrackLog> {
        let wanted = format!("ferrocast-{pair}");
        self.snapshot().into_values().find(|t| t.kind == "audio" && t.stream_id == wanted)
    }

    /// Waits until `check` holds for the received media, or panics after [`MEDIA_TIMEOUT`].
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Viewer) -> bool) {
        let deadline = Instant::now() + MEDIA_TIMEOUT;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; got {:#?}", summary(&self.snapshot()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let pc = self.pc.clone();
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
    }
}

/// Compact description of received tracks for failure messages.
pub fn summary(tracks: &HashMap<String, TrackLog>) -> Vec<String> {
    tracks
        .iter()
        .map(|(id, t)| {
            let frames = t.frames();
            format!(
                "{id} {} {} packets={} frames={:?}..{:?}",
                t.stream_id,
                t.mime,
                t.packets.len(),
                frames.first(),
                frames.last()
            )
        })
        .collect()
}

/// Asserts sequence numbers go up by exactly one from packet to packet (loopback loses nothing).
pub fn assert_continuous(log: &TrackLog, what: &str) {
    for pair in log.packets.windows(2) {
        let step = pair[1].seq.wrapping_sub(pair[0].seq);
        assert_eq!(step, 1, "{what}: sequence jumps from {} to {}", pair[0].seq, pair[1].seq);
    }
}
