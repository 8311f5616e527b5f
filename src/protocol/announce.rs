//! UDP discovery datagrams: how a node tells the subnet who it is and that it is leaving.
//!
//! Layout of every datagram (see docs/PROTOCOL.md for byte examples):
//! `"PIGN"` magic (4 bytes), version (1 byte), kind (1 byte), then a UTF-8 JSON object.

use serde::{Deserialize, Serialize};

use super::ids::PeerId;
use super::keys::PublicKey;
use super::{DecodeError, MAX_LABEL_BYTES, PROTOCOL_VERSION};

/// First four bytes of every discovery datagram; anything else on the port is not ours.
pub const MAGIC: [u8; 4] = *b"PIGN";

/// Bytes before the JSON body: magic, version, kind.
pub const HEADER_LEN: usize = 6;

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
}

/// The heartbeat interval of a node with few peers, in seconds.
pub const HEARTBEAT_SECS: u16 = 2;

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
}

/// Body of a goodbye datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    /// Who is leaving.
    pub id: PeerId,
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

    /// Encodes the datagram. The caller keeps presences within limits (labels are truncated
    /// when the node builds its presence), so the result never exceeds [`MAX_DATAGRAM`].
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body) = match self {
            Datagram::Announce(p) => (KIND_ANNOUNCE, serde_json::to_vec(p)),
            Datagram::Heartbeat(p) => (KIND_HEARTBEAT, serde_json::to_vec(p)),
            Datagram::Reply(p) => (KIND_REPLY, serde_json::to_vec(p)),
            Datagram::Goodbye(bye) => (KIND_GOODBYE, serde_json::to_vec(bye)),
        };
        let body = body.expect("plain structs with string keys always serialize");
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.push(PROTOCOL_VERSION);
        out.push(kind);
        out.extend_from_slice(&body);
        out
    }

    /// Decodes one whole datagram.
    pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(DecodeError::TooLarge { what: "datagram", len: bytes.len(), max: MAX_DATAGRAM });
        }
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
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
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let presence = || -> Result<Presence, DecodeError> {
            let presence: Presence = serde_json::from_slice(body)?;
            presence.validate()?;
            Ok(presence)
        };
        Ok(match kind {
            KIND_ANNOUNCE => Datagram::Announce(presence()?),
            KIND_HEARTBEAT => Datagram::Heartbeat(presence()?),
            KIND_REPLY => Datagram::Reply(presence()?),
            KIND_GOODBYE => Datagram::Goodbye(serde_json::from_slice(body)?),
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The announce example from docs/PROTOCOL.md, byte for byte.
    pub(crate) const ANNOUNCE_EXAMPLE: &[u8] = b"PIGN\x02\x01{\"id\":\"5bc84f85ae674108b77d54c4cf60d17a\",\"key\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"name\":\"Ana\",\"group\":\"Ops\",\"host\":\"ana-laptop\",\"status\":\"online\",\"port\":2426}";

    /// The goodbye example from docs/PROTOCOL.md.
    const GOODBYE_EXAMPLE: &[u8] = b"PIGN\x02\x04{\"id\":\"5bc84f85ae674108b77d54c4cf60d17a\"}";

    pub(crate) fn ana() -> Presence {
        Presence {
            id: "5bc84f85ae674108b77d54c4cf60d17a".parse().unwrap(),
            key: PublicKey::from_bytes([1; 32]),
            name: "Ana".into(),
            group: "Ops".into(),
            host: "ana-laptop".into(),
            status: Status::Online,
            port: 2426,
            heartbeat_secs: HEARTBEAT_SECS,
        }
    }

    #[test]
    fn documented_examples_decode_and_reencode_byte_exactly() {
        let announce = Datagram::decode(ANNOUNCE_EXAMPLE).unwrap();
        assert_eq!(announce, Datagram::Announce(ana()));
        assert_eq!(announce.encode(), ANNOUNCE_EXAMPLE);
        let bye = Datagram::decode(GOODBYE_EXAMPLE).unwrap();
        assert_eq!(bye, Datagram::Goodbye(Goodbye { id: ana().id }));
        assert_eq!(bye.encode(), GOODBYE_EXAMPLE);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for cut in 0..ANNOUNCE_EXAMPLE.len() {
            assert!(Datagram::decode(&ANNOUNCE_EXAMPLE[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_foreign_and_future_packets() {
        assert_eq!(Datagram::decode(b"1_lbt4_10#128#..."), Err(DecodeError::BadMagic));
        let mut future = ANNOUNCE_EXAMPLE.to_vec();
        future[4] = 3;
        assert_eq!(Datagram::decode(&future), Err(DecodeError::UnsupportedVersion(3)));
        let mut odd_kind = ANNOUNCE_EXAMPLE.to_vec();
        odd_kind[5] = 99;
        assert_eq!(Datagram::decode(&odd_kind), Err(DecodeError::UnknownKind(99)));
    }

    #[test]
    fn rejects_oversized_datagrams_and_labels() {
        let big = vec![b'x'; MAX_DATAGRAM + 1];
        assert!(matches!(Datagram::decode(&big), Err(DecodeError::TooLarge { .. })));
        let mut long_name = ana();
        long_name.name = "n".repeat(MAX_LABEL_BYTES + 1);
        let bytes = Datagram::Reply(long_name).encode();
        assert!(matches!(Datagram::decode(&bytes), Err(DecodeError::TooLarge { what: "name", .. })));
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_status_tolerated() {
        let bytes = b"PIGN\x02\x02{\"id\":\"5bc84f85ae674108b77d54c4cf60d17a\",\"key\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"name\":\"Ana\",\"port\":9,\"status\":\"in-a-meeting\",\"future\":[1,2]}";
        let Datagram::Heartbeat(p) = Datagram::decode(bytes).unwrap() else { panic!("wrong kind") };
        assert_eq!(p.status, Status::Unknown);
        assert_eq!(p.group, "");
        assert_eq!(p.port, 9);
    }

    #[test]
    fn rejects_an_id_not_derived_from_the_key() {
        let mut impostor = ana();
        impostor.key = PublicKey::from_bytes([2; 32]);
        assert_eq!(
            Datagram::decode(&Datagram::Announce(impostor).encode()),
            Err(DecodeError::InvalidField("id (not derived from key)"))
        );
    }

    #[test]
    fn rejects_wrong_types_and_port_zero() {
        let bytes = b"PIGN\x02\x01{\"id\":\"5bc84f85ae674108b77d54c4cf60d17a\",\"name\":7,\"port\":1}";
        assert!(matches!(Datagram::decode(bytes), Err(DecodeError::Body(_))));
        let mut zero = ana();
        zero.port = 0;
        assert_eq!(
            Datagram::decode(&Datagram::Announce(zero).encode()),
            Err(DecodeError::InvalidField("port"))
        );
    }

    fn label() -> impl Strategy<Value = String> {
        "\\PC{0,30}"
    }

    proptest! {
        #[test]
        fn presence_round_trips(name in label(), group in label(), host in label(), port in 1u16.., key in any::<[u8; 32]>(), away in any::<bool>(), heartbeat_secs in 1u16..) {
            let key = PublicKey::from_bytes(key);
            let presence = Presence {
                id: key.peer_id(), key, name, group, host, port, heartbeat_secs,
                status: if away { Status::Away } else { Status::Online },
            };
            for datagram in [Datagram::Announce(presence.clone()), Datagram::Heartbeat(presence.clone()), Datagram::Reply(presence)] {
                let bytes = datagram.encode();
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
