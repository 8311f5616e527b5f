//! Native discovery as the family sees it: what an announce, heartbeat, reply or goodbye
//! means for the peer table, what a claim may change and what needs a proven key, pinning a
//! proven peer's key, and our own presence going out.
//!
//! Datagrams are signed (their decoder checked that) but signing proves only that the
//! holder of the key sent it once. So: a datagram older than the last one taken from its
//! sender is dropped; a new key is listed from datagrams alone only up to
//! [`MAX_UNPROVEN`] peers, never under the name and host of a peer with another pinned key,
//! and stored, pinned or alarmed about (`key_changed`) only once a handshake proves it.

use std::net::SocketAddr;
use std::time::Instant;

use super::Native;
use super::heartbeat::{Due, heartbeat_secs};
use super::links::{Heard, MAX_UNPROVEN};
use crate::node::event::{Event, LeaveReason};
use crate::node::hub::core::{Core, Remember};
use crate::node::hub::trust::KeyChange;
use crate::protocol::Family;
use crate::protocol::announce::{Datagram, Presence};
use crate::protocol::ids::PeerId;
use crate::secure::Identity;
use crate::store::Trust;

impl Native {
    pub(super) fn on_datagram(
        &mut self,
        core: &mut Core,
        from: SocketAddr,
        datagram: Datagram,
        now: Instant,
    ) {
        let id = datagram.sender();
        if id == self.me.id {
            return;
        }
        let fresh = self.links.is_fresh(id, datagram.seq());
        if !fresh && !self.links.second_copy(id, datagram.seq(), from, now) {
            self.stale_datagrams += 1;
            return;
        }
        match datagram {
            Datagram::Announce(presence) => {
                if fresh {
                    self.announcer.reply(&self.me, from, now);
                }
                self.saw(core, presence, from, false, now);
                self.connect_room_member(core, id, now);
            }
            Datagram::Heartbeat(presence) => {
                if fresh && self.links.get(id).is_none() {
                    self.announcer.reply(&self.me, from, now);
                }
                self.saw(core, presence, from, false, now);
                if let Some(link) = self.links.get_mut(id) {
                    link.heartbeats_come = true;
                }
                self.connect_room_member(core, id, now);
            }
            Datagram::Reply(presence) => {
                self.saw(core, presence, from, false, now);
                self.connect_room_member(core, id, now);
            }
            // Signed by the peer's own key and newer than anything it sent before.
            Datagram::Goodbye(_) => core.peer_left(id, LeaveReason::Goodbye),
        }
    }

    /// A member of a room we share is online and not connected (it came back, or its
    /// connection ended): one of the two connects — the lower id — and the hellos start the
    /// catch-up both ways. Dial backoff keeps this to one attempt at a time.
    fn connect_room_member(&mut self, core: &mut Core, id: PeerId, now: Instant) {
        // Cheapest first: this runs for every datagram.
        let may_dial = self.links.get(id).is_some_and(|link| link.may_dial(now));
        if self.me.id < id && may_dial && core.rooms.shares_with(id) {
            self.dial_if_unconnected(core, id, now);
        }
    }

    /// `presence` is alive, heard from `at` — in a datagram, or (`from_tcp`) in the hello of
    /// a connection whose handshake proved its key (see
    /// [`Links::heard`](super::links::Links::heard) for what a TCP source may change): the
    /// peer table learns it; a proven peer's key is pinned and the peer stored.
    pub(super) fn saw(
        &mut self,
        core: &mut Core,
        presence: Presence,
        at: SocketAddr,
        from_tcp: bool,
        now: Instant,
    ) {
        let id = presence.id;
        let heard = self.links.heard(presence.clone(), at, from_tcp, now);
        let proving = from_tcp && self.links.get(id).is_some_and(|link| !link.proven);
        let (trust, key_change) = match heard {
            Heard::Ignored => {
                log::debug!("ignoring presence of {id} from {at}: connected elsewhere");
                return;
            }
            // The common case (every heartbeat): only the time it was heard changes.
            Heard::Same if core.peers.is_online(id) && !proving => return core.peers.heard(id, now),
            Heard::New => {
                let pinned = match core.store.pinned_key(id) {
                    Ok(pinned) => pinned,
                    Err(err) => return log::error!("cannot read the key of {id}: {err}"),
                };
                match (pinned, from_tcp) {
                    // Proven now, or on an earlier run (its key is pinned, and it signed this).
                    (Some(pinned), _) => {
                        self.links.insert(presence, at, true, now);
                        (pinned.trust, None)
                    }
                    (None, true) => {
                        self.links.insert(presence.clone(), at, true, now);
                        self.pin(core, &presence)
                    }
                    (None, false) => {
                        if !self.may_list_unproven(core, &presence) {
                            self.unproven_refused += 1;
                            return;
                        }
                        self.links.insert(presence, at, false, now);
                        (Trust::default(), None)
                    }
                }
            }
            Heard::Changed | Heard::Same if proving => {
                if let Some(link) = self.links.get_mut(id) {
                    link.proven = true;
                }
                self.pin(core, &presence)
            }
            Heard::Changed | Heard::Same => {
                (core.peers.get(id).map(|p| p.info.trust).unwrap_or_default(), None)
            }
        };
        let Some(link) = self.links.get(id) else { return };
        let info = link.info(trust);
        let remember = if link.proven { Remember::Yes } else { Remember::No };
        core.peer_seen(info.clone(), Some(link.expires_after()), now, remember);
        if let Some(change) = key_change {
            let (previous, previous_verified) = (change.previous, change.previous_verified);
            core.sinks.emit(&Event::KeyChanged { peer: info, previous, previous_verified });
        }
    }

    /// Pins the key of a peer whose handshake proved it (recording the peer).
    fn pin(&mut self, core: &mut Core, presence: &Presence) -> (Trust, Option<KeyChange>) {
        let Some(link) = self.links.get(presence.id) else { return (Trust::default(), None) };
        let known = Core::known_peer(&link.info(Trust::default()));
        core.pin_key(&known, presence.key)
    }

    /// Whether a presence nothing proved may be listed: while the unproven are under their
    /// cap, and unless its name and host belong to a peer with another, pinned key — that
    /// would be a key change, which only a handshake may show.
    fn may_list_unproven(&self, core: &Core, presence: &Presence) -> bool {
        if self.links.unproven() >= MAX_UNPROVEN {
            return false;
        }
        match core.store.other_key_under(&presence.name, &presence.host, presence.id) {
            Ok(other) => other.is_none(),
            Err(err) => {
                log::error!("cannot look up peers named {}: {err}", presence.name);
                false
            }
        }
    }

    pub(super) fn announce(&mut self, core: &Core, due: Due) {
        // Told to the others in the heartbeat itself, so they wait long enough.
        self.me.heartbeat_secs = heartbeat_secs(core.peers.count(Family::Pigeon) + 1);
        let ipv6_needed = self.links.none_or_some_on_ipv6();
        let direct = self.direct_addrs();
        self.announcer.announce(&self.me, due, direct, ipv6_needed);
    }

    /// Where our announces go beyond broadcasts, groups and targets: proven peers, and the
    /// listed ones mDNS found (see `hints`); the announcer leaves out those a broadcast or
    /// group reaches.
    pub(super) fn direct_addrs(&self) -> Vec<std::net::SocketAddr> {
        let mut direct = self.links.discovery_addrs();
        direct.extend(self.found.addrs_of(|id| self.links.get(id).is_some()));
        direct
    }
}

/// Our presence for the native family.
pub(super) fn presence_of(core: &Core, identity: &Identity, port: u16) -> Presence {
    Presence {
        id: identity.peer_id(),
        key: identity.public(),
        name: core.me.name.clone(),
        group: core.me.group.clone(),
        host: core.me.host.clone(),
        status: core.me.status,
        port,
        heartbeat_secs: crate::protocol::announce::HEARTBEAT_SECS,
        seq: 0,
    }
}
