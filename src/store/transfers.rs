//! Transfers on disk: what was offered or accepted, where it stands, and what is needed to
//! resume it after a restart of either side (source paths on the sender, completed files and
//! chosen folder names on the receiver).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Direction, Store, StoreError, parse, to_sql_int};
use crate::protocol::ids::{PeerId, TransferId};
use crate::protocol::names::display_path;
use crate::protocol::room::PostedIn;
use crate::protocol::transfer::Entry;

/// Where a transfer stands. Only `Offered` and `Active` are live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Offered; the receiver has not answered.
    Offered,
    /// Accepted; data flows, or will when the connection is back.
    Active,
    /// Every file arrived and verified.
    Completed,
    /// The receiver declined.
    Declined,
    /// One side cancelled.
    Cancelled,
    /// Stopped by an error (disk full, integrity check, unreadable source); can be retried.
    Failed,
}

impl TransferState {
    fn code(self) -> i64 {
        match self {
            TransferState::Offered => 0,
            TransferState::Active => 1,
            TransferState::Completed => 2,
            TransferState::Declined => 3,
            TransferState::Cancelled => 4,
            TransferState::Failed => 5,
        }
    }

    fn from_code(code: i64) -> Result<Self, StoreError> {
        Ok(match code {
            0 => TransferState::Offered,
            1 => TransferState::Active,
            2 => TransferState::Completed,
            3 => TransferState::Declined,
            4 => TransferState::Cancelled,
            5 => TransferState::Failed,
            _ => return Err(StoreError::Corrupt("transfer state")),
        })
    }

    /// Whether the transfer may still move data.
    pub fn is_live(self) -> bool {
        matches!(self, TransferState::Offered | TransferState::Active)
    }
}

/// One transfer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// Identity, shared by both ends.
    pub id: TransferId,
    /// The other end.
    pub peer: PeerId,
    /// Sending or receiving.
    pub direction: Direction,
    /// What the offer listed (as on the wire).
    pub entries: Vec<Entry>,
    /// Sender only: the local file behind each entry.
    pub sources: Vec<PathBuf>,
    /// Receiver only: the local name chosen for each top-level folder of the offer.
    pub root_names: BTreeMap<String, String>,
    /// Where it stands.
    pub state: TransferState,
    /// Receiver only: entries before this index are complete on disk.
    pub files_done: u32,
    /// Why it ended, when it ended early.
    pub reason: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The room post it belongs to, for files posted to a room.
    pub room: Option<PostedIn>,
    /// Its row in the conversation's history (`seq`), for a direct transfer once stored.
    pub row: Option<i64>,
    /// Receiver: the folder it is saved in, chosen when it was accepted.
    pub saved_in: Option<PathBuf>,
}

impl TransferRecord {
    /// The first `limit` top-level files and folders, once each, as they are (or will be)
    /// named on disk: shown and sanitized, with the names chosen at the receiver when one
    /// was taken.
    pub fn top_names(&self, limit: usize) -> Vec<String> {
        let mut top: Vec<String> = Vec::new();
        for entry in &self.entries {
            if top.len() == limit {
                break;
            }
            let shown = display_path(&entry.path);
            let first = shown.split('/').next().unwrap_or_default();
            let placed = self.root_names.get(first).map_or(first, String::as_str);
            if !top.iter().any(|name| name == placed) {
                top.push(placed.to_owned());
            }
        }
        top
    }

    /// What our user picked to send: the local paths of the top-level files and folders
    /// (a folder's files follow it in `sources`).
    pub fn picked_paths(&self) -> Vec<PathBuf> {
        self.entries
            .iter()
            .zip(&self.sources)
            .filter(|(entry, _)| !entry.path.contains('/'))
            .map(|(_, source)| source.clone())
            .collect()
    }
}

/// Names a transfer's row in the history lists (and search finds).
const NAMES_IN_HISTORY: usize = 50;

const COLUMNS: &str = "t.id, t.peer, t.outgoing, l.entries, l.sources, t.root_names, t.state, t.files_done, t.reason, t.created_ms, t.room, t.row, t.saved_in";

/// Transfers joined with their file lists.
const FROM: &str = "transfers t JOIN transfer_lists l ON l.id = t.id";

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serializes")
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_corrupt| StoreError::Corrupt(what))
}

fn record(row: &Row<'_>) -> rusqlite::Result<Result<TransferRecord, StoreError>> {
    let id: String = row.get(0)?;
    let peer: String = row.get(1)?;
    let outgoing: bool = row.get(2)?;
    let entries: String = row.get(3)?;
    let sources: String = row.get(4)?;
    let root_names: String = row.get(5)?;
    let state: i64 = row.get(6)?;
    let files_done: i64 = row.get(7)?;
    let reason: String = row.get(8)?;
    let created_ms: i64 = row.get(9)?;
    let room: Option<String> = row.get(10)?;
    let history_row: Option<i64> = row.get(11)?;
    let saved_in: Option<String> = row.get(12)?;
    Ok((|| {
        Ok(TransferRecord {
            id: parse(&id, "transfer id")?,
            peer: parse(&peer, "peer id")?,
            direction: if outgoing { Direction::Outgoing } else { Direction::Incoming },
            entries: from_json(&entries, "transfer entries")?,
            sources: from_json(&sources, "transfer sources")?,
            root_names: from_json(&root_names, "transfer folder names")?,
            state: TransferState::from_code(state)?,
            files_done: u32::try_from(files_done).map_err(|_negative| StoreError::Corrupt("files done"))?,
            reason,
            created_ms: u64::try_from(created_ms).map_err(|_negative| StoreError::Corrupt("timestamp"))?,
            room: room.map(|room| from_json(&room, "transfer room")).transpose()?,
            row: history_row,
            saved_in: saved_in.map(PathBuf::from),
        })
    })())
}

impl Store {
    /// Records a new transfer, and for a direct one its row in the conversation (whose
    /// `seq` it returns in `transfer.row`); `false` if one with this id exists (a re-sent
    /// offer).
    pub fn insert_transfer(&mut self, transfer: &mut TransferRecord) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO transfers (id, peer, outgoing, root_names, state, files_done, reason, created_ms, room)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
            params![
                transfer.id.to_string(),
                transfer.peer.to_string(),
                transfer.direction == Direction::Outgoing,
                json(&transfer.root_names),
                transfer.state.code(),
                transfer.files_done,
                transfer.reason,
                to_sql_int(transfer.created_ms),
                transfer.room.as_ref().map(json),
            ],
        )?;
        if inserted > 0 {
            tx.execute(
                "INSERT INTO transfer_lists (id, entries, sources) VALUES (?1, ?2, ?3)",
                params![transfer.id.to_string(), json(&transfer.entries), json(&transfer.sources)],
            )?;
        }
        if inserted > 0 && transfer.room.is_none() {
            // Never in the outbox (delivered) and no read receipt to send (reported), but
            // unread like a message until the conversation is seen.
            tx.execute(
                "INSERT INTO messages (msg_id, peer, outgoing, text, sent_at_ms, state, read_reported, transfer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?1)",
                params![
                    transfer.id.to_string(),
                    transfer.peer.to_string(),
                    transfer.direction == Direction::Outgoing,
                    transfer.top_names(NAMES_IN_HISTORY).join(", "),
                    to_sql_int(transfer.created_ms),
                    crate::store::MessageState::Delivered.code(),
                ],
            )?;
            let row = tx.last_insert_rowid();
            tx.execute("UPDATE transfers SET row = ?1 WHERE id = ?2", params![row, transfer.id.to_string()])?;
            transfer.row = Some(row);
        }
        tx.commit()?;
        Ok(inserted > 0)
    }

    /// One transfer by id.
    pub fn transfer(&self, id: TransferId) -> Result<Option<TransferRecord>, StoreError> {
        let found = self
            .conn
            .query_row(&format!("SELECT {COLUMNS} FROM {FROM} WHERE t.id = ?1"), [id.to_string()], record)
            .optional()?;
        found.transpose()
    }

    /// One of our offers of the files of a room post (any member's: they list the same
    /// files), to offer them to a member added later.
    pub fn room_offer(&self, posted: PostedIn) -> Result<Option<TransferRecord>, StoreError> {
        let found = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE t.outgoing = 1 AND t.room = ?1 LIMIT 1"),
                [json(&posted)],
                record,
            )
            .optional()?;
        found.transpose()
    }

    /// Transfers still live (offered or active), oldest first: resumed after a restart.
    pub fn live_transfers(&self) -> Result<Vec<TransferRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE t.state IN (?1, ?2) ORDER BY t.created_ms"
        ))?;
        let rows =
            stmt.query_map(params![TransferState::Offered.code(), TransferState::Active.code()], record)?;
        rows.map(|row| row?).collect()
    }

    /// The newest transfers, newest first.
    pub fn recent_transfers(&self, limit: usize) -> Result<Vec<TransferRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM {FROM} ORDER BY t.created_ms DESC LIMIT ?1"))?;
        let rows = stmt.query_map([to_sql_int(limit)], record)?;
        rows.map(|row| row?).collect()
    }

    /// Sets state and reason.
    pub fn set_transfer_state(
        &self,
        id: TransferId,
        state: TransferState,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE transfers SET state = ?1, reason = ?2 WHERE id = ?3",
            params![state.code(), reason, id.to_string()],
        )?;
        Ok(())
    }

    /// Records how many leading entries are complete (receiver).
    pub fn set_files_done(&self, id: TransferId, files_done: u32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE transfers SET files_done = ?1 WHERE id = ?2",
            params![files_done, id.to_string()],
        )?;
        Ok(())
    }

    /// Records the folder names chosen when the transfer was accepted (receiver).
    pub fn set_root_names(
        &self,
        id: TransferId,
        root_names: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE transfers SET root_names = ?1 WHERE id = ?2",
            params![json(root_names), id.to_string()],
        )?;
        Ok(())
    }

    /// Records the folder an accepted offer is saved in.
    pub fn set_saved_in(&self, id: TransferId, folder: &Path) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE transfers SET saved_in = ?1 WHERE id = ?2",
            params![folder.to_string_lossy(), id.to_string()],
        )?;
        Ok(())
    }

    /// Replaces the entries of a transfer (receiver): what a folder offered as one name
    /// turned out to hold.
    pub fn set_transfer_entries(&self, id: TransferId, entries: &[Entry]) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE transfer_lists SET entries = ?1 WHERE id = ?2",
            params![json(&entries), id.to_string()],
        )?;
        Ok(())
    }

    /// Whether the user chose "always accept" for this peer.
    pub fn is_trusted_sender(&self, peer: PeerId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM trusted_senders WHERE peer = ?1", [peer.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Stops accepting `peer`'s offers without asking.
    pub fn distrust_sender(&self, peer: PeerId) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM trusted_senders WHERE peer = ?1", [peer.to_string()])?;
        Ok(())
    }

    /// The peers whose offers are accepted without asking, by id.
    pub fn trusted_senders(&self) -> Result<Vec<PeerId>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT peer FROM trusted_senders ORDER BY peer")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|id| parse(&id?, "peer id")).collect()
    }

    /// Accepts every future offer from `peer` without asking.
    pub fn trust_sender(&self, peer: PeerId) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO trusted_senders (peer) VALUES (?1) ON CONFLICT DO NOTHING",
            [peer.to_string()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::transfer::EntryKind;

    #[test]
    fn transfers_round_trip_and_only_live_ones_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        let mut record = TransferRecord {
            id: TransferId::from_bytes([1; 16]),
            peer: PeerId::from_bytes([2; 16]),
            direction: Direction::Incoming,
            entries: vec![Entry { path: "a.txt".into(), kind: EntryKind::File, size: 3 }],
            sources: Vec::new(),
            root_names: BTreeMap::new(),
            state: TransferState::Offered,
            files_done: 0,
            reason: String::new(),
            created_ms: 7,
            room: Some(PostedIn { room: crate::protocol::ids::RoomId::from_bytes([4; 16]), seq: 3 }),
            row: None,
            saved_in: None,
        };
        assert!(store.insert_transfer(&mut record).unwrap());
        assert!(!store.insert_transfer(&mut record).unwrap(), "a re-sent offer is not a new transfer");
        store.set_transfer_state(record.id, TransferState::Active, "").unwrap();
        store.set_files_done(record.id, 1).unwrap();
        record.root_names.insert("Photos".into(), "Photos (1)".into());
        store.set_root_names(record.id, &record.root_names).unwrap();
        record.entries.push(Entry { path: "b.txt".into(), kind: EntryKind::File, size: 4 });
        store.set_transfer_entries(record.id, &record.entries).unwrap();
        let loaded = store.transfer(record.id).unwrap().unwrap();
        assert_eq!(loaded.entries, record.entries);
        assert_eq!((loaded.state, loaded.files_done), (TransferState::Active, 1));
        assert_eq!(loaded.root_names, record.root_names);
        assert_eq!(loaded.room, record.room);
        assert_eq!(loaded.row, None, "files posted to a room are shown in the room");
        assert_eq!(store.live_transfers().unwrap().len(), 1);
        store.set_transfer_state(record.id, TransferState::Completed, "").unwrap();
        assert!(store.live_transfers().unwrap().is_empty());
        assert_eq!(store.recent_transfers(5).unwrap().len(), 1);
    }

    #[test]
    fn a_direct_transfer_has_a_row_in_its_conversation_that_is_unread_but_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        let peer = PeerId::from_bytes([2; 16]);
        let entry = |path: &str, kind| Entry { path: path.into(), kind, size: 3 };
        let mut incoming = TransferRecord {
            id: TransferId::from_bytes([1; 16]),
            peer,
            direction: Direction::Incoming,
            entries: vec![
                entry("Photos", EntryKind::Dir),
                entry("Photos/a.jpg", EntryKind::File),
                entry("会议纪要.txt", EntryKind::File),
            ],
            sources: Vec::new(),
            root_names: BTreeMap::new(),
            state: TransferState::Offered,
            files_done: 0,
            reason: String::new(),
            created_ms: 7,
            room: None,
            row: None,
            saved_in: None,
        };
        assert!(store.insert_transfer(&mut incoming).unwrap());
        let mut outgoing = TransferRecord {
            id: TransferId::from_bytes([3; 16]),
            direction: Direction::Outgoing,
            row: None,
            ..incoming.clone()
        };
        assert!(store.insert_transfer(&mut outgoing).unwrap());
        let rows = store.history(peer, None, 10).unwrap();
        assert_eq!(
            rows.iter().map(|m| m.transfer).collect::<Vec<_>>(),
            [Some(incoming.id), Some(outgoing.id)]
        );
        assert_eq!(rows[0].text, "Photos, 会议纪要.txt");
        assert_eq!((incoming.row, outgoing.row), (Some(rows[0].seq), Some(rows[1].seq)));
        assert_eq!(store.transfer(incoming.id).unwrap().unwrap().row, incoming.row);
        assert_eq!(store.search("纪要", None, 10).unwrap().len(), 2, "file names are found");
        // Unread until seen, but neither in the outbox nor owed a read receipt.
        assert_eq!(store.conversations().unwrap()[0].unread, 1);
        assert!(store.undelivered(peer).unwrap().is_empty());
        store.mark_read(peer).unwrap();
        assert!(store.unreported_reads(peer, 10).unwrap().is_empty());
        // The folder an offer is saved in is kept.
        store.set_saved_in(incoming.id, std::path::Path::new("/home/ana/下载")).unwrap();
        let saved = store.transfer(incoming.id).unwrap().unwrap().saved_in;
        assert_eq!(saved.as_deref(), Some(std::path::Path::new("/home/ana/下载")));
    }

    #[test]
    fn trusted_senders_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        let peer = PeerId::from_bytes([4; 16]);
        assert!(!store.is_trusted_sender(peer).unwrap());
        store.trust_sender(peer).unwrap();
        store.trust_sender(peer).unwrap();
        assert!(store.is_trusted_sender(peer).unwrap());
        assert_eq!(store.trusted_senders().unwrap(), [peer]);
        store.distrust_sender(peer).unwrap();
        assert!(!store.is_trusted_sender(peer).unwrap() && store.trusted_senders().unwrap().is_empty());
    }
}
