//! The data connection of a transfer between Pigeons, as both workers see it: an encrypted
//! socket with full reads and writes that notice a raised stop flag within a second and a
//! dead connection within [`STALL_TIMEOUT`], buffered both ways; and why a worker stopped.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::node::threads::StopFlag;
use crate::node::worker::Report;
use crate::protocol::frame::{self, Frame, HEADER_LEN, KIND_CHUNK};
use crate::protocol::transfer::Entry;
use crate::secure::{SecureReader, SecureWriter, Session};

/// How often blocked socket calls wake up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_secs(1);

/// A data connection that moves no byte for this long is considered dead (and resumed later).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a worker stopped early.
pub enum Stop {
    /// Network trouble: resumable.
    Link(String),
    /// A local or protocol error that retrying will not fix by itself.
    Fatal(String),
    /// The stop flag was raised.
    Cancelled,
}

impl Stop {
    /// The worker's last report.
    pub fn into_report(self) -> Report {
        match self {
            Stop::Link(why) => Report::Interrupted(why),
            Stop::Fatal(why) => Report::Failed(why),
            Stop::Cancelled => Report::Cancelled,
        }
    }
}

/// A socket error: the link failed (resumable).
pub fn link(err: &io::Error) -> Stop {
    Stop::Link(err.to_string())
}

/// Small frames are gathered up to this many bytes before a write, so many small files do
/// not cost several system calls each.
const GATHER_BYTES: usize = 256 * 1024;

/// An encrypted socket with stop-aware, stall-aware full reads and writes, buffered both
/// ways.
pub struct DataStream<'a> {
    /// Read side; its record buffer turns the small frames of small files into few reads.
    reader: SecureReader<TcpStream>,
    /// Write side (a clone of the same socket).
    writer: SecureWriter<TcpStream>,
    /// Gathered frames not yet written; see [`GATHER_BYTES`].
    gathered: Vec<u8>,
    /// Raised to stop the worker.
    stop: &'a StopFlag,
}

impl DataStream<'_> {
    /// Wraps the data connection `stream` and its session; `stop` ends every wait.
    pub fn new<'a>(
        stream: TcpStream,
        session: &Arc<Session>,
        stop: &'a StopFlag,
    ) -> io::Result<DataStream<'a>> {
        stream.set_read_timeout(Some(STOP_POLL))?;
        stream.set_write_timeout(Some(STOP_POLL))?;
        // Big writes: let the kernel fill whole segments.
        stream.set_nodelay(false)?;
        let writer = SecureWriter::new(stream.try_clone()?, session.clone());
        Ok(DataStream {
            reader: SecureReader::new(stream, session.clone()),
            writer,
            gathered: Vec::with_capacity(GATHER_BYTES),
            stop,
        })
    }

    /// Queues bytes for writing: small ones are gathered, large ones written at once (after
    /// what was gathered before them).
    pub fn gather(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        if self.gathered.len() + bytes.len() > GATHER_BYTES {
            self.flush()?;
        }
        if bytes.len() >= GATHER_BYTES {
            return self.write_full(bytes);
        }
        self.gathered.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes everything gathered and pushes it onto the network.
    pub fn flush(&mut self) -> Result<(), Stop> {
        let gathered = std::mem::take(&mut self.gathered);
        let written = self.write_full(&gathered);
        self.gathered = gathered;
        self.gathered.clear();
        written?;
        let writer = &mut self.writer;
        // One step of length one: done when the flush finally succeeds.
        drive(self.stop, 1, |_| writer.flush().map(|()| 1))
    }

    fn read_full(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        let reader = &mut self.reader;
        drive(self.stop, buf.len(), |done| reader.read(buf.get_mut(done..).unwrap_or_default()))
    }

    fn write_full(&mut self, buf: &[u8]) -> Result<(), Stop> {
        let writer = &mut self.writer;
        drive(self.stop, buf.len(), |done| writer.write(buf.get(done..).unwrap_or_default()))
    }

    /// Whether the worker was told to stop. Checked once per chunk: data that keeps flowing never hits a timeout, so a stop
    /// would otherwise wait for the end of the transfer.
    pub fn check_stop(&self) -> Result<(), Stop> {
        if self.stop.is_raised() { Err(Stop::Cancelled) } else { Ok(()) }
    }

    /// Writes one frame and pushes it onto the network.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), Stop> {
        self.gather(&frame.encode())?;
        self.flush()
    }

    /// Reads the next frame; chunk payloads land in `chunk` (reused, no allocation per chunk)
    /// and come back as `Frame::Chunk` with an empty vector.
    pub fn read_frame(&mut self, chunk: &mut Vec<u8>) -> Result<Frame, Stop> {
        self.check_stop()?;
        let mut header = [0u8; HEADER_LEN];
        self.read_full(&mut header)?;
        let header =
            frame::decode_header(header).map_err(|err| Stop::Fatal(format!("protocol error: {err}")))?;
        chunk.resize(header.len, 0);
        self.read_full(chunk)?;
        if header.kind == KIND_CHUNK {
            return Ok(Frame::Chunk(Vec::new()));
        }
        let mut whole = Vec::with_capacity(HEADER_LEN + header.len);
        whole.extend_from_slice(&frame::encode_header(header));
        whole.extend_from_slice(chunk);
        match frame::decode(&whole) {
            Ok(Some((frame, _))) => Ok(frame),
            Ok(None) => Err(Stop::Fatal("protocol error: short frame".into())),
            Err(err) => Err(Stop::Fatal(format!("protocol error: {err}"))),
        }
    }
}

/// Repeats `step` (a read or write at offset `done`) until `len` bytes moved. A socket
/// timeout is only a chance to look at the stop flag; no progress for [`STALL_TIMEOUT`]
/// means the connection is dead.
fn drive(stop: &StopFlag, len: usize, mut step: impl FnMut(usize) -> io::Result<usize>) -> Result<(), Stop> {
    let mut done = 0;
    let mut since = Instant::now();
    while done < len {
        match step(done) {
            Ok(0) => return Err(Stop::Link("connection closed".into())),
            Ok(n) => {
                done += n;
                since = Instant::now();
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                if stop.is_raised() {
                    return Err(Stop::Cancelled);
                }
                if since.elapsed() > STALL_TIMEOUT {
                    return Err(Stop::Link(format!("no data for {}s", STALL_TIMEOUT.as_secs())));
                }
            }
            Err(err) => return Err(Stop::Link(err.to_string())),
        }
    }
    Ok(())
}

/// Hashes the first `len` bytes of `file` (resuming needs the hash of what is already there).
pub fn hash_prefix(file: &mut File, len: u64, buf: &mut [u8]) -> io::Result<blake3::Hasher> {
    let mut hasher = blake3::Hasher::new();
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let piece = buf.get_mut(..want).unwrap_or_default();
        file.read_exact(piece)?;
        hasher.update(piece);
        left -= want as u64;
    }
    Ok(hasher)
}

/// Bytes of the entries before `index`.
pub fn bytes_before(entries: &[Entry], index: u32) -> u64 {
    entries.iter().take(usize::try_from(index).unwrap_or(usize::MAX)).map(|e| e.size).sum()
}
