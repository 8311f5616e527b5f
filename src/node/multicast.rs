//! IPv4 multicast for discovery, shared by the families that use a group (Pigeon's own and
//! LocalSend's): the group is joined on every interface we announce on — also on ones that
//! come up after the start, such as Wi-Fi that connects after the login — and each datagram
//! goes out once per interface, since a multicast leaves by one interface only.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use super::interfaces::{Scope, Subnet};
use super::socket;

/// The interfaces one socket has joined a group on, each by `K`: the interface's IPv4
/// address, or its index for IPv6.
pub struct Memberships<K>(BTreeSet<K>);

impl<K: Ord + Copy + Display> Memberships<K> {
    /// None yet.
    pub fn new() -> Self {
        Memberships(BTreeSet::new())
    }

    /// Joins (by `join`) on each interface of `current` not joined yet, and forgets those
    /// gone: the kernel drops a membership with its interface, so one that comes back is
    /// joined again. An interface that cannot join now is tried again next time.
    pub fn refresh(&mut self, current: &BTreeSet<K>, mut join: impl FnMut(K) -> io::Result<()>) {
        self.0.retain(|key| current.contains(key));
        for &key in current {
            if self.0.contains(&key) {
                continue;
            }
            match already_member_ok(join(key)) {
                Ok(()) => {
                    self.0.insert(key);
                }
                Err(err) => log::debug!("cannot join a group on {key}: {err}"),
            }
        }
    }
}

/// A join's outcome, where "already a member" counts as joined: the interface went and came
/// back between two looks, or has a second address.
pub fn already_member_ok(joined: io::Result<()>) -> io::Result<()> {
    match joined {
        Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
        other => other,
    }
}

/// A group we belong to on the interfaces we use.
pub struct Group {
    /// The group's address and port.
    addr: SocketAddrV4,
    /// The socket that joins (and so receives the group).
    member: UdpSocket,
    /// The interfaces joined so far, by our address on each.
    joined: Memberships<Ipv4Addr>,
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
        let mut group = Group { addr, member, joined: Memberships::new() };
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
        let (member, group) = (&self.member, *self.addr.ip());
        self.joined.refresh(&current, |ip| member.join_multicast_v4(&group, &ip));
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
