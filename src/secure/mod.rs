//! Encrypted, authenticated connections: every native TCP connection (chat and file data)
//! starts with a Noise XX handshake that proves both ends hold the private key behind their
//! peer id, then carries the usual frames inside encrypted records.
//!
//! - [`identity`]: our key pair in the data folder.
//! - [`mod@handshake`]: the three handshake messages, run on a blocking socket.
//! - [`record`]: reader and writer that turn a byte stream into encrypted records and back.
//!
//! docs/PROTOCOL.md section 6 describes the same thing for other implementations.

pub mod handshake;
pub mod identity;
pub mod record;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::keys::PublicKey;

pub use handshake::{HandshakeError, Role, handshake};
pub use identity::{Identity, IdentityError};
pub use record::{SecureReader, SecureWriter};

/// The Noise protocol: XX (both static keys sent encrypted, no key needed in advance),
/// X25519, AES-256-GCM (AES-NI and carry-less multiply on x86 make it the fastest AEAD
/// there; ring provides it), SHA-256.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";

/// An established session: the transport keys and one message counter per direction.
///
/// The counters are the Noise nonces. Each direction is used by one thread at a time (a
/// connection's reader, its writer, or a transfer worker that took the socket over), so the
/// counters only need to be shared, not locked.
pub struct Session {
    transport: snow::StatelessTransportState,
    remote: PublicKey,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Session {
    /// The other end's long-term key, proven by the handshake.
    pub fn remote(&self) -> PublicKey {
        self.remote
    }

    /// Encrypts one record with the next outgoing nonce; returns the ciphertext length.
    fn seal(&self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, snow::Error> {
        let nonce = self.sent.fetch_add(1, Ordering::Relaxed);
        self.transport.write_message(nonce, plaintext, out)
    }

    /// Decrypts one record with the next incoming nonce. A replayed, reordered, dropped or
    /// altered record fails here, because its nonce or tag does not match.
    fn open(&self, ciphertext: &[u8], out: &mut [u8]) -> Result<usize, snow::Error> {
        let nonce = self.received.fetch_add(1, Ordering::Relaxed);
        self.transport.read_message(nonce, ciphertext, out)
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session(remote {})", self.remote)
    }
}
