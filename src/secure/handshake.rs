//! The Noise XX handshake on a blocking byte stream.
//!
//! The initiator first sends a five-byte preamble (`PGNS` and the protocol version), so that a
//! stray client is told apart from a peer before any cryptography, and an old or future
//! version fails with a clear reason. Each handshake message then travels as a 2-byte
//! big-endian length and the message. The preamble is the Noise prologue, so a preamble
//! altered on the way makes the handshake fail.

use std::io::{self, Read, Write};
use std::sync::atomic::AtomicU64;

use super::{Identity, NOISE_PARAMS, Session};
use crate::protocol::PROTOCOL_VERSION;
use crate::protocol::keys::PublicKey;

/// First bytes the initiator sends.
pub const PREAMBLE_MAGIC: [u8; 4] = *b"PGNS";

/// Largest handshake message accepted. XX messages with empty payloads are 32, 96 and 64
/// bytes; the slack leaves room for payloads a later version may add.
const MAX_HANDSHAKE_MESSAGE: usize = 1024;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected.
    Initiator,
    /// We accepted.
    Responder,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed, timed out or closed.
    #[error("handshake: {0}")]
    Io(#[from] io::Error),
    /// The other end is not a Pigeon peer.
    #[error("handshake: not a Pigeon connection")]
    NotPigeon,
    /// The other end speaks another protocol version.
    #[error("handshake: peer speaks protocol version {0}, we speak {PROTOCOL_VERSION}")]
    Version(u8),
    /// A handshake message over the size limit.
    #[error("handshake message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The cryptography failed: a tampered or truncated message, or a bad key.
    #[error("handshake failed: {0}")]
    Noise(#[from] snow::Error),
}

impl HandshakeError {
    /// Whether the other end broke the protocol (as opposed to the network failing).
    pub fn is_misbehaviour(&self) -> bool {
        !matches!(self, HandshakeError::Io(_))
    }
}

/// Runs the handshake as `role` and returns the session. The caller sets the socket's
/// timeouts; a silent peer ends as [`HandshakeError::Io`].
pub fn handshake(
    stream: &mut (impl Read + Write),
    identity: &Identity,
    role: Role,
) -> Result<Session, HandshakeError> {
    let preamble = preamble();
    let builder = snow::Builder::new(NOISE_PARAMS.parse()?)
        .local_private_key(identity.private())?
        .prologue(&preamble)?;
    let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
    let state = match role {
        Role::Initiator => {
            stream.write_all(&preamble)?;
            let mut state = builder.build_initiator()?;
            send(stream, &mut state, &mut buf)?; // -> e
            receive(stream, &mut state, &mut buf)?; // <- e, ee, s, es
            send(stream, &mut state, &mut buf)?; // -> s, se
            state
        }
        Role::Responder => {
            let mut theirs = [0u8; 5];
            stream.read_exact(&mut theirs)?;
            let [m0, m1, m2, m3, version] = theirs;
            if [m0, m1, m2, m3] != PREAMBLE_MAGIC {
                return Err(HandshakeError::NotPigeon);
            }
            if version != PROTOCOL_VERSION {
                return Err(HandshakeError::Version(version));
            }
            let mut state = builder.build_responder()?;
            receive(stream, &mut state, &mut buf)?;
            send(stream, &mut state, &mut buf)?;
            receive(stream, &mut state, &mut buf)?;
            state
        }
    };
    stream.flush()?;
    let remote = state
        .get_remote_static()
        .and_then(PublicKey::from_slice)
        .ok_or(HandshakeError::Noise(snow::Error::State(snow::error::StateProblem::MissingKeyMaterial)))?;
    let transport = state.into_stateless_transport_mode()?;
    Ok(Session { transport, remote, sent: AtomicU64::new(0), received: AtomicU64::new(0) })
}

fn preamble() -> [u8; 5] {
    let [m0, m1, m2, m3] = PREAMBLE_MAGIC;
    [m0, m1, m2, m3, PROTOCOL_VERSION]
}

fn send(
    stream: &mut impl Write,
    state: &mut snow::HandshakeState,
    buf: &mut [u8; MAX_HANDSHAKE_MESSAGE],
) -> Result<(), HandshakeError> {
    let len = state.write_message(&[], buf)?;
    let Ok(len_prefix) = u16::try_from(len) else { return Err(HandshakeError::TooLarge(len)) };
    let mut message = Vec::with_capacity(2 + len);
    message.extend_from_slice(&len_prefix.to_be_bytes());
    message.extend_from_slice(buf.get(..len).unwrap_or_default());
    stream.write_all(&message)?;
    Ok(())
}

fn receive(
    stream: &mut impl Read,
    state: &mut snow::HandshakeState,
    buf: &mut [u8; MAX_HANDSHAKE_MESSAGE],
) -> Result<(), HandshakeError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let len = usize::from(u16::from_be_bytes(len));
    let message = buf.get_mut(..len).ok_or(HandshakeError::TooLarge(len))?;
    stream.read_exact(message)?;
    let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
    state.read_message(message, &mut payload)?;
    Ok(())
}
