//! Chat payloads carried in TCP frames: a message, and receipts that acknowledge messages.

use serde::{Deserialize, Serialize};

use super::ids::MsgId;
use super::{DecodeError, MAX_TEXT_BYTES};

/// Most message ids in one receipt frame; a receiver with more to confirm sends several.
pub const MAX_RECEIPT_IDS: usize = 1024;

/// One chat message as it travels from sender to recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// End-to-end identity: a resend carries the same id, and the recipient keeps one copy.
    pub msg_id: MsgId,
    /// When the user pressed send, in milliseconds since the Unix epoch (sender's clock).
    pub sent_at_ms: u64,
    /// The text, UTF-8, at most [`MAX_TEXT_BYTES`].
    pub text: String,
}

impl WireMessage {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_text_len(&self.text)
    }
}

/// Refuses texts over [`MAX_TEXT_BYTES`]; used both when decoding and before sending.
pub fn check_text_len(text: &str) -> Result<(), DecodeError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(DecodeError::TooLarge { what: "text", len: text.len(), max: MAX_TEXT_BYTES });
    }
    Ok(())
}

/// A list of message ids: the body of both the delivered and the read receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Messages this receipt confirms.
    pub msg_ids: Vec<MsgId>,
}

impl Receipt {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.msg_ids.len() > MAX_RECEIPT_IDS {
            return Err(DecodeError::TooLarge {
                what: "receipt id list",
                len: self.msg_ids.len(),
                max: MAX_RECEIPT_IDS,
            });
        }
        Ok(())
    }
}
