//! What the transfer workers of every family tell the hub — progress, files done and how they
//! ended — and the meter that turns byte counts into throttled progress reports.
//!
//! Each worker has a [`WorkerId`]: a transfer that is resumed or served again gets a new
//! worker while the old one may still be winding down, and the hub must tell their reports
//! apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::doorbell::Bell;
use super::inbox::NetEvent;
use super::pace::{Bucket, Pace};
use crate::protocol::ids::TransferId;
use crate::protocol::transfer::Entry;

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

/// Names one worker thread of a transfer, unique within a node's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkerId(pub u64);

/// What a worker tells the hub.
#[derive(Debug)]
pub enum Report {
    /// Bytes moved.
    Progress(Progress),
    /// Receiver: entries before `files_done` are complete on disk.
    FilesDone(u32),
    /// Receiver: what a folder offered without its contents turned out to hold (IP
    /// Messenger folders are offered as one name and a total size).
    Contents(Vec<Entry>),
    /// Receiver: a top-level file was placed under another name than offered (` (1)`
    /// added: the name was taken), so consumers show where it went.
    Placed {
        /// The name offered.
        top: String,
        /// The name it has on disk.
        local: String,
    },
    /// Every file is at the receiver, verified.
    Finished,
    /// The connection broke; the transfer can resume from where it stopped.
    Interrupted(String),
    /// The transfer cannot go on (disk full, integrity check, unreadable source, a receiver
    /// that hung up before it had every byte).
    Failed(String),
    /// Its stop flag was raised.
    Cancelled,
}

impl Report {
    /// Whether this is the worker's last report.
    pub fn is_last(&self) -> bool {
        matches!(self, Report::Finished | Report::Interrupted(_) | Report::Failed(_) | Report::Cancelled)
    }
}

/// A report with the transfer and worker it is about.
#[derive(Debug)]
pub struct WorkerReport {
    /// The transfer.
    pub transfer: TransferId,
    /// Which of its workers.
    pub worker: WorkerId,
    /// What happened.
    pub report: Report,
}

/// A worker's way to the hub.
#[derive(Clone)]
pub struct Reporter {
    /// The hub's queue.
    net: Bell<NetEvent>,
    /// The transfer.
    transfer: TransferId,
    /// This worker.
    worker: WorkerId,
    /// A sending worker's speed limits.
    pace: Option<Pace>,
}

impl Reporter {
    /// Reports about `worker` of `transfer`.
    pub fn new(net: Bell<NetEvent>, transfer: TransferId, worker: WorkerId) -> Reporter {
        Reporter { net, transfer, worker, pace: None }
    }

    /// The same for a worker that sends: its meter keeps it within `pace`.
    pub fn sending(net: Bell<NetEvent>, transfer: TransferId, worker: WorkerId, pace: Pace) -> Reporter {
        Reporter { net, transfer, worker, pace: Some(pace) }
    }

    /// The transfer reported on.
    pub fn transfer(&self) -> TransferId {
        self.transfer
    }

    /// The worker reporting.
    #[cfg(test)]
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// Sends a report that must arrive (waits for room; the hub never waits for workers,
    /// so it always makes room).
    pub fn send(&self, report: Report) {
        let report = WorkerReport { transfer: self.transfer, worker: self.worker, report };
        // The hub may have stopped; then nobody needs the report.
        self.net.send(NetEvent::Worker(report)).ok();
    }

    /// Sends progress if there is room: the next report supersedes a lost one.
    fn progress(&self, progress: Progress) {
        let report =
            WorkerReport { transfer: self.transfer, worker: self.worker, report: Report::Progress(progress) };
        self.net.try_send(NetEvent::Worker(report)).ok();
    }
}

/// Byte counts of one transfer, shared by the threads that move its data in parallel (an IP
/// Messenger client fetches each offered entry on a connection of its own).
pub struct Tally {
    /// Bytes done, all threads together.
    done: AtomicU64,
    /// Bytes of the whole transfer.
    total: u64,
    /// Bytes done before this run (a resume): not counted in the rate.
    before: u64,
    /// When this run started.
    started: Instant,
    /// The transfer's own speed limit, all its threads together.
    bucket: Mutex<Bucket>,
}

impl Tally {
    /// A tally of `total` bytes, `done` of which are already there.
    pub fn new(total: u64, done: u64) -> Arc<Tally> {
        Arc::new(Tally {
            done: AtomicU64::new(done),
            total,
            before: done,
            started: Instant::now(),
            bucket: Mutex::default(),
        })
    }
}

/// Turns byte counts into throttled progress reports.
pub struct Meter {
    reporter: Reporter,
    tally: Arc<Tally>,
    file_index: u32,
    file_bytes_done: u64,
    last_report: Option<Instant>,
}

impl Meter {
    /// A meter of its own for a transfer of `total` bytes, `done` already there.
    pub fn new(reporter: Reporter, total: u64, done: u64) -> Meter {
        Meter::sharing(reporter, Tally::new(total, done))
    }

    /// A meter adding to `tally`, which other threads of the transfer add to as well.
    pub fn sharing(reporter: Reporter, tally: Arc<Tally>) -> Meter {
        Meter { reporter, tally, file_index: 0, file_bytes_done: 0, last_report: None }
    }

    /// A new file starts, `already` bytes of it there.
    pub fn start_file(&mut self, index: u32, already: u64) {
        self.file_index = index;
        self.file_bytes_done = already;
    }

    /// `bytes` more moved; a sending worker then waits as long as its speed limits want.
    pub fn add(&mut self, bytes: u64) {
        self.tally.done.fetch_add(bytes, Ordering::Relaxed);
        self.file_bytes_done += bytes;
        if self.last_report.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
            self.report();
        }
        if let Some(pace) = &self.reporter.pace {
            pace.sent(bytes, &self.tally.bucket);
        }
    }

    /// How much to read and send at once, at most `len`: less under a speed limit, so that
    /// the bytes flow steadily.
    pub fn slice(&self, len: usize) -> usize {
        self.reporter.pace.as_ref().map_or(len, |pace| pace.slice(len))
    }

    /// Reports progress now.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "f64 to u64 saturates; rates and times are far below the limit"
    )]
    pub fn report(&mut self) {
        self.last_report = Some(Instant::now());
        let tally = &self.tally;
        let done = tally.done.load(Ordering::Relaxed);
        let mut progress = Progress {
            bytes_done: done,
            bytes_total: tally.total,
            file_index: self.file_index,
            file_bytes_done: self.file_bytes_done,
            ..Progress::default()
        };
        let elapsed = tally.started.elapsed().as_secs_f64();
        let moved = done.saturating_sub(tally.before);
        if elapsed > 0.0 && moved > 0 {
            let rate = moved as f64 / elapsed;
            progress.rate_bytes_per_sec = rate as u64;
            let left = tally.total.saturating_sub(done);
            progress.eta_secs = Some((left as f64 / rate).ceil() as u64);
        }
        self.reporter.progress(progress);
    }
}
