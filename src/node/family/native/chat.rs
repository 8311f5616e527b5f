//! Frames on a chat connection: the hello that says who is at the other end (and must match
//! the key the handshake proved), messages and their receipts, offers and their answers; and
//! the writing side, which sends what the outbox holds for a peer.

use std::net::SocketAddr;
use std::time::Instant;

use super::Native;
use super::connection::ConnId;
use crate::node::ending::Ending;
use crate::node::event::Event;
use crate::node::family::Adapter;
use crate::node::hub::core::Core;
use crate::protocol::announce::Presence;
use crate::protocol::frame::Frame;
use crate::protocol::ids::PeerId;
use crate::protocol::message::{MAX_RECEIPT_IDS, Receipt, WireMessage};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{Offer, TransferDone, TransferEnd};
use crate::store::{MessageState, StoreError, TransferRecord, TransferState};

impl Native {
    pub(super) fn on_frame(&mut self, core: &mut Core, conn_id: ConnId, frame: Frame, now: Instant) {
        let Some(conn) = self.conns.get(conn_id) else { return };
        let remote = conn.handle.remote;
        let frame = match frame {
            Frame::Hello(presence) => return self.on_hello(core, conn_id, presence, remote, now),
            Frame::Fetch(fetch) => return self.on_fetch(core, conn_id, fetch, now),
            other => other,
        };
        let Some(peer) = conn.peer else { return };
        core.peers.heard(peer, now);
        match frame {
            Frame::Message(message) => self.on_message(core, conn_id, peer, &message),
            Frame::Delivered(receipt) => self.on_receipt(core, peer, &receipt, MessageState::Delivered),
            Frame::Read(receipt) => self.on_receipt(core, peer, &receipt, MessageState::Read),
            Frame::Offer(offer) => self.on_offer(core, conn_id, peer, offer),
            Frame::OfferRefused(mut refused) => {
                // Neither stored nor shown (a sender may repeat it without end), only counted.
                core.offers_refused += 1;
                log::info!(
                    "declined a malformed offer {} from {peer}: {}",
                    refused.transfer_id,
                    refused.reason
                );
                refused.reason = format!("malformed offer: {}", refused.reason);
                self.send_to(peer, &Frame::Decline(refused));
            }
            answer @ (Frame::Decline(_) | Frame::Cancel(_) | Frame::Done(_)) => {
                on_transfer_answer(core, peer, answer);
            }
            Frame::RoomSync(sync) => core.room_sync_received(peer, sync),
            Frame::Invited(invited) => self.on_invited(core, peer, &invited),
            Frame::InviteAnswer(answer) => Native::on_invite_answer(core, peer, answer),
            // Data frames belong on data connections; a chat connection ignores them.
            // Room events come checked, as `Report::RoomEvents`.
            Frame::Hello(_)
            | Frame::RoomEvents(_)
            | Frame::Unknown { .. }
            | Frame::Fetch(_)
            | Frame::Chunk(_)
            | Frame::FileEnd(_) => {}
        }
    }

    fn on_hello(
        &mut self,
        core: &mut Core,
        conn_id: ConnId,
        presence: Presence,
        remote: SocketAddr,
        now: Instant,
    ) {
        let id = presence.id;
        if id == self.me.id {
            self.close_conn(core, conn_id, "connected to ourselves", now);
            return;
        }
        // The presence says who the peer claims to be; the handshake proved which key it holds.
        let proven = self.conns.get(conn_id).and_then(|conn| conn.session.as_ref()).map(|s| s.remote());
        if proven != Some(presence.key) {
            let reason = format!("hello claims to be {id} but the handshake proved another key");
            self.close_junk(core, conn_id, &reason, now);
            return;
        }
        let dialed = self.conns.get_mut(conn_id).and_then(|conn| {
            conn.peer = Some(id);
            conn.dialed
        });
        if let Some(other) = dialed.filter(|dialed| *dialed != id) {
            // We dialled someone else's old address: no connection to them came of it.
            self.dial_failed(other, now);
        }
        self.saw(core, presence, remote, true, now);
        if let Some(previous) = self.links.get_mut(id).and_then(|link| link.greeted(conn_id)) {
            // Messages still in flight on the previous connection go out again on this one,
            // from the oldest: if only the later ones went here, the receiver could read
            // them before the earlier ones arrive on the other connection. The receiver drops
            // the copies, so each message is still shown once.
            self.in_flight.retain(|on| *on != previous);
        }
        self.deliver(core, id, now);
        self.sync_rooms(core, id);
        self.hello_for_invite(core, conn_id, id, now);
    }

    fn on_message(&mut self, core: &mut Core, conn_id: ConnId, peer: PeerId, message: &WireMessage) {
        let unconfirmed = core.peers.get(peer).is_some_and(|p| p.info.trust.is_unconfirmed());
        let stored = core.store.insert_incoming_to_many(
            message.msg_id,
            peer,
            &message.text,
            message.sent_at_ms,
            unconfirmed,
            &message.also_to,
        );
        match stored {
            Ok(Some(stored)) => core.sinks.emit(&Event::MessageReceived { message: stored }),
            Ok(None) => log::debug!("duplicate message {} from {peer}", message.msg_id),
            Err(err) => {
                // Not acknowledged, so the sender keeps it and retries.
                log::error!("cannot store message from {peer}: {err}");
                return;
            }
        }
        if let Some(conn) = self.conns.get(conn_id) {
            conn.handle.send(&Frame::Delivered(Receipt { msg_ids: vec![message.msg_id] }));
        }
    }

    fn on_receipt(&mut self, core: &mut Core, peer: PeerId, receipt: &Receipt, state: MessageState) {
        for &msg_id in &receipt.msg_ids {
            if state == MessageState::Delivered {
                self.in_flight.acked(msg_id);
            }
            match core.store.advance_outgoing(peer, msg_id, state) {
                Ok(true) => core.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state }),
                Ok(false) => {}
                Err(err) => log::error!("cannot record receipt for {msg_id}: {err}"),
            }
        }
    }

    fn on_offer(&mut self, core: &mut Core, conn_id: ConnId, peer: PeerId, offer: Offer) {
        match core.store.transfer(offer.transfer_id) {
            Ok(Some(known)) => return self.answer_again(conn_id, &known),
            Ok(None) => {}
            Err(err) => return log::error!("cannot look up transfer {}: {err}", offer.transfer_id),
        }
        if let Some(reason) = core.offer_over_limits(offer.transfer_id, peer, offer.entries.len()) {
            let decline = TransferEnd { transfer_id: offer.transfer_id, reason, failed: true };
            return self.send_to(peer, &Frame::Decline(decline));
        }
        let refusal = offer.entries.iter().find_map(|entry| sanitize_path(&entry.path).err());
        let record = TransferRecord {
            room: offer.room,
            ..crate::node::hub::transfers::incoming_record(
                offer.transfer_id,
                peer,
                offer.entries,
                refusal.as_ref(),
            )
        };
        let id = record.id;
        if let Some((TransferState::Failed, reason)) = core.offer_received(record) {
            self.send_to(peer, &Frame::Decline(TransferEnd { transfer_id: id, reason, failed: true }));
        }
    }

    /// A re-sent offer for a transfer we already answered: repeat the answer.
    fn answer_again(&self, conn_id: ConnId, known: &TransferRecord) {
        let Some(frame) = end_frame(known) else { return };
        if let Some(conn) = self.conns.get(conn_id) {
            conn.handle.send(&frame);
        }
    }

    /// Tells the peer that a transfer ended here.
    pub(super) fn tell_end(&self, record: &TransferRecord) {
        if let Some(frame) = end_frame(record) {
            self.send_to(record.peer, &frame);
        }
    }

    pub(super) fn send_to(&self, peer: PeerId, frame: &Frame) {
        let conn = self.links.get(peer).and_then(|link| link.conn).and_then(|conn| self.conns.get(conn));
        match conn {
            Some(conn) => {
                conn.handle.send(frame);
            }
            // The peer learns the answer when it offers again on the next connection.
            None => log::debug!("no connection to {peer} for a frame (it catches up on the next)"),
        }
    }

    /// Writes what waits for `peer` on its connection: offers not yet sent there, messages
    /// not in flight, read receipts. A full write queue means the peer stopped reading: the
    /// connection is closed and everything goes out again on the next.
    pub(super) fn write_outbox(&mut self, core: &mut Core, peer: PeerId, conn_id: ConnId, now: Instant) {
        match self.write_pending(core, peer, conn_id, now) {
            Ok(true) => {}
            Ok(false) => self.close_conn(core, conn_id, "write queue full", now),
            Err(err) => log::error!("cannot read outbox for {peer}: {err}"),
        }
    }

    /// Returns whether everything fitted the connection's write queue.
    fn write_pending(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        conn_id: ConnId,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let Some(conn) = self.conns.get(conn_id) else { return Ok(true) };
        let offers = core.transfers.offers_to(peer);
        for record in &offers {
            let frame = Frame::Offer(Offer {
                transfer_id: record.id,
                entries: record.entries.clone(),
                room: record.room,
            });
            if self.offered_on.get(&record.id) != Some(&conn_id) && conn.handle.send(&frame) {
                self.offered_on.insert(record.id, conn_id);
            }
        }
        let offers_pending = !offers.is_empty();
        let mut pending = core.store.undelivered(peer)?;
        let reads = core.store.unreported_reads(peer, MAX_RECEIPT_IDS)?;
        if pending.is_empty() && reads.is_empty() && !offers_pending {
            core.outbox.delivered(peer);
            return Ok(true);
        }
        pending.retain(|m| !self.in_flight.contains(m.msg_id));
        let mut fitted = true;
        let mut newly_sent = Vec::new();
        for message in pending {
            let frame = Frame::Message(WireMessage {
                msg_id: message.msg_id,
                sent_at_ms: message.sent_at_ms,
                text: message.text,
                also_to: message.also_to,
            });
            if !conn.handle.send(&frame) {
                fitted = false;
                break;
            }
            self.in_flight.sent(message.msg_id, conn_id, now);
            newly_sent.push(message.msg_id);
        }
        if fitted && !reads.is_empty() {
            if conn.handle.send(&Frame::Read(Receipt { msg_ids: reads.clone() })) {
                core.store.mark_reads_reported(peer, &reads)?;
            } else {
                fitted = false;
            }
        }
        for msg_id in newly_sent {
            if core.store.advance_outgoing(peer, msg_id, MessageState::Sent)? {
                core.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state: MessageState::Sent });
            }
        }
        Ok(fitted)
    }
}

/// The frame that tells a peer how a transfer ended here; `None` while it is live.
fn end_frame(record: &TransferRecord) -> Option<Frame> {
    let end = |failed| TransferEnd { transfer_id: record.id, reason: record.reason.clone(), failed };
    Some(match record.state {
        TransferState::Declined => Frame::Decline(end(false)),
        TransferState::Cancelled => Frame::Cancel(end(false)),
        TransferState::Failed => Frame::Cancel(end(true)),
        // Completion is confirmed on the data connection too; saying it here as well covers
        // a sender whose data connection broke just after the last file.
        TransferState::Completed => Frame::Done(TransferDone { transfer_id: record.id }),
        TransferState::Offered | TransferState::Active => return None,
    })
}

/// The other side declined, cancelled, failed or completed a transfer.
fn on_transfer_answer(core: &mut Core, peer: PeerId, frame: Frame) {
    let (id, state, reason) = match frame {
        Frame::Decline(end) => (end.transfer_id, TransferState::Declined, end.reason),
        Frame::Cancel(end) if end.failed => (end.transfer_id, TransferState::Failed, end.reason),
        Frame::Cancel(end) => (end.transfer_id, TransferState::Cancelled, end.reason),
        Frame::Done(done) => (done.transfer_id, TransferState::Completed, String::new()),
        _ => return,
    };
    let reason =
        if state == TransferState::Completed { reason } else { Ending::from_peer(state, &reason).reason() };
    if core.transfers.record(id).is_some_and(|record| record.peer == peer) {
        core.end_transfer(id, state, &reason, false);
    }
}
