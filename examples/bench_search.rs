//! Search over a history of 1,000,000 messages (100 conversations, English and Chinese), as
//! the node answers `search`: time to the first page of results (50, newest first) for a
//! rare phrase, a common word, and two-character queries the trigram index cannot serve. The
//! anchor, in the same run, is the scan the store did before it had an index (`LIKE` over
//! every message). Run through `scripts/bench-search.sh`.

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot set up should stop loudly")]

use std::time::{Duration, Instant};

use pigeon::store::Store;

const MESSAGES: u32 = 1_000_000;
const RUNS: usize = 15;
const PAGE: usize = 50;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time(runs: usize, mut search: impl FnMut() -> usize) -> (Duration, usize) {
    let mut found = 0;
    let times = (0..runs)
        .map(|_| {
            let start = Instant::now();
            found = search();
            start.elapsed()
        })
        .collect();
    (median(times), found)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    drop(Store::open(&path).unwrap());
    let start = Instant::now();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // One message in 1,000,000 holds the rare phrase; a quarter the common words.
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO messages (msg_id, peer, outgoing, text, sent_at_ms, state)
         SELECT printf('%032x', i), printf('%032x', i % 100), i % 2,
                CASE WHEN i = 1000 THEN '鸽子项目的周报请在周五前发给我'
                     WHEN i % 4 = 0 THEN '第 ' || i || ' 条：我们下午三点在会议室见面，讨论新版本的发布计划。'
                     WHEN i % 4 = 1 THEN 'Message ' || i || ' with a link https://example.org/item/' || i
                     WHEN i % 4 = 2 THEN 'Lunch at twelve? The usual place, message ' || i
                     ELSE 'Status ' || i || char(10) || 'build green, tests pass' END,
                1700000000000 + i * 1000, 3 FROM n",
        (MESSAGES,),
    )
    .unwrap();
    drop(conn);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "history: {MESSAGES} messages, {:.0} MB with the index, written in {:.1} s",
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    let store = Store::open(&path).unwrap();
    let scan = rusqlite::Connection::open(&path).unwrap();
    let (anchor, anchor_found) = time(3, || {
        // What `search` did before the index: every message read.
        let mut stmt = scan
            .prepare_cached("SELECT seq FROM messages WHERE text LIKE ?1 ORDER BY seq DESC LIMIT ?2")
            .unwrap();
        stmt.query_map(("%周报请在%", PAGE as i64), |row| row.get::<_, i64>(0)).unwrap().count()
    });
    println!("anchor, scan for a rare phrase: {:.1} ms ({anchor_found} found)", anchor.as_secs_f64() * 1e3);
    let cases = [
        ("rare phrase, 4 characters (index)", "周报请在", None),
        ("common word, 3 characters (index)", "会议室", None),
        ("English, any case (index)", "LUNCH AT", None),
        ("rare, in one conversation (index)", "周报请在", Some(0u32)),
        ("common, 2 characters (scan, stops at 50)", "会议", None),
        ("rare, 2 characters (scan, whole history)", "鸽子", None),
    ];
    for (what, query, peer) in cases {
        let peer = peer.map(|n| format!("{n:032x}").parse().unwrap());
        let (took, found) = time(RUNS, || store.search(query, peer, PAGE).unwrap().len());
        println!(
            "{what:<44} {:>8.2} ms  {found:>3} found  {:>7.1}x faster than the anchor",
            took.as_secs_f64() * 1e3,
            anchor.as_secs_f64() / took.as_secs_f64().max(1e-9)
        );
    }
}
