//! One TCP connection to a peer: a reader thread that runs the handshake and turns decrypted
//! bytes into frames for the family, and a writer thread that encrypts the outgoing frames.
//! Either end stops both. Closing a connection never waits for its threads: they end once
//! the socket is shut down, and the hub joins them when they have.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::Report;
use super::rooms::CheckedEvents;
use crate::node::doorbell::Bell;
use crate::node::threads;
use crate::protocol::DecodeError;
use crate::protocol::frame::{self, Frame};
use crate::secure::{HandshakeError, Identity, Role, SecureReader, SecureWriter, Session, handshake};

/// A peer must finish the handshake and say hello this soon after connecting. The socket's
/// read timeout catches a silent peer; the hub's deadline, counted from the connection's
/// start, catches a slow-loris one trickling a byte now and then.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// An established connection with no traffic for this long is closed; the next message opens
/// a fresh one, which is cheap on a LAN.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A write that makes no progress for this long means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames the hub may queue on one connection before it treats the peer as stuck.
const WRITE_QUEUE: usize = 256;

/// Bytes asked of the decrypting reader per read.
const READ_CHUNK: usize = 64 * 1024;

/// Identifies a connection within one node's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The hub's handle on a running connection.
pub struct ConnHandle {
    /// Encoded frames to write, in order. Full means the peer is not reading.
    pub writer: Sender<Vec<u8>>,
    /// Address of the other end.
    pub remote: SocketAddr,
    /// A clone of the socket, kept only to shut it down, which ends both threads.
    stream: TcpStream,
    /// Reader and writer threads, joined when the connection is dropped by the hub.
    threads: Vec<JoinHandle<()>>,
}

impl ConnHandle {
    /// Starts the reader and writer threads for `stream`; the reader runs the handshake as
    /// `role` first and reports the session to the hub before any frame.
    pub fn start(
        id: ConnId,
        stream: TcpStream,
        role: Role,
        identity: Arc<Identity>,
        net: &Bell<Report>,
    ) -> io::Result<ConnHandle> {
        let remote = stream.peer_addr()?;
        let (writer, queue) = crossbeam_channel::bounded(WRITE_QUEUE);
        let (session_tx, session_rx) = crossbeam_channel::bounded(1);
        let read_half = stream.try_clone()?;
        let write_half = stream.try_clone()?;
        let net_r = net.clone();
        let net_w = net.clone();
        let reader = threads::spawn(&format!("pigeon-conn-r{}", id.0), move || {
            read_loop(id, &read_half, role, &identity, &session_tx, &net_r);
        })?;
        let writer_thread = threads::spawn(&format!("pigeon-conn-w{}", id.0), move || {
            // No session means the handshake failed; the reader reports that.
            if let Ok(session) = session_rx.recv() {
                write_loop(id, &write_half, session, &queue, &net_w);
            }
        })?;
        Ok(ConnHandle { writer, remote, stream, threads: vec![reader, writer_thread] })
    }

    /// Queues an encoded frame; `false` when the queue is full or the writer has stopped.
    pub fn send(&self, frame: &Frame) -> bool {
        self.writer.try_send(frame.encode()).is_ok()
    }

    /// Lets the connection's threads end without closing the socket and returns it with the
    /// threads: used when the peer turned the connection into a data stream (its first frame
    /// was a fetch, after which the reader stopped by itself). The writer ends once it has
    /// written what is queued (our hello), so whoever writes on the socket next joins the
    /// threads first. The session's counters carry over to the new owner.
    pub fn release(self) -> (TcpStream, Vec<JoinHandle<()>>) {
        drop(self.writer);
        (self.stream, self.threads)
    }

    /// Shuts the socket down (both threads end promptly) and returns the threads, to be
    /// joined once they have.
    pub fn close(self) -> Vec<JoinHandle<()>> {
        // Already closed by the peer is fine: the threads are ending either way.
        self.stream.shutdown(Shutdown::Both).ok();
        drop(self.writer);
        self.threads
    }
}

fn read_loop(
    id: ConnId,
    stream: &TcpStream,
    role: Role,
    identity: &Identity,
    session_tx: &Sender<Arc<Session>>,
    net: &Bell<Report>,
) {
    let (reason, misbehaved) = match secure_and_read(id, stream, role, identity, session_tx, net) {
        Ok(Ended::HandedOver) => return,
        Ok(Ended::Closed) => (String::from("closed by peer"), false),
        Err(err) => {
            let misbehaved = err.is_misbehaviour();
            (err.to_string(), misbehaved)
        }
    };
    // The hub may be gone during shutdown; nobody is left to tell.
    net.send(Report::Closed { conn: id, reason, misbehaved }).ok();
}

/// How a reader ended without error.
enum Ended {
    /// The stream ended between frames, or the hub is gone.
    Closed,
    /// The first frame was a fetch: the socket now belongs to a transfer worker.
    HandedOver,
}

fn secure_and_read(
    id: ConnId,
    stream: &TcpStream,
    role: Role,
    identity: &Identity,
    session_tx: &Sender<Arc<Session>>,
    net: &Bell<Report>,
) -> Result<Ended, ReadError> {
    stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let session = Arc::new(handshake(&mut &*stream, identity, role)?);
    if net.send(Report::Secured { conn: id, session: session.clone() }).is_err() {
        return Ok(Ended::Closed);
    }
    session_tx.send(session.clone()).ok();
    let mut reader = FrameReader::new(SecureReader::new(stream, session));
    let mut greeted = false;
    while let Some(frame) = reader.next_frame()? {
        if !greeted {
            let handover = matches!(frame, Frame::Fetch(_));
            if !handover && !matches!(frame, Frame::Hello(_)) {
                return Err(ReadError::NoHello);
            }
            if handover {
                // Nothing may follow a fetch until the data has been sent: a reader holding
                // bytes that belong to the transfer worker would lose them.
                if !reader.is_drained() {
                    return Err(ReadError::NoHello);
                }
                net.send(Report::Frame { conn: id, frame }).ok();
                return Ok(Ended::HandedOver);
            }
            greeted = true;
            stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        }
        // Signatures of room events are checked here, on the connection's own thread: a
        // catch-up of thousands costs the hub nothing but storing them.
        let report = match frame {
            Frame::RoomEvents(events) => Report::RoomEvents {
                conn: id,
                checked: CheckedEvents::check(&events, reader.last_frame_bytes),
            },
            frame => Report::Frame { conn: id, frame },
        };
        if net.send(report).is_err() {
            break;
        }
    }
    Ok(Ended::Closed)
}

fn write_loop(
    id: ConnId,
    stream: &TcpStream,
    session: Arc<Session>,
    queue: &Receiver<Vec<u8>>,
    net: &Bell<Report>,
) {
    let mut writer = SecureWriter::new(stream, session);
    let mut write_batch = |first: Vec<u8>| -> io::Result<()> {
        writer.write_all(&first)?;
        // Frames queued meanwhile share records and one system call.
        for more in queue.try_iter() {
            writer.write_all(&more)?;
        }
        writer.flush()
    };
    for bytes in queue {
        if let Err(err) = write_batch(bytes) {
            log::debug!("connection {}: write failed: {err}", id.0);
            // Unblocks the reader, which reports the close to the hub.
            stream.shutdown(Shutdown::Both).ok();
            let reason = format!("write failed: {err}");
            net.send(Report::Closed { conn: id, reason, misbehaved: false }).ok();
            return;
        }
    }
}

/// Why a connection's reader stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket failed or timed out.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that are not valid framing.
    #[error("protocol error: {0}")]
    Decode(#[from] DecodeError),
    /// The stream ended in the middle of a frame.
    #[error("connection closed mid-frame")]
    Truncated,
    /// The first frame was not a hello.
    #[error("peer did not start with hello")]
    NoHello,
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

impl ReadError {
    /// Whether the peer broke the protocol (counted), rather than the network failing.
    fn is_misbehaviour(&self) -> bool {
        match self {
            ReadError::Decode(_) | ReadError::NoHello => true,
            // Records that fail to decrypt were altered, replayed or reordered.
            ReadError::Io(err) => err.kind() == io::ErrorKind::InvalidData,
            ReadError::Handshake(err) => err.is_misbehaviour(),
            ReadError::Truncated => false,
        }
    }
}

/// Turns a byte stream into frames; works over any `Read` and does not care how the bytes
/// are split.
pub struct FrameReader<R> {
    /// The byte source.
    inner: R,
    /// Bytes received and not yet consumed; `start..` is pending.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte in `buf`.
    start: usize,
    /// Bytes the frame handed out last took, header included.
    last_frame_bytes: usize,
}

impl<R: Read> FrameReader<SecureReader<R>> {
    /// Whether every byte received so far was handed out as a frame.
    fn is_drained(&self) -> bool {
        self.start == self.buf.len() && self.inner.is_drained()
    }
}

impl<R: Read> FrameReader<R> {
    /// Wraps a byte source.
    pub fn new(inner: R) -> Self {
        FrameReader { inner, buf: Vec::with_capacity(READ_CHUNK), start: 0, last_frame_bytes: 0 }
    }

    /// The next frame, `None` at a clean end of stream (between frames).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            if let Some((frame, used)) = frame::decode(pending)? {
                self.start += used;
                self.last_frame_bytes = used;
                return Ok(Some(frame));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let filled = self.buf.len();
            self.buf.resize(filled + READ_CHUNK, 0);
            let read = self.inner.read(self.buf.get_mut(filled..).unwrap_or_default());
            self.buf.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(ReadError::Truncated),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::announce::{Presence, Status};
    use crate::protocol::keys::PublicKey;
    use crate::protocol::message::{Receipt, WireMessage};

    fn frames() -> Vec<Frame> {
        let key = PublicKey::from_bytes([1; 32]);
        let id = key.peer_id();
        let msg_id = "0f0e0d0c0b0a09080706050403020100".parse().unwrap();
        vec![
            Frame::Hello(Presence {
                id,
                key,
                name: "Ana".into(),
                group: "Ops".into(),
                host: "h".into(),
                status: Status::Away,
                port: 2426,
                heartbeat_secs: 7,
                seq: 0,
            }),
            Frame::Message(WireMessage { msg_id, sent_at_ms: 1, text: "你好".into(), also_to: Vec::new() }),
            Frame::Unknown { kind: 77 },
            Frame::Delivered(Receipt { msg_ids: vec![msg_id] }),
        ]
    }

    /// Hands out the bytes in the given pieces, one piece per read.
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            out[..piece.len()].copy_from_slice(&piece);
            Ok(piece.len())
        }
    }

    fn read_all(pieces: Vec<Vec<u8>>) -> Vec<Frame> {
        // An empty read means end of stream, so empty pieces are not handed out.
        let pieces = pieces.into_iter().filter(|piece| !piece.is_empty()).collect();
        let mut reader = FrameReader::new(Pieces(pieces));
        std::iter::from_fn(|| reader.next_frame().unwrap()).collect()
    }

    #[test]
    fn same_frames_at_every_split_point_and_one_byte_at_a_time() {
        let bytes: Vec<u8> = frames().iter().flat_map(Frame::encode).collect();
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(read_all(vec![a.to_vec(), b.to_vec()]), frames(), "split at {split}");
        }
        let single: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        assert_eq!(read_all(single), frames());
    }

    #[test]
    fn end_of_stream_mid_frame_is_an_error() {
        let bytes = frames()[1].encode();
        let mut reader = FrameReader::new(Pieces(vec![bytes[..bytes.len() - 1].to_vec()]));
        assert!(matches!(reader.next_frame(), Err(ReadError::Truncated)));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut reader = FrameReader::new(Pieces(vec![b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()]));
        assert!(matches!(reader.next_frame(), Err(ReadError::Decode(DecodeError::BadMagic))));
    }
}
