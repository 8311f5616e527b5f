//! `pigeon daemon`: a node driven by JSON lines — commands on stdin, events on stdout.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use crossbeam_channel::select;
use pigeon::node::lines::{Line, read_command};
use pigeon::{Command, Config, Event, Node};

/// Error events from the stdin thread waiting for the printer.
const LOCAL_EVENTS: usize = 64;

/// Runs until stdin ends, a `shutdown` command arrives, or SIGINT/SIGTERM.
pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let node = Node::start(config)?;
    let commands = node.commands();
    let on_signal = node.commands();
    ctrlc::set_handler(move || {
        // A second signal while stopping finds the node gone; nothing left to do.
        on_signal.send(Command::Shutdown).ok();
    })?;
    let (local_tx, local_rx) = crossbeam_channel::bounded(LOCAL_EVENTS);
    // Not joined: a read on stdin cannot be interrupted portably; the process exits once the
    // node has stopped, which ends this thread too.
    std::thread::Builder::new().name("pigeon-stdin".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let command = match read_command(&mut stdin) {
                Ok(Line::Command(command)) => command,
                Ok(Line::Invalid(error)) => {
                    if local_tx.send(Event::CommandFailed { error, tag: None }).is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Line::End) | Err(_) => Command::Shutdown,
            };
            let stopping = command == Command::Shutdown;
            if commands.send(command).is_err() || stopping {
                return;
            }
        }
    })?;

    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut local_rx = local_rx;
    loop {
        let event = select! {
            recv(node.events()) -> event => match event {
                Ok(event) => event,
                Err(_) => break,
            },
            recv(local_rx) -> event => match event {
                Ok(event) => event,
                // The stdin thread has finished; the node's own events still follow.
                Err(_) => {
                    local_rx = crossbeam_channel::never();
                    continue;
                }
            },
        };
        let stopped = event == Event::Stopped;
        let written = serde_json::to_writer(&mut out, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if written.is_err() {
            // Nobody reads our events any more: stop like at the end of stdin.
            node.shutdown();
            return Ok(ExitCode::from(super::EXIT_FAILED));
        }
        if stopped {
            break;
        }
    }
    node.shutdown();
    Ok(ExitCode::SUCCESS)
}
