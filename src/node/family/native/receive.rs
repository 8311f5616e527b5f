//! The receiving worker of a transfer between Pigeons: it opens the data connection, proves
//! the sender's key, asks for data from the first byte it lacks (so resuming after a cut, a
//! crash or a restart is the ordinary path), writes each file into the transfer's staging
//! folder while hashing it, compares with the sender's BLAKE3, and only then moves the file
//! into place — never over an existing one. Then it confirms to the sender.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::stream::{DataStream, Stop, bytes_before, hash_prefix, link};
use crate::node::files;
use crate::node::socket::{self, Patient};
use crate::node::threads::StopFlag;
use crate::node::worker::{Meter, Report, Reporter};
use crate::protocol::frame::Frame;
use crate::protocol::ids::{PeerId, TransferId};
use crate::protocol::transfer::{CHUNK_BYTES, Entry, EntryKind, Fetch, TransferDone};
use crate::secure::{Identity, Role, Session, handshake};

/// Time to establish the data connection, and again to run its handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest single write to a file. On these machines (ext4, Linux page cache) large writes
/// copy into the page cache far slower than small ones: the 1 GiB benchmark ran at
/// 0.28-0.36 GB/s with 1 MiB writes, 0.36-0.45 with 256 KiB and 0.60-0.99 with 64 KiB.
const FILE_WRITE_BYTES: usize = 64 * 1024;

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
    /// Raised to stop the worker.
    pub stop: StopFlag,
    /// Reports to the hub.
    pub reporter: Reporter,
}

/// Fetches the missing files, verifies and places each, then confirms to the sender.
pub fn receive(job: &ReceiveJob) {
    let report = match receive_files(job) {
        Ok(()) => {
            // The staging folder is empty now; leftovers would only be our own partial files.
            files::remove_staging(&files::staging_dir(&job.download_dir, job.id));
            Report::Finished
        }
        Err(stop) => stop.into_report(),
    };
    job.reporter.send(report);
}

fn disk(err: &io::Error) -> Stop {
    Stop::Fatal(format!("cannot write the download: {err}"))
}

/// Opens the data connection and proves that the other end is the peer the transfer is
/// with. A different key there (an address now used by someone else) is a link problem:
/// the transfer resumes once the peer is found again. A stop flag raised meanwhile ends the
/// wait at once, however the peer (or its firewall) behaves.
fn secure_connect(job: &ReceiveJob) -> Result<(TcpStream, Arc<Session>), Stop> {
    let stopped = |err: io::Error| if job.stop.is_raised() { Stop::Cancelled } else { link(&err) };
    let stream = socket::connect(job.local_ip, job.peer_addr, CONNECT_TIMEOUT, &job.stop).map_err(stopped)?;
    let mut patient = Patient::new(&stream, CONNECT_TIMEOUT, &job.stop).map_err(|err| link(&err))?;
    let session = handshake(&mut patient, &job.identity, Role::Initiator)
        .map_err(|err| if job.stop.is_raised() { Stop::Cancelled } else { Stop::Link(err.to_string()) })?;
    if session.remote().peer_id() != job.peer {
        return Err(Stop::Link(format!("the host at {} is not {} (another key)", job.peer_addr, job.peer)));
    }
    Ok((stream, Arc::new(session)))
}

/// Creates every folder first (empty ones included), and the folder of every file: a
/// destination that cannot be used (a planted symlink, a file in the way) fails before any
/// data moves.
fn prepare_folders(job: &ReceiveJob) -> Result<(), Stop> {
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
    Ok(())
}

fn receive_files(job: &ReceiveJob) -> Result<(), Stop> {
    prepare_folders(job)?;
    let staging = files::staging_dir(&job.download_dir, job.id);
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
    let total = job.entries.iter().map(|e| e.size).sum();
    let mut meter =
        Meter::new(job.reporter.clone(), total, bytes_before(&job.entries, job.files_done) + offset);

    let (stream, session) = secure_connect(job)?;
    let mut data = DataStream::new(stream, &session, &job.stop).map_err(|err| link(&err))?;
    let first_index = u32::try_from(first).unwrap_or(u32::MAX);
    data.write_frame(&Frame::Fetch(Fetch { transfer_id: job.id, index: first_index, offset }))?;
    let mut buffers = Buffers { chunk: Vec::with_capacity(CHUNK_BYTES), scratch: vec![0u8; CHUNK_BYTES] };
    for (n, &index) in pending.iter().enumerate() {
        let (Some(entry), Some(place)) = (job.entries.get(index), job.places.get(index)) else { break };
        let already = if n == 0 { offset } else { 0 };
        let index32 = u32::try_from(index).unwrap_or(u32::MAX);
        meter.start_file(index32, already);
        let part = part_path(index);
        receive_file(&mut data, (index32, entry), &part, already, &mut buffers, &mut meter)?;
        let placed = files::place_file(&job.download_dir, place, &part).map_err(|err| disk(&err))?;
        if let Some((top, local)) = files::renamed_top(place, &placed) {
            job.reporter.send(Report::Placed { top, local });
        }
        job.reporter.send(Report::FilesDone(index32 + 1));
    }
    meter.report();
    data.write_frame(&Frame::Done(TransferDone { transfer_id: job.id }))?;
    Ok(())
}

/// Reused buffers: chunk payloads, and hashing what a resumed file already holds.
struct Buffers {
    chunk: Vec<u8>,
    scratch: Vec<u8>,
}

/// Receives one file into `part` (which holds its first `already` bytes) and checks its
/// hash.
fn receive_file(
    data: &mut DataStream<'_>,
    (index, entry): (u32, &Entry),
    part_path: &Path,
    already: u64,
    buffers: &mut Buffers,
    meter: &mut Meter,
) -> Result<(), Stop> {
    // A fresh file costs one system call; only a resumed one is reopened, cut to the
    // resumed length and hashed so far.
    let (mut part, mut hasher) = if already == 0 {
        (File::create(part_path).map_err(|err| disk(&err))?, blake3::Hasher::new())
    } else {
        let mut part = OpenOptions::new().read(true).write(true).open(part_path).map_err(|err| disk(&err))?;
        part.set_len(already).map_err(|err| disk(&err))?;
        let hasher = hash_prefix(&mut part, already, &mut buffers.scratch).map_err(|err| disk(&err))?;
        part.seek(SeekFrom::Start(already)).map_err(|err| disk(&err))?;
        (part, hasher)
    };
    let mut written = already;
    let chunk = &mut buffers.chunk;
    let expected = loop {
        match data.read_frame(chunk)? {
            Frame::Chunk(_) => {
                written += chunk.len() as u64;
                if written > entry.size {
                    let (size, path) = (entry.size, &entry.path);
                    return Err(Stop::Fatal(format!(
                        "sender sent more than the {size} bytes offered for {path}"
                    )));
                }
                for piece in chunk.chunks(FILE_WRITE_BYTES) {
                    part.write_all(piece).map_err(|err| disk(&err))?;
                }
                hasher.update(chunk);
                meter.add(chunk.len() as u64);
            }
            Frame::FileEnd(end) if end.index == index => break end.blake3,
            Frame::FileEnd(end) => {
                return Err(Stop::Fatal(format!(
                    "sender ended file {} while {index} was expected",
                    end.index
                )));
            }
            Frame::Decline(refused) => {
                return Err(Stop::Fatal(format!("the sender refused to send: {}", refused.reason)));
            }
            // Hello (the sender's greeting) and frames of later versions carry nothing for us.
            _ => {}
        }
    };
    if written != entry.size {
        return Err(Stop::Fatal(format!("{} arrived with {written} of {} bytes", entry.path, entry.size)));
    }
    if hasher.finalize().to_hex().as_str() != expected {
        drop(part);
        fs::remove_file(part_path).ok();
        let path = &entry.path;
        return Err(Stop::Fatal(format!(
            "integrity check failed for {path}: the data does not match its hash"
        )));
    }
    part.flush().map_err(|err| disk(&err))
}
