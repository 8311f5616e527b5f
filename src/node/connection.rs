//! One TCP connection to a peer: a reader thread that turns bytes into frames for the hub and
//! a writer thread that drains the hub's outgoing frames. Either end stops both.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::hub::NetEvent;
use super::threads;
use crate::protocol::DecodeError;
use crate::protocol::frame::{self, Frame};

/// A peer must say hello this soon after connecting; a silent socket (or a slow-loris one
/// trickling bytes) is closed instead of holding a thread.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// An established connection with no traffic for this long is closed; the next message opens
/// a fresh one, which is cheap on a LAN.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A write that makes no progress for this long means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames the hub may queue on one connection before it treats the peer as stuck.
const WRITE_QUEUE: usize = 256;

/// Bytes asked of the socket per read.
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
    /// Starts the reader and writer threads for `stream`.
    pub fn start(id: ConnId, stream: TcpStream, net: &Sender<NetEvent>) -> io::Result<ConnHandle> {
        let remote = stream.peer_addr()?;
        let (writer, queue) = crossbeam_channel::bounded(WRITE_QUEUE);
        let read_half = stream.try_clone()?;
        let write_half = stream.try_clone()?;
        let net_r = net.clone();
        let net_w = net.clone();
        let reader = threads::spawn(&format!("pigeon-conn-r{}", id.0), move || {
            read_loop(id, &read_half, &net_r);
        })?;
        let writer_thread = threads::spawn(&format!("pigeon-conn-w{}", id.0), move || {
            write_loop(id, write_half, &queue, &net_w);
        })?;
        Ok(ConnHandle { writer, remote, stream, threads: vec![reader, writer_thread] })
    }

    /// Queues an encoded frame; `false` when the queue is full or the writer has stopped.
    pub fn send(&self, frame: &Frame) -> bool {
        self.writer.try_send(frame.encode()).is_ok()
    }

    /// Ends the connection's threads without closing the socket and returns it: used when the
    /// peer turned the connection into a data stream (its first frame was a fetch, after which
    /// the reader stopped by itself).
    pub fn release(self) -> TcpStream {
        // The writer drains what is queued (our hello), then ends because its queue closed.
        drop(self.writer);
        for thread in self.threads {
            if thread.join().is_err() {
                log::error!("a connection thread panicked");
            }
        }
        self.stream
    }

    /// Closes the socket (both threads end promptly) and joins them.
    pub fn close(self) {
        // Already closed by the peer is fine: the threads are ending either way.
        self.stream.shutdown(Shutdown::Both).ok();
        drop(self.writer);
        for thread in self.threads {
            if thread.join().is_err() {
                log::error!("a connection thread panicked");
            }
        }
    }
}

fn read_loop(id: ConnId, stream: &TcpStream, net: &Sender<NetEvent>) {
    let (reason, misbehaved) = match read_frames(id, stream, net) {
        Ok(Ended::HandedOver) => return,
        Ok(Ended::Closed) => (String::from("closed by peer"), false),
        Err(err) => (err.to_string(), matches!(err, ReadError::Decode(_) | ReadError::NoHello)),
    };
    // The hub may be gone during shutdown; nobody is left to tell.
    net.send(NetEvent::Closed { conn: id, reason, misbehaved }).ok();
}

/// How a reader ended without error.
enum Ended {
    /// The stream ended between frames, or the hub is gone.
    Closed,
    /// The first frame was a fetch: the socket now belongs to a transfer worker.
    HandedOver,
}

fn read_frames(id: ConnId, stream: &TcpStream, net: &Sender<NetEvent>) -> Result<Ended, ReadError> {
    stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
    let mut reader = FrameReader::new(stream);
    let mut greeted = false;
    while let Some(frame) = reader.next_frame()? {
        if !greeted {
            let handover = matches!(frame, Frame::Fetch(_));
            if !handover && !matches!(frame, Frame::Hello(_)) {
                return Err(ReadError::NoHello);
            }
            if handover {
                // Nothing follows a fetch until the data has been sent, so the reader holds no
                // bytes that belong to the transfer worker.
                net.send(NetEvent::Frame { conn: id, frame }).ok();
                return Ok(Ended::HandedOver);
            }
            greeted = true;
            stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        }
        if net.send(NetEvent::Frame { conn: id, frame }).is_err() {
            break;
        }
    }
    Ok(Ended::Closed)
}

fn write_loop(id: ConnId, mut stream: TcpStream, queue: &Receiver<Vec<u8>>, net: &Sender<NetEvent>) {
    if let Err(err) = stream.set_write_timeout(Some(WRITE_TIMEOUT)) {
        log::debug!("connection {}: {err}", id.0);
    }
    for bytes in queue {
        if let Err(err) = stream.write_all(&bytes) {
            log::debug!("connection {}: write failed: {err}", id.0);
            // Unblocks the reader, which reports the close to the hub.
            stream.shutdown(Shutdown::Both).ok();
            let reason = format!("write failed: {err}");
            net.send(NetEvent::Closed { conn: id, reason, misbehaved: false }).ok();
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
}

/// Turns a byte stream into frames; works over any `Read` (TCP now, an encrypted stream
/// later) and does not care how the bytes are split.
pub struct FrameReader<R> {
    /// The byte source.
    inner: R,
    /// Bytes received and not yet consumed; `start..` is pending.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte in `buf`.
    start: usize,
}

impl<R: Read> FrameReader<R> {
    /// Wraps a byte source.
    pub fn new(inner: R) -> Self {
        FrameReader { inner, buf: Vec::with_capacity(READ_CHUNK), start: 0 }
    }

    /// The next frame, `None` at a clean end of stream (between frames).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            if let Some((frame, used)) = frame::decode(pending)? {
                self.start += used;
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
    use crate::protocol::message::{Receipt, WireMessage};

    fn frames() -> Vec<Frame> {
        let id = "00112233445566778899aabbccddeeff".parse().unwrap();
        let msg_id = "0f0e0d0c0b0a09080706050403020100".parse().unwrap();
        vec![
            Frame::Hello(Presence {
                id,
                name: "Ana".into(),
                group: "Ops".into(),
                host: "h".into(),
                status: Status::Away,
                port: 2426,
            }),
            Frame::Message(WireMessage { msg_id, sent_at_ms: 1, text: "你好".into() }),
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
