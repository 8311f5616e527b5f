//! Pigeon's wire formats as pure functions: bytes in, typed values out, and back.
//!
//! Nothing here opens a socket, starts a thread or reads a clock; the node feeds bytes in and
//! takes bytes out. Every decoder checks declared lengths against a `MAX_*` constant before it
//! allocates, and returns a [`DecodeError`] instead of panicking. `docs/PROTOCOL.md` is the
//! prose version of this module, with byte examples that the unit tests below decode.
//!
//! # Layout
//! - [`ids`]: peer and message identifiers (128-bit, hex on the wire).
//! - [`keys`]: public keys, the peer ids and safety numbers derived from them.
//! - [`family`]: which protocol a peer speaks (Pigeon, IP Messenger).
//! - [`announce`]: UDP discovery datagrams (announce, heartbeat, reply, goodbye).
//! - [`frame`]: TCP framing and the frames carried on a connection.
//! - [`message`]: chat payloads and receipts.
//! - [`transfer`]: file offers and data-stream frames.
//! - [`names`]: sanitizing file names from the wire.
//! - [`room`]: group rooms: signed events and the frames members catch up with.
//! - [`error`]: [`DecodeError`], the one error type of this module.
#![warn(clippy::indexing_slicing)]

pub mod announce;
pub mod error;
pub mod family;
pub mod frame;
pub mod ids;
pub mod invite;
pub mod ipmsg;
pub mod keys;
pub mod localsend;
pub mod message;
pub mod names;
pub mod room;
pub mod transfer;

pub use error::DecodeError;
pub use family::Family;

/// Version byte carried by every UDP datagram and every TCP frame. A receiver drops a datagram
/// (or closes a connection) whose version it does not speak rather than guessing at its layout.
pub const PROTOCOL_VERSION: u8 = 2;

/// Longest chat text in bytes of UTF-8. Big enough for any pasted log excerpt, small enough
/// that one message never stalls a connection or bloats the history database.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Most other recipients a message names (`also_to`): a message to more people says so for
/// the first 64, which is what a person can take in.
pub const MAX_ALSO_TO: usize = 64;

/// Longest display name, group or host name in bytes of UTF-8, so that a presence always fits
/// one unfragmented datagram.
pub const MAX_LABEL_BYTES: usize = 128;
