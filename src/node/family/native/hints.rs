//! What mDNS found, as the family uses it: a bounded table of the Pigeons whose records
//! name an address, each asked there with a signed announce while it is not listed. Once
//! its signed reply listed it, it hears from us directly where our broadcasts and groups
//! may not reach it: our heartbeats go to its addresses on no subnet of ours (an mDNS
//! gateway carried its record across segments), and, until a heartbeat of its own comes
//! to us by broadcast or a group, a reply at each of our heartbeats goes to it wherever it
//! is — on networks that carry mDNS and nothing else of the kind (Wi-Fi controllers with a
//! Bonjour gateway do), that is all the two hear of each other, and both keep at it. A
//! reply, not a heartbeat, so that the other side still tells the two apart. A record alone
//! never makes us send more than the ask.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::Native;
use crate::node::mdns::Hint;
use crate::protocol::ids::PeerId;

/// Records kept at most: more Pigeons than an office has, whose records anyone on the
/// network could otherwise add without bound.
const MAX_FOUND: usize = 64;

/// The Pigeons mDNS found, by the id their records name, with the addresses the records
/// say they listen at.
#[derive(Default)]
pub struct Found {
    records: HashMap<PeerId, Vec<SocketAddr>>,
}

impl Found {
    /// Takes `hint`; returns the addresses to ask, if it names a Pigeon newly found there.
    fn take(&mut self, hint: Hint) -> Vec<SocketAddr> {
        match hint {
            Hint::Found { id, addrs } => {
                if !self.records.contains_key(&id) && self.records.len() >= MAX_FOUND {
                    log::debug!("mDNS: not keeping the record of {id}: {MAX_FOUND} kept already");
                    return Vec::new();
                }
                let record = self.records.entry(id).or_default();
                if *record == addrs {
                    return Vec::new();
                }
                record.clone_from(&addrs);
                addrs
            }
            Hint::Gone(id) => {
                self.records.remove(&id);
                Vec::new()
            }
        }
    }

    /// The addresses of those found that `wanted` says (listed ones: their signed replies
    /// came).
    pub fn addrs_of(&self, wanted: impl Fn(PeerId) -> bool) -> Vec<SocketAddr> {
        self.records
            .iter()
            .filter(|(id, _)| wanted(**id))
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

    /// At each of our heartbeats: a reply to each Pigeon mDNS found whose own heartbeats do
    /// not reach us (see the module doc).
    pub(super) fn reply_to_the_unheard(&mut self, now: Instant) {
        let unheard = |id| self.links.get(id).is_some_and(|link| !link.heartbeats_come);
        for addr in self.found.addrs_of(unheard) {
            self.announcer.reply(&self.me, addr, now);
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
        assert_eq!(found.addrs_of(|_| false), []);
        assert_eq!(found.addrs_of(|peer| peer == id(1)), at(2));
        for n in 2..=u8::try_from(MAX_FOUND).unwrap() {
            found.take(Hint::Found { id: id(n), addrs: at(n) });
        }
        assert!(found.take(Hint::Found { id: id(200), addrs: at(200) }).is_empty(), "full");
        found.take(Hint::Gone(id(1)));
        assert_eq!(found.take(Hint::Found { id: id(200), addrs: at(200) }), at(200), "room again");
    }
}
