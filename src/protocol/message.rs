//! Chat payloads carried in TCP frames: a message, and receipts that acknowledge messages.

use serde::{Deserialize, Serialize};

use super::ids::{MsgId, PeerId};
use super::{DecodeError, MAX_ALSO_TO, MAX_TEXT_BYTES};

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
    /// The other people the same message went to (at most [`MAX_ALSO_TO`]), so the recipient
    /// can tell it was not for them alone. Left out when there were none; senders before it
    /// existed never send it and receivers before it ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_to: Vec<PeerId>,
}

impl WireMessage {
    /// Checks the limits a decoder must enforce beyond JSON syntax.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.also_to.len() > MAX_ALSO_TO {
            return Err(DecodeError::TooLarge { what: "also_to", len: self.also_to.len(), max: MAX_ALSO_TO });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn also_to_is_optional_and_bounded() {
        let old = r#"{"msg_id":"0f0e0d0c0b0a09080706050403020100","sent_at_ms":1,"text":"hi"}"#;
        let message: WireMessage = serde_json::from_str(old).unwrap();
        assert!(message.also_to.is_empty() && message.validate().is_ok());
        assert_eq!(serde_json::to_string(&message).unwrap(), old, "left out when empty");
        let many = WireMessage { also_to: vec![PeerId::from_bytes([1; 16]); MAX_ALSO_TO + 1], ..message };
        assert!(many.validate().is_err());
    }
}
