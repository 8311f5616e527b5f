//! Events: everything the node tells its consumers, past tense and self-contained. Serialized
//! as one JSON object per line by the daemon, tagged by `"type"`.

use serde::{Deserialize, Serialize};

use super::worker::Progress;
use crate::protocol::Family;
use crate::protocol::announce::Status;
use crate::protocol::ids::{MsgId, PeerId, RoomId, TransferId};
use crate::protocol::keys::PublicKey;
use crate::protocol::names::display_path;
use crate::protocol::transfer::{Entry, EntryKind};
use crate::store::{
    ChatMessage, ConversationSummary, Direction, MessageState, TransferRecord, TransferState, Trust,
};

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
    /// The peer's public key (its id is derived from it); none for IP Messenger peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PublicKey>,
    /// How far we trust that key (`unencrypted` for IP Messenger peers).
    pub trust: Trust,
    /// The IP Messenger client (`iptux 0.8.3`, `FeiQ`, `IP Messenger`); none for Pigeons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Which protocol the peer speaks.
    #[serde(default)]
    pub family: Family,
}

/// A transfer as consumers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInfo {
    /// Identity, shared by both ends.
    pub transfer_id: TransferId,
    /// The other end.
    pub peer: PeerId,
    /// Sending or receiving.
    pub direction: Direction,
    /// Where it stands.
    pub state: TransferState,
    /// Number of files.
    pub files: usize,
    /// Number of folders.
    pub folders: usize,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// One line for the user: counts, size and the top-level names.
    pub summary: String,
    /// The first [`LISTED_ENTRIES`] files and folders, names as they are placed on disk
    /// (sanitized; a refused name escaped); `transfer_entries` pages through all of them.
    pub entries: Vec<Entry>,
    /// Files and folders in all.
    #[serde(default)]
    pub entries_total: usize,
    /// Why it ended early, if it did.
    pub reason: String,
    /// For files posted to a room: the room and the poster's post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<crate::protocol::room::PostedIn>,
    /// The first top-level files and folders as they are named on disk (a name taken at the
    /// receiver gets " (1)"), for consumers that word the summary themselves.
    #[serde(default)]
    pub names: Vec<String>,
    /// More top-level names exist than `names` lists.
    #[serde(default)]
    pub more_names: bool,
    /// When it was offered, milliseconds since the Unix epoch.
    #[serde(default)]
    pub created_ms: u64,
    /// Its row in the conversation's history (a `seq`; direct transfers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<i64>,
    /// Receiver: the folder its files are saved in, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_in: Option<std::path::PathBuf>,
}

/// A group room as consumers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Identity, the same for every member.
    pub room: RoomId,
    /// Its name now.
    pub name: String,
    /// Its members now (their ids and the names they were added with), by id.
    pub members: Vec<RoomMember>,
    /// Whether we are one of them (after leaving or being removed: no).
    pub joined: bool,
    /// Posts that count.
    pub posts: usize,
    /// Posts by others after the newest one we have read.
    #[serde(default)]
    pub unread: usize,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMember {
    /// Its peer id.
    pub id: PeerId,
    /// The name it was added with.
    pub name: String,
}

/// One post in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPost {
    /// Who wrote it (proven by its signature, however it reached us).
    pub author: PeerId,
    /// The author's number for it in this room: (author, seq) names it.
    pub seq: u64,
    /// Its place in the room's order (the same at every member).
    pub lamport: u64,
    /// When its author wrote it, author's clock.
    pub sent_at_ms: u64,
    /// The text (may be empty when it posts files).
    pub text: String,
    /// Files it offers every member; each gets its own offer (`transfer_added` with `room`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<crate::protocol::room::SharedFiles>,
    /// Members other than its author who have read it (in `room_history`; empty in
    /// `room_posted`, see `room_read`).
    #[serde(default)]
    pub read_by: Vec<PeerId>,
}

/// Top-level names listed in a summary before "…".
const SUMMARY_NAMES: usize = 3;

/// Entries a [`TransferInfo`] carries; an offer of 50,000 would make every event about it
/// megabytes long.
pub const LISTED_ENTRIES: usize = 50;

/// `entry` with its name as it is shown and placed: see [`display_path`].
pub fn shown_entry(entry: &Entry) -> Entry {
    Entry { path: display_path(&entry.path), ..entry.clone() }
}

impl TransferInfo {
    /// Builds the consumer's view of a stored transfer.
    pub fn from_record(record: &TransferRecord) -> TransferInfo {
        let files = record.entries.iter().filter(|e| e.kind == EntryKind::File).count();
        let folders = record.entries.len() - files;
        let total_bytes = record.entries.iter().map(|e| e.size).sum();
        // The first component of every entry, once each: the top-level names, also when an
        // offer lists nested files without their folder.
        let top = record.top_names(SUMMARY_NAMES + 1);
        let mut names = top.iter().take(SUMMARY_NAMES).cloned().collect::<Vec<_>>().join(", ");
        if top.len() > SUMMARY_NAMES {
            names.push_str(", …");
        }
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        // An IP Messenger folder is offered as one name and a total size: until it arrives
        // nobody knows its files, and "0 files" would be wrong.
        let counts = match (files, folders) {
            (0, folders) if folders > 0 => plural(folders, "folder", "folders"),
            (files, 0) => plural(files, "file", "files"),
            (files, folders) => {
                format!("{} in {}", plural(files, "file", "files"), plural(folders, "folder", "folders"))
            }
        };
        TransferInfo {
            transfer_id: record.id,
            peer: record.peer,
            direction: record.direction,
            state: record.state,
            files,
            folders,
            total_bytes,
            summary: if names.is_empty() {
                format!("{counts}, {}", human_bytes(total_bytes))
            } else {
                format!("{counts}, {}: {names}", human_bytes(total_bytes))
            },
            entries: record.entries.iter().take(LISTED_ENTRIES).map(shown_entry).collect(),
            entries_total: record.entries.len(),
            reason: record.reason.clone(),
            room: record.room,
            names: top.iter().take(SUMMARY_NAMES).cloned().collect(),
            more_names: top.len() > SUMMARY_NAMES,
            created_ms: record.created_ms,
            row: record.row,
            saved_in: record.saved_in.clone(),
        }
    }
}

/// A byte count for people: "512 B", "3.4 MB", "1.2 GB" (decimal units, as file managers use).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"PB"))
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
    /// Datagrams decoded and dropped because the node's queue was full (a flood).
    #[serde(default)]
    pub dropped_datagrams: u64,
    /// Signed datagrams dropped because their number was not above the last one taken from
    /// their sender: replays, and copies that came by a second route (broadcast and target).
    #[serde(default)]
    pub stale_datagrams: u64,
    /// Presences not listed because their key is unproven and either the unproven peers are
    /// at their cap or the name and host belong to a peer with another, pinned key.
    #[serde(default)]
    pub unproven_refused: u64,
    /// Offers declined unseen because too many from their sender, or too many files in all,
    /// wait for the user already.
    #[serde(default)]
    pub offers_refused: u64,
    /// Room events refused: not signed by a member of their room, or from a peer that is
    /// not a member asking for a room's events.
    #[serde(default)]
    pub room_events_refused: u64,
    /// Bytes of room events frames received, as framed (compressed; encryption adds 16
    /// bytes per record of up to 64 KiB).
    #[serde(default)]
    pub room_bytes_received: u64,
    /// Room events received in frames, second copies included (compare with the posts held).
    #[serde(default)]
    pub room_events_received: u64,
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
        /// Our public key (what peers pin, and what signs our datagrams).
        key: PublicKey,
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
    /// A peer appeared with a new key under the name and host of a peer we pinned before:
    /// a reinstall, or someone posing as them. Its messages are marked and its files are not
    /// accepted automatically until the user accepts the key (`accept_key` or `verify`).
    KeyChanged {
        /// The peer with the new key (trust `key_changed`).
        peer: PeerInfo,
        /// The id (old key) that went by this name and host.
        previous: PeerId,
        /// Whether the user had verified the old key, which makes this more alarming.
        previous_verified: bool,
    },
    /// Answer to `safety_number`, `verify` and `accept_key`.
    SafetyNumber {
        /// The peer.
        peer: PeerId,
        /// Twenty digits derived from both public keys; the same on both ends.
        code: String,
        /// How far we trust the peer's key now.
        trust: Trust,
    },
    /// An invite link to us, as asked for by `make_invite`.
    Invite {
        /// The link (`pigeon://invite?…`).
        link: String,
    },
    /// The maker of an invite link we used answered: it verified our key, or not and why.
    InviteAnswered {
        /// The inviter.
        peer: PeerId,
        /// Our key is verified on its side too.
        accepted: bool,
        /// Why not (`expired`, …); empty when accepted.
        reason: String,
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
    /// Answer to `list_conversations`.
    Conversations {
        /// Most recent first.
        conversations: Vec<ConversationSummary>,
    },
    /// Answer to `load_history`.
    History {
        /// The conversation.
        peer: PeerId,
        /// Oldest first.
        messages: Vec<ChatMessage>,
        /// Whether older messages exist beyond this page (newer ones, for a page `after`).
        has_more: bool,
        /// The request's `after`: this page follows that message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<i64>,
        /// The transfers the page's transfer rows stand for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        transfers: Vec<TransferInfo>,
    },
    /// Answer to `search`.
    SearchResults {
        /// The query.
        query: String,
        /// Newest first.
        messages: Vec<ChatMessage>,
    },
    /// A room appeared or changed (name, members); also the answer to `room_create`.
    RoomUpdated {
        /// The room as it is now.
        room: RoomInfo,
        /// The tag of the command that made it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A post arrived in a room, or ours was stored (then with the command's tag). Posts
    /// arriving late are told too; `room_history` gives the order.
    RoomPosted {
        /// The room.
        room: RoomId,
        /// The post.
        post: RoomPost,
        /// The tag of the `room_send` that made it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A member has read a room up to a post (`lamport`, `author`, `seq` name it): every
    /// post at or before it in the room's order is read by that member.
    RoomRead {
        /// The room.
        room: RoomId,
        /// Who read.
        reader: PeerId,
        /// The newest post read: its Lamport time.
        lamport: u64,
        /// Its author.
        author: PeerId,
        /// Its author's number for it.
        seq: u64,
    },
    /// Answer to `list_rooms`.
    Rooms {
        /// Every room we hold, by name.
        rooms: Vec<RoomInfo>,
    },
    /// Answer to `room_history`.
    RoomHistory {
        /// The room.
        room: RoomId,
        /// Every post that counts, in the room's order.
        posts: Vec<RoomPost>,
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
    /// A family other than Pigeon's is off because its port cannot be used (another IP
    /// Messenger client, or the LocalSend app, on this machine, say); everything else works.
    FamilyUnavailable {
        /// Which family.
        family: Family,
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
    /// A transfer appeared: one we offered, or one offered to us (state `offered`: accept or
    /// decline it).
    TransferAdded {
        /// The transfer.
        transfer: TransferInfo,
        /// The tag of the command that created it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A transfer's listing changed: a folder offered as one name (IP Messenger) arrived,
    /// and now its files are known.
    TransferUpdated {
        /// The transfer as it is now.
        transfer: TransferInfo,
    },
    /// Bytes moved (a few times per second at most).
    TransferProgress {
        /// Which transfer.
        transfer_id: TransferId,
        /// How far it is.
        progress: Progress,
    },
    /// A transfer was accepted, or ended (completed, declined, cancelled, failed).
    TransferStateChanged {
        /// Which transfer.
        transfer_id: TransferId,
        /// The new state.
        state: TransferState,
        /// Why it ended, for the user (empty when completed or accepted).
        reason: String,
    },
    /// The connection of a running transfer broke; it resumes by itself when it can.
    TransferInterrupted {
        /// Which transfer.
        transfer_id: TransferId,
        /// What happened.
        reason: String,
    },
    /// Answer to `list_transfers`.
    Transfers {
        /// Newest first.
        transfers: Vec<TransferInfo>,
    },
    /// Answer to `transfer_entries`: a page of a transfer's files and folders, names as
    /// they are placed on disk.
    TransferEntries {
        /// Which transfer.
        transfer_id: TransferId,
        /// Entries skipped.
        offset: usize,
        /// Entries in the transfer.
        total: usize,
        /// The page.
        entries: Vec<Entry>,
    },
    /// The peers whose offers are accepted without asking ("always accept"), after a change
    /// (to everyone) or as the answer to `list_auto_accept_from`.
    AutoAcceptFrom {
        /// By id.
        peers: Vec<PeerId>,
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
                | Event::Conversations { .. }
                | Event::History { .. }
                | Event::SearchResults { .. }
                | Event::Rooms { .. }
                | Event::RoomHistory { .. }
                | Event::Stats { .. }
                | Event::CommandFailed { .. }
                | Event::ConnectFailed { .. }
                | Event::Transfers { .. }
                | Event::TransferEntries { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_counts_size_and_top_level_entries() {
        let entry = |path: &str, kind, size| Entry { path: path.into(), kind, size };
        let record = TransferRecord {
            id: TransferId::from_bytes([1; 16]),
            peer: PeerId::from_bytes([2; 16]),
            direction: Direction::Outgoing,
            entries: vec![
                entry("Photos", EntryKind::Dir, 0),
                entry("Photos/a.jpg", EntryKind::File, 1_500_000),
                entry("notes.txt", EntryKind::File, 500),
            ],
            sources: Vec::new(),
            root_names: Default::default(),
            state: TransferState::Offered,
            files_done: 0,
            reason: String::new(),
            created_ms: 0,
            room: None,
            row: None,
            saved_in: None,
        };
        let info = TransferInfo::from_record(&record);
        assert_eq!((info.files, info.folders, info.total_bytes), (2, 1, 1_500_500));
        assert_eq!(info.summary, "2 files in 1 folder, 1.5 MB: Photos, notes.txt");
        // Names taken at the receiver: the summary says where the files went.
        let root_names = [("Photos", "Photos (1)"), ("notes.txt", "notes (2).txt")];
        let root_names = root_names.map(|(a, b)| (a.to_owned(), b.to_owned())).into();
        let placed = TransferInfo::from_record(&TransferRecord { root_names, ..record.clone() });
        assert_eq!(placed.names, ["Photos (1)", "notes (2).txt"]);
        assert!(placed.summary.ends_with(": Photos (1), notes (2).txt"));
        // An IP Messenger folder: one name and a total size until it arrives.
        let unlisted = TransferRecord { entries: vec![entry("idir", EntryKind::Dir, 13)], ..record };
        assert_eq!(TransferInfo::from_record(&unlisted).summary, "1 folder, 13 B: idir");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_230_000_000), "1.2 GB");
    }
}
