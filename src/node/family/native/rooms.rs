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
use crate::protocol::room::RoomEvents;

impl Native {
    /// A member is connected (its hello arrived): tell it what we hold of the rooms we share.
    pub(super) fn sync_rooms(&self, core: &Core, peer: PeerId) {
        if let Some(sync) = core.rooms.sync_for(peer) {
            self.send_to(peer, &Frame::RoomSync(sync));
        }
    }

    pub(super) fn on_room_events(&mut self, core: &mut Core, peer: PeerId, frame: &RoomEvents) {
        let mut verified = Vec::with_capacity(frame.events.len());
        for wire in &frame.events {
            match wire.verify() {
                Ok(event) => verified.push(event),
                Err(err) => {
                    core.room_events_refused += 1;
                    log::info!("refused an event of room {} from {peer}: {err}", frame.room);
                }
            }
        }
        let room = frame.room;
        if core.room_events_received(peer, room, verified) {
            // A full frame: there may be more.
            self.send_to(peer, &Frame::RoomSync(core.room_have(room)));
        }
    }

    pub(super) fn send_room_frame(&mut self, core: &mut Core, peer: PeerId, frame: RoomFrame, now: Instant) {
        let Some(link) = self.links.get_mut(peer) else { return };
        if link.conn.is_some() {
            let frame = match frame {
                RoomFrame::Events(events) => Frame::RoomEvents(events),
                RoomFrame::Sync(sync) => Frame::RoomSync(sync),
            };
            return self.send_to(peer, &frame);
        }
        // Not connected: the connection's first sync carries this frame's news.
        if link.may_dial(now) {
            link.dial_started();
            let addr = link.tcp_addr();
            self.dial(core, Dial::Peer(peer), addr);
        }
    }
}
