//! A trickle-ICE PATCH body (RFC 8840 `application/trickle-ice-sdpfrag`): ferrocast's fragment
//! reader, then str0m's candidate parser on every candidate line, as the engine's `trickle` does,
//! and the candidates that parse added to an ICE-lite `Rtc` that has answered an offer.
//! The server catches a panic in str0m; here any panic is a finding.

#![no_main]

use std::{sync::OnceLock, time::Instant};

use ferrocast::sfu::offer;
use libfuzzer_sys::fuzz_target;
use str0m::{change::SdpOffer, config::DtlsCert, Candidate, Rtc};

/// A browser-like offer the ICE agent pairs trickled candidates against.
const OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=fingerprint:sha-256 4A:79:94:16:44:3F:BD:05:41:5A:C7:20:F3:12:54:70:00:73:5D:33:00:2D:2C:80:9B:39:E1:9F:2D:A7:49:87\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
a=setup:actpass\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=ssrc:1111 cname:fuzz\r\n";

/// One DTLS certificate for every `Rtc`, as the engine keeps one (making one is slow).
fn cert() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

fn answered_rtc() -> Rtc {
    let mut config = Rtc::builder().set_ice_lite(true).set_rtp_mode(true);
    if let Some(cert) = cert() {
        config = config.set_dtls_cert(cert);
    }
    let mut rtc = config.build(Instant::now());
    let host = std::net::SocketAddr::from(([127, 0, 0, 1], 8189));
    rtc.add_local_candidate(Candidate::host(host, "udp").expect("a host candidate"));
    let offer = SdpOffer::from_sdp_string(OFFER).expect("the fixed offer parses");
    rtc.sdp_api().accept_offer(offer).expect("the fixed offer is accepted");
    rtc
}

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let Ok(fragment) = offer::parse_fragment(&body) else { return };
    let _ = (&fragment.ufrag, &fragment.pwd, fragment.end_of_candidates);
    let candidates: Vec<Candidate> =
        fragment.candidates.iter().filter_map(|line| Candidate::from_sdp_string(line).ok()).collect();
    if candidates.is_empty() {
        return;
    }
    // Building the `Rtc` costs more than parsing: only for inputs with a candidate that parses.
    let mut rtc = answered_rtc();
    for candidate in candidates {
        let _ = candidate.to_string();
        rtc.add_remote_candidate(candidate);
    }
    let _ = rtc.poll_output();
});
