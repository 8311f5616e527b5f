//! Receiving files and folders an IP Messenger client offered: one TCP connection per
//! offered entry to the sender's port 2425, `GETFILEDATA` answered by the raw bytes of a file,
//! `GETDIRFILES` by a stream of records (header, then the bytes of each file). Names from the
//! stream are sanitized like every name from the wire, files are written to the transfer's
//! staging folder and placed (never overwriting) only once complete, and a short file or
//! stream fails the transfer instead of leaving a partial file in place.
//!
//! IP Messenger has no checksums and iptux ignores the offset of a request, so there is no
//! resume: a retry starts over.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::files;
use super::hub::NetEvent;
use super::transfer::{Meter, Report, remove_staging, staging_dir};
use crate::protocol::ids::TransferId;
use crate::protocol::ipmsg::Packet;
use crate::protocol::ipmsg::attach::{self, AttachKind};
use crate::protocol::ipmsg::text;
use crate::protocol::names::sanitize_component;

/// Request for one file's bytes.
const GETFILEDATA: u32 = 0x60;
/// Request for a folder stream.
const GETDIRFILES: u32 = 0x62;

/// Time to connect to the sender.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often blocked reads wake up to look at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_secs(1);

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
    /// Bytes announced (for a folder, of all its files).
    pub size: u64,
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
    /// Raised by the hub to stop.
    pub cancel: Arc<AtomicBool>,
    /// Reports to the hub.
    pub net: Sender<NetEvent>,
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
    let total = job.items.iter().map(|item| item.size).sum();
    let done_before = job.items.iter().take(job.files_done as usize).map(|item| item.size).sum();
    let mut meter = Meter::new(job.id, job.net.clone(), total, done_before);
    let staging = staging_dir(&job.download_dir, job.id);
    let mut outcome = Ok(());
    for (index, item) in job.items.iter().enumerate().skip(job.files_done as usize) {
        meter.start_file(u32::try_from(index).unwrap_or(u32::MAX), 0);
        outcome = fetch(job, item, &staging, &mut meter);
        if outcome.is_err() {
            break;
        }
        let done = u32::try_from(index + 1).unwrap_or(u32::MAX);
        job.net.send(NetEvent::Transfer(job.id, Report::FilesDone(done))).ok();
    }
    remove_staging(&staging);
    let report = match outcome {
        Ok(()) => {
            meter.report();
            Report::Finished
        }
        Err(Stop::Cancelled) => Report::Cancelled,
        Err(Stop::Failed(reason)) => Report::Failed(reason),
    };
    job.net.send(NetEvent::Transfer(job.id, report)).ok();
}

fn request(job: &IpMsgReceiveJob, command: u32, extra: String) -> Result<TcpStream, Stop> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(job.addr), CONNECT_TIMEOUT)
        .map_err(|err| Stop::Failed(format!("cannot reach {}: {err}", job.addr)))?;
    stream.set_read_timeout(Some(CANCEL_POLL))?;
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

/// Reads exactly `buf.len()` bytes, waking up to check the cancel flag.
fn read_exact(job: &IpMsgReceiveJob, stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), Stop> {
    let mut filled = 0;
    let mut last_byte = Instant::now();
    while filled < buf.len() {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Stop::Failed(format!(
                    "the sender closed the connection after {filled} of {} bytes",
                    buf.len()
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

/// Copies `size` bytes of the stream into a new staging file and places it at `place`.
fn receive_file(
    job: &IpMsgReceiveJob,
    stream: &mut TcpStream,
    size: u64,
    place: &[String],
    staging: &std::path::Path,
    meter: &mut Meter,
) -> Result<(), Stop> {
    fs::create_dir_all(staging)?;
    let part = staging.join("receiving.part");
    let mut file = File::create(&part)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let chunk = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        read_exact(job, stream, &mut buf[..chunk])?;
        file.write_all(&buf[..chunk])?;
        left -= chunk as u64;
        meter.add(chunk as u64);
    }
    drop(file);
    files::place_file(&job.download_dir, place, &part)?;
    Ok(())
}

fn fetch(
    job: &IpMsgReceiveJob,
    item: &Item,
    staging: &std::path::Path,
    meter: &mut Meter,
) -> Result<(), Stop> {
    match item.kind {
        AttachKind::File => {
            let mut stream =
                request(job, GETFILEDATA, format!("{:x}:{:x}:0:", job.offer_packet, item.file_id))?;
            receive_file(job, &mut stream, item.size, &item.place, staging, meter)
        }
        AttachKind::Dir => {
            let mut stream =
                request(job, GETDIRFILES, format!("{:x}:{:x}:0:", job.offer_packet, item.file_id))?;
            receive_folder(job, &mut stream, item, staging, meter)
        }
        AttachKind::Up => Ok(()),
    }
}

/// Reads a folder stream: the offered folder's own record first, then its contents, until the
/// record that leaves it.
fn receive_folder(
    job: &IpMsgReceiveJob,
    stream: &mut TcpStream,
    item: &Item,
    staging: &std::path::Path,
    meter: &mut Meter,
) -> Result<(), Stop> {
    // Below the offered folder's reserved place; the stream's first record names it again.
    let mut path: Vec<String> = Vec::new();
    let mut depth = 0usize;
    // A folder is offered with its total size; a stream that sends more is not that folder.
    let mut left = item.size;
    loop {
        let record = next_record(job, stream)?;
        match record.kind {
            AttachKind::Dir => {
                if depth > 0 {
                    let (name, _) = text::decode(&record.name, false);
                    path.push(sanitize_component(&name));
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
                let place = [item.place.clone(), path.clone(), vec![sanitize_component(&name)]].concat();
                receive_file(job, stream, record.size, &place, staging, meter)?;
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
