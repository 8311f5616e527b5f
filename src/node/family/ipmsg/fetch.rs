//! Receiving files and folders an IP Messenger client offered: one TCP connection per
//! offered entry to the sender's port 2425, `GETFILEDATA` answered by the raw bytes of a file,
//! `GETDIRFILES` by a stream of records (header, then the bytes of each file). Names from the
//! stream are sanitized like every name from the wire, files are written to the transfer's
//! staging folder and placed (never overwriting) only once complete, with the modification
//! time the sender gave, and a short file or stream fails the transfer instead of leaving a
//! partial file in place. What a folder held is reported, since its offer named only it.
//!
//! IP Messenger has no checksums and iptux ignores the offset of a request, so there is no
//! resume: a retry starts over.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::node::files;
use crate::node::socket;
use crate::node::threads::StopFlag;
use crate::node::worker::{Meter, Report, Reporter};
use crate::protocol::ids::TransferId;
use crate::protocol::ipmsg::Packet;
use crate::protocol::ipmsg::attach::{self, AttachKind};
use crate::protocol::ipmsg::text;
use crate::protocol::names::sanitize_component;
use crate::protocol::transfer::{Entry, EntryKind};

/// Request for one file's bytes.
const GETFILEDATA: u32 = 0x60;
/// Request for a folder stream.
const GETDIRFILES: u32 = 0x62;

/// Time to connect to the sender.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often blocked reads wake up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_secs(1);

/// A sender that sends nothing for this long has gone away.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Deepest folder nesting taken from a stream.
const MAX_DEPTH: usize = 64;

/// One offered entry to fetch.
pub struct Item {
    /// The sender's number for it.
    pub file_id: u32,
    /// File or folder.
    pub kind: AttachKind,
    /// Its name as offered.
    pub path: String,
    /// Bytes announced (for a folder, of all its files).
    pub size: u64,
    /// Last modified (seconds since the Unix epoch), when the offer said.
    pub mtime: Option<u64>,
    /// Where it goes below the download folder (folder names as reserved at accept).
    pub place: Vec<String>,
}

/// Everything the worker needs.
pub struct IpMsgReceiveJob {
    /// The transfer.
    pub id: TransferId,
    /// The sender's IP Messenger address.
    pub addr: SocketAddrV4,
    /// The packet number of the offer.
    pub offer_packet: u32,
    /// What we are to the sender (version, user, host) for the request packets.
    pub me: (Vec<u8>, Vec<u8>, Vec<u8>),
    /// What to fetch, in offer order.
    pub items: Vec<Item>,
    /// Entries before this index are complete.
    pub files_done: u32,
    /// The download folder.
    pub download_dir: PathBuf,
    /// Raised to stop.
    pub stop: StopFlag,
    /// Reports to the hub.
    pub reporter: Reporter,
}

/// Why fetching stopped.
enum Stop {
    Cancelled,
    Failed(String),
}

impl From<io::Error> for Stop {
    fn from(err: io::Error) -> Self {
        Stop::Failed(err.to_string())
    }
}

/// Runs the job on the calling thread, reporting to the hub.
pub fn receive(job: &IpMsgReceiveJob) {
    let skip = usize::try_from(job.files_done).unwrap_or(usize::MAX);
    let total = job.items.iter().map(|item| item.size).sum();
    let done_before = job.items.iter().take(skip).map(|item| item.size).sum();
    let mut meter = Meter::new(job.reporter.clone(), total, done_before);
    let staging = files::staging_dir(&job.download_dir, job.id);
    let mut found = Vec::new();
    let mut outcome = Ok(());
    for (index, item) in job.items.iter().enumerate().skip(skip) {
        meter.start_file(u32::try_from(index).unwrap_or(u32::MAX), 0);
        outcome = fetch(job, item, &staging, &mut meter, &mut found);
        if outcome.is_err() {
            break;
        }
        job.reporter.send(Report::FilesDone(u32::try_from(index + 1).unwrap_or(u32::MAX)));
    }
    files::remove_staging(&staging);
    let report = match outcome {
        Ok(()) => {
            meter.report();
            if !found.is_empty() {
                job.reporter.send(Report::Contents(found));
            }
            Report::Finished
        }
        Err(Stop::Cancelled) => Report::Cancelled,
        Err(Stop::Failed(reason)) => Report::Failed(reason),
    };
    job.reporter.send(report);
}

fn request(job: &IpMsgReceiveJob, command: u32, extra: String) -> Result<TcpStream, Stop> {
    let addr = SocketAddr::V4(job.addr);
    let mut stream = socket::connect(std::net::Ipv4Addr::UNSPECIFIED, addr, CONNECT_TIMEOUT, &job.stop)
        .map_err(|err| {
            if job.stop.is_raised() {
                Stop::Cancelled
            } else {
                Stop::Failed(format!("cannot reach {addr}: {err}"))
            }
        })?;
    stream.set_read_timeout(Some(STOP_POLL))?;
    let (version, user, host) = job.me.clone();
    let packet = Packet {
        version,
        packet_no: job.offer_packet.wrapping_add(1 + u32::from(command == GETDIRFILES)),
        user,
        host,
        command,
        extra: extra.into_bytes(),
    };
    stream.write_all(&packet.encode())?;
    Ok(stream)
}

/// Reads exactly `buf.len()` bytes, waking up to check the stop flag.
fn read_exact(job: &IpMsgReceiveJob, stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), Stop> {
    let mut filled = 0;
    let mut last_byte = Instant::now();
    while filled < buf.len() {
        if job.stop.is_raised() {
            return Err(Stop::Cancelled);
        }
        match stream.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => {
                let wanted = buf.len();
                return Err(Stop::Failed(format!(
                    "the sender closed the connection after {filled} of {wanted} bytes"
                )));
            }
            Ok(n) => {
                filled += n;
                last_byte = Instant::now();
            }
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if last_byte.elapsed() > STALL_TIMEOUT {
                    return Err(Stop::Failed(String::from("the sender stopped sending")));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// One file of a stream: its size, where it goes, and when it was last modified.
struct Incoming<'a> {
    size: u64,
    place: &'a [String],
    mtime: Option<u64>,
}

/// Copies a file's bytes from the stream into a new staging file and places it.
fn receive_file(
    job: &IpMsgReceiveJob,
    stream: &mut TcpStream,
    file: &Incoming<'_>,
    staging: &Path,
    meter: &mut Meter,
) -> Result<(), Stop> {
    fs::create_dir_all(staging)?;
    let part = staging.join("receiving.part");
    let mut out = File::create(&part)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = file.size;
    while left > 0 {
        let chunk = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let piece = buf.get_mut(..chunk).unwrap_or_default();
        read_exact(job, stream, piece)?;
        out.write_all(piece)?;
        left -= chunk as u64;
        meter.add(chunk as u64);
    }
    if let Some(mtime) = file.mtime {
        // A date we cannot set is no reason to refuse the file.
        out.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime)).ok();
    }
    drop(out);
    let placed = files::place_file(&job.download_dir, file.place, &part)?;
    if let Some((top, local)) = files::renamed_top(file.place, &placed) {
        job.reporter.send(Report::Placed { top, local });
    }
    Ok(())
}

fn fetch(
    job: &IpMsgReceiveJob,
    item: &Item,
    staging: &Path,
    meter: &mut Meter,
    found: &mut Vec<Entry>,
) -> Result<(), Stop> {
    let extra = format!("{:x}:{:x}:0:", job.offer_packet, item.file_id);
    match item.kind {
        AttachKind::File => {
            let mut stream = request(job, GETFILEDATA, extra)?;
            let file = Incoming { size: item.size, place: &item.place, mtime: item.mtime };
            receive_file(job, &mut stream, &file, staging, meter)
        }
        AttachKind::Dir => {
            let mut stream = request(job, GETDIRFILES, extra)?;
            receive_folder(job, &mut stream, item, staging, meter, found)
        }
        AttachKind::Up => Ok(()),
    }
}

/// Reads a folder stream: the offered folder's own record first, then its contents, until the
/// record that leaves it. What it held is added to `found`, named below the offered name.
fn receive_folder(
    job: &IpMsgReceiveJob,
    stream: &mut TcpStream,
    item: &Item,
    staging: &Path,
    meter: &mut Meter,
    found: &mut Vec<Entry>,
) -> Result<(), Stop> {
    // Below the offered folder's reserved place; the stream's first record names it again.
    let mut path: Vec<String> = Vec::new();
    let mut depth = 0usize;
    // A folder is offered with its total size; a stream that sends more is not that folder.
    let mut left = item.size;
    let listed = |path: &[String], kind, size| {
        let path =
            std::iter::once(item.path.as_str()).chain(path.iter().map(String::as_str)).collect::<Vec<_>>();
        Entry { path: path.join("/"), kind, size }
    };
    loop {
        let record = next_record(job, stream)?;
        match record.kind {
            AttachKind::Dir => {
                if depth > 0 {
                    let (name, _) = text::decode(&record.name, false);
                    path.push(sanitize_component(&name));
                    found.push(listed(&path, EntryKind::Dir, 0));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Stop::Failed(format!("the folder is nested deeper than {MAX_DEPTH} levels")));
                }
                files::ensure_dir(&job.download_dir, &[item.place.clone(), path.clone()].concat())?;
            }
            AttachKind::Up => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(());
                }
                path.pop();
            }
            AttachKind::File => {
                if depth == 0 {
                    return Err(Stop::Failed(String::from("the folder stream starts with a file")));
                }
                left = left.checked_sub(record.size).ok_or_else(|| {
                    Stop::Failed(format!("the sender sent more than the {} bytes it offered", item.size))
                })?;
                let (name, _) = text::decode(&record.name, false);
                let name = sanitize_component(&name);
                let place = [item.place.clone(), path.clone(), vec![name.clone()]].concat();
                let file = Incoming { size: record.size, place: &place, mtime: record.mtime };
                receive_file(job, stream, &file, staging, meter)?;
                found.push(listed(&[path.clone(), vec![name]].concat(), EntryKind::File, record.size));
            }
        }
    }
}

fn next_record(job: &IpMsgReceiveJob, stream: &mut TcpStream) -> Result<attach::Attachment, Stop> {
    let mut prefix = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        read_exact(job, stream, &mut byte)?;
        if byte[0] == b':' {
            break;
        }
        prefix.push(byte[0]);
        if prefix.len() > 8 {
            return Err(Stop::Failed(String::from("the folder stream is malformed")));
        }
    }
    let len =
        attach::parse_dir_header_len(&prefix).map_err(|err| Stop::Failed(format!("folder stream: {err}")))?;
    let mut header = vec![0u8; len - prefix.len() - 1];
    read_exact(job, stream, &mut header)?;
    attach::parse_dir_header(&header).map_err(|err| Stop::Failed(format!("folder stream: {err}")))
}
