//! What the native family knows of each Pigeon peer online: the presence it announced, the
//! address it was heard from, whether its key is proven, the last datagram number taken from
//! it, the connection we send on, and whether we may dial it now — one attempt at a time,
//! and after a failure only once its backoff is over. Peers that left are remembered with
//! their last datagram number for a while, so a replayed announce cannot bring them back.
//! A peer heard over IPv4 and IPv6 is one peer; IPv4 is preferred while it is heard.
//!
//! Time is passed in: the rules are tested without sockets.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
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

/// Peers listed on the strength of signed datagrams alone, at most: more than any office
/// has Pigeons that none of its users ever wrote to. A newcomer beyond it is not listed (and
/// counted) until an unproven one expires or it proves its key by connecting.
pub const MAX_UNPROVEN: usize = 512;

/// Peers that left whose last datagram number is kept, at most (the oldest is forgotten
/// first).
const MAX_DEPARTED: usize = 1024;

/// One Pigeon peer online.
#[derive(Debug)]
pub struct Link {
    /// What it last told us about itself (its `seq` is 0: see [`Link::seq`]).
    pub presence: Presence,
    /// Where we last heard it from (the port aside: see [`Link::tcp_addr`]); an IPv6
    /// link-local address keeps its interface.
    at: SocketAddr,
    /// When a datagram last came from `at`.
    at_heard: Instant,
    /// A handshake proved its key (now or on an earlier run: the key is pinned). Only such
    /// peers are stored, hear our heartbeats directly, or may change what we believe.
    pub proven: bool,
    /// A heartbeat (kind 2) of its own reached us: by broadcast or a group, which then
    /// carry ours to it too (see `hints`).
    pub heartbeats_come: bool,
    /// When it was listed.
    listed_at: Instant,
    /// The greatest datagram number taken from it.
    seq: u64,
    /// The connection we send on, once its hello arrived.
    pub conn: Option<ConnId>,
    /// A connection attempt is under way (until its hello arrives or it fails).
    dialing: bool,
    /// When the next attempt may start.
    dial: Backoff,
}

impl Link {
    fn new(presence: Presence, at: SocketAddr, proven: bool, now: Instant) -> Link {
        let seq = presence.seq;
        Link {
            presence: Presence { seq: 0, ..presence },
            at,
            at_heard: now,
            proven,
            heartbeats_come: false,
            listed_at: now,
            seq,
            conn: None,
            dialing: false,
            dial: Backoff::new(DIAL_BACKOFF.0, DIAL_BACKOFF.1, now),
        }
    }

    /// Where it accepts connections; also where it hears discovery datagrams (peers
    /// announce from the port they listen on).
    pub fn tcp_addr(&self) -> SocketAddr {
        let mut addr = self.at;
        addr.set_port(self.presence.port);
        addr
    }

    /// Whether none of its heartbeats came though it has been listed for half the time that
    /// drops a peer: time enough for its first (they come once per interval), and time
    /// left for a reply of ours to reach it before it would drop us.
    pub fn heartbeats_missing(&self, now: Instant) -> bool {
        !self.heartbeats_come && self.half_expired_since(self.listed_at, now)
    }

    /// Whether the address it was heard from has been silent for half the time that drops
    /// a peer: an IPv6 datagram then moves a peer found over IPv4.
    fn quiet(&self, now: Instant) -> bool {
        self.half_expired_since(self.at_heard, now)
    }

    /// Whether more than half the time that drops it passed from `since` to `now`.
    fn half_expired_since(&self, since: Instant, now: Instant) -> bool {
        now.saturating_duration_since(since) > self.expires_after() / 2
    }

    /// Silence after which it is dropped: [`MISSED_HEARTBEATS`] of the interval it announced,
    /// as far as the protocol allows.
    pub fn expires_after(&self) -> Duration {
        self.presence.silence_allowed(MISSED_HEARTBEATS)
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
            addr: match self.at {
                // Useless without its interface: `fe80::1%eth0`, as `ping` takes it.
                SocketAddr::V6(v6) if v6.scope_id() != 0 => {
                    format!("{}%{}", v6.ip(), crate::node::interfaces::name_of(v6.scope_id()))
                }
                other => other.ip().to_string(),
            },
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
    /// A peer we had not listed: nothing was recorded, see [`Links::insert`].
    New,
    /// A listed peer; its presence or address changed.
    Changed,
    /// A listed peer, as before.
    Same,
    /// A datagram placing a connected peer elsewhere: not believed.
    Ignored,
}

/// Every Pigeon peer online, by id, and the last datagram numbers of some that left.
#[derive(Default)]
pub struct Links {
    links: HashMap<PeerId, Link>,
    /// Last datagram number of peers that left, oldest departure first in `departures`.
    departed: HashMap<PeerId, u64>,
    departures: VecDeque<PeerId>,
}

impl Links {
    /// Whether a datagram numbered `seq` from `id` is newer than any taken from it before
    /// (online, or among the departed we remember). An older or equal one is a replay, or the
    /// same datagram arriving by a second route.
    pub fn is_fresh(&self, id: PeerId, seq: u64) -> bool {
        let last = self.links.get(&id).map(|link| link.seq).or_else(|| self.departed.get(&id).copied());
        last.is_none_or(|last| seq > last)
    }

    /// `presence` was heard from `from` at `now`, in a datagram or (`from_tcp`) a hello, from
    /// a listed peer; [`Heard::New`] when it is not listed (nothing recorded then). A TCP
    /// source address only places a peer we did not know: a connection may come from another
    /// local address than the one the peer announces from. A datagram never moves a
    /// connected peer: a proven connection outranks a datagram, signed or not; one from the
    /// other IP version is the same peer heard by another way, not believed elsewhere. An
    /// IPv6 datagram moves a peer found over IPv4 only once IPv4 went quiet: every datagram
    /// goes both ways and the first copy to arrive is the one taken. Call after
    /// [`Links::is_fresh`].
    pub fn heard(&mut self, presence: Presence, from: SocketAddr, from_tcp: bool, now: Instant) -> Heard {
        let Some(link) = self.links.get_mut(&presence.id) else { return Heard::New };
        let elsewhere = link.at.ip() != from.ip();
        let same_version = link.at.is_ipv4() == from.is_ipv4();
        if !from_tcp && elsewhere && same_version && link.conn.is_some() {
            return Heard::Ignored;
        }
        let moves = !from_tcp
            && elsewhere
            && link.conn.is_none()
            && (same_version || from.is_ipv4() || link.quiet(now));
        if !from_tcp {
            link.seq = link.seq.max(presence.seq);
            if moves || !elsewhere {
                link.at_heard = now;
            }
        }
        let presence = Presence { seq: 0, ..presence };
        let changed = link.presence != presence || moves;
        link.presence = presence;
        if moves {
            link.at = from;
        }
        if changed { Heard::Changed } else { Heard::Same }
    }

    /// A second copy of the last datagram taken from `id` (`seq`) came from `from`. From
    /// where the peer is placed, it is still heard there (the copy of another route may
    /// arrive first every time); returns whether to take it all the same: the IPv4 copy of
    /// what came over IPv6 first, for a peer not connected, which moves it to IPv4.
    pub fn second_copy(&mut self, id: PeerId, seq: u64, from: SocketAddr, now: Instant) -> bool {
        let Some(link) = self.links.get_mut(&id).filter(|link| link.seq == seq) else { return false };
        if link.at.ip() == from.ip() {
            link.at_heard = now;
        }
        from.is_ipv4() && link.at.is_ipv6() && link.conn.is_none()
    }

    /// Lists a peer that [`Links::heard`] found new.
    pub fn insert(&mut self, presence: Presence, at: SocketAddr, proven: bool, now: Instant) {
        if let Some(seq) = self.departed.remove(&presence.id) {
            self.departures.retain(|id| *id != presence.id);
            debug_assert!(presence.seq == 0 || presence.seq > seq, "checked by is_fresh");
        }
        self.links.insert(presence.id, Link::new(presence, at, proven, now));
    }

    /// Whether no peer is listed or one is placed on IPv6 (heard there alone, or IPv4 went
    /// quiet): then our heartbeats must go over IPv6 as well.
    pub fn none_or_some_on_ipv6(&self) -> bool {
        self.links.is_empty() || self.links.values().any(|link| link.at.is_ipv6())
    }

    /// Peers listed whose key is not proven.
    pub fn unproven(&self) -> usize {
        self.links.values().filter(|link| !link.proven).count()
    }

    /// A peer online.
    pub fn get(&self, id: PeerId) -> Option<&Link> {
        self.links.get(&id)
    }

    /// A peer online, to change.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Link> {
        self.links.get_mut(&id)
    }

    /// Forgets a peer that left, keeping its last datagram number for a while.
    pub fn remove(&mut self, id: PeerId) -> Option<Link> {
        let link = self.links.remove(&id)?;
        if self.departed.insert(id, link.seq).is_none() {
            self.departures.push_back(id);
        }
        while self.departures.len() > MAX_DEPARTED {
            if let Some(oldest) = self.departures.pop_front() {
                self.departed.remove(&oldest);
            }
        }
        Some(link)
    }

    /// The discovery address of every online peer whose key is proven: where our heartbeats
    /// go beyond broadcasts and targets. A mere claim never makes us send to an address.
    pub fn discovery_addrs(&self) -> Vec<SocketAddr> {
        self.links.values().filter(|link| link.proven).map(Link::tcp_addr).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::announce::{HEARTBEAT_SECS, Status};
    use crate::protocol::keys::PublicKey;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn v4(ip: Ipv4Addr) -> SocketAddr {
        SocketAddr::new(ip.into(), 2426)
    }

    fn presence(name: &str, seq: u64) -> Presence {
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
            seq,
        }
    }

    #[test]
    fn a_datagram_never_moves_a_connected_peer_and_a_connection_never_moves_a_known_one() {
        let now = Instant::now();
        let (here, there) = (v4(Ipv4Addr::new(10, 0, 0, 1)), v4(Ipv4Addr::new(10, 0, 0, 66)));
        let mut links = Links::default();
        assert_eq!(links.heard(presence("ana", 1), here, false, now), Heard::New);
        links.insert(presence("ana", 1), here, true, now);
        assert_eq!(links.heard(presence("ana", 2), here, false, now), Heard::Same, "only the number moved");
        let id = presence("ana", 0).id;
        links.get_mut(id).unwrap().greeted(ConnId(1));
        assert_eq!(links.heard(presence("ana", 3), there, false, now), Heard::Ignored);
        assert_eq!(links.heard(presence("ana", 0), there, true, now), Heard::Same, "a TCP source stays");
        assert_eq!(links.get(id).unwrap().at, here);
        assert_eq!(links.heard(presence("Ana B.", 0), there, true, now), Heard::Changed);
        // Not connected: the datagram's address is where the peer is now.
        links.get_mut(id).unwrap().conn = None;
        assert_eq!(links.heard(presence("Ana B.", 4), there, false, now), Heard::Changed);
        assert_eq!(links.get(id).unwrap().at, there);
    }

    #[test]
    fn a_peer_heard_both_ways_stays_on_ipv4_while_it_is_heard_there_and_moves_when_it_goes_quiet() {
        let now = Instant::now();
        let ipv4 = v4(Ipv4Addr::new(10, 0, 0, 1));
        let link_local =
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7), 2426, 0, 3));
        let mut links = Links::default();
        let id = presence("ana", 0).id;
        links.insert(presence("ana", 1), ipv4, true, now);
        assert_eq!(links.heard(presence("ana", 2), link_local, false, now), Heard::Same, "IPv4 is heard");
        assert_eq!(links.get(id).unwrap().tcp_addr(), ipv4);
        // Only the IPv6 copies arrive first for a while, yet the IPv4 ones still come.
        let later = now + Duration::from_secs(6);
        assert!(!links.second_copy(id, 2, ipv4, later), "a copy from where it is placed");
        assert!(!links.second_copy(id, 1, ipv4, later), "a replay");
        assert_eq!(links.heard(presence("ana", 3), link_local, false, later), Heard::Same);
        // IPv4 went quiet (no copy for half the expiry): IPv6 takes over, with its interface.
        let quiet = later + Duration::from_secs(5);
        assert_eq!(links.heard(presence("ana", 4), link_local, false, quiet), Heard::Changed);
        assert_eq!(links.get(id).unwrap().tcp_addr(), link_local);
        let shown = links.get(id).unwrap().info(Trust::default()).addr;
        assert!(shown.starts_with("fe80::7%"), "{shown}: with its interface");
        // IPv4 back: preferred at once, also when its copy comes second.
        assert!(links.second_copy(id, 4, ipv4, quiet));
        assert!(!links.second_copy(
            id,
            4,
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0)),
            quiet
        ));
        assert_eq!(links.heard(presence("ana", 4), ipv4, false, quiet), Heard::Changed);
        assert_eq!(links.get(id).unwrap().tcp_addr(), ipv4);
        // Connected: the other version's datagrams keep the peer listed, not moved.
        links.get_mut(id).unwrap().greeted(ConnId(1));
        assert_eq!(
            links.heard(presence("ana", 6), link_local, false, quiet + Duration::from_secs(60)),
            Heard::Same
        );
        assert_eq!(links.get(id).unwrap().tcp_addr(), ipv4);
    }

    #[test]
    fn old_numbers_are_replays_also_after_the_peer_left_and_only_proven_peers_hear_us_directly() {
        let now = Instant::now();
        let mut links = Links::default();
        let id = presence("bo", 0).id;
        assert!(links.is_fresh(id, 1), "a stranger's first datagram");
        links.insert(presence("bo", 10), v4(Ipv4Addr::LOCALHOST), false, now);
        assert!(links.discovery_addrs().is_empty(), "an unproven peer hears only broadcasts and targets");
        assert_eq!(links.unproven(), 1);
        assert!(!links.is_fresh(id, 10) && !links.is_fresh(id, 9) && links.is_fresh(id, 11));
        links.heard(presence("bo", 20), v4(Ipv4Addr::LOCALHOST), false, now);
        assert!(!links.is_fresh(id, 15));
        links.heard(presence("bo", 0), v4(Ipv4Addr::LOCALHOST), true, now);
        assert!(!links.is_fresh(id, 20), "a hello carries no number and resets nothing");
        links.get_mut(id).unwrap().proven = true;
        assert_eq!(links.discovery_addrs().len(), 1);
        links.remove(id);
        assert!(!links.is_fresh(id, 20), "a replayed announce does not bring a peer back");
        assert!(links.is_fresh(id, 21));
        links.insert(presence("bo", 21), v4(Ipv4Addr::LOCALHOST), true, now);
        // Departures are remembered up to a bound, the oldest forgotten first.
        links.remove(id);
        for n in 0..MAX_DEPARTED as u64 {
            let key = PublicKey::from_bytes(blake3::hash(&n.to_le_bytes()).into());
            let stranger = Presence { id: key.peer_id(), key, ..presence("x", 1) };
            links.insert(stranger.clone(), v4(Ipv4Addr::LOCALHOST), false, now);
            links.remove(stranger.id);
        }
        assert!(links.is_fresh(id, 1), "forgotten after {MAX_DEPARTED} later departures");
        assert_eq!(links.departed.len(), MAX_DEPARTED);
    }

    #[test]
    fn one_dial_at_a_time_and_after_a_failure_only_once_the_pause_is_over() {
        let now = Instant::now();
        let mut links = Links::default();
        links.insert(presence("bo", 1), v4(Ipv4Addr::LOCALHOST), true, now);
        let link = links.get_mut(presence("bo", 0).id).unwrap();
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
