//! What the window knows, built only from node events: who we are, the peers (online, and
//! offline ones we have talked to), each conversation loaded so far, group rooms and their
//! posts, transfers and notices.
//! No egui here, so every rule is unit-tested.

use std::collections::{BTreeMap, HashMap};

use crate::node::{
    ChatMessage, ConversationSummary, Direction, KnownPeer, MessageState, TransferState, Trust,
};
use crate::node::{Event, PeerInfo, Progress, TransferInfo};
use crate::node::{Family, Status};
use crate::node::{PeerId, RoomId, RoomInfo, RoomPost, TransferId};

/// Most notices kept; older ones are dropped.
const MAX_NOTICES: usize = 5;

/// Ourselves, as the node reported at start.
#[derive(Debug, Clone, Default)]
pub struct Me {
    /// Our id, once the node started.
    pub id: Option<PeerId>,
    /// Display name.
    pub name: String,
    /// Address and port the node listens on.
    pub addr: String,
}

/// A row of the peer list.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// Identity.
    pub id: PeerId,
    /// Display name (the id's start when we never learnt a name).
    pub name: String,
    /// Group, possibly empty.
    pub group: String,
    /// Host name.
    pub host: String,
    /// Address it was last heard from.
    pub addr: String,
    /// Availability, when online.
    pub status: Status,
    /// Whether it is online now.
    pub online: bool,
    /// How far we trust its key (unknown for peers only known from history).
    pub trust: Option<Trust>,
    /// Incoming messages not read yet.
    pub unread: u64,
    /// The key this one replaced under the same name and host, and whether it was verified:
    /// shown as a warning until the user accepts the new key.
    pub key_changed_from: Option<(PeerId, bool)>,
    /// The client, for peers that are not Pigeons ("iptux 0.8.3", "LocalSend · phone").
    pub client: Option<String>,
    /// Which protocol it speaks.
    pub family: Family,
}

impl PeerEntry {
    fn from_info(info: &PeerInfo) -> PeerEntry {
        PeerEntry {
            id: info.id,
            name: info.name.clone(),
            group: info.group.clone(),
            host: info.host.clone(),
            addr: info.addr.clone(),
            status: info.status,
            online: true,
            trust: Some(info.trust),
            unread: 0,
            key_changed_from: None,
            client: info.client.clone(),
            family: info.family,
        }
    }

    /// A peer known only from history (its id's start as name when it never had one).
    fn offline(known: KnownPeer) -> PeerEntry {
        PeerEntry {
            id: known.id,
            name: if known.name.is_empty() { short_id(known.id) } else { known.name },
            group: known.group,
            host: known.host,
            addr: known.addr,
            status: Status::Online,
            online: false,
            trust: None,
            unread: 0,
            key_changed_from: None,
            client: None,
            family: known.family,
        }
    }

    /// Whether it matches `needle` (lower case; empty matches all) by name, host, group or
    /// address: what the people filter and the "Forward to" list find.
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || [&self.name, &self.host, &self.group, &self.addr]
                .iter()
                .any(|field| field.to_lowercase().contains(needle))
    }

    /// Whether a safety number can be compared with it: only Pigeons have one (an IP
    /// Messenger client has no key, a LocalSend app shows no code).
    pub fn has_safety_number(&self) -> bool {
        self.family == Family::Pigeon && self.trust.is_some_and(|trust| trust != Trust::Unencrypted)
    }

    /// A peer we know nothing of but its id (a message from it arrived first).
    fn unknown(id: PeerId) -> PeerEntry {
        PeerEntry::offline(KnownPeer {
            id,
            name: String::new(),
            group: String::new(),
            host: String::new(),
            addr: String::new(),
            family: Default::default(),
        })
    }

    fn update(&mut self, info: &PeerInfo) {
        let (unread, key_changed_from) = (self.unread, self.key_changed_from);
        *self = PeerEntry { unread, key_changed_from, ..PeerEntry::from_info(info) };
    }
}

/// The part of one conversation loaded so far, oldest first.
#[derive(Debug, Default)]
pub struct Chat {
    /// Messages in history order (by `seq`).
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist in history that are not loaded yet.
    pub has_more: bool,
    /// Whether newer messages exist that are not loaded: the conversation was opened at an
    /// older message (a search result) and the present is pages away. Arriving messages
    /// are then not added (they would leave a gap); they load with the pages towards them.
    pub has_newer: bool,
    /// A page request is on its way.
    pub loading: bool,
    /// A request for the page of newer messages is on its way.
    pub loading_newer: bool,
    /// The message the view was asked to show (a search result): scrolled to, marked.
    pub focus: Option<i64>,
    /// The view has yet to bring `focus` into view.
    scroll_to_focus: bool,
    /// What the view needs to place each row without laying it out, in step with
    /// `messages`.
    pub rows: Vec<RowMeta>,
    /// Messages added at the front by the last page, so the view can keep its place.
    pub prepended: usize,
}

impl Chat {
    /// Adds a message that just happened (sent or received). Returns whether it was new; one
    /// beyond a gap to the present is new but not held.
    fn add_live(&mut self, message: ChatMessage) -> bool {
        if self.has_newer && self.messages.last().is_some_and(|last| message.seq > last.seq) {
            return true;
        }
        self.insert(message)
    }

    /// Adds one message in `seq` order, ignoring one already present. Returns whether it was
    /// new.
    fn insert(&mut self, message: ChatMessage) -> bool {
        match self.messages.binary_search_by_key(&message.seq, |m| m.seq) {
            Ok(_) => false,
            Err(at) => {
                self.rows.insert(at, RowMeta::of(&message));
                self.messages.insert(at, message);
                true
            }
        }
    }

    /// Merges a page of history (oldest first).
    fn merge_page(&mut self, page: Vec<ChatMessage>, has_more: bool, older: bool) {
        let first_seq = self.messages.first().map(|m| m.seq);
        let (before, rest): (Vec<_>, Vec<_>) =
            page.into_iter().partition(|m| first_seq.is_some_and(|first| m.seq < first));
        self.prepended = before.len();
        self.rows.splice(0..0, before.iter().map(RowMeta::of));
        self.messages.splice(0..0, before);
        for message in rest {
            self.insert(message);
        }
        // Only a page of older messages says whether there are yet older ones; the newest page
        // says so only when it is the first one loaded.
        if older || first_seq.is_none() {
            self.has_more = has_more;
        }
        self.loading = false;
    }

    /// Merges a page of messages that follow what is held (oldest first).
    fn merge_newer(&mut self, page: Vec<ChatMessage>, has_more: bool) {
        for message in page {
            self.insert(message);
        }
        self.has_newer = has_more;
        self.loading_newer = false;
    }

    /// Forgets what is held and waits for the pages around `seq` (the app asks for them).
    fn open_at(&mut self, seq: i64) {
        *self = Chat {
            has_more: true,
            has_newer: true,
            loading: true,
            loading_newer: true,
            focus: Some(seq),
            scroll_to_focus: true,
            ..Chat::default()
        };
    }

    /// The row to bring into view, once: the focused message's, when it has arrived.
    pub fn take_scroll_request(&mut self) -> Option<usize> {
        if !self.scroll_to_focus {
            return None;
        }
        let index = self.messages.binary_search_by_key(&self.focus?, |m| m.seq).ok()?;
        self.scroll_to_focus = false;
        Some(index)
    }

    /// The `seq` to pass as `after` for the next newer page.
    pub fn newest_seq(&self) -> Option<i64> {
        self.messages.last().map(|m| m.seq)
    }

    /// The `seq` to pass as `before` for the next older page.
    pub fn oldest_seq(&self) -> Option<i64> {
        self.messages.first().map(|m| m.seq)
    }

    fn set_state(&mut self, msg_id: crate::node::MsgId, state: MessageState) {
        // Recent messages change state; look from the end.
        if let Some(message) =
            self.messages.iter_mut().rev().find(|m| m.msg_id == msg_id && m.direction == Direction::Outgoing)
        {
            message.state = message.state.max(state);
        }
    }
}

/// Facts about one message row, computed once, from which its height can be estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowMeta {
    /// Height as last laid out, or `None` before it was shown (or after a resize).
    pub height: Option<f32>,
    /// Width of its bubble or card as last laid out, likewise.
    pub width: Option<f32>,
    /// Display columns of the text (CJK characters count two).
    pub columns: u32,
    /// Line breaks in the text.
    pub newlines: u32,
    /// Local calendar day it was sent on.
    pub day: chrono::NaiveDate,
    /// Drawn as a transfer's card.
    pub card: bool,
}

impl RowMeta {
    fn of(message: &ChatMessage) -> RowMeta {
        RowMeta { card: message.transfer.is_some(), ..RowMeta::of_text(&message.text, message.sent_at_ms) }
    }

    fn of_text(text: &str, sent_at_ms: u64) -> RowMeta {
        let columns = unicode_width::UnicodeWidthStr::width(text);
        let newlines = text.matches('\n').count();
        RowMeta {
            height: None,
            width: None,
            columns: u32::try_from(columns).unwrap_or(u32::MAX),
            newlines: u32::try_from(newlines).unwrap_or(u32::MAX),
            day: super::text::local_day(sent_at_ms),
            card: false,
        }
    }
}

/// The posts of one room, in the room's order (the same at every member).
#[derive(Debug, Default)]
pub struct RoomChat {
    /// Posts, sorted by their place in the order.
    pub posts: Vec<RoomPost>,
    /// In step with `posts`, as for a conversation.
    pub rows: Vec<RowMeta>,
    /// The whole history was loaded.
    pub loaded: bool,
    /// A history request is on its way.
    pub loading: bool,
}

/// A post's place in its room's order.
fn order_of(post: &RoomPost) -> (u64, PeerId, u64) {
    (post.lamport, post.author, post.seq)
}

impl RoomChat {
    /// Adds a post in order, ignoring one already present; returns whether it was new.
    fn insert(&mut self, post: RoomPost) -> bool {
        match self.posts.binary_search_by_key(&order_of(&post), order_of) {
            Ok(_) => false,
            Err(at) => {
                self.rows.insert(at, RowMeta::of_text(&post.text, post.sent_at_ms));
                self.posts.insert(at, post);
                true
            }
        }
    }

    /// Takes the whole history in place of what was held.
    fn replace(&mut self, posts: Vec<RoomPost>) {
        self.rows = posts.iter().map(|post| RowMeta::of_text(&post.text, post.sent_at_ms)).collect();
        self.posts = posts;
        (self.loaded, self.loading) = (true, false);
    }

    /// `reader` has read every post up to the one at `upto` in the order.
    fn read(&mut self, reader: PeerId, upto: (u64, PeerId, u64)) {
        let end = self.posts.partition_point(|post| order_of(post) <= upto);
        // Marks only move forward: once a post already lists the reader, older ones do too.
        for post in self.posts[..end].iter_mut().rev() {
            if post.read_by.contains(&reader) {
                break;
            }
            if post.author != reader {
                post.read_by.push(reader);
            }
        }
    }
}

/// A transfer as the window shows it.
#[derive(Debug, Clone)]
pub struct TransferView {
    /// What the node said about it.
    pub info: TransferInfo,
    /// Latest progress, once data moved.
    pub progress: Option<Progress>,
    /// Why the connection broke, while it waits to resume.
    pub interrupted: Option<String>,
}

/// Something from a peer that the user should hear about (a notification, the transfers
/// panel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// From whom.
    pub peer: PeerId,
    /// The room it was posted in, if it was.
    pub room: Option<RoomId>,
    /// Their name as we know it (and the room's, for a post in a room).
    pub name: String,
    /// The message text, or the offer's summary.
    pub text: String,
    /// A file offer rather than a message: its transfer.
    pub offer: Option<crate::node::TransferId>,
}

/// The answer to a safety-number request, shown in a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    /// The peer.
    pub peer: PeerId,
    /// The twenty digits.
    pub code: String,
    /// Trust now.
    pub trust: Trust,
}

/// Everything the window shows that came from the node.
#[derive(Debug, Default)]
pub struct Model {
    /// Ourselves.
    pub me: Me,
    /// Every peer seen this session or found in history.
    pub peers: BTreeMap<PeerId, PeerEntry>,
    /// Conversations loaded so far.
    pub chats: HashMap<PeerId, Chat>,
    /// Group rooms we hold (also those we left), as the node said, with `unread` kept up to
    /// date here as posts arrive and are read.
    pub rooms: BTreeMap<RoomId, RoomInfo>,
    /// Posts of the rooms opened so far (and posts that arrived since start).
    pub room_chats: HashMap<RoomId, RoomChat>,
    /// Transfers, newest first.
    pub transfers: Vec<TransferView>,
    /// Errors for the user, newest last.
    pub notices: Vec<String>,
    /// The latest safety number asked for.
    pub safety: Option<SafetyNumber>,
    /// The latest invite link to us the node made.
    pub invite_link: Option<String>,
    /// The node has stopped: nothing more will happen.
    pub stopped: bool,
    /// The search asked for last and what it found.
    pub search: Option<Search>,
    /// Peers whose offers are accepted without asking.
    pub auto_accept_from: Vec<PeerId>,
    /// Messages written to several people at once this session, oldest first: one entry
    /// each, with every recipient's state.
    pub to_many: Vec<ToMany>,
}

/// One message written to several people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToMany {
    /// The recipients, sorted: which selection it was written to.
    pub to: Vec<PeerId>,
    /// The text.
    pub text: String,
    /// When it was sent.
    pub sent_at_ms: u64,
    /// Each recipient's copy and where it stands, in the order they were queued.
    pub copies: Vec<(PeerId, crate::node::MsgId, MessageState)>,
}

/// A search of the history.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// What was asked.
    pub query: String,
    /// Only in this conversation.
    pub peer: Option<PeerId>,
    /// The answer, newest first, once it came.
    pub results: Option<Vec<ChatMessage>>,
}

impl Model {
    /// Takes in one node event; returns a message or offer that arrived, for notifications.
    pub fn apply(&mut self, event: Event) -> Option<Arrival> {
        match event {
            Event::Started { id, name, addr, .. } => self.me = Me { id: Some(id), name, addr },
            Event::PeerJoined { peer } | Event::PeerUpdated { peer } => self.upsert(&peer),
            Event::KeyChanged { peer, previous, previous_verified } => {
                self.upsert(&peer);
                if let Some(entry) = self.peers.get_mut(&peer.id) {
                    entry.key_changed_from = Some((previous, previous_verified));
                }
            }
            Event::PeerLeft { id, .. } => {
                if let Some(entry) = self.peers.get_mut(&id) {
                    entry.online = false;
                }
            }
            Event::Peers { peers } => {
                for peer in &peers {
                    self.upsert(peer);
                }
            }
            Event::Conversations { conversations } => {
                for summary in conversations {
                    self.remember(summary);
                }
            }
            Event::SafetyNumber { peer, code, trust } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.trust = Some(trust);
                    if !trust.is_unconfirmed() {
                        entry.key_changed_from = None;
                    }
                }
                self.safety = Some(SafetyNumber { peer, code, trust });
            }
            Event::MessageQueued { message, .. } => {
                if !message.also_to.is_empty() {
                    self.sent_to_many(&message);
                }
                self.chats.entry(message.peer).or_default().add_live(message);
            }
            Event::MessageStateChanged { msg_id, peer, state } => {
                if let Some(chat) = self.chats.get_mut(&peer) {
                    chat.set_state(msg_id, state);
                }
                let copies = self.to_many.iter_mut().rev().flat_map(|entry| entry.copies.iter_mut());
                if let Some(copy) = copies.into_iter().find(|(to, id, _)| *to == peer && *id == msg_id) {
                    copy.2 = copy.2.max(state);
                }
            }
            Event::MessageReceived { message } => return self.receive(message),
            Event::History { peer, messages, has_more, after: Some(_), transfers } => {
                transfers.into_iter().for_each(|info| self.know_transfer(info));
                self.chats.entry(peer).or_default().merge_newer(messages, has_more);
            }
            Event::History { peer, messages, has_more, after: None, transfers } => {
                transfers.into_iter().for_each(|info| self.know_transfer(info));
                let chat = self.chats.entry(peer).or_default();
                // A page that starts before what we hold answers a request for older messages.
                let older = match (messages.first(), chat.messages.first()) {
                    (Some(page), Some(held)) => page.seq < held.seq,
                    _ => false,
                };
                chat.merge_page(messages, has_more, older);
            }
            Event::TransferAdded { transfer, .. } => {
                let offered =
                    transfer.direction == Direction::Incoming && transfer.state == TransferState::Offered;
                let arrival = offered.then(|| Arrival {
                    peer: transfer.peer,
                    room: transfer.room.map(|posted| posted.room),
                    name: self.name_of(transfer.peer),
                    text: transfer.summary.clone(),
                    offer: Some(transfer.transfer_id),
                });
                if let (Some(row), None) = (transfer.row, transfer.room) {
                    let incoming = transfer.direction == Direction::Incoming;
                    let added = self.chats.entry(transfer.peer).or_default().add_live(row_of(&transfer, row));
                    if added && incoming {
                        self.peers
                            .entry(transfer.peer)
                            .or_insert_with(|| PeerEntry::unknown(transfer.peer))
                            .unread += 1;
                    }
                }
                self.add_transfer(transfer);
                return arrival;
            }
            Event::TransferUpdated { transfer } => self.add_transfer(transfer),
            Event::Transfers { transfers } => {
                for transfer in transfers.into_iter().rev() {
                    self.add_transfer(transfer);
                }
            }
            Event::TransferProgress { transfer_id, progress } => {
                if let Some(view) = self.transfer_mut(transfer_id) {
                    view.progress = Some(progress);
                    view.interrupted = None;
                }
            }
            Event::TransferStateChanged { transfer_id, state, reason } => {
                if let Some(view) = self.transfer_mut(transfer_id) {
                    view.info.state = state;
                    view.info.reason = reason;
                    view.interrupted = None;
                    if state == TransferState::Completed {
                        let total = view.info.total_bytes;
                        let progress = view.progress.get_or_insert_default();
                        (progress.bytes_done, progress.bytes_total) = (total, total);
                    }
                }
            }
            Event::TransferInterrupted { transfer_id, reason } => {
                if let Some(view) = self.transfer_mut(transfer_id) {
                    view.interrupted = Some(reason);
                }
            }
            Event::CommandFailed { error, .. } | Event::FamilyUnavailable { reason: error, .. } => {
                self.notice(error);
            }
            Event::ConnectFailed { addr, reason } => self.notice(format!("{addr}: {reason}")),
            Event::Invite { link } => self.invite_link = Some(link),
            Event::InviteAnswered { peer, accepted: false, reason } => {
                let name = self.name_of(peer);
                self.notice(format!("{name} did not verify your key from the invite link: {reason}"));
            }
            Event::InviteAnswered { accepted: true, .. } => {}
            Event::Stopped => self.stopped = true,
            Event::RoomUpdated { room, .. } => self.upsert_room(room),
            Event::Rooms { rooms } => rooms.into_iter().for_each(|room| self.upsert_room(room)),
            Event::RoomPosted { room, post, .. } => return self.room_post(room, post),
            Event::RoomRead { room, reader, lamport, author, seq } => {
                if let Some(chat) = self.room_chats.get_mut(&room) {
                    chat.read(reader, (lamport, author, seq));
                }
            }
            Event::RoomHistory { room, posts } => self.room_chats.entry(room).or_default().replace(posts),
            Event::SearchResults { query, messages } => {
                if let Some(search) = self.search.as_mut().filter(|search| search.query == query) {
                    search.results = Some(messages);
                }
            }
            Event::AutoAcceptFrom { peers } => self.auto_accept_from = peers,
            Event::Stats { .. } | Event::TransferEntries { .. } => {}
        }
        None
    }

    /// Our user has seen the conversation with `peer`: its messages count as read.
    pub fn mark_read(&mut self, peer: PeerId) {
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.unread = 0;
        }
        if let Some(chat) = self.chats.get_mut(&peer) {
            for message in chat.messages.iter_mut().rev().filter(|m| m.direction == Direction::Incoming) {
                if message.state == MessageState::Read {
                    break;
                }
                message.state = MessageState::Read;
            }
        }
    }

    /// Files a copy of a message to several people under its one entry.
    fn sent_to_many(&mut self, message: &ChatMessage) {
        let mut to: Vec<PeerId> = message.also_to.iter().copied().chain([message.peer]).collect();
        to.sort_unstable();
        let copy = (message.peer, message.msg_id, message.state);
        let same = |entry: &&mut ToMany| {
            entry.to == to && entry.sent_at_ms == message.sent_at_ms && entry.text == message.text
        };
        match self.to_many.iter_mut().rev().find(same) {
            Some(entry) => entry.copies.push(copy),
            None => self.to_many.push(ToMany {
                to,
                text: message.text.clone(),
                sent_at_ms: message.sent_at_ms,
                copies: vec![copy],
            }),
        }
    }

    /// Asks for a search: answers to earlier ones are ignored from now on.
    pub fn start_search(&mut self, query: String, peer: Option<PeerId>) {
        self.search = Some(Search { query, peer, results: None });
    }

    /// Opens the conversation with `peer` at the message `seq`: kept when it is loaded
    /// already (true), else the conversation is emptied to wait for the pages around it
    /// (false: the caller asks for them).
    pub fn open_chat_at(&mut self, peer: PeerId, seq: i64) -> bool {
        let chat = self.chats.entry(peer).or_default();
        if chat.messages.binary_search_by_key(&seq, |m| m.seq).is_ok() {
            (chat.focus, chat.scroll_to_focus) = (Some(seq), true);
            return true;
        }
        chat.open_at(seq);
        false
    }

    /// Leaves an older part of the conversation with `peer` for the present (our user writes
    /// there): true when the newest page has to be asked for.
    pub fn back_to_present(&mut self, peer: PeerId) -> bool {
        let chat = self.chats.entry(peer).or_default();
        if !chat.has_newer {
            return false;
        }
        *chat = Chat { loading: true, ..Chat::default() };
        true
    }

    /// Our user has seen a room's posts.
    pub fn mark_room_read(&mut self, room: RoomId) {
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.unread = 0;
        }
    }

    /// Unread messages over all conversations and rooms.
    pub fn total_unread(&self) -> u64 {
        let rooms: usize = self.rooms.values().map(|r| r.unread).sum();
        self.peers.values().map(|p| p.unread).sum::<u64>() + rooms as u64
    }

    /// Whether `peer` is online (we always are).
    pub fn is_online(&self, peer: PeerId) -> bool {
        self.me.id == Some(peer) || self.peers.get(&peer).is_some_and(|p| p.online)
    }

    /// Members of `room` online now, us included.
    pub fn online_members(&self, room: RoomId) -> usize {
        self.rooms.get(&room).map_or(0, |r| r.members.iter().filter(|m| self.is_online(m.id)).count())
    }

    /// The name to show for a room member: as we know the peer, else as it was added.
    pub fn member_name(&self, room: RoomId, member: PeerId) -> String {
        if let Some(entry) = self.peers.get(&member) {
            return entry.name.clone();
        }
        let added = self.rooms.get(&room).and_then(|r| r.members.iter().find(|m| m.id == member));
        match added {
            Some(found) if !found.name.is_empty() => found.name.clone(),
            _ => short_id(member),
        }
    }

    /// The name to show for a peer (its id's start if we never learnt one).
    pub fn name_of(&self, peer: PeerId) -> String {
        match self.peers.get(&peer) {
            Some(entry) => entry.name.clone(),
            None => short_id(peer),
        }
    }

    /// Adds an error for the user.
    pub fn notice(&mut self, text: String) {
        if self.notices.len() == MAX_NOTICES {
            self.notices.remove(0);
        }
        self.notices.push(text);
    }

    fn receive(&mut self, message: ChatMessage) -> Option<Arrival> {
        let peer = message.peer;
        let text = message.text.clone();
        if !self.chats.entry(peer).or_default().add_live(message) {
            return None;
        }
        let entry = self.peers.entry(peer).or_insert_with(|| PeerEntry::unknown(peer));
        entry.unread += 1;
        Some(Arrival { peer, room: None, name: entry.name.clone(), text, offer: None })
    }

    fn upsert_room(&mut self, info: RoomInfo) {
        self.rooms.insert(info.room, info);
    }

    fn room_post(&mut self, room: RoomId, post: RoomPost) -> Option<Arrival> {
        let (author, text) = (post.author, post_summary(&post));
        if !self.room_chats.entry(room).or_default().insert(post) || Some(author) == self.me.id {
            return None;
        }
        let entry = self.rooms.get_mut(&room)?;
        entry.unread += 1;
        let room_name = entry.name.clone();
        let name = format!("{} · {room_name}", self.member_name(room, author));
        Some(Arrival { peer: author, room: Some(room), name, text, offer: None })
    }

    fn upsert(&mut self, info: &PeerInfo) {
        match self.peers.get_mut(&info.id) {
            Some(entry) => entry.update(info),
            None => {
                self.peers.insert(info.id, PeerEntry::from_info(info));
            }
        }
    }

    fn remember(&mut self, summary: ConversationSummary) {
        let known = summary.peer;
        let entry = self.peers.entry(known.id).or_insert_with(|| PeerEntry::offline(known));
        entry.unread = summary.unread;
    }

    fn add_transfer(&mut self, info: TransferInfo) {
        if let Some(view) = self.transfer_mut(info.transfer_id) {
            view.info = info;
        } else {
            let at = self.transfers.partition_point(|view| view.info.created_ms > info.created_ms);
            self.transfers.insert(at, TransferView { info, progress: None, interrupted: None });
        }
    }

    /// A transfer met in history: added if new (what this session saw of it is newer).
    fn know_transfer(&mut self, info: TransferInfo) {
        if self.transfer(info.transfer_id).is_none() {
            self.add_transfer(info);
        }
    }

    /// The transfer with this id, if known.
    pub fn transfer(&self, id: TransferId) -> Option<&TransferView> {
        self.transfers.iter().find(|view| view.info.transfer_id == id)
    }

    fn transfer_mut(&mut self, id: TransferId) -> Option<&mut TransferView> {
        self.transfers.iter_mut().find(|view| view.info.transfer_id == id)
    }
}

/// The history row of a transfer, as the node stored it (the row's `seq` is `row`).
fn row_of(info: &TransferInfo, row: i64) -> ChatMessage {
    ChatMessage {
        seq: row,
        msg_id: crate::node::MsgId::from_bytes(*info.transfer_id.as_bytes()),
        peer: info.peer,
        direction: info.direction,
        text: info.names.join(", "),
        sent_at_ms: info.created_ms,
        state: MessageState::Delivered,
        unconfirmed_sender: false,
        transfer: Some(info.transfer_id),
        also_to: Vec::new(),
    }
}

/// A post in one line: its text, or the names of the files it posts.
pub fn post_summary(post: &RoomPost) -> String {
    match &post.files {
        Some(files) if post.text.is_empty() => {
            let names: Vec<String> = files.names.iter().map(|n| crate::node::display_path(n)).collect();
            format!("📎 {}", names.join(", "))
        }
        _ => post.text.clone(),
    }
}

/// The first eight hex digits of an id: enough for a person to tell peers apart.
pub fn short_id(id: PeerId) -> String {
    id.to_string().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MsgId;
    use crate::node::PublicKey;

    fn info(n: u8, name: &str) -> PeerInfo {
        PeerInfo {
            id: PeerId::from_bytes([n; 16]),
            name: name.into(),
            group: String::new(),
            host: format!("{name}-pc"),
            addr: format!("10.0.0.{n}"),
            port: 2426,
            status: Status::Online,
            key: Some(PublicKey::from_bytes([n; 32])),
            trust: Trust::Unverified,
            client: None,
            family: crate::node::Family::Pigeon,
        }
    }

    fn message(peer: u8, seq: i64, direction: Direction) -> ChatMessage {
        ChatMessage {
            seq,
            msg_id: MsgId::from_bytes([u8::try_from(seq).unwrap(); 16]),
            peer: PeerId::from_bytes([peer; 16]),
            direction,
            text: format!("m{seq}"),
            sent_at_ms: 0,
            state: if direction == Direction::Outgoing {
                MessageState::Queued
            } else {
                MessageState::Delivered
            },
            unconfirmed_sender: false,
            transfer: None,
            also_to: Vec::new(),
        }
    }

    fn seqs(model: &Model, peer: u8) -> Vec<i64> {
        model.chats[&PeerId::from_bytes([peer; 16])].messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn arrivals_count_as_unread_once_until_read() {
        let mut model = Model::default();
        model.apply(Event::PeerJoined { peer: info(1, "Ana") });
        let arrival = model.apply(Event::MessageReceived { message: message(1, 5, Direction::Incoming) });
        assert_eq!(arrival.map(|a| a.name), Some(String::from("Ana")));
        assert!(
            model.apply(Event::MessageReceived { message: message(1, 5, Direction::Incoming) }).is_none()
        );
        assert_eq!(model.total_unread(), 1);
        let ana = PeerId::from_bytes([1; 16]);
        model.mark_read(ana);
        assert_eq!(model.total_unread(), 0);
        assert_eq!(model.chats[&ana].messages[0].state, MessageState::Read);
    }

    #[test]
    fn pages_merge_in_order_and_only_older_pages_decide_has_more() {
        let mut model = Model::default();
        let peer = PeerId::from_bytes([1; 16]);
        model.apply(Event::MessageQueued { message: message(1, 30, Direction::Outgoing), tag: None });
        let page = |range: std::ops::Range<i64>| range.map(|s| message(1, s, Direction::Incoming)).collect();
        model.apply(Event::History {
            peer,
            messages: page(20..31),
            has_more: true,
            after: None,
            transfers: vec![],
        });
        assert_eq!(seqs(&model, 1), (20..31).collect::<Vec<_>>());
        assert!(model.chats[&peer].has_more);
        model.apply(Event::History {
            peer,
            messages: page(10..20),
            has_more: false,
            after: None,
            transfers: vec![],
        });
        assert_eq!(seqs(&model, 1), (10..31).collect::<Vec<_>>());
        assert_eq!(model.chats[&peer].prepended, 10);
        assert!(!model.chats[&peer].has_more);
        assert_eq!(model.chats[&peer].rows.len(), 21);
        // A later newest page (after a reconnect, say) adds nothing twice and keeps has_more.
        model.apply(Event::History {
            peer,
            messages: page(25..32),
            has_more: true,
            after: None,
            transfers: vec![],
        });
        assert_eq!(seqs(&model, 1), (10..32).collect::<Vec<_>>());
        assert!(!model.chats[&peer].has_more);
    }

    #[test]
    fn a_conversation_opened_at_an_old_message_fills_towards_the_present_without_gaps() {
        let mut model = Model::default();
        let peer = PeerId::from_bytes([1; 16]);
        let page = |range: std::ops::Range<i64>| range.map(|s| message(1, s, Direction::Incoming)).collect();
        model.apply(Event::History {
            peer,
            messages: page(90..100),
            has_more: true,
            after: None,
            transfers: vec![],
        });
        assert!(model.open_chat_at(peer, 95), "a held message is only focused");
        assert!(!model.open_chat_at(peer, 40));
        assert!(seqs(&model, 1).is_empty());
        model.apply(Event::History {
            peer,
            messages: page(30..41),
            has_more: true,
            after: None,
            transfers: vec![],
        });
        // A message arriving now lies beyond the gap: counted, not shown.
        model.apply(Event::MessageReceived { message: message(1, 100, Direction::Incoming) });
        model.apply(Event::History {
            peer,
            messages: page(45..50),
            has_more: true,
            after: Some(40),
            transfers: vec![],
        });
        let chat = &model.chats[&peer];
        assert_eq!(seqs(&model, 1), (30..41).chain(45..50).collect::<Vec<_>>());
        assert!(chat.has_more && chat.has_newer && chat.focus == Some(40));
        assert_eq!(model.peers[&peer].unread, 1);
        model.apply(Event::History {
            peer,
            messages: page(95..101),
            has_more: false,
            after: Some(49),
            transfers: vec![],
        });
        assert_eq!(*seqs(&model, 1).last().unwrap(), 100);
        assert!(!model.chats[&peer].has_newer);
        model.apply(Event::MessageReceived { message: message(1, 101, Direction::Incoming) });
        assert_eq!(*seqs(&model, 1).last().unwrap(), 101);
        let chat = model.chats.get_mut(&peer).unwrap();
        assert_eq!(chat.take_scroll_request(), Some(10));
        assert_eq!(chat.take_scroll_request(), None);
    }

    #[test]
    fn delivery_states_only_move_forward() {
        let mut model = Model::default();
        let peer = PeerId::from_bytes([1; 16]);
        let sent = message(1, 1, Direction::Outgoing);
        let msg_id = sent.msg_id;
        model.apply(Event::MessageQueued { message: sent, tag: None });
        model.apply(Event::MessageStateChanged { msg_id, peer, state: MessageState::Read });
        model.apply(Event::MessageStateChanged { msg_id, peer, state: MessageState::Delivered });
        assert_eq!(model.chats[&peer].messages[0].state, MessageState::Read);
    }

    #[test]
    fn peers_go_offline_but_stay_listed_and_history_adds_offline_ones() {
        let mut model = Model::default();
        let ana = info(1, "Ana");
        model.apply(Event::PeerJoined { peer: ana.clone() });
        model.apply(Event::PeerLeft { id: ana.id, reason: crate::node::LeaveReason::Goodbye });
        assert!(!model.peers[&ana.id].online);
        let old = crate::node::KnownPeer {
            id: PeerId::from_bytes([9; 16]),
            name: String::new(),
            group: String::new(),
            host: String::new(),
            addr: String::new(),
            family: crate::node::Family::Pigeon,
        };
        model.apply(Event::Conversations {
            conversations: vec![ConversationSummary { peer: old, unread: 4, last_at_ms: 0 }],
        });
        let entry = &model.peers[&PeerId::from_bytes([9; 16])];
        assert_eq!((entry.name.as_str(), entry.unread, entry.online), ("09090909", 4, false));
    }

    #[test]
    fn a_changed_key_warns_until_accepted() {
        let mut model = Model::default();
        let ana = info(1, "Ana");
        let previous = PeerId::from_bytes([7; 16]);
        model.apply(Event::KeyChanged { peer: ana.clone(), previous, previous_verified: true });
        assert_eq!(model.peers[&ana.id].key_changed_from, Some((previous, true)));
        model.apply(Event::PeerUpdated { peer: ana.clone() });
        assert!(model.peers[&ana.id].key_changed_from.is_some(), "an update keeps the warning");
        model.apply(Event::SafetyNumber { peer: ana.id, code: "1".into(), trust: Trust::Unverified });
        assert!(model.peers[&ana.id].key_changed_from.is_none());
    }

    #[test]
    fn transfer_progress_and_completion() {
        let mut model = Model::default();
        let transfer = TransferInfo {
            transfer_id: TransferId::from_bytes([1; 16]),
            peer: PeerId::from_bytes([2; 16]),
            direction: Direction::Incoming,
            state: TransferState::Offered,
            files: 1,
            folders: 0,
            total_bytes: 10,
            summary: "1 file, 10 B: a.bin".into(),
            entries_total: 1,
            entries: vec![crate::node::Entry {
                path: "a.bin".into(),
                kind: crate::node::EntryKind::File,
                size: 10,
            }],
            reason: String::new(),
            room: None,
            names: vec!["a.bin".into()],
            more_names: false,
            created_ms: 0,
            row: None,
            saved_in: None,
        };
        let id = transfer.transfer_id;
        model.apply(Event::TransferAdded { transfer, tag: None });
        model.apply(Event::TransferInterrupted { transfer_id: id, reason: "cable".into() });
        assert!(model.transfers[0].interrupted.is_some());
        model.apply(Event::TransferStateChanged {
            transfer_id: id,
            state: TransferState::Completed,
            reason: String::new(),
        });
        let view = &model.transfers[0];
        assert_eq!(view.info.state, TransferState::Completed);
        assert_eq!(view.progress.map(|p| (p.bytes_done, p.bytes_total)), Some((10, 10)));
        assert!(view.interrupted.is_none());
    }

    fn room_post(author: u8, lamport: u64, text: &str) -> RoomPost {
        RoomPost {
            author: PeerId::from_bytes([author; 16]),
            seq: lamport,
            lamport,
            sent_at_ms: 0,
            text: text.into(),
            files: None,
            read_by: Vec::new(),
        }
    }

    #[test]
    fn room_posts_keep_the_rooms_order_count_others_unread_and_take_read_marks() {
        let mut model = Model::default();
        let me = PeerId::from_bytes([1; 16]);
        model.apply(Event::Started {
            id: me,
            name: "Ana".into(),
            addr: String::new(),
            key: PublicKey::from_bytes([1; 32]),
        });
        let room = RoomId::from_bytes([7; 16]);
        let info =
            RoomInfo { room, name: "Sales".into(), members: Vec::new(), joined: true, posts: 0, unread: 0 };
        model.apply(Event::Rooms { rooms: vec![info] });
        let arrival = model.apply(Event::RoomPosted { room, post: room_post(2, 5, "late"), tag: None });
        assert_eq!(arrival.map(|a| (a.room, a.text)), Some((Some(room), String::from("late"))));
        model.apply(Event::RoomPosted { room, post: room_post(3, 2, "early"), tag: None });
        assert!(model.apply(Event::RoomPosted { room, post: room_post(1, 9, "mine"), tag: None }).is_none());
        assert!(model.apply(Event::RoomPosted { room, post: room_post(2, 5, "late"), tag: None }).is_none());
        let texts: Vec<&str> = model.room_chats[&room].posts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["early", "late", "mine"], "by Lamport time, each once");
        assert_eq!(model.total_unread(), 2, "our own post is not unread");
        let bo = PeerId::from_bytes([2; 16]);
        model.apply(Event::RoomRead { room, reader: bo, lamport: 5, author: bo, seq: 5 });
        let read: Vec<usize> = model.room_chats[&room].posts.iter().map(|p| p.read_by.len()).collect();
        assert_eq!(read, [1, 0, 0], "bo read up to its own post: the one before counts, its own does not");
        model.mark_room_read(room);
        assert_eq!(model.total_unread(), 0);
    }
}
