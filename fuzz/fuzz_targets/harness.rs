//! What the `http` and `datagram` targets share: one ferrocast server per process, started in
//! process on loopback (data in a temporary folder, HTTP on 127.0.0.1:0, media on 127.0.0.1 with
//! a port the kernel picks), one account with a publish token, a small HTTP/1.1 client over a real
//! TCP connection, and str0m peers (a WHIP publisher sending VP8 + Opus, a WHEP viewer) driven on
//! their own threads over real UDP sockets.
//!
//! Every panic, on any thread (the server's tasks included, even where the server catches it),
//! aborts the process: libFuzzer then saves the input being run. So does the server stopping.

#![allow(dead_code)] // each target uses a part

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use ferrocast::{config::Config, server::Application};
use str0m::{
    change::SdpAnswer,
    config::DtlsCert,
    media::{Direction, MediaKind, Mid, Pt},
    net::{Protocol, Receive},
    rtp::{RtpWrite, SeqNo},
    Candidate, Event, IceConnectionState, Input, Output, Rtc,
};

/// Longest a fuzzed request may take to be answered (its status line and headers).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The stream the harness's publisher feeds.
pub const STREAM: &str = "live";
/// Where the harness's own signaling requests come from: an address no fuzzed request uses, so
/// that the per-address limits those fill do not keep the harness's peers out.
pub const HARNESS_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 2, 0, 1);
pub const PASSWORD: &str = "correct horse battery";

// ---- process ------------------------------------------------------------------------------

/// Aborts on any panic (libFuzzer's own hook does too; this one also says which thread) and
/// ignores SIGPIPE: under libFuzzer's `main` the Rust runtime did not, and a write to a
/// connection the other side closed (ours or the server's) must be an error, not a death.
pub fn init_process() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: setting a signal disposition to SIG_IGN before any other thread uses it.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            eprintln!("==== panic on thread {:?}: a finding", thread.name().unwrap_or("<unnamed>"));
            default_hook(info);
            std::process::abort();
        }));
    });
}

/// Stops the fuzzer with a finding that is not a panic of the code under test.
pub fn finding(what: std::fmt::Arguments<'_>) -> ! {
    eprintln!("==== finding: {what}");
    std::process::abort();
}

// ---- HTTP client --------------------------------------------------------------------------

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug)]
pub enum Failure {
    /// No connection (not the server's fault: ephemeral ports, a source address).
    Connect(std::io::Error),
    /// The server did not answer in time: `stage` says how far it got.
    Timeout(&'static str),
    /// The server closed or reset the connection, or sent something that is not HTTP.
    Broken(String),
}

/// One HTTP/1.1 request: `Host`, `Connection: close` and `Content-Length` are added.
pub fn encode(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends `request` over a new TCP connection from `from` (any 127.0.0.0/8 address) and reads the
/// reply. The status line and headers must come within `timeout`; a body with a length (or
/// chunked) must be complete by then too. An event stream's body is not read.
pub fn exchange(server: SocketAddr, from: Ipv4Addr, request: &[u8], timeout: Duration) -> Result<Reply, Failure> {
    let deadline = Instant::now() + timeout;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(Failure::Connect)?;
    socket.set_reuse_address(true).map_err(Failure::Connect)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(from, 0)).into()).map_err(Failure::Connect)?;
    socket.connect_timeout(&server.into(), timeout).map_err(Failure::Connect)?;
    let mut stream: TcpStream = socket.into();
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(timeout)).map_err(Failure::Connect)?;
    // The server may answer (413, 415, 429) before reading the whole body and close: a failed
    // write is no failure as long as a reply comes.
    let _ = stream.write_all(request);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        match read_some(&mut stream, &mut chunk, deadline) {
            Ok(0) => return Err(Failure::Broken(format!("closed after {} bytes of head", buf.len()))),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(ReadError::Timeout) => return Err(Failure::Timeout("status line and headers")),
            Err(ReadError::Io(err)) => return Err(Failure::Broken(format!("reading the head: {err}"))),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Failure::Broken(format!("not an HTTP status line: {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let no_body = request.starts_with(b"HEAD ") || status == 204 || status == 304 || (100..200).contains(&status);
    let streaming = get("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
    if no_body || streaming {
        body.clear();
    } else if let Some(length) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            match read_some(&mut stream, &mut chunk, deadline) {
                Ok(0) => return Err(Failure::Broken(format!("body cut at {} of {length} bytes", body.len()))),
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(ReadError::Timeout) => return Err(Failure::Timeout("body with a content-length")),
                Err(ReadError::Io(err)) => return Err(Failure::Broken(format!("reading the body: {err}"))),
            }
        }
        body.truncate(length);
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(decoded) = dechunk(&body) {
                body = decoded;
                break;
            }
            match read_some(&mut stream, &mut chunk, deadline) {
                Ok(0) => return Err(Failure::Broken("chunked body cut".into())),
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(ReadError::Timeout) => return Err(Failure::Timeout("chunked body")),
                Err(ReadError::Io(err)) => return Err(Failure::Broken(format!("reading the body: {err}"))),
            }
        }
    } else {
        // Neither: the body ends with the connection (we asked for `Connection: close`).
        loop {
            match read_some(&mut stream, &mut chunk, deadline) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(ReadError::Timeout) => return Err(Failure::Timeout("body until close")),
                Err(_) => break,
            }
        }
    }
    Ok(Reply { status, headers, body })
}

enum ReadError {
    Timeout,
    Io(std::io::Error),
}

fn read_some(stream: &mut TcpStream, chunk: &mut [u8], deadline: Instant) -> Result<usize, ReadError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        match stream.read(chunk) {
            Ok(n) => return Ok(n),
            Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(ReadError::Io(err)),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete chunked body, decoded; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---- the server ---------------------------------------------------------------------------

pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub http: SocketAddr,
    /// The SFU's UDP address.
    pub rtc: SocketAddr,
    /// The account's public id (the `{account}` of WHEP URLs).
    pub account: String,
    /// A publish token's secret (any stream, multisource) for the fuzzed requests.
    pub token: String,
    /// Another one for the harness's own publisher, so that the per-token cap on publishers
    /// that the fuzzed requests fill does not keep it out.
    pub peer_token: String,
    _data: tempfile::TempDir,
}

/// The server of this process, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start_server)
}

fn start_server() -> Server {
    init_process();
    let data = tempfile::Builder::new().prefix("ferrocast-fuzz-").tempdir().expect("a temporary data folder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut config = Config::for_data_dir(data.path());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.rtc_udp_port = 0;
    config.rtc_ips = vec![Ipv4Addr::LOCALHOST.into()];
    // No recording happens (the token does not record): do not refuse to start on a full disk.
    config.recordings_min_free = 0;
    let (http, rtc) = runtime.block_on(async {
        let app = Application::build(config).await.unwrap_or_else(|err| panic!("the server does not start: {err}"));
        let http = app.local_addr();
        let rtc = *app.rtc_addrs().first().expect("a media address");
        tokio::spawn(async move {
            let ended = app.run_until(std::future::pending()).await;
            finding(format_args!("the server stopped by itself: {ended:?}"));
        });
        (http, rtc)
    });
    let (account, token, peer_token) = make_account(http);
    eprintln!("ferrocast fuzz harness: http://{http}, media udp {rtc}, account {account}");
    Server { runtime, http, rtc, account, token, peer_token, _data: data }
}

fn setup_request(http: SocketAddr, method: &str, path: &str, headers: &[(String, String)], body: &str) -> Reply {
    let request = encode(method, path, headers, body.as_bytes());
    match exchange(http, Ipv4Addr::LOCALHOST, &request, Duration::from_secs(30)) {
        Ok(reply) => reply,
        Err(err) => panic!("harness setup: {method} {path}: {err:?}"),
    }
}

/// Signs up, reads the account id and makes two publish tokens for any stream.
fn make_account(http: SocketAddr) -> (String, String, String) {
    let json = ("content-type".to_owned(), "application/json".to_owned());
    let body = serde_json::json!({ "email": "fuzz@example.com", "password": PASSWORD }).to_string();
    let signup = setup_request(http, "POST", "/api/v1/signup", std::slice::from_ref(&json), &body);
    assert_eq!(signup.status, 201, "harness setup: sign-up: {}", signup.text());
    let cookie = signup
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("harness setup: a session cookie")
        .to_owned();
    let cookie = ("cookie".to_owned(), cookie);
    let me = setup_request(http, "GET", "/api/v1/me", std::slice::from_ref(&cookie), "");
    assert_eq!(me.status, 200, "harness setup: /api/v1/me: {}", me.text());
    let me: serde_json::Value = serde_json::from_slice(&me.body).expect("harness setup: /me is JSON");
    let account = me["accountId"].as_str().expect("harness setup: accountId").to_owned();
    let token = |label: &str| {
        let body = serde_json::json!({ "label": label, "streams": ["*"], "multisource": true }).to_string();
        let token = setup_request(http, "POST", "/api/v1/tokens", &[json.clone(), cookie.clone()], &body);
        assert_eq!(token.status, 201, "harness setup: token: {}", token.text());
        let token: serde_json::Value = serde_json::from_slice(&token.body).expect("harness setup: token JSON");
        token["secret"].as_str().expect("harness setup: token secret").to_owned()
    };
    (account, token("fuzz"), token("harness"))
}

/// `GET /healthz` must be 200 (the SFU runs and the database answers).
pub fn check_health(server: &Server) {
    let request = encode("GET", "/healthz", &[], b"");
    match exchange(server.http, HARNESS_SOURCE, &request, Duration::from_secs(5)) {
        Ok(reply) if reply.status == 200 => {}
        Ok(reply) => finding(format_args!("/healthz answered {}: {}", reply.status, reply.text())),
        Err(err) => finding(format_args!("/healthz: {err:?}")),
    }
}

// ---- str0m peers --------------------------------------------------------------------------

/// One DTLS certificate for every client `Rtc` (making one is slow).
fn cert() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
}

/// What the driver thread and the fuzz thread share about a peer.
pub struct PeerState {
    pub rtc: Rtc,
    deadline: Instant,
    /// Next extended sequence number per mid (video, audio).
    pub seq: [u64; 2],
    /// RTP time per mid.
    pub time: [u32; 2],
    keyframe_asked: bool,
}

pub struct Peer {
    pub role: Role,
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub state: Mutex<PeerState>,
    /// The media sections: video, audio.
    pub mids: [Mid; 2],
    /// The server's ICE credentials (from the answer) and ours.
    pub server_ufrag: String,
    pub server_pwd: String,
    pub client_ufrag: String,
    /// The session's path (`Location`) and `ETag`.
    pub session_path: String,
    pub etag: String,
    connected: AtomicBool,
    dead: AtomicBool,
    stop: AtomicBool,
    /// When a datagram from the server last arrived (ms since `epoch`).
    last_rx: AtomicU64,
    epoch: Instant,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Peer {
    /// Offers (video + audio, sendonly for a publisher, recvonly for a viewer), POSTs the offer
    /// to WHIP or WHEP, applies the answer and waits until ICE and DTLS are up.
    pub fn connect(server: &Server, role: Role) -> Result<Arc<Peer>, String> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(|e| e.to_string())?;
        socket.set_read_timeout(Some(Duration::from_millis(5))).map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .enable_av1(true)
            .enable_opus(true, false);
        if let Some(cert) = cert() {
            builder = builder.set_dtls_cert(cert);
        }
        let mut rtc = builder.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
        let direction = match role {
            Role::Publisher => Direction::SendOnly,
            Role::Viewer => Direction::RecvOnly,
        };
        let mut api = rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, direction, None, None, None);
        let audio = api.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending) = api.apply().ok_or("no offer")?;
        let (path, mut headers) = match role {
            Role::Publisher => {
                (format!("/whip/{STREAM}"), vec![("authorization".to_owned(), format!("Bearer {}", server.peer_token))])
            }
            Role::Viewer => (format!("/whep/{}/{STREAM}", server.account), Vec::new()),
        };
        headers.push(("content-type".to_owned(), "application/sdp".to_owned()));
        let request = encode("POST", &path, &headers, offer.to_sdp_string().as_bytes());
        let reply = exchange(server.http, HARNESS_SOURCE, &request, Duration::from_secs(10))
            .map_err(|err| format!("POST {path}: {err:?}"))?;
        if reply.status != 201 {
            return Err(format!("POST {path}: {}: {}", reply.status, reply.text()));
        }
        let answer_text = reply.text();
        let session_path = reply.header("location").ok_or("201 without Location")?.to_owned();
        let etag = reply.header("etag").unwrap_or_default().to_owned();
        let answer = SdpAnswer::from_sdp_string(&answer_text).map_err(|e| e.to_string())?;
        rtc.sdp_api().accept_answer(pending, answer).map_err(|e| e.to_string())?;
        let attribute = |name: &str| {
            answer_text.lines().find_map(|l| l.trim_end_matches('\r').strip_prefix(name)).map(str::to_owned)
        };
        let server_ufrag = attribute("a=ice-ufrag:").ok_or("no ice-ufrag in the answer")?;
        let server_pwd = attribute("a=ice-pwd:").ok_or("no ice-pwd in the answer")?;
        let client_ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let epoch = Instant::now();
        let peer = Arc::new(Peer {
            role,
            socket: Arc::new(socket),
            local,
            state: Mutex::new(PeerState {
                rtc,
                deadline: Instant::now(),
                seq: [1, 1],
                time: [0, 0],
                keyframe_asked: true,
            }),
            mids: [video, audio],
            server_ufrag,
            server_pwd,
            client_ufrag,
            session_path,
            etag,
            connected: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            last_rx: AtomicU64::new(0),
            epoch,
            driver: Mutex::new(None),
        });
        let driven = peer.clone();
        let name = format!("{role:?}").to_lowercase();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || driven.drive())
            .map_err(|e| format!("a driver thread: {e}"))?;
        *peer.driver.lock().unwrap() = Some(handle);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !peer.connected.load(Ordering::Acquire) {
            if Instant::now() > deadline || peer.dead.load(Ordering::Acquire) {
                peer.close();
                return Err(format!("{role:?}: no connection in 10 s"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(peer)
    }

    /// Connected, alive, and heard from the server within `within`.
    pub fn healthy(&self, within: Duration) -> bool {
        let heard = Duration::from_millis(self.last_rx.load(Ordering::Relaxed));
        self.connected.load(Ordering::Acquire)
            && !self.dead.load(Ordering::Acquire)
            && self.epoch.elapsed().saturating_sub(heard) < within
    }

    /// Stops the driver thread (the server ends the session when ICE times out).
    pub fn close(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.driver.lock().unwrap().take() {
            let _ = handle.join();
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap()
    }

    /// Sends what the `Rtc` has to send and notes its events, until it asks for a timeout.
    pub fn drain(&self, state: &mut PeerState) {
        loop {
            match state.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    state.deadline = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected.store(true, Ordering::Release),
                    Event::KeyframeRequest(_) => state.keyframe_asked = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => {
                        self.dead.store(true, Ordering::Release)
                    }
                    _ => {}
                },
                Err(_) => {
                    self.dead.store(true, Ordering::Release);
                    return;
                }
            }
        }
    }

    /// The payload types the server accepted for a mid.
    pub fn pts(&self, state: &PeerState, index: usize) -> Vec<Pt> {
        state.rtc.media(self.mids[index]).map(|m| m.remote_pts().to_vec()).unwrap_or_default()
    }

    /// Writes one RTP packet on the mid `index` (0 video, 1 audio) through the `Rtc` (SRTP) and
    /// sends it; `seq_jump` and `time_jump` move the stream's sequence number and clock first.
    pub fn write_rtp(
        &self,
        state: &mut PeerState,
        index: usize,
        pt: Pt,
        seq_jump: i64,
        time_jump: u32,
        marker: bool,
        payload: &[u8],
    ) {
        state.seq[index] = state.seq[index].saturating_add_signed(seq_jump).max(1);
        state.time[index] = state.time[index].wrapping_add(time_jump);
        let (seq, time) = (state.seq[index], state.time[index]);
        state.seq[index] += 1;
        let mut api = state.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(self.mids[index], None) {
            let write = RtpWrite::new(pt, SeqNo::from(seq), time, Instant::now(), Arc::<[u8]>::from(payload))
                .marker(marker)
                .nackable(index == 0);
            tx.write_rtp(write);
        }
        self.drain(state);
    }

    /// The driver: reads the socket into the `Rtc`, feeds its timeouts, and for a publisher
    /// sends a small VP8 frame every 33 ms (a keyframe each second or when asked) and Opus
    /// every 20 ms.
    fn drive(&self) {
        let mut buffer = vec![0u8; 2048];
        let mut next_video = Instant::now();
        let mut next_audio = Instant::now();
        let mut frames = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            match self.socket.recv_from(&mut buffer) {
                Ok((n, source)) => {
                    self.last_rx.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                    let mut state = self.lock();
                    if let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buffer[..n]) {
                        let _ = state.rtc.handle_input(Input::Receive(Instant::now(), receive));
                    }
                    self.drain(&mut state);
                }
                Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
            let mut state = self.lock();
            let now = Instant::now();
            if now >= state.deadline {
                if state.rtc.handle_input(Input::Timeout(now)).is_err() {
                    self.dead.store(true, Ordering::Release);
                }
            }
            self.drain(&mut state);
            if self.role == Role::Publisher && self.connected.load(Ordering::Acquire) {
                if now >= next_video {
                    next_video = now + Duration::from_millis(33);
                    let keyframe = std::mem::take(&mut state.keyframe_asked) || frames % 30 == 0;
                    frames += 1;
                    let pts = self.pts(&state, 0);
                    let vp8 = pts.iter().copied().find(|pt| {
                        state
                            .rtc
                            .codec_config()
                            .iter()
                            .any(|p| p.pt() == *pt && p.spec().codec == str0m::format::Codec::Vp8)
                    });
                    if let Some(pt) = vp8.or(pts.first().copied()) {
                        let frame = vp8_frame(keyframe, frames);
                        self.write_rtp(&mut state, 0, pt, 0, 3000, true, &frame);
                    }
                }
                if now >= next_audio {
                    next_audio = now + Duration::from_millis(20);
                    if let Some(pt) = self.pts(&state, 1).first().copied() {
                        self.write_rtp(&mut state, 1, pt, 0, 960, false, &[0xfc, 0xff, 0xfe, 0x00, 0x01, 0x02]);
                    }
                }
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A one-packet VP8 frame: payload descriptor (S=1), frame tag (P=0 on keyframes) with the
/// keyframe start code and a 160x120 size, a frame number.
pub fn vp8_frame(keyframe: bool, number: u64) -> Vec<u8> {
    let mut frame = vec![0x10];
    if keyframe {
        frame.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xa0, 0x00, 0x78, 0x00]);
    } else {
        frame.extend_from_slice(&[0x11, 0x02, 0x00]);
    }
    frame.extend_from_slice(&number.to_be_bytes());
    frame.resize(120, 0x55);
    frame
}

/// A connected publisher on [`STREAM`] and a viewer of it, made again when either goes.
pub struct Live {
    pub publisher: Arc<Peer>,
    pub viewer: Arc<Peer>,
    pub reconnects: u64,
}

impl Live {
    pub fn connect(server: &Server) -> Live {
        let (publisher, viewer) = connect_pair(server);
        Live { publisher, viewer, reconnects: 0 }
    }

    /// Makes both peers again unless both are healthy (or `force`).
    pub fn ensure(&mut self, server: &Server, force: bool) -> bool {
        let within = Duration::from_secs(4);
        if !force && self.publisher.healthy(within) && self.viewer.healthy(within) {
            return false;
        }
        self.publisher.close();
        self.viewer.close();
        let (publisher, viewer) = connect_pair(server);
        self.publisher = publisher;
        self.viewer = viewer;
        self.reconnects += 1;
        true
    }
}

fn connect_pair(server: &Server) -> (Arc<Peer>, Arc<Peer>) {
    // The sessions a fuzz input ended (or the limits it filled) may take a while to clear.
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..20 {
        match Peer::connect(server, Role::Publisher) {
            Ok(publisher) => {
                for _ in 0..20 {
                    match Peer::connect(server, Role::Viewer) {
                        Ok(viewer) => {
                            if started.elapsed() > Duration::from_secs(2) {
                                eprintln!("harness: peers connected again after {:?}", started.elapsed());
                            }
                            return (publisher, viewer);
                        }
                        Err(err) => last = err,
                    }
                    eprintln!("harness: viewer not connected ({:?} in): {last}", started.elapsed());
                    std::thread::sleep(Duration::from_millis(250));
                }
                publisher.close();
            }
            Err(err) => last = err,
        }
        eprintln!("harness: publisher not connected ({:?} in): {last}", started.elapsed());
        std::thread::sleep(Duration::from_millis(250));
    }
    finding(format_args!("cannot connect a publisher and a viewer any more: {last}"));
}

// ---- STUN ---------------------------------------------------------------------------------

pub const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A STUN message with `USERNAME`, then `attributes` as given (padded to 4 bytes), then a valid
/// `MESSAGE-INTEGRITY` (keyed with `password`) and `FINGERPRINT`.
pub fn signed_stun(kind: u16, transaction: [u8; 12], username: &str, attributes: &[u8], password: &str) -> Vec<u8> {
    fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    let mut msg = Vec::with_capacity(64 + attributes.len());
    msg.extend_from_slice(&(kind & 0x3fff).to_be_bytes());
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&STUN_MAGIC);
    msg.extend_from_slice(&transaction);
    attribute(&mut msg, 0x0006, username.as_bytes());
    msg.extend_from_slice(attributes);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
    // MESSAGE-INTEGRITY covers the message with a length that counts itself (RFC 8489 §14.5).
    let with_integrity = msg.len() - 20 + 24;
    msg[2..4].copy_from_slice(&(with_integrity as u16).to_be_bytes());
    let integrity = hmac_sha1(password.as_bytes(), &[&msg]);
    attribute(&mut msg, 0x0008, &integrity);
    let with_fingerprint = msg.len() - 20 + 8;
    msg[2..4].copy_from_slice(&(with_fingerprint as u16).to_be_bytes());
    let crc = crc32fast::hash(&msg) ^ 0x5354_554e;
    attribute(&mut msg, 0x8028, &crc.to_be_bytes());
    msg
}

/// A binding request to `peer`'s server side, as its client would send it (no USE-CANDIDATE).
pub fn binding_request(peer: &Peer, transaction: [u8; 12]) -> Vec<u8> {
    let username = format!("{}:{}", peer.server_ufrag, peer.client_ufrag);
    let mut attributes = Vec::new();
    // PRIORITY
    attributes.extend_from_slice(&[0x00, 0x24, 0x00, 0x04]);
    attributes.extend_from_slice(&0x6e00_1eff_u32.to_be_bytes());
    // ICE-CONTROLLING
    attributes.extend_from_slice(&[0x80, 0x2a, 0x00, 0x08]);
    attributes.extend_from_slice(&0x0102_0304_0506_0708_u64.to_be_bytes());
    signed_stun(0x0001, transaction, &username, &attributes, &peer.server_pwd)
}
