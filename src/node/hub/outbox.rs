//! The outbox: which peers have something waiting for them — messages, read receipts,
//! offers (the messages themselves wait in the store, which survives a restart) — and which
//! sent messages wait for their acknowledgement, on what route and since when. Each family
//! decides what a route is (a connection, a resent packet) and what an overdue
//! acknowledgement means (a dead connection, time to resend).
//!
//! Time is passed in: timeouts and resends are tested without sleeping.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::protocol::ids::{MsgId, PeerId};

/// Peers with something to deliver.
#[derive(Default)]
pub struct Outbox {
    waiting: HashSet<PeerId>,
}

impl Outbox {
    /// Peers that had undelivered messages when the node last stopped.
    pub fn with_waiting(peers: impl IntoIterator<Item = PeerId>) -> Outbox {
        Outbox { waiting: peers.into_iter().collect() }
    }

    /// Something new waits for `peer`.
    pub fn mark(&mut self, peer: PeerId) {
        self.waiting.insert(peer);
    }

    /// Everything for `peer` went out (its family has what still needs acknowledging).
    pub fn delivered(&mut self, peer: PeerId) {
        self.waiting.remove(&peer);
    }

    /// Whether something waits for `peer`.
    pub fn is_waiting(&self, peer: PeerId) -> bool {
        self.waiting.contains(&peer)
    }

    /// Whether something waits for someone.
    pub fn is_busy(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Every peer something waits for.
    pub fn waiting(&self) -> Vec<PeerId> {
        self.waiting.iter().copied().collect()
    }
}

/// Messages sent and not yet acknowledged, each with its route `R` and the time it was last
/// sent.
pub struct InFlight<R> {
    sent: HashMap<MsgId, (R, Instant)>,
}

impl<R> Default for InFlight<R> {
    fn default() -> Self {
        InFlight { sent: HashMap::new() }
    }
}

impl<R> InFlight<R> {
    /// `msg_id` went out on `route` at `now`.
    pub fn sent(&mut self, msg_id: MsgId, route: R, now: Instant) {
        self.sent.insert(msg_id, (route, now));
    }

    /// Whether `msg_id` is on its way.
    pub fn contains(&self, msg_id: MsgId) -> bool {
        self.sent.contains_key(&msg_id)
    }

    /// The acknowledgement of `msg_id` arrived: its route, if it was in flight.
    pub fn acked(&mut self, msg_id: MsgId) -> Option<R> {
        self.sent.remove(&msg_id).map(|(route, _)| route)
    }

    /// Messages sent longer than `after` before `now`, oldest first.
    pub fn overdue(&self, now: Instant, after: Duration) -> Vec<MsgId> {
        let mut late: Vec<(Instant, MsgId)> = self
            .sent
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) > after)
            .map(|(msg_id, (_, at))| (*at, *msg_id))
            .collect();
        late.sort();
        late.into_iter().map(|(_, msg_id)| msg_id).collect()
    }

    /// The route of a message in flight.
    pub fn route(&self, msg_id: MsgId) -> Option<&R> {
        self.sent.get(&msg_id).map(|(route, _)| route)
    }

    /// The route of a message in flight, to change it (count a resend).
    pub fn route_mut(&mut self, msg_id: MsgId) -> Option<&mut R> {
        self.sent.get_mut(&msg_id).map(|(route, _)| route)
    }

    /// A message in flight whose route `matches`.
    pub fn find(&self, mut matches: impl FnMut(&R) -> bool) -> Option<MsgId> {
        self.sent.iter().find(|(_, (route, _))| matches(route)).map(|(msg_id, _)| *msg_id)
    }

    /// `msg_id` went out again at `now`.
    pub fn resent(&mut self, msg_id: MsgId, now: Instant) {
        if let Some((_, at)) = self.sent.get_mut(&msg_id) {
            *at = now;
        }
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Forgets the messages `keep` says no to: their route failed, so the outbox sends them
    /// again on another.
    pub fn retain(&mut self, mut keep: impl FnMut(&R) -> bool) {
        self.sent.retain(|_, (route, _)| keep(route));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u8) -> MsgId {
        MsgId::from_bytes([n; 16])
    }

    #[test]
    fn late_acknowledgements_show_oldest_first_and_a_failed_route_releases_its_messages() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut in_flight = InFlight::default();
        in_flight.sent(msg(2), "conn-a", start + secs(1));
        in_flight.sent(msg(1), "conn-a", start);
        in_flight.sent(msg(3), "conn-b", start + secs(5));
        assert!(in_flight.overdue(start + secs(10), secs(10)).is_empty());
        assert_eq!(in_flight.overdue(start + secs(12), secs(10)), [msg(1), msg(2)]);
        assert_eq!(in_flight.acked(msg(1)), Some("conn-a"));
        assert_eq!(in_flight.acked(msg(1)), None, "a second acknowledgement changes nothing");
        // A resend re-arms the clock.
        in_flight.resent(msg(2), start + secs(12));
        assert_eq!(in_flight.overdue(start + secs(16), secs(10)), [msg(3)]);
        // The takeover rule: what was on a dead connection is sent again elsewhere.
        in_flight.retain(|route| *route != "conn-a");
        assert!(!in_flight.contains(msg(2)));
        assert!(in_flight.contains(msg(3)));
    }

    #[test]
    fn the_outbox_remembers_who_waits() {
        let ana = PeerId::from_bytes([1; 16]);
        let mut outbox = Outbox::with_waiting([ana]);
        assert!(outbox.is_waiting(ana));
        outbox.delivered(ana);
        assert!(outbox.waiting().is_empty());
        outbox.mark(ana);
        assert_eq!(outbox.waiting(), [ana]);
    }
}
