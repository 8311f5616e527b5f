//! What trust means for Pigeon peers: trust on first use. The first key seen for a peer is
//! pinned; a new key under the name and host of a pinned one is a key change, marked until
//! the user accepts it (the rules live in `store::trust`).

use crate::node::hub::core::now_ms;
use crate::protocol::announce::Presence;
use crate::protocol::ids::PeerId;
use crate::store::{KnownPeer, Store, Trust};

/// A new key under a known name and host: the id it replaces, and whether that one was
/// verified (which makes the change more alarming).
pub struct KeyChange {
    /// The id (old key) that went by this name and host.
    pub previous: PeerId,
    /// Whether the user had verified it.
    pub previous_verified: bool,
}

/// How far the key of `peer` (whose presence is `presence`) is trusted, pinning it (and
/// recording the peer) if this is the first time we see it, and the key change it is, if it
/// is one.
pub fn pin(store: &mut Store, peer: &KnownPeer, presence: &Presence) -> (Trust, Option<KeyChange>) {
    match store.pinned_key(presence.id) {
        Ok(Some(pinned)) => (pinned.trust, None),
        Ok(None) => match store.pin_new_key(peer, presence.key, now_ms()) {
            Ok((pinned, previous_verified)) => {
                if let Some(previous) = pinned.replaces {
                    let (name, host, id) = (&presence.name, &presence.host, presence.id);
                    log::warn!("{name} on {host} now has another key ({id} replaces {previous})");
                }
                let change = pinned.replaces.map(|previous| KeyChange { previous, previous_verified });
                (pinned.trust, change)
            }
            Err(err) => {
                log::error!("cannot pin the key of {}: {err}", presence.id);
                (Trust::default(), None)
            }
        },
        Err(err) => {
            log::error!("cannot read the key of {}: {err}", presence.id);
            (Trust::default(), None)
        }
    }
}
