//! The network doctor: why someone does not show up, in facts the user can act on. It lists
//! each interface and whether discovery uses it, whether our ports are free or held, whether
//! our own broadcasts and multicasts come back to us through the local firewall, what the
//! firewall's rules would do to the ports (and the command that opens them), which peers
//! were heard on which interface, and, given an address, whether it can be reached. The
//! findings come as codes (`Finding`), so that the command line and the window word them
//! in their own language; the most likely fix comes first.
//!
//! Everything here blocks (binds, waits for echoes, runs the firewall's tools): callers run
//! it off the window's thread.

mod echo;
mod firewall;
mod probe;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::Serialize;

use super::interfaces::{Scope, Subnet};
use crate::config::Settings;
use crate::protocol::Family;

pub use super::interfaces::Skipped;
pub use firewall::Firewall;
pub use probe::{Probe, ProbeOutcome};

/// The JSON's version: a field is only ever added; a change of meaning gets a new number.
pub const REPORT_VERSION: u32 = 1;

/// Everything the doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The address the node is bound to (`0.0.0.0`: every interface).
    pub bind: Ipv4Addr,
    /// Each IPv4 address of each interface.
    pub interfaces: Vec<InterfaceReport>,
    /// The interfaces with IPv6 that discovery uses (none when IPv6 is off or the node is
    /// bound to one address).
    pub ipv6: Vec<String>,
    /// Our ports.
    pub ports: Vec<PortReport>,
    /// Whether our own datagrams came back, per used interface and way.
    pub echoes: Vec<Echo>,
    /// The local firewall, as far as its tools tell.
    pub firewall: Firewall,
    /// Peers listed, per family and interface.
    pub heard: Vec<Heard>,
    /// The probe of an address, when one was given.
    pub probe: Option<Probe>,
    /// What to do, the most likely fix first; empty when nothing looks wrong.
    pub findings: Vec<Finding>,
}

/// An interface's address and whether discovery uses it.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceReport {
    /// Its name (`eth0`).
    pub name: String,
    /// Our address on it.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u32,
    /// Its broadcast address.
    pub broadcast: Ipv4Addr,
    /// Used for discovery.
    pub used: bool,
    /// Why not (`loopback`, `down`, `point_to_point`, `not_bound`, `not_chosen`,
    /// `virtual`); none when used.
    pub skipped: Option<Skipped>,
}

/// One of our ports.
#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    /// The family using it (`pigeon`, `ipmsg`, `localsend`).
    pub family: Family,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// The port.
    pub port: u16,
    /// Whether it is free.
    pub state: PortState,
}

/// Whether a port is free; written in snake case in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// Nothing holds it.
    Free,
    /// A program holds it (maybe another Pigeon).
    InUse,
    /// The Pigeon running on this data folder holds it.
    Ours,
}

/// A way of being found, as the echo test tries it; written in snake case in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Way {
    /// The interface's broadcast address.
    Broadcast,
    /// Pigeon's IPv4 group.
    Multicast,
    /// Pigeon's IPv6 group.
    Ipv6,
    /// A query for Pigeons.
    Mdns,
}

impl Way {
    /// Its name in the JSON.
    pub fn code(self) -> &'static str {
        match self {
            Way::Broadcast => "broadcast",
            Way::Multicast => "multicast",
            Way::Ipv6 => "ipv6",
            Way::Mdns => "mdns",
        }
    }
}

/// Whether a datagram we sent came back to us.
#[derive(Debug, Clone, Serialize)]
pub struct Echo {
    /// The interface it left by.
    pub interface: String,
    /// How it was sent.
    pub method: Way,
    /// It came back within the wait (else the local firewall, or the interface, dropped it).
    pub came_back: bool,
}

/// Peers listed of one family on one interface.
#[derive(Debug, Clone, Serialize)]
pub struct Heard {
    /// `pigeon`, `ipmsg` or `localsend`.
    pub family: Family,
    /// The interface whose subnet holds their addresses, or that a link-local IPv6 address
    /// names (`other` for addresses on none of ours: reached through a router, an mDNS
    /// gateway or an invite).
    pub interface: String,
    /// How many.
    pub peers: usize,
}

/// Something to do about what the doctor found, most likely first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The local firewall drops Pigeon's port.
    FirewallDrops {
        /// Which tool holds the rule (`nftables`, `iptables`, `ufw`, `firewalld`).
        tool: String,
        /// The rule or policy, as the tool shows it.
        rule: String,
        /// The command that lets Pigeon through.
        fix: String,
    },
    /// No interface to find peers on.
    NoNetwork,
    /// Interfaces are up, but discovery uses none of them (all skipped or not chosen).
    AllSkipped,
    /// The node is bound to an address no usable interface holds (loopback, or gone).
    BoundAway {
        /// The address.
        address: Ipv4Addr,
    },
    /// Another program holds one of the ports.
    PortInUse {
        /// `udp` or `tcp`.
        protocol: String,
        /// The port.
        port: u16,
    },
    /// Our own datagrams do not come back on an interface.
    NoEcho {
        /// The interface.
        interface: String,
        /// How it was sent.
        method: Way,
    },
    /// The probed address did not answer.
    ProbeFailed {
        /// The address.
        addr: String,
        /// What happened.
        outcome: ProbeOutcome,
    },
    /// Nobody is listed: others may be on another subnet or a VPN.
    NobodyHeard,
}

/// What the doctor is asked to look at.
pub struct Ask<'a> {
    /// The settings in effect.
    pub settings: &'a Settings,
    /// Whether the Pigeon of this data folder is running (its ports are then ours).
    pub running: bool,
    /// An address to probe, `host` or `host:port` (default: our port).
    pub probe: Option<&'a str>,
}

/// Examines this machine and the network, by `ask`; who was heard comes after, with
/// [`Report::heard_from`] (finding out starts a node, which would hold the ports examined).
pub fn examine(ask: &Ask<'_>) -> Report {
    let settings = ask.settings;
    let surveyed = Scope::of(settings).survey();
    let interfaces: Vec<InterfaceReport> = surveyed
        .iter()
        .map(|one| InterfaceReport {
            name: one.name.clone(),
            address: one.subnet.ip,
            prefix: u32::from(one.subnet.netmask).count_ones(),
            broadcast: one.subnet.broadcast,
            used: one.skipped.is_none(),
            skipped: one.skipped,
        })
        .collect();
    let used: Vec<(String, Subnet)> = surveyed
        .iter()
        .filter(|one| one.skipped.is_none())
        .map(|one| (one.name.clone(), one.subnet))
        .collect();
    let ipv6_links = if settings.uses_ipv6() { Scope::of(settings).ipv6_links() } else { Vec::new() };
    let ports = ports(settings, ask.running);
    let echoes = echo::listen_for_our_own(settings, &used, &ipv6_links);
    let ipv6 = ipv6_links.into_iter().map(|(_, name)| name).collect();
    let firewall = firewall::examine(settings.port);
    let probe = ask.probe.map(|target| probe::probe(target, settings.port));
    let mut report = Report {
        version: REPORT_VERSION,
        bind: settings.bind,
        interfaces,
        ipv6,
        ports,
        echoes,
        firewall,
        heard: Vec::new(),
        probe,
        findings: Vec::new(),
    };
    report.findings = report.findings(false);
    report
}

impl Report {
    /// Adds who is listed (each peer's family and address), per family and interface, and
    /// what that means.
    pub fn heard_from<'a>(&mut self, peers: impl IntoIterator<Item = (Family, &'a str)>) {
        let used: Vec<(&str, Subnet)> = self
            .interfaces
            .iter()
            .filter(|one| one.used)
            .map(|one| {
                let netmask = Ipv4Addr::from(u32::MAX.checked_shl(32 - one.prefix).unwrap_or(0));
                (one.name.as_str(), Subnet { ip: one.address, netmask, broadcast: one.broadcast })
            })
            .collect();
        let mut heard: Vec<Heard> = Vec::new();
        for (family, addr) in peers {
            // A link-local IPv6 address names its interface (`fe80::1%eth0`).
            let interface = match addr.split_once('%') {
                Some((_, link)) => link,
                None => addr
                    .parse::<Ipv4Addr>()
                    .ok()
                    .and_then(|ip| used.iter().find(|(_, subnet)| subnet.contains(ip)))
                    .map_or("other", |(name, _)| name),
            };
            match heard.iter_mut().find(|one| one.family == family && one.interface == interface) {
                Some(one) => one.peers += 1,
                None => heard.push(Heard { family, interface: interface.to_owned(), peers: 1 }),
            }
        }
        self.heard = heard;
        self.findings = self.findings(true);
    }

    /// What to do, the most likely fix first: a firewall that drops us explains everything
    /// else, then no network at all, then a taken port, then what the probe found; with
    /// `listened`, an empty list is a finding too.
    fn findings(&self, listened: bool) -> Vec<Finding> {
        let mut findings = Vec::new();
        let firewall = &self.firewall;
        if let (Some(rule), Some(fix)) = (&firewall.drops, &firewall.fix) {
            findings.push(Finding::FirewallDrops {
                tool: firewall.tool.clone(),
                rule: rule.clone(),
                fix: fix.clone(),
            });
        }
        let interfaces = &self.interfaces;
        let up = interfaces
            .iter()
            .filter(|one| !matches!(one.skipped, Some(Skipped::Loopback | Skipped::Down)))
            .count();
        if up == 0 && self.ipv6.is_empty() {
            findings.push(Finding::NoNetwork);
        } else if !interfaces.iter().any(|one| one.used) && self.ipv6.is_empty() {
            let bound = interfaces.iter().any(|one| one.skipped == Some(Skipped::NotBound));
            findings.push(if bound {
                Finding::BoundAway { address: self.bind }
            } else {
                Finding::AllSkipped
            });
        }
        for port in self.ports.iter().filter(|port| port.state == PortState::InUse) {
            findings.push(Finding::PortInUse { protocol: port.protocol.into(), port: port.port });
        }
        // An echo lost to a firewall already named says nothing new.
        if findings.is_empty() {
            for echo in self.echoes.iter().filter(|echo| !echo.came_back) {
                findings.push(Finding::NoEcho { interface: echo.interface.clone(), method: echo.method });
            }
        }
        if let Some(probe) = self.probe.as_ref().filter(|probe| probe.outcome != ProbeOutcome::Reached) {
            findings.push(Finding::ProbeFailed { addr: probe.addr.clone(), outcome: probe.outcome });
        }
        if listened && self.heard.is_empty() && findings.is_empty() {
            findings.push(Finding::NobodyHeard);
        }
        findings
    }
}

/// Each family's ports, free or held. Binding is the only way to know without privileges.
fn ports(settings: &Settings, running: bool) -> Vec<PortReport> {
    let mut wanted = vec![(Family::Pigeon, "udp", settings.port), (Family::Pigeon, "tcp", settings.port)];
    if settings.ipmsg {
        wanted.push((Family::Ipmsg, "udp", settings.ipmsg_port));
    }
    if settings.localsend {
        wanted.extend([
            (Family::LocalSend, "udp", settings.localsend_port),
            (Family::LocalSend, "tcp", settings.localsend_port),
        ]);
    }
    wanted
        .into_iter()
        .map(|(family, protocol, port)| {
            let addr = SocketAddrV4::new(settings.bind, port);
            let free = match protocol {
                "udp" => UdpSocket::bind(addr).is_ok(),
                _ => TcpListener::bind(addr).is_ok(),
            };
            let state = match (free, running) {
                (true, _) => PortState::Free,
                (false, true) => PortState::Ours,
                (false, false) => PortState::InUse,
            };
            PortReport { family, protocol, port, state }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Way;

    #[test]
    fn the_codes_of_the_ways_are_their_json() {
        for way in [Way::Broadcast, Way::Multicast, Way::Ipv6, Way::Mdns] {
            assert_eq!(serde_json::to_value(way).unwrap(), way.code());
        }
    }
}
