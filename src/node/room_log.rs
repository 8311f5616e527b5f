//! One group room as the events its members made, and what they add up to.
//!
//! Every member holds the events it knows, keyed by author and number. Two members that
//! hold the same events compute the same room: the same name, members and posts in the
//! same order, however the events reached them. The rules (docs/PROTOCOL.md, "Rooms"):
//!
//! - **Order**: by Lamport time, then author id, then number — total, and stable when a
//!   late event arrives (it slots in; nothing already ordered moves relative to the rest).
//! - **Who may act**: the room starts with its creator's `create`; after it, an event
//!   counts if its author is a member at that point of the order, with the key it was
//!   added with. An `add` at the member limit does not count.
//! - **Removal**: a `remove` of X with `after_seq: n` also voids X's events numbered above
//!   `n` that come *before* it in the order (a removed member cannot post "earlier"); events
//!   of X after a later re-`add` count again.
//! - **Catch-up**: what a member holds is, per author, the highest number held without
//!   gaps; another member answers with the events above it.
//!
//! Pure: no clock, no store, no sockets; tested with hand-made events.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::protocol::ids::PeerId;
use crate::protocol::room::{Change, MAX_MEMBERS, Member, SharedFiles, SignedEvent};

/// Where an event sits in the room's order.
pub type OrderKey = (u64, PeerId, u64);

fn order_key(event: &SignedEvent) -> OrderKey {
    (event.body.lamport, event.body.author, event.body.seq)
}

/// What happened when an event was offered to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// New: stored and counted.
    New,
    /// Held already (a relay or resend).
    Known,
    /// Another event under the same author and number: its author signed two (kept the
    /// first; a member that does this is broken or hostile).
    Conflict,
}

/// The room as its events add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomView {
    /// Whether its `create` is held (without it nothing counts).
    pub created: bool,
    /// Its name now.
    pub name: String,
    /// Its members now, by id.
    pub members: BTreeMap<PeerId, Member>,
    /// The posts that count, in the room's order (sorted by `key`).
    pub posts: Vec<Posted>,
    /// Events held that do not count (a non-member's, a voided one).
    pub void: usize,
    /// The order keys of `posts`.
    pub counted: HashSet<OrderKey>,
    /// Per member, the place of the newest post it has read.
    pub reads: BTreeMap<PeerId, OrderKey>,
}

impl RoomView {
    /// Whether the event at `key` is a post that counts.
    pub fn counts(&self, key: &OrderKey) -> bool {
        self.counted.contains(key)
    }

    /// The members other than its author who have read the post at `key`.
    pub fn read_by(&self, key: &OrderKey, author: PeerId) -> Vec<PeerId> {
        self.reads
            .iter()
            .filter(|(member, upto)| **member != author && *upto >= key && self.members.contains_key(member))
            .map(|(member, _)| *member)
            .collect()
    }
}

/// A post that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Its place in the order.
    pub key: OrderKey,
    /// Who wrote it.
    pub author: PeerId,
    /// The text.
    pub text: String,
    /// When, author's clock.
    pub sent_at_ms: u64,
    /// The files it offers, if any.
    pub files: Option<SharedFiles>,
}

/// One room's events, and what they add up to, always up to date: an event that comes last
/// in the order, as a new one does, is applied in place; anything else computes the room
/// again from the start (once per batch: see [`RoomLog::insert_many`]).
#[derive(Debug, Clone, Default)]
pub struct RoomLog {
    events: BTreeMap<(PeerId, u64), SignedEvent>,
    /// The room as of every event held.
    folded: Fold,
    /// The greatest order key held.
    last: Option<OrderKey>,
    /// The greatest Lamport time held.
    lamport: u64,
    /// Everyone its events ever named a member (create, adds): whose events are kept.
    named: HashSet<PeerId>,
}

impl RoomLog {
    /// Offers an event (its signature already checked).
    pub fn insert(&mut self, event: SignedEvent) -> Added {
        let (added, in_place) = self.put(event);
        if added == Added::New && !in_place {
            self.refold();
        }
        added
    }

    /// Offers many events, computing the room once at the end: what a catch-up does.
    pub fn insert_many(&mut self, events: impl IntoIterator<Item = SignedEvent>) -> Vec<(OrderKey, Added)> {
        let mut stale = false;
        let results = events
            .into_iter()
            .map(|event| {
                let at = order_key(&event);
                let (added, in_place) = self.put(event);
                stale |= added == Added::New && !in_place;
                (at, added)
            })
            .collect();
        if stale {
            self.refold();
        }
        results
    }

    /// Stores an event, applying it in place when it comes last in the order (nothing after
    /// it can void it) and is not a removal (which can void what came before); returns
    /// whether it was applied.
    fn put(&mut self, event: SignedEvent) -> (Added, bool) {
        let key = (event.body.author, event.body.seq);
        match self.events.get(&key) {
            Some(held) if held.json == event.json => return (Added::Known, false),
            Some(_) => return (Added::Conflict, false),
            None => {}
        }
        let at = order_key(&event);
        self.lamport = self.lamport.max(event.body.lamport);
        let in_place = self.last.is_none_or(|last| at > last)
            && !matches!(event.body.change, Change::Remove { .. })
            && (self.folded.view.created || matches!(event.body.change, Change::Create { .. }));
        if in_place {
            step(&mut self.folded, &event, &HashMap::new());
        }
        self.last = self.last.max(Some(at));
        self.named.extend(named_by(&event));
        self.events.insert(key, event);
        (Added::New, in_place)
    }

    fn refold(&mut self) {
        let mut ordered: Vec<&SignedEvent> = self.events.values().collect();
        ordered.sort_by_key(|event| order_key(event));
        // First pass: which removals count, ignoring the voiding they cause.
        let first = fold(&ordered, &HashMap::new());
        self.folded = fold(&ordered, &first.removals);
    }

    /// Everyone the events held ever named a member (see [`named_by`]).
    pub fn named(&self) -> &HashSet<PeerId> {
        &self.named
    }

    /// The event at `key` in the room's order, if held.
    pub fn event_at(&self, key: &OrderKey) -> Option<&SignedEvent> {
        let (lamport, author, seq) = *key;
        self.events.get(&(author, seq)).filter(|event| event.body.lamport == lamport)
    }

    /// Whether `event` (author and number) is not held yet.
    pub fn is_new(&self, event: &SignedEvent) -> bool {
        !self.events.contains_key(&(event.body.author, event.body.seq))
    }

    /// Per author, the highest number held without gaps (authors whose first event is
    /// missing are left out).
    pub fn have(&self) -> BTreeMap<PeerId, u64> {
        let mut have = BTreeMap::new();
        for &(author, seq) in self.events.keys() {
            let next = have.get(&author).copied().unwrap_or(0) + 1;
            if seq == next {
                have.insert(author, seq);
            }
        }
        have
    }

    /// The events a member holding `have` lacks, by author and number (so that each author's
    /// events arrive without gaps), at most `limit`.
    pub fn missing_for(&self, have: &BTreeMap<PeerId, u64>, limit: usize) -> Vec<&SignedEvent> {
        self.events
            .iter()
            .filter(|((author, seq), _)| *seq > have.get(author).copied().unwrap_or(0))
            .map(|(_, event)| event)
            .take(limit)
            .collect()
    }

    /// Whether `theirs` holds something this log lacks.
    pub fn lacks_from(&self, theirs: &BTreeMap<PeerId, u64>) -> bool {
        let ours = self.have();
        theirs.iter().any(|(author, seq)| ours.get(author).copied().unwrap_or(0) < *seq)
    }

    /// The number `author`'s next event gets.
    pub fn next_seq(&self, author: PeerId) -> u64 {
        self.events.range((author, 0)..=(author, u64::MAX)).next_back().map_or(1, |((_, seq), _)| seq + 1)
    }

    /// The Lamport time a new event gets: above every held one.
    pub fn next_lamport(&self) -> u64 {
        self.lamport + 1
    }

    /// Every event, for storing and relaying.
    pub fn events(&self) -> impl Iterator<Item = &SignedEvent> {
        self.events.values()
    }

    /// What the events add up to (see the module doc).
    pub fn view(&self) -> &RoomView {
        &self.folded.view
    }
}

/// Whom an event names a member: a create its author and members, an add its member.
pub fn named_by(event: &SignedEvent) -> Vec<PeerId> {
    match &event.body.change {
        Change::Create { members, .. } => {
            std::iter::once(event.body.author).chain(members.iter().map(|m| m.id)).collect()
        }
        Change::Add { member } => vec![member.id],
        _ => Vec::new(),
    }
}

/// The result of one pass over the ordered events.
#[derive(Debug, Clone, Default)]
struct Fold {
    view: RoomView,
    /// Per member, the removals of it that counted: (where in the order, `after_seq`).
    removals: HashMap<PeerId, Vec<(OrderKey, u64)>>,
}

fn fold(ordered: &[&SignedEvent], voiding: &HashMap<PeerId, Vec<(OrderKey, u64)>>) -> Fold {
    let mut folded = Fold::default();
    for event in ordered {
        step(&mut folded, event, voiding);
    }
    folded
}

/// Applies the next event in the order.
fn step(folded: &mut Fold, event: &SignedEvent, voiding: &HashMap<PeerId, Vec<(OrderKey, u64)>>) {
    let Fold { view, removals } = folded;
    let (body, key) = (&event.body, order_key(event));
    if let Change::Create { name, members, .. } = &body.change {
        if view.created {
            view.void += 1;
            return;
        }
        view.created = true;
        view.name.clone_from(name);
        view.members = members.iter().map(|m| (m.id, m.clone())).collect();
        view.members.entry(body.author).or_insert_with(|| Member {
            id: body.author,
            key: body.key,
            name: String::new(),
        });
        return;
    }
    let is_member = view.members.get(&body.author).is_some_and(|m| m.key == body.key);
    // Voided by a later removal of its author that the author had not seen this far.
    let voided = voiding.get(&body.author).is_some_and(|list| {
        list.iter().find(|(at, _)| *at > key).is_some_and(|(_, after)| body.seq > *after)
    });
    if !view.created || !is_member || voided {
        view.void += 1;
        return;
    }
    match &body.change {
        Change::Create { .. } => {}
        Change::Add { member } => {
            if view.members.len() >= MAX_MEMBERS && !view.members.contains_key(&member.id) {
                view.void += 1;
                return;
            }
            view.members.insert(member.id, member.clone());
        }
        Change::Remove { member, after_seq } => {
            if view.members.remove(member).is_some() {
                removals.entry(*member).or_default().push((key, *after_seq));
            }
        }
        Change::Rename { name } => view.name.clone_from(name),
        Change::Leave => {
            view.members.remove(&body.author);
        }
        Change::Post { text, files } => {
            view.posts.push(Posted {
                key,
                author: body.author,
                text: text.clone(),
                sent_at_ms: body.sent_at_ms,
                files: files.clone(),
            });
            view.counted.insert(key);
        }
        Change::Read { lamport, author, seq } => {
            let upto = (*lamport, *author, *seq);
            let mark = view.reads.entry(body.author).or_insert(upto);
            *mark = (*mark).max(upto);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
mod tests {
    use super::*;
    use crate::protocol::room::{EventBody, room_id};
    use crate::secure::Identity;

    struct Author {
        identity: Identity,
        seq: u64,
    }

    impl Author {
        fn new(n: u8) -> Author {
            Author { identity: Identity::from_private([n; 32]), seq: 0 }
        }
        fn id(&self) -> PeerId {
            self.identity.peer_id()
        }
        fn member(&self) -> Member {
            Member { id: self.id(), key: self.identity.public(), name: String::new() }
        }
        fn make(&mut self, room: crate::protocol::ids::RoomId, lamport: u64, change: Change) -> SignedEvent {
            self.seq += 1;
            let body = EventBody {
                room,
                author: self.id(),
                key: self.identity.public(),
                seq: self.seq,
                lamport,
                sent_at_ms: lamport,
                change,
            };
            SignedEvent::sign(body, &self.identity)
        }
    }

    fn start(ana: &mut Author, members: &[&Author]) -> (crate::protocol::ids::RoomId, SignedEvent) {
        let nonce = [9u8; 16];
        let room = room_id(ana.id(), &nonce);
        let mut list: Vec<Member> = members.iter().map(|m| m.member()).collect();
        list.push(ana.member());
        let nonce = crate::protocol::ids::to_hex(&nonce);
        (room, ana.make(room, 1, Change::Create { nonce, name: "Sales".into(), members: list }))
    }

    fn post(text: &str) -> Change {
        Change::Post { text: text.into(), files: None }
    }

    fn texts(view: &RoomView) -> Vec<&str> {
        view.posts.iter().map(|post| post.text.as_str()).collect()
    }

    #[test]
    fn the_same_events_in_any_order_give_the_same_room() {
        let (mut ana, mut bo, mut cy) = (Author::new(1), Author::new(2), Author::new(3));
        let (room, create) = start(&mut ana, &[&bo, &cy]);
        let events = vec![
            create,
            ana.make(room, 2, post("a1")),
            bo.make(room, 2, post("b1")),
            cy.make(room, 3, post("c1")),
            bo.make(room, 4, Change::Rename { name: "Sales EU".into() }),
            ana.make(room, 4, post("a2")),
        ];
        let mut forward = RoomLog::default();
        let mut backward = RoomLog::default();
        for event in &events {
            assert_eq!(forward.insert(event.clone()), Added::New);
        }
        for event in events.iter().rev() {
            backward.insert(event.clone());
        }
        assert_eq!(forward.view(), backward.view());
        let view = forward.view();
        assert_eq!(view.name, "Sales EU");
        assert_eq!(view.members.len(), 3);
        // Lamport 2 ties break by author id; then c1 at 3; a2 and the rename at 4.
        let mut tied = [(ana.id(), "a1"), (bo.id(), "b1")];
        tied.sort();
        assert_eq!(texts(view), [tied[0].1, tied[1].1, "c1", "a2"]);
        assert_eq!(forward.insert(events[1].clone()), Added::Known);
    }

    #[test]
    fn catch_up_sends_what_is_missing_per_author_without_gaps() {
        let (mut ana, mut bo) = (Author::new(1), Author::new(2));
        let (room, create) = start(&mut ana, &[&bo]);
        let mut full = RoomLog::default();
        full.insert(create.clone());
        for n in 0..5 {
            full.insert(bo.make(room, 2 + n, post(&format!("b{n}"))));
        }
        let mut behind = RoomLog::default();
        behind.insert(create);
        let have = behind.have();
        assert_eq!(have.get(&ana.id()), Some(&1));
        assert!(behind.lacks_from(&full.have()) && !full.lacks_from(&have));
        let first = full.missing_for(&have, 3);
        assert_eq!(first.iter().map(|e| e.body.seq).collect::<Vec<_>>(), [1, 2, 3]);
        for event in first {
            behind.insert(event.clone());
        }
        // Resumed from where it stopped: only the rest.
        let rest = full.missing_for(&behind.have(), 100);
        assert_eq!(rest.iter().map(|e| e.body.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(behind.next_seq(bo.id()), 4);
        assert_eq!(full.next_lamport(), 7);
    }

    #[test]
    fn non_members_count_for_nothing_and_a_removed_member_cannot_post_earlier() {
        let (mut ana, mut bo, mut mallory) = (Author::new(1), Author::new(2), Author::new(3));
        let (room, create) = start(&mut ana, &[&bo]);
        let mut log = RoomLog::default();
        log.insert(create);
        log.insert(mallory.make(room, 2, post("not a member")));
        log.insert(bo.make(room, 2, post("b1")));
        log.insert(ana.make(room, 5, Change::Remove { member: bo.id(), after_seq: 1 }));
        // Bo, removed, backdates a post before its removal: it does not count.
        log.insert(bo.make(room, 3, post("backdated")));
        log.insert(bo.make(room, 6, post("after removal")));
        let view = log.view();
        assert_eq!(texts(view), ["b1"]);
        assert_eq!(view.void, 3);
        assert!(!view.members.contains_key(&bo.id()));
        // Re-added, bo's later posts count again.
        log.insert(ana.make(room, 7, Change::Add { member: bo.member() }));
        log.insert(bo.make(room, 8, post("back")));
        assert_eq!(texts(log.view()), ["b1", "back"]);
    }

    #[test]
    fn a_rename_and_an_add_racing_converge_and_the_member_limit_holds() {
        let (mut ana, mut bo, cy) = (Author::new(1), Author::new(2), Author::new(3));
        let (room, create) = start(&mut ana, &[&bo]);
        let rename_a = ana.make(room, 2, Change::Rename { name: "A".into() });
        let rename_b = bo.make(room, 2, Change::Rename { name: "B".into() });
        let add = bo.make(room, 3, Change::Add { member: cy.member() });
        let mut one = RoomLog::default();
        let mut two = RoomLog::default();
        for event in [&create, &rename_a, &rename_b, &add] {
            one.insert(event.clone());
        }
        for event in [&add, &rename_b, &create, &rename_a] {
            two.insert(event.clone());
        }
        assert_eq!(one.view(), two.view());
        let winner = if ana.id() > bo.id() { "A" } else { "B" };
        assert_eq!(one.view().name, winner, "the later of two concurrent renames by author id");
        assert!(one.view().members.contains_key(&cy.id()));
        // Two events under one number: the first held stays.
        let mut again = Author { identity: Identity::from_private([1; 32]), seq: 1 };
        assert_eq!(one.insert(again.make(room, 9, post("equivocation"))), Added::Conflict);
    }
}
