//! The machine's network interfaces, as discovery needs them: the broadcast address of each
//! IPv4 subnet we are on, read afresh whenever it is needed so that interfaces that come,
//! go or change address are picked up without a restart.

use std::net::{Ipv4Addr, SocketAddrV4};

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
    /// Whether `ip` is on this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
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

/// Addresses to bind to receive the broadcasts of every subnet we use at `port`, for a node
/// whose own socket does not see them: on Linux a socket bound to one unicast address, or to
/// another port, does not.
pub fn broadcast_receiver_addrs(bind: Ipv4Addr, port: u16) -> Vec<SocketAddrV4> {
    broadcast_subnets(bind).iter().map(|subnet| SocketAddrV4::new(subnet.broadcast, port)).collect()
}
