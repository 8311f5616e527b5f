//! Commands: everything a consumer (window, daemon, control socket) can ask of the node.
//! Serialized as one JSON object per line by the daemon, tagged by `"type"`.

use serde::{Deserialize, Serialize};

use crate::protocol::announce::Status;
use std::path::PathBuf;

use crate::protocol::ids::{PeerId, RoomId, TransferId};

/// Default page size of [`Command::LoadHistory`]: about a screenful and a half.
pub const DEFAULT_PAGE: usize = 50;

/// Largest page of history or search results one command returns.
pub const MAX_PAGE: usize = 500;

/// A request to the node, imperative and self-contained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Send `text` to each peer in `to` (one message per peer); answered by
    /// [`Event::MessageQueued`](super::Event::MessageQueued) per peer, carrying `tag`.
    SendMessage {
        /// Recipients: online peers or peers seen before (queued until they are back).
        to: Vec<PeerId>,
        /// UTF-8 text, at most 64 KiB.
        text: String,
        /// Opaque label echoed in the resulting events, so a client can match them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// The user has the conversation with `peer` on screen: mark its messages read and tell
    /// the sender.
    MarkRead {
        /// Whose messages were read.
        peer: PeerId,
    },
    /// Ask for the current peer list; answered by [`Event::Peers`](super::Event::Peers).
    ListPeers,
    /// Ask for every conversation in history with its unread count; answered by
    /// [`Event::Conversations`](super::Event::Conversations).
    ListConversations,
    /// Ask for a page of history; answered by [`Event::History`](super::Event::History).
    LoadHistory {
        /// The conversation.
        peer: PeerId,
        /// Only messages with a `seq` below this (omit for the newest page).
        #[serde(default)]
        before: Option<i64>,
        /// Instead, the page of messages right after this `seq` (towards the present), for a
        /// conversation opened at an older message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<i64>,
        /// Page size, at most 500.
        #[serde(default = "default_page")]
        limit: usize,
    },
    /// Search all history for a text; answered by
    /// [`Event::SearchResults`](super::Event::SearchResults).
    Search {
        /// Text to look for (case-insensitive).
        query: String,
        /// Only in the conversation with this peer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
        /// Most results, at most 500.
        #[serde(default = "default_page")]
        limit: usize,
    },
    /// Start a group room with `members` (and us); answered by
    /// [`Event::RoomUpdated`](super::Event::RoomUpdated) with `tag`.
    RoomCreate {
        /// Its name.
        name: String,
        /// Pigeon peers online or known (IP Messenger peers cannot sign: refused).
        members: Vec<PeerId>,
        /// Echoed in the answer.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Post to a room; answered by [`Event::RoomPosted`](super::Event::RoomPosted) with `tag`.
    RoomSend {
        /// The room.
        room: RoomId,
        /// The text, at most 64 KiB.
        text: String,
        /// Echoed in the answer.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Post files and folders to a room: every other member gets an offer (`transfer_added`
    /// with `room`), and members added later get one from us too. Answered by
    /// [`Event::RoomPosted`](super::Event::RoomPosted) with `tag`.
    RoomSendFiles {
        /// The room.
        room: RoomId,
        /// Local files and folders.
        paths: Vec<PathBuf>,
        /// Echoed in the answer.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Add a member to a room.
    RoomAdd {
        /// The room.
        room: RoomId,
        /// Who.
        member: PeerId,
    },
    /// Remove a member from a room.
    RoomRemove {
        /// The room.
        room: RoomId,
        /// Who.
        member: PeerId,
    },
    /// Rename a room.
    RoomRename {
        /// The room.
        room: RoomId,
        /// The new name.
        name: String,
    },
    /// Leave a room.
    RoomLeave {
        /// The room.
        room: RoomId,
    },
    /// The user has seen every post of a room: members are told (read state).
    RoomMarkRead {
        /// The room.
        room: RoomId,
    },
    /// Ask for every room; answered by [`Event::Rooms`](super::Event::Rooms).
    ListRooms,
    /// Ask for a room's posts; answered by [`Event::RoomHistory`](super::Event::RoomHistory).
    RoomHistory {
        /// The room.
        room: RoomId,
    },
    /// Reach a peer by address (`ip:port`) when discovery cannot (another subnet); the peer
    /// appears through [`Event::PeerJoined`](super::Event::PeerJoined).
    Connect {
        /// TCP address of the peer.
        addr: String,
    },
    /// Make an invite link to us (`pigeon://invite?…`): answered by
    /// [`Event::Invite`](super::Event::Invite).
    MakeInvite,
    /// Use an invite link: connect to its maker and mark its key verified (its maker marks
    /// ours verified too); answered by [`Event::SafetyNumber`](super::Event::SafetyNumber)
    /// with the trust `verified`, or a failure saying why.
    UseInvite {
        /// The link.
        link: String,
    },
    /// Change how we appear to others; peers are told at once.
    SetProfile {
        /// New display name.
        #[serde(default)]
        name: Option<String>,
        /// New group.
        #[serde(default)]
        group: Option<String>,
        /// New status.
        #[serde(default)]
        status: Option<Status>,
    },
    /// Change how offers are received from now on (transfers already accepted keep their
    /// folder).
    SetReceiving {
        /// New download folder.
        #[serde(default)]
        download_dir: Option<PathBuf>,
        /// Accept every offer without asking.
        #[serde(default)]
        auto_accept: Option<bool>,
    },
    /// Limit how fast we send, from now on (running transfers too); KB/s of 1,024 bytes,
    /// 0 for no limit.
    SetSpeedLimits {
        /// Each transfer's limit.
        per_transfer_kbps: u64,
        /// All transfers' together.
        total_kbps: u64,
    },
    /// Replace the extra announce targets (addresses, not names: resolving is the caller's
    /// job, so the node never waits on DNS). We announce to them at once.
    SetTargets {
        /// `a.b.c.d` or `a.b.c.d:port` (default: the node's port).
        targets: Vec<String>,
    },
    /// Offer files and folders to each peer in `to` (one transfer per peer); answered by
    /// [`Event::TransferAdded`](super::Event::TransferAdded) per peer, carrying `tag`.
    SendFiles {
        /// Recipients.
        to: Vec<PeerId>,
        /// Local files and folders (folders are sent whole, empty folders included).
        paths: Vec<PathBuf>,
        /// Opaque label echoed in the resulting events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// Accept an offered transfer; with `always`, accept every future offer from that peer.
    AcceptTransfer {
        /// Which transfer.
        transfer_id: TransferId,
        /// Trust this sender from now on.
        #[serde(default)]
        always: bool,
    },
    /// Accept every future offer from `peer` without asking (`on`), or ask again (`off`);
    /// answered by [`Event::AutoAcceptFrom`](super::Event::AutoAcceptFrom).
    SetAutoAcceptFrom {
        /// The sender.
        peer: PeerId,
        /// Accept without asking.
        on: bool,
    },
    /// Ask which peers' offers are accepted without asking; answered by
    /// [`Event::AutoAcceptFrom`](super::Event::AutoAcceptFrom).
    ListAutoAcceptFrom,
    /// Decline an offered transfer.
    DeclineTransfer {
        /// Which transfer.
        transfer_id: TransferId,
    },
    /// Stop a transfer (either side); partial files are kept for nothing and removed.
    CancelTransfer {
        /// Which transfer.
        transfer_id: TransferId,
    },
    /// Try a transfer again: a failed or interrupted incoming one from where it stopped; a
    /// failed or declined outgoing one is offered again, as a new transfer of the same files.
    RetryTransfer {
        /// Which transfer.
        transfer_id: TransferId,
    },
    /// Give the PIN a LocalSend device asks of senders (empty: none), used until the node
    /// stops; texts it refused for want of it go again.
    SetPin {
        /// The device.
        peer: PeerId,
        /// Its PIN.
        pin: String,
    },
    /// Ask for recent transfers; answered by [`Event::Transfers`](super::Event::Transfers).
    ListTransfers,
    /// Ask for a page of a transfer's files and folders; answered by
    /// [`Event::TransferEntries`](super::Event::TransferEntries).
    TransferEntries {
        /// Which transfer.
        transfer_id: TransferId,
        /// Entries to skip.
        #[serde(default)]
        offset: usize,
        /// Entries to return, at most [`MAX_ENTRIES_PAGE`].
        #[serde(default = "entries_page")]
        limit: usize,
    },
    /// Ask for counters; answered by [`Event::Stats`](super::Event::Stats).
    Stats,
    /// Ask for the code to compare with a peer out loud; answered by
    /// [`Event::SafetyNumber`](super::Event::SafetyNumber).
    SafetyNumber {
        /// The peer.
        peer: PeerId,
    },
    /// Mark a peer's key as verified (the codes matched) or not; verifying a changed key also
    /// accepts it. Answered by [`Event::SafetyNumber`](super::Event::SafetyNumber).
    Verify {
        /// The peer.
        peer: PeerId,
        /// Verified or back to unverified.
        #[serde(default = "yes")]
        verified: bool,
    },
    /// Accept a changed key: the peer becomes unverified (not marked) and the key it replaced
    /// is retired. Answered by [`Event::SafetyNumber`](super::Event::SafetyNumber).
    AcceptKey {
        /// The peer with the new key.
        peer: PeerId,
    },
    /// Say goodbye to peers and stop the node.
    Shutdown,
}

fn yes() -> bool {
    true
}

fn default_page() -> usize {
    DEFAULT_PAGE
}

impl Command {
    /// Parses one line of the JSON-lines interface; the error is a sentence for the user.
    pub fn from_json_line(line: &str) -> Result<Command, String> {
        serde_json::from_str(line).map_err(|err| format!("invalid command: {err}"))
    }
}

/// Most entries one `transfer_entries` answer carries.
pub const MAX_ENTRIES_PAGE: usize = 1000;

fn entries_page() -> usize {
    MAX_ENTRIES_PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_lines_parse() {
        let send = Command::from_json_line(
            r#"{"type":"send_message","to":["00112233445566778899aabbccddeeff"],"text":"hi"}"#,
        )
        .unwrap();
        assert!(matches!(send, Command::SendMessage { tag: None, .. }));
        let page =
            Command::from_json_line(r#"{"type":"load_history","peer":"00112233445566778899aabbccddeeff"}"#)
                .unwrap();
        assert!(matches!(page, Command::LoadHistory { before: None, limit: DEFAULT_PAGE, .. }));
        assert_eq!(Command::from_json_line(r#"{"type":"shutdown"}"#).unwrap(), Command::Shutdown);
    }

    #[test]
    fn malformed_lines_are_explained() {
        let err = Command::from_json_line(r#"{"type":"fly"}"#).unwrap_err();
        assert!(err.contains("unknown variant"), "{err}");
        assert!(Command::from_json_line("not json").is_err());
        assert!(Command::from_json_line(r#"{"type":"mark_read","peer":"nope"}"#).is_err());
    }
}
