//! 128-bit identifiers for peers and messages, written as 32 lowercase hex digits on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DecodeError;

/// Bytes in every identifier: 128 random bits make collisions on a LAN a non-issue.
pub const ID_BYTES: usize = 16;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_BYTES]);

        impl $name {
            /// Wraps raw bytes (the caller supplies the randomness).
            pub fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = DecodeError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex(s).map(Self).ok_or(DecodeError::InvalidField(stringify!($name)))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// Identifies one Pigeon installation: derived from its public key (see
    /// [`PublicKey::peer_id`](super::keys::PublicKey::peer_id)), so it cannot be claimed without
    /// that key's private half.
    PeerId
);
hex_id!(
    /// Identifies one chat message end to end; the receiver uses it to drop resent copies.
    MsgId
);

hex_id!(
    /// Identifies one file transfer (one offer to one peer) on both ends, across restarts.
    TransferId
);

hex_id!(
    /// Identifies one group room: derived from its creator's id and a random nonce (see
    /// `protocol::room::room_id`), so that only its creator can start it.
    RoomId
);

/// Bytes as lower-case hex digits, two per byte (what [`parse_hex`] reads back).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses exactly `2 * N` hex digits (either case) into `N` bytes.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = (hex_digit(*high)? << 4) | hex_digit(*low)?;
    }
    Some(out)
}

fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = PeerId::from_bytes([0xab; ID_BYTES]);
        let text = id.to_string();
        assert_eq!(text, "ab".repeat(16));
        assert_eq!(text.parse::<PeerId>().unwrap(), id);
    }

    #[test]
    fn rejects_bad_hex() {
        assert!("abc".parse::<PeerId>().is_err());
        assert!("zz".repeat(16).parse::<PeerId>().is_err());
        assert!("+1".repeat(16).parse::<MsgId>().is_err());
        assert!("é".repeat(16).parse::<MsgId>().is_err());
    }

    #[test]
    fn serde_as_string() {
        let id = MsgId::from_bytes([1; ID_BYTES]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "01".repeat(16)));
        assert_eq!(serde_json::from_str::<MsgId>(&json).unwrap(), id);
    }
}
