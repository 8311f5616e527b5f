//! Everything Pigeon keeps on disk: identity, known peers and the full message history
//! (which doubles as the outbox: outgoing messages not yet delivered are retried from it).
//!
//! Transfers live here too (`transfers.rs`), so both ends can resume after a restart.
//!
//! One SQLite file in the data folder, in WAL mode so a crash mid-write never corrupts it.
//! Only the hub thread holds a [`Store`]; nothing else touches the database.

mod rooms;
mod schema;
mod transfers;
mod trust;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use transfers::{TransferRecord, TransferState};
pub use trust::Trust;

use crate::protocol::Family;
use crate::protocol::ids::{MsgId, PeerId, TransferId};

/// How long a write waits for a lock held by another process (a `pigeon` CLI reading the same
/// file) before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong with the history database.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite refused an operation (disk full, permissions, corruption).
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A value in the database is not what this version wrote.
    #[error("history database holds an invalid {0}")]
    Corrupt(&'static str),
    /// The file was written by a newer Pigeon.
    #[error("history database has schema version {found}; this Pigeon knows up to {known}")]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We sent it.
    Outgoing,
    /// We received it.
    Incoming,
}

/// Where a message stands. States only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Outgoing, waiting in the outbox for the peer.
    Queued,
    /// Outgoing, written to a connection, not yet acknowledged.
    Sent,
    /// Outgoing: the recipient stored it. Incoming: we stored it, the user has not seen it.
    Delivered,
    /// The recipient's user has seen it (outgoing), or our user has (incoming).
    Read,
}

impl MessageState {
    fn code(self) -> i64 {
        match self {
            MessageState::Queued => 0,
            MessageState::Sent => 1,
            MessageState::Delivered => 2,
            MessageState::Read => 3,
        }
    }

    fn from_code(code: i64) -> Result<Self, StoreError> {
        Ok(match code {
            0 => MessageState::Queued,
            1 => MessageState::Sent,
            2 => MessageState::Delivered,
            3 => MessageState::Read,
            _ => return Err(StoreError::Corrupt("message state")),
        })
    }
}

/// One message of a conversation, as kept in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Local, increasing position in history; pass it as `before` to load older pages.
    pub seq: i64,
    /// End-to-end message id.
    pub msg_id: MsgId,
    /// The other side of the conversation (recipient or sender).
    pub peer: PeerId,
    /// Which way it went.
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// When the sender pressed send, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// Delivery state.
    pub state: MessageState,
    /// Received while the sender's key was a changed one the user had not accepted (see
    /// [`Trust::KeyChanged`]): shown marked, because it may not be from who it claims.
    #[serde(default)]
    pub unconfirmed_sender: bool,
    /// This row stands for a transfer of files (its text lists their names): shown as the
    /// transfer's card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferId>,
    /// The other people the same message went to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_to: Vec<PeerId>,
}

/// One conversation in history, for a list of chats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The other side, as last seen (name and host empty if it was never seen).
    pub peer: KnownPeer,
    /// Incoming messages our user has not read.
    pub unread: u64,
    /// When the newest message was sent, milliseconds since the Unix epoch.
    pub last_at_ms: u64,
}

/// A peer we have talked to or seen, remembered across restarts so that messages to it can
/// be queued while it is offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Identity.
    pub id: PeerId,
    /// Last known display name.
    pub name: String,
    /// Last known group.
    pub group: String,
    /// Last known host name.
    pub host: String,
    /// Last known address as `ip:port`.
    pub addr: String,
    /// The protocol it speaks.
    #[serde(default)]
    pub family: Family,
}

/// The history database. Owned by the hub thread.
pub struct Store {
    /// The open SQLite connection; lives as long as the node.
    conn: Connection,
}

/// Bytes the write-ahead log is cut back to after a checkpoint (`journal_size_limit`).
pub const JOURNAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// A second connection to the history file whose only job is copying the write-ahead log
/// into the database, away from the hub thread.
pub struct Checkpointer {
    /// Its own connection; SQLite lets it checkpoint while the hub keeps writing.
    conn: Connection,
}

impl Checkpointer {
    /// Opens the history file at `path` (already created by [`Store::open`]).
    pub fn open(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        Ok(Checkpointer { conn })
    }

    /// Copies what it can of the log into the database without blocking writers.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// A known peer from the columns at `at` of `row`: id, name, group, host, address, family.
fn known_peer(row: &Row<'_>, at: [usize; 6]) -> rusqlite::Result<Result<KnownPeer, StoreError>> {
    let [id, name, group, host, addr, family] = at;
    let (id, family): (String, String) = (row.get(id)?, row.get(family)?);
    let (name, group, host, addr) = (row.get(name)?, row.get(group)?, row.get(host)?, row.get(addr)?);
    Ok((|| {
        let id = parse(&id, "peer id")?;
        let family = Family::from_name(&family).ok_or(StoreError::Corrupt("peer family"))?;
        Ok(KnownPeer { id, name, group, host, addr, family })
    })())
}

/// Characters in the pieces the search index is made of (SQLite's trigram tokenizer).
const TRIGRAM: usize = 3;

const MESSAGE_COLUMNS: &str =
    "seq, msg_id, peer, outgoing, text, sent_at_ms, state, unconfirmed_sender, transfer, also_to";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the
        // last transactions, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Checkpoints (and the fsync they need) run on a Checkpointer's thread instead, so a
        // slow disk never stalls message handling.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Once checkpointed, the log starts over from its beginning and is cut back to this
        // size: without it the file keeps the size of its busiest moment for ever.
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// Rows changed since the store was opened: a number that moves whenever it was written.
    pub fn changes(&self) -> u64 {
        self.conn.total_changes()
    }

    /// Records (or refreshes) what we know of a peer.
    pub fn remember_peer(&self, peer: &KnownPeer, seen_at_ms: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO peers (id, name, grp, host, addr, last_seen_ms, family)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET name = ?2, grp = ?3, host = ?4, addr = ?5, last_seen_ms = ?6,
                 family = ?7",
            )?
            .execute(params![
                peer.id.to_string(),
                peer.name,
                peer.group,
                peer.host,
                peer.addr,
                to_sql_int(seen_at_ms),
                peer.family.as_str(),
            ])?;
        Ok(())
    }

    /// Every peer ever seen, most recently seen first.
    pub fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, grp, host, addr, family FROM peers ORDER BY last_seen_ms DESC",
        )?;
        let rows = stmt.query_map([], |row| known_peer(row, [0, 1, 2, 3, 4, 5]))?;
        rows.map(|row| row?).collect()
    }

    /// Adds an outgoing message (state `Queued`), which also went to `also_to`, and returns
    /// it with its history position.
    pub fn insert_outgoing(
        &self,
        msg_id: MsgId,
        peer: PeerId,
        text: &str,
        sent_at_ms: u64,
        also_to: &[PeerId],
    ) -> Result<ChatMessage, StoreError> {
        let message = Draft {
            msg_id,
            peer,
            direction: Direction::Outgoing,
            text,
            sent_at_ms,
            unconfirmed_sender: false,
            also_to,
        };
        self.insert(&message, MessageState::Queued)?
            .ok_or(StoreError::Corrupt("duplicate outgoing message id"))
    }

    /// Adds an incoming message; `None` when this id from this peer is already in history (a
    /// resend after a lost acknowledgement), so the caller shows it only once.
    pub fn insert_incoming(
        &self,
        msg_id: MsgId,
        peer: PeerId,
        text: &str,
        sent_at_ms: u64,
        unconfirmed_sender: bool,
    ) -> Result<Option<ChatMessage>, StoreError> {
        self.insert_incoming_to_many(msg_id, peer, text, sent_at_ms, unconfirmed_sender, &[])
    }

    /// [`Store::insert_incoming`] of a message that also went to `also_to`.
    pub fn insert_incoming_to_many(
        &self,
        msg_id: MsgId,
        peer: PeerId,
        text: &str,
        sent_at_ms: u64,
        unconfirmed_sender: bool,
        also_to: &[PeerId],
    ) -> Result<Option<ChatMessage>, StoreError> {
        let message = Draft {
            msg_id,
            peer,
            direction: Direction::Incoming,
            text,
            sent_at_ms,
            unconfirmed_sender,
            also_to,
        };
        self.insert(&message, MessageState::Delivered)
    }

    fn insert(&self, draft: &Draft<'_>, state: MessageState) -> Result<Option<ChatMessage>, StoreError> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO messages (msg_id, peer, outgoing, text, sent_at_ms, state, unconfirmed_sender, also_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (peer, outgoing, msg_id) DO NOTHING",
            )?
            .execute(params![
                draft.msg_id.to_string(),
                draft.peer.to_string(),
                draft.direction == Direction::Outgoing,
                draft.text,
                to_sql_int(draft.sent_at_ms),
                state.code(),
                draft.unconfirmed_sender,
                (!draft.also_to.is_empty()).then(|| serde_json::to_string(draft.also_to).unwrap_or_default()),
            ])?;
        if inserted == 0 {
            return Ok(None);
        }
        Ok(Some(ChatMessage {
            seq: self.conn.last_insert_rowid(),
            msg_id: draft.msg_id,
            peer: draft.peer,
            direction: draft.direction,
            text: draft.text.to_owned(),
            sent_at_ms: draft.sent_at_ms,
            state,
            unconfirmed_sender: draft.unconfirmed_sender,
            transfer: None,
            also_to: draft.also_to.to_vec(),
        }))
    }

    /// Moves an outgoing message to `state` if that is a step forward; `false` when the
    /// message is unknown, not ours to `peer`, or already at or past `state`.
    pub fn advance_outgoing(
        &self,
        peer: PeerId,
        msg_id: MsgId,
        state: MessageState,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = ?1 WHERE peer = ?2 AND outgoing = 1 AND msg_id = ?3 AND state < ?1",
            )?
            .execute(params![state.code(), peer.to_string(), msg_id.to_string()])?;
        Ok(changed > 0)
    }

    /// Outgoing messages to `peer` that are not yet delivered, oldest first: the outbox.
    pub fn undelivered(&self, peer: PeerId) -> Result<Vec<ChatMessage>, StoreError> {
        self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE peer = ?1 AND outgoing = 1 AND state < ?2 ORDER BY seq"
            ),
            params![peer.to_string(), MessageState::Delivered.code()],
        )
    }

    /// Peers with at least one undelivered outgoing message.
    pub fn peers_with_undelivered(&self) -> Result<Vec<PeerId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT peer FROM messages WHERE outgoing = 1 AND state < ?1")?;
        let rows = stmt.query_map([MessageState::Delivered.code()], |row| row.get::<_, String>(0))?;
        rows.map(|id| parse(&id?, "peer id")).collect()
    }

    /// Marks every unread incoming message from `peer` as read.
    pub fn mark_read(&self, peer: PeerId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE messages SET state = ?1 WHERE peer = ?2 AND outgoing = 0 AND state < ?1")?
            .execute(params![MessageState::Read.code(), peer.to_string()])?;
        Ok(())
    }

    /// Incoming messages from `peer` that our user has read but whose read receipt has not
    /// been handed to a connection yet, at most `limit`.
    pub fn unreported_reads(&self, peer: PeerId, limit: usize) -> Result<Vec<MsgId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT msg_id FROM messages WHERE peer = ?1 AND outgoing = 0 AND state = ?2 AND read_reported = 0
             ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![peer.to_string(), MessageState::Read.code(), to_sql_int(limit)], |row| {
                row.get::<_, String>(0)
            })?;
        rows.map(|id| parse(&id?, "message id")).collect()
    }

    /// Records that read receipts for these messages were sent.
    pub fn mark_reads_reported(&mut self, peer: PeerId, msg_ids: &[MsgId]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE messages SET read_reported = 1 WHERE peer = ?1 AND outgoing = 0 AND msg_id = ?2",
            )?;
            for msg_id in msg_ids {
                stmt.execute(params![peer.to_string(), msg_id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One page of the conversation with `peer`: up to `limit` messages older than `before`
    /// (or the newest ones), returned oldest first.
    pub fn history(
        &self,
        peer: PeerId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let mut page = self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE peer = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
            ),
            params![peer.to_string(), before.unwrap_or(i64::MAX), to_sql_int(limit)],
        )?;
        page.reverse();
        Ok(page)
    }

    /// Every peer we have exchanged messages with, with its unread count and the time of the
    /// newest message, most recent conversation first.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.peer, COALESCE(p.name, ''), COALESCE(p.grp, ''), COALESCE(p.host, ''),
                    COALESCE(p.addr, ''), SUM(m.outgoing = 0 AND m.state < ?1), MAX(m.sent_at_ms),
                    COALESCE(p.family, 'pigeon')
             FROM messages m LEFT JOIN peers p ON p.id = m.peer
             GROUP BY m.peer ORDER BY MAX(m.seq) DESC",
        )?;
        let rows = stmt.query_map([MessageState::Read.code()], |row| {
            Ok((known_peer(row, [0, 1, 2, 3, 4, 7])?, row.get::<_, i64>(5)?, row.get::<_, i64>(6)?))
        })?;
        rows.map(|row| {
            let (peer, unread, last) = row?;
            Ok(ConversationSummary {
                peer: peer?,
                unread: u64::try_from(unread).map_err(|_negative| StoreError::Corrupt("unread count"))?,
                last_at_ms: u64::try_from(last).unwrap_or(0),
            })
        })
        .collect()
    }

    /// The `limit` messages with `peer` that come right after `after`, oldest first (a page
    /// towards the present, for a conversation opened at a search result).
    pub fn history_after(
        &self,
        peer: PeerId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE peer = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ),
            params![peer.to_string(), after, to_sql_int(limit)],
        )
    }

    /// Messages whose text contains `query` (case-insensitive), newest first; only those
    /// with `peer` when one is given.
    ///
    /// Three characters or more are looked up in the trigram index, so the time depends on
    /// the matches, not on the size of the history. Shorter queries (a two-character Chinese
    /// word, say) cannot use a trigram index: they read the history from the newest message
    /// back and stop at `limit` matches.
    pub fn search(
        &self,
        query: &str,
        peer: Option<PeerId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let peer = peer.map(|peer| peer.to_string());
        if query.chars().count() >= TRIGRAM {
            let phrase = format!("\"{}\"", query.replace('"', "\"\""));
            return self.messages(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM (
                        SELECT m.* FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid
                        WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.peer = ?2)
                        ORDER BY messages_fts.rowid DESC LIMIT ?3
                    )"
                ),
                params![phrase, peer, to_sql_int(limit)],
            );
        }
        let pattern = format!("%{}%", escape_like(query));
        self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE text LIKE ?1 ESCAPE '\\' AND (?2 IS NULL OR peer = ?2)
                 ORDER BY seq DESC LIMIT ?3"
            ),
            params![pattern, peer, to_sql_int(limit)],
        )
    }

    fn messages(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<ChatMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, raw_message)?;
        rows.map(|row| row?.into_message()).collect()
    }
}

/// Converts counts and epoch milliseconds for SQLite's signed integers; they are far below
/// `i64::MAX`, and saturating is the honest answer if one is not.
fn to_sql_int<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// Parses an id column; a value this version did not write means the file is damaged.
fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_unparsable| StoreError::Corrupt(what))
}

fn escape_like(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for c in query.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A message about to be stored.
struct Draft<'a> {
    msg_id: MsgId,
    peer: PeerId,
    direction: Direction,
    text: &'a str,
    sent_at_ms: u64,
    unconfirmed_sender: bool,
    also_to: &'a [PeerId],
}

/// A row as SQLite returns it, before the ids are parsed.
struct RawMessage {
    seq: i64,
    msg_id: String,
    peer: String,
    outgoing: bool,
    text: String,
    sent_at_ms: i64,
    state: i64,
    unconfirmed_sender: bool,
    transfer: Option<String>,
    also_to: Option<String>,
}

fn raw_message(row: &Row<'_>) -> rusqlite::Result<RawMessage> {
    Ok(RawMessage {
        seq: row.get(0)?,
        msg_id: row.get(1)?,
        peer: row.get(2)?,
        outgoing: row.get(3)?,
        text: row.get(4)?,
        sent_at_ms: row.get(5)?,
        state: row.get(6)?,
        unconfirmed_sender: row.get(7)?,
        transfer: row.get(8)?,
        also_to: row.get(9)?,
    })
}

impl RawMessage {
    fn into_message(self) -> Result<ChatMessage, StoreError> {
        Ok(ChatMessage {
            seq: self.seq,
            msg_id: parse(&self.msg_id, "message id")?,
            peer: parse(&self.peer, "peer id")?,
            direction: if self.outgoing { Direction::Outgoing } else { Direction::Incoming },
            text: self.text,
            sent_at_ms: u64::try_from(self.sent_at_ms)
                .map_err(|_negative| StoreError::Corrupt("timestamp"))?,
            state: MessageState::from_code(self.state)?,
            unconfirmed_sender: self.unconfirmed_sender,
            transfer: self.transfer.map(|id| parse(&id, "transfer id")).transpose()?,
            also_to: match self.also_to {
                Some(json) => {
                    serde_json::from_str(&json).map_err(|_corrupt| StoreError::Corrupt("also_to"))?
                }
                None => Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests;
