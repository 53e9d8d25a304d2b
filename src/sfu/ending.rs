//! How a session ends: why (logged once, when the engine removes it) and the liveness rule that
//! decides when a peer that stopped its ICE consent checks is gone.

use std::{
    fmt,
    time::{Duration, Instant},
};

use super::dtls;

/// Why the engine removed a session. Each is logged at `info` with the session's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client's `DELETE` of its session URL.
    Deleted,
    /// Its publish token was deleted or its account disabled.
    Revoked,
    /// A newer publish of the same source took over.
    Replaced,
    /// A newer publish of the same source came while this one still waited to take over.
    Superseded,
    /// ICE and DTLS did not complete in time.
    NeverConnected,
    /// A capability probe's time was up.
    ProbeOver,
    /// The stream it watched has had no publisher for the orphan grace.
    StreamGone,
    /// No ICE consent (RFC 7675) and no authenticated media or RTCP for [`LIVENESS_GRACE`].
    Silent,
    /// The peer closed the connection (DTLS close_notify).
    Closed,
    /// The DTLS handshake failed; OpenSSL's reason.
    DtlsFailed(String),
    /// The WebRTC stack refused to go on; its reason.
    Failed(String),
    /// A panic in the media path, caught and confined to this peer.
    Panicked,
}

impl Ending {
    /// A DTLS handshake that failed in the input or timeout str0m just refused or closed on
    /// (see [`dtls::take_failure`]), if that is what happened.
    pub fn of_failed_dtls() -> Option<Ending> {
        dtls::take_failure().map(Ending::DtlsFailed)
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Deleted => f.write_str("the client deleted its session"),
            Ending::Revoked => f.write_str("its token was deleted or its account disabled"),
            Ending::Replaced => f.write_str("a newer publish of the same source took over"),
            Ending::Superseded => f.write_str("a newer publish of the same source came before this one took over"),
            Ending::NeverConnected => f.write_str("ICE and DTLS did not complete in time"),
            Ending::ProbeOver => f.write_str("the probe's time was up"),
            Ending::StreamGone => f.write_str("the stream it watched ended"),
            Ending::Silent => {
                write!(f, "no ICE consent checks and no authenticated media or RTCP for {} s", LIVENESS_GRACE.as_secs())
            }
            Ending::Closed => f.write_str("the peer closed the connection"),
            Ending::DtlsFailed(reason) => write!(f, "DTLS handshake failed: {reason}"),
            Ending::Failed(reason) => write!(f, "the WebRTC stack failed: {reason}"),
            Ending::Panicked => f.write_str("a panic in the media path (caught; this peer only)"),
        }
    }
}

/// How long a peer whose ICE consent lapsed stays while nothing authenticated arrives from it:
/// RFC 7675's consent lifetime. Authenticated SRTP or SRTCP in that time keeps it (a client that
/// sends no consent checks, as GStreamer's webrtcbin by default, is still plainly there).
pub const LIVENESS_GRACE: Duration = Duration::from_secs(30);

/// One peer's liveness: whether ICE says consent holds, and when authenticated media or RTCP
/// last came.
#[derive(Clone, Debug)]
pub struct Liveness {
    consent: bool,
    heard_at: Instant,
}

/// What [`Liveness::verdict`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    /// Consent lapsed, media still comes: the peer stays, and is looked at again then.
    Grace {
        until: Instant,
    },
    Gone,
}

impl Liveness {
    pub fn new(now: Instant) -> Self {
        Liveness { consent: true, heard_at: now }
    }

    /// Authenticated media or RTCP received at `at` (str0m hands out only what decrypted).
    pub fn heard(&mut self, at: Instant) {
        if at > self.heard_at {
            self.heard_at = at;
        }
    }

    /// ICE went to `Disconnected` (no consent check within its window) or came back.
    pub fn set_consent(&mut self, consent: bool) {
        self.consent = consent;
    }

    pub fn consent(&self) -> bool {
        self.consent
    }

    pub fn verdict(&self, now: Instant) -> Verdict {
        if self.consent {
            return Verdict::Alive;
        }
        let until = self.heard_at + LIVENESS_GRACE;
        if now < until {
            Verdict::Grace { until }
        } else {
            Verdict::Gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_alone_keeps_a_peer_whatever_it_sends() {
        let start = Instant::now();
        let liveness = Liveness::new(start);
        assert_eq!(liveness.verdict(start + Duration::from_secs(600)), Verdict::Alive);
    }

    #[test]
    fn without_consent_media_keeps_a_peer_for_the_grace_after_the_last_packet() {
        let start = Instant::now();
        let mut liveness = Liveness::new(start);
        liveness.heard(start + Duration::from_secs(14));
        liveness.set_consent(false);
        let at = start + Duration::from_secs(15);
        assert_eq!(liveness.verdict(at), Verdict::Grace { until: start + Duration::from_secs(44) });
        // Media goes on: so does the peer, long past the consent's end.
        for second in 16..120 {
            liveness.heard(start + Duration::from_secs(second));
            assert!(matches!(liveness.verdict(start + Duration::from_secs(second)), Verdict::Grace { .. }));
        }
        // Then it stops: gone after the grace, not before.
        assert!(matches!(liveness.verdict(start + Duration::from_secs(119 + 29)), Verdict::Grace { .. }));
        assert_eq!(liveness.verdict(start + Duration::from_secs(119 + 30)), Verdict::Gone);
    }

    #[test]
    fn a_peer_that_went_quiet_long_before_its_consent_lapsed_is_gone_at_once() {
        let start = Instant::now();
        let mut liveness = Liveness::new(start);
        liveness.set_consent(false);
        assert_eq!(liveness.verdict(start + LIVENESS_GRACE), Verdict::Gone);
    }

    #[test]
    fn consent_coming_back_ends_the_grace() {
        let start = Instant::now();
        let mut liveness = Liveness::new(start);
        liveness.set_consent(false);
        liveness.set_consent(true);
        assert_eq!(liveness.verdict(start + Duration::from_secs(3600)), Verdict::Alive);
    }

    #[test]
    fn an_older_packet_does_not_move_the_last_heard_back() {
        let start = Instant::now();
        let mut liveness = Liveness::new(start);
        liveness.heard(start + Duration::from_secs(20));
        liveness.heard(start + Duration::from_secs(5));
        liveness.set_consent(false);
        assert_eq!(
            liveness.verdict(start + Duration::from_secs(49)),
            Verdict::Grace { until: start + Duration::from_secs(50) }
        );
    }

    #[test]
    fn every_ending_says_why_in_words() {
        for ending in [
            Ending::Deleted,
            Ending::Revoked,
            Ending::Replaced,
            Ending::Superseded,
            Ending::NeverConnected,
            Ending::ProbeOver,
            Ending::StreamGone,
            Ending::Silent,
            Ending::Closed,
            Ending::DtlsFailed("no shared cipher".into()),
            Ending::Failed("x".into()),
            Ending::Panicked,
        ] {
            let text = ending.to_string();
            assert!(text.len() > 10 && text.contains(' '), "{ending:?}: {text}");
        }
        assert!(Ending::Silent.to_string().contains("30 s"));
        assert!(Ending::DtlsFailed("no shared cipher".into()).to_string().ends_with("no shared cipher"));
    }
}
