//! What reaches the hub besides the families' own queues: requests from the node's handle
//! and from control-socket clients ([`Input`]), and reports from the threads the hub started
//! for work of its own — transfer workers of every family, file listings ([`NetEvent`]).
//!
//! These types live apart from the hub so that no thread that reports needs the hub's code,
//! and the hub's dependencies point one way.

use crossbeam_channel::Sender;

use super::command::Command;
use super::event::Event;
use super::files::Scanned;
use super::sinks::{ClientId, Origin, Waker};
use super::worker::WorkerReport;
use crate::protocol::ids::{PeerId, RoomId};

/// Requests from the node's handle and control clients.
pub enum Input {
    /// A command and who sent it.
    Command(Command, Origin),
    /// A control client wants events.
    Subscribe(ClientId, Sender<Event>),
    /// A control client left.
    Unsubscribe(ClientId),
    /// The owner's waker.
    SetWaker(Waker),
}

/// Reports from the hub's helper and worker threads.
pub enum NetEvent {
    /// A transfer worker reports.
    Worker(WorkerReport),
    /// A listing of files to offer finished.
    Scanned {
        /// Recipients.
        to: Vec<PeerId>,
        /// The room they are posted to (then its members are the recipients).
        room: Option<RoomId>,
        /// Tag of the command.
        tag: Option<String>,
        /// Who asked.
        origin: Origin,
        /// What was found, or why not.
        result: std::io::Result<Scanned>,
    },
}
