//! Group rooms on the wire: signed events, and the frames members exchange to catch up.
//!
//! A room has no owner and no server: it is the set of its events. Each event is made and
//! signed by one member (its *author*) and numbered by that author (`seq` 1, 2, 3, … in
//! each room), so any member can relay any other's events and the receiver still checks
//! who wrote them. The signed bytes are the event's JSON exactly as its author wrote it;
//! relays copy them untouched. What the events add up to (name, members, the posts that
//! count, their order) is `node::rooms`'s business.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ids::{PeerId, RoomId};
use super::keys::{PublicKey, SIGNATURE_BYTES, Signature, Signer};
use super::{DecodeError, MAX_LABEL_BYTES, MAX_TEXT_BYTES};

/// Members of one room, at most. A room at the limit refuses another `add`.
pub const MAX_MEMBERS: usize = 250;

/// What an event's signature covers before the event's own bytes.
pub const SIGNING_CONTEXT: &[u8] = b"pigeon 2026-12 room event\n";

/// BLAKE3 context of room ids.
const ROOM_ID_CONTEXT: &str = "pigeon 2026-12 room id from creator id and nonce";

/// Events in one `room_events` frame, at most (a catch-up sends several).
pub const MAX_EVENTS_PER_FRAME: usize = 256;

/// Rooms named in one `room_sync` frame, at most.
pub const MAX_SYNC_ROOMS: usize = 64;

/// The id of the room that `creator` starts with `nonce`: only the creator can sign the
/// `create` event of a room whose id is derived from its own id.
pub fn room_id(creator: PeerId, nonce: &[u8; 16]) -> RoomId {
    let mut input = [0u8; 32];
    input[..16].copy_from_slice(creator.as_bytes());
    input[16..].copy_from_slice(nonce);
    let hash = blake3::derive_key(ROOM_ID_CONTEXT, &input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash[..16]);
    RoomId::from_bytes(id)
}

/// A member as the room knows it: id, the key that signs its events, a display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its peer id (derived from `key`).
    pub id: PeerId,
    /// Its key: events by this member verify with it.
    pub key: PublicKey,
    /// Its name when it was added (the peer list shows the current one).
    pub name: String,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Starts the room: its author's first event in it; the id is `room_id(author, nonce)`.
    Create {
        /// 16 random bytes, hex.
        nonce: String,
        /// The room's name.
        name: String,
        /// Everyone in it, the author included.
        members: Vec<Member>,
    },
    /// Adds a member.
    Add {
        /// Who.
        member: Member,
    },
    /// Removes a member; its events numbered above `after_seq` that come before this one in
    /// the room's order do not count (it cannot post "earlier" to get past its removal).
    Remove {
        /// Who.
        member: PeerId,
        /// The last of its events the remover had.
        after_seq: u64,
    },
    /// Renames the room.
    Rename {
        /// The new name.
        name: String,
    },
    /// The author leaves.
    Leave,
    /// A message to the room, or files the author offers every member (then `text` may be
    /// empty).
    Post {
        /// The text, at most 64 KiB.
        text: String,
        /// Files posted: what members see before they accept the author's offer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<SharedFiles>,
    },
    /// The author has read the room up to (and including) the post at this place in the
    /// room's order.
    Read {
        /// The post's Lamport time.
        lamport: u64,
        /// Its author.
        author: PeerId,
        /// Its author's number for it.
        seq: u64,
    },
}

/// Files posted to a room, as the post describes them: the author offers them to every
/// member over the pairwise connection, like any offer, tagged with the post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFiles {
    /// Files in the offer.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// The top-level names, at most [`MAX_SHARED_NAMES`] (sanitized where shown).
    pub names: Vec<String>,
}

/// The room post an offer belongs to: the offerer's post `seq` in `room`, which describes
/// the files. Carried by the offer (`room` in docs/PROTOCOL.md) and kept with the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PostedIn {
    /// The room.
    pub room: RoomId,
    /// The offerer's number for the post.
    pub seq: u64,
}

/// Names a [`SharedFiles`] lists; the offer itself lists every entry.
pub const MAX_SHARED_NAMES: usize = 5;

/// The signed part of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// The room.
    pub room: RoomId,
    /// Who made it.
    pub author: PeerId,
    /// The author's key (the author id must be derived from it).
    pub key: PublicKey,
    /// The author's number for it in this room: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Lamport time: above that of every event of the room its author held.
    pub lamport: u64,
    /// When it was made, author's clock, milliseconds since 1970 (shown, never ordered by).
    pub sent_at_ms: u64,
    /// What it does.
    pub change: Change,
}

impl EventBody {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.key.peer_id() != self.author {
            return Err(DecodeError::InvalidField("author (not derived from key)"));
        }
        if self.seq == 0 {
            return Err(DecodeError::InvalidField("seq"));
        }
        let label = |what, name: &str| {
            if name.len() > MAX_LABEL_BYTES {
                return Err(DecodeError::TooLarge { what, len: name.len(), max: MAX_LABEL_BYTES });
            }
            Ok(())
        };
        match &self.change {
            Change::Create { nonce, name, members } => {
                label("room name", name)?;
                if members.len() > MAX_MEMBERS {
                    return Err(DecodeError::TooLarge {
                        what: "member list",
                        len: members.len(),
                        max: MAX_MEMBERS,
                    });
                }
                members.iter().try_for_each(|m| check_member(m, label))?;
                let nonce = super::ids::parse_hex::<16>(nonce).ok_or(DecodeError::InvalidField("nonce"))?;
                if room_id(self.author, &nonce) != self.room || self.seq != 1 {
                    return Err(DecodeError::InvalidField("create (room id not its author's)"));
                }
            }
            Change::Add { member } => check_member(member, label)?,
            Change::Rename { name } => label("room name", name)?,
            Change::Post { text, files } => {
                super::message::check_text_len(text)?;
                if let Some(files) = files {
                    if files.names.len() > MAX_SHARED_NAMES {
                        return Err(DecodeError::TooLarge {
                            what: "shared names",
                            len: files.names.len(),
                            max: MAX_SHARED_NAMES,
                        });
                    }
                    files.names.iter().try_for_each(|name| label("shared name", name))?;
                }
            }
            Change::Remove { .. } | Change::Leave | Change::Read { .. } => {}
        }
        Ok(())
    }
}

fn check_member(
    member: &Member,
    label: impl Fn(&'static str, &str) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    label("member name", &member.name)?;
    if member.key.peer_id() != member.id {
        return Err(DecodeError::InvalidField("member id (not derived from key)"));
    }
    Ok(())
}

/// An event as it travels and is stored: its author's exact JSON and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// The decoded body.
    pub body: EventBody,
    /// The body's JSON exactly as signed.
    pub json: String,
    /// The author's signature over [`SIGNING_CONTEXT`] and `json`.
    pub signature: Signature,
}

impl SignedEvent {
    /// Makes and signs an event; `signer` is its author.
    pub fn sign(body: EventBody, signer: &impl Signer) -> SignedEvent {
        debug_assert_eq!(signer.public(), body.key, "an event is signed by the key it names");
        let json = serde_json::to_string(&body).expect("plain structs with string keys always serialize");
        let signature = signer.sign(&[SIGNING_CONTEXT, json.as_bytes()].concat());
        SignedEvent { body, json, signature }
    }

    /// An event read back from our own store, where only checked events go (or ours): its
    /// JSON is decoded and its limits checked, its signature not again — that took a node
    /// a second per 10,000 events at every start. Whoever it is relayed to checks it anyway.
    pub fn from_store(json: String, sig: &str) -> Result<SignedEvent, DecodeError> {
        let signature = parse_signature(sig)?;
        let body = decode_body(&json)?;
        Ok(SignedEvent { body, json, signature })
    }

    /// Checks a received event: its JSON decodes within limits and its author signed it.
    pub fn verify(json: &str, signature: Signature) -> Result<SignedEvent, DecodeError> {
        SignedEvent::verify_with(json, signature, &mut Verifiers::default())
    }

    /// Like [`SignedEvent::verify`], reusing the authors' keys of earlier checks.
    pub fn verify_with(
        json: &str,
        signature: Signature,
        keys: &mut Verifiers,
    ) -> Result<SignedEvent, DecodeError> {
        let body = decode_body(json)?;
        let verifier = keys.0.entry(body.key).or_insert_with(|| body.key.verifier());
        let message = [SIGNING_CONTEXT, json.as_bytes()].concat();
        if !verifier.as_ref().is_some_and(|verifier| verifier.verifies(&message, &signature)) {
            return Err(DecodeError::InvalidField("room event signature"));
        }
        Ok(SignedEvent { body, json: json.to_owned(), signature })
    }

    /// The form of the event inside frames (and in the store).
    pub fn to_wire(&self) -> WireEvent {
        let event = RawValue::from_string(self.json.clone()).expect("our own JSON is JSON");
        WireEvent { event, sig: super::ids::to_hex(&self.signature) }
    }
}

/// An event's body from its JSON, within the limits a decoder enforces.
fn decode_body(json: &str) -> Result<EventBody, DecodeError> {
    if json.len() > MAX_TEXT_BYTES + 4096 {
        return Err(DecodeError::TooLarge {
            what: "room event",
            len: json.len(),
            max: MAX_TEXT_BYTES + 4096,
        });
    }
    let body: EventBody = serde_json::from_str(json)?;
    body.validate()?;
    Ok(body)
}

/// A signature from its 128 hex digits.
fn parse_signature(sig: &str) -> Result<Signature, DecodeError> {
    super::ids::parse_hex::<SIGNATURE_BYTES>(sig).ok_or(DecodeError::InvalidField("room event signature"))
}

/// An event in a frame: the author's JSON, untouched, beside its signature in hex.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireEvent {
    /// The signed JSON.
    pub event: Box<RawValue>,
    /// 128 hex digits.
    pub sig: String,
}

impl WireEvent {
    /// Verifies it (see [`SignedEvent::verify`]).
    pub fn verify(&self) -> Result<SignedEvent, DecodeError> {
        self.verify_with(&mut Verifiers::default())
    }

    /// Verifies it, reusing the authors' keys of earlier checks (a frame of one author's
    /// events turns the key into its checking form once).
    pub fn verify_with(&self, keys: &mut Verifiers) -> Result<SignedEvent, DecodeError> {
        SignedEvent::verify_with(self.event.get(), parse_signature(&self.sig)?, keys)
    }
}

/// Authors' keys in the form that checks signatures, kept for a batch of checks (a few
/// hundred authors at most: the members of one room).
#[derive(Debug, Default)]
pub struct Verifiers(std::collections::HashMap<PublicKey, Option<super::keys::Verifier>>);

impl PartialEq for WireEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event.get() == other.event.get() && self.sig == other.sig
    }
}

impl Eq for WireEvent {}

impl Clone for WireEvent {
    fn clone(&self) -> Self {
        WireEvent { event: self.event.clone(), sig: self.sig.clone() }
    }
}

/// Bytes of events (JSON and signature) a frame carries at most, so that a frame of the
/// longest posts still fits [`MAX_FRAME_PAYLOAD`](super::frame::MAX_FRAME_PAYLOAD) once
/// wrapped (room id, `more`, quoting), whatever it compresses to.
pub const MAX_EVENT_BYTES_PER_FRAME: usize = super::frame::MAX_FRAME_PAYLOAD - 16 * 1024;

/// What wrapping one event in a frame adds to its JSON and signature (`{"event":,"sig":""},`).
const EVENT_WRAPPING_BYTES: usize = 24;

/// Packs events, in their order, into at most `max_frames` frames of at most
/// [`MAX_EVENTS_PER_FRAME`] events and [`MAX_EVENT_BYTES_PER_FRAME`] bytes (a frame of 256
/// posts of 64 KiB would be 16 MiB, which no receiver takes). Only the events packed are
/// turned into their wire form; returns the frames and whether events were left over.
pub fn into_frames<'a>(
    events: impl IntoIterator<Item = &'a SignedEvent>,
    max_frames: usize,
) -> (Vec<Vec<WireEvent>>, bool) {
    let mut frames: Vec<Vec<WireEvent>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = event.json.len() + 2 * SIGNATURE_BYTES + EVENT_WRAPPING_BYTES;
        let fits = frames.last().is_some_and(|frame| {
            frame.len() < MAX_EVENTS_PER_FRAME && bytes + size <= MAX_EVENT_BYTES_PER_FRAME
        });
        if let (true, Some(frame)) = (fits, frames.last_mut()) {
            bytes += size;
            frame.push(event.to_wire());
        } else if frames.len() == max_frames {
            return (frames, true);
        } else {
            bytes = size;
            frames.push(vec![event.to_wire()]);
        }
    }
    (frames, false)
}

/// Body of the `room_events` frame: events of one room, new or asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvents {
    /// The room.
    pub room: RoomId,
    /// At most [`MAX_EVENTS_PER_FRAME`].
    pub events: Vec<WireEvent>,
    /// The last frame of an answer to a sync that left events out: ask again for the rest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// Frames of events one answer to a sync carries at most: enough that the receiver checks
/// one frame while the next is on its way, bounded so that one answer stays small.
pub const MAX_FRAMES_PER_ANSWER: usize = 8;

/// What a member holds of one room: per author, the highest number up to which it has every
/// event. Sent to another member, which answers with what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomHave {
    /// The room.
    pub room: RoomId,
    /// Author id → highest number held without gaps.
    pub have: std::collections::BTreeMap<PeerId, u64>,
}

/// Body of the `room_sync` frame: what we hold of every room both ends are members of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSync {
    /// At most [`MAX_SYNC_ROOMS`] rooms.
    pub rooms: Vec<RoomHave>,
}

impl RoomEvents {
    /// Checks the limits a decoder must enforce beyond JSON syntax (signatures are checked
    /// event by event, on the hub's side, where the room's members are known).
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.events.len() > MAX_EVENTS_PER_FRAME {
            return Err(DecodeError::TooLarge {
                what: "room events",
                len: self.events.len(),
                max: MAX_EVENTS_PER_FRAME,
            });
        }
        Ok(())
    }
}

impl RoomSync {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.rooms.len() > MAX_SYNC_ROOMS {
            return Err(DecodeError::TooLarge {
                what: "room sync",
                len: self.rooms.len(),
                max: MAX_SYNC_ROOMS,
            });
        }
        if self.rooms.iter().any(|room| room.have.len() > MAX_MEMBERS * 4) {
            return Err(DecodeError::InvalidField("room sync authors"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
pub(crate) mod tests {
    use super::*;
    use crate::secure::Identity;

    fn member(identity: &Identity, name: &str) -> Member {
        Member { id: identity.peer_id(), key: identity.public(), name: name.into() }
    }

    /// A post by `author` in `room`, numbered and timed `seq`.
    pub(crate) fn signed_post(author: &Identity, room: RoomId, seq: u64, text: String) -> SignedEvent {
        let body = EventBody {
            room,
            author: author.peer_id(),
            key: author.public(),
            seq,
            lamport: seq,
            sent_at_ms: 0,
            change: Change::Post { text, files: None },
        };
        SignedEvent::sign(body, author)
    }

    pub(crate) fn create(ana: &Identity, members: Vec<Member>) -> SignedEvent {
        let nonce = [7u8; 16];
        let body = EventBody {
            room: room_id(ana.peer_id(), &nonce),
            author: ana.peer_id(),
            key: ana.public(),
            seq: 1,
            lamport: 1,
            sent_at_ms: 5,
            change: Change::Create {
                nonce: crate::protocol::ids::to_hex(&nonce),
                name: "Sales".into(),
                members,
            },
        };
        SignedEvent::sign(body, ana)
    }

    #[test]
    fn an_event_round_trips_byte_exactly_and_any_change_breaks_its_signature() {
        let ana = Identity::from_private([1; 32]);
        let bo = Identity::from_private([2; 32]);
        let event = create(&ana, vec![member(&ana, "Ana"), member(&bo, "Bo")]);
        let frame = RoomEvents { room: event.body.room, events: vec![event.to_wire()], more: true };
        let json = serde_json::to_string(&frame).unwrap();
        let back: RoomEvents = serde_json::from_str(&json).unwrap();
        assert_eq!(back.events[0].verify().unwrap(), event);
        // A relay that re-encodes differently still carries the author's exact bytes.
        let spaced = json.replace("\"event\":{", "\"event\": {");
        let relayed: RoomEvents = serde_json::from_str(&spaced).unwrap();
        assert_eq!(relayed.events[0].verify().unwrap(), event);
        let forged = json.replace("Sales", "Sa1es");
        let forged: RoomEvents = serde_json::from_str(&forged).unwrap();
        assert_eq!(forged.events[0].verify(), Err(DecodeError::InvalidField("room event signature")));
    }

    #[test]
    fn frames_hold_at_most_256_events_and_never_more_bytes_than_a_receiver_takes() {
        let ana = Identity::from_private([1; 32]);
        let room = RoomId::from_bytes([2; 16]);
        let post = |seq: u64, len: usize| signed_post(&ana, room, seq, "x".repeat(len));
        let short: Vec<SignedEvent> = (1..=300).map(|seq| post(seq, 10)).collect();
        let (frames, left) = into_frames(&short, usize::MAX);
        assert_eq!((frames.iter().map(Vec::len).collect::<Vec<_>>(), left), (vec![256, 44], false));
        let (frames, left) = into_frames(&short, 1);
        assert_eq!((frames.len(), frames[0].len(), left), (1, 256, true), "only what fits is packed");
        let long: Vec<SignedEvent> = (1..=40).map(|seq| post(seq, 60_000)).collect();
        let (long, left) = into_frames(&long, usize::MAX);
        assert!(long.len() > 2 && !left);
        for frame in &long {
            let json = serde_json::to_vec(&RoomEvents { room, events: frame.clone(), more: true }).unwrap();
            assert!(json.len() <= crate::protocol::frame::MAX_FRAME_PAYLOAD, "{} bytes", json.len());
        }
        assert_eq!(long.iter().map(Vec::len).sum::<usize>(), 40);
    }

    #[test]
    fn only_its_creator_can_start_a_room_and_only_with_its_first_event() {
        let ana = Identity::from_private([1; 32]);
        let mallory = Identity::from_private([3; 32]);
        let real = create(&ana, vec![member(&ana, "Ana")]);
        // Mallory signs a create for ana's room id: the id is not derived from mallory's.
        let mut body = real.body.clone();
        (body.author, body.key) = (mallory.peer_id(), mallory.public());
        let hijack = SignedEvent::sign(body, &mallory);
        assert!(SignedEvent::verify(&hijack.json, hijack.signature).is_err());
        let mut second = real.body.clone();
        second.seq = 2;
        let again = SignedEvent::sign(second, &ana);
        assert!(SignedEvent::verify(&again.json, again.signature).is_err());
    }

    #[test]
    fn limits_are_checked() {
        let ana = Identity::from_private([1; 32]);
        let many: Vec<Member> = (0..=MAX_MEMBERS)
            .map(|n| member(&Identity::from_private([u8::try_from(n % 250).unwrap() + 1; 32]), "m"))
            .collect();
        let big = create(&ana, many);
        assert!(matches!(
            SignedEvent::verify(&big.json, big.signature),
            Err(DecodeError::TooLarge { what: "member list", .. })
        ));
        let room = create(&ana, vec![member(&ana, "Ana")]).body.room;
        let post = |text: String| EventBody {
            room,
            author: ana.peer_id(),
            key: ana.public(),
            seq: 2,
            lamport: 2,
            sent_at_ms: 6,
            change: Change::Post { text, files: None },
        };
        let long = SignedEvent::sign(post("x".repeat(MAX_TEXT_BYTES + 1)), &ana);
        assert!(SignedEvent::verify(&long.json, long.signature).is_err());
        let fine = SignedEvent::sign(post("x".repeat(MAX_TEXT_BYTES)), &ana);
        assert!(SignedEvent::verify(&fine.json, fine.signature).is_ok());
    }
}
