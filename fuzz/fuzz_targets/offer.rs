//! An SDP offer as a WHIP or WHEP client sends it: ferrocast's own reading of it
//! (`offer::inspect`), then str0m's parser and an ICE-lite, RTP-mode `Rtc` built like the
//! engine's (`Engine::new_rtc` in src/sfu/engine/commands.rs) accepting it, then the answer
//! fix-ups the server applies. The server catches a panic in str0m; here any panic is a finding.

#![no_main]

use std::{net::SocketAddr, sync::OnceLock, time::Instant};

use ferrocast::sfu::offer::{self, Intent};
use libfuzzer_sys::fuzz_target;
use str0m::{
    change::SdpOffer,
    config::DtlsCert,
    rtp::{Extension, ExtensionMap},
    Candidate, Rtc,
};

/// The engine's `VIEWER_VIDEO_SEND_BUFFER`.
const VIEWER_VIDEO_SEND_BUFFER: usize = 300;

/// The engine's `VIEWER_EXTENSIONS`: str0m's standard map without transport-wide sequence numbers.
const VIEWER_EXTENSIONS: [(u8, Extension); 6] = [
    (1, Extension::AudioLevel),
    (2, Extension::AbsoluteSendTime),
    (4, Extension::RtpMid),
    (10, Extension::RtpStreamId),
    (11, Extension::RepairedRtpStreamId),
    (13, Extension::VideoOrientation),
];

/// One DTLS certificate for every `Rtc`, as the engine keeps one (making one is slow).
fn cert() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

/// A peer as the SFU runs it: ICE-lite, RTP mode, the codecs it forwards, one host candidate.
fn new_rtc(publisher: bool) -> Rtc {
    let extensions = if publisher {
        ExtensionMap::standard()
    } else {
        let mut viewer = ExtensionMap::empty();
        for (id, extension) in VIEWER_EXTENSIONS {
            viewer.set(id, extension);
        }
        viewer
    };
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_h264(true)
        .enable_av1(true)
        .set_send_buffer_video(VIEWER_VIDEO_SEND_BUFFER)
        .set_extension_map(extensions);
    if let Some(cert) = cert() {
        config = config.set_dtls_cert(cert);
    }
    let mut rtc = config.build(Instant::now());
    let addr = SocketAddr::from(([127, 0, 0, 1], 8189));
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a host candidate"));
    rtc
}

fuzz_target!(|data: &[u8]| {
    let sdp = String::from_utf8_lossy(data);
    let publish = offer::inspect(&sdp, Intent::Publish);
    let view = offer::inspect(&sdp, Intent::View);
    let _ = offer::ice_ufrag(&sdp);
    let Ok(parsed) = SdpOffer::from_sdp_string(&sdp) else { return };
    // The engine reaches str0m only with an offer `inspect` took; this goes further (str0m
    // meets whatever parses), with the publisher's extensions when it would publish.
    let _ = view;
    let mut rtc = new_rtc(publish.is_ok());
    let Ok(answer) = rtc.sdp_api().accept_offer(parsed) else { return };
    let answer = offer::follow_offer_order(&answer.to_sdp_string(), &sdp);
    let _ = offer::set_msids(&answer, |mid| (mid.len() % 2 == 0).then(|| format!("pair-{mid}")));
    // What a client does with it next: the answer must parse as SDP.
    let _ = str0m::change::SdpAnswer::from_sdp_string(&answer);
});
