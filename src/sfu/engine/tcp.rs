//! ICE-TCP: passive host candidates on a TCP port (RFC 6544), each datagram framed behind a
//! 16-bit big-endian length (RFC 4571), for clients whose network drops UDP.
//!
//! The engine stays the one owner of every peer. Each connection has two small tasks: a reader
//! that cuts frames out of one growing buffer and hands them to the engine (a frame is a slice of
//! that buffer, shared by reference count: no allocation per frame), and a writer that drains a
//! bounded queue of the engine's datagrams into one reused buffer per batch. The engine never
//! waits on a connection: when a queue is full the datagram is dropped and counted, as a congested
//! network would drop it, so a stalled TCP viewer holds up nobody.
//!
//! Nothing reaches the engine before a connection's first frame is a STUN request (within
//! [`FIRST_FRAME`]); a connection silent for [`IDLE`] (ICE consent checks come every few seconds)
//! or whose writes stall for [`WRITE_STALL`] is closed.

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use str0m::net::DatagramSend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
    time::timeout,
};

use crate::sfu::demux::is_stun;

/// A new connection must open with a STUN binding request within this.
pub(super) const FIRST_FRAME: Duration = Duration::from_secs(10);
/// No byte for this long: the client is gone (or half-open).
pub(super) const IDLE: Duration = Duration::from_secs(30);
/// A write that cannot finish in this long: the client stopped reading.
const WRITE_STALL: Duration = Duration::from_secs(10);
/// Datagrams waiting to be written per connection (~0.4 MB of video).
pub(super) const WRITE_QUEUE: usize = 256;
/// Datagrams gathered into one write.
const WRITE_BATCH: usize = 32;
/// How much the read buffer grows by when it runs out (many frames per read system call).
const READ_CHUNK: usize = 64 * 1024;
/// The kernel's send buffer per connection. Kept small on purpose: what waits there is live media
/// getting older; past this, datagrams are dropped (NACK and keyframe requests repair the
/// picture) instead of queued for seconds.
const SEND_BUFFER: usize = 128 * 1024;

/// What the connection tasks tell the engine.
pub(super) enum TcpEvent {
    /// A connection whose first frame was STUN: the engine may now send to `remote`.
    Opened {
        id: u64,
        remote: SocketAddr,
        local: SocketAddr,
        out: mpsc::Sender<DatagramSend>,
    },
    /// One framed datagram.
    Frame {
        remote: SocketAddr,
        data: Bytes,
    },
    Closed {
        id: u64,
        remote: SocketAddr,
    },
}

/// The engine's end of one connection.
pub(super) struct TcpLink {
    pub id: u64,
    /// The candidate address the connection arrived at (what str0m knows it by).
    pub local: SocketAddr,
    pub out: mpsc::Sender<DatagramSend>,
}

/// Binds a listening socket (address reuse, so a restart does not wait for TIME_WAIT).
pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Accepts connections on `listener` (announced as `local`) until the engine stops. At most
/// `limit` connections live at once; more are closed at accept.
pub(super) fn spawn_acceptor(
    listener: TcpListener,
    local: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    limit: Arc<Semaphore>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = events.closed() => return,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(%err, "ICE-TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::debug!(%remote, "ICE-TCP connection refused: too many open");
                continue;
            };
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(connection(stream, id, remote, local, events.clone(), permit));
        }
    });
}

async fn connection(
    stream: TcpStream,
    id: u64,
    remote: SocketAddr,
    local: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
    let (mut read, write) = stream.into_split();
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let first = match timeout(FIRST_FRAME, next_frame(&mut read, &mut buffer)).await {
        Ok(Ok(Some(frame))) if is_stun(&frame) => frame,
        _ => return,
    };
    let (out, queue) = mpsc::channel(WRITE_QUEUE);
    if events.send(TcpEvent::Opened { id, remote, local, out }).await.is_err() {
        return;
    }
    let mut writer = tokio::spawn(write_frames(write, queue));
    let mut frame = Some(first);
    while let Some(data) = frame.take() {
        if events.send(TcpEvent::Frame { remote, data }).await.is_err() {
            break;
        }
        tokio::select! {
            next = timeout(IDLE, next_frame(&mut read, &mut buffer)) => frame = next.ok().and_then(Result::ok).flatten(),
            _ = &mut writer => break,
        }
    }
    // The engine drops its sender, the writer's queue closes and it sends FIN.
    let _ = events.send(TcpEvent::Closed { id, remote }).await;
}

/// The next RFC 4571 frame, or `None` at the end of the stream.
async fn next_frame(read: &mut OwnedReadHalf, buffer: &mut BytesMut) -> io::Result<Option<Bytes>> {
    loop {
        let missing = match buffer.get(..2) {
            Some(&[high, low]) => {
                let len = usize::from(u16::from_be_bytes([high, low]));
                if buffer.len() >= 2 + len {
                    buffer.advance(2);
                    return Ok(Some(buffer.split_to(len).freeze()));
                }
                2 + len - buffer.len()
            }
            _ => 2 - buffer.len(),
        };
        // Grows in large steps; once every frame cut from the old block is dropped, the block
        // is reused rather than a new one allocated.
        buffer.reserve(missing.max(READ_CHUNK / 4));
        if read.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}

/// Writes queued datagrams, each behind its length, a batch per system call.
async fn write_frames(mut write: OwnedWriteHalf, mut queue: mpsc::Receiver<DatagramSend>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut bytes = Vec::with_capacity(WRITE_BATCH * 1300);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        bytes.clear();
        for datagram in batch.drain(..) {
            let Ok(len) = u16::try_from(datagram.len()) else { continue };
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&datagram);
        }
        match timeout(WRITE_STALL, write.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "ICE-TCP write failed");
                return;
            }
            Err(_) => {
                tracing::debug!("ICE-TCP client stopped reading; closing");
                return;
            }
        }
    }
    let _ = write.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_cut_at_their_length_whatever_the_reads_deliver() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let mut wire = Vec::new();
            for payload in [&b"first"[..], &[], &[7u8; 3000]] {
                wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                wire.extend_from_slice(payload);
            }
            // One byte at a time: a frame and even its length may span reads.
            for byte in wire {
                client.write_all(&[byte]).await.unwrap();
                client.flush().await.unwrap();
            }
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (mut read, _write) = stream.into_split();
        let mut buffer = BytesMut::new();
        assert_eq!(next_frame(&mut read, &mut buffer).await.unwrap().unwrap(), &b"first"[..]);
        assert!(next_frame(&mut read, &mut buffer).await.unwrap().unwrap().is_empty());
        assert_eq!(next_frame(&mut read, &mut buffer).await.unwrap().unwrap(), &[7u8; 3000][..]);
        sender.await.unwrap();
        assert!(next_frame(&mut read, &mut buffer).await.unwrap().is_none(), "end of stream");
    }

    #[tokio::test]
    async fn a_connection_that_does_not_open_with_stun_never_reaches_the_engine() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events, mut engine) = mpsc::channel(8);
        spawn_acceptor(listener, addr, events, Arc::new(Semaphore::new(4)));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&[0, 4, 0x80, 0, 0, 1]).await.unwrap(); // an RTP-looking frame
        let mut rest = Vec::new();
        let closed = timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0))), "the server closes the connection");
        assert!(engine.try_recv().is_err(), "the engine heard nothing");
    }
}
