//! Which peer a datagram belongs to, in O(1): every peer shares the socket.
//!
//! A peer's remote address is learnt from its first STUN binding request, found by our ICE ufrag
//! (the part before `:` in USERNAME); after that the source address alone routes its DTLS, SRTP
//! and STUN. The peer's `Rtc::accepts` still has the last word (it checks the message integrity).
//! Addresses are told apart by transport: behind one NAT address, a UDP port and a TCP port of
//! the same number belong to different clients.

use std::{collections::HashMap, net::SocketAddr};

use str0m::net::Protocol;

use super::peer::PeerId;

/// Where a datagram came from: a UDP source, or the remote end of an ICE-TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Remote {
    pub proto: Protocol,
    pub addr: SocketAddr,
}

impl Remote {
    pub fn udp(addr: SocketAddr) -> Self {
        Self { proto: Protocol::Udp, addr }
    }

    pub fn tcp(addr: SocketAddr) -> Self {
        Self { proto: Protocol::Tcp, addr }
    }
}

#[derive(Debug, Default)]
pub struct Demux {
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<Remote, PeerId>,
}

/// Where to try a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A known address.
    Known(PeerId),
    /// A STUN request naming a peer's ufrag from an address not (yet) bound to it.
    Ufrag(PeerId),
    Unknown,
}

impl Demux {
    pub fn add_peer(&mut self, ufrag: &str, peer: PeerId) {
        self.by_ufrag.insert(ufrag.to_owned(), peer);
    }

    pub fn bind_addr(&mut self, addr: Remote, peer: PeerId) -> Option<PeerId> {
        self.by_addr.insert(addr, peer).filter(|old| *old != peer)
    }

    pub fn remove_peer(&mut self, ufrag: &str, addrs: &[Remote], peer: PeerId) {
        if self.by_ufrag.get(ufrag) == Some(&peer) {
            self.by_ufrag.remove(ufrag);
        }
        for addr in addrs {
            if self.by_addr.get(addr) == Some(&peer) {
                self.by_addr.remove(addr);
            }
        }
    }

    pub fn route(&self, source: Remote, datagram: &[u8]) -> Route {
        // A STUN request names its peer; check it first so that an address reused by a new
        // session (a reconnecting client on the same port) reaches the new peer.
        if is_stun(datagram) {
            if let Some(peer) = local_ufrag(datagram).and_then(|ufrag| self.by_ufrag.get(ufrag)) {
                if self.by_addr.get(&source) != Some(peer) {
                    return Route::Ufrag(*peer);
                }
                return Route::Known(*peer);
            }
        }
        match self.by_addr.get(&source) {
            Some(peer) => Route::Known(*peer),
            None => Route::Unknown,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }
}

/// RFC 7983 demultiplexing: STUN messages start with a byte in 0..=3.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] < 2
}

/// Our ufrag from a binding request's USERNAME (`ours:theirs`), by a walk over the attributes
/// (RFC 8489 §14); integrity is checked later by str0m.
fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.get(4..8)? != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let attributes = datagram.get(20..20 + length)?;
    let mut at = 0;
    while at + 4 <= attributes.len() {
        let kind = u16::from_be_bytes([attributes[at], attributes[at + 1]]);
        let len = usize::from(u16::from_be_bytes([attributes[at + 2], attributes[at + 3]]));
        let value = attributes.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split_once(':').map(|(ours, _)| ours);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request with only a USERNAME attribute (enough for routing).
    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&0x0006u16.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = Vec::new();
        msg.extend_from_slice(&0x0001u16.to_be_bytes());
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn stun_is_routed_by_ufrag_then_the_address_by_itself() {
        let mut demux = Demux::default();
        demux.add_peer("abcd", 1);
        demux.add_peer("efgh", 2);
        let a = Remote::udp("127.0.0.1:5000".parse().unwrap());
        assert_eq!(demux.route(a, &binding_request("efgh:remote")), Route::Ufrag(2));
        demux.bind_addr(a, 2);
        assert_eq!(demux.route(a, &binding_request("efgh:remote")), Route::Known(2));
        assert_eq!(demux.route(a, &[0x80; 40]), Route::Known(2), "RTP from a bound address");
        assert_eq!(demux.route(Remote::udp("127.0.0.1:5001".parse().unwrap()), &[0x80; 40]), Route::Unknown);
        assert_eq!(
            demux.route(a, &binding_request("zzzz:remote")),
            Route::Known(2),
            "unknown ufrag: fall back to the address"
        );
    }

    #[test]
    fn removing_a_peer_forgets_its_ufrag_and_addresses_but_not_a_successors() {
        let mut demux = Demux::default();
        let a = Remote::udp("127.0.0.1:5000".parse().unwrap());
        demux.add_peer("abcd", 1);
        demux.bind_addr(a, 1);
        demux.add_peer("efgh", 2);
        assert_eq!(demux.bind_addr(a, 2), Some(1), "the address moved to a new peer");
        demux.remove_peer("abcd", &[a], 1);
        assert_eq!(demux.route(a, &[0x80; 40]), Route::Known(2));
        demux.remove_peer("efgh", &[a], 2);
        assert_eq!(demux.len(), (0, 0));
    }

    #[test]
    fn a_tcp_connection_and_a_udp_source_with_the_same_address_are_different_remotes() {
        let mut demux = Demux::default();
        let addr: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        demux.add_peer("abcd", 1);
        demux.bind_addr(Remote::udp(addr), 1);
        demux.add_peer("efgh", 2);
        assert_eq!(demux.route(Remote::tcp(addr), &binding_request("efgh:remote")), Route::Ufrag(2));
        demux.bind_addr(Remote::tcp(addr), 2);
        assert_eq!(demux.route(Remote::udp(addr), &[0x80; 40]), Route::Known(1));
        assert_eq!(demux.route(Remote::tcp(addr), &[0x80; 40]), Route::Known(2));
    }

    #[test]
    fn garbage_is_unknown_and_does_not_panic() {
        let demux = Demux::default();
        let a = Remote::udp("127.0.0.1:5000".parse().unwrap());
        for junk in [&[][..], &[0u8; 3], &[0u8; 20], &[1u8; 64], &[0xff; 1500]] {
            assert_eq!(demux.route(a, junk), Route::Unknown);
        }
    }
}
