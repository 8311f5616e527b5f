//! The machine's network interfaces, as discovery needs them: the broadcast address of each
//! IPv4 subnet we use and the index of each interface with IPv6 — all but loopback,
//! point-to-point links and the virtual bridges of containers and VMs, or only those chosen —
//! read afresh whenever it is needed so that interfaces that come, go or change address are
//! picked up without a restart.

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

/// Name prefixes of the virtual bridges and links of containers and virtual machines
/// (Docker, libvirt, VirtualBox, VMware, LXC/LXD, Podman, Kubernetes networks): skipped
/// unless chosen, since no colleague sits behind them and announcing there only adds noise.
const VIRTUAL_PREFIXES: [&str; 13] = [
    "docker", "br-", "veth", "virbr", "vnet", "vboxnet", "vmnet", "lxcbr", "lxdbr", "podman", "cni",
    "flannel", "cali",
];

/// Which interfaces discovery uses: with a bound address, that address's interface only;
/// else those chosen by name, or, when none are, every one but the virtual ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The address the node is bound to (unspecified: every interface).
    pub bind: Ipv4Addr,
    /// Interface names to use; empty: all but the virtual ones.
    pub chosen: Vec<String>,
}

/// Why an interface is not used; written in snake case in the doctor's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skipped {
    /// Loopback: the machine itself.
    Loopback,
    /// Down, or no link.
    Down,
    /// A point-to-point link (most VPNs) or a /31 or /32: nothing to broadcast to.
    PointToPoint,
    /// The node is bound to an address on another interface.
    NotBound,
    /// Interfaces were chosen, and this is not one of them.
    NotChosen,
    /// A container's or virtual machine's bridge, not chosen.
    Virtual,
}

/// One IPv4 address of an interface, used or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surveyed {
    /// The interface's name.
    pub name: String,
    /// Its subnet.
    pub subnet: Subnet,
    /// Why it is skipped; none: used.
    pub skipped: Option<Skipped>,
}

impl Scope {
    /// The scope `settings` ask for.
    pub fn of(settings: &crate::config::Settings) -> Scope {
        Scope { bind: settings.bind, chosen: settings.interfaces.clone() }
    }

    /// Every IPv4 address of every interface, and whether discovery uses it. Read afresh at
    /// every call, so that interfaces that come, go or change address count without a
    /// restart.
    pub fn survey(&self) -> Vec<Surveyed> {
        all_addresses()
            .into_iter()
            .filter_map(|iface| {
                let if_addrs::IfAddr::V4(v4) = &iface.addr else { return None };
                let subnet = Subnet {
                    ip: v4.ip,
                    netmask: v4.netmask,
                    broadcast: v4
                        .broadcast
                        .unwrap_or_else(|| Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask))),
                };
                let skipped = self.skipped(&iface, Some(v4));
                Some(Surveyed { name: iface.name, subnet, skipped })
            })
            .collect()
    }

    /// Why discovery leaves out `iface`, for its IPv4 address `v4` or for IPv6 (none); none:
    /// used.
    fn skipped(&self, iface: &if_addrs::Interface, v4: Option<&if_addrs::Ifv4Addr>) -> Option<Skipped> {
        if iface.is_loopback() {
            Some(Skipped::Loopback)
        } else if !iface.is_oper_up() {
            Some(Skipped::Down)
        } else if iface.is_p2p() || v4.is_some_and(|v4| v4.prefixlen >= 31) {
            Some(Skipped::PointToPoint)
        } else if !self.bind.is_unspecified() {
            (v4.map(|v4| v4.ip) != Some(self.bind)).then_some(Skipped::NotBound)
        } else if !self.chosen.is_empty() {
            (!self.chosen.contains(&iface.name)).then_some(Skipped::NotChosen)
        } else {
            is_virtual(&iface.name).then_some(Skipped::Virtual)
        }
    }

    /// Whether discovery uses this address of an interface (IPv6 ones only when bound to
    /// every address).
    pub fn uses(&self, iface: &if_addrs::Interface) -> bool {
        let v4 = match &iface.addr {
            if_addrs::IfAddr::V4(v4) => Some(v4),
            if_addrs::IfAddr::V6(_) => None,
        };
        self.skipped(iface, v4).is_none()
    }

    /// Our routable IPv6 addresses (not link-local) on the interfaces discovery uses: what
    /// an invite link offers besides the IPv4 ones.
    pub fn ipv6_routable(&self) -> Vec<std::net::Ipv6Addr> {
        all_addresses()
            .into_iter()
            .filter(|iface| self.uses(iface))
            .filter_map(|iface| match iface.addr {
                if_addrs::IfAddr::V6(v6) if !v6.ip.is_unicast_link_local() => Some(v6.ip),
                _ => None,
            })
            .collect()
    }

    /// The interfaces with IPv6 that discovery uses now, each once by index, with their
    /// names: where IPv6 link-local multicasts go out (none when bound to an IPv4 address).
    pub fn ipv6_links(&self) -> Vec<(u32, String)> {
        let mut links: Vec<(u32, String)> = all_addresses()
            .into_iter()
            .filter(|iface| matches!(iface.addr, if_addrs::IfAddr::V6(_)) && self.uses(iface))
            .filter_map(|iface| Some((iface.index?, iface.name)))
            .collect();
        links.sort_unstable();
        links.dedup_by_key(|(index, _)| *index);
        links
    }

    /// The subnets discovery uses now (see [`Scope::survey`]).
    pub fn subnets(&self) -> Vec<Subnet> {
        self.survey()
            .into_iter()
            .filter(|surveyed| surveyed.skipped.is_none())
            .map(|used| used.subnet)
            .collect()
    }
}

/// The name of the interface with index `index` (a link-local IPv6 address's scope); its
/// number when it has none (it went away).
pub fn name_of(index: u32) -> String {
    all_addresses()
        .into_iter()
        .find(|iface| iface.index == Some(index))
        .map_or_else(|| index.to_string(), |iface| iface.name)
}

/// Every address of every interface (none, with a warning, when they cannot be listed).
fn all_addresses() -> Vec<if_addrs::Interface> {
    if_addrs::get_if_addrs().unwrap_or_else(|err| {
        log::warn!("cannot list network interfaces: {err}");
        Vec::new()
    })
}

fn is_virtual(name: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Addresses to bind to receive the broadcasts of every subnet we use at `port`, for a node
/// whose own socket does not see them: on Linux a socket bound to one unicast address, or to
/// another port, does not.
pub fn broadcast_receiver_addrs(scope: &Scope, port: u16) -> Vec<SocketAddrV4> {
    scope.subnets().iter().map(|subnet| SocketAddrV4::new(subnet.broadcast, port)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_of_containers_and_vms_are_virtual_and_real_interfaces_are_not() {
        for name in ["docker0", "br-3f2a1c", "veth12ab", "virbr0", "vboxnet0", "lxcbr0", "podman1", "cni0"] {
            assert!(is_virtual(name), "{name}");
        }
        for name in ["eth0", "enp3s0", "wlan0", "wlp2s0", "bond0", "tap0", "tun0", "br0"] {
            assert!(!is_virtual(name), "{name}");
        }
    }
}
