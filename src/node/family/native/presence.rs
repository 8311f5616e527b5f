//! Native discovery as the family sees it: what an announce, heartbeat, reply or goodbye
//! means for the peer table, pinning a new peer's key, and our own presence going out.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::Native;
use super::heartbeat::{Due, heartbeat_secs};
use super::links::Heard;
use super::trust;
use crate::node::event::{Event, LeaveReason};
use crate::node::hub::core::Core;
use crate::protocol::Family;
use crate::protocol::announce::{Datagram, Goodbye, Presence};
use crate::secure::Identity;
use crate::store::Trust;

impl Native {
    pub(super) fn on_datagram(
        &mut self,
        core: &mut Core,
        from: SocketAddrV4,
        datagram: Datagram,
        now: Instant,
    ) {
        if datagram.sender() == self.me.id {
            return;
        }
        match datagram {
            Datagram::Announce(presence) => {
                self.announcer.reply(&self.me, from, now);
                self.saw(core, presence, *from.ip(), false, now);
            }
            Datagram::Heartbeat(presence) => {
                if self.links.get(presence.id).is_none() {
                    self.announcer.reply(&self.me, from, now);
                }
                self.saw(core, presence, *from.ip(), false, now);
            }
            Datagram::Reply(presence) => self.saw(core, presence, *from.ip(), false, now),
            Datagram::Goodbye(Goodbye { id }) => core.peer_left(id, LeaveReason::Goodbye),
        }
    }

    /// `presence` is alive, heard from `ip` (see [`Links::heard`](super::links::Links::heard) for what a TCP source may
    /// change): the peer table learns it, a new peer's key is pinned.
    pub(super) fn saw(
        &mut self,
        core: &mut Core,
        presence: Presence,
        ip: Ipv4Addr,
        from_tcp: bool,
        now: Instant,
    ) {
        let id = presence.id;
        let heard = self.links.heard(presence, ip, from_tcp, now);
        let Some(link) = self.links.get(id) else { return };
        let (trust, key_change) = match heard {
            Heard::Ignored => {
                log::debug!("ignoring presence of {id} from {ip}: connected at {}", link.ip);
                return;
            }
            // The common case (every heartbeat): only the time it was heard changes.
            Heard::Same if core.peers.is_online(id) => return core.peers.heard(id, now),
            Heard::New => {
                trust::pin(&mut core.store, &Core::known_peer(&link.info(Trust::default())), &link.presence)
            }
            Heard::Changed | Heard::Same => {
                (core.peers.get(id).map(|p| p.info.trust).unwrap_or_default(), None)
            }
        };
        let info = link.info(trust);
        core.peer_seen(info.clone(), Some(link.expires_after()), now);
        if let Some(change) = key_change {
            let (previous, previous_verified) = (change.previous, change.previous_verified);
            core.sinks.emit(&Event::KeyChanged { peer: info, previous, previous_verified });
        }
    }

    pub(super) fn announce(&mut self, core: &Core, due: Due) {
        // Told to the others in the heartbeat itself, so they wait long enough.
        self.me.heartbeat_secs = heartbeat_secs(core.peers.count(Family::Pigeon) + 1);
        let datagram = match due {
            Due::Announce => Datagram::Announce(self.me.clone()),
            Due::Heartbeat => Datagram::Heartbeat(self.me.clone()),
        };
        self.announcer.announce(&datagram, self.links.discovery_addrs());
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
    }
}
