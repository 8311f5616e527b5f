//! UDP discovery: a receiver thread that decodes datagrams for the hub, and the [`Announcer`]
//! the hub uses to send announces, heartbeats, replies and goodbyes.
//!
//! Where announces go: the broadcast address of every up, non-loopback IPv4 interface (only
//! the bound address's interface when bound to one address), every configured target, and
//! every online peer outside those broadcast domains (so a peer reached only through a
//! target keeps hearing from us even if its own targets do not include us).

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::hub::NetEvent;
use super::log_limit::{JUNK_LOG_INTERVAL, LogLimit};
use super::threads::StopFlag;
use crate::protocol::announce::{Datagram, Goodbye, MAX_DATAGRAM, Presence};
use crate::protocol::error::DecodeError;
use crate::protocol::ipmsg;

/// Counters the receiver threads update and the hub reports in `Stats` events.
#[derive(Default)]
pub struct Counters {
    /// Datagrams dropped because they did not decode.
    pub malformed_datagrams: AtomicU64,
    /// Datagrams decoded and handed to the hub.
    pub datagrams: AtomicU64,
}

/// Receives native discovery datagrams on `socket` until `stop` is raised.
pub fn receive_loop(socket: &UdpSocket, net: &Sender<NetEvent>, stop: &StopFlag, counters: &Counters) {
    receive_decoded(socket, net, stop, counters, MAX_DATAGRAM, |from, bytes| {
        Datagram::decode(bytes).map(|datagram| NetEvent::Datagram { from, datagram })
    });
}

/// Receives IP Messenger packets on `socket` until `stop` is raised.
pub fn ipmsg_receive_loop(socket: &UdpSocket, net: &Sender<NetEvent>, stop: &StopFlag, counters: &Counters) {
    receive_decoded(socket, net, stop, counters, ipmsg::MAX_RECEIVE, |from, bytes| {
        ipmsg::Packet::decode(bytes).map(|packet| NetEvent::IpMsg { from, packet })
    });
}

/// Receives on `socket` until `stop` is raised, handing what `decode` makes of each datagram
/// (at most `max_len` bytes) to the hub; undecodable ones are counted and dropped.
fn receive_decoded(
    socket: &UdpSocket,
    net: &Sender<NetEvent>,
    stop: &StopFlag,
    counters: &Counters,
    max_len: usize,
    decode: impl Fn(SocketAddrV4, &[u8]) -> Result<NetEvent, DecodeError>,
) {
    let mut buf = vec![0u8; max_len + 1];
    let mut log_limit = LogLimit::new(JUNK_LOG_INTERVAL);
    while !stop.is_raised() {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                log::debug!("discovery receive: {err}");
                continue;
            }
        };
        if stop.is_raised() {
            return;
        }
        let SocketAddr::V4(from) = from else { continue };
        let bytes = buf.get(..len).unwrap_or_default();
        match decode(from, bytes) {
            Ok(event) => {
                counters.datagrams.fetch_add(1, Ordering::Relaxed);
                if net.send(event).is_err() {
                    return;
                }
            }
            Err(err) => {
                counters.malformed_datagrams.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = log_limit.tick(Instant::now()) {
                    log::info!("dropped {count} malformed datagram(s), the last from {from}: {err}");
                }
            }
        }
    }
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
        let refill = now.saturating_duration_since(self.refilled).as_secs_f64() * REPLY_RATE;
        self.tokens = (self.tokens + refill).min(REPLY_BURST);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Sends discovery datagrams; owned by the hub.
pub struct Announcer {
    /// The bound discovery socket (a clone of the receiver's).
    socket: UdpSocket,
    /// Address the node is bound to; unspecified means every interface.
    bind: Ipv4Addr,
    /// Port peers listen on for discovery by default.
    port: u16,
    /// Announce on interface broadcast addresses.
    broadcast: bool,
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
        bind: Ipv4Addr,
        port: u16,
        broadcast: bool,
        targets: Vec<SocketAddrV4>,
    ) -> Self {
        let replies = ReplyBudget { tokens: REPLY_BURST, refilled: Instant::now() };
        let skipped_log = LogLimit::new(JUNK_LOG_INTERVAL);
        Announcer { socket, bind, port, broadcast, targets, replies, skipped_log }
    }

    /// Sends `datagram` to every announce destination plus `extra` peers (deduplicated).
    pub fn announce(&self, datagram: &Datagram, extra: impl IntoIterator<Item = SocketAddrV4>) {
        let subnets = if self.broadcast { broadcast_subnets(self.bind) } else { Vec::new() };
        let mut destinations: BTreeSet<SocketAddrV4> =
            subnets.iter().map(|subnet| SocketAddrV4::new(subnet.broadcast, self.port)).collect();
        destinations.extend(self.targets.iter().copied());
        destinations.extend(extra.into_iter().filter(|addr| !subnets.iter().any(|s| s.contains(*addr.ip()))));
        let bytes = datagram.encode();
        for destination in destinations {
            self.send(&bytes, destination);
        }
    }

    /// Replaces the extra targets (the user changed them in the settings).
    pub fn set_targets(&mut self, targets: Vec<SocketAddrV4>) {
        self.targets = targets;
    }

    /// Answers one peer directly, unless replies are over their budget.
    pub fn reply(&mut self, presence: &Presence, to: SocketAddrV4) {
        let now = Instant::now();
        if !self.replies.take(now) {
            if let Some(count) = self.skipped_log.tick(now) {
                log::info!("skipped {count} replies: more than {REPLY_RATE} announces per second");
            }
            return;
        }
        self.send(&Datagram::Reply(presence.clone()).encode(), to);
    }

    /// Says goodbye everywhere we announce.
    pub fn goodbye(&self, goodbye: Goodbye, extra: impl IntoIterator<Item = SocketAddrV4>) {
        self.announce(&Datagram::Goodbye(goodbye), extra);
    }

    fn send(&self, bytes: &[u8], to: SocketAddrV4) {
        // UDP is best effort by design: a failed send (no route, interface down) is retried by
        // the next heartbeat, so it is only worth a debug line.
        if let Err(err) = self.socket.send_to(bytes, to) {
            log::debug!("announce to {to}: {err}");
        }
    }
}

/// An IPv4 subnet we can broadcast on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// Our address on it.
    pub ip: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// Its broadcast address.
    pub broadcast: Ipv4Addr,
}

impl Subnet {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        u32::from(self.ip) & mask == u32::from(ip) & mask
    }
}

/// Up, non-loopback IPv4 interfaces with a broadcast address; only the one holding `bind`
/// when the node is bound to a single address. Read afresh at every announce, so interfaces
/// that come, go or change address are picked up without a restart.
pub fn broadcast_subnets(bind: Ipv4Addr) -> Vec<Subnet> {
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces,
        Err(err) => {
            log::warn!("cannot list network interfaces: {err}");
            return Vec::new();
        }
    };
    interfaces
        .into_iter()
        .filter(|iface| !iface.is_loopback() && !iface.is_p2p() && iface.is_oper_up())
        .filter_map(|iface| match iface.addr {
            if_addrs::IfAddr::V4(v4) => Some(v4),
            if_addrs::IfAddr::V6(_) => None,
        })
        .filter(|v4| bind.is_unspecified() || v4.ip == bind)
        .filter(|v4| v4.prefixlen < 31)
        .map(|v4| Subnet {
            ip: v4.ip,
            netmask: v4.netmask,
            broadcast: v4
                .broadcast
                .unwrap_or_else(|| Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask))),
        })
        .collect()
}

/// Receives datagrams sent to a subnet's broadcast address. A socket bound to one unicast
/// address does not see broadcasts on Linux, so a node bound to one address also binds the
/// broadcast address of that address's interface.
pub fn broadcast_receiver_addr(bind: Ipv4Addr, port: u16) -> Option<SocketAddrV4> {
    if bind.is_unspecified() {
        return None;
    }
    broadcast_subnets(bind).first().map(|subnet| SocketAddrV4::new(subnet.broadcast, port))
}
