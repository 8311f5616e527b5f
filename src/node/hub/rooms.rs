//! Group rooms on the hub: the user's commands become events signed with our key, events
//! from members are checked and stored, and what a member lacks is worked out from what it
//! says it holds. Which bytes go to whom is decided here; the native family carries them
//! (`Intent::Room`). The rules of a room live in `node::room_log`.

use std::collections::HashMap;
use std::sync::Arc;

use super::core::{Core, Intent, now_ms};
use crate::node::ending::Ending;
use crate::node::event::{Event, RoomInfo, RoomMember, RoomPost};
use crate::node::room_log::{Added, OrderKey, Posted, RoomLog, RoomView, named_by};
use crate::node::sinks::Origin;
use crate::protocol::Family;
use crate::protocol::ids::TransferId;
use crate::protocol::ids::{PeerId, RoomId};
use crate::protocol::room::PostedIn;
use crate::protocol::room::{
    Change, EventBody, MAX_EVENTS_PER_FRAME, MAX_FRAMES_PER_ANSWER, MAX_MEMBERS, MAX_SHARED_NAMES,
    MAX_SYNC_ROOMS, Member, RoomEvents, RoomHave, RoomSync, SharedFiles, SignedEvent, into_frames, room_id,
};
use crate::protocol::transfer::{Entry, EntryKind};
use crate::secure::Identity;
use crate::store::TransferState;

/// Rooms we hold, at most: a peer may put us in rooms without asking, as in any messenger,
/// but not in more than this.
pub const MAX_ROOMS: usize = 200;

/// A frame for one member, for the native family to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomFrame {
    /// Events it lacks (or new ones).
    Events(RoomEvents),
    /// What we hold, so it sends what we lack.
    Sync(RoomSync),
}

/// Every room's events, and our key to sign ours.
pub struct Rooms {
    logs: HashMap<RoomId, RoomLog>,
    identity: Arc<Identity>,
}

impl Rooms {
    /// The rooms of the stored events.
    pub fn load(identity: Arc<Identity>, events: Vec<(RoomId, SignedEvent)>) -> Rooms {
        let mut logs: HashMap<RoomId, RoomLog> = HashMap::new();
        for (room, event) in events {
            logs.entry(room).or_default().insert(event);
        }
        Rooms { logs, identity }
    }

    /// What a room we hold adds up to.
    pub fn view(&self, room: RoomId) -> Option<&RoomView> {
        self.logs.get(&room).map(RoomLog::view)
    }

    /// What consumers are told changed: a room's name and members before a change.
    fn snapshot(&self, room: RoomId) -> Snapshot {
        let view = self.view(room);
        Snapshot {
            created: view.is_some_and(|v| v.created),
            name: view.map(|v| v.name.clone()).unwrap_or_default(),
            members: view.map(|v| v.members.clone()).unwrap_or_default(),
        }
    }

    /// The post at `key` in `room`, as consumers see it.
    fn post(&self, room: RoomId, key: OrderKey) -> Option<RoomPost> {
        let view = self.view(room)?;
        // Posts are kept in the room's order.
        let at = view.posts.binary_search_by_key(&key, |post| post.key).ok()?;
        view.posts.get(at).map(post_of)
    }

    fn info(&self, room: RoomId, view: &RoomView) -> RoomInfo {
        let me = self.identity.peer_id();
        let members = view.members.values().map(|m| RoomMember { id: m.id, name: m.name.clone() }).collect();
        let joined = view.members.contains_key(&me);
        let read_upto = view.reads.get(&me);
        let unread_from = view.posts.partition_point(|post| Some(&post.key) <= read_upto);
        let unread = view.posts[unread_from..].iter().filter(|post| post.author != me).count();
        RoomInfo { room, name: view.name.clone(), members, joined, posts: view.posts.len(), unread }
    }

    /// The highest number of `member`'s events we hold in `room` (what a removal voids
    /// above).
    pub fn last_seq_of(&self, room: RoomId, member: PeerId) -> u64 {
        self.logs.get(&room).map_or(0, |log| log.next_seq(member) - 1)
    }

    /// A room we may act in, or why not.
    pub fn may_post(&self, room: RoomId) -> Result<&RoomView, String> {
        let view = self.view(room).ok_or_else(|| format!("no room {room}"))?;
        if !view.members.contains_key(&self.identity.peer_id()) {
            return Err(format!("not a member of room {room}"));
        }
        Ok(view)
    }

    /// Whether we know that `peer` is not a member of `room`, or that we are not.
    pub fn is_outsider(&self, room: RoomId, peer: PeerId) -> bool {
        self.view(room).is_some_and(|view| {
            view.created
                && !(view.members.contains_key(&peer) && view.members.contains_key(&self.identity.peer_id()))
        })
    }

    /// Whether we share a room with `peer` (see [`catches_up`]).
    pub fn shares_with(&self, peer: PeerId) -> bool {
        let me = self.identity.peer_id();
        self.logs.values().any(|log| catches_up(log, me, peer))
    }

    /// The rooms we are in that `peer` is (or was) a member of, and what we hold of each.
    pub fn sync_for(&self, peer: PeerId) -> Option<RoomSync> {
        let me = self.identity.peer_id();
        let rooms: Vec<RoomHave> = self
            .logs
            .iter()
            .filter(|(_, log)| catches_up(log, me, peer))
            .take(MAX_SYNC_ROOMS)
            .map(|(room, log)| RoomHave { room: *room, have: log.have() })
            .collect();
        (!rooms.is_empty()).then_some(RoomSync { rooms })
    }
}

/// Whether `me` and `peer` catch up with each other in the room of `log`: we are a member,
/// and it is or was one (the events ever named it; that covers every member). One removed,
/// or that left, is answered too: it learns that it is out.
fn catches_up(log: &RoomLog, me: PeerId, peer: PeerId) -> bool {
    log.view().members.contains_key(&me) && log.named().contains(&peer)
}

/// A room's name and members at one moment.
struct Snapshot {
    created: bool,
    name: String,
    members: std::collections::BTreeMap<PeerId, Member>,
}

fn post_of(post: &Posted) -> RoomPost {
    let (lamport, _, seq) = post.key;
    RoomPost {
        author: post.author,
        seq,
        lamport,
        sent_at_ms: post.sent_at_ms,
        text: post.text.clone(),
        files: post.files.clone(),
        read_by: Vec::new(),
    }
}

impl Core {
    /// Answers `room_create`.
    pub fn room_create(&mut self, name: &str, members: &[PeerId], tag: Option<String>, origin: Origin) {
        if self.rooms.logs.len() >= MAX_ROOMS {
            return self.fail(origin, tag, &format!("room not created: {MAX_ROOMS} rooms already"));
        }
        if members.len() + 1 > MAX_MEMBERS {
            return self.fail(origin, tag, &format!("room not created: more than {MAX_MEMBERS} members"));
        }
        let mut list = vec![self.me_as_member()];
        for id in members {
            match self.member_of(*id) {
                Ok(member) => list.push(member),
                Err(err) => return self.fail(origin, tag, &format!("room not created: {err}")),
            }
        }
        let nonce: [u8; 16] = crate::node::random_id(|bytes| bytes);
        let room = room_id(self.rooms.identity.peer_id(), &nonce);
        let nonce = crate::protocol::ids::to_hex(&nonce);
        let change = Change::Create { nonce, name: name.to_owned(), members: list };
        self.room_act(room, change, tag, origin);
    }

    /// Answers `room_send`, `room_add`, `room_remove`, `room_rename`, `room_leave`; returns
    /// the number of our event, once stored.
    pub fn room_change(
        &mut self,
        room: RoomId,
        change: Change,
        tag: Option<String>,
        origin: Origin,
    ) -> Option<u64> {
        let view = match self.rooms.may_post(room) {
            Ok(view) => view,
            Err(err) => {
                self.fail(origin, tag, &err);
                return None;
            }
        };
        if let Change::Add { member } = &change
            && view.members.len() >= MAX_MEMBERS
            && !view.members.contains_key(&member.id)
        {
            self.fail(origin, tag, &format!("room {room} has {MAX_MEMBERS} members already"));
            return None;
        }
        self.room_act(room, change, tag, origin)
    }

    /// Posts files to a room: the post describes them, and its number tags the offer each
    /// member gets. Returns it and the members to offer them to (all but us).
    pub fn post_files(
        &mut self,
        room: RoomId,
        entries: &[Entry],
        tag: Option<String>,
        origin: Origin,
    ) -> Option<(u64, Vec<PeerId>)> {
        let files = entries.iter().filter(|entry| entry.kind == EntryKind::File);
        let shared = SharedFiles {
            files: files.clone().count() as u64,
            bytes: files.map(|entry| entry.size).fold(0, u64::saturating_add),
            names: entries
                .iter()
                .map(|entry| entry.path.as_str())
                .filter(|path| !path.contains('/'))
                .take(MAX_SHARED_NAMES)
                .map(str::to_owned)
                .collect(),
        };
        let change = Change::Post { text: String::new(), files: Some(shared) };
        let seq = self.room_change(room, change, tag, origin)?;
        let me = self.rooms.identity.peer_id();
        let members = self.rooms.view(room)?.members.keys().copied().filter(|id| *id != me).collect();
        Some((seq, members))
    }

    /// Our own membership entry.
    fn me_as_member(&self) -> Member {
        let identity = &self.rooms.identity;
        Member { id: identity.peer_id(), key: identity.public(), name: self.me.name.clone() }
    }

    /// A Pigeon peer as a room member: it needs a key we know (online, or pinned).
    pub fn member_of(&self, id: PeerId) -> Result<Member, String> {
        if self.peers.family_of(id) == Some(Family::Ipmsg) {
            return Err(format!("{id} is an IP Messenger peer, which cannot sign room messages"));
        }
        let online = self.peers.get(id).and_then(|peer| Some((peer.info.key?, peer.info.name.clone())));
        let (key, name) = match online {
            Some(found) => found,
            None => match self.store.pinned_key(id) {
                Ok(Some(pinned)) => (pinned.key, String::new()),
                Ok(None) => return Err(format!("unknown peer {id}")),
                Err(err) => return Err(err.to_string()),
            },
        };
        Ok(Member { id, key, name })
    }

    /// Signs, stores and spreads one event of ours; returns its number once stored.
    fn room_act(&mut self, room: RoomId, change: Change, tag: Option<String>, origin: Origin) -> Option<u64> {
        let identity = self.rooms.identity.clone();
        let log = self.rooms.logs.entry(room).or_default();
        let body = EventBody {
            room,
            author: identity.peer_id(),
            key: identity.public(),
            seq: log.next_seq(identity.peer_id()),
            lamport: log.next_lamport(),
            sent_at_ms: now_ms(),
            change,
        };
        let event = SignedEvent::sign(body, &*identity);
        if let Err(err) = self.store.insert_room_events([&event]) {
            self.fail(origin, tag, &format!("room event not stored: {err}"));
            return None;
        }
        let seq = event.body.seq;
        let before = self.rooms.snapshot(room);
        let key = (event.body.lamport, event.body.author, event.body.seq);
        self.rooms.logs.entry(room).or_default().insert(event.clone());
        // Everyone who was or is a member hears of it (a removed one learns it was removed).
        let mut to: Vec<PeerId> = before.members.keys().copied().collect();
        to.extend(self.rooms.view(room).into_iter().flat_map(|view| view.members.keys().copied()));
        to.sort_unstable();
        to.dedup();
        to.retain(|id| *id != identity.peer_id());
        let frame = RoomFrame::Events(RoomEvents { room, events: vec![event.to_wire()], more: false });
        for peer in to {
            self.intents.push_back(Intent::Room(peer, frame.clone()));
        }
        self.tell_room_changes(room, &before, &[key], tag.as_deref());
        Some(seq)
    }

    /// Tells consumers what changed in a room: its name or members since `before`, and which
    /// of the events at `inserted` are posts that count.
    fn tell_room_changes(
        &mut self,
        room: RoomId,
        before: &Snapshot,
        inserted: &[OrderKey],
        tag: Option<&str>,
    ) {
        let tag = tag.map(str::to_owned);
        let Some(after) = self.rooms.view(room) else { return };
        let new_posts: Vec<RoomPost> = inserted
            .iter()
            .filter(|key| after.counts(key))
            .filter_map(|key| self.rooms.post(room, *key))
            .collect();
        let members_changed = before.members != after.members;
        let changed = before.name != after.name || members_changed || !before.created;
        if changed && after.created {
            let info = self.rooms.info(room, after);
            let tag = if new_posts.is_empty() { tag.clone() } else { None };
            self.sinks.emit(&Event::RoomUpdated { room: info, tag });
        }
        for post in new_posts {
            self.sinks.emit(&Event::RoomPosted { room, post, tag: tag.clone() });
        }
        // Read marks among the new events that moved a member's mark.
        let reads: Vec<Event> = inserted
            .iter()
            .filter_map(|key| {
                let event = self.rooms.logs.get(&room)?.event_at(key)?;
                let Change::Read { lamport, author, seq } = event.body.change else { return None };
                let reader = event.body.author;
                (after.reads.get(&reader) == Some(&(lamport, author, seq))).then_some(Event::RoomRead {
                    room,
                    reader,
                    lamport,
                    author,
                    seq,
                })
            })
            .collect();
        for read in reads {
            self.sinks.emit(&read);
        }
        if members_changed && before.created {
            self.room_files_follow_members(room, before);
        }
    }

    /// Files we posted to a room follow its membership: a member added gets our offers of
    /// them, one removed (or that left) loses those it had not answered; when we are out,
    /// all go.
    fn room_files_follow_members(&mut self, room: RoomId, before: &Snapshot) {
        let me = self.rooms.identity.peer_id();
        let Some(after) = self.rooms.view(room) else { return };
        let gone = |peer: &PeerId| !after.members.contains_key(peer);
        let out: Vec<TransferId> = self
            .transfers
            .room_offers(room)
            .into_iter()
            .filter(|(_, peer)| gone(&me) || gone(peer))
            .map(|(id, _)| id)
            .collect();
        let added: Vec<PeerId> = after
            .members
            .keys()
            .filter(|id| !before.members.contains_key(id) && **id != me)
            .copied()
            .collect();
        let ours: Vec<u64> = if gone(&me) {
            Vec::new()
        } else {
            after
                .posts
                .iter()
                .filter(|post| post.author == me && post.files.is_some())
                .map(|post| post.key.2)
                .collect()
        };
        for id in out {
            self.end_transfer(id, TransferState::Cancelled, &Ending::NoLongerMember.reason(), true);
        }
        for seq in ours {
            let posted = PostedIn { room, seq };
            let template = match self.store.room_offer(posted) {
                Ok(Some(template)) => template,
                Ok(None) => continue,
                Err(err) => {
                    log::error!("cannot look up the files of {room} post {seq}: {err}");
                    continue;
                }
            };
            for &peer in &added {
                self.offer_listed(
                    peer,
                    template.entries.clone(),
                    template.sources.clone(),
                    Some(posted),
                    None,
                    Origin::Owner,
                );
            }
        }
    }

    /// Answers `room_mark_read`: a read mark up to the newest post, if that moves ours.
    pub fn room_mark_read(&mut self, room: RoomId, origin: Origin) {
        let me = self.rooms.identity.peer_id();
        let Some(view) = self.rooms.view(room) else {
            return self.fail(origin, None, &format!("no room {room}"));
        };
        let Some(&Posted { key: (lamport, author, seq), .. }) = view.posts.last() else { return };
        if view.reads.get(&me) >= Some(&(lamport, author, seq)) || !view.members.contains_key(&me) {
            return;
        }
        self.room_act(room, Change::Read { lamport, author, seq }, None, origin);
    }

    /// Events of `room` that `from` sent (signatures already checked): each one is kept only
    /// if its author is or was named a member; the rest are refused and counted. Returns
    /// whether to ask again: the frame says more is left, and it brought something new (one
    /// that brought nothing new is a second answer to the same question, as when both ends
    /// sent their holdings at once; asking again for it would double every answer after).
    pub fn room_events_received(
        &mut self,
        from: PeerId,
        room: RoomId,
        events: Vec<SignedEvent>,
        more: bool,
    ) -> bool {
        let count = events.len();
        let me = self.rooms.identity.peer_id();
        let events: Vec<SignedEvent> = events.into_iter().filter(|event| event.body.room == room).collect();
        let Some(log) = self.rooms.logs.get(&room) else {
            return self.room_discovered(from, room, events, count) && more;
        };
        // Who may have events here: those the room named, and those this batch adds.
        let mut named = log.named().clone();
        named.extend(events.iter().flat_map(named_by));
        if !named.contains(&from) || !named.contains(&me) {
            self.room_events_refused += count as u64;
            return false;
        }
        let (kept, refused): (Vec<SignedEvent>, Vec<SignedEvent>) =
            events.into_iter().partition(|event| named.contains(&event.body.author));
        self.room_events_refused += refused.len() as u64;
        let kept: Vec<SignedEvent> = kept.into_iter().filter(|event| log.is_new(event)).collect();
        if let Err(err) = self.store.insert_room_events(&kept) {
            // Not applied either: the member sends them again on the next sync.
            log::error!("cannot store events of room {room}: {err}");
            return false;
        }
        let before = self.rooms.snapshot(room);
        let inserted: Vec<OrderKey> = self
            .rooms
            .logs
            .entry(room)
            .or_default()
            .insert_many(kept)
            .into_iter()
            .filter(|(_, added)| *added == Added::New)
            .map(|(key, _)| key)
            .collect();
        self.tell_room_changes(room, &before, &inserted, None);
        more && !inserted.is_empty()
    }

    /// The first events of a room we did not know: kept if they start a room (its create)
    /// that names both us and `from`.
    fn room_discovered(
        &mut self,
        from: PeerId,
        room: RoomId,
        events: Vec<SignedEvent>,
        count: usize,
    ) -> bool {
        let me = self.rooms.identity.peer_id();
        let mut trial = RoomLog::default();
        let inserted: Vec<OrderKey> = trial.insert_many(events).into_iter().map(|(key, _)| key).collect();
        let named = trial.named();
        if self.rooms.logs.len() >= MAX_ROOMS
            || !trial.view().created
            || !named.contains(&me)
            || !named.contains(&from)
        {
            self.room_events_refused += count as u64;
            log::info!("refused {count} events of room {room} from {from}: not a room of its and ours");
            return false;
        }
        if let Err(err) = self.store.insert_room_events(trial.events()) {
            log::error!("cannot store events of room {room}: {err}");
            return false;
        }
        let before = Snapshot { created: false, name: String::new(), members: Default::default() };
        self.rooms.logs.insert(room, trial);
        self.tell_room_changes(room, &before, &inserted, None);
        true
    }

    /// `from` told us what it holds: send it what it lacks of rooms it shares with us (one
    /// frame per room at most; it asks again for more), and what we hold where it has
    /// something we lack.
    pub fn room_sync_received(&mut self, from: PeerId, sync: RoomSync) {
        let me = self.rooms.identity.peer_id();
        let mut ours = Vec::new();
        for RoomHave { room, have } in sync.rooms {
            let Some(log) = self.rooms.logs.get(&room) else {
                // A room we do not know yet: send an empty holding, so it sends everything.
                if self.rooms.logs.len() < MAX_ROOMS {
                    ours.push(RoomHave { room, have: Default::default() });
                }
                continue;
            };
            // A member now gets what it lacks. One that was removed (or left) while away gets
            // only the changes of membership and name, so it learns that it is out, and no
            // post; anyone else gets nothing.
            let member = log.view().members.contains_key(&from);
            if !catches_up(log, me, from) {
                self.room_events_refused += 1;
                continue;
            }
            let limit = MAX_EVENTS_PER_FRAME * MAX_FRAMES_PER_ANSWER;
            let mut missing: Vec<&SignedEvent> = log
                .missing_for(&have, limit)
                .into_iter()
                .filter(|event| member || !matches!(event.body.change, Change::Post { .. }))
                .collect();
            // The create first: a member new to the room can place nothing before it.
            missing.sort_by_key(|event| !matches!(event.body.change, Change::Create { .. }));
            // Long posts make more frames than an answer carries: the rest is asked for again.
            let (frames, left) = into_frames(missing.iter().copied(), MAX_FRAMES_PER_ANSWER);
            let more = missing.len() == limit || left;
            let last = frames.len();
            for (n, events) in frames.into_iter().enumerate() {
                let more = more && n + 1 == last;
                self.intents
                    .push_back(Intent::Room(from, RoomFrame::Events(RoomEvents { room, events, more })));
            }
            if log.lacks_from(&have) {
                ours.push(RoomHave { room, have: log.have() });
            }
        }
        if !ours.is_empty() {
            self.intents.push_back(Intent::Room(from, RoomFrame::Sync(RoomSync { rooms: ours })));
        }
    }

    /// What we hold of `room`, to ask `peer` for more.
    pub fn room_have(&self, room: RoomId) -> RoomSync {
        let have = self.rooms.logs.get(&room).map(RoomLog::have).unwrap_or_default();
        RoomSync { rooms: vec![RoomHave { room, have }] }
    }

    /// Answers `list_rooms`.
    pub fn list_rooms(&mut self, origin: Origin) {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .logs
            .keys()
            .filter_map(|room| Some(self.rooms.info(*room, self.rooms.view(*room).filter(|v| v.created)?)))
            .collect();
        rooms.sort_by(|a, b| (&a.name, a.room).cmp(&(&b.name, b.room)));
        self.sinks.reply(origin, Event::Rooms { rooms });
    }

    /// Answers `room_history`.
    pub fn room_history(&mut self, room: RoomId, origin: Origin) {
        let Some(view) = self.rooms.view(room) else {
            return self.fail(origin, None, &format!("no room {room}"));
        };
        let posts = view
            .posts
            .iter()
            .map(|post| RoomPost { read_by: view.read_by(&post.key, post.author), ..post_of(post) })
            .collect();
        self.sinks.reply(origin, Event::RoomHistory { room, posts });
    }
}
