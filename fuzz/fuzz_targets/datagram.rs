//! Datagrams into the running SFU: one server per process (see `harness.rs`) with a connected
//! str0m publisher and viewer; each input is sent as one UDP datagram from the publisher's
//! socket, the viewer's, a fresh one, or all three, so the demux routes it to a known peer (or
//! to none). The first byte chooses the sender and a shape that gets past the first checks:
//!
//! ```text
//! bits 0-1  sender: publisher, viewer, fresh socket, all three
//! bits 2-4  shape: 0 raw; 1 STUN header (magic cookie); 2 STUN naming the peer's ufrag;
//!           3 STUN with a valid MESSAGE-INTEGRITY and FINGERPRINT; 4 DTLS record (type 20-23);
//!           5 RTP v2 header (the publisher's SSRC and payload types); 6 RTCP (PT 200-206);
//!           7 RTP written through the publisher's own Rtc (so SRTP-protected: the payload
//!           reaches the forwarding path and the keyframe detection)
//! bit 5     lengths as the input has them instead of made consistent
//! bit 6     the peer named or imitated is the viewer instead of the publisher
//! bit 7     shape variant (a binding request's type; an integrity attribute; an RTP extension)
//! ```
//!
//! After the datagrams, a signed binding request from a socket of the harness must be answered:
//! the engine reads its one socket in order, so the reply means the input was handled (and its
//! coverage counted for it). Findings: a panic anywhere in the process (the engine's per-peer
//! guards included), the server stopping, `/healthz` not 200 (checked every 200 inputs).

#![no_main]

mod harness;

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use harness::{Live, Peer, Server, STUN_MAGIC};
use libfuzzer_sys::fuzz_target;

/// How long the barrier's reply may take before the peers are checked.
const BARRIER_WAIT: Duration = Duration::from_millis(300);

struct Rig {
    server: &'static Server,
    live: Live,
    barrier: UdpSocket,
    transaction: u64,
    runs: u64,
    barrier_misses: u64,
    misses_in_a_row: u32,
}

fn rig() -> &'static Mutex<Rig> {
    static RIG: OnceLock<Mutex<Rig>> = OnceLock::new();
    RIG.get_or_init(|| {
        let server = harness::server();
        let live = Live::connect(server);
        let barrier = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a barrier socket");
        barrier.set_read_timeout(Some(BARRIER_WAIT)).expect("a read timeout");
        Mutex::new(Rig { server, live, barrier, transaction: 0, runs: 0, barrier_misses: 0, misses_in_a_row: 0 })
    })
}

/// Reads the input from the front; past its end, zeros.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }

    fn byte(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.bytes())
    }

    fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.0)
    }
}

/// The datagram for shapes 0 to 6.
fn shape(kind: u8, input: &[u8], peer: &Peer, raw_lengths: bool, variant: bool) -> Vec<u8> {
    let mut r = Reader(input);
    let mut out = Vec::with_capacity(input.len() + 64);
    match kind {
        1 => {
            let typ = if variant { 0x0001 } else { r.u16() & 0x3fff };
            let length = r.u16();
            let transaction: [u8; 12] = r.bytes();
            let attributes = r.rest();
            out.extend_from_slice(&typ.to_be_bytes());
            let length = if raw_lengths { length } else { attributes.len() as u16 };
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&STUN_MAGIC);
            out.extend_from_slice(&transaction);
            out.extend_from_slice(attributes);
        }
        2 => {
            let transaction: [u8; 12] = r.bytes();
            let integrity: [u8; 20] = r.bytes();
            let attributes = r.rest();
            let username = format!("{}:{}", peer.server_ufrag, peer.client_ufrag);
            let mut body = Vec::new();
            body.extend_from_slice(&[0x00, 0x06]);
            body.extend_from_slice(&(username.len() as u16).to_be_bytes());
            body.extend_from_slice(username.as_bytes());
            while body.len() % 4 != 0 {
                body.push(0);
            }
            body.extend_from_slice(attributes);
            if variant {
                // A MESSAGE-INTEGRITY that cannot be right.
                while body.len() % 4 != 0 {
                    body.push(0);
                }
                body.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
                body.extend_from_slice(&integrity);
            }
            out.extend_from_slice(&0x0001u16.to_be_bytes());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(&STUN_MAGIC);
            out.extend_from_slice(&transaction);
            out.extend_from_slice(&body);
        }
        3 => {
            let typ = if variant { 0x0001 } else { r.u16() };
            let transaction: [u8; 12] = r.bytes();
            let username = format!("{}:{}", peer.server_ufrag, peer.client_ufrag);
            out = harness::signed_stun(typ, transaction, &username, r.rest(), &peer.server_pwd);
        }
        4 => {
            let content_type = 20 + (r.byte() & 3);
            let version = r.u16();
            let epoch = r.u16();
            let sequence: [u8; 6] = r.bytes();
            let length = r.u16();
            let fragment = r.rest();
            out.push(content_type);
            out.extend_from_slice(&if raw_lengths { version } else { 0xfefd }.to_be_bytes());
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&sequence);
            out.extend_from_slice(&if raw_lengths { length } else { fragment.len() as u16 }.to_be_bytes());
            out.extend_from_slice(fragment);
        }
        5 => {
            let first = r.byte();
            let second = r.byte();
            let sequence = r.u16();
            let time: [u8; 4] = r.bytes();
            let ssrc: [u8; 4] = r.bytes();
            let (real_ssrc, pts) = {
                let mut state = peer.lock();
                let pts = peer.pts(&state, usize::from(second & 1));
                let ssrc = state.rtc.direct_api().stream_tx_by_mid(peer.mids[0], None).map(|tx| *tx.ssrc());
                (ssrc, pts)
            };
            // V=2; padding, extension and CSRC count from the input.
            out.push(0x80 | (first & 0x3f));
            let pt = match pts.get(usize::from(second >> 1) % pts.len().max(1)) {
                Some(pt) if !raw_lengths => **pt,
                _ => second & 0x7f,
            };
            out.push(pt | if variant { 0x80 } else { 0 });
            out.extend_from_slice(&sequence.to_be_bytes());
            out.extend_from_slice(&time);
            match real_ssrc {
                Some(real) if !raw_lengths => out.extend_from_slice(&real.to_be_bytes()),
                _ => out.extend_from_slice(&ssrc),
            }
            out.extend_from_slice(r.rest());
        }
        6 => {
            let first = r.byte();
            let pt = 200 + r.byte() % 7;
            let length = r.u16();
            let ssrc: [u8; 4] = r.bytes();
            let rest = r.rest();
            out.push(0x80 | (first & 0x3f));
            out.push(pt);
            let words = ((4 + rest.len()) / 4) as u16;
            out.extend_from_slice(&if raw_lengths { length } else { words }.to_be_bytes());
            out.extend_from_slice(&ssrc);
            out.extend_from_slice(rest);
            if !raw_lengths {
                while out.len() % 4 != 0 {
                    out.push(0);
                }
            }
        }
        _ => out.extend_from_slice(input),
    }
    out
}

/// Shape 7: one RTP packet through the publisher's `Rtc`.
fn write_through_publisher(publisher: &Peer, input: &[u8], variant: bool) {
    let mut r = Reader(input);
    let choice = r.byte();
    let seq_jump = i64::from(r.byte() as i8);
    let time_jump = u32::from(r.u16());
    let index = usize::from(choice & 1);
    let mut state = publisher.lock();
    let pts = publisher.pts(&state, index);
    let Some(pt) = pts.get(usize::from(choice >> 1) % pts.len().max(1)).copied() else { return };
    let marker = variant || choice & 0x80 != 0;
    publisher.write_rtp(&mut state, index, pt, seq_jump, time_jump, marker, r.rest());
}

impl Rig {
    /// Sends a signed binding request to the publisher's server side and waits for its reply.
    fn barrier(&mut self) -> bool {
        self.transaction += 1;
        let mut transaction = [0u8; 12];
        transaction[4..].copy_from_slice(&self.transaction.to_be_bytes());
        let request = harness::binding_request(&self.live.publisher, transaction);
        if self.barrier.send_to(&request, self.server.rtc).is_err() {
            return false;
        }
        let mut buffer = [0u8; 1500];
        loop {
            match self.barrier.recv_from(&mut buffer) {
                Ok((n, _)) if n >= 20 && buffer[8..20] == transaction => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rig = rig().lock().unwrap();
    rig.runs += 1;
    if let Some((&control, rest)) = data.split_first() {
        let sender = control & 3;
        let kind = (control >> 2) & 7;
        let raw_lengths = control & 0x20 != 0;
        let peer = if control & 0x40 != 0 { &rig.live.viewer } else { &rig.live.publisher };
        let variant = control & 0x80 != 0;
        if kind == 7 {
            write_through_publisher(&rig.live.publisher, rest, variant);
        } else {
            let datagram = shape(kind, rest, peer, raw_lengths, variant);
            let to = rig.server.rtc;
            if sender == 0 || sender == 3 {
                let _ = rig.live.publisher.socket.send_to(&datagram, to);
            }
            if sender == 1 || sender == 3 {
                let _ = rig.live.viewer.socket.send_to(&datagram, to);
            }
            if sender >= 2 {
                if let Ok(fresh) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
                    let _ = fresh.send_to(&datagram, to);
                }
            }
        }
    }
    if rig.barrier() {
        rig.misses_in_a_row = 0;
    } else {
        rig.barrier_misses += 1;
        rig.misses_in_a_row += 1;
        // The publisher's session is gone (or going): make the peers again.
        let force = rig.misses_in_a_row >= 3;
        let server = rig.server;
        if rig.live.ensure(server, force) {
            rig.misses_in_a_row = 0;
        }
    }
    if rig.runs % 200 == 0 {
        let server = rig.server;
        harness::check_health(server);
        rig.live.ensure(server, false);
        if rig.runs % 20_000 == 0 {
            eprintln!(
                "datagram target: {} inputs; barrier replies missed {}; peers made again {} times",
                rig.runs, rig.barrier_misses, rig.live.reconnects
            );
        }
    }
});
