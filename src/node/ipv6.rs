//! IPv6 for native discovery: a socket bound to every IPv6 address at the node's port, a
//! member of Pigeon's link-local group on every interface with IPv6 that discovery uses —
//! also on ones that come up later — and announces sent to that group out of each of them
//! (a link-local multicast leaves by the interface its scope names, so once per interface).

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

use super::multicast::Memberships;
use super::socket;

/// Native discovery over IPv6.
pub struct Ipv6Discovery {
    /// Bound to `[::]` at the node's port: sends, and receives replies and the group.
    socket: UdpSocket,
    /// The group and the port it is sent to (the discovery port).
    group: SocketAddrV6,
    /// Whether `socket` sits at the discovery port and so hears the group. Another user's
    /// Pigeon on this computer holds that port: this one then only sends to the group and
    /// hears the replies (IPv4 finds it as before).
    member: bool,
    /// The interfaces joined so far, by index.
    joined: Memberships<u32>,
}

impl Ipv6Discovery {
    /// Binds `[::]:port` for `group` at `discovery_port`.
    pub fn open(group: Ipv6Addr, port: u16, discovery_port: u16) -> io::Result<Ipv6Discovery> {
        let socket = socket::udp_socket(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))?;
        let group = SocketAddrV6::new(group, discovery_port, 0, 0);
        Ok(Ipv6Discovery { socket, group, member: port == discovery_port, joined: Memberships::new() })
    }

    /// The socket, for the receiver thread.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Sends `bytes` to the group out of each interface of `links` (by index), joining the
    /// group on any new one when our socket hears it.
    pub fn send_group(&mut self, links: &BTreeSet<u32>, bytes: &[u8]) {
        if self.member {
            let (socket, group) = (&self.socket, *self.group.ip());
            self.joined.refresh(links, |index| socket.join_multicast_v6(&group, index));
        }
        for &index in links {
            let to = SocketAddrV6::new(*self.group.ip(), self.group.port(), 0, index);
            // Best effort like every discovery datagram: the next one tries again.
            if let Err(err) = socket::send_datagram(&self.socket, bytes, to) {
                log::debug!("multicast to {to}: {err}");
            }
        }
    }

    /// Sends `bytes` to one peer.
    pub fn send(&self, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        socket::send_datagram(&self.socket, bytes, to)
    }
}
