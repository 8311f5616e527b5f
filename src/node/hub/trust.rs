//! The user's say in trust: safety numbers to compare out loud, and the verify and accept-key
//! decisions (the rules live in `store::trust`; how a family pins keys, in its adapter).

use super::core::{Core, now_ms};
use crate::node::event::Event;
use crate::node::sinks::Origin;
use crate::protocol::ids::PeerId;
use crate::protocol::keys::{PublicKey, safety_number};
use crate::store::Trust;

impl Core {
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
