//! Our texts and offers to LocalSend devices, as the outbox holds them. Each goes out on a
//! thread of its own (`send`); a text is delivered once the device took it, an offer is
//! answered once the other user decided, and its files are then uploaded by a transfer
//! worker. A device that cannot be reached keeps what waits for it until it is heard again.

use std::collections::{HashMap, HashSet};

use super::client::Answer;
use super::{LocalSend, send};
use crate::node::ending::Ending;
use crate::node::event::Event;
use crate::node::hub::core::Core;
use crate::node::threads::{self, StopFlag};
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::store::{ChatMessage, MessageState, TransferState};

/// What is on its way.
#[derive(Default)]
pub struct Outgoing {
    /// Offers not yet ended, with the stop flag of the thread that waits for their answer.
    offers: HashMap<TransferId, StopFlag>,
    /// Texts whose thread runs.
    texts: HashSet<MsgId>,
}

impl Outgoing {
    /// An offer ended: its waiting thread stops.
    pub fn ended(&mut self, id: TransferId) {
        if let Some(stop) = self.offers.remove(&id) {
            stop.raise();
        }
    }

    /// The node stops.
    pub fn stop_all(&mut self) {
        for (_, stop) in self.offers.drain() {
            stop.raise();
        }
    }
}

/// Why a text did not go.
pub enum TextFailure {
    /// The device could not be reached: the text waits for it.
    Unreachable(String),
    /// The device refused it (declined, a PIN): it stays sent, not delivered.
    Refused(String),
}

impl LocalSend {
    /// Sends what waits for `peer`: its texts and offers not on their way yet.
    pub(super) fn send_waiting(&mut self, core: &mut Core, peer: PeerId) {
        let Some(mut target) = self.devices.get(&peer).map(super::devices::Device::target) else { return };
        target.pin = self.pins_given.get(&peer).cloned();
        let queued: Vec<ChatMessage> = match core.store.undelivered(peer) {
            Ok(messages) => messages,
            Err(err) => return log::error!("cannot read the outbox for {peer}: {err}"),
        };
        let fresh: Vec<ChatMessage> =
            queued.into_iter().filter(|message| !self.outgoing.texts.contains(&message.msg_id)).collect();
        for message in fresh {
            let (sender, me, target) = (self.sender.clone(), self.me(core, None), target.clone());
            let (msg_id, text, stop) = (message.msg_id, message.text.clone(), self.stop.clone());
            match threads::spawn("pigeon-localsend-text", move || {
                sender.text(&target, me, peer, msg_id, text, &stop);
            }) {
                Ok(thread) => core.workers.adopt(thread),
                Err(err) => {
                    log::warn!("LocalSend: cannot send a text: {err}");
                    continue;
                }
            }
            self.outgoing.texts.insert(msg_id);
            if message.state == MessageState::Queued
                && let Ok(true) = core.store.advance_outgoing(peer, msg_id, MessageState::Sent)
            {
                core.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state: MessageState::Sent });
            }
        }
        let offers: Vec<_> = core
            .transfers
            .offers_to(peer)
            .into_iter()
            .filter(|record| !self.outgoing.offers.contains_key(&record.id))
            .cloned()
            .collect();
        for record in offers {
            let stop = StopFlag::default();
            let (sender, me, target, thread_stop) =
                (self.sender.clone(), self.me(core, None), target.clone(), stop.clone());
            let id = record.id;
            match threads::spawn("pigeon-localsend-offer", move || {
                sender.offer(&target, me, &record, &thread_stop);
            }) {
                Ok(thread) => {
                    core.workers.adopt(thread);
                    self.outgoing.offers.insert(id, stop);
                }
                Err(err) => log::warn!("LocalSend: cannot offer files: {err}"),
            }
        }
        // What did not go is retried when the device is heard again.
        core.outbox.delivered(peer);
    }

    pub(super) fn on_text_sent(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        msg_id: MsgId,
        outcome: Result<(), TextFailure>,
    ) {
        self.outgoing.texts.remove(&msg_id);
        match outcome {
            Ok(()) => match core.store.advance_outgoing(peer, msg_id, MessageState::Delivered) {
                Ok(true) => {
                    core.sinks.emit(&Event::MessageStateChanged {
                        msg_id,
                        peer,
                        state: MessageState::Delivered,
                    });
                }
                Ok(false) => {}
                Err(err) => log::error!("cannot record the delivery of {msg_id}: {err}"),
            },
            Err(TextFailure::Unreachable(reason)) => {
                log::info!("LocalSend text {msg_id} waits for {peer}: {reason}");
                core.outbox.mark(peer);
            }
            Err(TextFailure::Refused(reason)) => {
                log::info!("LocalSend device {peer} refused text {msg_id}: {reason}");
            }
        }
    }

    pub(super) fn on_answered(&mut self, core: &mut Core, id: TransferId, outcome: Result<Answer, String>) {
        if !self.outgoing.offers.contains_key(&id) {
            // Ended meanwhile (cancelled by our user).
            return;
        }
        let Some(record) = core.transfers.record(id).cloned() else { return };
        let answer = match outcome {
            Ok(answer) => answer,
            Err(reason) => {
                // Not reached: the offer waits for the device to be heard again.
                log::info!("LocalSend offer {id} waits: {reason}");
                self.outgoing.offers.remove(&id);
                core.outbox.mark(record.peer);
                return;
            }
        };
        match send::accepted(id, &answer) {
            Ok(Some(session)) => {
                let Some(target) = self.devices.get(&record.peer).map(super::devices::Device::target) else {
                    core.end_transfer(id, TransferState::Failed, "the device left", false);
                    return;
                };
                let Some(job) = core.start_serving(id, record.peer, false) else { return };
                let sender = self.sender.clone();
                match threads::spawn("pigeon-localsend-upload", move || {
                    sender.upload(&target, &job.record, &session, &job.stop, &job.reporter);
                }) {
                    Ok(thread) => core.workers.adopt(thread),
                    Err(err) => core.end_transfer(
                        id,
                        TransferState::Failed,
                        &format!("cannot start sending: {err}"),
                        false,
                    ),
                }
            }
            // Nothing to send: the device had everything already.
            Ok(None) => core.end_transfer(id, TransferState::Completed, "", false),
            Err(_) if answer.status == 403 => {
                core.end_transfer(id, TransferState::Declined, &Ending::DeclinedThere("").reason(), false);
            }
            // Our user can give the PIN and send again: the window offers that.
            Err(_) if answer.status == 401 => {
                core.end_transfer(id, TransferState::Failed, &Ending::PinRefused.reason(), false);
            }
            Err(reason) => {
                core.end_transfer(id, TransferState::Failed, &Ending::FailedThere(&reason).reason(), false);
            }
        }
    }
}
