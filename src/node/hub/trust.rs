//! Trust on first use, and the user's say in it. The first key a family proves for a peer
//! is pinned (`Core::pin_key`); a new key under the name and host of a pinned one is a key
//! change, marked until the user accepts it. Safety numbers are compared out loud, and the
//! user verifies or accepts keys (the rules live in `store::trust`; when a key counts as
//! proven, in each family's adapter).

use super::core::{Core, now_ms};
use crate::node::event::Event;
use crate::node::sinks::Origin;
use crate::protocol::ids::PeerId;
use crate::protocol::keys::{PublicKey, safety_number};
use crate::store::{KnownPeer, Trust};

/// A new key under a known name and host: the id it replaces, and whether that one was
/// verified (which makes the change more alarming).
pub struct KeyChange {
    /// The id (old key) that went by this name and host.
    pub previous: PeerId,
    /// Whether the user had verified it.
    pub previous_verified: bool,
}

impl Core {
    /// How far `key`, proven to be `peer`'s, is trusted, pinning it (and recording the peer)
    /// if this is the first time we see it, and the key change it is, if it is one.
    pub fn pin_key(&mut self, peer: &KnownPeer, key: PublicKey) -> (Trust, Option<KeyChange>) {
        self.peers.know(peer.id, peer.family);
        match self.store.pinned_key(peer.id) {
            Ok(Some(pinned)) => (pinned.trust, None),
            Ok(None) => match self.store.pin_new_key(peer, key, now_ms()) {
                Ok((pinned, previous_verified)) => {
                    if let Some(previous) = pinned.replaces {
                        let (name, host, id) = (&peer.name, &peer.host, peer.id);
                        log::warn!("{name} on {host} now has another key ({id} replaces {previous})");
                    }
                    let change = pinned.replaces.map(|previous| KeyChange { previous, previous_verified });
                    (pinned.trust, change)
                }
                Err(err) => {
                    log::error!("cannot pin the key of {}: {err}", peer.id);
                    (Trust::default(), None)
                }
            },
            Err(err) => {
                log::error!("cannot read the key of {}: {err}", peer.id);
                (Trust::default(), None)
            }
        }
    }

    /// Answers `safety_number`: the code both ends derive from their keys.
    pub fn safety_number(&mut self, ours: &PublicKey, peer: PeerId, origin: Origin) {
        match self.store.pinned_key(peer) {
            Ok(Some(pinned)) => {
                let code = safety_number(ours, &pinned.key);
                self.sinks.reply(origin, Event::SafetyNumber { peer, code, trust: pinned.trust });
            }
            // Listed on its signed datagrams, not proven yet: comparing the code out loud is
            // how the user proves it.
            Ok(None) => match self.peers.unstored(peer).and_then(|info| info.key) {
                Some(key) => {
                    let code = safety_number(ours, &key);
                    self.sinks.reply(origin, Event::SafetyNumber { peer, code, trust: Trust::Unverified });
                }
                None => self.fail(origin, None, &format!("no key known for peer {peer}")),
            },
            Err(err) => self.fail(origin, None, &err),
        }
    }

    /// Records the user's decision about a peer's key and tells every consumer what changed
    /// (accepting a new key retires the one it replaced, so two peers may change).
    pub fn set_trust(&mut self, ours: &PublicKey, peer: PeerId, trust: Trust, origin: Origin) {
        match self.store.pinned_key(peer) {
            Ok(Some(_)) => {}
            // The user decides about a key nothing proved yet (a verify after comparing the
            // code): it is pinned now, as a handshake would have.
            Ok(None) => match self.peers.unstored(peer).and_then(|info| Some((info.clone(), info.key?))) {
                Some((info, key)) => {
                    self.peers.know(peer, info.family);
                    if let Err(err) = self.store.pin_new_key(&Core::known_peer(&info), key, now_ms()) {
                        return self.fail(origin, None, &err);
                    }
                }
                None => return self.fail(origin, None, &format!("no key known for peer {peer}")),
            },
            Err(err) => return self.fail(origin, None, &err),
        }
        if let Err(err) = self.store.set_trust(peer, trust) {
            return self.fail(origin, None, &err);
        }
        for id in self.peers.ids() {
            let Ok(Some(pinned)) = self.store.pinned_key(id) else { continue };
            if let Some(online) = self.peers.get_mut(id)
                && online.info.trust != pinned.trust
            {
                online.info.trust = pinned.trust;
                let peer = online.info.clone();
                self.sinks.emit(&Event::PeerUpdated { peer });
            }
        }
        self.safety_number(ours, peer, origin);
    }
}
