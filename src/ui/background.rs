//! Work the window hands off so its thread never waits on the disk or another process:
//! saving settings and the autostart entry, opening a folder, file or link with the
//! desktop's program for it, the desktop's own file dialog (its own thread: it waits for
//! the user), and the network doctor (its own thread: it waits seconds for echoes and a
//! probe, which a settings change must not wait behind).
//!
//! One named thread takes jobs from a bounded queue; a job's outcome comes back through a
//! second queue that the window drains each frame (the thread wakes the window for it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::wake::Wake;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::picker::Purpose;
use super::settings::SettingsPatch;
use crate::config::{ConfigError, Settings};
use crate::node::threads;

/// Jobs waiting before new ones are dropped (a burst of notifications, say).
const QUEUE: usize = 32;

/// Something to do off the window's thread.
pub enum Job {
    /// Apply the changed fields to the settings file.
    SaveSettings(PathBuf, SettingsPatch),
    /// Open a folder, file or web address with the desktop's program for it.
    Open(String),
    /// Resolve extra targets (host names may need DNS) for the node.
    ResolveTargets(Vec<String>, u16),
    /// Write (`on`) or remove the session's autostart entry for `data_dir`.
    Autostart {
        /// Where it goes.
        entry: PathBuf,
        /// Start at login.
        on: bool,
        /// The data folder it starts Pigeon on.
        data_dir: PathBuf,
    },
}

/// What came of a job the window waits for.
#[derive(Debug)]
pub enum Outcome {
    /// The settings file was written (or why not); so was the autostart entry.
    SettingsSaved(Result<(), String>),
    /// Nothing opened the target.
    OpenFailed {
        /// What was to be opened.
        target: String,
        /// The opener is not installed (else it ran and failed).
        missing: bool,
    },
    /// Extra targets as addresses, or why one does not resolve.
    TargetsResolved(Result<Vec<String>, String>),
    /// The network doctor's report, before who was heard is added.
    Examined(Box<crate::node::doctor::Report>),
    /// The desktop's file dialog closed: what was picked (empty: cancelled), or `None` when
    /// it could not be shown at all.
    Picked(Purpose, Option<Vec<PathBuf>>),
}

/// A native file dialog that answers faster than this did not wait for a person: there is
/// no portal and no zenity, and the window's own picker is used instead.
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(400);

/// The worker thread's two queues.
pub struct Background {
    jobs: Sender<Job>,
    outcomes: Receiver<Outcome>,
    /// For the file dialog's own thread.
    outcome_tx: Sender<Outcome>,
    wake: Wake,
}

impl Background {
    /// Starts the worker; it wakes the window whenever it has an outcome.
    pub fn start(wake: &Wake) -> std::io::Result<Background> {
        let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(QUEUE);
        let (outcome_tx, outcomes) = crossbeam_channel::bounded(QUEUE);
        let (wake, window) = (wake.clone(), wake.clone());
        let dialog_outcomes = outcome_tx.clone();
        // Ends when the window drops its sender; not joined, since a notification may hang on
        // a D-Bus that does not answer and closing the window must not wait for it.
        threads::spawn("pigeon-ui-work", move || {
            for job in job_rx {
                if let Some(outcome) = run(job) {
                    if outcome_tx.send(outcome).is_err() {
                        return;
                    }
                    wake.now();
                }
            }
        })?;
        Ok(Background { jobs, outcomes, outcome_tx: dialog_outcomes, wake: window })
    }

    /// Shows the desktop's file dialog (through the XDG portal, else zenity) for `purpose`,
    /// starting in `start`; its outcome comes as [`Outcome::Picked`].
    pub fn pick(&self, purpose: Purpose, start: PathBuf, title: String) -> std::io::Result<()> {
        let (outcomes, wake) = (self.outcome_tx.clone(), self.wake.clone());
        threads::spawn("pigeon-file-dialog", move || {
            let asked = Instant::now();
            // The portal takes the folder; zenity only a file name, which opens a folder when
            // it ends in a separator.
            let folder_name = start.join("").display().to_string();
            let dialog =
                rfd::FileDialog::new().set_directory(&start).set_file_name(folder_name).set_title(title);
            let picked = match purpose {
                Purpose::SendFiles(_) | Purpose::RoomFiles(_) => dialog.pick_files(),
                Purpose::SendFolder(_) | Purpose::RoomFolder(_) | Purpose::DownloadFolder => {
                    dialog.pick_folder().map(|folder| vec![folder])
                }
            };
            let picked = match picked {
                Some(paths) => Some(paths),
                None if asked.elapsed() < NO_DIALOG_WITHIN => None,
                None => Some(Vec::new()),
            };
            if outcomes.send(Outcome::Picked(purpose, picked)).is_ok() {
                wake.now();
            }
        })
        .map(drop)
    }

    /// Runs the network doctor with `settings` (the window's node holds the ports), probing
    /// `probe` if given; its report comes as [`Outcome::Examined`].
    pub fn examine(&self, settings: Settings, probe: Option<String>) -> std::io::Result<()> {
        let (outcomes, wake) = (self.outcome_tx.clone(), self.wake.clone());
        threads::spawn("pigeon-doctor", move || {
            let ask =
                crate::node::doctor::Ask { settings: &settings, running: true, probe: probe.as_deref() };
            let report = crate::node::doctor::examine(&ask);
            if outcomes.send(Outcome::Examined(Box::new(report))).is_ok() {
                wake.now();
            }
        })
        .map(drop)
    }

    /// Queues a job; when the queue is full the job is dropped with a log line.
    pub fn submit(&self, job: Job) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.jobs.try_send(job) {
            log::warn!("background queue full; a job was dropped");
        }
    }

    /// Outcomes that arrived since the last call.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.outcomes.try_iter()
    }
}

fn run(job: Job) -> Option<Outcome> {
    match job {
        Job::SaveSettings(file, patch) => {
            // Patch what is on disk, not what is in effect: flags given for this session only
            // must not be saved.
            let saved = Settings::update_file(&file, |settings| patch.apply(settings));
            Some(Outcome::SettingsSaved(saved.map_err(|err: ConfigError| err.to_string())))
        }
        Job::Autostart { entry, on, data_dir } => Some(Outcome::SettingsSaved(
            super::autostart::set(&entry, on, &data_dir)
                .map_err(|err| format!("cannot change {}: {err}", entry.display())),
        )),
        Job::ResolveTargets(targets, port) => Some(Outcome::TargetsResolved(
            crate::node::resolve_targets(&targets, port)
                .map(|addrs| addrs.iter().map(ToString::to_string).collect())
                .map_err(|err| err.to_string()),
        )),
        Job::Open(target) => {
            let opener = if cfg!(target_os = "macos") {
                "open"
            } else if cfg!(windows) {
                "explorer"
            } else {
                "xdg-open"
            };
            match std::process::Command::new(opener).arg(&target).status() {
                Ok(status) if status.success() => None,
                Ok(status) => {
                    log::warn!("{opener} {target}: {status}");
                    Some(Outcome::OpenFailed { target, missing: false })
                }
                Err(err) => {
                    log::warn!("{opener} {target}: {err}");
                    let missing = err.kind() == std::io::ErrorKind::NotFound;
                    Some(Outcome::OpenFailed { target, missing })
                }
            }
        }
    }
}
