//! Transfer workers: one thread per running transfer that streams file data over its own TCP
//! connection, hashes it with BLAKE3 on the way, and reports to the hub. The receiver pulls
//! (it asks for data from the first byte it lacks), so resuming is the normal case.
//!
//! Memory stays flat whatever the file size: one reusable chunk buffer per worker. Workers
//! block with a one-second socket timeout and check their cancel flag on every wake-up.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::files::{self, STAGING_DIR};
use super::hub::NetEvent;
use super::socket;
use crate::protocol::frame::{self, Frame, HEADER_LEN, KIND_CHUNK};
use crate::protocol::ids::{PeerId, TransferId};
use crate::protocol::transfer::{CHUNK_BYTES, Entry, EntryKind, Fetch, FileEnd, TransferDone};
use crate::secure::{Identity, Role, SecureReader, SecureWriter, Session, handshake};

/// How often blocked socket calls wake up to look at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// A data connection that moves no byte for this long is considered dead (and resumed later).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Time to establish the data connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest single write to a file. On these machines (ext4, Linux page cache) large writes
/// copy into the page cache far slower than small ones: the 1 GiB benchmark ran at
/// 0.28-0.36 GB/s with 1 MiB writes, 0.36-0.45 with 256 KiB and 0.60-0.99 with 64 KiB.
const FILE_WRITE_BYTES: usize = 64 * 1024;

/// Progress reports per second at most; the hub and UI need no more.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// How far a transfer has come; sent to the hub several times a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Bytes of all files that are done.
    pub bytes_done: u64,
    /// Bytes of all files.
    pub bytes_total: u64,
    /// Entry index of the file being sent.
    pub file_index: u32,
    /// Bytes of that file that are done.
    pub file_bytes_done: u64,
    /// Bytes per second since this run started.
    pub rate_bytes_per_sec: u64,
    /// Seconds left at that rate, when there is a rate.
    pub eta_secs: Option<u64>,
}

/// What a worker tells the hub.
#[derive(Debug)]
pub enum Report {
    /// Bytes moved.
    Progress(Progress),
    /// Receiver: entries before `files_done` are complete on disk.
    FilesDone(u32),
    /// Every file is at the receiver, verified.
    Finished,
    /// The connection broke; the transfer can resume from where it stopped.
    Interrupted(String),
    /// The transfer cannot go on (disk full, integrity check, unreadable source).
    Failed(String),
    /// The hub cancelled it.
    Cancelled,
}

/// Why a worker stopped early.
enum Stop {
    /// Network trouble: resumable.
    Link(String),
    /// A local or protocol error that retrying will not fix by itself.
    Fatal(String),
    /// The cancel flag was raised.
    Cancelled,
}

impl Stop {
    fn into_report(self) -> Report {
        match self {
            Stop::Link(why) => Report::Interrupted(why),
            Stop::Fatal(why) => Report::Failed(why),
            Stop::Cancelled => Report::Cancelled,
        }
    }
}

fn link(err: &io::Error) -> Stop {
    Stop::Link(err.to_string())
}

/// Small frames are gathered up to this many bytes before a write, so many small files do
/// not cost several system calls each.
const GATHER_BYTES: usize = 256 * 1024;

/// An encrypted socket with cancel-aware, stall-aware full reads and writes, buffered both
/// ways.
struct DataStream<'a> {
    /// Read side; its record buffer turns the small frames of small files into few reads.
    reader: SecureReader<TcpStream>,
    /// Write side (a clone of the same socket).
    writer: SecureWriter<TcpStream>,
    /// Gathered frames not yet written; see [`GATHER_BYTES`].
    gathered: Vec<u8>,
    /// Raised by the hub to stop the worker.
    cancel: &'a AtomicBool,
}

impl DataStream<'_> {
    fn new<'a>(
        stream: TcpStream,
        session: &Arc<Session>,
        cancel: &'a AtomicBool,
    ) -> io::Result<DataStream<'a>> {
        stream.set_read_timeout(Some(CANCEL_POLL))?;
        stream.set_write_timeout(Some(CANCEL_POLL))?;
        // Big writes: let the kernel fill whole segments.
        stream.set_nodelay(false)?;
        let writer = SecureWriter::new(stream.try_clone()?, session.clone());
        Ok(DataStream {
            reader: SecureReader::new(stream, session.clone()),
            writer,
            gathered: Vec::with_capacity(GATHER_BYTES),
            cancel,
        })
    }

    /// Queues bytes for writing: small ones are gathered, large ones written at once (after
    /// what was gathered before them).
    fn gather(&mut self, bytes: &[u8]) -> Result<(), Stop> {
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
    fn flush(&mut self) -> Result<(), Stop> {
        let gathered = std::mem::take(&mut self.gathered);
        let written = self.write_full(&gathered);
        self.gathered = gathered;
        self.gathered.clear();
        written?;
        let writer = &mut self.writer;
        // One step of length one: done when the flush finally succeeds.
        drive(self.cancel, 1, |_| writer.flush().map(|()| 1))
    }

    fn read_full(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        let reader = &mut self.reader;
        drive(self.cancel, buf.len(), |done| reader.read(buf.get_mut(done..).unwrap_or_default()))
    }

    fn write_full(&mut self, buf: &[u8]) -> Result<(), Stop> {
        let writer = &mut self.writer;
        drive(self.cancel, buf.len(), |done| writer.write(buf.get(done..).unwrap_or_default()))
    }

    /// Checked once per chunk: data that keeps flowing never hits a timeout, so a cancel
    /// would otherwise wait for the end of the transfer.
    fn check_cancel(&self) -> Result<(), Stop> {
        if self.cancel.load(Ordering::Relaxed) { Err(Stop::Cancelled) } else { Ok(()) }
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), Stop> {
        self.gather(&frame.encode())?;
        self.flush()
    }

    /// Reads the next frame; chunk payloads land in `chunk` (reused, no allocation per chunk)
    /// and come back as `Frame::Chunk` with an empty vector.
    fn read_frame(&mut self, chunk: &mut Vec<u8>) -> Result<Frame, Stop> {
        self.check_cancel()?;
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
/// timeout is only a chance to look at the cancel flag; no progress for [`STALL_TIMEOUT`]
/// means the connection is dead.
fn drive(
    cancel: &AtomicBool,
    len: usize,
    mut step: impl FnMut(usize) -> io::Result<usize>,
) -> Result<(), Stop> {
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
                if cancel.load(Ordering::Relaxed) {
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

/// Turns byte counts into throttled progress reports.
pub(crate) struct Meter {
    transfer: TransferId,
    net: Sender<NetEvent>,
    progress: Progress,
    started: Instant,
    start_bytes: u64,
    last_report: Option<Instant>,
}

impl Meter {
    pub(crate) fn new(
        transfer: TransferId,
        net: Sender<NetEvent>,
        bytes_total: u64,
        bytes_done: u64,
    ) -> Meter {
        Meter {
            transfer,
            net,
            progress: Progress { bytes_total, bytes_done, ..Progress::default() },
            started: Instant::now(),
            start_bytes: bytes_done,
            last_report: None,
        }
    }

    pub(crate) fn start_file(&mut self, index: u32, already: u64) {
        self.progress.file_index = index;
        self.progress.file_bytes_done = already;
    }

    pub(crate) fn add(&mut self, bytes: u64) {
        self.progress.bytes_done += bytes;
        self.progress.file_bytes_done += bytes;
        if self.last_report.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
            self.report();
        }
    }

    #[allow(
        clippy::cast_possible_truncation,
        reason = "f64 to u64 saturates; rates and times are far below the limit"
    )]
    pub(crate) fn report(&mut self) {
        self.last_report = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64();
        let moved = self.progress.bytes_done.saturating_sub(self.start_bytes);
        if elapsed > 0.0 && moved > 0 {
            let rate = moved as f64 / elapsed;
            self.progress.rate_bytes_per_sec = rate as u64;
            let left = self.progress.bytes_total.saturating_sub(self.progress.bytes_done);
            self.progress.eta_secs = Some((left as f64 / rate).ceil() as u64);
        }
        // Progress is coalesced by nature: if the hub is busy, the next report supersedes.
        self.net.try_send(NetEvent::Transfer(self.transfer, Report::Progress(self.progress))).ok();
    }

    fn send(&self, report: Report) {
        // The hub may have stopped; then nobody needs the report.
        self.net.send(NetEvent::Transfer(self.transfer, report)).ok();
    }
}

/// Hashes the first `len` bytes of `file` (resuming needs the hash of what is already there).
fn hash_prefix(file: &mut File, len: u64, buf: &mut [u8]) -> io::Result<blake3::Hasher> {
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

fn bytes_before(entries: &[Entry], index: u32) -> u64 {
    entries.iter().take(usize::try_from(index).unwrap_or(usize::MAX)).map(|e| e.size).sum()
}

/// Everything a sending worker needs.
pub struct SendJob {
    /// The transfer.
    pub id: TransferId,
    /// The data connection the receiver opened (its fetch already read).
    pub stream: TcpStream,
    /// The connection's encrypted session.
    pub session: Arc<Session>,
    /// The offer's entries.
    pub entries: Vec<Entry>,
    /// The local file behind each entry.
    pub sources: Vec<PathBuf>,
    /// Where the receiver wants to start.
    pub fetch: Fetch,
    /// Raised by the hub to stop the worker.
    pub cancel: Arc<AtomicBool>,
    /// Reports to the hub.
    pub net: Sender<NetEvent>,
}

/// Streams the requested files, then waits for the receiver's confirmation.
pub fn send(job: &SendJob) {
    let total = job.entries.iter().map(|e| e.size).sum();
    let mut meter = Meter::new(
        job.id,
        job.net.clone(),
        total,
        bytes_before(&job.entries, job.fetch.index) + job.fetch.offset,
    );
    let report = match stream_files(job, &mut meter) {
        Ok(()) => Report::Finished,
        Err(stop) => stop.into_report(),
    };
    meter.report();
    meter.send(report);
}

fn stream_files(job: &SendJob, meter: &mut Meter) -> Result<(), Stop> {
    let stream = job.stream.try_clone().map_err(|err| link(&err))?;
    let mut data = DataStream::new(stream, &job.session, &job.cancel).map_err(|err| link(&err))?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let first = usize::try_from(job.fetch.index).unwrap_or(usize::MAX);
    if first > job.entries.len() {
        return Err(Stop::Fatal(format!("receiver asked for entry {first} of {}", job.entries.len())));
    }
    for (index, (entry, source)) in job.entries.iter().zip(&job.sources).enumerate().skip(first) {
        if entry.kind == EntryKind::Dir {
            continue;
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let offset = if index == job.fetch.index { job.fetch.offset } else { 0 };
        let unreadable = |err: io::Error| Stop::Fatal(format!("cannot read {}: {err}", source.display()));
        let mut file = File::open(source).map_err(unreadable)?;
        let size = file.metadata().map_err(unreadable)?.len();
        if size != entry.size {
            return Err(Stop::Fatal(format!("{} changed since it was offered", source.display())));
        }
        if offset > size {
            return Err(Stop::Fatal(format!("receiver asked for byte {offset} of a {size}-byte file")));
        }
        let mut hasher = hash_prefix(&mut file, offset, &mut buf).map_err(unreadable)?;
        meter.start_file(index, offset);
        let mut left = size - offset;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let piece = buf.get_mut(..want).unwrap_or_default();
            file.read_exact(piece).map_err(unreadable)?;
            hasher.update(piece);
            data.check_cancel()?;
            data.gather(&frame::chunk_header(want))?;
            data.gather(piece)?;
            left -= want as u64;
            meter.add(want as u64);
        }
        data.gather(
            &Frame::FileEnd(FileEnd { index, blake3: hasher.finalize().to_hex().to_string() }).encode(),
        )?;
    }
    data.flush()?;
    // The receiver confirms only after verifying and placing every file.
    loop {
        match data.read_frame(&mut buf)? {
            Frame::Done(TransferDone { transfer_id }) if transfer_id == job.id => return Ok(()),
            _ => {}
        }
    }
}

/// Opens the data connection and proves that the other end is the peer the transfer is
/// with. A different key there (an address now used by someone else) is a link problem:
/// the transfer resumes once the peer is found again.
fn secure_connect(job: &ReceiveJob) -> Result<(TcpStream, Arc<Session>), Stop> {
    let stream = socket::connect(job.local_ip, job.peer_addr, CONNECT_TIMEOUT).map_err(|err| link(&err))?;
    stream.set_read_timeout(Some(CONNECT_TIMEOUT)).map_err(|err| link(&err))?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT)).map_err(|err| link(&err))?;
    let session =
        handshake(&mut &stream, &job.identity, Role::Initiator).map_err(|err| Stop::Link(err.to_string()))?;
    if session.remote().peer_id() != job.peer {
        return Err(Stop::Link(format!("the host at {} is not {} (another key)", job.peer_addr, job.peer)));
    }
    Ok((stream, Arc::new(session)))
}

/// Everything a receiving worker needs.
pub struct ReceiveJob {
    /// The transfer.
    pub id: TransferId,
    /// The sender's TCP address.
    pub peer_addr: SocketAddr,
    /// The sender: the data connection must prove this identity.
    pub peer: PeerId,
    /// Our key pair, for the handshake.
    pub identity: Arc<Identity>,
    /// Our bind address, the source of the connection.
    pub local_ip: Ipv4Addr,
    /// The offer's entries.
    pub entries: Vec<Entry>,
    /// Sanitized local place of each entry (folder names as chosen at accept).
    pub places: Vec<Vec<String>>,
    /// Entries before this index are already complete.
    pub files_done: u32,
    /// The download folder.
    pub download_dir: PathBuf,
    /// Raised by the hub to stop the worker.
    pub cancel: Arc<AtomicBool>,
    /// Reports to the hub.
    pub net: Sender<NetEvent>,
}

impl ReceiveJob {
    /// Folder of this transfer's partial files.
    pub fn staging(&self) -> PathBuf {
        staging_dir(&self.download_dir, self.id)
    }
}

/// Folder of a transfer's partial files.
pub fn staging_dir(download_dir: &Path, id: TransferId) -> PathBuf {
    download_dir.join(STAGING_DIR).join(id.to_string())
}

/// Removes a transfer's staging folder, and the folder of all staging folders unless other
/// transfers still use it.
pub fn remove_staging(staging: &Path) {
    fs::remove_dir_all(staging).ok();
    if let Some(parent) = staging.parent() {
        fs::remove_dir(parent).ok();
    }
}

/// Fetches the missing files, verifies and places each, then confirms to the sender.
pub fn receive(job: &ReceiveJob) {
    let total = job.entries.iter().map(|e| e.size).sum();
    let mut meter = Meter::new(job.id, job.net.clone(), total, bytes_before(&job.entries, job.files_done));
    let report = match receive_files(job, &mut meter) {
        Ok(()) => {
            // The staging folder is empty now; leftovers would only be our own partial files.
            remove_staging(&job.staging());
            Report::Finished
        }
        Err(stop) => stop.into_report(),
    };
    meter.report();
    meter.send(report);
}

fn disk(err: &io::Error) -> Stop {
    Stop::Fatal(format!("cannot write the download: {err}"))
}

fn receive_files(job: &ReceiveJob, meter: &mut Meter) -> Result<(), Stop> {
    // Every folder first (empty ones included), and the folder of every file: a destination
    // that cannot be used (a planted symlink, a file in the way) fails before any data moves.
    let mut folders: Vec<&[String]> = job
        .entries
        .iter()
        .zip(&job.places)
        .map(|(entry, place)| match entry.kind {
            EntryKind::Dir => place.as_slice(),
            EntryKind::File => place.split_last().map_or(&[][..], |(_, folders)| folders),
        })
        .collect();
    folders.sort_unstable();
    folders.dedup();
    for folder in folders {
        files::ensure_dir(&job.download_dir, folder).map_err(|err| disk(&err))?;
    }
    let staging = job.staging();
    fs::create_dir_all(&staging).map_err(|err| disk(&err))?;
    let start = usize::try_from(job.files_done).unwrap_or(usize::MAX);
    let pending: Vec<usize> = (start..job.entries.len())
        .filter(|&i| job.entries.get(i).is_some_and(|e| e.kind == EntryKind::File))
        .collect();
    let Some(&first) = pending.first() else {
        return Ok(());
    };
    let part_path = |index: usize| staging.join(format!("{index}.part"));
    let mut offset = fs::metadata(part_path(first)).map(|m| m.len()).unwrap_or(0);
    if job.entries.get(first).is_none_or(|e| offset > e.size) {
        offset = 0;
    }
    meter.progress.bytes_done += offset;
    meter.start_bytes += offset;

    let (stream, session) = secure_connect(job)?;
    let mut data = DataStream::new(stream, &session, &job.cancel).map_err(|err| link(&err))?;
    let first_index = u32::try_from(first).unwrap_or(u32::MAX);
    data.write_frame(&Frame::Fetch(Fetch { transfer_id: job.id, index: first_index, offset }))?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    let mut scratch = vec![0u8; CHUNK_BYTES];
    for (n, &index) in pending.iter().enumerate() {
        let (Some(entry), Some(place)) = (job.entries.get(index), job.places.get(index)) else { break };
        let already = if n == 0 { offset } else { 0 };
        let path = part_path(index);
        // A fresh file costs one system call; only a resumed one is reopened, cut to the
        // resumed length and hashed so far.
        let (mut part, mut hasher) = if already == 0 {
            (File::create(&path).map_err(|err| disk(&err))?, blake3::Hasher::new())
        } else {
            let mut part = OpenOptions::new().read(true).write(true).open(&path).map_err(|err| disk(&err))?;
            part.set_len(already).map_err(|err| disk(&err))?;
            let hasher = hash_prefix(&mut part, already, &mut scratch).map_err(|err| disk(&err))?;
            part.seek(SeekFrom::Start(already)).map_err(|err| disk(&err))?;
            (part, hasher)
        };
        let index32 = u32::try_from(index).unwrap_or(u32::MAX);
        meter.start_file(index32, already);
        let mut written = already;
        let expected = loop {
            match data.read_frame(&mut chunk)? {
                Frame::Chunk(_) => {
                    written += chunk.len() as u64;
                    if written > entry.size {
                        return Err(Stop::Fatal(format!(
                            "sender sent more than the {} bytes offered for {}",
                            entry.size, entry.path
                        )));
                    }
                    for piece in chunk.chunks(FILE_WRITE_BYTES) {
                        part.write_all(piece).map_err(|err| disk(&err))?;
                    }
                    hasher.update(&chunk);
                    meter.add(chunk.len() as u64);
                }
                Frame::FileEnd(end) if end.index == index32 => break end.blake3,
                Frame::FileEnd(end) => {
                    return Err(Stop::Fatal(format!(
                        "sender ended file {} while {index} was expected",
                        end.index
                    )));
                }
                // Hello (the sender's greeting) and frames of later versions carry nothing for us.
                _ => {}
            }
        };
        if written != entry.size {
            return Err(Stop::Fatal(format!(
                "{} arrived with {written} of {} bytes",
                entry.path, entry.size
            )));
        }
        let actual = hasher.finalize().to_hex().to_string();
        if actual != expected {
            drop(part);
            fs::remove_file(&path).ok();
            return Err(Stop::Fatal(format!(
                "integrity check failed for {}: the data does not match its hash",
                entry.path
            )));
        }
        part.flush().map_err(|err| disk(&err))?;
        drop(part);
        files::place_file(&job.download_dir, place, &path).map_err(|err| disk(&err))?;
        meter.send(Report::FilesDone(index32 + 1));
    }
    data.write_frame(&Frame::Done(TransferDone { transfer_id: job.id }))?;
    Ok(())
}
