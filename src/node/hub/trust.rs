//! The hub's side of trust on first use: pinning a peer's key when it first appears, safety
//! numbers, and the user's verify and accept-key decisions (the rules live in `store::trust`).

use super::{Hub, Peer};
use crate::node::event::Event;
use crate::node::sinks::Origin;
use crate::protocol::ids::PeerId;
use crate::protocol::keys::safety_number;
use crate::store::Trust;

impl Hub {
    /// Sets `peer.trust` from what the store knows, pinning its key if this is the first time
    /// we see it (its row must exist). Returns the peer it replaces and whether that one was
    /// verified, when this is a key change.
    pub(super) fn pin(&mut self, peer: &mut Peer) -> Option<(PeerId, bool)> {
        let presence = &peer.presence;
        match self.store.pinned_key(presence.id) {
            Ok(Some(pinned)) => {
                peer.trust = pinned.trust;
                None
            }
            Ok(None) => {
                match self.store.pin_new_key(presence.id, presence.key, &presence.name, &presence.host) {
                    Ok((pinned, was_verified)) => {
                        peer.trust = pinned.trust;
                        if let Some(previous) = pinned.replaces {
                            log::warn!(
                                "{} on {} now has another key ({} replaces {previous})",
                                presence.name,
                                presence.host,
                                presence.id
                            );
                        }
                        pinned.replaces.map(|previous| (previous, was_verified))
                    }
                    Err(err) => {
                        log::error!("cannot pin the key of {}: {err}", presence.id);
                        None
                    }
                }
            }
            Err(err) => {
                log::error!("cannot read the key of {}: {err}", presence.id);
                None
            }
        }
    }

    pub(super) fn safety_number(&mut self, peer: PeerId, origin: Origin) {
        match self.store.pinned_key(peer) {
            Ok(Some(pinned)) => {
                let code = safety_number(&self.me.key, &pinned.key);
                self.sinks.reply(origin, Event::SafetyNumber { peer, code, trust: pinned.trust });
            }
            Ok(None) => self.fail(origin, None, &format!("no key known for peer {peer}")),
            Err(err) => self.fail(origin, None, &err),
        }
    }

    pub(super) fn set_trust(&mut self, peer: PeerId, trust: Trust, origin: Origin) {
        match self.store.pinned_key(peer) {
            Ok(Some(_)) => {}
            Ok(None) => return self.fail(origin, None, &format!("no key known for peer {peer}")),
            Err(err) => return self.fail(origin, None, &err),
        }
        if let Err(err) = self.store.set_trust(peer, trust) {
            return self.fail(origin, None, &err);
        }
        // The peer this key replaced (if online) is now retired; both rows change.
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Ok(Some(pinned)) = self.store.pinned_key(id) else { continue };
            if let Some(online) = self.peers.get_mut(&id)
                && online.trust != pinned.trust
            {
                online.trust = pinned.trust;
                self.sinks.emit(&Event::PeerUpdated { peer: online.info() });
            }
        }
        self.safety_number(peer, origin);
    }
}
