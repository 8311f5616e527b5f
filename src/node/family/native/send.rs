//! The sending worker of a transfer between Pigeons: on the data connection the receiver
//! opened (its fetch already read), stream every file from the first byte it lacks, hashing
//! as it reads, then wait for the receiver's confirmation that everything arrived verified.
//! Memory stays flat whatever the file size: one reusable chunk buffer.

use std::fs::File;
use std::io::{self, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::stream::{DataStream, Stop, bytes_before, hash_prefix, link};
use crate::node::threads::{self, StopFlag};
use crate::node::worker::{Meter, Report, Reporter};
use crate::protocol::frame::{self, Frame};
use crate::protocol::ids::TransferId;
use crate::protocol::transfer::{CHUNK_BYTES, Entry, EntryKind, Fetch, FileEnd, TransferDone, TransferEnd};
use crate::secure::Session;

/// Everything a sending worker needs.
pub struct SendJob {
    /// The data connection the receiver opened (its fetch already read).
    pub stream: TcpStream,
    /// The connection's encrypted session.
    pub session: Arc<Session>,
    /// The threads that had the connection before: they end by themselves (the writer once
    /// our hello is out), and must have before this worker writes on the same session.
    pub handover: Vec<JoinHandle<()>>,
    /// The offer's entries.
    pub entries: Vec<Entry>,
    /// The local file behind each entry.
    pub sources: Vec<PathBuf>,
    /// Where the receiver wants to start.
    pub fetch: Fetch,
    /// Raised to stop the worker.
    pub stop: StopFlag,
    /// Reports to the hub.
    pub reporter: Reporter,
}

/// A fetch we refuse: for a transfer that is not (or no longer) an offer of ours to the
/// peer that asks.
pub struct Refusal {
    /// The data connection the fetch came on.
    pub stream: TcpStream,
    /// Its encrypted session.
    pub session: Arc<Session>,
    /// The threads that had the connection before (see [`SendJob::handover`]).
    pub handover: Vec<JoinHandle<()>>,
    /// The transfer asked for.
    pub transfer_id: TransferId,
}

/// Why a fetch is refused, as the receiver is told (it fails the transfer with it).
pub const NOT_OFFERED: &str = "not an offer to you, or no longer (cancelled, declined or finished)";

/// Answers a refused fetch with a decline saying why, then closes the connection.
pub fn refuse(refusal: Refusal) {
    threads::join_all(refusal.handover);
    // Its own stop flag: the decline is one small frame, bounded by the stream's timeouts.
    let stop = StopFlag::default();
    let decline = TransferEnd { transfer_id: refusal.transfer_id, reason: NOT_OFFERED.into(), failed: true };
    let written = DataStream::new(refusal.stream, &refusal.session, &stop)
        .map_err(|err| link(&err))
        .and_then(|mut data| data.write_frame(&Frame::Decline(decline)));
    if written.is_err() {
        log::debug!("could not tell {} why its fetch was refused", refusal.transfer_id);
    }
}

/// Streams the requested files, then waits for the receiver's confirmation.
pub fn send(mut job: SendJob) {
    threads::join_all(std::mem::take(&mut job.handover));
    let total = job.entries.iter().map(|e| e.size).sum();
    let done = bytes_before(&job.entries, job.fetch.index) + job.fetch.offset;
    let mut meter = Meter::new(job.reporter.clone(), total, done);
    let report = match stream_files(&job, &mut meter) {
        Ok(()) => Report::Finished,
        Err(stop) => stop.into_report(),
    };
    meter.report();
    job.reporter.send(report);
}

fn stream_files(job: &SendJob, meter: &mut Meter) -> Result<(), Stop> {
    let stream = job.stream.try_clone().map_err(|err| link(&err))?;
    let mut data = DataStream::new(stream, &job.session, &job.stop).map_err(|err| link(&err))?;
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
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(meter.slice(buf.len()));
            let piece = buf.get_mut(..want).unwrap_or_default();
            file.read_exact(piece).map_err(unreadable)?;
            hasher.update(piece);
            data.check_stop()?;
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
    let id = job.reporter.transfer();
    loop {
        match data.read_frame(&mut buf)? {
            Frame::Done(TransferDone { transfer_id }) if transfer_id == id => return Ok(()),
            _ => {}
        }
    }
}
