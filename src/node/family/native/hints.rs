//! What mDNS found, as the family uses it: a bounded table of the Pigeons whose records
//! name an address. One still not listed a while after its record came (broadcast and the
//! groups list the others first, so on most networks nothing more is sent) is asked there
//! with a signed announce, again every few seconds while it stays unlisted. Once its signed
//! reply listed it, it hears from us directly where our broadcasts and groups may not reach
//! it: our heartbeats go to its addresses on no subnet of ours (an mDNS gateway carried its
//! record across segments), and, while no heartbeat of its own came to us by broadcast or a
//! group for half the time that drops a peer since it was listed, a reply at each of our
//! heartbeats goes to it wherever it is — on networks that
//! carry mDNS and nothing else of the kind (Wi-Fi controllers with a Bonjour gateway do),
//! that is all the two hear of each other, and both keep at it. A reply, not a heartbeat,
//! so that the other side still tells the two apart. A record alone never makes us send
//! more than the asks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Native;
use crate::node::mdns::Hint;
use crate::protocol::ids::PeerId;

/// Records kept at most: more Pigeons than an office has, whose records anyone on the
/// network could otherwise add without bound.
const MAX_FOUND: usize = 64;

/// How long a Pigeon found may stay unlisted before it is asked, and between two asks:
/// long enough for broadcast and the groups to list it first (a few start-up announces),
/// so that a subnet of Pigeons starting together does not answer mDNS on top of them.
const ASK_AFTER: Duration = Duration::from_secs(3);

/// One Pigeon mDNS found.
struct Record {
    /// Where its record says it listens.
    addrs: Vec<SocketAddr>,
    /// When it may be asked next, if still not listed.
    ask_at: Instant,
}

/// The Pigeons mDNS found, by the id their records name.
#[derive(Default)]
pub struct Found {
    records: HashMap<PeerId, Record>,
}

impl Found {
    /// Takes `hint`, heard at `now`.
    fn take(&mut self, hint: Hint, now: Instant) {
        match hint {
            Hint::Found { id, addrs } => {
                if !self.records.contains_key(&id) && self.records.len() >= MAX_FOUND {
                    log::debug!("mDNS: not keeping the record of {id}: {MAX_FOUND} kept already");
                    return;
                }
                // The same record again (mDNS repeats itself) keeps its time to be asked.
                if self.records.get(&id).is_none_or(|record| record.addrs != addrs) {
                    self.records.insert(id, Record { addrs, ask_at: now + ASK_AFTER });
                }
            }
            Hint::Gone(id) => {
                self.records.remove(&id);
            }
        }
    }

    /// The addresses to ask at `now`: of those that `unlisted` says are not listed, whose
    /// time to be asked came (the next ask is then due [`ASK_AFTER`] later).
    fn due_asks(&mut self, unlisted: impl Fn(PeerId) -> bool, now: Instant) -> Vec<SocketAddr> {
        let mut ask = Vec::new();
        for (id, record) in &mut self.records {
            if now >= record.ask_at && unlisted(*id) {
                record.ask_at = now + ASK_AFTER;
                ask.extend_from_slice(&record.addrs);
            }
        }
        ask
    }

    /// The addresses of those found that `wanted` says (listed ones: their signed replies
    /// came).
    pub fn addrs_of(&self, wanted: impl Fn(PeerId) -> bool) -> Vec<SocketAddr> {
        self.records
            .iter()
            .filter(|(id, _)| wanted(**id))
            .flat_map(|(_, record)| record.addrs.iter().copied())
            .collect()
    }
}

impl Native {
    pub(super) fn on_hint(&mut self, hint: Hint, now: Instant) {
        self.found.take(hint, now);
    }

    /// At each of our heartbeats: an announce to each Pigeon mDNS found that stays
    /// unlisted, and a reply to each whose own heartbeats do not reach us (see the module
    /// doc).
    pub(super) fn direct_to_the_found(&mut self, now: Instant) {
        let links = &self.links;
        for addr in self.found.due_asks(|id| links.get(id).is_none(), now) {
            self.announcer.ask(&self.me, addr, now);
        }
        let unheard = |id| self.links.get(id).is_some_and(|link| link.heartbeats_missing(now));
        for addr in self.found.addrs_of(unheard) {
            self.announcer.reply(&self.me, addr, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_unlisted_for_a_while_is_asked_now_and_then_and_the_table_is_bounded() {
        let now = Instant::now();
        let mut found = Found::default();
        let at = |n: u8| vec![SocketAddr::from(([10, 0, 0, n], 2426))];
        let id = |n: u8| PeerId::from_bytes([n; 16]);
        found.take(Hint::Found { id: id(1), addrs: at(1) }, now);
        assert_eq!(found.due_asks(|_| true, now), [], "broadcast may list it first");
        let later = now + ASK_AFTER;
        found.take(Hint::Found { id: id(1), addrs: at(1) }, later - Duration::from_secs(1));
        assert_eq!(found.due_asks(|_| false, later), [], "listed: nothing to ask");
        assert_eq!(found.due_asks(|_| true, later), at(1));
        assert_eq!(found.due_asks(|_| true, later + Duration::from_secs(1)), [], "asked a moment ago");
        assert_eq!(found.due_asks(|_| true, later + ASK_AFTER), at(1), "asked again");
        assert_eq!(found.addrs_of(|_| false), []);
        assert_eq!(found.addrs_of(|peer| peer == id(1)), at(1));
        for n in 2..=u8::try_from(MAX_FOUND).unwrap() {
            found.take(Hint::Found { id: id(n), addrs: at(n) }, now);
        }
        found.take(Hint::Found { id: id(200), addrs: at(200) }, now);
        assert_eq!(found.addrs_of(|peer| peer == id(200)), [], "full");
        found.take(Hint::Gone(id(1)), now);
        found.take(Hint::Found { id: id(200), addrs: at(200) }, now);
        assert_eq!(found.addrs_of(|peer| peer == id(200)), at(200), "room again");
    }
}
