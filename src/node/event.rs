//! Events: everything the node tells its consumers, past tense and self-contained. Serialized
//! as one JSON object per line by the daemon, tagged by `"type"`.

use serde::{Deserialize, Serialize};

use crate::protocol::announce::Status;
use crate::protocol::ids::{MsgId, PeerId};
use crate::store::{ChatMessage, MessageState};

/// A peer as consumers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Stable identity.
    pub id: PeerId,
    /// Display name.
    pub name: String,
    /// Group, possibly empty.
    pub group: String,
    /// Host name of the peer's machine.
    pub host: String,
    /// IPv4 address the peer was heard from.
    pub addr: String,
    /// The peer's TCP (and discovery) port.
    pub port: u16,
    /// Availability.
    pub status: Status,
}

/// Why a peer left the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It said goodbye.
    Goodbye,
    /// It fell silent for longer than the peer timeout (crash, cable, sleep).
    Timeout,
}

/// Counters for diagnostics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Discovery datagrams decoded.
    pub datagrams: u64,
    /// Discovery datagrams dropped as malformed.
    pub malformed_datagrams: u64,
    /// Connections closed because of invalid framing or a missing hello.
    pub bad_connections: u64,
    /// TCP connections opened since start, in either direction.
    pub connections_opened: u64,
    /// Events dropped because a consumer did not keep up.
    pub dropped_events: u64,
    /// Peers online now.
    pub peers_online: usize,
    /// Open TCP connections.
    pub connections: usize,
}

/// Something that happened in the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The node is up; always the first event.
    Started {
        /// Our identity.
        id: PeerId,
        /// Our display name.
        name: String,
        /// Address and port we are bound to.
        addr: String,
    },
    /// A peer appeared.
    PeerJoined {
        /// The peer.
        peer: PeerInfo,
    },
    /// A known peer changed name, group, status or address.
    PeerUpdated {
        /// The peer as it is now.
        peer: PeerInfo,
    },
    /// A peer left.
    PeerLeft {
        /// Who.
        id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// An outgoing message entered history and the outbox.
    MessageQueued {
        /// The message (state `queued`).
        message: ChatMessage,
        /// The tag of the command that sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// An outgoing message moved to `sent`, `delivered` or `read`.
    MessageStateChanged {
        /// Which message.
        msg_id: MsgId,
        /// Its recipient.
        peer: PeerId,
        /// The new state.
        state: MessageState,
    },
    /// A message arrived (each message once, however often the sender retried).
    MessageReceived {
        /// The message (state `delivered`).
        message: ChatMessage,
    },
    /// Answer to `list_peers`: the peers online now.
    Peers {
        /// Sorted by group, then name.
        peers: Vec<PeerInfo>,
    },
    /// Answer to `load_history`.
    History {
        /// The conversation.
        peer: PeerId,
        /// Oldest first.
        messages: Vec<ChatMessage>,
        /// Whether older messages exist beyond this page.
        has_more: bool,
    },
    /// Answer to `search`.
    SearchResults {
        /// The query.
        query: String,
        /// Newest first.
        messages: Vec<ChatMessage>,
    },
    /// Answer to `stats`.
    Stats {
        /// The counters.
        stats: Stats,
    },
    /// A `connect` command could not reach its address.
    ConnectFailed {
        /// The address.
        addr: String,
        /// Why, for the user.
        reason: String,
    },
    /// A command was refused (malformed, unknown peer, text too long, disk error).
    CommandFailed {
        /// Why, for the user.
        error: String,
        /// The tag of the command, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// The node has stopped; always the last event.
    Stopped,
}

impl Event {
    /// Answers to a command go only to whoever asked; every other event goes to everyone.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Event::Peers { .. }
                | Event::History { .. }
                | Event::SearchResults { .. }
                | Event::Stats { .. }
                | Event::CommandFailed { .. }
                | Event::ConnectFailed { .. }
        )
    }
}
