//! The one peer table of every family: who is online now (with when we last heard of them
//! and how long silence may last before they count as gone), and every peer the store
//! remembers with the family it belongs to (messages to them may wait in the outbox). Families keep their
//! link state (connections, addresses, packet numbers) themselves, keyed by the same id.
//!
//! Time is passed in: expiry is tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::node::event::PeerInfo;
use crate::protocol::Family;
use crate::protocol::ids::PeerId;

/// Peers that left without being stored whose last presence is kept, at most (oldest
/// forgotten first): a user can still write to someone who just went away.
const MAX_RECENT: usize = 1024;

/// A peer online now.
#[derive(Debug, Clone)]
pub struct OnlinePeer {
    /// What consumers are told about it.
    pub info: PeerInfo,
    /// When we last heard anything from it.
    pub last_seen: Instant,
    /// Silence after which it is dropped; `None` for families without keep-alives (IP
    /// Messenger peers stay until they say goodbye, as in every IP Messenger client).
    pub expires_after: Option<Duration>,
}

/// What an update did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The peer was not online before.
    Joined,
    /// It was, and something consumers see changed.
    Updated,
    /// Nothing consumers see changed.
    Same,
}

/// The peer table. See the module doc.
#[derive(Default)]
pub struct Peers {
    /// Online now.
    online: HashMap<PeerId, OnlinePeer>,
    /// Every peer the store remembers, online or not, and its family. Peers listed on a
    /// mere claim are not in it: they cost nothing once they are gone.
    known: HashMap<PeerId, Family>,
    /// Peers that left and were never stored, as last seen, oldest first in `recent_order`.
    recent: HashMap<PeerId, PeerInfo>,
    recent_order: VecDeque<PeerId>,
}

impl Peers {
    /// A table that already knows `known` (from the store).
    pub fn with_known(known: impl IntoIterator<Item = (PeerId, Family)>) -> Peers {
        Peers { known: known.into_iter().collect(), ..Peers::default() }
    }

    /// Records that `info` is online as of `now`.
    pub fn upsert(&mut self, info: PeerInfo, expires_after: Option<Duration>, now: Instant) -> Change {
        match self.online.get_mut(&info.id) {
            Some(peer) => {
                peer.last_seen = now;
                peer.expires_after = expires_after;
                if peer.info == info {
                    return Change::Same;
                }
                peer.info = info;
                Change::Updated
            }
            None => {
                self.online.insert(info.id, OnlinePeer { info, last_seen: now, expires_after });
                Change::Joined
            }
        }
    }

    /// The store remembers `id`, of `family`, from now on.
    pub fn know(&mut self, id: PeerId, family: Family) {
        self.known.insert(id, family);
        if self.recent.remove(&id).is_some() {
            self.recent_order.retain(|recent| *recent != id);
        }
    }

    /// A peer online or recently gone that the store does not remember, as last seen.
    pub fn unstored(&self, id: PeerId) -> Option<&PeerInfo> {
        if self.known.contains_key(&id) {
            return None;
        }
        self.online.get(&id).map(|peer| &peer.info).or_else(|| self.recent.get(&id))
    }

    /// We heard from an online peer (a frame, a packet) at `now`.
    pub fn heard(&mut self, id: PeerId, now: Instant) {
        if let Some(peer) = self.online.get_mut(&id) {
            peer.last_seen = now;
        }
    }

    /// Takes a peer off the list.
    pub fn remove(&mut self, id: PeerId) -> Option<OnlinePeer> {
        let peer = self.online.remove(&id)?;
        if !self.known.contains_key(&id) && self.recent.insert(id, peer.info.clone()).is_none() {
            self.recent_order.push_back(id);
            while self.recent_order.len() > MAX_RECENT {
                if let Some(oldest) = self.recent_order.pop_front() {
                    self.recent.remove(&oldest);
                }
            }
        }
        Some(peer)
    }

    /// Online peers silent for longer than they may be at `now`.
    pub fn expired(&self, now: Instant) -> Vec<PeerId> {
        self.online
            .values()
            .filter(|peer| peer.expires_after.is_some_and(|after| now.duration_since(peer.last_seen) > after))
            .map(|peer| peer.info.id)
            .collect()
    }

    /// When the next online peer expires if it stays silent (then [`Peers::expired`] names
    /// it); `None` when no online peer can expire.
    pub fn next_expiry(&self) -> Option<Instant> {
        // Expired means silent for longer than allowed: a moment after the limit.
        let moment = Duration::from_millis(1);
        self.online.values().filter_map(|peer| Some(peer.last_seen + peer.expires_after? + moment)).min()
    }

    /// An online peer.
    pub fn get(&self, id: PeerId) -> Option<&OnlinePeer> {
        self.online.get(&id)
    }

    /// An online peer, to change what it says about itself (its trust, say).
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut OnlinePeer> {
        self.online.get_mut(&id)
    }

    /// Whether the peer is online.
    pub fn is_online(&self, id: PeerId) -> bool {
        self.online.contains_key(&id)
    }

    /// The family of a peer online, stored, or recently gone.
    pub fn family_of(&self, id: PeerId) -> Option<Family> {
        self.online
            .get(&id)
            .map(|peer| peer.info.family)
            .or_else(|| self.known.get(&id).copied())
            .or_else(|| self.recent.get(&id).map(|info| info.family))
    }

    /// Online peers of one family.
    pub fn count(&self, family: Family) -> usize {
        self.online.values().filter(|peer| peer.info.family == family).count()
    }

    /// Online peers.
    pub fn len(&self) -> usize {
        self.online.len()
    }

    /// Ids of the online peers.
    pub fn ids(&self) -> Vec<PeerId> {
        self.online.keys().copied().collect()
    }

    /// The online peers as consumers see them, by group, then name.
    pub fn infos(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self.online.values().map(|peer| peer.info.clone()).collect();
        peers.sort_by(|a, b| (&a.group, &a.name, a.id).cmp(&(&b.group, &b.name, b.id)));
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::announce::Status;
    use crate::store::Trust;

    pub(crate) fn info(n: u8, family: Family) -> PeerInfo {
        PeerInfo {
            id: PeerId::from_bytes([n; 16]),
            name: format!("peer{n}"),
            group: String::new(),
            host: "h".into(),
            addr: format!("10.0.0.{n}"),
            port: 2426,
            status: Status::Online,
            key: None,
            trust: Trust::Unverified,
            client: None,
            family,
        }
    }

    #[test]
    fn peers_join_update_and_expire_by_their_own_interval() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut peers = Peers::default();
        assert_eq!(peers.upsert(info(1, Family::Pigeon), Some(secs(8)), start), Change::Joined);
        assert_eq!(peers.upsert(info(2, Family::Pigeon), Some(secs(40)), start), Change::Joined);
        assert_eq!(peers.upsert(info(3, Family::Ipmsg), None, start), Change::Joined);
        assert_eq!(peers.upsert(info(1, Family::Pigeon), Some(secs(8)), start + secs(5)), Change::Same);
        let mut away = info(1, Family::Pigeon);
        away.status = Status::Away;
        assert_eq!(peers.upsert(away, Some(secs(8)), start + secs(6)), Change::Updated);
        // Silent since 6 s: gone after 14 s, not at 13; the hub need not look before.
        assert!(peers.expired(start + secs(13)).is_empty());
        let due = peers.next_expiry().unwrap();
        assert!(due > start + secs(14) && due < start + secs(15), "{:?}", due - start);
        assert_eq!(peers.expired(due), [PeerId::from_bytes([1; 16])]);
        assert_eq!(peers.expired(start + secs(15)), [PeerId::from_bytes([1; 16])]);
        peers.heard(PeerId::from_bytes([1; 16]), start + secs(15));
        assert!(peers.expired(start + secs(20)).is_empty());
        // The slow heartbeat of a big subnet, and a family that never expires.
        assert!(peers.expired(start + secs(40)).iter().all(|id| *id != PeerId::from_bytes([2; 16])));
        assert!(peers.expired(start + secs(41)).contains(&PeerId::from_bytes([2; 16])));
        assert!(peers.expired(start + secs(100_000)).iter().all(|id| *id != PeerId::from_bytes([3; 16])));
        assert_eq!((peers.count(Family::Pigeon), peers.count(Family::Ipmsg)), (2, 1));
        peers.know(PeerId::from_bytes([3; 16]), Family::Ipmsg);
        peers.remove(PeerId::from_bytes([3; 16]));
        assert_eq!(peers.family_of(PeerId::from_bytes([3; 16])), Some(Family::Ipmsg), "still known");
        peers.remove(PeerId::from_bytes([2; 16]));
        assert_eq!(peers.family_of(PeerId::from_bytes([2; 16])), Some(Family::Pigeon), "just gone");
        assert!(peers.unstored(PeerId::from_bytes([2; 16])).is_some());
        for n in 0..MAX_RECENT {
            let mut stranger = info(9, Family::Pigeon);
            stranger.id = PeerId::from_bytes(u128::try_from(n + 1000).unwrap().to_le_bytes());
            peers.upsert(stranger.clone(), None, start);
            peers.remove(stranger.id);
        }
        assert_eq!(peers.family_of(PeerId::from_bytes([2; 16])), None, "never stored, forgotten at last");
        assert_eq!(peers.recent.len(), MAX_RECENT);
        assert!(!peers.is_online(PeerId::from_bytes([3; 16])));
    }
}
