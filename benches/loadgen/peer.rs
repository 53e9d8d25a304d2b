//! One WebRTC peer of the load generator: a sans-IO str0m `Rtc` (full ICE, the offering side, RTP
//! mode, VP8 + Opus) on its own UDP socket. Datagrams are read with their kernel receive time
//! (`SO_TIMESTAMPNS`), so latency figures do not include the load generator's own queueing.

use std::{
    io,
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::AsRawFd,
    time::Instant,
};

use str0m::{
    change::{SdpAnswer, SdpPendingOffer},
    media::{Direction, MediaKind, Mid, Simulcast, SimulcastLayer},
    net::{Protocol, Receive},
    Candidate, Event, Input, Output, Rtc,
};
use tokio::{io::Interest, net::UdpSocket};

pub struct Peer {
    pub rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    buffer: Vec<u8>,
    /// When str0m wants its next `Input::Timeout`.
    pub deadline: Instant,
    /// The kernel receive time (ns since the epoch) of the datagram being handled; handed to
    /// the event callback with each event it causes.
    received_at: Option<u64>,
}

/// A datagram and when the kernel received it.
struct Datagram {
    len: usize,
    source: SocketAddr,
    received_at: Option<u64>,
}

impl Peer {
    /// A peer on a new loopback socket with one m-line per `(kind, direction)`; returns the
    /// offer to POST and what `accept_answer` needs.
    pub fn offer(media: &[(MediaKind, Direction)]) -> io::Result<(Self, String, SdpPendingOffer, Vec<Mid>)> {
        Self::offer_with_rids(media, &[])
    }

    /// As [`offer`](Self::offer), a sending video m-line offering simulcast with these RIDs
    /// (RFC 8853) when there are any.
    pub fn offer_with_rids(
        media: &[(MediaKind, Direction)],
        rids: &[&str],
    ) -> io::Result<(Self, String, SdpPendingOffer, Vec<Mid>)> {
        let std_socket = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        std_socket.set_nonblocking(true)?;
        enable_rx_timestamps(&std_socket)?;
        let socket = UdpSocket::from_std(std_socket)?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(Instant::now());
        let candidate = Candidate::host(local, "udp").map_err(io::Error::other)?;
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let simulcast = || {
            let mut simulcast = Simulcast::new();
            rids.iter().for_each(|rid| simulcast.add_send_layer(SimulcastLayer::new(rid)));
            simulcast
        };
        let mids = media
            .iter()
            .map(|&(kind, direction)| {
                let layered = kind == MediaKind::Video && direction == Direction::SendOnly && !rids.is_empty();
                api.add_media(kind, direction, None, None, layered.then(simulcast))
            })
            .collect();
        let (offer, pending) = api.apply().ok_or_else(|| io::Error::other("no offer"))?;
        let peer = Self { rtc, socket, local, buffer: vec![0; 2000], deadline: Instant::now(), received_at: None };
        Ok((peer, offer.to_sdp_string(), pending, mids))
    }

    pub fn accept_answer(&mut self, pending: SdpPendingOffer, answer: &str) -> io::Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer).map_err(io::Error::other)?;
        self.rtc.sdp_api().accept_answer(pending, answer).map_err(io::Error::other)
    }

    /// Sends what str0m has to send and hands its events to `on_event`, until it asks for a timeout.
    pub fn drain(&mut self, mut on_event: impl FnMut(&mut Rtc, Event, Option<u64>)) -> io::Result<()> {
        loop {
            match self.rtc.poll_output().map_err(io::Error::other)? {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return Ok(());
                }
                Output::Transmit(t) => {
                    // A full buffer drops the datagram, as a network would.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(event) => on_event(&mut self.rtc, event, self.received_at),
            }
        }
    }

    /// Feeds str0m its timeout if it is due.
    pub fn on_deadline(&mut self, on_event: impl FnMut(&mut Rtc, Event, Option<u64>)) -> io::Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            self.rtc.handle_input(Input::Timeout(now)).map_err(io::Error::other)?;
        }
        self.drain(on_event)
    }

    /// Waits until the socket is readable.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads every datagram waiting on the socket into str0m.
    pub fn receive_all(&mut self, mut on_event: impl FnMut(&mut Rtc, Event, Option<u64>)) -> io::Result<()> {
        loop {
            let datagram =
                match self.socket.try_io(Interest::READABLE, || recv_with_time(&self.socket, &mut self.buffer)) {
                    Ok(datagram) => datagram,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(err) => return Err(err),
                };
            self.received_at = datagram.received_at;
            let contents = &self.buffer[..datagram.len];
            if let Ok(receive) = Receive::new(Protocol::Udp, datagram.source, self.local, contents) {
                // A datagram str0m rejects concerns that datagram only.
                let _ = self.rtc.handle_input(Input::Receive(Instant::now(), receive));
            }
            self.drain(&mut on_event)?;
            self.received_at = None;
        }
    }
}

fn enable_rx_timestamps(socket: &std::net::UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and an int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `recvmsg` with the `SCM_TIMESTAMPNS` control message (IPv4 sources only: the bench is loopback).
fn recv_with_time(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<Datagram> {
    let mut name = MaybeUninit::<libc::sockaddr_in>::zeroed();
    let mut control = [0u64; 8]; // aligned room for one timespec control message
    let mut iov = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
    // SAFETY: msghdr is plain data; every pointer set below outlives the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg describes valid buffers of the stated sizes.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled `name` (msg_namelen says how much); a zeroed remainder is valid.
    let name = unsafe { name.assume_init() };
    if name.sin_family != libc::AF_INET as libc::sa_family_t {
        return Err(io::Error::other("non-IPv4 source"));
    }
    let source = SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
        u16::from_be(name.sin_port),
    ));
    let mut received_at = None;
    // SAFETY: walking the control messages recvmsg wrote, with libc's own macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                received_at = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Datagram { len: len as usize, source, received_at })
}
