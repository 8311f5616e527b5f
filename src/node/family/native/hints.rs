//! What mDNS found, as the family uses it: a bounded table of the Pigeons whose records
//! name an address, each asked there with a signed announce while it is not listed, and —
//! once its signed reply listed it — sent our heartbeats there when that address is on no
//! subnet of ours (an mDNS gateway carried its record across segments, and no broadcast
//! or multicast of ours reaches it). A record alone never makes us send more than the ask.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::Native;
use crate::node::mdns::Hint;
use crate::protocol::ids::PeerId;

/// Records kept at most: more Pigeons than an office has, whose records anyone on the
/// network could otherwise add without bound.
const MAX_FOUND: usize = 64;

/// The Pigeons mDNS found, by the id their records name.
#[derive(Default)]
pub struct Found {
    addrs: HashMap<PeerId, Vec<SocketAddr>>,
}

impl Found {
    /// Takes `hint`; returns the addresses to ask, if it names a Pigeon newly found there.
    fn take(&mut self, hint: Hint) -> Vec<SocketAddr> {
        match hint {
            Hint::Found { id, addrs } => {
                if !self.addrs.contains_key(&id) && self.addrs.len() >= MAX_FOUND {
                    log::debug!("mDNS: not keeping the record of {id}: {MAX_FOUND} kept already");
                    return Vec::new();
                }
                let known = self.addrs.insert(id, addrs.clone());
                if known.as_ref() == Some(&addrs) { Vec::new() } else { addrs }
            }
            Hint::Gone(id) => {
                self.addrs.remove(&id);
                Vec::new()
            }
        }
    }

    /// The addresses of those found that `listed` says are listed (their signed replies
    /// came).
    pub fn listed_addrs(&self, listed: impl Fn(PeerId) -> bool) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .filter(|(id, _)| listed(**id))
            .flat_map(|(_, addrs)| addrs.iter().copied())
            .collect()
    }
}

impl Native {
    pub(super) fn on_hint(&mut self, hint: Hint, now: Instant) {
        let about = match &hint {
            Hint::Found { id, .. } | Hint::Gone(id) => *id,
        };
        let ask = self.found.take(hint);
        if self.links.get(about).is_some() {
            return;
        }
        for addr in ask {
            self.announcer.ask(&self.me, addr, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_asked_once_per_change_and_the_table_is_bounded() {
        let mut found = Found::default();
        let at = |n: u8| vec![SocketAddr::from(([10, 0, 0, n], 2426))];
        let id = |n: u8| PeerId::from_bytes([n; 16]);
        assert_eq!(found.take(Hint::Found { id: id(1), addrs: at(1) }), at(1));
        assert!(found.take(Hint::Found { id: id(1), addrs: at(1) }).is_empty(), "the same record again");
        assert_eq!(found.take(Hint::Found { id: id(1), addrs: at(2) }), at(2), "moved");
        assert_eq!(found.listed_addrs(|_| false), []);
        assert_eq!(found.listed_addrs(|peer| peer == id(1)), at(2));
        for n in 2..=u8::try_from(MAX_FOUND).unwrap() {
            found.take(Hint::Found { id: id(n), addrs: at(n) });
        }
        assert!(found.take(Hint::Found { id: id(200), addrs: at(200) }).is_empty(), "full");
        found.take(Hint::Gone(id(1)));
        assert_eq!(found.take(Hint::Found { id: id(200), addrs: at(200) }), at(200), "room again");
    }
}
