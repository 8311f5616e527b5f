//! `pigeon send-file PEER PATH...`: offer files and folders, show a progress bar, and exit 0
//! only when everything arrived and verified.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pigeon::node::TransferState;
use pigeon::{Command, Config, Event};

use super::EXIT_ERROR;
use super::send::{command_tag, failed, find_peer, give_pin};
use super::session::Session;

/// Sends `paths` to `query`; waits at most `timeout` for the whole transfer (forever if None).
pub fn run(
    config: &Config,
    query: &str,
    paths: &[PathBuf],
    wait: Duration,
    timeout: Option<Duration>,
    pin: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let absolute = match absolute_paths(paths) {
        Ok(absolute) => absolute,
        Err(message) => {
            eprintln!("pigeon: {message}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    Session::run_reported(config, |session| transfer(session, query, absolute, (wait, timeout), pin))
}

/// `paths` made absolute: a node already running on this data folder has another working
/// folder. The error names the path that is not there.
pub fn absolute_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    paths
        .iter()
        .map(|path| {
            std::fs::canonicalize(path).map_err(|err| format!("cannot send {}: {err}", path.display()))
        })
        .collect()
}

fn transfer(
    session: &mut Session,
    query: &str,
    paths: Vec<PathBuf>,
    (wait, timeout): (Duration, Option<Duration>),
    pin: Option<&str>,
) -> anyhow::Result<(ExitCode, String)> {
    let (peer, name) = match find_peer(session, query, wait)? {
        Ok(found) => found,
        Err(message) => return failed(message),
    };
    give_pin(session, peer, pin)?;
    let tag = command_tag();
    session.send(&Command::SendFiles { to: vec![peer], paths, tag: Some(tag.clone()) })?;
    // A year stands in for "no deadline": the user ends the wait with Ctrl-C.
    let deadline = Instant::now() + timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let added = session.wait_for(deadline, |event| match event {
        Event::TransferAdded { transfer, tag: Some(t) } if *t == tag => Some(Ok(transfer.clone())),
        Event::CommandFailed { error, tag: Some(t) } if *t == tag => Some(Err(error.clone())),
        _ => None,
    })?;
    let transfer = match added {
        Some(Ok(transfer)) => transfer,
        Some(Err(error)) => return failed(error),
        None => return failed(String::from("the node did not take the files")),
    };
    let bar = ProgressBar::new(transfer.total_bytes);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(format!("waiting for {name} to accept"));
    let id = transfer.transfer_id;
    let outcome = loop {
        let Some(event) = session.next_event(deadline)? else {
            break failed(format!(
                "not finished within {:?}; the transfer goes on while Pigeon runs",
                timeout.unwrap_or_default()
            ));
        };
        match event {
            Event::TransferProgress { transfer_id, progress } if transfer_id == id => {
                bar.set_position(progress.bytes_done);
            }
            Event::TransferStateChanged { transfer_id, state, reason } if transfer_id == id => match state {
                TransferState::Active => bar.set_message(format!("sending to {name}")),
                TransferState::Completed => {
                    break Ok((ExitCode::SUCCESS, format!("{} sent to {name}, verified", transfer.summary)));
                }
                TransferState::Offered => {}
                TransferState::Declined | TransferState::Cancelled | TransferState::Failed => {
                    break failed(format!("not sent to {name}: {reason}"));
                }
            },
            Event::TransferInterrupted { transfer_id, reason } if transfer_id == id => {
                bar.set_message(format!("interrupted ({reason}), resuming"));
            }
            _ => {}
        }
    };
    bar.finish_and_clear();
    outcome
}
