//! Group rooms over native connections: a member that says hello hears what we hold of the
//! rooms we share (so it sends what we lack and asks for what it lacks); events that arrive
//! are checked against their authors' signatures here, then handed to the hub; frames the
//! hub has for a member go out on its connection, which is made if need be.

use std::time::Instant;

use super::{Dial, Native};
use crate::node::hub::core::Core;
use crate::node::hub::rooms::RoomFrame;
use crate::protocol::frame::Frame;
use crate::protocol::ids::PeerId;
use crate::protocol::ids::RoomId;
use crate::protocol::room::{RoomEvents, SignedEvent, Verifiers};

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
}

impl CheckedEvents {
    /// Checks every event of `frame`.
    pub fn check(frame: &RoomEvents) -> CheckedEvents {
        let mut events = Vec::with_capacity(frame.events.len());
        let mut refused = 0;
        let mut keys = Verifiers::default();
        for wire in &frame.events {
            match wire.verify_with(&mut keys) {
                Ok(event) => events.push(event),
                Err(err) => {
                    refused += 1;
                    log::info!("dropped an event of room {}: {err}", frame.room);
                }
            }
        }
        CheckedEvents { room: frame.room, more: frame.more, events, refused }
    }
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
