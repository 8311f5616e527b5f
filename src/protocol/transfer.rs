//! File-transfer payloads: the offer (what would be sent), the answers to it, and the frames
//! of a data stream (fetch, file end, completion). Raw file bytes travel in chunk frames,
//! which carry no JSON (see [`super::frame`]).

use serde::{Deserialize, Serialize};

use super::DecodeError;
use super::ids::TransferId;

/// Most entries (files and folders) in one offer. A 10,000-photo folder fits; an offer built
/// to exhaust the receiver's memory or inode table does not.
pub const MAX_OFFER_ENTRIES: usize = 50_000;

/// Longest relative path of one entry on the wire, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Largest total size of one offer: 16 TiB, far above any real folder, far below overflow.
pub const MAX_TOTAL_BYTES: u64 = 1 << 44;

/// Bytes of file data per chunk frame: large enough that framing costs nothing, small enough
/// that cancel and progress react within milliseconds.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file with data.
    File,
    /// A folder (sent so that empty folders arrive too).
    Dir,
}

/// One file or folder of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the transfer's root, components separated by `/`. Hostile until
    /// sanitized by the receiver.
    pub path: String,
    /// File or folder.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders).
    #[serde(default)]
    pub size: u64,
}

/// An offer of files and folders. Entries of a folder come after the folder itself; file data
/// is streamed in entry order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The transfer this offer starts.
    pub transfer_id: TransferId,
    /// What is offered.
    pub entries: Vec<Entry>,
    /// The room post that offers these files to every member, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<super::room::PostedIn>,
}

impl Offer {
    /// Sum of all file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|entry| entry.size).fold(0, u64::saturating_add)
    }

    /// Checks the documented limits (names are checked by the receiver's sanitizer).
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.entries.len() > MAX_OFFER_ENTRIES {
            return Err(DecodeError::TooLarge {
                what: "offer entry list",
                len: self.entries.len(),
                max: MAX_OFFER_ENTRIES,
            });
        }
        if let Some(entry) = self.entries.iter().find(|entry| entry.path.len() > MAX_PATH_BYTES) {
            return Err(DecodeError::TooLarge {
                what: "entry path",
                len: entry.path.len(),
                max: MAX_PATH_BYTES,
            });
        }
        if self.entries.iter().any(|entry| entry.kind == EntryKind::Dir && entry.size != 0) {
            return Err(DecodeError::InvalidField("size of a folder"));
        }
        if self
            .entries
            .iter()
            .try_fold(0u64, |sum, entry| sum.checked_add(entry.size))
            .is_none_or(|t| t > MAX_TOTAL_BYTES)
        {
            return Err(DecodeError::InvalidField("total size"));
        }
        Ok(())
    }
}

/// Ends a transfer early: the body of decline and cancel frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferEnd {
    /// Which transfer.
    pub transfer_id: TransferId,
    /// Why, for the other user.
    #[serde(default)]
    pub reason: String,
    /// Stopped by an error (disk full, integrity) rather than by a person.
    #[serde(default)]
    pub failed: bool,
}

/// First frame after hello on a data connection: the receiver asks for the transfer's data
/// from file entry `index` at byte `offset` (what it already has is not sent again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// Which transfer.
    pub transfer_id: TransferId,
    /// Entry index to start at; files before it are complete.
    pub index: u32,
    /// Bytes of that file the receiver already has.
    pub offset: u64,
}

/// Sent after the last chunk of a file: its BLAKE3 hash over the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEnd {
    /// Entry index of the file.
    pub index: u32,
    /// BLAKE3 of the complete file, 64 lowercase hex digits.
    pub blake3: String,
}

/// Sent by the receiver when every file arrived and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferDone {
    /// Which transfer.
    pub transfer_id: TransferId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(entries: Vec<Entry>) -> Offer {
        Offer { transfer_id: TransferId::from_bytes([3; 16]), entries, room: None }
    }

    fn file(path: &str, size: u64) -> Entry {
        Entry { path: path.into(), kind: EntryKind::File, size }
    }

    #[test]
    fn limits_are_enforced() {
        assert!(offer(vec![file("a", 1), file("b", 2)]).validate().is_ok());
        assert_eq!(offer(vec![file("a", 1), file("b", 2)]).total_bytes(), 3);
        let many = offer((0..=MAX_OFFER_ENTRIES).map(|n| file(&n.to_string(), 0)).collect());
        assert!(matches!(many.validate(), Err(DecodeError::TooLarge { .. })));
        let long = offer(vec![file(&"a".repeat(MAX_PATH_BYTES + 1), 0)]);
        assert!(matches!(long.validate(), Err(DecodeError::TooLarge { .. })));
        let huge = offer(vec![file("a", u64::MAX), file("b", 1)]);
        assert!(huge.validate().is_err());
        let dir = offer(vec![Entry { path: "d".into(), kind: EntryKind::Dir, size: 5 }]);
        assert!(dir.validate().is_err());
    }
}
