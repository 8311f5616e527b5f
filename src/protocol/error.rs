//! The one error type for everything that can be wrong with bytes from the wire.

use thiserror::Error;

/// Why a datagram or frame could not be decoded. "Not enough bytes yet" is not an error: the
/// frame decoder reports it as `Ok(None)`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The packet does not start with Pigeon's magic bytes: not for us, or garbage.
    #[error("bad magic bytes")]
    BadMagic,
    /// The packet is shorter than its fixed header.
    #[error("truncated header ({0} bytes)")]
    Truncated(usize),
    /// The sender speaks a protocol version we do not.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A datagram kind we do not know (frames of unknown kind are skipped, not rejected).
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
    /// A declared or actual size is over its limit.
    #[error("{what} is {len} bytes, limit {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The JSON body is not valid for its kind.
    #[error("malformed body: {0}")]
    Body(String),
    /// A field is present but its value is not allowed.
    #[error("invalid field {0}")]
    InvalidField(&'static str),
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        DecodeError::Body(err.to_string())
    }
}
