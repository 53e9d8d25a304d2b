//! The WHIP/WHEP HTTP layer through the real router and our own server loop: one server per
//! process (see `harness.rs`) with a live stream (a str0m publisher and viewer), and per input
//! one structured request sent over a new TCP connection.
//!
//! Findings: a 5xx other than 503, no status line and headers within 2 s, a broken reply, a panic
//! anywhere in the process; every 1000 inputs `/healthz` must still answer 200.

#![no_main]

mod harness;

use std::{
    net::Ipv4Addr,
    sync::{Mutex, OnceLock},
};

use arbitrary::Arbitrary;
use harness::{Failure, Live, Server, REQUEST_TIMEOUT, STREAM};
use libfuzzer_sys::fuzz_target;

/// Largest body sent.
const MAX_BODY: usize = 8 * 1024;
/// Sessions remembered from `201 Created` replies (and the live peers' two).
const RECENT: usize = 16;

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
    Options,
    Put,
}

impl Method {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Put => "PUT",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Route {
    Whip,
    WhipSession,
    Whep,
    WhepSession,
    WhepEvents,
    WhepLayer,
    Probe,
    ProbeSession,
    /// One fuzzed path segment after `/whip/` or `/whep/` with any number of slashes in it.
    WhipRaw(String),
    WhepRaw(String),
}

/// A stream name.
#[derive(Arbitrary, Debug)]
enum Name {
    /// The live stream.
    Live,
    /// A valid name nobody publishes.
    Other,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Account {
    Real,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Session {
    /// One of the sessions seen lately (its account and stream replace the request's).
    Recent(u8),
    /// 32 hex digits from the input.
    Hex([u8; 16]),
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Query {
    None,
    Record(bool),
    SourceId(String),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    None,
    Sdp,
    Trickle,
    Json,
    SdpWithParameters,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Authorization {
    None,
    Token,
    /// The token with the scheme in another case and extra spaces.
    TokenOddly,
    Bearer(String),
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum IfMatch {
    None,
    /// The ETag of the session the request names, when it is a recent one.
    Current,
    Star,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Origin {
    None,
    Example,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
struct Request {
    method: Method,
    route: Route,
    stream: Name,
    account: Account,
    session: Session,
    query: Query,
    content_type: ContentType,
    authorization: Authorization,
    if_match: IfMatch,
    origin: Origin,
    /// Which loopback address the connection comes from: the per-address rate limits of the
    /// offer and trickle doors would otherwise answer most inputs with 429.
    source: u16,
    body: Body,
}

/// The rest of the input as it is (at most 8 KiB of it are sent): arbitrary's own `Vec<u8>`
/// would interleave a continue-flag byte with each body byte, and seed files could not hold an
/// SDP offer as text.
#[derive(Debug)]
struct Body(Vec<u8>);

impl<'a> Arbitrary<'a> for Body {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Body(<&[u8]>::arbitrary(u)?.to_vec()))
    }

    fn arbitrary_take_rest(u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Body(u.take_rest().to_vec()))
    }
}

#[derive(Clone, Debug)]
struct Known {
    account: String,
    stream: String,
    id: String,
    etag: String,
}

struct Rig {
    server: &'static Server,
    live: Live,
    recent: Vec<Known>,
    /// Where the next remembered session goes (the first two places are the live peers').
    next: usize,
    runs: u64,
    statuses: [u64; 6],
}

fn rig() -> &'static Mutex<Rig> {
    static RIG: OnceLock<Mutex<Rig>> = OnceLock::new();
    RIG.get_or_init(|| {
        let server = harness::server();
        let live = Live::connect(server);
        let mut rig = Rig { server, live, recent: Vec::new(), next: 2, runs: 0, statuses: [0; 6] };
        rig.remember_live();
        Mutex::new(rig)
    })
}

impl Rig {
    fn remember_live(&mut self) {
        let publisher = known_from(&self.live.publisher.session_path, &self.live.publisher.etag);
        let viewer = known_from(&self.live.viewer.session_path, &self.live.viewer.etag);
        let (Some(publisher), Some(viewer)) = (publisher, viewer) else { return };
        if self.recent.len() < 2 {
            self.recent = vec![publisher, viewer];
        } else {
            self.recent[0] = publisher;
            self.recent[1] = viewer;
        }
    }

    fn remember(&mut self, known: Known) {
        if self.recent.len() < RECENT {
            self.recent.push(known);
        } else {
            self.recent[self.next] = known;
            self.next = if self.next + 1 == RECENT { 2 } else { self.next + 1 };
        }
    }
}

/// A session from its `Location` (`/whip/{stream}/{id}` or `/whep/{account}/{stream}/{id}`).
fn known_from(location: &str, etag: &str) -> Option<Known> {
    let parts: Vec<&str> = location.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["whip", stream, id] => Some(Known {
            account: String::new(),
            stream: (*stream).to_owned(),
            id: (*id).to_owned(),
            etag: etag.to_owned(),
        }),
        ["whep", account, stream, id] => Some(Known {
            account: (*account).to_owned(),
            stream: (*stream).to_owned(),
            id: (*id).to_owned(),
            etag: etag.to_owned(),
        }),
        ["self-check", "probe", id] => {
            Some(Known { account: String::new(), stream: String::new(), id: (*id).to_owned(), etag: etag.to_owned() })
        }
        _ => None,
    }
}

/// Percent-encodes all but unreserved characters, so that any string is one path segment.
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Like [`segment`] but keeps `/`, `?`, `=`, `&` and `%` (raw paths and queries).
fn loose(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/?=&%!$'()*+,;:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A header value from fuzzed text: no CR, LF or NUL (which would change the request's framing
/// and make a hang that is ours, not the server's).
fn header_value(value: &str) -> String {
    value.chars().map(|c| if matches!(c, '\r' | '\n' | '\0') { ' ' } else { c }).collect()
}

fn build(rig: &Rig, input: &Request) -> (String, Vec<(String, String)>) {
    let server = rig.server;
    let mut stream = match &input.stream {
        Name::Live => STREAM.to_owned(),
        Name::Other => "other".to_owned(),
        Name::Fuzzed(name) => segment(name),
    };
    let mut account = match &input.account {
        Account::Real => server.account.clone(),
        Account::Fuzzed(name) => segment(name),
    };
    let mut etag = None;
    let session = match &input.session {
        Session::Recent(i) if !rig.recent.is_empty() => {
            let known = &rig.recent[usize::from(*i) % rig.recent.len()];
            if !known.stream.is_empty() {
                stream = known.stream.clone();
            }
            if !known.account.is_empty() {
                account = known.account.clone();
            }
            etag = Some(known.etag.clone());
            known.id.clone()
        }
        Session::Recent(_) => "0".repeat(32),
        Session::Hex(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Session::Fuzzed(id) => segment(id),
    };
    let mut path = match &input.route {
        Route::Whip => format!("/whip/{stream}"),
        Route::WhipSession => format!("/whip/{stream}/{session}"),
        Route::Whep => format!("/whep/{account}/{stream}"),
        Route::WhepSession => format!("/whep/{account}/{stream}/{session}"),
        Route::WhepEvents => format!("/whep/{account}/{stream}/{session}/events"),
        Route::WhepLayer => format!("/whep/{account}/{stream}/{session}/layer"),
        Route::Probe => "/self-check/probe".to_owned(),
        Route::ProbeSession => format!("/self-check/probe/{session}"),
        Route::WhipRaw(rest) => format!("/whip/{}", loose(rest)),
        Route::WhepRaw(rest) => format!("/whep/{}", loose(rest)),
    };
    match &input.query {
        Query::None => {}
        Query::Record(on) => path.push_str(if *on { "?record=1" } else { "?record=0" }),
        Query::SourceId(id) => path.push_str(&format!("?sourceId={}", segment(id))),
        Query::Raw(raw) => path.push_str(&format!("?{}", loose(raw))),
    }
    let mut headers = Vec::new();
    let content_type = match &input.content_type {
        ContentType::None => None,
        ContentType::Sdp => Some("application/sdp".to_owned()),
        ContentType::Trickle => Some("application/trickle-ice-sdpfrag".to_owned()),
        ContentType::Json => Some("application/json".to_owned()),
        ContentType::SdpWithParameters => Some("Application/SDP; charset=utf-8".to_owned()),
        ContentType::Fuzzed(value) => Some(header_value(value)),
    };
    if let Some(value) = content_type {
        headers.push(("content-type".to_owned(), value));
    }
    let authorization = match &input.authorization {
        Authorization::None => None,
        Authorization::Token => Some(format!("Bearer {}", server.token)),
        Authorization::TokenOddly => Some(format!("bEaReR   {} ", server.token)),
        Authorization::Bearer(value) => Some(format!("Bearer {}", header_value(value))),
        Authorization::Fuzzed(value) => Some(header_value(value)),
    };
    if let Some(value) = authorization {
        headers.push(("authorization".to_owned(), value));
    }
    let if_match = match &input.if_match {
        IfMatch::None => None,
        IfMatch::Current => etag.or_else(|| Some("\"00000000\"".to_owned())),
        IfMatch::Star => Some("*".to_owned()),
        IfMatch::Fuzzed(value) => Some(header_value(value)),
    };
    if let Some(value) = if_match {
        headers.push(("if-match".to_owned(), value));
    }
    match &input.origin {
        Origin::None => {}
        Origin::Example => headers.push(("origin".to_owned(), "https://player.example.com".to_owned())),
        Origin::Fuzzed(value) => headers.push(("origin".to_owned(), header_value(value))),
    }
    if matches!(input.method, Method::Options) {
        headers.push(("access-control-request-method".to_owned(), "POST".to_owned()));
    }
    (path, headers)
}

fuzz_target!(|input: Request| {
    let mut rig = rig().lock().unwrap();
    rig.runs += 1;
    let (path, headers) = build(&rig, &input);
    let body = &input.body.0[..input.body.0.len().min(MAX_BODY)];
    let method = input.method.as_str();
    let request = harness::encode(method, &path, &headers, body);
    // 127.1.0.0 – 127.1.255.255, or 127.0.0.1 itself (whose buckets the limits soon fill).
    let from = match input.source {
        0 => Ipv4Addr::LOCALHOST,
        n => Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8),
    };
    let server = rig.server;
    match harness::exchange(server.http, from, &request, REQUEST_TIMEOUT) {
        Ok(reply) => {
            let class = usize::from(reply.status / 100).min(5);
            rig.statuses[class] += 1;
            if reply.status >= 500 && reply.status != 503 {
                harness::finding(format_args!(
                    "{method} {path} answered {}: {}\nrequest: {:?}",
                    reply.status,
                    reply.text(),
                    String::from_utf8_lossy(&request)
                ));
            }
            if reply.status == 201 {
                let etag = reply.header("etag").unwrap_or_default();
                if let Some(known) = reply.header("location").and_then(|l| known_from(l, etag)) {
                    rig.remember(known);
                }
            }
        }
        Err(Failure::Connect(err)) => {
            // Not the server's doing (no source address, no ephemeral port): noted, not a finding.
            eprintln!("http target: no connection from {from}: {err}");
        }
        Err(Failure::Timeout(stage)) => harness::finding(format_args!(
            "{method} {path}: no {stage} within {REQUEST_TIMEOUT:?}\nrequest: {:?}",
            String::from_utf8_lossy(&request)
        )),
        Err(Failure::Broken(why)) => {
            harness::finding(format_args!("{method} {path}: {why}\nrequest: {:?}", String::from_utf8_lossy(&request)))
        }
    }
    if rig.runs % 1000 == 0 {
        harness::check_health(server);
        let Rig { live, .. } = &mut *rig;
        if live.ensure(server, false) {
            rig.remember_live();
        }
        if rig.runs % 5_000 == 0 {
            eprintln!(
                "http target: {} requests; replies by class 1xx..5xx {:?}; live peers made again {} times",
                rig.runs,
                &rig.statuses[1..],
                rig.live.reconnects
            );
        }
    }
});
