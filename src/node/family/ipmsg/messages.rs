//! Messages with IP Messenger clients: theirs are acknowledged (every copy: the sender
//! resends until one ack arrives), stored once, and their file lists become offers; ours go
//! out with `SENDCHECKOPT`, resent once a second until acknowledged, given up after
//! [`SEND_TRIES`] (the message then waits in the outbox until the peer announces itself
//! again).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::IpMsg;
use crate::node::event::Event;
use crate::node::hub::core::{Core, now_ms};
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::ipmsg::attach;
use crate::protocol::ipmsg::text::{self, Charset};
use crate::protocol::ipmsg::{Packet, decimal, mode, opt};
use crate::store::{ChatMessage, MessageState};

/// Sends of an unacknowledged packet, one second apart (iptux gives up after 4).
const SEND_TRIES: u32 = 5;

/// Time between resends.
const RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// A packet sent and not yet acknowledged.
pub struct Pending {
    /// Its number, which the acknowledgement names.
    pub packet_no: u32,
    /// Who it went to.
    pub to: Ipv4Addr,
    /// The packet as sent: a resend is the identical packet, so the receiver drops copies.
    bytes: Vec<u8>,
    /// Sends so far.
    tries: u32,
}

impl IpMsg {
    pub(super) fn on_message(&mut self, core: &mut Core, ip: Ipv4Addr, packet: &Packet) {
        if packet.has(opt::SENDCHECKOPT) && !packet.has(opt::BROADCASTOPT) && !packet.has(opt::AUTORETOPT) {
            let ack = self.packet(mode::RECVMSG, packet.packet_no.to_string().into_bytes());
            self.send(&ack, self.peer_addr(ip));
        }
        let Some(peer) = self.peers.get_mut(&ip) else {
            log::info!("IP Messenger message from {ip}, which never announced itself; dropped");
            return;
        };
        if !peer.first_time(packet.packet_no) {
            return;
        }
        let body = packet.extra.split(|&b| b == 0).next().unwrap_or_default();
        let (decoded, charset) = text::decode(body, packet.has(opt::UTF8OPT));
        if charset == Charset::Gb18030 {
            peer.charset = Charset::Gb18030;
        }
        let text = if text::is_feiq(&peer.version) { text::strip_feiq_format(&decoded) } else { &decoded };
        let (id, msg_id) = (peer.id, peer.message_id(ip, packet.packet_no));
        core.store_on_use(&[id]);
        if !text.is_empty() {
            match core.store.insert_incoming(msg_id, id, text, now_ms(), false) {
                Ok(Some(message)) => core.sinks.emit(&Event::MessageReceived { message }),
                Ok(None) => {}
                Err(err) => log::error!("cannot store a message from {ip}: {err}"),
            }
        }
        if !packet.has(opt::FILEATTACHOPT) {
            return;
        }
        let list = packet.extra.splitn(2, |&b| b == 0).nth(1).unwrap_or_default();
        match attach::parse_attachments(list) {
            Ok(attachments) if !attachments.is_empty() => {
                let transfer = TransferId::from_bytes(*msg_id.as_bytes());
                let offer = super::offers::Offered { ip, peer: id, transfer, packet_no: packet.packet_no };
                self.offer_received(core, offer, &attachments, packet.has(opt::UTF8OPT));
            }
            Ok(_) => {}
            Err(err) => log::info!("malformed file offer from {ip}: {err}"),
        }
    }

    pub(super) fn on_ack(&mut self, core: &mut Core, ip: Ipv4Addr, packet: &Packet) {
        let Some(acked) = decimal(packet.extra.split(|&b| b == 0).next().unwrap_or_default()) else { return };
        let Some(msg_id) = self.pending.find(|pending| pending.to == ip && pending.packet_no == acked) else {
            return;
        };
        self.pending.acked(msg_id);
        let Some(peer) = self.peers.get(&ip).map(|peer| peer.id) else { return };
        match core.store.advance_outgoing(peer, msg_id, MessageState::Delivered) {
            Ok(true) => {
                core.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state: MessageState::Delivered });
            }
            Ok(false) => {}
            Err(err) => log::error!("cannot record the delivery of {msg_id}: {err}"),
        }
    }

    /// Sends the queued messages of `peer` (at `ip`) that are not on their way already.
    pub(super) fn send_outbox(&mut self, core: &mut Core, peer: PeerId, ip: Ipv4Addr, now: Instant) {
        let Some(charset) = self.peers.get(&ip).map(|peer| peer.charset) else { return };
        let queued: Vec<ChatMessage> = match core.store.undelivered(peer) {
            Ok(messages) => messages,
            Err(err) => return log::error!("cannot read the outbox for {peer}: {err}"),
        };
        let queued: Vec<ChatMessage> =
            queued.into_iter().filter(|message| !self.pending.contains(message.msg_id)).collect();
        for message in queued {
            let utf8 = if charset == Charset::Utf8 { opt::UTF8OPT } else { 0 };
            let command = mode::SENDMSG | opt::SENDCHECKOPT | utf8;
            let packet = self.packet(command, text::encode(&message.text, charset));
            self.send_tracked(message.msg_id, &packet, ip, now);
            if message.state == MessageState::Queued
                && let Ok(true) = core.store.advance_outgoing(peer, message.msg_id, MessageState::Sent)
            {
                let (msg_id, state) = (message.msg_id, MessageState::Sent);
                core.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state });
            }
        }
    }

    /// Sends `packet` to `ip` and keeps it, under `msg_id`, until it is acknowledged.
    pub(super) fn send_tracked(&mut self, msg_id: MsgId, packet: &Packet, ip: Ipv4Addr, now: Instant) {
        let bytes = packet.encode();
        self.send(packet, self.peer_addr(ip));
        self.pending.sent(msg_id, Pending { packet_no: packet.packet_no, to: ip, bytes, tries: 1 }, now);
    }

    /// Resends what was not acknowledged within a second; gives up after the last try.
    pub(super) fn resend(&mut self, now: Instant) {
        let port = self.port;
        for msg_id in self.pending.overdue(now, RESEND_INTERVAL) {
            let Some(pending) = self.pending.route_mut(msg_id) else { continue };
            if pending.tries >= SEND_TRIES {
                log::info!("IP Messenger peer {} did not acknowledge message {msg_id}", pending.to);
                self.pending.acked(msg_id);
                continue;
            }
            pending.tries += 1;
            // Clients answer on the IP Messenger port, whatever our source port (iptux).
            let (bytes, to) = (pending.bytes.clone(), std::net::SocketAddrV4::new(pending.to, port));
            self.send_bytes(&bytes, to);
            self.pending.resent(msg_id, now);
        }
    }
}
