//! Long-term public keys: how a peer id and a safety number are derived from them, and how
//! a signature made with one is checked.
//!
//! A Pigeon installation is its X25519 key pair. The peer id everyone sees is a hash of the
//! public key, so a node announcing some id must present the matching key; the Noise
//! handshake on every connection proves it holds the private half, and the same key signs
//! what travels outside connections (discovery datagrams), so no second key is needed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DecodeError;
use super::ids::{ID_BYTES, PeerId, parse_hex};

/// Bytes in an X25519 public key.
pub const KEY_BYTES: usize = 32;

/// BLAKE3 key-derivation contexts: each derived value has its own, so no value can stand in
/// for another.
const PEER_ID_CONTEXT: &str = "pigeon 2026-11 peer id from X25519 public key";
const SAFETY_NUMBER_CONTEXT: &str = "pigeon 2026-11 safety number of two public keys";

/// Bytes in a signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A signature by the holder of a [`PublicKey`]: XEdDSA, i.e. Ed25519 with the Edwards form
/// of the X25519 key whose sign bit is 0 (docs/PROTOCOL.md section 6).
pub type Signature = [u8; SIGNATURE_BYTES];

/// Something that signs with the private half of a [`PublicKey`] (our identity).
pub trait Signer {
    /// The key the signatures verify with.
    fn public(&self) -> PublicKey;
    /// Signs `message`, which the caller has prefixed with its own context.
    fn sign(&self, message: &[u8]) -> Signature;
}

/// Digits in a safety number, printed in groups of five.
pub const SAFETY_DIGITS: usize = 20;

/// An X25519 public key, 64 hex digits on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_BYTES]);

impl PublicKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        PublicKey(bytes)
    }

    /// Takes a key from a slice, `None` unless it is exactly [`KEY_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(PublicKey)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The peer id of the installation holding this key: the first 16 bytes of a BLAKE3
    /// derivation, so ids stay short while forging one still means finding a 128-bit preimage.
    pub fn peer_id(&self) -> PeerId {
        let hash = blake3::derive_key(PEER_ID_CONTEXT, &self.0);
        let mut id = [0u8; ID_BYTES];
        id.copy_from_slice(hash.get(..ID_BYTES).unwrap_or(&[0; ID_BYTES]));
        PeerId::from_bytes(id)
    }

    /// Whether `signature` over `message` was made by the holder of this key. The X25519 key
    /// names a pair of Edwards points (`A` and `-A`); the signer uses the one whose sign bit
    /// is 0, so the verifier needs nothing but this key. A key that is not on the curve, or
    /// of small order, verifies nothing.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.verifier().is_some_and(|verifier| verifier.verifies(message, signature))
    }

    /// This key ready to check many signatures (turning it into its Ed25519 form is a third
    /// of the cost of one check); `None` for a key that verifies nothing.
    pub fn verifier(&self) -> Option<Verifier> {
        let edwards = curve25519_dalek::MontgomeryPoint(self.0).to_edwards(0)?;
        ed25519_dalek::VerifyingKey::from_bytes(&edwards.compress().to_bytes()).ok().map(Verifier)
    }
}

/// A [`PublicKey`] in the form that checks signatures (see [`PublicKey::verifier`]).
#[derive(Debug, Clone)]
pub struct Verifier(ed25519_dalek::VerifyingKey);

impl Verifier {
    /// Whether `signature` over `message` was made by the holder of the key.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

/// The code two people compare out loud to rule out a man in the middle: both ends compute the
/// same digits from the same pair of keys, whichever side they are on.
pub fn safety_number(a: &PublicKey, b: &PublicKey) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut input = [0u8; 2 * KEY_BYTES];
    let (first, second) = input.split_at_mut(KEY_BYTES);
    first.copy_from_slice(&low.0);
    second.copy_from_slice(&high.0);
    let hash = blake3::derive_key(SAFETY_NUMBER_CONTEXT, &input);
    // Five digits from each 4-byte piece: 2^32 is well above 10^5, so the bias is negligible.
    let groups: Vec<String> = hash
        .chunks_exact(4)
        .take(SAFETY_DIGITS / 5)
        .map(|piece| {
            let value = piece.iter().fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
            format!("{:05}", value % 100_000)
        })
        .collect();
    groups.join(" ")
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s).map(PublicKey).ok_or(DecodeError::InvalidField("key"))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_is_stable_and_differs_per_key() {
        let a = PublicKey::from_bytes([1; KEY_BYTES]);
        let b = PublicKey::from_bytes([2; KEY_BYTES]);
        assert_eq!(a.peer_id(), a.peer_id());
        assert_ne!(a.peer_id(), b.peer_id());
        // Pinned so that a change of derivation cannot slip in unnoticed: ids are persistent.
        assert_eq!(a.peer_id().to_string(), "5bc84f85ae674108b77d54c4cf60d17a");
    }

    #[test]
    fn safety_number_is_symmetric_and_grouped() {
        let a = PublicKey::from_bytes([1; KEY_BYTES]);
        let b = PublicKey::from_bytes([2; KEY_BYTES]);
        let c = PublicKey::from_bytes([3; KEY_BYTES]);
        let code = safety_number(&a, &b);
        assert_eq!(code, safety_number(&b, &a));
        assert_ne!(code, safety_number(&a, &c));
        assert_eq!(code.len(), SAFETY_DIGITS + SAFETY_DIGITS / 5 - 1);
        assert!(code.split(' ').all(|group| group.len() == 5 && group.bytes().all(|d| d.is_ascii_digit())));
        // The example in docs/PROTOCOL.md section 6.
        assert_eq!(code, "05653 41660 17683 72828");
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let key = PublicKey::from_bytes([0xab; KEY_BYTES]);
        assert_eq!(key.to_string().parse::<PublicKey>().unwrap(), key);
        assert!("ab".repeat(16).parse::<PublicKey>().is_err());
        assert!(PublicKey::from_slice(&[0; 31]).is_none());
    }
}
