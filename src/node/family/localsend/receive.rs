//! One uploaded file of an accepted LocalSend offer, stored by the connection thread that
//! carries it: into the transfer's staging folder, never more bytes than offered, checked
//! against the `sha256` the sender gave (if it gave one), and placed under its sanitized
//! name (never overwriting: ` (1)` is added) only once whole. A short or wrong file never
//! appears in the download folder.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use sha2::Digest;

use super::Report;
use crate::node::doorbell::Bell;
use crate::node::files;
use crate::node::threads::StopFlag;
use crate::node::worker::{self, Meter, Reporter};

/// Bytes read and written at a time.
const CHUNK: usize = 256 * 1024;

/// What the hub allows one upload: where it goes and what it must be.
pub struct Grant {
    /// The session.
    pub session: String,
    /// The sender's id of the file.
    pub file: String,
    /// The folder the transfer's files go to.
    pub root: PathBuf,
    /// The transfer's staging folder.
    pub staging: PathBuf,
    /// Its sanitized place below `root` (folder names as reserved at accept).
    pub place: Vec<String>,
    /// Bytes offered.
    pub size: u64,
    /// The SHA-256 the sender gave.
    pub sha256: Option<[u8; 32]>,
    /// The transfer's stop flag (cancel, decline, shutdown).
    pub stop: StopFlag,
    /// Progress of the transfer, shared with its other uploads.
    pub meter: Meter,
    /// For telling the hub where the file went.
    pub reporter: Reporter,
}

/// Stores the upload `body` as `grant` allows, tells the hub how it went, and returns the
/// status to answer the sender with.
pub fn store(grant: Grant, body: impl Read, queue: &Bell<Report>) -> u16 {
    let (session, file) = (grant.session.clone(), grant.file.clone());
    let (status, outcome) = match receive(grant, body) {
        Ok(()) => (200, Upload::Stored),
        Err(Refused::Stopped) => (403, Upload::Stopped),
        Err(Refused::BrokeOff(reason)) => (400, Upload::BrokeOff(reason)),
        Err(Refused::Bad(reason)) => (400, Upload::Failed(reason)),
        Err(Refused::Disk(reason)) => (500, Upload::Failed(reason)),
    };
    queue.send(Report::Uploaded { session, file, outcome }).ok();
    status
}

/// How an upload went, for the hub.
pub enum Upload {
    /// Stored whole and placed.
    Stored,
    /// It ended before the file was whole: the sender may try again (the apps do).
    BrokeOff(String),
    /// It cannot be right (longer than offered, another SHA-256, our disk): the transfer fails.
    Failed(String),
    /// The transfer's stop flag was raised: it is ending already.
    Stopped,
}

enum Refused {
    /// The transfer's stop flag was raised.
    Stopped,
    /// The body ended early.
    BrokeOff(String),
    /// The sender's fault: longer than offered, or not what it said.
    Bad(String),
    /// Ours: the disk.
    Disk(String),
}

fn receive(mut grant: Grant, mut body: impl Read) -> Result<(), Refused> {
    let disk = |err: io::Error| Refused::Disk(format!("cannot write the file: {err}"));
    std::fs::create_dir_all(&grant.staging).map_err(disk)?;
    let part = grant.staging.join(format!("{}.part", blake3::hash(grant.file.as_bytes()).to_hex()));
    let mut out = BufWriter::new(File::create(&part).map_err(disk)?);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    let outcome = loop {
        if grant.stop.is_raised() {
            break Err(Refused::Stopped);
        }
        let read = match body.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(_) if grant.stop.is_raised() => break Err(Refused::Stopped),
            Err(err) => break Err(Refused::BrokeOff(format!("the upload broke off: {err}"))),
        };
        received += read as u64;
        if received > grant.size {
            break Err(Refused::Bad(format!("more than the {} bytes offered", grant.size)));
        }
        hasher.update(&buf[..read]);
        if let Err(err) = out.write_all(&buf[..read]) {
            break Err(disk(err));
        }
        grant.meter.add(read as u64);
    };
    let outcome = outcome.and_then(|()| out.flush().map_err(disk)).and_then(|()| {
        if received < grant.size {
            return Err(Refused::BrokeOff(format!("{received} of the {} bytes offered", grant.size)));
        }
        if grant.sha256.is_some_and(|expected| expected != <[u8; 32]>::from(hasher.finalize())) {
            return Err(Refused::Bad(String::from("its bytes do not match the SHA-256 it was offered with")));
        }
        Ok(())
    });
    drop(out);
    if let Err(refused) = outcome {
        std::fs::remove_file(&part).ok();
        return Err(refused);
    }
    let placed = files::place_file(&grant.root, &grant.place, &part).map_err(disk)?;
    if let Some((top, local)) = files::renamed_top(&grant.place, &placed) {
        grant.reporter.send(worker::Report::Placed { top, local });
    }
    grant.meter.report();
    Ok(())
}
