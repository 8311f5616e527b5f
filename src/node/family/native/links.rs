//! What the native family knows of each Pigeon peer online: the presence it announced, the
//! address it was heard from, the connection we send on, and whether we may dial it now —
//! one attempt at a time, and after a failure only once its backoff is over.
//!
//! Time is passed in: the rules are tested without sockets.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::connection::ConnId;
use super::heartbeat::MISSED_HEARTBEATS;
use crate::node::backoff::Backoff;
use crate::node::event::PeerInfo;
use crate::protocol::Family;
use crate::protocol::announce::Presence;
use crate::protocol::ids::PeerId;
use crate::store::Trust;

/// First and longest pause between attempts to connect to a peer with something to deliver.
const DIAL_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(10));

/// One Pigeon peer online.
#[derive(Debug)]
pub struct Link {
    /// What it last told us about itself.
    pub presence: Presence,
    /// Where we last heard it from.
    pub ip: Ipv4Addr,
    /// The connection we send on, once its hello arrived.
    pub conn: Option<ConnId>,
    /// A connection attempt is under way (until its hello arrives or it fails).
    dialing: bool,
    /// When the next attempt may start.
    dial: Backoff,
}

impl Link {
    fn new(presence: Presence, ip: Ipv4Addr, now: Instant) -> Link {
        Link {
            presence,
            ip,
            conn: None,
            dialing: false,
            dial: Backoff::new(DIAL_BACKOFF.0, DIAL_BACKOFF.1, now),
        }
    }

    /// Where it accepts connections.
    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.presence.port))
    }

    /// Where it hears discovery datagrams (peers announce from the port they listen on).
    pub fn discovery_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip, self.presence.port)
    }

    /// Silence after which it is dropped: [`MISSED_HEARTBEATS`] of the interval it announced.
    pub fn expires_after(&self) -> Duration {
        Duration::from_secs(self.presence.heartbeat_secs.into()) * MISSED_HEARTBEATS
    }

    /// Whether a connection attempt may start at `now`.
    pub fn may_dial(&self, now: Instant) -> bool {
        self.conn.is_none() && !self.dialing && self.dial.is_ready(now)
    }

    /// An attempt started.
    pub fn dial_started(&mut self) {
        self.dialing = true;
    }

    /// The attempt failed at `now` (refused, timed out, no hello): the next one waits.
    pub fn dial_failed(&mut self, now: Instant) {
        self.dialing = false;
        self.dial.failed(now);
    }

    /// Its hello arrived on `conn`, which we send on from now; returns the connection it
    /// replaces.
    pub fn greeted(&mut self, conn: ConnId) -> Option<ConnId> {
        self.dialing = false;
        self.dial.succeeded();
        self.conn.replace(conn).filter(|previous| *previous != conn)
    }

    /// The peer as consumers see it, trusted as far as `trust`.
    pub fn info(&self, trust: Trust) -> PeerInfo {
        PeerInfo {
            id: self.presence.id,
            name: self.presence.name.clone(),
            group: self.presence.group.clone(),
            host: self.presence.host.clone(),
            addr: self.ip.to_string(),
            port: self.presence.port,
            status: self.presence.status,
            key: Some(self.presence.key),
            trust,
            client: None,
            family: Family::Pigeon,
        }
    }
}

/// What hearing a presence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A peer we had not listed.
    New,
    /// A listed peer; its presence or address changed.
    Changed,
    /// A listed peer, as before.
    Same,
    /// A datagram placing a connected peer elsewhere: not believed.
    Ignored,
}

/// Every Pigeon peer online, by id.
#[derive(Default)]
pub struct Links {
    links: HashMap<PeerId, Link>,
}

impl Links {
    /// `presence` was heard from `ip` at `now`, in a datagram or (`from_tcp`) a hello. A TCP
    /// source address only places a peer we did not know: a connection may come from
    /// another local address than the one the peer announces from. A datagram never moves
    /// a connected peer: a proven connection outranks an unauthenticated datagram.
    pub fn heard(&mut self, presence: Presence, ip: Ipv4Addr, from_tcp: bool, now: Instant) -> Heard {
        let Some(link) = self.links.get_mut(&presence.id) else {
            self.links.insert(presence.id, Link::new(presence, ip, now));
            return Heard::New;
        };
        if !from_tcp && link.conn.is_some() && link.ip != ip {
            return Heard::Ignored;
        }
        let ip = if from_tcp { link.ip } else { ip };
        let changed = link.presence != presence || link.ip != ip;
        link.presence = presence;
        link.ip = ip;
        if changed { Heard::Changed } else { Heard::Same }
    }

    /// A peer online.
    pub fn get(&self, id: PeerId) -> Option<&Link> {
        self.links.get(&id)
    }

    /// A peer online, to change.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Link> {
        self.links.get_mut(&id)
    }

    /// Forgets a peer that left.
    pub fn remove(&mut self, id: PeerId) -> Option<Link> {
        self.links.remove(&id)
    }

    /// Every online peer's discovery address.
    pub fn discovery_addrs(&self) -> Vec<SocketAddrV4> {
        self.links.values().map(Link::discovery_addr).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::announce::{HEARTBEAT_SECS, Status};
    use crate::protocol::keys::PublicKey;

    fn presence(name: &str) -> Presence {
        let key = PublicKey::from_bytes([3; 32]);
        Presence {
            id: key.peer_id(),
            key,
            name: name.into(),
            group: String::new(),
            host: "h".into(),
            status: Status::Online,
            port: 2426,
            heartbeat_secs: HEARTBEAT_SECS,
        }
    }

    #[test]
    fn a_datagram_never_moves_a_connected_peer_and_a_connection_never_moves_a_known_one() {
        let now = Instant::now();
        let (here, there) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 66));
        let mut links = Links::default();
        assert_eq!(links.heard(presence("ana"), here, false, now), Heard::New);
        assert_eq!(links.heard(presence("ana"), here, false, now), Heard::Same);
        let id = presence("ana").id;
        links.get_mut(id).unwrap().greeted(ConnId(1));
        assert_eq!(links.heard(presence("ana"), there, false, now), Heard::Ignored);
        assert_eq!(links.heard(presence("ana"), there, true, now), Heard::Same, "a TCP source stays");
        assert_eq!(links.get(id).unwrap().ip, here);
        assert_eq!(links.heard(presence("Ana B."), there, true, now), Heard::Changed);
        // Not connected: the datagram's address is where the peer is now.
        links.get_mut(id).unwrap().conn = None;
        assert_eq!(links.heard(presence("Ana B."), there, false, now), Heard::Changed);
        assert_eq!(links.get(id).unwrap().ip, there);
    }

    #[test]
    fn one_dial_at_a_time_and_after_a_failure_only_once_the_pause_is_over() {
        let now = Instant::now();
        let mut links = Links::default();
        links.heard(presence("bo"), Ipv4Addr::LOCALHOST, false, now);
        let link = links.get_mut(presence("bo").id).unwrap();
        assert!(link.may_dial(now));
        link.dial_started();
        assert!(!link.may_dial(now), "a second attempt while one is under way");
        link.dial_failed(now);
        assert!(!link.may_dial(now + Duration::from_millis(249)));
        assert!(link.may_dial(now + Duration::from_millis(250)));
        link.dial_started();
        link.dial_failed(now + Duration::from_millis(250));
        assert!(!link.may_dial(now + Duration::from_millis(749)), "the pause doubles");
        assert_eq!(link.greeted(ConnId(4)), None);
        assert_eq!(link.greeted(ConnId(5)), Some(ConnId(4)), "a takeover names the connection it replaces");
        assert!(!link.may_dial(now + Duration::from_secs(60)), "connected: nothing to dial");
        assert_eq!(link.expires_after(), Duration::from_secs(8));
    }
}
