//! IPv4 multicast for discovery, shared by the families that use a group (Pigeon's own and
//! LocalSend's): the group is joined on every interface we announce on — also on ones that
//! come up after the start, such as Wi-Fi that connects after the login — and each datagram
//! goes out once per interface, since a multicast leaves by one interface only.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use super::interfaces::{Scope, Subnet};
use super::socket;

/// A group we belong to on the interfaces we use.
pub struct Group {
    /// The group's address and port.
    addr: SocketAddrV4,
    /// The socket that joins (and so receives the group).
    member: UdpSocket,
    /// Our addresses on the interfaces joined so far.
    joined: BTreeSet<Ipv4Addr>,
}

impl Group {
    /// Prepares membership of `group` at `port` on the interfaces of `scope`. `member` is
    /// the family's socket when it is bound to every address at `port`: it receives the
    /// group itself. Otherwise a second socket, bound to the group's address, does
    /// (returned for the family to receive on): a socket bound to a single address, or to
    /// another port, does not see the group.
    pub fn open(
        group: Ipv4Addr,
        scope: &Scope,
        port: u16,
        member: Option<&UdpSocket>,
    ) -> std::io::Result<(Group, Option<UdpSocket>)> {
        let addr = SocketAddrV4::new(group, port);
        let (member, receiver) = match member {
            Some(udp) => (udp.try_clone()?, None),
            None => {
                let receiver = socket::udp_socket(addr)?;
                (receiver.try_clone()?, Some(receiver))
            }
        };
        let mut group = Group { addr, member, joined: BTreeSet::new() };
        group.refresh(&scope.subnets());
        Ok((group, receiver))
    }

    /// [`Group::open`], or none with a warning naming `family`: discovery then goes on by
    /// the other ways.
    pub fn open_or_warn(
        family: &str,
        group: Ipv4Addr,
        scope: &Scope,
        port: u16,
        member: Option<&UdpSocket>,
    ) -> (Option<Group>, Option<UdpSocket>) {
        match Group::open(group, scope, port, member) {
            Ok((group, receiver)) => (Some(group), receiver),
            Err(err) => {
                log::warn!("{family}: no multicast on {group}:{port} ({err})");
                (None, None)
            }
        }
    }

    /// Joins on the interfaces of `subnets` not joined yet, and forgets those gone (the kernel
    /// drops a membership with its interface, so one that comes back is joined again).
    pub fn refresh(&mut self, subnets: &[Subnet]) {
        let current: BTreeSet<Ipv4Addr> = subnets.iter().map(|subnet| subnet.ip).collect();
        self.joined.retain(|ip| current.contains(ip));
        for ip in current {
            if self.joined.contains(&ip) {
                continue;
            }
            match self.member.join_multicast_v4(self.addr.ip(), &ip) {
                Ok(()) => {}
                // Already a member: the interface went and came back between two looks.
                Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(err) => {
                    log::debug!("cannot join {} on {ip}: {err}", self.addr.ip());
                    continue;
                }
            }
            self.joined.insert(ip);
        }
    }

    /// Sends `bytes` to the group out of each interface of `subnets` (joining any new one),
    /// from `udp`, the family's discovery socket, so that answers come back to it.
    pub fn send(&mut self, udp: &UdpSocket, subnets: &[Subnet], bytes: &[u8]) {
        self.refresh(subnets);
        for subnet in subnets {
            let sent = socket2::SockRef::from(udp)
                .set_multicast_if_v4(&subnet.ip)
                .and_then(|()| socket::send_datagram(udp, bytes, self.addr));
            // Best effort like every discovery datagram: the next one tries again.
            if let Err(err) = sent {
                log::debug!("multicast to {} on {}: {err}", self.addr, subnet.ip);
            }
        }
    }
}
