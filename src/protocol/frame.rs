//! TCP framing: how frames are delimited on a connection, and which frames exist.
//!
//! A frame is an 8-byte header — `"PG"` magic, version, kind, payload length (u32, big
//! endian) — and a payload of that length. Framing knows nothing of the byte stream beneath
//! it, so an encrypted transport can carry the same frames unchanged.
//!
//! [`decode`] separates three outcomes, as a streaming reader needs: a whole frame (with the
//! bytes it used), "need more bytes" (`Ok(None)`, normal) and an invalid stream (an error,
//! after which the connection is closed because frame boundaries are lost).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::announce::Presence;
use super::message::{Receipt, WireMessage};
use super::room::{RoomEvents, RoomSync};
use super::transfer::{Fetch, FileEnd, Offer, TransferDone, TransferEnd};
use super::{DecodeError, PROTOCOL_VERSION};

/// First two bytes of every frame; a stream that does not start with them is not Pigeon.
pub const MAGIC: [u8; 2] = *b"PG";

/// Bytes of the fixed frame header.
pub const HEADER_LEN: usize = 8;

/// Largest payload of most frames. A maximal text JSON-escaped (up to 6 bytes per input byte
/// for control characters) stays below it; anything larger is a broken or hostile peer, and
/// the check happens before any allocation.
pub const MAX_FRAME_PAYLOAD: usize = 1024 * 1024;

/// Largest payload of an offer frame: room for thousands of entries with long names.
pub const MAX_OFFER_PAYLOAD: usize = 8 * 1024 * 1024;

const KIND_HELLO: u8 = 1;
const KIND_MESSAGE: u8 = 2;
const KIND_DELIVERED: u8 = 3;
const KIND_READ: u8 = 4;
/// Kind of an offer frame, whose payload has its own, larger limit.
pub const KIND_OFFER: u8 = 5;
const KIND_DECLINE: u8 = 6;
const KIND_CANCEL: u8 = 7;
const KIND_FETCH: u8 = 8;
/// Kind of a chunk frame, whose payload is raw file bytes (no JSON).
pub const KIND_CHUNK: u8 = 9;
const KIND_FILE_END: u8 = 10;
const KIND_DONE: u8 = 11;
const KIND_ROOM_EVENTS: u8 = 12;
const KIND_ROOM_SYNC: u8 = 13;
const KIND_INVITED: u8 = 14;
const KIND_INVITE_ANSWER: u8 = 15;

/// Payload limit of a frame kind, checked against the header before reading the payload.
pub fn max_payload(kind: u8) -> usize {
    if kind == KIND_OFFER { MAX_OFFER_PAYLOAD } else { MAX_FRAME_PAYLOAD }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame kind.
    pub kind: u8,
    /// Payload length, already checked against [`max_payload`].
    pub len: usize,
}

/// Decodes and checks a frame header (magic, version, length limit).
pub fn decode_header(header: [u8; HEADER_LEN]) -> Result<Header, DecodeError> {
    let [m0, m1, version, kind, l0, l1, l2, l3] = header;
    if [m0, m1] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let len = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
    let max = max_payload(kind);
    if len > max {
        return Err(DecodeError::TooLarge { what: "frame payload", len, max });
    }
    Ok(Header { kind, len })
}

/// Encodes a frame header.
pub fn encode_header(header: Header) -> [u8; HEADER_LEN] {
    let len = u32::try_from(header.len).expect("payload lengths are checked against max_payload");
    let [l0, l1, l2, l3] = len.to_be_bytes();
    let [m0, m1] = MAGIC;
    [m0, m1, PROTOCOL_VERSION, header.kind, l0, l1, l2, l3]
}

/// The header of a chunk frame carrying `len` bytes, so a sender can write file data
/// straight from its read buffer without building a frame.
pub fn chunk_header(len: usize) -> [u8; HEADER_LEN] {
    encode_header(Header { kind: KIND_CHUNK, len })
}

/// One frame on a Pigeon TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame in each direction: who is at this end of the connection.
    Hello(Presence),
    /// A chat message for the receiving user.
    Message(WireMessage),
    /// The recipient stored these messages (sent back on the same connection).
    Delivered(Receipt),
    /// The recipient's user has seen these messages.
    Read(Receipt),
    /// Offers files and folders (sender to receiver, on the chat connection).
    Offer(Offer),
    /// An offer frame whose transfer id could be read but not the rest (an entry of unknown
    /// kind, a size out of range, over a limit): the receiver declines it with the reason
    /// instead of closing the connection. Encoded (only ever by tests) as an offer payload
    /// `{"transfer_id", "refused": reason}`, which decodes back to it.
    OfferRefused(TransferEnd),
    /// The receiver does not want the offered transfer.
    Decline(TransferEnd),
    /// Either side stops a transfer.
    Cancel(TransferEnd),
    /// Opens a data connection: send the transfer from this point.
    Fetch(Fetch),
    /// Raw bytes of the current file.
    Chunk(Vec<u8>),
    /// The current file is complete; its hash.
    FileEnd(FileEnd),
    /// The receiver has every file, verified.
    Done(TransferDone),
    /// Events of a group room (new ones, or those the other member lacks).
    RoomEvents(RoomEvents),
    /// What a member holds of the rooms both ends share: send what it lacks.
    RoomSync(RoomSync),
    /// The joiner hands back the token of the invite link it used: the inviter checks that
    /// its own key made it and marks the joiner's key verified.
    Invited(InvitedFrame),
    /// The inviter's answer to [`Frame::Invited`]: whether it verified the joiner's key.
    InviteAnswer(InviteAnswer),
    /// A frame of a kind this version does not know; its payload was skipped.
    Unknown {
        /// The kind byte that was received.
        kind: u8,
    },
}

/// The payload of [`Frame::Invited`]: `{"token": "<secs>.<hex>"}` as in the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitedFrame {
    /// The token, as [`Token::encode`](super::invite::Token::encode) writes it.
    pub token: String,
}

/// The payload of [`Frame::InviteAnswer`]: `{"accepted": true}`, or `false` with why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteAnswer {
    /// The inviter verified the joiner's key.
    pub accepted: bool,
    /// Why not (`expired`, `not made by us`, …); empty when accepted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl Frame {
    /// Encodes the frame, header included.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload) = match self {
            Frame::Hello(presence) => (KIND_HELLO, json(presence)),
            Frame::Message(message) => (KIND_MESSAGE, json(message)),
            Frame::Delivered(receipt) => (KIND_DELIVERED, json(receipt)),
            Frame::Read(receipt) => (KIND_READ, json(receipt)),
            Frame::Offer(offer) => (KIND_OFFER, json(offer)),
            Frame::OfferRefused(end) => (
                KIND_OFFER,
                json(&RefusedOffer { transfer_id: end.transfer_id, refused: Some(end.reason.clone()) }),
            ),
            Frame::Decline(end) => (KIND_DECLINE, json(end)),
            Frame::Cancel(end) => (KIND_CANCEL, json(end)),
            Frame::Fetch(fetch) => (KIND_FETCH, json(fetch)),
            Frame::Chunk(bytes) => (KIND_CHUNK, bytes.clone()),
            Frame::FileEnd(end) => (KIND_FILE_END, json(end)),
            Frame::Done(done) => (KIND_DONE, json(done)),
            Frame::RoomEvents(events) => (KIND_ROOM_EVENTS, compress(json(events))),
            Frame::RoomSync(sync) => (KIND_ROOM_SYNC, json(sync)),
            Frame::Invited(invited) => (KIND_INVITED, json(invited)),
            Frame::InviteAnswer(answer) => (KIND_INVITE_ANSWER, json(answer)),
            Frame::Unknown { kind } => (*kind, Vec::new()),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&encode_header(Header { kind, len: payload.len() }));
        out.extend_from_slice(&payload);
        out
    }
}

/// What can be read of an offer that cannot be taken.
#[derive(Serialize, Deserialize)]
struct RefusedOffer {
    transfer_id: crate::protocol::ids::TransferId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain structs with string keys always serialize")
}

fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(payload)?)
}

/// How hard room events are compressed: level 1 already removes what repeats from event to
/// event (room, author, key); higher ones made the catch-up frames no smaller here (93 against
/// 95 bytes per event) and cost the sender more.
const DEFLATE_LEVEL: u8 = 1;

/// Room events frames shorter than this go as plain JSON: a live post's frame gains little,
/// and setting up the compressor for each member it goes to costs the poster more than the
/// bytes are worth (a post to 49 members: 3 ms of CPU against 7 compressed).
const COMPRESS_FROM: usize = 4 * 1024;

/// Room events travel compressed (zlib) when long: every event repeats its room, author and
/// key, and signatures in hex are half redundancy. Only members' events share a frame, so
/// a peer that could sway the compressed size by what it writes can read the rest anyway.
/// A zlib stream never starts with `{`, so the receiver tells the two apart.
fn compress(json: Vec<u8>) -> Vec<u8> {
    if json.len() < COMPRESS_FROM {
        return json;
    }
    miniz_oxide::deflate::compress_to_vec_zlib(&json, DEFLATE_LEVEL)
}

/// The JSON of a payload, inflated if it is compressed, never to more than
/// [`MAX_FRAME_PAYLOAD`] bytes (a few compressed bytes can stand for gigabytes).
fn decompress(payload: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    if payload.first() == Some(&b'{') {
        return Ok(std::borrow::Cow::Borrowed(payload));
    }
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(payload, MAX_FRAME_PAYLOAD);
    inflated.map(std::borrow::Cow::Owned).map_err(|err| match err.status {
        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
            DecodeError::TooLarge { what: "room events", len: MAX_FRAME_PAYLOAD + 1, max: MAX_FRAME_PAYLOAD }
        }
        _ => DecodeError::InvalidField("room events (neither JSON nor zlib)"),
    })
}

/// Decodes the first frame in `buf`: `Ok(Some((frame, consumed)))`, `Ok(None)` when more
/// bytes are needed, or an error when the stream is not valid Pigeon framing.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
    let check_prefix = |bytes: &[u8]| {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
            return Err(DecodeError::BadMagic);
        }
        Ok(())
    };
    let Some((header, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
        check_prefix(buf)?;
        return Ok(None);
    };
    check_prefix(header)?;
    let Header { kind, len } = decode_header(*header)?;
    let Some(payload) = rest.get(..len) else {
        return Ok(None);
    };
    let frame = match kind {
        KIND_HELLO => {
            let presence: Presence = parse(payload)?;
            presence.validate()?;
            Frame::Hello(presence)
        }
        KIND_MESSAGE => {
            let message: WireMessage = parse(payload)?;
            message.validate()?;
            Frame::Message(message)
        }
        KIND_DELIVERED | KIND_READ => {
            let receipt: Receipt = parse(payload)?;
            receipt.validate()?;
            if kind == KIND_READ { Frame::Read(receipt) } else { Frame::Delivered(receipt) }
        }
        KIND_OFFER => match parse::<Offer>(payload).and_then(|offer| offer.validate().map(|()| offer)) {
            Ok(offer) => Frame::Offer(offer),
            // Without a readable transfer id there is nothing to answer: a protocol error.
            Err(err) => {
                let refused: RefusedOffer = parse(payload)?;
                let reason = refused.refused.unwrap_or_else(|| err.to_string());
                Frame::OfferRefused(TransferEnd { transfer_id: refused.transfer_id, reason, failed: true })
            }
        },
        KIND_DECLINE => Frame::Decline(parse(payload)?),
        KIND_CANCEL => Frame::Cancel(parse(payload)?),
        KIND_FETCH => Frame::Fetch(parse(payload)?),
        KIND_CHUNK => Frame::Chunk(payload.to_vec()),
        KIND_FILE_END => Frame::FileEnd(parse(payload)?),
        KIND_ROOM_EVENTS => {
            let events: RoomEvents = parse(&decompress(payload)?)?;
            events.validate()?;
            Frame::RoomEvents(events)
        }
        KIND_ROOM_SYNC => {
            let sync: RoomSync = parse(payload)?;
            sync.validate()?;
            Frame::RoomSync(sync)
        }
        KIND_DONE => Frame::Done(parse(payload)?),
        KIND_INVITED => Frame::Invited(parse(payload)?),
        KIND_INVITE_ANSWER => Frame::InviteAnswer(parse(payload)?),
        kind => Frame::Unknown { kind },
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "in tests a panic is a failure report")]
mod tests {
    use super::*;
    use crate::protocol::MAX_TEXT_BYTES;
    use crate::protocol::ids::{MsgId, TransferId};
    use crate::protocol::transfer::{Entry, EntryKind, MAX_TOTAL_BYTES};
    use proptest::prelude::*;

    /// The message example from docs/PROTOCOL.md ("你好, Bo!" sent at 2026-11-22 09:00 UTC).
    pub(crate) const MESSAGE_EXAMPLE: &[u8] = b"PG\x02\x02\x00\x00\x00\x5d{\"msg_id\":\"0f0e0d0c0b0a09080706050403020100\",\"sent_at_ms\":1795338000000,\"text\":\"\xe4\xbd\xa0\xe5\xa5\xbd, Bo!\"}";

    /// The delivered-receipt example from docs/PROTOCOL.md.
    const DELIVERED_EXAMPLE: &[u8] =
        b"PG\x02\x03\x00\x00\x00\x30{\"msg_ids\":[\"0f0e0d0c0b0a09080706050403020100\"]}";

    fn example_message() -> WireMessage {
        WireMessage {
            msg_id: "0f0e0d0c0b0a09080706050403020100".parse().unwrap(),
            sent_at_ms: 1_795_338_000_000,
            text: "你好, Bo!".into(),
            also_to: Vec::new(),
        }
    }

    #[test]
    fn documented_examples_decode_and_reencode_byte_exactly() {
        let (frame, used) = decode(MESSAGE_EXAMPLE).unwrap().unwrap();
        assert_eq!(used, MESSAGE_EXAMPLE.len());
        assert_eq!(frame, Frame::Message(example_message()));
        assert_eq!(frame.encode(), MESSAGE_EXAMPLE);

        let (frame, used) = decode(DELIVERED_EXAMPLE).unwrap().unwrap();
        assert_eq!(used, DELIVERED_EXAMPLE.len());
        assert_eq!(frame, Frame::Delivered(Receipt { msg_ids: vec![example_message().msg_id] }));
        assert_eq!(frame.encode(), DELIVERED_EXAMPLE);
    }

    #[test]
    fn every_prefix_needs_more_and_never_errors() {
        for cut in 0..MESSAGE_EXAMPLE.len() {
            assert_eq!(decode(&MESSAGE_EXAMPLE[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn trailing_bytes_are_left_for_the_next_frame() {
        let mut two = MESSAGE_EXAMPLE.to_vec();
        two.extend_from_slice(DELIVERED_EXAMPLE);
        let (_, used) = decode(&two).unwrap().unwrap();
        let (second, _) = decode(&two[used..]).unwrap().unwrap();
        assert!(matches!(second, Frame::Delivered(_)));
    }

    #[test]
    fn rejects_bad_magic_early_and_future_versions() {
        assert_eq!(decode(b"G"), Err(DecodeError::BadMagic));
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(DecodeError::BadMagic));
        let mut future = MESSAGE_EXAMPLE.to_vec();
        future[2] = 9;
        assert_eq!(decode(&future), Err(DecodeError::UnsupportedVersion(9)));
    }

    #[test]
    fn rejects_oversized_length_before_the_payload_arrives() {
        let header = b"PG\x02\x02\xff\xff\xff\xff";
        assert!(matches!(decode(header), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn rejects_texts_over_the_limit() {
        let mut message = example_message();
        message.text = "a".repeat(MAX_TEXT_BYTES + 1);
        let bytes = Frame::Message(message).encode();
        assert!(matches!(decode(&bytes), Err(DecodeError::TooLarge { what: "text", .. })));
        let mut message = example_message();
        message.text = "\u{1}".repeat(MAX_TEXT_BYTES);
        let bytes = Frame::Message(message.clone()).encode();
        assert_eq!(decode(&bytes).unwrap().unwrap().0, Frame::Message(message));
    }

    #[test]
    fn unknown_kinds_are_skipped_whole() {
        let mut bytes = b"PG\x02\x63\x00\x00\x00\x03abc".to_vec();
        bytes.extend_from_slice(DELIVERED_EXAMPLE);
        let (frame, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(frame, Frame::Unknown { kind: 0x63 });
        assert_eq!(used, 11);
    }

    #[test]
    fn room_events_travel_compressed_and_a_payload_inflating_past_the_limit_is_refused() {
        let room = crate::protocol::ids::RoomId::from_bytes([3; 16]);
        let ana = crate::secure::Identity::from_private([1; 32]);
        let post =
            |seq| crate::protocol::room::tests::signed_post(&ana, room, seq, format!("post {seq}")).to_wire();
        let short = Frame::RoomEvents(RoomEvents { room, events: vec![post(1)], more: false });
        let long = Frame::RoomEvents(RoomEvents { room, events: (1..=40).map(post).collect(), more: true });
        for (frame, plain) in [(short, true), (long, false)] {
            let bytes = frame.encode();
            assert_eq!(bytes[HEADER_LEN..].starts_with(b"{"), plain, "long frames go compressed");
            assert_eq!(decode(&bytes).unwrap().unwrap().0, frame);
        }
        // Two MiB of spaces (valid JSON padding) compress to a few kilobytes.
        let bomb = compress(vec![b' '; 2 * MAX_FRAME_PAYLOAD]);
        let len = u32::try_from(bomb.len()).unwrap();
        let mut frame = encode_header(Header { kind: KIND_ROOM_EVENTS, len: bomb.len() }).to_vec();
        frame.extend_from_slice(&bomb);
        assert!(len < 16 * 1024);
        assert!(matches!(decode(&frame), Err(DecodeError::TooLarge { what: "room events", .. })));
        let mut garbage = encode_header(Header { kind: KIND_ROOM_EVENTS, len: 4 }).to_vec();
        garbage.extend_from_slice(b"\xff\xff\xff\xff");
        assert!(matches!(decode(&garbage), Err(DecodeError::InvalidField(_))));
    }

    #[test]
    fn malformed_payload_is_an_error() {
        let bytes = b"PG\x02\x02\x00\x00\x00\x02{]";
        assert!(matches!(decode(bytes), Err(DecodeError::Body(_))));
    }

    #[test]
    fn a_chunk_header_is_the_header_of_an_encoded_chunk() {
        assert_eq!(&Frame::Chunk(vec![1, 2]).encode()[..HEADER_LEN], &chunk_header(2));
    }

    #[test]
    fn an_offer_with_a_readable_id_is_refused_with_a_reason_and_one_without_is_an_error() {
        let id = "0f0e0d0c0b0a09080706050403020100";
        let payloads = [
            format!(r#"{{"transfer_id":"{id}","entries":[{{"path":"a","kind":"symlink","size":1}}]}}"#),
            format!(r#"{{"transfer_id":"{id}","entries":[{{"path":"a","kind":"file","size":-1}}]}}"#),
            format!(
                r#"{{"transfer_id":"{id}","entries":[{{"path":"a","kind":"file","size":18446744073709551616}}]}}"#
            ),
            format!(r#"{{"transfer_id":"{id}","entries":[{{"path":"a","kind":"dir","size":3}}]}}"#),
        ];
        for payload in payloads {
            let mut bytes = encode_header(Header { kind: KIND_OFFER, len: payload.len() }).to_vec();
            bytes.extend_from_slice(payload.as_bytes());
            let Ok(Some((Frame::OfferRefused(end), used))) = decode(&bytes) else { panic!("{payload}") };
            assert_eq!((end.transfer_id.to_string(), end.failed, used), (id.to_owned(), true, bytes.len()));
            assert!(!end.reason.is_empty());
            let again = Frame::OfferRefused(end.clone()).encode();
            assert_eq!(decode(&again).unwrap().unwrap().0, Frame::OfferRefused(end), "round trip");
        }
        let payload = br#"{"transfer_id":"nope","entries":[]}"#;
        let mut bytes = encode_header(Header { kind: KIND_OFFER, len: payload.len() }).to_vec();
        bytes.extend_from_slice(payload);
        assert!(decode(&bytes).is_err(), "no id to answer: the connection closes");
    }

    #[test]
    fn offers_may_be_larger_than_other_frames_but_still_bounded() {
        let big = u32::try_from(MAX_FRAME_PAYLOAD + 1).unwrap().to_be_bytes();
        let mut header = *b"PG\x02\x05\x00\x00\x00\x00";
        header[4..].copy_from_slice(&big);
        assert_eq!(decode_header(header).unwrap().len, MAX_FRAME_PAYLOAD + 1);
        header[3] = KIND_CHUNK;
        assert!(decode_header(header).is_err());
        header[3] = 5;
        header[4..].copy_from_slice(&u32::try_from(MAX_OFFER_PAYLOAD + 1).unwrap().to_be_bytes());
        assert!(decode_header(header).is_err());
    }

    #[test]
    fn invite_frames_round_trip_and_are_the_json_documented() {
        let invited = Frame::Invited(InvitedFrame { token: "1800000000.00ff".into() });
        let refused = Frame::InviteAnswer(InviteAnswer { accepted: false, reason: "expired".into() });
        let accepted = Frame::InviteAnswer(InviteAnswer { accepted: true, reason: String::new() });
        for frame in [invited, refused, accepted.clone()] {
            let bytes = frame.encode();
            assert_eq!(decode(&bytes).unwrap(), Some((frame, bytes.len())));
        }
        assert!(accepted.encode().ends_with(b"{\"accepted\":true}"));
    }

    proptest! {
        #[test]
        fn message_round_trips(text in "\\PC{0,200}", sent_at_ms in any::<u64>(), id in any::<[u8; 16]>()) {
            let frame = Frame::Message(WireMessage { msg_id: MsgId::from_bytes(id), sent_at_ms, text, also_to: Vec::new() });
            let bytes = frame.encode();
            prop_assert_eq!(decode(&bytes).unwrap(), Some((frame, bytes.len())));
        }

        #[test]
        fn receipts_round_trip(ids in proptest::collection::vec(any::<[u8; 16]>(), 0..50), read in any::<bool>()) {
            let receipt = Receipt { msg_ids: ids.into_iter().map(MsgId::from_bytes).collect() };
            let frame = if read { Frame::Read(receipt) } else { Frame::Delivered(receipt) };
            let bytes = frame.encode();
            prop_assert_eq!(decode(&bytes).unwrap(), Some((frame, bytes.len())));
        }

        #[test]
        fn transfer_frames_round_trip(
            id in any::<[u8; 16]>(),
            entries in proptest::collection::vec(("\\PC{1,60}", any::<bool>(), 0..MAX_TOTAL_BYTES / 20), 0..20),
            reason in "\\PC{0,80}",
            failed in any::<bool>(),
            index in any::<u32>(),
            offset in any::<u64>(),
            hash in any::<[u8; 32]>(),
        ) {
            let transfer_id = TransferId::from_bytes(id);
            let entries = entries
                .into_iter()
                .map(|(path, folder, size)| match folder {
                    true => Entry { path, kind: EntryKind::Dir, size: 0 },
                    false => Entry { path, kind: EntryKind::File, size },
                })
                .collect();
            let end = TransferEnd { transfer_id, reason, failed };
            let blake3 = crate::protocol::ids::to_hex(&hash);
            for frame in [
                Frame::Offer(Offer { transfer_id, entries, room: None }),
                Frame::Decline(end.clone()),
                Frame::Cancel(end),
                Frame::Fetch(Fetch { transfer_id, index, offset }),
                Frame::FileEnd(FileEnd { index, blake3 }),
                Frame::Done(TransferDone { transfer_id }),
                Frame::Chunk(hash.to_vec()),
            ] {
                let bytes = frame.encode();
                prop_assert_eq!(decode(&bytes).unwrap(), Some((frame, bytes.len())));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Only a panic would fail this property; any result is fine.
            decode(&bytes).ok();
        }
    }
}
