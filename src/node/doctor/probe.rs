//! Can this computer reach an address? A TCP connection to Pigeon's port there, told apart
//! by how it ends: accepted, refused (the computer is there, Pigeon is not listening), no
//! answer (a firewall drops it, or nobody has that address), no route (no network leads
//! there: a VPN down, a wrong subnet).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

/// How long to wait for an answer: a LAN answers in milliseconds, a VPN in a second.
const TIMEOUT: Duration = Duration::from_secs(3);

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// Something listens there.
    Reached,
    /// The computer answered that nothing listens on that port.
    Refused,
    /// Nothing answered within the timeout.
    NoAnswer,
    /// No network leads there.
    NoRoute,
    /// Not an address (or a name that does not resolve).
    BadAddress,
}

/// The probe of one address.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The address probed, `ip:port` (or as given, when it is not one).
    pub addr: String,
    /// How it ended.
    pub outcome: ProbeOutcome,
    /// The system's words for it.
    pub detail: String,
}

/// Probes `target` (`host` or `host:port`; `port` when it names none).
pub fn probe(target: &str, port: u16) -> Probe {
    let with_port = crate::node::with_port(target.trim(), port);
    let addr = match with_port.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            return Probe { addr: with_port, outcome: ProbeOutcome::BadAddress, detail: "no address".into() };
        }
        Err(err) => {
            return Probe { addr: with_port, outcome: ProbeOutcome::BadAddress, detail: err.to_string() };
        }
    };
    let (outcome, detail) = match TcpStream::connect_timeout(&addr, TIMEOUT) {
        Ok(_) => (ProbeOutcome::Reached, String::from("connected")),
        Err(err) => (outcome_of(&err), err.to_string()),
    };
    Probe { addr: addr.to_string(), outcome, detail }
}

fn outcome_of(err: &std::io::Error) -> ProbeOutcome {
    match err.raw_os_error() {
        Some(libc::ECONNREFUSED) => ProbeOutcome::Refused,
        // Our routing table has no way there.
        Some(libc::ENETUNREACH) => ProbeOutcome::NoRoute,
        // "Host unreachable" is what nobody answering looks like on a LAN (no reply to ARP)
        // and from a router (nobody at that address): no answer, as a timeout is.
        _ => ProbeOutcome::NoAnswer,
    }
}
