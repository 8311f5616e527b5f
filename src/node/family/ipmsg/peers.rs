//! IP Messenger peers as we know them: by address, as every IP Messenger client knows its
//! peers, with the client they run, the charset their text comes in, and the packet numbers
//! seen lately (clients resend until acknowledged, and a client's numbers restart when it
//! announces itself again: iptux counts from 1 at every launch).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use crate::node::event::PeerInfo;
use crate::protocol::Family;
use crate::protocol::announce::Status;
use crate::protocol::ids::{MsgId, PeerId};
use crate::protocol::ipmsg::entry::Entry;
use crate::protocol::ipmsg::text::{self, Charset};
use crate::protocol::ipmsg::{Packet, mode, opt};
use crate::store::Trust;

/// Packet numbers remembered per peer to drop resends.
const SEEN_PACKETS: usize = 256;

/// One IP Messenger peer.
pub struct IpPeer {
    /// Derived from its address, login and host names.
    pub id: PeerId,
    /// Its version field: which client it is.
    pub version: Vec<u8>,
    /// Its login name.
    pub user: String,
    /// Its host name.
    pub host: String,
    /// Its display name (may be empty: then the login name shows).
    pub nick: String,
    /// Its group.
    pub group: String,
    /// Whether it says it is away.
    pub absent: bool,
    /// Text to this peer is always in this charset (iptux mangles a peer whose encoding
    /// flips); FeiQ gets GB18030, everyone else UTF-8.
    pub charset: Charset,
    /// When its current packet numbering started (its last entry packet).
    pub generation_ms: u64,
    /// Recent packet numbers of this generation, oldest first.
    seen: VecDeque<u32>,
}

impl IpPeer {
    /// The peer an entry packet (`BR_ENTRY`, `ANSENTRY`, `BR_ABSENCE`) from `ip` describes,
    /// heard at `now_ms`.
    pub fn from_entry(ip: Ipv4Addr, packet: &Packet, now_ms: u64) -> IpPeer {
        let entry = Entry::decode(&packet.extra, packet.has(opt::UTF8OPT));
        let (user, _) = text::decode(&packet.user, false);
        let (host, _) = text::decode(&packet.host, false);
        IpPeer {
            id: peer_id(ip, &user, &host),
            version: packet.version.clone(),
            user,
            host,
            nick: entry.nick,
            group: entry.group,
            // iptux sets the absence flag on every entry, away or not.
            absent: packet.has(opt::ABSENCEOPT) && !packet.version.windows(5).any(|w| w == b"iptux"),
            charset: text::charset_for(&packet.version),
            generation_ms: now_ms,
            seen: VecDeque::new(),
        }
    }

    /// Takes over the packet numbering of `old`, the same peer, unless `packet` starts a new
    /// one (a `BR_ENTRY`: the client started again).
    pub fn continue_numbering(&mut self, old: IpPeer, packet: &Packet) {
        if old.id == self.id && packet.mode() != mode::BR_ENTRY {
            self.generation_ms = old.generation_ms;
            self.seen = old.seen;
        }
    }

    /// Whether packet `packet_no` is new (not a resend); remembers it.
    pub fn first_time(&mut self, packet_no: u32) -> bool {
        if self.seen.contains(&packet_no) {
            return false;
        }
        if self.seen.len() == SEEN_PACKETS {
            self.seen.pop_front();
        }
        self.seen.push_back(packet_no);
        true
    }

    /// The id of a message in this peer's current numbering.
    pub fn message_id(&self, ip: Ipv4Addr, packet_no: u32) -> MsgId {
        let mut hasher = blake3::Hasher::new_derive_key("pigeon 2026-11 ip messenger message id");
        hasher.update(&ip.octets());
        hasher.update(&self.generation_ms.to_le_bytes());
        hasher.update(&packet_no.to_le_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        MsgId::from_bytes(bytes)
    }

    /// The peer as consumers see it (reached at `ip`, on the IP Messenger `port`).
    pub fn info(&self, ip: Ipv4Addr, port: u16) -> PeerInfo {
        PeerInfo {
            id: self.id,
            name: if self.nick.is_empty() { self.user.clone() } else { self.nick.clone() },
            group: self.group.clone(),
            host: self.host.clone(),
            addr: ip.to_string(),
            port,
            status: if self.absent { Status::Away } else { Status::Online },
            key: None,
            trust: Trust::Unencrypted,
            client: Some(client_name(&self.version)),
            family: Family::Ipmsg,
        }
    }
}

/// The id of an IP Messenger peer: derived from its address, login and host names, so the
/// same person at the same place keeps their history.
fn peer_id(ip: Ipv4Addr, user: &str, host: &str) -> PeerId {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(command: u32, version: &[u8]) -> Packet {
        Packet {
            version: version.to_vec(),
            packet_no: 1,
            user: b"root".to_vec(),
            host: b"vm".to_vec(),
            command,
            extra: b"iptux-A\0grpA\0".to_vec(),
        }
    }

    #[test]
    fn resends_are_dropped_and_a_new_entry_starts_a_new_numbering() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut peer = IpPeer::from_entry(ip, &entry(mode::BR_ENTRY | opt::ABSENCEOPT, b"1_iptux 0.8.3"), 1);
        assert!(!peer.absent, "iptux's absence flag means nothing");
        assert!(peer.first_time(7));
        assert!(!peer.first_time(7));
        let id = peer.message_id(ip, 7);
        // An answer keeps the numbering; a fresh entry (a restart) starts another.
        let mut answered = IpPeer::from_entry(ip, &entry(mode::ANSENTRY, b"1_iptux 0.8.3"), 2);
        answered.continue_numbering(peer, &entry(mode::ANSENTRY, b"1_iptux 0.8.3"));
        assert_eq!(answered.message_id(ip, 7), id);
        assert!(!answered.first_time(7));
        let restarted = IpPeer::from_entry(ip, &entry(mode::BR_ENTRY, b"1_iptux 0.8.3"), 3);
        assert_ne!(restarted.message_id(ip, 7), id);
        let info = restarted.info(ip, 2425);
        assert_eq!(
            (info.name.as_str(), info.client.as_deref(), info.trust),
            ("iptux-A", Some("iptux 0.8.3"), Trust::Unencrypted)
        );
        assert_eq!(info.family, Family::Ipmsg);
        assert_eq!(client_name(b"1"), "IP Messenger");
    }
}
