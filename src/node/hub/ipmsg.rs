//! IP Messenger peers (IP Messenger, FeiQ, iptux) in the hub: presence from `BR_ENTRY`,
//! `ANSENTRY`, `BR_ABSENCE` and `BR_EXIT`; messages both ways with `RECVMSG`
//! acknowledgements, resends and deduplication; their file offers as incoming transfers, and
//! ours served to them over TCP. They join the same peer list and history as
//! Pigeon peers, marked with their client and as unencrypted (the protocol has no
//! authentication; nothing pretends otherwise).
//!
//! Rules from the protocol notes: answer `BR_ENTRY` with a unicast `ANSENTRY`; never answer
//! `ANSENTRY`, `BR_ABSENCE` or a `RECVMSG` (iptux sets `SENDCHECKOPT` on its acks); do not
//! ack broadcast or auto-reply messages; packet numbers grow, and a client's numbers restart
//! when it announces again (iptux counts from 1 at every launch), so a message's identity is
//! (address, the time of its last entry, packet number). Other Pigeons answer on this port
//! too; their IP Messenger packets are ignored, so nobody is listed twice.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::transfers::incoming_offer;
use super::{Hub, now_ms};
use crate::node::event::TransferInfo;
use crate::node::event::{Event, LeaveReason, PeerInfo};
use crate::node::ipmsg_receive::{IpMsgReceiveJob, Item};
use crate::node::ipmsg_send::{self, ServeJob};
use crate::node::threads;
use crate::protocol::announce::Status;
use crate::protocol::ids::TransferId;
use crate::protocol::ids::{MsgId, PeerId};
use crate::protocol::ipmsg::attach::{self, AttachKind, Attachment};
use crate::protocol::ipmsg::entry::Entry;
use crate::protocol::ipmsg::text::{self, Charset};
use crate::protocol::ipmsg::{MAX_SEND, Packet, decimal, mode, opt};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{Entry as TransferEntry, EntryKind};
use crate::store::{ChatMessage, MessageState, Trust};
use crate::store::{TransferRecord, TransferState};

/// Our version field: IP Messenger protocol 1, then who we are (clients tell each other
/// apart by it, and Pigeons ignore each other's IP Messenger packets by it).
const VERSION: &[u8] = b"1_pigeon";

/// Resends of an unacknowledged message, one second apart (iptux gives up after 4).
const SEND_TRIES: u32 = 5;

/// Time between resends.
const RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// Packet numbers remembered per peer to drop resends.
const SEEN_PACKETS: usize = 256;

/// Capabilities we announce: UTF-8, and taking file offers.
const ENTRY_OPTIONS: u32 = opt::CAPUTF8OPT | opt::FILEATTACHOPT;

/// One IP Messenger peer, known by its address (as every IP Messenger client does).
struct IpPeer {
    id: PeerId,
    version: Vec<u8>,
    user: String,
    host: String,
    nick: String,
    group: String,
    absent: bool,
    /// Text to this peer is always in this charset (iptux mangles a peer whose encoding
    /// flips); FeiQ gets GB18030, everyone else UTF-8.
    charset: Charset,
    /// When its current packet numbering started (its last entry packet).
    generation_ms: u64,
    /// Recent packet numbers of this generation, oldest first.
    seen: VecDeque<u32>,
}

/// What a file offer of an IP Messenger peer needs for fetching: where, under which packet
/// number, and the sender's number of each entry (in the order of the transfer's entries).
struct IpOffer {
    ip: Ipv4Addr,
    packet_no: u32,
    file_ids: Vec<u32>,
}

/// A message sent and not yet acknowledged.
struct Pending {
    packet_no: u32,
    to: Ipv4Addr,
    msg_id: MsgId,
    bytes: Vec<u8>,
    tries: u32,
    next_at: Instant,
}

/// The hub's IP Messenger state.
pub struct IpMsg {
    socket: UdpSocket,
    port: u16,
    /// Where entry packets go: broadcast addresses and targets, at the IP Messenger port.
    destinations: Vec<SocketAddrV4>,
    user: String,
    host: String,
    next_packet: u32,
    peers: HashMap<Ipv4Addr, IpPeer>,
    pending: Vec<Pending>,
    /// File offers received, until Pigeon stops (IP Messenger offers do not outlive it).
    offers: HashMap<TransferId, IpOffer>,
    /// Our offers, by the packet number they went out with.
    sent_offers: HashMap<u32, (TransferId, Ipv4Addr)>,
    /// Our offers being fetched: the cancel flag of their serving threads and the top-level
    /// entries served completely.
    serving: HashMap<TransferId, (Arc<AtomicBool>, BTreeSet<usize>)>,
}

impl IpMsg {
    /// IP Messenger on `socket` (bound to the IP Messenger port), announcing to
    /// `destinations`.
    pub fn new(socket: UdpSocket, port: u16, destinations: Vec<SocketAddrV4>, host: String) -> IpMsg {
        let user = std::env::var("USER").unwrap_or_else(|_| String::from("pigeon"));
        // Numbers start from the clock so that they keep growing across our restarts.
        let next_packet = u32::try_from(now_ms() / 1000 % 0x7fff_0000).unwrap_or(1);
        IpMsg {
            socket,
            port,
            destinations,
            user,
            host,
            next_packet,
            peers: HashMap::new(),
            pending: Vec::new(),
            offers: HashMap::new(),
            sent_offers: HashMap::new(),
            serving: HashMap::new(),
        }
    }

    fn packet(&mut self, command: u32, extra: Vec<u8>) -> Packet {
        self.next_packet = self.next_packet.wrapping_add(1).max(1);
        Packet {
            version: VERSION.to_vec(),
            packet_no: self.next_packet,
            user: self.user.as_bytes().to_vec(),
            host: self.host.as_bytes().to_vec(),
            command,
            extra,
        }
    }

    fn send(&self, packet: &Packet, to: SocketAddrV4) {
        let bytes = packet.encode();
        if bytes.len() > MAX_SEND {
            log::warn!("IP Messenger packet of {} bytes not sent to {to}", bytes.len());
            return;
        }
        // Best effort, like every UDP send here; a lost message is resent.
        if let Err(err) = self.socket.send_to(&bytes, to) {
            log::debug!("IP Messenger send to {to}: {err}");
        }
    }

    fn peer_addr(&self, ip: Ipv4Addr) -> SocketAddrV4 {
        // Clients answer on the IP Messenger port, whatever our source port (iptux).
        SocketAddrV4::new(ip, self.port)
    }

    /// The peers online now, as consumers see them.
    pub fn infos(&self) -> Vec<PeerInfo> {
        self.peers.iter().map(|(ip, peer)| info(*ip, peer, self.port)).collect()
    }
}

/// The id of an IP Messenger peer: derived from its address, login and host names, so the
/// same person at the same place keeps their history.
fn ipmsg_peer_id(ip: Ipv4Addr, user: &str, host: &str) -> PeerId {
    let mut hasher = blake3::Hasher::new_derive_key("pigeon 2026-11 ip messenger peer id");
    hasher.update(&ip.octets());
    hasher.update(user.as_bytes());
    hasher.update(&[0]);
    hasher.update(host.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    PeerId::from_bytes(bytes)
}

/// The client's name for people: "iptux 0.8.3", "FeiQ", "IP Messenger".
fn client_name(version: &[u8]) -> String {
    if text::is_feiq(version) {
        return String::from("FeiQ");
    }
    match version.strip_prefix(b"1_") {
        Some(rest) if !rest.is_empty() => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from("IP Messenger"),
    }
}

fn info(ip: Ipv4Addr, peer: &IpPeer, port: u16) -> PeerInfo {
    PeerInfo {
        id: peer.id,
        name: if peer.nick.is_empty() { peer.user.clone() } else { peer.nick.clone() },
        group: peer.group.clone(),
        host: peer.host.clone(),
        addr: ip.to_string(),
        port,
        status: if peer.absent { Status::Away } else { Status::Online },
        key: None,
        trust: Trust::Unencrypted,
        client: Some(client_name(&peer.version)),
    }
}

/// A message's id: the same for every resend of one packet, different after the sender
/// restarts its numbering.
fn message_id(ip: Ipv4Addr, generation_ms: u64, packet_no: u32) -> MsgId {
    let mut hasher = blake3::Hasher::new_derive_key("pigeon 2026-11 ip messenger message id");
    hasher.update(&ip.octets());
    hasher.update(&generation_ms.to_le_bytes());
    hasher.update(&packet_no.to_le_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    MsgId::from_bytes(bytes)
}

impl Hub {
    /// Announces us to IP Messenger clients (at start and when our profile changes).
    pub(super) fn ipmsg_announce(&mut self, command_mode: u32) {
        let (name, group, absent) =
            (self.me.name.clone(), self.me.group.clone(), self.me.status != Status::Online);
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let extra = Entry::encode(&name, &group, &ipmsg.user, &ipmsg.host);
        let mut command = command_mode | ENTRY_OPTIONS;
        if absent {
            command |= opt::ABSENCEOPT;
        }
        let packet = ipmsg.packet(command, extra);
        for to in ipmsg.destinations.clone() {
            ipmsg.send(&packet, to);
        }
        // Peers reached only by an answer (another subnet) hear it too.
        let known: Vec<SocketAddrV4> = ipmsg.peers.keys().map(|ip| ipmsg.peer_addr(*ip)).collect();
        for to in known.into_iter().filter(|to| !ipmsg.destinations.contains(to)) {
            ipmsg.send(&packet, to);
        }
    }

    /// Says goodbye to IP Messenger clients and stops serving them (shutdown).
    pub(super) fn ipmsg_goodbye(&mut self) {
        self.ipmsg_announce(mode::BR_EXIT);
        if let Some(ipmsg) = &self.ipmsg {
            for (cancel, _) in ipmsg.serving.values() {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Takes in one IP Messenger packet.
    pub(super) fn on_ipmsg(&mut self, from: SocketAddrV4, packet: &Packet) {
        if packet.version.starts_with(VERSION) {
            // Another Pigeon (or our own broadcast): it is listed through its native announces.
            return;
        }
        let ip = *from.ip();
        match packet.mode() {
            mode::BR_ENTRY | mode::ANSENTRY | mode::BR_ABSENCE => self.ipmsg_entry(ip, packet),
            mode::BR_EXIT => self.ipmsg_exit(ip),
            mode::SENDMSG => self.ipmsg_message(ip, packet),
            mode::RECVMSG => self.ipmsg_ack(ip, packet),
            other => log::debug!("IP Messenger command {other:#x} from {ip} ignored"),
        }
    }

    fn ipmsg_entry(&mut self, ip: Ipv4Addr, packet: &Packet) {
        let entry = Entry::decode(&packet.extra, packet.has(opt::UTF8OPT));
        let (user, _) = text::decode(&packet.user, false);
        let (host, _) = text::decode(&packet.host, false);
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let id = ipmsg_peer_id(ip, &user, &host);
        let fresh = packet.mode() == mode::BR_ENTRY;
        let peer = IpPeer {
            id,
            version: packet.version.clone(),
            user,
            host,
            nick: entry.nick,
            group: entry.group,
            absent: packet.has(opt::ABSENCEOPT) && !packet.version.windows(5).any(|w| w == b"iptux"),
            charset: text::charset_for(&packet.version),
            generation_ms: now_ms(),
            seen: VecDeque::new(),
        };
        let previous = ipmsg.peers.insert(ip, peer);
        let joined = previous.as_ref().is_none_or(|old| old.id != id);
        if let (Some(old), false, Some(new)) = (previous, fresh, ipmsg.peers.get_mut(&ip)) {
            // Same numbering unless it started again.
            if old.id == id {
                new.generation_ms = old.generation_ms;
                new.seen = old.seen;
            }
        }
        if packet.mode() == mode::BR_ENTRY {
            let (name, group, absent) =
                (self.me.name.clone(), self.me.group.clone(), self.me.status != Status::Online);
            let extra = Entry::encode(&name, &group, &ipmsg.user, &ipmsg.host);
            let command = mode::ANSENTRY | ENTRY_OPTIONS | if absent { opt::ABSENCEOPT } else { 0 };
            let answer = ipmsg.packet(command, extra);
            ipmsg.send(&answer, ipmsg.peer_addr(ip));
        }
        let Some(peer) = ipmsg.peers.get(&ip) else { return };
        let info = info(ip, peer, ipmsg.port);
        self.remember(&info);
        self.known.insert(id);
        if joined {
            self.sinks.emit(&Event::PeerJoined { peer: info });
        } else {
            self.sinks.emit(&Event::PeerUpdated { peer: info });
        }
        self.ipmsg_flush(id);
    }

    fn ipmsg_exit(&mut self, ip: Ipv4Addr) {
        let Some(ipmsg) = &mut self.ipmsg else { return };
        if let Some(peer) = ipmsg.peers.remove(&ip) {
            ipmsg.pending.retain(|pending| pending.to != ip);
            self.sinks.emit(&Event::PeerLeft { id: peer.id, reason: LeaveReason::Goodbye });
        }
    }

    fn ipmsg_message(&mut self, ip: Ipv4Addr, packet: &Packet) {
        let Some(ipmsg) = &mut self.ipmsg else { return };
        if packet.has(opt::SENDCHECKOPT) && !packet.has(opt::BROADCASTOPT) && !packet.has(opt::AUTORETOPT) {
            // Every copy is acknowledged: the sender resends until one ack arrives.
            let ack = ipmsg.packet(mode::RECVMSG, packet.packet_no.to_string().into_bytes());
            ipmsg.send(&ack, ipmsg.peer_addr(ip));
        }
        let Some(peer) = ipmsg.peers.get_mut(&ip) else {
            log::info!("IP Messenger message from {ip}, which never announced itself; dropped");
            return;
        };
        if peer.seen.contains(&packet.packet_no) {
            return;
        }
        if peer.seen.len() == SEEN_PACKETS {
            peer.seen.pop_front();
        }
        peer.seen.push_back(packet.packet_no);
        let body = packet.extra.split(|&b| b == 0).next().unwrap_or_default();
        let (decoded, charset) = text::decode(body, packet.has(opt::UTF8OPT));
        if charset == Charset::Gb18030 {
            peer.charset = Charset::Gb18030;
        }
        let text = if text::is_feiq(&peer.version) { text::strip_feiq_format(&decoded) } else { &decoded };
        let (id, msg_id) = (peer.id, message_id(ip, peer.generation_ms, packet.packet_no));
        let offer = packet.has(opt::FILEATTACHOPT).then(|| {
            let list = packet.extra.splitn(2, |&b| b == 0).nth(1).unwrap_or_default();
            (attach::parse_attachments(list), packet.has(opt::UTF8OPT))
        });
        if !text.is_empty() {
            match self.store.insert_incoming(msg_id, id, text, now_ms(), false) {
                Ok(Some(message)) => self.sinks.emit(&Event::MessageReceived { message }),
                Ok(None) => {}
                Err(err) => log::error!("cannot store a message from {ip}: {err}"),
            }
        }
        match offer {
            Some((Ok(attachments), utf8_flagged)) if !attachments.is_empty() => {
                let transfer = TransferId::from_bytes(*msg_id.as_bytes());
                self.ipmsg_offer(ip, id, transfer, packet.packet_no, &attachments, utf8_flagged);
            }
            Some((Err(err), _)) => log::info!("malformed file offer from {ip}: {err}"),
            _ => {}
        }
    }

    /// Records a file offer as an incoming transfer waiting for the user.
    fn ipmsg_offer(
        &mut self,
        ip: Ipv4Addr,
        peer: PeerId,
        id: TransferId,
        packet_no: u32,
        attachments: &[Attachment],
        utf8_flagged: bool,
    ) {
        let entries: Vec<TransferEntry> = attachments
            .iter()
            .map(|attachment| TransferEntry {
                path: text::decode(&attachment.name, utf8_flagged).0,
                kind: if attachment.kind == AttachKind::Dir { EntryKind::Dir } else { EntryKind::File },
                size: attachment.size,
            })
            .collect();
        // A name that is a path (or a parent folder) is refused, as in native offers.
        let refusal = entries.iter().find_map(|entry| match sanitize_path(&entry.path) {
            Ok(components) if components.len() == 1 => None,
            Ok(_) => Some(format!("{:?} is a path, not a name", entry.path)),
            Err(err) => Some(err.to_string()),
        });
        let record = incoming_offer(id, peer, entries, refusal.as_ref());
        match self.store.insert_transfer(&record) {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                log::error!("cannot record an offer from {ip}: {err}");
                return;
            }
        }
        self.sinks.emit(&Event::TransferAdded { transfer: TransferInfo::from_record(&record), tag: None });
        if record.state == TransferState::Failed {
            return;
        }
        let file_ids = attachments.iter().map(|attachment| attachment.file_id).collect();
        if let Some(ipmsg) = &mut self.ipmsg {
            ipmsg.offers.insert(id, IpOffer { ip, packet_no, file_ids });
        }
        // Offers from unauthenticated peers always wait for the user, even with auto-accept.
        self.track_offer(record);
    }

    /// The worker job for an accepted IP Messenger offer, or `None` when `record` is not one.
    pub(super) fn ipmsg_receive_job(
        &self,
        record: &TransferRecord,
        places: Vec<Vec<String>>,
        cancel: Arc<AtomicBool>,
    ) -> Option<IpMsgReceiveJob> {
        let ipmsg = self.ipmsg.as_ref()?;
        let offer = ipmsg.offers.get(&record.id)?;
        let items = record
            .entries
            .iter()
            .zip(&offer.file_ids)
            .zip(places)
            .map(|((entry, &file_id), place)| Item {
                file_id,
                kind: if entry.kind == EntryKind::Dir { AttachKind::Dir } else { AttachKind::File },
                size: entry.size,
                place,
            })
            .collect();
        Some(IpMsgReceiveJob {
            id: record.id,
            addr: ipmsg.peer_addr(offer.ip),
            offer_packet: offer.packet_no,
            me: (VERSION.to_vec(), ipmsg.user.as_bytes().to_vec(), ipmsg.host.as_bytes().to_vec()),
            items,
            files_done: record.files_done,
            download_dir: self.download_dir.clone(),
            cancel,
            net: self.net_tx.clone(),
        })
    }

    fn ipmsg_ack(&mut self, ip: Ipv4Addr, packet: &Packet) {
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let Some(acked) = decimal(packet.extra.split(|&b| b == 0).next().unwrap_or_default()) else { return };
        let Some(at) = ipmsg.pending.iter().position(|p| p.to == ip && p.packet_no == acked) else { return };
        let pending = ipmsg.pending.remove(at);
        let Some(peer) = ipmsg.peers.get(&ip).map(|peer| peer.id) else { return };
        match self.store.advance_outgoing(peer, pending.msg_id, MessageState::Delivered) {
            Ok(true) => self.sinks.emit(&Event::MessageStateChanged {
                msg_id: pending.msg_id,
                peer,
                state: MessageState::Delivered,
            }),
            Ok(false) => {}
            Err(err) => log::error!("cannot record the delivery of {}: {err}", pending.msg_id),
        }
    }

    /// Sends the outbox of an IP Messenger peer that is online; returns false when `id` is
    /// not one (a Pigeon peer).
    pub(super) fn ipmsg_flush(&mut self, id: PeerId) -> bool {
        let Some(ipmsg) = &mut self.ipmsg else { return false };
        let Some((&ip, peer)) = ipmsg.peers.iter().find(|(_, peer)| peer.id == id) else {
            return false;
        };
        let charset = peer.charset;
        let queued: Vec<ChatMessage> = match self.store.undelivered(id) {
            Ok(messages) => messages,
            Err(err) => {
                log::error!("cannot read the outbox for {id}: {err}");
                return true;
            }
        };
        for message in queued {
            if ipmsg.pending.iter().any(|p| p.msg_id == message.msg_id) {
                continue;
            }
            let utf8 = if charset == Charset::Utf8 { opt::UTF8OPT } else { 0 };
            let packet =
                ipmsg.packet(mode::SENDMSG | opt::SENDCHECKOPT | utf8, text::encode(&message.text, charset));
            let bytes = packet.encode();
            ipmsg.send(&packet, ipmsg.peer_addr(ip));
            ipmsg.pending.push(Pending {
                packet_no: packet.packet_no,
                to: ip,
                msg_id: message.msg_id,
                bytes,
                tries: 1,
                next_at: Instant::now() + RESEND_INTERVAL,
            });
            if message.state == MessageState::Queued
                && let Ok(true) = self.store.advance_outgoing(id, message.msg_id, MessageState::Sent)
            {
                self.sinks.emit(&Event::MessageStateChanged {
                    msg_id: message.msg_id,
                    peer: id,
                    state: MessageState::Sent,
                });
            }
        }
        self.ipmsg_send_offers(id, ip, charset);
        true
    }

    /// Resends unacknowledged messages; after the last try a message waits in the outbox
    /// until the peer announces itself again.
    pub(super) fn ipmsg_housekeeping(&mut self, now: Instant) {
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let port = ipmsg.port;
        let mut resend = Vec::new();
        ipmsg.pending.retain_mut(|pending| {
            if now < pending.next_at {
                return true;
            }
            if pending.tries >= SEND_TRIES {
                log::info!("IP Messenger peer {} did not acknowledge message {}", pending.to, pending.msg_id);
                return false;
            }
            pending.tries += 1;
            pending.next_at = now + RESEND_INTERVAL;
            // The identical packet, same number: the receiver drops the copies it has.
            resend.push((pending.bytes.clone(), SocketAddrV4::new(pending.to, port)));
            true
        });
        for (bytes, to) in resend {
            if let Err(err) = ipmsg.socket.send_to(&bytes, to) {
                log::debug!("IP Messenger resend to {to}: {err}");
            }
        }
    }

    /// The peer list of IP Messenger peers (for `list_peers`).
    pub(super) fn ipmsg_peers(&self) -> Vec<PeerInfo> {
        self.ipmsg.as_ref().map(IpMsg::infos).unwrap_or_default()
    }

    /// Sends our offers to an IP Messenger peer (each once; resent until acknowledged).
    fn ipmsg_send_offers(&mut self, peer: PeerId, ip: Ipv4Addr, charset: Charset) {
        let waiting = self.offers_waiting(peer);
        let Some(ipmsg) = &mut self.ipmsg else { return };
        for record in waiting {
            if ipmsg.sent_offers.values().any(|(id, _)| *id == record.id) {
                continue;
            }
            let mut list = Vec::new();
            for (index, entry) in top_level(&record.entries) {
                let size = item_size(&record.entries, index);
                let kind = if entry.kind == EntryKind::Dir { AttachKind::Dir } else { AttachKind::File };
                let file_id = u32::try_from(index).unwrap_or(u32::MAX);
                list.extend(attach::encode_attachment(
                    file_id,
                    &text::encode(&entry.path, charset),
                    size,
                    kind,
                ));
            }
            let utf8 = if charset == Charset::Utf8 { opt::UTF8OPT } else { 0 };
            let extra = [vec![0], list].concat();
            let packet = ipmsg.packet(mode::SENDMSG | opt::FILEATTACHOPT | opt::SENDCHECKOPT | utf8, extra);
            let bytes = packet.encode();
            ipmsg.send(&packet, ipmsg.peer_addr(ip));
            ipmsg.sent_offers.insert(packet.packet_no, (record.id, ip));
            ipmsg.pending.push(Pending {
                packet_no: packet.packet_no,
                to: ip,
                msg_id: MsgId::from_bytes(*record.id.as_bytes()),
                bytes,
                tries: 1,
                next_at: Instant::now() + RESEND_INTERVAL,
            });
        }
    }

    /// A client asks for something we offered: serve it on its own thread.
    pub(super) fn on_ipmsg_request(&mut self, stream: TcpStream, from: SocketAddrV4, packet: &Packet) {
        let want_folder = match packet.mode() {
            GETFILEDATA => false,
            GETDIRFILES => true,
            other => {
                log::debug!("IP Messenger TCP command {other:#x} from {from} ignored");
                return;
            }
        };
        let Some((offer_packet, file_id, offset)) = attach::parse_request(&packet.extra) else { return };
        let Some(ipmsg) = &self.ipmsg else { return };
        // Only the peer the offer went to may fetch it.
        let Some(&(id, ip)) = ipmsg.sent_offers.get(&offer_packet) else { return };
        if ip != *from.ip() {
            log::info!("{from} asked for an offer made to {ip}; refused");
            return;
        }
        let Some(record) = self.fetching_started(id) else { return };
        let index = usize::try_from(file_id).unwrap_or(usize::MAX);
        let Some(top) = record.entries.get(index).filter(|entry| !entry.path.contains('/')) else { return };
        if (top.kind == EntryKind::Dir) != want_folder {
            return;
        }
        let prefix = format!("{}/", top.path);
        let entries: Vec<(TransferEntry, PathBuf)> = record
            .entries
            .iter()
            .zip(&record.sources)
            .enumerate()
            .filter(|(at, (entry, _))| *at == index || (want_folder && entry.path.starts_with(&prefix)))
            .map(|(_, (entry, source))| (entry.clone(), source.clone()))
            .collect();
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let cancel = ipmsg
            .serving
            .entry(id)
            .or_insert_with(|| (Arc::new(AtomicBool::new(false)), BTreeSet::new()))
            .0
            .clone();
        let job = ServeJob { id, index, entries, offset, stream, cancel, net: self.net_tx.clone() };
        match threads::spawn("pigeon-ipmsg-serve", move || ipmsg_send::serve(job)) {
            Ok(thread) => self.helpers.push(thread),
            Err(err) => log::error!("cannot start a serving thread: {err}"),
        }
    }

    /// A request was served: the offer is complete once every entry with data was.
    pub(super) fn on_ipmsg_served(&mut self, id: TransferId, index: usize, outcome: Result<(), String>) {
        if let Err(reason) = outcome {
            log::info!("serving entry {index} of {id} stopped: {reason}");
            return;
        }
        let Some(ipmsg) = &mut self.ipmsg else { return };
        let Some((_, served)) = ipmsg.serving.get_mut(&id) else { return };
        served.insert(index);
        let served = served.clone();
        let Some(record) = self.live_record(id) else { return };
        // iptux never fetches an empty entry, so those do not count.
        let complete = top_level(&record.entries)
            .filter(|(at, _)| item_size(&record.entries, *at) > 0)
            .all(|(at, _)| served.contains(&at));
        if complete {
            self.end_transfer(id, TransferState::Completed, "", false);
        }
    }

    /// Stops serving a transfer that ended.
    pub(super) fn ipmsg_forget(&mut self, id: TransferId) {
        if let Some(ipmsg) = &mut self.ipmsg {
            if let Some((cancel, _)) = ipmsg.serving.remove(&id) {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            ipmsg.sent_offers.retain(|_, (offer, _)| *offer != id);
            ipmsg.offers.remove(&id);
        }
    }
}

/// Request for one file's bytes.
const GETFILEDATA: u32 = 0x60;
/// Request for a folder stream.
const GETDIRFILES: u32 = 0x62;

/// The top-level entries of an offer, with their positions (which are their file ids).
fn top_level(entries: &[TransferEntry]) -> impl Iterator<Item = (usize, &TransferEntry)> {
    entries.iter().enumerate().filter(|(_, entry)| !entry.path.contains('/'))
}

/// Bytes of a top-level entry: a file's size, or the total of a folder's files.
fn item_size(entries: &[TransferEntry], index: usize) -> u64 {
    let Some(top) = entries.get(index) else { return 0 };
    let prefix = format!("{}/", top.path);
    entries
        .iter()
        .filter(|entry| entry.path == top.path || entry.path.starts_with(&prefix))
        .map(|entry| entry.size)
        .sum()
}
