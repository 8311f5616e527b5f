//! DNS-SD over mDNS for native discovery (`_pigeon._tcp.local.`): the node registers itself
//! under its peer id, browses for the other Pigeons, and hands each one found on as a hint
//! — the addresses where its record says it listens. A record proves nothing: the family
//! only asks there with a signed announce, and the signed reply lists the peer as any
//! other. Networks whose mDNS gateways (or Avahi reflectors) carry records between segments
//! find Pigeons there that no broadcast or link-local multicast reaches.
//!
//! The mdns-sd daemon runs its own thread, on the interfaces discovery uses only; a thread
//! of ours passes what it finds to the family, never waiting for the hub, and ends when the
//! daemon does (so it never wakes up only to look at a stop flag).

use std::net::{SocketAddr, SocketAddrV6};
use std::thread::JoinHandle;

use mdns_sd::{IfKind, IfPredicate, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};

use super::interfaces::Scope;
use super::threads;
use crate::protocol::ids::PeerId;

/// The DNS-SD service type of Pigeon's native protocol.
pub const SERVICE_TYPE: &str = "_pigeon._tcp.local.";

/// Addresses taken from one record, at most: a host has a few; a record with more is not
/// a host's.
const MAX_ADDRS: usize = 8;

/// What browsing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// A Pigeon's record: its id and where it listens.
    Found {
        /// The id its record names (to be proven by its signed reply).
        id: PeerId,
        /// Its addresses, with its port; link-local IPv6 ones with their interface.
        addrs: Vec<SocketAddr>,
    },
    /// Its record went away (a goodbye, or it expired).
    Gone(PeerId),
}

/// This node on mDNS; dropping it withdraws our record (a goodbye to the others) and stops
/// the mdns-sd daemon, without waiting for it.
pub struct Mdns {
    daemon: ServiceDaemon,
}

impl Mdns {
    /// Registers `id` at `port` on the interfaces of `scope` and browses for the others,
    /// passing each [`Hint`] to `hand_on` (which returns false once no one listens) from a
    /// thread that ends with the [`Mdns`].
    pub fn start(
        id: PeerId,
        port: u16,
        scope: Scope,
        hand_on: impl Fn(Hint) -> bool + Send + 'static,
    ) -> Result<(Mdns, JoinHandle<()>), String> {
        let daemon = ServiceDaemon::new().map_err(|err| err.to_string())?;
        // Commands run in order on the daemon's thread: no record goes out before the
        // interfaces are narrowed to the ones discovery uses.
        daemon
            .disable_interface(vec![IfKind::All, IfKind::LoopbackV4, IfKind::LoopbackV6])
            .and_then(|()| {
                daemon.enable_interface(IfKind::Predicate(IfPredicate::new(move |iface| scope.uses(iface))))
            })
            .map_err(|err| err.to_string())?;
        let name = id.to_string();
        let record =
            ServiceInfo::new(SERVICE_TYPE, &name, &format!("{name}.local."), "", port, &[("v", "3")][..])
                .map_err(|err| err.to_string())?
                .enable_addr_auto();
        daemon.register(record).map_err(|err| err.to_string())?;
        let events = daemon.browse(SERVICE_TYPE).map_err(|err| err.to_string())?;
        let thread = threads::spawn("pigeon-mdns", move || {
            while let Ok(event) = events.recv() {
                if let Some(hint) = hint_of(event, id)
                    && !hand_on(hint)
                {
                    return;
                }
            }
        })
        .map_err(|err| err.to_string())?;
        Ok((Mdns { daemon }, thread))
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        if let Err(err) = self.daemon.shutdown() {
            log::debug!("mDNS: {err}");
        }
    }
}

/// What a browse event says about a Pigeon other than `me`.
fn hint_of(event: ServiceEvent, me: PeerId) -> Option<Hint> {
    match event {
        ServiceEvent::ServiceResolved(service) => {
            let id = instance_id(&service.fullname).filter(|id| *id != me)?;
            // Sorted: the same record resolved again is the same hint (a set's order is not).
            let mut addrs: Vec<SocketAddr> =
                service.addresses.iter().map(|ip| socket_addr(ip, service.port)).take(MAX_ADDRS).collect();
            addrs.sort_unstable();
            addrs.dedup();
            (service.port != 0 && !addrs.is_empty()).then_some(Hint::Found { id, addrs })
        }
        ServiceEvent::ServiceRemoved(_, fullname) => {
            instance_id(&fullname).filter(|id| *id != me).map(Hint::Gone)
        }
        _ => None,
    }
}

/// The peer id an instance's full name (`<id>._pigeon._tcp.local.`) starts with.
fn instance_id(fullname: &str) -> Option<PeerId> {
    fullname.strip_suffix(SERVICE_TYPE)?.strip_suffix('.')?.parse().ok()
}

fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) if v6.addr().is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(*v6.addr(), port, 0, v6.scope_id().index))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_a_peer_id_and_nothing_else_is() {
        let id = PeerId::from_bytes([7; 16]);
        assert_eq!(instance_id(&format!("{id}.{SERVICE_TYPE}")), Some(id));
        assert_eq!(instance_id(&format!("printer.{SERVICE_TYPE}")), None);
        assert_eq!(instance_id(&format!("{id}._http._tcp.local.")), None);
        let gone = ServiceEvent::ServiceRemoved(SERVICE_TYPE.into(), format!("{id}.{SERVICE_TYPE}"));
        assert_eq!(hint_of(gone.clone(), id), None, "our own record");
        assert_eq!(hint_of(gone, PeerId::from_bytes([1; 16])), Some(Hint::Gone(id)));
    }
}
