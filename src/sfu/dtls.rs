//! DTLS 1.2 for every peer, on OpenSSL, plugged into str0m through its crypto provider.
//!
//! Why not str0m's own DTLS (`dimpl`): it asks clients for an ECDSA certificate only and aborts
//! the handshake with alert 40 when one presents RSA — as GStreamer's `webrtcbin` and other
//! non-browser stacks do (see the README, *WHIP and WHEP*). OpenSSL takes every key type WebRTC
//! clients use, in either role. Only the handshake moves here: the SRTP keys it exports
//! (RFC 5764 §4.2) go back to str0m, whose per-packet SRTP stays on its aws-lc-rs provider, and
//! the SFU's certificate is still the ECDSA P-256 one str0m generates.
//!
//! The peer's certificate is accepted whatever it is: str0m compares its fingerprint with the
//! SDP's `a=fingerprint` (RFC 8122 §5), which is what authenticates a WebRTC peer.
//!
//! A failed handshake is logged by the engine with the session's id and OpenSSL's reason
//! ([`take_failure`]): str0m's DTLS error type has no room for text.

use std::{
    cell::RefCell,
    collections::VecDeque,
    fmt, io,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use openssl::{
    error::ErrorStack,
    pkey::PKey,
    srtp::SrtpProfileId,
    ssl::{
        ErrorCode, HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslMethod, SslMode, SslOptions, SslStream,
        SslVerifyMode,
    },
    x509::X509,
};
use str0m::crypto::{
    dtls::{
        DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, KeyingMaterial, ProtocolVersion,
        SrtpProfile,
    },
    CryptoError, CryptoProvider,
};

/// str0m's providers for everything else (SRTP, STUN's HMAC, hashes), this module's DTLS.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider { dtls_provider: &OPENSSL_DTLS, ..str0m::crypto::from_feature_flags() })
        })
        .clone()
}

static OPENSSL_DTLS: OpenSslDtls = OpenSslDtls { context: Mutex::new(None) };

/// The label of the SRTP keying material exporter (RFC 5764 §4.2).
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Our order, the one str0m's own DTLS uses, so SRTP runs the same cipher as before.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";

/// Forward-secret suites only. Both certificate kinds are listed: as a server only the ECDSA ones
/// can be chosen (our certificate), as a client the peer's certificate picks.
const CIPHERS: &str = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL";

/// How often a handshake in progress is driven without input, so OpenSSL can retransmit a lost
/// flight (its own timer starts at 1 s and doubles; this only samples it).
const HANDSHAKE_TICK: Duration = Duration::from_millis(100);

/// The datagram size a flight is cut to when str0m names none (its own default target).
const DEFAULT_MTU: usize = 1150;

/// Nothing to do until input arrives: the timeout a session without a handshake tick reports,
/// fixed when it is made and longer than any session lives. (str0m asks for it on every poll,
/// once per packet sent: reading the clock there cost a `clock_gettime` per packet and viewer.)
const IDLE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

thread_local! {
    static LAST_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The reason of the last DTLS failure on this thread, once: the engine asks right after an
/// input that str0m refused, on the thread that ran it.
pub fn take_failure() -> Option<String> {
    LAST_FAILURE.with(|last| last.borrow_mut().take())
}

fn note_failure(reason: String) {
    LAST_FAILURE.with(|last| *last.borrow_mut() = Some(reason));
}

/// The provider: one OpenSSL context per certificate (the SFU has one), made at the first session.
struct OpenSslDtls {
    context: Mutex<Option<(Vec<u8>, SslContext)>>,
}

impl fmt::Debug for OpenSslDtls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpenSslDtls")
    }
}

impl OpenSslDtls {
    fn context_for(&self, cert: &DtlsCert) -> Result<SslContext, CryptoError> {
        let mut cached = self.context.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((der, context)) = cached.as_ref() {
            if *der == cert.certificate {
                return Ok(context.clone());
            }
        }
        let context = new_context(cert).map_err(openssl_error)?;
        *cached = Some((cert.certificate.clone(), context.clone()));
        Ok(context)
    }
}

fn openssl_error(stack: ErrorStack) -> CryptoError {
    CryptoError::Other(format!("OpenSSL: {stack}"))
}

fn new_context(cert: &DtlsCert) -> Result<SslContext, ErrorStack> {
    let mut builder = SslContext::builder(SslMethod::dtls())?;
    builder.set_cipher_list(CIPHERS)?;
    builder.set_tlsext_use_srtp(SRTP_PROFILES)?;
    let certificate = X509::from_der(&cert.certificate)?;
    let key = PKey::private_key_from_der(&cert.private_key)?;
    builder.set_certificate(&certificate)?;
    builder.set_private_key(&key)?;
    builder.check_private_key()?;
    // Self-signed certificates are the rule in WebRTC: str0m checks the fingerprint instead.
    builder.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, |_, _| true);
    builder.set_options(
        SslOptions::NO_DTLSV1
            | SslOptions::NO_QUERY_MTU
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::NO_TICKET
            | SslOptions::CIPHER_SERVER_PREFERENCE,
    );
    // A connection idles after its handshake (SRTP runs outside it): its record buffers go
    // back until a DTLS record comes (tens of kB per viewer otherwise).
    builder.set_mode(SslMode::RELEASE_BUFFERS);
    Ok(builder.build())
}

impl DtlsProvider for OpenSslDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        if matches!(version, DtlsVersion::Dtls13) {
            return Err(CryptoError::Other("DTLS 1.3 is not offered: the SFU speaks DTLS 1.2".into()));
        }
        let context = self.context_for(cert)?;
        let mut ssl = Ssl::new(&context).map_err(openssl_error)?;
        // Without an MTU OpenSSL cannot write a flight (it is told not to ask the socket).
        let mtu = mtu.unwrap_or(DEFAULT_MTU);
        ssl.set_mtu(u32::try_from(mtu).unwrap_or(u32::MAX)).map_err(openssl_error)?;
        Ok(Box::new(Session::new(ssl, now)))
    }
}

/// The datagrams between OpenSSL and str0m: one `read` takes one datagram, one `write` makes one,
/// as on a UDP socket (OpenSSL's DTLS record layer depends on those boundaries).
#[derive(Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

/// At most this many datagrams wait for OpenSSL: it reads them all at every input, so more
/// means a peer flooding the handshake, and the oldest go.
const INCOMING_LIMIT: usize = 64;

impl io::Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than the reader's buffer is cut, as a UDP socket does.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl io::Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
enum Stage {
    /// Made, waiting for `set_active` and the first input.
    Fresh(Ssl, Datagrams),
    Handshaking(MidHandshakeSslStream<Datagrams>),
    Established(SslStream<Datagrams>),
    /// The handshake or the connection failed; the reason went to [`take_failure`].
    #[default]
    Failed,
    /// Closed by either side (close_notify); what comes after is dropped without a word.
    Closed,
}

/// What the handshake and the connection hand to str0m, in the order it is handed out.
enum Handout {
    PeerCert(Vec<u8>),
    Keys(Vec<u8>, SrtpProfile),
    Connected,
    Data(Vec<u8>),
    CloseNotify,
}

/// One peer's DTLS connection.
struct Session {
    stage: Stage,
    active: bool,
    /// Datagrams OpenSSL wrote, until str0m polls them (kept here so an alert still leaves after
    /// a failure has dropped OpenSSL's state).
    outgoing: VecDeque<Vec<u8>>,
    handouts: VecDeque<Handout>,
    /// When a handshake in progress is driven next without input.
    tick_at: Option<Instant>,
    /// The timeout reported when there is no tick ([`IDLE`] after the session was made).
    idle_until: Instant,
    connected: bool,
    close_sent: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Fresh(..) => "fresh",
            Stage::Handshaking(_) => "handshaking",
            Stage::Established(_) => "established",
            Stage::Failed => "failed",
            Stage::Closed => "closed",
        };
        f.debug_struct("OpenSslDtlsSession").field("stage", &stage).field("active", &self.active).finish()
    }
}

impl Session {
    fn new(ssl: Ssl, now: Instant) -> Self {
        Session {
            stage: Stage::Fresh(ssl, Datagrams::default()),
            active: false,
            outgoing: VecDeque::new(),
            handouts: VecDeque::new(),
            tick_at: None,
            idle_until: now + IDLE,
            connected: false,
            close_sent: false,
        }
    }

    fn datagrams(&mut self) -> Option<&mut Datagrams> {
        match &mut self.stage {
            Stage::Fresh(_, datagrams) => Some(datagrams),
            Stage::Handshaking(mid) => Some(mid.get_mut()),
            Stage::Established(stream) => Some(stream.get_mut()),
            Stage::Failed | Stage::Closed => None,
        }
    }

    /// Moves what OpenSSL wrote to the queue str0m polls.
    fn collect(&mut self) {
        if let Some(datagrams) = self.datagrams() {
            let written = std::mem::take(&mut datagrams.outgoing);
            self.outgoing.extend(written);
        }
    }

    fn fail(&mut self, reason: String) -> DtlsImplError {
        self.collect();
        self.stage = Stage::Failed;
        self.tick_at = None;
        note_failure(reason);
        DtlsImplError::ConnectionClosed
    }

    /// Runs the handshake as far as the input allows.
    fn handshake(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        let result = match std::mem::take(&mut self.stage) {
            Stage::Fresh(ssl, datagrams) if self.active => ssl.connect(datagrams),
            Stage::Fresh(ssl, datagrams) => ssl.accept(datagrams),
            Stage::Handshaking(mid) => mid.handshake(),
            other => {
                self.stage = other;
                return Ok(());
            }
        };
        match result {
            Ok(stream) => {
                self.stage = Stage::Established(stream);
                self.tick_at = None;
                self.collect();
                self.hand_out_keys()
            }
            Err(HandshakeError::WouldBlock(mid)) => {
                self.stage = Stage::Handshaking(mid);
                self.tick_at = Some(now + HANDSHAKE_TICK);
                self.collect();
                Ok(())
            }
            Err(HandshakeError::Failure(mut mid)) => {
                let alert = std::mem::take(&mut mid.get_mut().outgoing);
                self.outgoing.extend(alert);
                let reason = format!("{}{}", mid.error(), peer_key(mid.ssl().peer_certificate()));
                Err(self.fail(reason))
            }
            Err(HandshakeError::SetupFailure(stack)) => Err(self.fail(format!("setting up DTLS: {stack}"))),
        }
    }

    /// The peer's certificate, then the SRTP keys, then "connected": str0m checks the
    /// fingerprint before it takes the keys.
    fn hand_out_keys(&mut self) -> Result<(), DtlsImplError> {
        let Stage::Established(stream) = &self.stage else { return Ok(()) };
        let ssl = stream.ssl();
        let exported = (|| {
            let cert = ssl.peer_certificate().ok_or("the peer sent no certificate")?;
            let cert = cert.to_der().map_err(|_| "the peer's certificate does not encode")?;
            let id = ssl.selected_srtp_profile().ok_or("no SRTP profile in common (use_srtp, RFC 5764)")?.id();
            let profile = srtp_profile(id).ok_or("the peer chose an SRTP profile it was not offered")?;
            let mut keys = vec![0; profile.keying_material_len()];
            ssl.export_keying_material(&mut keys, SRTP_EXPORTER_LABEL, None)
                .map_err(|_| "exporting the SRTP keys failed")?;
            Ok::<_, &str>((cert, keys, profile))
        })();
        match exported {
            Ok((cert, keys, profile)) => {
                self.handouts.push_back(Handout::PeerCert(cert));
                self.handouts.push_back(Handout::Keys(keys, profile));
                self.handouts.push_back(Handout::Connected);
                self.connected = true;
                Ok(())
            }
            Err(reason) => Err(self.fail(reason.to_owned())),
        }
    }

    /// Reads what an established connection received: application data (SCTP) or the peer's
    /// close_notify, which is answered with ours.
    fn read(&mut self) -> Result<(), DtlsImplError> {
        let mut buf = [0; 2048];
        loop {
            let Stage::Established(stream) = &mut self.stage else { return Ok(()) };
            match stream.ssl_read(&mut buf) {
                Ok(n) => self.handouts.push_back(Handout::Data(buf[..n].to_vec())),
                Err(err) if err.code() == ErrorCode::WANT_READ => break,
                // The peer's close_notify.
                Err(err) if err.code() == ErrorCode::ZERO_RETURN => {
                    if !self.close_sent {
                        let _ = stream.shutdown();
                        self.close_sent = true;
                    }
                    self.handouts.push_back(Handout::CloseNotify);
                    self.collect();
                    self.stage = Stage::Closed;
                    return Ok(());
                }
                Err(err) => return Err(self.fail(format!("reading: {err}"))),
            }
        }
        self.collect();
        Ok(())
    }
}

/// "; the peer's certificate key: RSA, 2048 bits", for a failure's reason.
fn peer_key(cert: Option<X509>) -> String {
    let Some(key) = cert.and_then(|cert| cert.public_key().ok()) else { return String::new() };
    let kind = match key.id() {
        openssl::pkey::Id::RSA => "RSA",
        openssl::pkey::Id::EC => "ECDSA",
        openssl::pkey::Id::ED25519 => "Ed25519",
        _ => "another kind",
    };
    format!("; the peer's certificate key: {kind}, {} bits", key.bits())
}

fn srtp_profile(id: SrtpProfileId) -> Option<SrtpProfile> {
    match id {
        SrtpProfileId::SRTP_AEAD_AES_256_GCM => Some(SrtpProfile::AEAD_AES_256_GCM),
        SrtpProfileId::SRTP_AEAD_AES_128_GCM => Some(SrtpProfile::AEAD_AES_128_GCM),
        SrtpProfileId::SRTP_AES128_CM_SHA1_80 => Some(SrtpProfile::AES128_CM_SHA1_80),
        _ => None,
    }
}

impl DtlsInstance for Session {
    fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        match self.stage {
            Stage::Closed => return Ok(()),
            Stage::Failed => return Err(DtlsImplError::ConnectionClosed),
            _ => {}
        }
        // An empty packet is str0m's nudge to start a client's handshake.
        if let Some(datagrams) = self.datagrams().filter(|_| !packet.is_empty()) {
            if datagrams.incoming.len() == INCOMING_LIMIT {
                datagrams.incoming.pop_front();
            }
            datagrams.incoming.push_back(packet.to_vec());
        }
        match self.stage {
            Stage::Established(_) => self.read(),
            _ => self.handshake(Instant::now()),
        }
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(datagram) = self.outgoing.front() {
            if datagram.len() > buf.len() {
                return DtlsOutput::BufferTooSmall { needed: datagram.len() };
            }
            let n = datagram.len();
            buf[..n].copy_from_slice(datagram);
            self.outgoing.pop_front();
            return DtlsOutput::Packet(&buf[..n]);
        }
        if let Some(handout) = self.handouts.front() {
            let needed = match handout {
                Handout::PeerCert(bytes) | Handout::Keys(bytes, _) | Handout::Data(bytes) => bytes.len(),
                Handout::Connected | Handout::CloseNotify => 0,
            };
            if needed > buf.len() {
                return DtlsOutput::BufferTooSmall { needed };
            }
            let handout = self.handouts.pop_front().expect("looked at above");
            return match handout {
                Handout::PeerCert(cert) => {
                    buf[..needed].copy_from_slice(&cert);
                    DtlsOutput::PeerCert(&buf[..needed])
                }
                Handout::Keys(keys, profile) => DtlsOutput::KeyingMaterial(KeyingMaterial::new(&keys), profile),
                Handout::Connected => DtlsOutput::Connected,
                Handout::Data(data) => {
                    buf[..needed].copy_from_slice(&data);
                    DtlsOutput::ApplicationData(&buf[..needed])
                }
                Handout::CloseNotify => DtlsOutput::CloseNotify,
            };
        }
        DtlsOutput::Timeout(self.tick_at.unwrap_or(self.idle_until))
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        match self.tick_at {
            Some(at) if at <= now => self.handshake(now),
            _ => Ok(()),
        }
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        let Stage::Established(stream) = &mut self.stage else {
            // Before the handshake: str0m keeps the data and tries again. After the end: refused.
            return match self.stage {
                Stage::Failed | Stage::Closed => Err(DtlsImplError::ConnectionClosed),
                _ => Ok(0),
            };
        };
        if data.is_empty() {
            return Ok(0);
        }
        let written = stream.ssl_write(data);
        self.collect();
        match written {
            Ok(n) => Ok(n),
            Err(err) => Err(self.fail(format!("writing: {err}"))),
        }
    }

    fn is_active(&self) -> bool {
        self.active
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.connected.then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.close_sent
    }

    fn is_closed(&self) -> bool {
        self.close_sent && self.outgoing.is_empty()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if let Stage::Established(stream) = &mut self.stage {
            if !self.close_sent {
                let _ = stream.shutdown();
            }
        }
        self.collect();
        if !matches!(self.stage, Stage::Failed) {
            self.stage = Stage::Closed;
        }
        self.close_sent = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openssl::{
        asn1::Asn1Time,
        bn::{BigNum, MsbOption},
        hash::MessageDigest,
        rsa::Rsa,
        x509::{X509Builder, X509NameBuilder},
    };

    use super::*;

    /// A self-signed RSA certificate, as GStreamer's webrtcbin presents.
    fn rsa_certificate(bits: u32) -> DtlsCert {
        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "webrtcbin").unwrap();
        let name = name.build();
        let mut cert = X509Builder::new().unwrap();
        cert.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        cert.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        DtlsCert { certificate: cert.build().to_der().unwrap(), private_key: key.private_key_to_der().unwrap() }
    }

    fn server_certificate() -> DtlsCert {
        OPENSSL_DTLS.generate_certificate().expect("an ECDSA certificate")
    }

    /// What one side handed to str0m.
    #[derive(Default)]
    struct Seen {
        peer_cert: Option<Vec<u8>>,
        keys: Option<(Vec<u8>, SrtpProfile)>,
        connected: bool,
        data: Vec<Vec<u8>>,
        close_notify: bool,
    }

    /// Moves every datagram from `from` to `to` and notes what `from` handed out.
    fn pump(from: &mut dyn DtlsInstance, to: &mut dyn DtlsInstance, seen: &mut Seen) -> Result<usize, DtlsImplError> {
        let mut buf = vec![0; 2048];
        let mut moved = 0;
        loop {
            match from.poll_output(&mut buf) {
                DtlsOutput::Packet(datagram) => {
                    let datagram = datagram.to_vec();
                    to.handle_packet(&datagram)?;
                    moved += 1;
                }
                DtlsOutput::PeerCert(der) => seen.peer_cert = Some(der.to_vec()),
                DtlsOutput::KeyingMaterial(keys, profile) => seen.keys = Some((keys.to_vec(), profile)),
                DtlsOutput::Connected => seen.connected = true,
                DtlsOutput::ApplicationData(data) => seen.data.push(data.to_vec()),
                DtlsOutput::CloseNotify => seen.close_notify = true,
                DtlsOutput::Timeout(_) => return Ok(moved),
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// A client (`active`) and a server, handshaking over memory until both are connected.
    fn handshake(client_cert: &DtlsCert) -> (Box<dyn DtlsInstance>, Box<dyn DtlsInstance>, Seen, Seen) {
        let now = Instant::now();
        let mut client = OPENSSL_DTLS.new_dtls(client_cert, now, DtlsVersion::Dtls12, Some(1150)).unwrap();
        let mut server = OPENSSL_DTLS.new_dtls(&server_certificate(), now, DtlsVersion::Dtls12, Some(1150)).unwrap();
        client.set_active(true);
        server.set_active(false);
        client.handle_packet(&[]).unwrap(); // str0m's nudge: the ClientHello
        let (mut client_seen, mut server_seen) = (Seen::default(), Seen::default());
        for _ in 0..10 {
            pump(client.as_mut(), server.as_mut(), &mut client_seen).unwrap();
            pump(server.as_mut(), client.as_mut(), &mut server_seen).unwrap();
            if client_seen.connected && server_seen.connected {
                return (client, server, client_seen, server_seen);
            }
        }
        panic!("no handshake in 10 rounds");
    }

    #[test]
    fn an_rsa_client_certificate_is_taken_and_both_ends_export_the_same_srtp_keys() {
        let client_cert = rsa_certificate(2048);
        let (client, server, client_seen, server_seen) = handshake(&client_cert);
        // The server hands str0m the client's RSA certificate for the fingerprint check.
        assert_eq!(server_seen.peer_cert.as_deref(), Some(&client_cert.certificate[..]));
        let (server_keys, profile) = server_seen.keys.expect("the server's SRTP keys");
        let (client_keys, client_profile) = client_seen.keys.expect("the client's SRTP keys");
        assert_eq!(profile, SrtpProfile::AEAD_AES_256_GCM, "our first choice, as before");
        assert_eq!((client_keys.len(), client_profile), (profile.keying_material_len(), profile));
        assert_eq!(server_keys, client_keys);
        assert_eq!(server.protocol_version(), Some(ProtocolVersion::DTLS1_2));
        assert!(!server.is_active() && client.is_active());
        assert_eq!(take_failure(), None);
    }

    #[test]
    fn ecdsa_peers_connect_too_and_application_data_crosses_both_ways() {
        let (mut client, mut server, _, _) = handshake(&server_certificate());
        assert_eq!(client.send_application_data(b"sctp from the client").unwrap(), 20);
        let mut at_server = Seen::default();
        pump(client.as_mut(), server.as_mut(), &mut Seen::default()).unwrap();
        pump(server.as_mut(), client.as_mut(), &mut at_server).unwrap();
        assert_eq!(at_server.data, vec![b"sctp from the client".to_vec()]);

        // The client closes: the server hands out close_notify and answers with its own.
        client.close().unwrap();
        assert!(client.is_closing());
        pump(client.as_mut(), server.as_mut(), &mut Seen::default()).unwrap();
        let mut closed = Seen::default();
        pump(server.as_mut(), client.as_mut(), &mut closed).unwrap();
        assert!(closed.close_notify);
        assert!(server.is_closed());
        assert!(server.send_application_data(b"late").is_err());
    }

    #[test]
    fn application_data_before_the_handshake_waits() {
        let mut client =
            OPENSSL_DTLS.new_dtls(&server_certificate(), Instant::now(), DtlsVersion::Dtls12, None).unwrap();
        client.set_active(true);
        assert_eq!(client.send_application_data(b"too early").unwrap(), 0, "str0m keeps it and tries again");
    }

    #[test]
    fn a_handshake_without_srtp_fails_with_a_reason_and_the_session_takes_nothing_more() {
        let now = Instant::now();
        let mut server = OPENSSL_DTLS.new_dtls(&server_certificate(), now, DtlsVersion::Dtls12, None).unwrap();
        server.set_active(false);
        // A client that offers no SRTP profile (a DTLS client that is not WebRTC).
        let mut context = SslContext::builder(SslMethod::dtls()).unwrap();
        let cert = rsa_certificate(2048);
        context.set_certificate(&X509::from_der(&cert.certificate).unwrap()).unwrap();
        context.set_private_key(&PKey::private_key_from_der(&cert.private_key).unwrap()).unwrap();
        context.set_options(SslOptions::NO_QUERY_MTU);
        let mut ssl = Ssl::new(&context.build()).unwrap();
        ssl.set_mtu(1150).unwrap();
        let mut plain = Session { active: true, ..Session::new(ssl, now) };
        plain.handle_packet(&[]).unwrap();
        let mut failure = None;
        for _ in 0..10 {
            pump(&mut plain, server.as_mut(), &mut Seen::default()).ok();
            if let Some(reason) = take_failure() {
                failure = Some(reason);
                break;
            }
            if pump(server.as_mut(), &mut plain, &mut Seen::default()).is_err() {
                break;
            }
        }
        let reason = failure.or_else(take_failure).expect("a reason for the failed handshake");
        assert!(reason.contains("SRTP"), "{reason}");
        assert!(server.handle_packet(&[22, 254, 253]).is_err(), "a failed session takes nothing more");
    }

    #[test]
    fn a_lost_flight_is_sent_again_on_the_timer() {
        let start = Instant::now();
        let mut client = OPENSSL_DTLS.new_dtls(&rsa_certificate(2048), start, DtlsVersion::Dtls12, None).unwrap();
        client.set_active(true);
        client.handle_packet(&[]).unwrap();
        let mut buf = vec![0; 2048];
        assert!(matches!(client.poll_output(&mut buf), DtlsOutput::Packet(_)), "the ClientHello");
        // Lost on the way. Until OpenSSL's timer (1 s) runs out, a tick sends nothing again.
        let DtlsOutput::Timeout(tick) = client.poll_output(&mut buf) else { panic!("a timer while handshaking") };
        assert!(tick <= start + Duration::from_secs(1));
        client.handle_timeout(tick).unwrap();
        assert!(matches!(client.poll_output(&mut buf), DtlsOutput::Timeout(_)), "no resend before 1 s");
        std::thread::sleep(Duration::from_millis(1100));
        client.handle_timeout(Instant::now()).unwrap();
        let DtlsOutput::Packet(again) = client.poll_output(&mut buf) else { panic!("the ClientHello sent again") };
        assert_eq!(again[0], 22, "a handshake record");
    }

    #[test]
    fn dtls_1_3_is_refused_in_words() {
        let refused = OPENSSL_DTLS.new_dtls(&server_certificate(), Instant::now(), DtlsVersion::Dtls13, None);
        assert!(refused.is_err());
    }

    #[test]
    fn the_provider_keeps_str0ms_srtp() {
        let ours = crypto_provider();
        let str0ms = str0m::crypto::from_feature_flags();
        assert!(std::ptr::addr_eq(ours.srtp_provider, str0ms.srtp_provider));
        assert!(std::ptr::addr_eq(ours.dtls_provider, &OPENSSL_DTLS as &dyn DtlsProvider));
    }
}
