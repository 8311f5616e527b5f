//! UDP discovery datagrams: how a node tells the subnet who it is and that it is leaving.
//!
//! Layout of every datagram (see docs/PROTOCOL.md for byte examples):
//! `"PIGN"` magic (4 bytes), version (1 byte), kind (1 byte), a UTF-8 JSON object, then the
//! sender's 64-byte signature over [`SIGNING_CONTEXT`] and everything before it. Every body
//! names the sender's key and a sequence number that only grows, so a datagram proves who
//! sent it and a copy replayed later is recognised as old (the node's rules, not the codec's).

use serde::{Deserialize, Serialize};

use super::DecodeError;
use super::MAX_LABEL_BYTES;
use super::ids::PeerId;
use super::keys::{PublicKey, SIGNATURE_BYTES, Signer};

/// First four bytes of every discovery datagram; anything else on the port is not ours.
pub const MAGIC: [u8; 4] = *b"PIGN";

/// Version byte of discovery datagrams: 3 since they are signed. TCP frames keep
/// [`super::PROTOCOL_VERSION`].
pub const DISCOVERY_VERSION: u8 = 3;

/// Bytes before the JSON body: magic, version, kind.
pub const HEADER_LEN: usize = 6;

/// What a datagram's signature covers, before the datagram's own bytes: a signature made
/// for anything else with the same key can never pass for a datagram's.
pub const SIGNING_CONTEXT: &[u8] = b"pigeon 2026-12 discovery datagram\n";

/// The IPv4 multicast group announces also go to (at the native port), with TTL 1: an
/// organisation-local address, so that switches with IGMP snooping and Wi-Fi access points
/// that turn multicast into unicast carry it to the members only.
pub const MULTICAST_GROUP: [u8; 4] = [239, 255, 24, 26];

/// The IPv6 link-local multicast group announces go to over IPv6 (at the native port, out
/// of each interface with IPv6): ff02::5069:6765, the last four bytes spelling "Pige".
pub const MULTICAST_GROUP_V6: [u16; 8] = [0xff02, 0, 0, 0, 0, 0, 0x5069, 0x6765];

/// Largest datagram we send or accept. 1200 bytes fits every Ethernet, Wi-Fi and common VPN
/// MTU without IP fragmentation, which lossy networks punish.
pub const MAX_DATAGRAM: usize = 1200;

/// Whether a peer is at the keyboard; shown as a status dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Available.
    #[default]
    Online,
    /// Away from the keyboard.
    Away,
    /// Busy; please do not disturb.
    Busy,
    /// A status this version does not know; shown as online.
    #[serde(other)]
    Unknown,
}

/// Who a node is and where its TCP listener is: the body of every announce, heartbeat, reply
/// and of the TCP hello frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The sender's stable identity, which must be derived from `key`.
    pub id: PeerId,
    /// The sender's long-term public key; only its holder can complete a handshake.
    pub key: PublicKey,
    /// Display name chosen by the user.
    pub name: String,
    /// Group (department, team) used to group the peer list.
    #[serde(default)]
    pub group: String,
    /// Host name of the sender's machine.
    #[serde(default)]
    pub host: String,
    /// Availability.
    #[serde(default)]
    pub status: Status,
    /// TCP port of the sender's listener (its IP is the datagram's source address).
    pub port: u16,
    /// Seconds between the sender's heartbeats (more on a crowded subnet); receivers drop it
    /// after four missed ones. Left out when it is the usual [`HEARTBEAT_SECS`], as older
    /// versions do.
    #[serde(default = "usual_heartbeat", skip_serializing_if = "is_usual_heartbeat")]
    pub heartbeat_secs: u16,
    /// The sender's datagram counter: greater in every datagram it sends (its clock in
    /// milliseconds since 1970, or the last value plus one if that is not greater). Receivers
    /// drop a datagram whose number is not above the last one they took from that sender.
    /// Required in datagrams; 0 and left out in a TCP hello, where the connection is proof.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
}

/// The heartbeat interval of a node with few peers, in seconds.
pub const HEARTBEAT_SECS: u16 = 2;

/// The slowest heartbeat any node announces, so that even on a huge subnet a vanished peer
/// goes within 2 min. A claimed interval above it is taken as this one.
pub const MAX_HEARTBEAT_SECS: u16 = 30;

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn usual_heartbeat() -> u16 {
    HEARTBEAT_SECS
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_usual_heartbeat(secs: &u16) -> bool {
    *secs == HEARTBEAT_SECS
}

impl Presence {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        for (what, value) in [("name", &self.name), ("group", &self.group), ("host", &self.host)] {
            if value.len() > MAX_LABEL_BYTES {
                return Err(DecodeError::TooLarge { what, len: value.len(), max: MAX_LABEL_BYTES });
            }
        }
        if self.port == 0 {
            return Err(DecodeError::InvalidField("port"));
        }
        if self.heartbeat_secs == 0 {
            return Err(DecodeError::InvalidField("heartbeat_secs"));
        }
        if self.key.peer_id() != self.id {
            return Err(DecodeError::InvalidField("id (not derived from key)"));
        }
        Ok(())
    }

    /// How long this peer may stay silent before it counts as gone: `missed` heartbeats of
    /// the interval it claims, clamped to [`MAX_HEARTBEAT_SECS`] (a claim of days would keep
    /// a forged presence listed for days).
    pub fn silence_allowed(&self, missed: u32) -> std::time::Duration {
        std::time::Duration::from_secs(self.heartbeat_secs.min(MAX_HEARTBEAT_SECS).into()) * missed
    }
}

/// Body of a goodbye datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    /// Who is leaving.
    pub id: PeerId,
    /// Its key, which signs the goodbye (the id must be derived from it).
    pub key: PublicKey,
    /// As in [`Presence::seq`].
    pub seq: u64,
}

/// One discovery datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// "I am here, please answer": sent when a node starts; receivers reply directly.
    Announce(Presence),
    /// "I am still here": sent periodically; answered only by receivers that do not know us.
    Heartbeat(Presence),
    /// A direct answer to an announce.
    Reply(Presence),
    /// "I am leaving": receivers drop the peer at once.
    Goodbye(Goodbye),
}

const KIND_ANNOUNCE: u8 = 1;
const KIND_HEARTBEAT: u8 = 2;
const KIND_REPLY: u8 = 3;
const KIND_GOODBYE: u8 = 4;

impl Datagram {
    /// The identity of the sender, whatever the kind.
    pub fn sender(&self) -> PeerId {
        match self {
            Datagram::Announce(p) | Datagram::Heartbeat(p) | Datagram::Reply(p) => p.id,
            Datagram::Goodbye(bye) => bye.id,
        }
    }

    /// The sender's sequence number, whatever the kind.
    pub fn seq(&self) -> u64 {
        match self {
            Datagram::Announce(p) | Datagram::Heartbeat(p) | Datagram::Reply(p) => p.seq,
            Datagram::Goodbye(bye) => bye.seq,
        }
    }

    fn key(&self) -> PublicKey {
        match self {
            Datagram::Announce(p) | Datagram::Heartbeat(p) | Datagram::Reply(p) => p.key,
            Datagram::Goodbye(bye) => bye.key,
        }
    }

    /// Encodes and signs the datagram; `signer` must hold the key the body names. The caller
    /// keeps presences within limits (labels are truncated when the node builds its
    /// presence), so the result never exceeds [`MAX_DATAGRAM`].
    pub fn encode(&self, signer: &impl Signer) -> Vec<u8> {
        debug_assert_eq!(signer.public(), self.key(), "a datagram is signed by the key it names");
        let (kind, body) = match self {
            Datagram::Announce(p) => (KIND_ANNOUNCE, serde_json::to_vec(p)),
            Datagram::Heartbeat(p) => (KIND_HEARTBEAT, serde_json::to_vec(p)),
            Datagram::Reply(p) => (KIND_REPLY, serde_json::to_vec(p)),
            Datagram::Goodbye(bye) => (KIND_GOODBYE, serde_json::to_vec(bye)),
        };
        let body = body.expect("plain structs with string keys always serialize");
        let mut out = Vec::with_capacity(SIGNING_CONTEXT.len() + HEADER_LEN + body.len() + SIGNATURE_BYTES);
        out.extend_from_slice(SIGNING_CONTEXT);
        out.extend_from_slice(&MAGIC);
        out.push(DISCOVERY_VERSION);
        out.push(kind);
        out.extend_from_slice(&body);
        let signature = signer.sign(&out);
        out.drain(..SIGNING_CONTEXT.len());
        out.extend_from_slice(&signature);
        out
    }

    /// Decodes one whole datagram and checks its signature: one that the key it names did
    /// not sign is an error like any malformed one.
    pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(DecodeError::TooLarge { what: "datagram", len: bytes.len(), max: MAX_DATAGRAM });
        }
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(if bytes.starts_with(&MAGIC) || MAGIC.starts_with(bytes) {
                DecodeError::Truncated(bytes.len())
            } else {
                DecodeError::BadMagic
            });
        };
        let [m0, m1, m2, m3, version, kind] = *header;
        if [m0, m1, m2, m3] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if version != DISCOVERY_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let Some((body, signature)) = rest.split_last_chunk::<SIGNATURE_BYTES>() else {
            return Err(DecodeError::Truncated(bytes.len()));
        };
        let presence = || -> Result<Presence, DecodeError> {
            let presence: Presence = serde_json::from_slice(body)?;
            presence.validate()?;
            Ok(presence)
        };
        let datagram = match kind {
            KIND_ANNOUNCE => Datagram::Announce(presence()?),
            KIND_HEARTBEAT => Datagram::Heartbeat(presence()?),
            KIND_REPLY => Datagram::Reply(presence()?),
            KIND_GOODBYE => {
                let bye: Goodbye = serde_json::from_slice(body)?;
                if bye.key.peer_id() != bye.id {
                    return Err(DecodeError::InvalidField("id (not derived from key)"));
                }
                Datagram::Goodbye(bye)
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        if datagram.seq() == 0 {
            return Err(DecodeError::InvalidField("seq"));
        }
        let signed = bytes.len() - SIGNATURE_BYTES;
        if !datagram
            .key()
            .verifies(&[SIGNING_CONTEXT, bytes.get(..signed).unwrap_or_default()].concat(), signature)
        {
            return Err(DecodeError::InvalidField("signature"));
        }
        Ok(datagram)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
mod tests {
    use super::*;
    use crate::secure::Identity;
    use proptest::prelude::*;

    /// Ana of the examples in docs/PROTOCOL.md: private key 32 bytes of 0x01.
    pub(crate) fn ana_identity() -> Identity {
        Identity::from_private([1; 32])
    }

    /// The announce example body from docs/PROTOCOL.md; its signature follows it.
    const ANNOUNCE_BODY: &str = r#"{"id":"d15f6f6cf83184c23082727f89b06a2b","key":"a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209","name":"Ana","group":"Ops","host":"ana-laptop","status":"online","port":2426,"seq":1764633600000}"#;

    /// The goodbye example body from docs/PROTOCOL.md.
    const GOODBYE_BODY: &str = r#"{"id":"d15f6f6cf83184c23082727f89b06a2b","key":"a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209","seq":1764633601000}"#;

    pub(crate) fn ana() -> Presence {
        let identity = ana_identity();
        Presence {
            id: identity.peer_id(),
            key: identity.public(),
            name: "Ana".into(),
            group: "Ops".into(),
            host: "ana-laptop".into(),
            status: Status::Online,
            port: 2426,
            heartbeat_secs: HEARTBEAT_SECS,
            seq: 1_764_633_600_000,
        }
    }

    #[test]
    fn documented_examples_decode_and_reencode_byte_exactly() {
        let announce = Datagram::Announce(ana()).encode(&ana_identity());
        let (head, body) = announce.split_at(HEADER_LEN);
        assert_eq!(head, b"PIGN\x03\x01");
        let (body, signature) = body.split_at(body.len() - SIGNATURE_BYTES);
        assert_eq!(std::str::from_utf8(body).unwrap(), ANNOUNCE_BODY);
        // Signatures are deterministic: the one printed in docs/PROTOCOL.md.
        assert_eq!(crate::protocol::ids::to_hex(signature), ANNOUNCE_SIGNATURE);
        assert_eq!(Datagram::decode(&announce).unwrap(), Datagram::Announce(ana()));
        let goodbye = Goodbye { id: ana().id, key: ana().key, seq: 1_764_633_601_000 };
        let bye = Datagram::Goodbye(goodbye.clone()).encode(&ana_identity());
        assert_eq!(&bye[HEADER_LEN..bye.len() - SIGNATURE_BYTES], GOODBYE_BODY.as_bytes());
        assert_eq!(Datagram::decode(&bye).unwrap(), Datagram::Goodbye(goodbye));
    }

    /// The signature of the announce example, as docs/PROTOCOL.md prints it.
    const ANNOUNCE_SIGNATURE: &str = "52c68fdc81a51fb864bd59575c53ccfa4195fe5252f5f5a1e796087dc4bca95f3d9481da17ba98afad3e2ecace78c6ff4840e278838002fa426631f74215910d";

    #[test]
    fn every_truncation_and_every_flipped_bit_is_an_error_not_a_panic() {
        let announce = Datagram::Announce(ana()).encode(&ana_identity());
        for cut in 0..announce.len() {
            assert!(Datagram::decode(&announce[..cut]).is_err(), "cut at {cut}");
        }
        for bit in 0..announce.len() * 8 {
            let mut bent = announce.clone();
            bent[bit / 8] ^= 1 << (bit % 8);
            assert!(Datagram::decode(&bent).is_err(), "bit {bit} flipped");
        }
    }

    #[test]
    fn a_datagram_signed_by_another_key_or_unsigned_is_rejected() {
        let forger = Identity::from_private([2; 32]);
        // Ana's presence, signed by someone else (the encoder's check is for our own bugs).
        let mut forged = Datagram::Announce(ana()).encode(&ana_identity());
        let len = forged.len();
        let stolen = forger.sign(&[SIGNING_CONTEXT, &forged[..len - SIGNATURE_BYTES]].concat());
        forged[len - SIGNATURE_BYTES..].copy_from_slice(&stolen);
        assert_eq!(Datagram::decode(&forged), Err(DecodeError::InvalidField("signature")));
        let unsigned = [b"PIGN\x03\x01".as_slice(), ANNOUNCE_BODY.as_bytes()].concat();
        assert!(Datagram::decode(&unsigned).is_err());
        // Version 2 datagrams (unsigned) are no longer spoken.
        let mut old = Datagram::Announce(ana()).encode(&ana_identity());
        old[4] = 2;
        assert_eq!(Datagram::decode(&old), Err(DecodeError::UnsupportedVersion(2)));
    }

    #[test]
    fn rejects_foreign_and_future_packets() {
        let announce = Datagram::Announce(ana()).encode(&ana_identity());
        assert_eq!(Datagram::decode(b"1_lbt4_10#128#..."), Err(DecodeError::BadMagic));
        let mut future = announce.clone();
        future[4] = 4;
        assert_eq!(Datagram::decode(&future), Err(DecodeError::UnsupportedVersion(4)));
        let mut odd_kind = announce;
        odd_kind[5] = 99;
        assert_eq!(Datagram::decode(&odd_kind), Err(DecodeError::UnknownKind(99)));
    }

    #[test]
    fn rejects_oversized_datagrams_and_labels_and_the_worst_labels_fit() {
        let big = vec![b'x'; MAX_DATAGRAM + 1];
        assert!(matches!(Datagram::decode(&big), Err(DecodeError::TooLarge { .. })));
        let mut long_name = ana();
        long_name.name = "n".repeat(MAX_LABEL_BYTES + 1);
        let bytes = Datagram::Reply(long_name).encode(&ana_identity());
        assert!(matches!(Datagram::decode(&bytes), Err(DecodeError::TooLarge { what: "name", .. })));
        // Every label at its limit and each character escaped in JSON: still one datagram.
        let mut worst = ana();
        (worst.name, worst.group, worst.host) =
            ("\"".repeat(MAX_LABEL_BYTES), "\\".repeat(MAX_LABEL_BYTES), "\"".repeat(MAX_LABEL_BYTES));
        (worst.heartbeat_secs, worst.status, worst.port, worst.seq) = (17, Status::Away, 65535, u64::MAX);
        let bytes = Datagram::Heartbeat(worst.clone()).encode(&ana_identity());
        assert!(bytes.len() <= MAX_DATAGRAM, "{} bytes", bytes.len());
        assert_eq!(Datagram::decode(&bytes).unwrap(), Datagram::Heartbeat(worst));
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_status_tolerated() {
        let identity = ana_identity();
        let body = format!(
            r#"{{"id":"{}","key":"{}","name":"Ana","port":9,"status":"in-a-meeting","future":[1,2],"seq":5}}"#,
            identity.peer_id(),
            identity.public()
        );
        let mut bytes = [b"PIGN\x03\x02".as_slice(), body.as_bytes()].concat();
        let signature = identity.sign(&[SIGNING_CONTEXT, &bytes].concat());
        bytes.extend_from_slice(&signature);
        let Datagram::Heartbeat(p) = Datagram::decode(&bytes).unwrap() else { panic!("wrong kind") };
        assert_eq!(p.status, Status::Unknown);
        assert_eq!(p.group, "");
        assert_eq!((p.port, p.seq), (9, 5));
    }

    #[test]
    fn rejects_an_id_not_derived_from_the_key_and_a_missing_sequence_number() {
        let mut impostor = ana();
        impostor.id = Identity::from_private([2; 32]).peer_id();
        assert_eq!(
            Datagram::decode(&Datagram::Announce(impostor).encode(&ana_identity())),
            Err(DecodeError::InvalidField("id (not derived from key)"))
        );
        let mut unnumbered = ana();
        unnumbered.seq = 0;
        assert_eq!(
            Datagram::decode(&Datagram::Announce(unnumbered).encode(&ana_identity())),
            Err(DecodeError::InvalidField("seq"))
        );
    }

    #[test]
    fn a_claimed_interval_is_clamped() {
        let mut slow = ana();
        slow.heartbeat_secs = u16::MAX;
        assert_eq!(
            slow.silence_allowed(4),
            std::time::Duration::from_secs(4 * u64::from(MAX_HEARTBEAT_SECS))
        );
        slow.heartbeat_secs = 3;
        assert_eq!(slow.silence_allowed(4), std::time::Duration::from_secs(12));
    }

    #[test]
    fn rejects_wrong_types_and_port_zero() {
        let mut zero = ana();
        zero.port = 0;
        assert_eq!(
            Datagram::decode(&Datagram::Announce(zero).encode(&ana_identity())),
            Err(DecodeError::InvalidField("port"))
        );
    }

    fn label() -> impl Strategy<Value = String> {
        "\\PC{0,30}"
    }

    proptest! {
        #[test]
        fn presence_round_trips(name in label(), group in label(), host in label(), port in 1u16.., private in any::<[u8; 32]>(), away in any::<bool>(), heartbeat_secs in 1u16.., seq in 1u64..) {
            let identity = Identity::from_private(private);
            let key = identity.public();
            let presence = Presence {
                id: key.peer_id(), key, name, group, host, port, heartbeat_secs, seq,
                status: if away { Status::Away } else { Status::Online },
            };
            for datagram in [Datagram::Announce(presence.clone()), Datagram::Heartbeat(presence.clone()), Datagram::Reply(presence)] {
                let bytes = datagram.encode(&identity);
                prop_assert!(bytes.len() <= MAX_DATAGRAM);
                prop_assert_eq!(Datagram::decode(&bytes).unwrap(), datagram);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            // Only a panic would fail this property; any result is fine.
            Datagram::decode(&bytes).ok();
        }
    }
}
