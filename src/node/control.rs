//! The control socket: a Unix socket in the data folder speaking the daemon's JSON lines, so
//! that a second `pigeon` started on the same data folder hands its command to the running
//! node instead of fighting it for the port.

use std::io::{self, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use super::doorbell::Bell;

use super::event::Event;
use super::inbox::Input;
use super::lines::{Line, read_command};
use super::sinks::{ClientId, Origin};
use super::threads::{self, StopFlag};

/// File name of the socket inside the data folder.
pub const SOCKET_FILE: &str = "control.sock";

/// Events queued for one client before it counts as not keeping up.
const CLIENT_QUEUE: usize = 4096;

/// A client command waits at most this long for room in the hub's queue.
const INPUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the control socket of the node using `data_dir` lives.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// A connected client's threads and a socket clone to end them.
struct Client {
    stream: UnixStream,
    threads: [JoinHandle<()>; 2],
}

/// Accepts control clients until `stop` is raised, then closes them all.
pub fn accept_loop(listener: &UnixListener, inputs: &Bell<Input>, stop: &StopFlag) {
    let mut clients: Vec<Client> = Vec::new();
    let mut next_id = 0;
    while !stop.is_raised() {
        match listener.accept() {
            Ok((stream, _)) if !stop.is_raised() => {
                next_id += 1;
                match serve(ClientId(next_id), stream, inputs) {
                    Ok(client) => clients.push(client),
                    Err(err) => log::warn!("control client setup failed: {err}"),
                }
            }
            Ok(_) => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(err) => log::debug!("control accept: {err}"),
        }
        let (done, open): (Vec<_>, Vec<_>) =
            clients.into_iter().partition(|client| client.threads.iter().all(JoinHandle::is_finished));
        clients = open;
        threads::join_all(done.into_iter().flat_map(|client| client.threads));
    }
    for client in &clients {
        client.stream.shutdown(std::net::Shutdown::Both).ok();
    }
    threads::join_all(clients.into_iter().flat_map(|client| client.threads));
}

fn serve(id: ClientId, stream: UnixStream, inputs: &Bell<Input>) -> io::Result<Client> {
    stream.set_read_timeout(None)?;
    let (events_tx, events_rx) = crossbeam_channel::bounded::<Event>(CLIENT_QUEUE);
    inputs
        .send_timeout(Input::Subscribe(id, events_tx.clone()), INPUT_TIMEOUT)
        .map_err(|_stopped| io::Error::other("node is not accepting commands"))?;
    let mut write_half = stream.try_clone()?;
    let writer = threads::spawn("pigeon-control-w", move || {
        for event in events_rx {
            let mut line = serde_json::to_vec(&event).expect("events always serialize");
            line.push(b'\n');
            if write_half.write_all(&line).is_err() {
                break;
            }
        }
    })?;
    let read_half = stream.try_clone()?;
    let inputs = inputs.clone();
    let reader = threads::spawn("pigeon-control-r", move || {
        let mut lines = BufReader::new(read_half);
        loop {
            match read_command(&mut lines) {
                Ok(Line::Command(command)) => {
                    if inputs
                        .send_timeout(Input::Command(command, Origin::Client(id)), INPUT_TIMEOUT)
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(Line::Invalid(error)) => {
                    // Full or closed: the client is not reading, so it will not miss this.
                    events_tx.try_send(Event::CommandFailed { error, tag: None }).ok();
                }
                Ok(Line::End) | Err(_) => break,
            }
        }
        // The hub may be stopping and not draining its queue; never block on it here.
        inputs.try_send(Input::Unsubscribe(id)).ok();
    })?;
    Ok(Client { stream, threads: [reader, writer] })
}
