//! The history database keeps each message once, moves states only forward, and serves the
//! outbox, pages and search that the node and the window rely on.

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("history.sqlite3")).unwrap();
    (dir, store)
}

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 16])
}

fn msg(n: u8) -> MsgId {
    MsgId::from_bytes([n; 16])
}

#[test]
fn incoming_duplicates_are_kept_once() {
    let (_dir, store) = store();
    assert!(store.insert_incoming(msg(1), peer(1), "hi", 5, false).unwrap().is_some());
    assert!(store.insert_incoming(msg(1), peer(1), "hi", 5, false).unwrap().is_none());
    assert_eq!(store.history(peer(1), None, 10).unwrap().len(), 1);
}

#[test]
fn outgoing_states_only_move_forward_and_only_for_the_right_peer() {
    let (_dir, store) = store();
    store.insert_outgoing(msg(1), peer(2), "yo", 1, &[]).unwrap();
    assert!(!store.advance_outgoing(peer(3), msg(1), MessageState::Delivered).unwrap());
    assert!(store.advance_outgoing(peer(2), msg(1), MessageState::Delivered).unwrap());
    assert!(!store.advance_outgoing(peer(2), msg(1), MessageState::Sent).unwrap());
    assert!(!store.advance_outgoing(peer(2), msg(1), MessageState::Delivered).unwrap());
    assert!(store.advance_outgoing(peer(2), msg(1), MessageState::Read).unwrap());
    assert_eq!(store.history(peer(2), None, 1).unwrap()[0].state, MessageState::Read);
}

#[test]
fn outbox_lists_undelivered_oldest_first() {
    let (_dir, store) = store();
    store.insert_outgoing(msg(1), peer(2), "one", 1, &[]).unwrap();
    store.insert_outgoing(msg(2), peer(2), "two", 2, &[]).unwrap();
    store.insert_outgoing(msg(3), peer(4), "three", 3, &[]).unwrap();
    store.advance_outgoing(peer(2), msg(1), MessageState::Sent).unwrap();
    let texts: Vec<_> = store.undelivered(peer(2)).unwrap().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["one", "two"]);
    store.advance_outgoing(peer(2), msg(1), MessageState::Delivered).unwrap();
    store.advance_outgoing(peer(2), msg(2), MessageState::Delivered).unwrap();
    assert_eq!(store.peers_with_undelivered().unwrap(), [peer(4)]);
}

#[test]
fn history_pages_backwards() {
    let (_dir, store) = store();
    for n in 0..25 {
        store.insert_incoming(msg(n), peer(1), &format!("m{n}"), u64::from(n), false).unwrap();
    }
    let newest = store.history(peer(1), None, 10).unwrap();
    assert_eq!(newest.first().unwrap().text, "m15");
    assert_eq!(newest.last().unwrap().text, "m24");
    let older = store.history(peer(1), Some(newest[0].seq), 10).unwrap();
    assert_eq!(older.first().unwrap().text, "m5");
    let oldest = store.history(peer(1), Some(older[0].seq), 10).unwrap();
    assert_eq!(oldest.len(), 5);
}

#[test]
fn search_finds_substrings_and_treats_wildcards_literally() {
    let (_dir, store) = store();
    store.insert_incoming(msg(1), peer(1), "Lunch at 12?", 1, false).unwrap();
    store.insert_outgoing(msg(2), peer(2), "午饭 100% yes", 2, &[]).unwrap();
    store.insert_incoming(msg(3), peer(1), "nothing here", 3, false).unwrap();
    store.insert_incoming(msg(4), peer(2), "明天下午三点开会 LUNCH", 4, false).unwrap();
    let found = |query: &str, with: Option<PeerId>| -> Vec<MsgId> {
        store.search(query, with, 10).unwrap().iter().map(|m| m.msg_id).collect()
    };
    // Through the trigram index (three characters or more), newest first, any case.
    assert_eq!(found("lunch", None), [msg(4), msg(1)]);
    assert_eq!(found("下午三点", None), [msg(4)]);
    assert_eq!(found("100%", None), [msg(2)]);
    assert_eq!(found("lunch", Some(peer(1))), [msg(1)]);
    assert_eq!(found("\"yes", None), Vec::<MsgId>::new());
    // Shorter ones by reading the history.
    assert_eq!(found("午饭", None), [msg(2)]);
    assert_eq!(found("%", None), [msg(2)]);
    assert_eq!(found("_", None), Vec::<MsgId>::new());
    assert_eq!(found("at", Some(peer(2))), Vec::<MsgId>::new());
    assert_eq!(found("", None), Vec::<MsgId>::new());
}

#[test]
fn messages_stored_before_the_search_index_are_found_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pigeon.db");
    {
        let store = Store::open(&path).unwrap();
        store.insert_incoming(msg(1), peer(1), "会议纪要已经发出", 1, false).unwrap();
    }
    // As a file from before migration 7: no index, no triggers (and none of what came after).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER messages_fts_insert; DROP TRIGGER messages_fts_delete;
         DROP TRIGGER messages_fts_update; DROP TABLE messages_fts;
         ALTER TABLE messages DROP COLUMN transfer; ALTER TABLE transfers DROP COLUMN row;
         ALTER TABLE transfers DROP COLUMN saved_in; ALTER TABLE messages DROP COLUMN also_to;
         PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.search("纪要已", None, 10).unwrap().len(), 1);
}

#[test]
fn read_receipts_are_reported_once() {
    let (_dir, mut store) = store();
    store.insert_incoming(msg(1), peer(1), "a", 1, false).unwrap();
    store.insert_incoming(msg(2), peer(1), "b", 2, false).unwrap();
    assert!(store.unreported_reads(peer(1), 10).unwrap().is_empty());
    store.mark_read(peer(1)).unwrap();
    let ids = store.unreported_reads(peer(1), 10).unwrap();
    assert_eq!(ids, [msg(1), msg(2)]);
    store.mark_reads_reported(peer(1), &ids).unwrap();
    assert!(store.unreported_reads(peer(1), 10).unwrap().is_empty());
}

#[test]
fn known_peers_are_remembered_and_refreshed() {
    let (_dir, store) = store();
    let mut bo = KnownPeer {
        id: peer(1),
        name: "Bo".into(),
        group: "".into(),
        host: "h".into(),
        addr: "10.0.0.2:2426".into(),
        family: Default::default(),
    };
    store.remember_peer(&bo, 1).unwrap();
    bo.name = "Bo W.".into();
    store.remember_peer(&bo, 2).unwrap();
    assert_eq!(store.known_peers().unwrap(), [bo]);
}

#[test]
fn refuses_a_database_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite3");
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { found: 99, .. })));
}

#[test]
fn conversations_list_unread_counts_newest_first_and_names_when_known() {
    let (_dir, store) = store();
    let known = KnownPeer {
        id: peer(1),
        name: "Ana".into(),
        group: "Ops".into(),
        host: "ana-pc".into(),
        addr: "10.0.0.1".into(),
        family: Default::default(),
    };
    store.remember_peer(&known, 1).unwrap();
    store.insert_incoming(msg(1), peer(1), "one", 10, false).unwrap();
    store.insert_incoming(msg(2), peer(1), "two", 20, false).unwrap();
    store.insert_outgoing(msg(3), peer(2), "to a stranger", 30, &[]).unwrap();
    let list = store.conversations().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].peer.id, list[0].unread, list[0].last_at_ms), (peer(2), 0, 30));
    assert_eq!(list[0].peer.name, "");
    assert_eq!((&list[1].peer, list[1].unread, list[1].last_at_ms), (&known, 2, 20));
    store.mark_read(peer(1)).unwrap();
    assert_eq!(store.conversations().unwrap()[1].unread, 0);
}

#[test]
fn the_log_is_cut_back_after_a_checkpoint() {
    let (dir, store) = store();
    let path = dir.path().join("history.sqlite3");
    let wal = dir.path().join("history.sqlite3-wal");
    let checkpointer = Checkpointer::open(&path).unwrap();
    let text = "x".repeat(1000);
    for n in 0..2000u32 {
        let id = MsgId::from_bytes(u128::from(n).to_le_bytes());
        store.insert_outgoing(id, peer(1), &text, u64::from(n), &[]).unwrap();
        store.advance_outgoing(peer(1), id, MessageState::Delivered).unwrap();
    }
    let busiest = std::fs::metadata(&wal).unwrap().len();
    assert!(busiest > 2 * JOURNAL_SIZE_LIMIT as u64, "the test writes enough: {busiest} B");
    checkpointer.checkpoint().unwrap();
    // The next write starts the log over and cuts it back.
    store.insert_outgoing(msg(200), peer(1), "after", 1, &[]).unwrap();
    let after = std::fs::metadata(&wal).unwrap().len();
    assert!(after <= JOURNAL_SIZE_LIMIT as u64, "log of {after} B after a checkpoint (was {busiest} B)");
}
