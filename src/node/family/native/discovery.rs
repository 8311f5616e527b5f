//! Native discovery over UDP: the receiver thread that decodes datagrams for the family,
//! and the [`Announcer`] that sends announces, heartbeats, replies and goodbyes.
//!
//! Where announces go: the broadcast address of every up, non-loopback IPv4 interface (only
//! the bound address's interface when bound to one address) and the multicast group out of
//! each of them (each way when on: networks filter one or the other), the IPv6 link-local
//! group out of each interface with IPv6 (when bound to every address; heartbeats only
//! while a peer is heard over IPv6 alone, or none is listed), every configured
//! target, and every online peer outside those broadcast domains and links (so a peer
//! reached only through a target keeps hearing from us even if its own targets do not
//! include us).

use std::collections::BTreeSet;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use super::Report;
use super::heartbeat::Due;
use crate::node::doorbell::Bell;
use crate::node::interfaces::Scope;
use crate::node::ipv6::Ipv6Discovery;
use crate::node::log_limit::{JUNK_LOG_INTERVAL, LogLimit};
use crate::node::multicast::Group;
use crate::node::socket;
use crate::node::threads::StopFlag;
use crate::node::udp::{self, Counters, Decoded};
use crate::protocol::announce::{Datagram, Goodbye, MAX_DATAGRAM, Presence};
use crate::secure::Identity;

/// Receives native discovery datagrams on `socket` until `stop` is raised.
pub fn receive_loop(socket: &UdpSocket, queue: &Bell<Report>, stop: &StopFlag, counters: &Counters) {
    udp::receive_loop(socket, queue, stop, counters, MAX_DATAGRAM, |from, bytes| {
        Datagram::decode(bytes).map(|datagram| {
            // A heartbeat refreshes a peer that is listed already (almost always); one from a
            // newcomer waits a second at most.
            let urgent = !matches!(datagram, Datagram::Heartbeat(_));
            Decoded { report: Report::Datagram { from, datagram }, urgent }
        })
    });
}

/// Direct replies a node sends per second at most, and in one burst: enough to answer a
/// whole /24 of newcomers at once, while a flood of forged announces cannot turn the node
/// into an amplifier (a peer whose reply was skipped hears our next heartbeat instead).
const REPLY_RATE: f64 = 50.0;
const REPLY_BURST: f64 = 250.0;

/// A token bucket for replies.
struct ReplyBudget {
    tokens: f64,
    refilled: Instant,
}

impl ReplyBudget {
    fn take(&mut self, now: Instant) -> bool {
        // Callers may pass the same instant for a batch, or an earlier one than the last
        // call: time only ever refills forward.
        if now > self.refilled {
            let refill = now.duration_since(self.refilled).as_secs_f64() * REPLY_RATE;
            self.tokens = (self.tokens + refill).min(REPLY_BURST);
            self.refilled = now;
        }
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Sends discovery datagrams, signed and numbered; owned by the hub.
pub struct Announcer {
    /// The bound discovery socket (a clone of the receiver's).
    socket: UdpSocket,
    /// Signs every datagram.
    identity: Arc<Identity>,
    /// The sequence number of the last datagram sent.
    seq: u64,
    /// The wall clock, in milliseconds since 1970 (numbers survive restarts).
    wall_ms: fn() -> u64,
    /// The interfaces announces go out of.
    scope: Scope,
    /// Port peers listen on for discovery by default.
    port: u16,
    /// Announce on interface broadcast addresses.
    broadcast: bool,
    /// The multicast group announces go to as well (none: off).
    group: Option<Group>,
    /// Discovery over IPv6 (none: off).
    ipv6: Option<Ipv6Discovery>,
    /// Configured extra targets, resolved.
    targets: Vec<SocketAddrV4>,
    /// Limits direct replies.
    replies: ReplyBudget,
    /// Rate limit of the log line about replies skipped for want of budget.
    skipped_log: LogLimit,
}

impl Announcer {
    /// Wraps the discovery socket.
    pub fn new(
        socket: UdpSocket,
        identity: Arc<Identity>,
        wall_ms: fn() -> u64,
        scope: Scope,
        port: u16,
        (broadcast, group, ipv6): (bool, Option<Group>, Option<Ipv6Discovery>),
        targets: Vec<SocketAddrV4>,
    ) -> Self {
        let replies = ReplyBudget { tokens: REPLY_BURST, refilled: Instant::now() };
        let skipped_log = LogLimit::new(JUNK_LOG_INTERVAL);
        Announcer {
            socket,
            identity,
            seq: 0,
            wall_ms,
            scope,
            port,
            broadcast,
            group,
            ipv6,
            targets,
            replies,
            skipped_log,
        }
    }

    /// The next sequence number: the wall clock in milliseconds, so that it keeps growing
    /// across restarts, and one more than the last if the clock stands still or went back.
    fn next_seq(&mut self) -> u64 {
        self.seq = (self.wall_ms)().max(self.seq + 1);
        self.seq
    }

    /// `presence`, numbered and signed as a datagram of `kind`.
    fn presence_datagram(&mut self, presence: &Presence, kind: Due) -> Vec<u8> {
        let presence = Presence { seq: self.next_seq(), ..presence.clone() };
        let datagram = match kind {
            Due::Announce => Datagram::Announce(presence),
            Due::Heartbeat => Datagram::Heartbeat(presence),
        };
        datagram.encode(&*self.identity)
    }

    /// Sends `presence` as `kind` to every announce destination plus `extra` peers
    /// (deduplicated); a heartbeat goes to the IPv6 group only when `ipv6_needed`: where
    /// every peer hears us over IPv4, a third copy of each heartbeat would only add traffic.
    pub fn announce(
        &mut self,
        presence: &Presence,
        kind: Due,
        extra: impl IntoIterator<Item = SocketAddr>,
        ipv6_needed: bool,
    ) {
        let bytes = self.presence_datagram(presence, kind);
        self.send_everywhere(&bytes, extra, kind == Due::Announce || ipv6_needed);
    }

    fn send_everywhere(
        &mut self,
        bytes: &[u8],
        extra: impl IntoIterator<Item = SocketAddr>,
        ipv6_group: bool,
    ) {
        let subnets = self.scope.subnets();
        if let Some(group) = &mut self.group {
            group.send(&self.socket, &subnets, bytes);
        }
        if let Some(ipv6) = self.ipv6.as_mut().filter(|_| ipv6_group) {
            let links = self.scope.ipv6_links().into_iter().map(|(index, _)| index).collect();
            ipv6.send_group(&links, bytes);
        }
        let subnets = if self.broadcast { subnets } else { Vec::new() };
        let mut destinations: BTreeSet<SocketAddr> =
            subnets.iter().map(|subnet| SocketAddrV4::new(subnet.broadcast, self.port).into()).collect();
        destinations.extend(self.targets.iter().map(|target| SocketAddr::V4(*target)));
        // A peer on a link of ours hears the IPv6 group; one on a subnet of ours, the
        // broadcast.
        let reached = |addr: &SocketAddr| match addr {
            SocketAddr::V4(addr) => subnets.iter().any(|subnet| subnet.contains(*addr.ip())),
            SocketAddr::V6(addr) => self.ipv6.is_some() && addr.ip().is_unicast_link_local(),
        };
        destinations.extend(extra.into_iter().filter(|addr| !reached(addr)));
        for destination in destinations {
            self.send(bytes, destination);
        }
    }

    /// The interfaces announces go out of.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether we are found over IPv6 too.
    pub fn ipv6_on(&self) -> bool {
        self.ipv6.is_some()
    }

    /// Replaces the extra targets (the user changed them in the settings).
    pub fn set_targets(&mut self, targets: Vec<SocketAddrV4>) {
        self.targets = targets;
    }

    /// Answers one peer directly, unless replies are over their budget.
    pub fn reply(&mut self, presence: &Presence, to: SocketAddr, now: Instant) {
        self.direct(Datagram::Reply, presence, to, now);
    }

    /// Announces to one address that mDNS named (its Pigeon replies), on the replies'
    /// budget: records are as cheap to make up as announces.
    pub fn ask(&mut self, presence: &Presence, to: SocketAddr, now: Instant) {
        self.direct(Datagram::Announce, presence, to, now);
    }

    fn direct(&mut self, kind: fn(Presence) -> Datagram, presence: &Presence, to: SocketAddr, now: Instant) {
        if !self.replies.take(now) {
            if let Some(count) = self.skipped_log.tick(now) {
                log::info!("skipped {count} replies: more than {REPLY_RATE} announces per second");
            }
            return;
        }
        // Signed afresh each time (tens of microseconds): hundreds at a mass start cost a
        // few milliseconds, and every reply carries a number of its own.
        let presence = Presence { seq: self.next_seq(), ..presence.clone() };
        let bytes = kind(presence).encode(&*self.identity);
        self.send(&bytes, to);
    }

    /// Says goodbye everywhere we announce.
    pub fn goodbye(&mut self, extra: impl IntoIterator<Item = SocketAddr>) {
        let (id, key) = (self.identity.peer_id(), self.identity.public());
        let goodbye = Datagram::Goodbye(Goodbye { id, key, seq: self.next_seq() });
        let bytes = goodbye.encode(&*self.identity);
        self.send_everywhere(&bytes, extra, true);
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        let sent = match (&self.ipv6, to) {
            (_, SocketAddr::V4(_)) => socket::send_datagram(&self.socket, bytes, to),
            (Some(ipv6), SocketAddr::V6(_)) => ipv6.send(bytes, to),
            (None, SocketAddr::V6(_)) => return,
        };
        // UDP is best effort by design: a failed send (no route, interface down) is retried by
        // the next heartbeat, so it is only worth a debug line.
        if let Err(err) = sent {
            log::debug!("announce to {to}: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replies_stay_within_the_budget_whatever_order_the_clock_is_read_in() {
        let start = Instant::now();
        let mut budget = ReplyBudget { tokens: REPLY_BURST, refilled: start };
        let mut given = 0u32;
        // A flood for 10 s, the hub reading the clock once per batch of 64, late by up to
        // a batch: instants repeat and sometimes go back.
        for n in 0..100_000u32 {
            let batch_start = start + Duration::from_micros(u64::from(n / 64) * 6400);
            let now = if n % 2 == 0 {
                batch_start
            } else {
                batch_start.checked_sub(Duration::from_millis(3)).unwrap_or(start)
            };
            given += u32::from(budget.take(now));
        }
        let most = REPLY_BURST + REPLY_RATE * 10.0;
        assert!(f64::from(given) <= most, "{given} replies, at most {most}");
        assert!(f64::from(given) >= most - 1.0, "{given} replies: the budget refills");
    }
}
