//! Group rooms over native connections: a member that says hello hears what we hold of the
//! rooms we share (so it sends what we lack and asks for what it lacks); events that arrive
//! are checked against their authors' signatures here, then handed to the hub; frames the
//! hub has for a member go out on its connection, which is made if need be.

use std::time::Instant;

use super::{Dial, Native};
use crate::node::hub::core::Core;
use crate::node::hub::rooms::RoomFrame;
use crate::protocol::DecodeError;
use crate::protocol::frame::Frame;
use crate::protocol::ids::PeerId;
use crate::protocol::ids::RoomId;
use crate::protocol::room::{RoomEvents, SignedEvent, Verifiers, WireEvent};

/// A room events frame whose signatures were checked (on the connection's reader thread).
pub struct CheckedEvents {
    /// The room.
    pub room: RoomId,
    /// The frame said more is left.
    pub more: bool,
    /// The events whose authors signed them.
    pub events: Vec<SignedEvent>,
    /// How many did not verify (dropped, counted).
    pub refused: usize,
    /// The frame's size as it came (compressed).
    pub wire_bytes: usize,
}

/// Events checked per helper thread at least: below, a thread costs more than it saves.
const EVENTS_PER_CHECKER: usize = 64;

impl CheckedEvents {
    /// Checks every event of `frame`, spread over the machine's cores (a catch-up is a run
    /// of full frames, and checking signatures is most of its cost: see docs/BENCHMARKS.md).
    pub fn check(frame: &RoomEvents, wire_bytes: usize) -> CheckedEvents {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let parts = cores.min(frame.events.len() / EVENTS_PER_CHECKER).max(1);
        let chunk = frame.events.len().div_ceil(parts).max(1);
        let checked: Vec<Vec<Result<SignedEvent, DecodeError>>> = std::thread::scope(|scope| {
            let helpers: Vec<_> = frame.events[chunk.min(frame.events.len())..]
                .chunks(chunk)
                .map(|part| {
                    let helper = std::thread::Builder::new().name("pigeon-verify".into());
                    (part, helper.spawn_scoped(scope, move || check_all(part)))
                })
                .collect();
            let mut checked = vec![check_all(&frame.events[..chunk.min(frame.events.len())])];
            for (part, helper) in helpers {
                // A helper that could not start (or panicked) leaves its part to this thread.
                let result = helper.ok().and_then(|helper| helper.join().ok());
                checked.push(result.unwrap_or_else(|| check_all(part)));
            }
            checked
        });
        let mut events = Vec::with_capacity(frame.events.len());
        let mut refused = 0;
        for result in checked.into_iter().flatten() {
            match result {
                Ok(event) => events.push(event),
                Err(err) => {
                    refused += 1;
                    log::info!("dropped an event of room {}: {err}", frame.room);
                }
            }
        }
        CheckedEvents { room: frame.room, more: frame.more, events, refused, wire_bytes }
    }
}

fn check_all(events: &[WireEvent]) -> Vec<Result<SignedEvent, DecodeError>> {
    let mut keys = Verifiers::default();
    events.iter().map(|wire| wire.verify_with(&mut keys)).collect()
}

impl Native {
    /// A member is connected (its hello arrived): tell it what we hold of the rooms we share.
    pub(super) fn sync_rooms(&self, core: &Core, peer: PeerId) {
        if let Some(sync) = core.rooms.sync_for(peer) {
            self.send_to(peer, &Frame::RoomSync(sync));
        }
    }

    pub(super) fn on_room_events(&mut self, core: &mut Core, peer: PeerId, checked: CheckedEvents) {
        core.room_events_refused += checked.refused as u64;
        core.room_bytes_received += checked.wire_bytes as u64;
        core.room_events_received += (checked.events.len() + checked.refused) as u64;
        let room = checked.room;
        if core.room_events_received(peer, room, checked.events, checked.more) {
            // The answer left events out: ask for the rest.
            self.send_to(peer, &Frame::RoomSync(core.room_have(room)));
        }
    }

    pub(super) fn send_room_frame(&mut self, core: &mut Core, peer: PeerId, frame: RoomFrame, now: Instant) {
        let Some(link) = self.links.get(peer) else { return };
        if link.conn.is_some() {
            let frame = match frame {
                RoomFrame::Events(events) => Frame::RoomEvents(events),
                RoomFrame::Sync(sync) => Frame::RoomSync(sync),
            };
            return self.send_to(peer, &frame);
        }
        // Not connected: the connection's first sync carries this frame's news.
        self.dial_if_unconnected(core, peer, now);
    }

    /// Connects to `peer` unless connected or being dialled (or backing off).
    pub(super) fn dial_if_unconnected(&mut self, core: &mut Core, peer: PeerId, now: Instant) {
        let Some(link) = self.links.get_mut(peer) else { return };
        if link.may_dial(now) {
            link.dial_started();
            let addr = link.tcp_addr();
            self.dial(core, Dial::Peer(peer), addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::room::tests::signed_post;
    use crate::secure::Identity;

    #[test]
    fn a_frame_checked_on_several_threads_keeps_its_order_and_drops_only_the_forged_event() {
        let ana = Identity::from_private([1; 32]);
        let room = RoomId::from_bytes([2; 16]);
        let post = |seq: u64| signed_post(&ana, room, seq, format!("post {seq}")).to_wire();
        let mut events: Vec<WireEvent> = (1..=256).map(post).collect();
        // One event late in the frame (another thread's part) carries another's signature.
        events[200].sig = events[10].sig.clone();
        let checked = CheckedEvents::check(&RoomEvents { room, events, more: true }, 0);
        assert_eq!((checked.refused, checked.more), (1, true));
        let seqs: Vec<u64> = checked.events.iter().map(|event| event.body.seq).collect();
        let expected: Vec<u64> = (1..=256).filter(|&seq| seq != 201).collect();
        assert_eq!(seqs, expected);
    }
}
