//! Schema migrations, applied in order and recorded in SQLite's `user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`. Append only: a released
/// migration is never edited.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE peers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        grp TEXT NOT NULL,
        host TEXT NOT NULL,
        addr TEXT NOT NULL,
        last_seen_ms INTEGER NOT NULL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        msg_id TEXT NOT NULL,
        peer TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        text TEXT NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        state INTEGER NOT NULL,
        read_reported INTEGER NOT NULL DEFAULT 0,
        UNIQUE (peer, outgoing, msg_id)
    );
    CREATE INDEX messages_by_peer ON messages (peer, seq);
    CREATE INDEX messages_pending ON messages (outgoing, state);
",
    "
    CREATE TABLE transfers (
        id TEXT PRIMARY KEY,
        peer TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        root_names TEXT NOT NULL DEFAULT '{}',
        state INTEGER NOT NULL,
        files_done INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL
    );
    -- The file lists live apart: a transfer of 10,000 files updates its small row once per
    -- file, and SQLite rewrites a whole row on update.
    CREATE TABLE transfer_lists (
        id TEXT PRIMARY KEY REFERENCES transfers (id),
        entries TEXT NOT NULL,
        sources TEXT NOT NULL
    );
    CREATE INDEX transfers_by_state ON transfers (state);
    CREATE TABLE trusted_senders (peer TEXT PRIMARY KEY);
",
    "
    -- Peer ids are now derived from public keys. Rows from before keep a NULL key and never
    -- take part in key-change detection.
    ALTER TABLE peers ADD COLUMN pubkey TEXT;
    ALTER TABLE peers ADD COLUMN trust INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE peers ADD COLUMN replaces TEXT;
    CREATE INDEX peers_by_label ON peers (name, host);
    ALTER TABLE messages ADD COLUMN unconfirmed_sender INTEGER NOT NULL DEFAULT 0;
",
    "
    -- Which protocol each peer speaks. Rows without a key are IP Messenger peers (or
    -- Pigeons from before keys, whose ids no longer exist).
    ALTER TABLE peers ADD COLUMN family TEXT NOT NULL DEFAULT 'pigeon';
    UPDATE peers SET family = 'ipmsg' WHERE pubkey IS NULL;
",
    "
    -- Group rooms are the signed events of their members, kept as their authors wrote them
    -- (relays copy the exact bytes); what they add up to is computed, never stored.
    CREATE TABLE room_events (
        room TEXT NOT NULL,
        author TEXT NOT NULL,
        seq INTEGER NOT NULL,
        json TEXT NOT NULL,
        sig TEXT NOT NULL,
        PRIMARY KEY (room, author, seq)
    );
",
    "
    -- Files posted to a room: which post an offer belongs to (JSON, NULL for direct ones).
    ALTER TABLE transfers ADD COLUMN room TEXT;
",
    "
    -- Search: every message's text in a trigram index, so a substring of three characters or
    -- more (Chinese included) is found without reading the whole history. The index holds
    -- no copy of the text (it reads it from `messages`); triggers keep it in step.
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content = 'messages', content_rowid = 'seq', tokenize = 'trigram'
    );
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
    END;
",
    "
    -- Files in the conversation: each direct transfer has a row in its conversation's
    -- history (`transfer` names it; its text lists the file names, so search finds them),
    -- and the transfer knows that row. The folder an accepted offer is saved in is kept,
    -- so a later change of the download folder neither splits it nor loses where it went.
    ALTER TABLE messages ADD COLUMN transfer TEXT;
    ALTER TABLE transfers ADD COLUMN row INTEGER;
    ALTER TABLE transfers ADD COLUMN saved_in TEXT;
    -- Who else a message went to (JSON list of peer ids; NULL when nobody).
    ALTER TABLE messages ADD COLUMN also_to TEXT;
",
];

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    let tx = conn.transaction()?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(version + 1).unwrap_or(i64::MAX))?;
    }
    tx.commit()?;
    Ok(())
}
