//! Serving what we offered to an IP Messenger client: it connects to our TCP port 2425 and
//! asks with `GETFILEDATA` (we answer the file's raw bytes from the requested offset) or
//! `GETDIRFILES` (we answer the folder as a record stream: each folder, each file's header —
//! with its modification time — and bytes, and a `RETPARENT` record when leaving a folder,
//! the offered one last).
//!
//! The protocol has no acknowledgement, so "sent" is not "received": the kernel takes a
//! small file whole even from a client that reads a thousand bytes and hangs up. So after
//! the last byte we shut our side down and wait for the client to close its own: a clean
//! close means it read everything; a reset (it closed with our data unread) or silence is a
//! failure, reported with its reason.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::Report;
use crate::node::doorbell::Bell;
use crate::node::threads::{self, StopFlag};
use crate::node::worker::{Meter, Reporter, Tally};
use crate::protocol::ipmsg::Packet;
use crate::protocol::ipmsg::attach::{AttachKind, encode_dir_header};
use crate::protocol::ipmsg::text::{self, Charset};
use crate::protocol::transfer::{Entry, EntryKind};

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// Longest request accepted.
const MAX_REQUEST: usize = 1024;

/// Time a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests read at the same time, at most; connections beyond are closed unread.
const MAX_READING: usize = 32;

/// How often blocked reads and writes look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(250);

/// A client that takes nothing (or, at the end, does not close) for this long has gone away.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts clients' connections until `stop` is raised and reads each one's request on a
/// short-lived thread of its own, so a slow or silent client delays nobody else; at most
/// [`MAX_READING`] at a time.
pub fn listen(listener: &TcpListener, queue: &Bell<Report>, stop: &StopFlag) {
    let mut reading: Vec<JoinHandle<()>> = Vec::new();
    crate::node::listener::accept_loop(listener, stop, |stream, remote| {
        let (done, running): (Vec<_>, Vec<_>) = reading.drain(..).partition(JoinHandle::is_finished);
        reading = running;
        threads::join_all(done);
        if reading.len() >= MAX_READING {
            log::debug!("IP Messenger connection from {remote} closed: {MAX_READING} requests being read");
            return true;
        }
        let (queue, stop) = (queue.clone(), stop.clone());
        let reader = threads::spawn("pigeon-ipmsg-request", move || {
            if let Some(request) = read_request(stream, remote, &stop) {
                // The family may have stopped; then nobody serves it.
                queue.send(request).ok();
            }
        });
        match reader {
            Ok(thread) => reading.push(thread),
            Err(err) => log::warn!("cannot start a thread to read a request: {err}"),
        }
        true
    });
    threads::join_all(reading);
}

/// Reads the request of a new connection (up to its NUL, the end of the stream, or
/// [`REQUEST_TIMEOUT`] after it started, however slowly bytes trickle in); a connection that
/// sends no valid request is dropped.
fn read_request(mut stream: TcpStream, remote: SocketAddr, stop: &StopFlag) -> Option<Report> {
    let SocketAddr::V4(from) = remote else { return None };
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut request = Vec::new();
    let mut buf = [0u8; 256];
    stream.set_read_timeout(Some(STOP_POLL)).ok()?;
    while !request.contains(&0) && request.len() < MAX_REQUEST {
        if stop.is_raised() || Instant::now() >= deadline {
            log::debug!("IP Messenger TCP request from {from}: not complete within {REQUEST_TIMEOUT:?}");
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(buf.get(..n)?),
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let end = request.iter().position(|&b| b == 0).unwrap_or(request.len());
    match Packet::decode(request.get(..end)?) {
        Ok(packet) => Some(Report::Request { stream, from, packet }),
        Err(err) => {
            log::debug!("IP Messenger TCP request from {from} dropped: {err}");
            None
        }
    }
}

/// One request to serve.
pub struct ServeRequest {
    /// Which top-level entry of the offer.
    pub index: usize,
    /// The entry and, for a folder, everything inside it, in offer order, with local paths.
    pub entries: Vec<(Entry, PathBuf)>,
    /// Where to start in a file (folders always start at the beginning).
    pub offset: u64,
    /// The names' charset in folder streams (the client's).
    pub charset: Charset,
    /// The client's connection, its request already read.
    pub stream: TcpStream,
    /// Raised when the transfer ends.
    pub stop: StopFlag,
    /// Progress to the hub.
    pub reporter: Reporter,
    /// Bytes of the whole offer, shared with the other requests of the same client.
    pub tally: Arc<Tally>,
    /// Where the outcome goes.
    pub queue: Bell<Report>,
}

/// Serves the request and reports the outcome.
pub fn serve(mut request: ServeRequest) {
    let mut meter = Meter::sharing(request.reporter.clone(), request.tally.clone());
    let result = serve_all(&mut request, &mut meter).and_then(|()| closed_cleanly(&request));
    meter.report();
    let outcome = result.map_err(|err| err.to_string());
    let transfer = request.reporter.transfer();
    request.queue.send(Report::Served { transfer, index: request.index, outcome }).ok();
}

fn serve_all(request: &mut ServeRequest, meter: &mut Meter) -> io::Result<()> {
    request.stream.set_write_timeout(Some(STOP_POLL))?;
    let offset = request.offset;
    match request.entries.first().map(|(entry, _)| entry.kind) {
        Some(EntryKind::File) => send_file(request, 0, offset, meter),
        Some(EntryKind::Dir) => send_folder(request, meter),
        None => Ok(()),
    }
}

/// Writes all of `bytes`, looking at the stop flag while the client does not read.
fn write_all(request: &ServeRequest, mut bytes: &[u8]) -> io::Result<()> {
    let mut since = Instant::now();
    while !bytes.is_empty() {
        if request.stop.is_raised() {
            return Err(io::Error::other("cancelled"));
        }
        match (&request.stream).write(bytes) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the connection closed")),
            Ok(n) => {
                bytes = bytes.get(n..).unwrap_or_default();
                since = Instant::now();
            }
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if since.elapsed() > STALL_TIMEOUT {
                    return Err(io::Error::other(format!(
                        "the receiver took nothing for {} s",
                        STALL_TIMEOUT.as_secs()
                    )));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// After the last byte: our side is shut down, and the client must close its own without
/// leaving our data unread (which the kernel answers with a reset).
fn closed_cleanly(request: &ServeRequest) -> io::Result<()> {
    request.stream.shutdown(Shutdown::Write)?;
    request.stream.set_read_timeout(Some(STOP_POLL))?;
    let started = Instant::now();
    let mut sink = [0u8; 256];
    loop {
        match (&request.stream).read(&mut sink) {
            Ok(0) => return Ok(()),
            // A client may say something at the end; only its close counts.
            Ok(_) => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if request.stop.is_raised() {
                    return Err(io::Error::other("cancelled"));
                }
                if started.elapsed() > STALL_TIMEOUT {
                    return Err(io::Error::other("the receiver did not close the connection"));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                return Err(io::Error::other("the receiver hung up before it had every byte"));
            }
            Err(err) => return Err(err),
        }
    }
}

fn send_file(request: &ServeRequest, at: usize, offset: u64, meter: &mut Meter) -> io::Result<()> {
    let (entry, path) = request.entries.get(at).cloned().ok_or_else(|| io::Error::other("no such entry"))?;
    let mut file = File::open(&path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut left = entry.size.saturating_sub(offset);
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(meter.slice(CHUNK));
        let piece = buf.get_mut(..want).unwrap_or_default();
        let read = file.read(piece)?;
        if read == 0 {
            return Err(io::Error::other(format!("{} got shorter while being sent", path.display())));
        }
        write_all(request, piece.get(..read).unwrap_or_default())?;
        left -= read as u64;
        meter.add(read as u64);
    }
    Ok(())
}

fn send_folder(request: &ServeRequest, meter: &mut Meter) -> io::Result<()> {
    // Path components of the folder we are in, from the offered folder down.
    let mut open: Vec<(String, Option<u64>)> = Vec::new();
    let up = |mtime: Option<u64>| encode_dir_header(b".", 0, mtime, AttachKind::Up);
    for at in 0..request.entries.len() {
        let Some((entry, path)) = request.entries.get(at).cloned() else { break };
        let parts: Vec<&str> = entry.path.split('/').collect();
        let (name, parent) = parts.split_last().ok_or_else(|| io::Error::other("empty path"))?;
        while open.len() > parent.len() || open.iter().zip(parent.iter()).any(|((a, _), b)| a != b) {
            let (_, mtime) = open.pop().unwrap_or_default();
            write_all(request, &up(mtime))?;
        }
        let (name_bytes, mtime) = (text::encode(name, request.charset), mtime(&path));
        match entry.kind {
            EntryKind::Dir => {
                write_all(request, &encode_dir_header(&name_bytes, 0, mtime, AttachKind::Dir))?;
                open.push(((*name).to_owned(), mtime));
            }
            EntryKind::File => {
                write_all(request, &encode_dir_header(&name_bytes, entry.size, mtime, AttachKind::File))?;
                send_file(request, at, 0, meter)?;
            }
        }
    }
    while let Some((_, mtime)) = open.pop() {
        write_all(request, &up(mtime))?;
    }
    Ok(())
}

/// A file's modification time, in seconds since the Unix epoch (as IP Messenger sends it).
pub fn mtime(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.duration_since(UNIX_EPOCH).ok()?.as_secs())
}
