//! IPv6 for native discovery: a socket bound to every IPv6 address at the node's port, a
//! member of Pigeon's link-local group on every interface with IPv6 that discovery uses —
//! also on ones that come up later — and announces sent to that group out of each of them
//! (a link-local multicast leaves by the interface its scope names, so once per interface).

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

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
    joined: BTreeSet<u32>,
}

impl Ipv6Discovery {
    /// Binds `[::]:port` for `group` at `discovery_port`.
    pub fn open(group: Ipv6Addr, port: u16, discovery_port: u16) -> io::Result<Ipv6Discovery> {
        let socket = socket::udp_socket(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))?;
        let group = SocketAddrV6::new(group, discovery_port, 0, 0);
        Ok(Ipv6Discovery { socket, group, member: port == discovery_port, joined: BTreeSet::new() })
    }

    /// The socket, for the receiver thread.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Joins on the interfaces `links` (indexes) not joined yet, and forgets those gone (the
    /// kernel drops a membership with its interface).
    fn refresh(&mut self, links: &[u32]) {
        if !self.member {
            return;
        }
        self.joined.retain(|index| links.contains(index));
        for &index in links {
            if self.joined.contains(&index) {
                continue;
            }
            match self.socket.join_multicast_v6(self.group.ip(), index) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(err) => {
                    log::debug!("cannot join {} on interface {index}: {err}", self.group.ip());
                    continue;
                }
            }
            self.joined.insert(index);
        }
    }

    /// Sends `bytes` to the group out of each interface of `links` (joining any new one).
    pub fn send_group(&mut self, links: &[u32], bytes: &[u8]) {
        self.refresh(links);
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
