//! A conversation with a node for one CLI command: the running node of this data folder
//! through its control socket if there is one, else a node of our own for the duration.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use pigeon::node::{StartError, control_socket_path};
use pigeon::{Command, Config, Event, Node};

/// Events buffered from a running node's control socket.
const REMOTE_QUEUE: usize = 4096;

/// Either our own node or a connection to the one already running.
pub enum Session {
    /// A node started for this command; stopped (goodbye sent) when the session ends.
    Local(Node),
    /// The control socket of a node already running on the data folder.
    Remote {
        /// Commands are written here as JSON lines.
        stream: UnixStream,
        /// Events parsed from the socket by `reader`.
        events: Receiver<Event>,
        /// Reads the socket until it closes.
        reader: JoinHandle<()>,
    },
}

impl Session {
    /// Hands over to a running node if one owns the data folder, else starts one.
    pub fn open(config: &Config) -> anyhow::Result<Session> {
        if let Some(session) = Session::connect(config)? {
            return Ok(session);
        }
        match Node::start(config) {
            Ok(node) => Ok(Session::Local(node)),
            // Lost a race with a node that started meanwhile: use it.
            Err(StartError::Locked(dir)) => Session::connect(config)?.with_context(|| {
                format!("another Pigeon runs on {} but does not answer on its control socket", dir.display())
            }),
            Err(err) => Err(err.into()),
        }
    }

    fn connect(config: &Config) -> anyhow::Result<Option<Session>> {
        let Ok(stream) = UnixStream::connect(control_socket_path(&config.data_dir)) else {
            return Ok(None);
        };
        let (tx, events) = crossbeam_channel::bounded(REMOTE_QUEUE);
        let read_half = stream.try_clone()?;
        let reader = std::thread::Builder::new().name("pigeon-cli-events".into()).spawn(move || {
            for line in BufReader::new(read_half).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Event>(&line) {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    Err(err) => log::warn!("unreadable event from the running node: {err}"),
                }
            }
        })?;
        Ok(Some(Session::Remote { stream, events, reader }))
    }

    /// Opens a session, runs `work` in it, closes it, and prints the outcome for the user:
    /// the message on stdout when it succeeded, on stderr otherwise. Returns the exit code.
    pub fn run_reported(
        config: &Config,
        work: impl FnOnce(&mut Session) -> anyhow::Result<(ExitCode, String)>,
    ) -> anyhow::Result<ExitCode> {
        let mut session = Session::open(config)?;
        let outcome = work(&mut session);
        session.close();
        let (code, message) = outcome?;
        if code == ExitCode::SUCCESS {
            println!("{message}");
        } else {
            eprintln!("pigeon: {message}");
        }
        Ok(code)
    }

    /// Whether this command runs on a node of its own (which knows nothing yet).
    pub fn is_local(&self) -> bool {
        matches!(self, Session::Local(_))
    }

    /// Sends a command.
    pub fn send(&mut self, command: &Command) -> anyhow::Result<()> {
        match self {
            Session::Local(node) => node.send(command.clone())?,
            Session::Remote { stream, .. } => {
                let mut line = serde_json::to_vec(command)?;
                line.push(b'\n');
                stream.write_all(&line).context("the running node closed its control socket")?;
            }
        }
        Ok(())
    }

    /// The next event, or `None` once `deadline` passes.
    pub fn next_event(&self, deadline: Instant) -> anyhow::Result<Option<Event>> {
        let events = match self {
            Session::Local(node) => node.events(),
            Session::Remote { events, .. } => events,
        };
        match events.recv_deadline(deadline) {
            Ok(event) => Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the node stopped unexpectedly"),
        }
    }

    /// Waits until `pick` returns a value for some event, or `deadline` passes.
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> anyhow::Result<Option<T>> {
        while let Some(event) = self.next_event(deadline)? {
            if let Some(found) = pick(&event) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Ends the session: stops our own node (saying goodbye), or disconnects.
    pub fn close(self) {
        match self {
            Session::Local(node) => node.shutdown(),
            Session::Remote { stream, events, reader } => {
                drop(events);
                // Ends the reader thread; the running node just sees a client leave.
                stream.shutdown(std::net::Shutdown::Both).ok();
                if reader.join().is_err() {
                    log::error!("event reader panicked");
                }
            }
        }
    }
}
