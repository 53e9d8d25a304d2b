//! An SDP offer as a WHIP or WHEP client sends it: ferrocast's own reading of it
//! (`offer::inspect`), then str0m's parser and an ICE-lite, RTP-mode `Rtc` built like the
//! engine's (`ferrocast::sfu::rtc_config`) accepting it when `inspect` took it, then the answer
//! fix-ups the server applies. The server catches a panic in str0m; here any panic is a finding.

#![no_main]

use std::{net::SocketAddr, sync::OnceLock, time::Instant};

use ferrocast::sfu::offer::{self, Intent};
use libfuzzer_sys::fuzz_target;
use str0m::{change::SdpOffer, config::DtlsCert, Candidate, Rtc};

/// One DTLS certificate for every `Rtc`, as the engine keeps one (making one is slow).
fn cert() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

/// A peer as the SFU runs it (`ferrocast::sfu::rtc_config`), with one host candidate.
fn new_rtc(publisher: bool) -> Rtc {
    let mut config = ferrocast::sfu::rtc_config(publisher);
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
    // Like the engine, str0m meets only an offer `inspect` took (which refuses what str0m
    // asserts on, such as one payload type for two codecs), with the publisher's extensions when
    // it is a publish offer.
    if publish.is_err() && view.is_err() {
        return;
    }
    let Ok(parsed) = SdpOffer::from_sdp_string(&sdp) else { return };
    let mut rtc = new_rtc(publish.is_ok());
    let Ok(answer) = rtc.sdp_api().accept_offer(parsed) else { return };
    let answer = offer::follow_offer_order(&answer.to_sdp_string(), &sdp);
    let _ = offer::set_msids(&answer, |mid| (mid.len() % 2 == 0).then(|| format!("pair-{mid}")));
    // What a client does with it next: the answer must parse as SDP.
    let _ = str0m::change::SdpAnswer::from_sdp_string(&answer);
});
