//! Serving what we offered to an IP Messenger client: it connects to our TCP port 2425 and
//! asks with `GETFILEDATA` (we answer the file's raw bytes from the requested offset, then
//! close) or `GETDIRFILES` (we answer the folder as a record stream: each folder, each file's
//! header and bytes, and a `RETPARENT` record when leaving a folder, the offered one last).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::hub::NetEvent;
use super::threads;
use super::transfer::Meter;
use crate::protocol::ids::TransferId;
use crate::protocol::ipmsg::Packet;
use crate::protocol::ipmsg::attach::{AttachKind, encode_dir_header};
use crate::protocol::transfer::{Entry, EntryKind};

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// One request to serve.
pub struct ServeJob {
    /// The transfer.
    pub id: TransferId,
    /// Which top-level entry of the offer.
    pub index: usize,
    /// The entry and, for a folder, everything inside it, in offer order, with local paths.
    pub entries: Vec<(Entry, PathBuf)>,
    /// Where to start in a file (folders always start at the beginning).
    pub offset: u64,
    /// The client's connection, its request already read.
    pub stream: TcpStream,
    /// Raised when the transfer is cancelled.
    pub cancel: Arc<AtomicBool>,
    /// Reports to the hub.
    pub net: Sender<NetEvent>,
}

/// Longest request accepted.
const MAX_REQUEST: usize = 1024;

/// Time a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests read at the same time, at most; connections beyond are closed unread.
const MAX_READING: usize = 32;

/// Reads the requests of new connections, each on a short-lived thread of its own, so a
/// slow or silent client delays nobody else; at most [`MAX_READING`] at a time.
pub struct RequestReaders {
    net: Sender<NetEvent>,
    running: Vec<JoinHandle<()>>,
}

impl RequestReaders {
    /// Readers that hand valid requests to the hub.
    pub fn new(net: Sender<NetEvent>) -> RequestReaders {
        RequestReaders { net, running: Vec::new() }
    }

    /// Starts reading the request of a new connection.
    pub fn start(&mut self, stream: TcpStream, remote: SocketAddr) {
        threads::join_finished(&mut self.running);
        if self.running.len() >= MAX_READING {
            log::debug!("IP Messenger connection from {remote} closed: {MAX_READING} requests being read");
            return;
        }
        let net = self.net.clone();
        let reader = threads::spawn("pigeon-ipmsg-request", move || {
            if let Some(request) = read_request(stream, remote) {
                net.send(request).ok();
            }
        });
        match reader {
            Ok(handle) => self.running.push(handle),
            Err(err) => log::warn!("cannot start a thread to read a request: {err}"),
        }
    }
}

impl Drop for RequestReaders {
    fn drop(&mut self) {
        threads::join_all(std::mem::take(&mut self.running));
    }
}

/// Reads the request of a new connection (up to its NUL, the end of the stream, or
/// [`REQUEST_TIMEOUT`] after it started, however slowly bytes trickle in); a connection that
/// sends no valid request is dropped.
fn read_request(mut stream: TcpStream, remote: SocketAddr) -> Option<NetEvent> {
    let SocketAddr::V4(from) = remote else { return None };
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut request = Vec::new();
    let mut buf = [0u8; 256];
    while !request.contains(&0) && request.len() < MAX_REQUEST {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("IP Messenger TCP request from {from}: not complete within {REQUEST_TIMEOUT:?}");
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(buf.get(..n)?),
        }
    }
    let end = request.iter().position(|&b| b == 0).unwrap_or(request.len());
    match Packet::decode(request.get(..end)?) {
        Ok(packet) => Some(NetEvent::IpMsgRequest { stream, from, packet }),
        Err(err) => {
            log::debug!("IP Messenger TCP request from {from} dropped: {err}");
            None
        }
    }
}

/// A client that takes nothing for this long has gone away.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the request and reports the outcome to the hub.
pub fn serve(mut job: ServeJob) {
    // Never block for good on a client that stopped reading (shutdown waits for this thread).
    job.stream.set_write_timeout(Some(STALL_TIMEOUT)).ok();
    let total = job.entries.iter().map(|(entry, _)| entry.size).sum();
    let mut meter = Meter::new(job.id, job.net.clone(), total, 0);
    let offset = job.offset;
    let result = match job.entries.first().map(|(entry, _)| entry.kind) {
        Some(EntryKind::File) => send_file(&mut job, 0, offset, &mut meter),
        Some(EntryKind::Dir) => send_folder(&mut job, &mut meter),
        None => Ok(()),
    };
    meter.report();
    let outcome = result.map_err(|err| err.to_string());
    job.net.send(NetEvent::IpMsgServed { transfer: job.id, index: job.index, outcome }).ok();
}

fn send_file(job: &mut ServeJob, at: usize, offset: u64, meter: &mut Meter) -> io::Result<()> {
    let (entry, path) = job.entries.get(at).cloned().ok_or_else(|| io::Error::other("no such entry"))?;
    let mut file = File::open(&path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut left = entry.size.saturating_sub(offset);
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let read = file.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::Error::other(format!("{} got shorter while being sent", path.display())));
        }
        job.stream.write_all(&buf[..read])?;
        left -= read as u64;
        meter.add(read as u64);
    }
    Ok(())
}

fn send_folder(job: &mut ServeJob, meter: &mut Meter) -> io::Result<()> {
    // Path components of the folder we are in, from the offered folder down.
    let mut open: Vec<String> = Vec::new();
    for at in 0..job.entries.len() {
        let Some((entry, _)) = job.entries.get(at).cloned() else { break };
        let parts: Vec<&str> = entry.path.split('/').collect();
        let (name, parent) = parts.split_last().ok_or_else(|| io::Error::other("empty path"))?;
        while open.len() > parent.len() || open.iter().zip(parent.iter()).any(|(a, b)| a != b) {
            job.stream.write_all(&encode_dir_header(b".", 0, AttachKind::Up))?;
            open.pop();
        }
        match entry.kind {
            EntryKind::Dir => {
                job.stream.write_all(&encode_dir_header(name.as_bytes(), 0, AttachKind::Dir))?;
                open.push((*name).to_owned());
            }
            EntryKind::File => {
                job.stream.write_all(&encode_dir_header(name.as_bytes(), entry.size, AttachKind::File))?;
                send_file(job, at, 0, meter)?;
            }
        }
    }
    for _ in open {
        job.stream.write_all(&encode_dir_header(b".", 0, AttachKind::Up))?;
    }
    Ok(())
}
