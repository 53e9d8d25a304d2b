//! Where datagrams leave: the engine queues every `Transmit` str0m hands out and sends the queue
//! with as few system calls as it can — `sendmmsg(2)`, up to [`BATCH`] datagrams a call, on Linux.
//!
//! Forwarding one packet to N viewers makes N datagrams at once; one call each was a third of the
//! SFU's CPU in the fan-out profile (syscall entry, descriptor lookup, per-call socket work). The
//! queue is flushed after each datagram read and each loop turn, so nothing waits for a batch to
//! fill. Sends never block: what a full socket buffer refuses is dropped and counted, as a network
//! would drop it. ICE-TCP datagrams go to their connection's bounded queue instead (`tcp.rs`).

use std::{collections::HashMap, io, net::SocketAddr};

use str0m::net::{Protocol, Transmit};
use tokio::net::UdpSocket;

use super::tcp::TcpLink;

/// Datagrams per `sendmmsg` call (the kernel's UIO_MAXIOV is far above; this bounds stack use).
pub(super) const BATCH: usize = 64;

pub(super) struct Socket {
    pub udp: UdpSocket,
    /// The addresses its host candidates announce (the bound one, or public ones behind 1:1
    /// NAT). The first is the address str0m knows arriving datagrams by, and the one their
    /// answers name as their source.
    pub announced: Vec<SocketAddr>,
}

/// The sending side, borrowed separately from the peers.
pub(super) struct Io {
    pub sockets: Vec<Socket>,
    /// The ICE-TCP candidate addresses (passive, RFC 6544); empty when TCP is off.
    pub tcp_announced: Vec<SocketAddr>,
    /// Open ICE-TCP connections by the client's address.
    pub tcp: HashMap<SocketAddr, TcpLink>,
    queued: Vec<Transmit>,
    /// Datagrams dropped because a socket buffer or a connection's queue was full (a slow path
    /// never waits).
    pub dropped: u64,
}

impl Io {
    pub fn new(sockets: Vec<Socket>, tcp_announced: Vec<SocketAddr>) -> Self {
        Self { sockets, tcp_announced, tcp: HashMap::new(), queued: Vec::with_capacity(BATCH), dropped: 0 }
    }

    /// Queues a datagram; a full batch goes out at once.
    pub fn send(&mut self, transmit: Transmit) {
        if transmit.proto != Protocol::Udp {
            let queued =
                self.tcp.get(&transmit.destination).is_some_and(|link| link.out.try_send(transmit.contents).is_ok());
            self.dropped += u64::from(!queued);
            return;
        }
        self.queued.push(transmit);
        if self.queued.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends everything queued.
    pub fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let mut queued = std::mem::take(&mut self.queued);
        if let [only] = self.sockets.as_slice() {
            self.dropped += send_all(&only.udp, &queued);
        } else {
            // Several local addresses: each datagram leaves from the one its candidate named.
            queued.sort_by_key(|t| t.source);
            for run in queued.chunk_by(|a, b| a.source == b.source) {
                let socket =
                    self.sockets.iter().find(|s| s.announced.contains(&run[0].source)).unwrap_or(&self.sockets[0]);
                self.dropped += send_all(&socket.udp, run);
            }
        }
        queued.clear();
        self.queued = queued;
    }
}

/// Sends `transmits` from `socket`; returns how many were dropped.
#[cfg(target_os = "linux")]
fn send_all(socket: &UdpSocket, transmits: &[Transmit]) -> u64 {
    use std::os::fd::AsRawFd;

    let mut dropped = 0;
    for chunk in transmits.chunks(BATCH) {
        // SAFETY: plain C structs; all-zero is a valid value for each.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, t) in chunk.iter().enumerate() {
            let addr_len = write_sockaddr(t.destination, &mut addrs[i]);
            iovecs[i] = libc::iovec { iov_base: t.contents.as_ptr() as *mut libc::c_void, iov_len: t.contents.len() };
            let header = &mut messages[i].msg_hdr;
            header.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = addr_len;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < chunk.len() {
            let remaining = &mut messages[sent..chunk.len()];
            // SAFETY: every header points at an address and a buffer that outlive the call
            // (`addrs`, `iovecs` on this frame; the contents borrowed from `transmits`).
            let n = unsafe {
                libc::sendmmsg(socket.as_raw_fd(), remaining.as_mut_ptr(), remaining.len() as libc::c_uint, 0)
            };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                dropped += (chunk.len() - sent) as u64;
                break;
            }
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first datagram failed for a reason of its own (e.g. an unreachable
            // destination): it alone is lost.
            tracing::debug!(%err, to = %chunk[sent].destination, "send failed");
            sent += 1;
        }
    }
    dropped
}

#[cfg(target_os = "linux")]
fn write_sockaddr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Elsewhere: one non-blocking send per datagram.
#[cfg(not(target_os = "linux"))]
fn send_all(socket: &UdpSocket, transmits: &[Transmit]) -> u64 {
    let mut dropped = 0;
    for t in transmits {
        match socket.try_send_to(&t.contents, t.destination) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => dropped += 1,
            Err(err) => tracing::debug!(%err, to = %t.destination, "send failed"),
        }
    }
    dropped
}
