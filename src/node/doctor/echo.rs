//! Whether our own broadcasts and multicasts come back to us: the kernel hands a copy of
//! each to our own sockets through the same input path, and so through the local firewall,
//! as the datagrams of others on the network. One that does not come back is dropped here,
//! before any network could. Each way discovery uses is tried on each interface it uses:
//! broadcast, Pigeon's IPv4 group, Pigeon's IPv6 group, and mDNS (a query for Pigeons).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use super::{Echo, Way};
use crate::config::Settings;
use crate::node::interfaces::Subnet;
use crate::node::multicast::already_member_ok;
use crate::node::socket;
use crate::protocol::announce::{MULTICAST_GROUP, MULTICAST_GROUP_V6};

/// How long to wait for the copies: they come back in microseconds unless dropped.
const WAIT: Duration = Duration::from_millis(500);

/// What the probe datagrams start with: not a Pigeon datagram, so a Pigeon running here
/// drops (and counts) them.
const TAG: &str = "pigeon-doctor";

/// The mDNS group and port.
const MDNS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353);

/// Datagrams sent on one socket, each with the bytes to know its copy by.
struct Trial {
    socket: UdpSocket,
    sent: Vec<(Echo, Vec<u8>)>,
}

impl Trial {
    fn bound(addr: SocketAddr) -> Option<Trial> {
        match socket::udp_socket(addr) {
            Ok(socket) => Some(Trial { socket, sent: Vec::new() }),
            Err(err) => {
                log::info!("doctor: cannot listen on {addr} ({err}); no echo test there");
                None
            }
        }
    }

    /// Sends our tagged datagram (`nonce`, the way, the interface) by `method`.
    fn send_tagged(&mut self, nonce: u64, method: Way, interface: &str, to: SocketAddr) {
        let bytes = format!("{TAG} {nonce:016x} {} {interface}", method.code()).into_bytes();
        self.send(method, interface, bytes, to);
    }

    fn send(&mut self, method: Way, interface: &str, bytes: Vec<u8>, to: SocketAddr) {
        if let Err(err) = socket::send_datagram(&self.socket, &bytes, to) {
            log::info!("doctor: {method:?} on {interface}: {err}");
        }
        self.sent.push((Echo { interface: interface.to_owned(), method, came_back: false }, bytes));
    }

    /// Waits until `deadline` at most for the copies, and says which came. Trials are
    /// waited for one after the other: past the deadline, what is queued already is read.
    fn copies(mut self, deadline: Instant) -> Vec<Echo> {
        let mut buf = [0u8; 512];
        while self.sent.iter().any(|(echo, _)| !echo.came_back) {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            if self.socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            let Ok((len, _)) = self.socket.recv_from(&mut buf) else { break };
            let got = buf.get(..len).unwrap_or_default();
            if let Some((echo, _)) = self.sent.iter_mut().find(|(_, sent)| sent == got) {
                echo.came_back = true;
            }
        }
        self.sent.into_iter().map(|(echo, _)| echo).collect()
    }
}

/// Sends one datagram each way the settings have on, out of each used interface (`used`,
/// IPv4; `ipv6_links`, by index and name, empty when IPv6 is off), and says which came
/// back.
pub fn listen_for_our_own(
    settings: &Settings,
    used: &[(String, Subnet)],
    ipv6_links: &[(u32, String)],
) -> Vec<Echo> {
    let port = settings.port;
    let nonce = crate::node::random_seed();
    let mut trials = Vec::new();
    if let Some(mut trial) = Trial::bound(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into()) {
        let group = Ipv4Addr::from(MULTICAST_GROUP);
        for (name, subnet) in used {
            if settings.broadcast {
                trial.send_tagged(
                    nonce,
                    Way::Broadcast,
                    name,
                    SocketAddrV4::new(subnet.broadcast, port).into(),
                );
            }
            if settings.multicast && joined_v4(&trial.socket, group, subnet.ip) {
                trial.send_tagged(nonce, Way::Multicast, name, SocketAddrV4::new(group, port).into());
            }
        }
        trials.push(trial);
    }
    if !ipv6_links.is_empty()
        && let Some(mut trial) = Trial::bound(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
    {
        let group = Ipv6Addr::from(MULTICAST_GROUP_V6);
        for (index, name) in ipv6_links {
            if trial.socket.join_multicast_v6(&group, *index).is_ok() {
                trial.send_tagged(nonce, Way::Ipv6, name, SocketAddrV6::new(group, port, 0, *index).into());
            }
        }
        trials.push(trial);
    }
    if settings.uses_mdns()
        && let Some(mut trial) = Trial::bound(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, MDNS.port()).into())
    {
        let first = u16::try_from(nonce & 0xffff).unwrap_or_default();
        for (n, (name, subnet)) in (0u16..).zip(used) {
            if joined_v4(&trial.socket, *MDNS.ip(), subnet.ip) {
                trial.send(Way::Mdns, name, pigeon_query(first.wrapping_add(n)), MDNS.into());
            }
        }
        trials.push(trial);
    }
    let deadline = Instant::now() + WAIT;
    trials.into_iter().flat_map(|trial| trial.copies(deadline)).collect()
}

/// Joins `group` on the interface holding `ip` and sends out of it from now on.
fn joined_v4(socket: &UdpSocket, group: Ipv4Addr, ip: Ipv4Addr) -> bool {
    already_member_ok(socket.join_multicast_v4(&group, &ip)).is_ok()
        && socket2::SockRef::from(socket).set_multicast_if_v4(&ip).is_ok()
}

/// An mDNS query for Pigeons (`_pigeon._tcp.local.` PTR), numbered `id` so its copy is
/// known: a real query, which Pigeons on the network may answer.
fn pigeon_query(id: u16) -> Vec<u8> {
    let mut query = id.to_be_bytes().to_vec();
    query.extend([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["_pigeon", "_tcp", "local"] {
        query.push(u8::try_from(label.len()).unwrap_or(0));
        query.extend(label.as_bytes());
    }
    query.extend([0, 0, 12, 0, 1]);
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mdns_query_is_one_question_for_pigeons() {
        let query = pigeon_query(0xabcd);
        assert_eq!(&query[..12], [0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&query[12..], b"\x07_pigeon\x04_tcp\x05local\x00\x00\x0c\x00\x01");
    }
}
