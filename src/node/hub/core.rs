//! What every family of peers shares, owned by the hub thread: our profile, the store, the
//! event sinks, the peer table, the outbox, the transfer table and the threads let go of.
//! Families get `&mut Core` when the hub hands them work; what they cannot do themselves
//! (start a fetch, tell another family) they leave as an [`Intent`] that the hub applies
//! once they return, in one place.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::peers::{Change, Peers};
use super::transfers::Transfers;
use crate::node::doorbell::Bell;
use crate::node::event::{Event, LeaveReason, PeerInfo};
use crate::node::inbox::NetEvent;
use crate::node::sinks::{Origin, Sinks};
use crate::node::threads::Workers;
use crate::node::worker::WorkerId;
use crate::protocol::Family;
use crate::protocol::announce::Status;
use crate::protocol::ids::{PeerId, TransferId};
use crate::store::{KnownPeer, Store, TransferRecord};

/// Whether the store records a peer that is seen (see [`Core::peer_seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    /// Recorded: a peer whose key is proven, or of a family that proves nothing.
    Yes,
    /// Listed only while online: a claim that nothing proved yet.
    No,
}

/// How we appear to every family's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Display name.
    pub name: String,
    /// Group, possibly empty.
    pub group: String,
    /// Availability.
    pub status: Status,
    /// Our host name.
    pub host: String,
}

/// How offers to us are received.
#[derive(Debug, Clone)]
pub struct Receiving {
    /// Where received files go.
    pub download_dir: PathBuf,
    /// Accept every offer without asking (from peers whose key is not in doubt).
    pub auto_accept: bool,
}

/// Work a family leaves for the hub: it needs another part of the node.
#[derive(Debug)]
pub enum Intent {
    /// Something waits for this peer: its family delivers it.
    Deliver(PeerId),
    /// Start moving the data of this accepted incoming transfer (its family's fetch).
    Fetch(TransferId),
    /// A transfer ended here; its family tells the peer (when `tell_peer`) and forgets it.
    Ended {
        /// The transfer as it ended.
        record: TransferRecord,
        /// Whether the peer must be told (not when the end came from it).
        tell_peer: bool,
    },
    /// A peer left the list: its family drops what it holds for it.
    Left(PeerId, Family),
    /// A room frame for a member (its family carries it, connecting if need be).
    Room(PeerId, super::rooms::RoomFrame),
}

/// The shared state. See the module doc.
pub struct Core {
    /// Offers declined because too many wait already (see `Stats::offers_refused`).
    pub offers_refused: u64,
    /// Room events refused (see `Stats::room_events_refused`).
    pub room_events_refused: u64,
    /// Bytes of room events frames received (see `Stats::room_bytes_received`).
    pub room_bytes_received: u64,
    /// Room events received in frames (see `Stats::room_events_received`).
    pub room_events_received: u64,
    /// Group rooms.
    pub rooms: super::rooms::Rooms,
    /// Our profile.
    pub me: Profile,
    /// History, known peers, transfers, trust.
    pub store: Store,
    /// Where events go.
    pub sinks: Sinks,
    /// Every family's peers.
    pub peers: Peers,
    /// Who has something waiting.
    pub outbox: Outbox,
    /// Transfers that may still move data.
    pub transfers: Transfers,
    /// Threads let go of (closed connections, stopped workers, finished helpers), joined
    /// when they finish.
    pub workers: Workers,
    /// The hub's queue, for workers and helpers.
    pub net: Bell<NetEvent>,
    /// How offers are received.
    pub receiving: Receiving,
    /// How fast we may send (changed by `SetSpeedLimits`).
    pub speed_limits: std::sync::Arc<crate::node::pace::SpeedLimits>,
    /// Work for the hub, applied after each family call.
    pub intents: VecDeque<Intent>,
    /// The last worker id handed out.
    last_worker: u64,
}

impl Core {
    /// The shared state at start.
    pub fn new(
        me: Profile,
        store: Store,
        sinks: Sinks,
        net: Bell<NetEvent>,
        receiving: Receiving,
        identity: std::sync::Arc<crate::secure::Identity>,
    ) -> Result<Core, crate::store::StoreError> {
        let known: Vec<(PeerId, Family)> =
            store.known_peers()?.into_iter().map(|peer| (peer.id, peer.family)).collect();
        let outbox = Outbox::with_waiting(store.peers_with_undelivered()?);
        let rooms = super::rooms::Rooms::load(identity, store.room_events()?);
        Ok(Core {
            offers_refused: 0,
            room_events_refused: 0,
            room_bytes_received: 0,
            room_events_received: 0,
            rooms,
            me,
            store,
            sinks,
            peers: Peers::with_known(known),
            outbox,
            transfers: Transfers::default(),
            workers: Workers::default(),
            net,
            receiving,
            speed_limits: std::sync::Arc::default(),
            intents: VecDeque::new(),
            last_worker: 0,
        })
    }

    /// A fresh worker id.
    pub fn next_worker(&mut self) -> WorkerId {
        self.last_worker += 1;
        WorkerId(self.last_worker)
    }

    /// Tells whoever asked that their command failed.
    pub fn fail(&mut self, origin: Origin, tag: Option<String>, error: &dyn std::fmt::Display) {
        self.sinks.reply(origin, Event::CommandFailed { error: error.to_string(), tag });
    }

    /// Something waits for `peer` now: queued for delivery by its family.
    pub fn queue_for(&mut self, peer: PeerId) {
        self.outbox.mark(peer);
        self.intents.push_back(Intent::Deliver(peer));
    }

    /// `info` is online as of `now` (silent for `expires_after` means gone): the table, the
    /// store and the consumers learn what changed. A peer that joins gets what waits for it.
    pub fn peer_seen(
        &mut self,
        info: PeerInfo,
        expires_after: Option<Duration>,
        now: Instant,
        remember: Remember,
    ) -> Change {
        let id = info.id;
        let change = self.peers.upsert(info.clone(), expires_after, now);
        if change == Change::Same {
            return change;
        }
        if remember == Remember::Yes {
            self.remember(&info);
        }
        match change {
            Change::Joined => {
                self.sinks.emit(&Event::PeerJoined { peer: info });
                if self.outbox.is_waiting(id) {
                    self.intents.push_back(Intent::Deliver(id));
                }
                self.resume_transfers(now);
            }
            Change::Updated => self.sinks.emit(&Event::PeerUpdated { peer: info }),
            Change::Same => {}
        }
        change
    }

    /// A peer left the list.
    pub fn peer_left(&mut self, id: PeerId, reason: LeaveReason) {
        if let Some(peer) = self.peers.remove(id) {
            self.sinks.emit(&Event::PeerLeft { id, reason });
            self.intents.push_back(Intent::Left(id, peer.info.family));
        }
    }

    /// A peer as the store keeps it.
    pub fn known_peer(info: &PeerInfo) -> KnownPeer {
        KnownPeer {
            id: info.id,
            name: info.name.clone(),
            group: info.group.clone(),
            host: info.host.clone(),
            addr: format!("{}:{}", info.addr, info.port),
            family: info.family,
        }
    }

    /// A conversation with `peers` starts (the user writes or sends files to them, or an IP
    /// Messenger peer writes to us): those listed on a claim alone are stored from now on, so
    /// the conversation and its outbox outlive a restart. Keys are pinned only once a
    /// handshake proves them.
    pub fn store_on_use(&mut self, peers: &[PeerId]) {
        for id in peers {
            if let Some(info) = self.peers.unstored(*id).cloned() {
                self.remember(&info);
            }
        }
    }

    /// Writes what we know of a peer to the store.
    pub fn remember(&mut self, info: &PeerInfo) {
        self.peers.know(info.id, info.family);
        if let Err(err) = self.store.remember_peer(&Self::known_peer(info), now_ms()) {
            log::warn!("cannot remember peer {}: {err}", info.id);
        }
    }
}

/// Milliseconds since the Unix epoch, for timestamps that go to the store or the wire.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
