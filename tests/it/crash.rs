//! Crashes in the middle of things, on private loopback addresses: SIGKILL of the receiver
//! during a 500 MB transfer and a burst of messages, and of the sender during a burst. After a
//! restart the transfer resumes and verifies, every message is in history exactly once and in
//! order, and the history database passes SQLite's integrity check.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use pigeon::node::HISTORY_FILE;
use pigeon::protocol::announce::Datagram;
use pigeon::protocol::ids::PeerId;
use pigeon::secure::Identity;
use pigeon::store::{Direction, TransferState};
use pigeon::{Command, Event};

use crate::util::{
    Daemon, Net, SHORT, expect_batch_delivered, heavy, history_page, incoming_texts, presence_of, send_batch,
};

const LONG: Duration = Duration::from_secs(120);
const BURST: usize = 500;

fn text(n: usize) -> String {
    format!("burst {n:04}")
}

/// `PRAGMA integrity_check` on a crashed node's history: must be "ok".
pub fn assert_history_intact(data_dir: &Path) {
    let db = rusqlite::Connection::open(data_dir.join(HISTORY_FILE)).unwrap();
    let verdict: String = db.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(verdict, "ok", "{} after the crash", data_dir.display());
}

/// Polls `receiver`'s history until it holds `count` messages from `sender`, then checks they
/// are the burst's first `count`, once each, in order.
fn expect_burst_in_history(receiver: &mut Daemon, sender: PeerId, count: usize) {
    let deadline = Instant::now() + LONG;
    let mut got = incoming_texts(receiver, sender);
    while got.len() < count && Instant::now() < deadline {
        receiver.drain_for(Duration::from_millis(200));
        got = incoming_texts(receiver, sender);
    }
    let want: Vec<String> = (0..count).map(text).collect();
    assert_eq!(got, want, "{}'s history", receiver.name);
}

/// BLAKE3 of a file, read in pieces.
fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path).unwrap()).unwrap();
    hasher.finalize()
}

#[test]
fn a_receiver_killed_mid_transfer_and_mid_burst_resumes_and_loses_or_doubles_nothing() {
    let _alone = heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let bo_dir = dirs.path().join("bo");
    let downloads = dirs.path().join("downloads");
    let mut bo_flags = net.flags(2, 2, &bo_dir);
    bo_flags.extend(["--auto-accept".into(), "--download-dir".into(), downloads.display().to_string()]);
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &bo_flags);
    ana.expect_peers(&[bo.id]);
    let big = dirs.path().join("big.bin");
    let file = std::fs::File::create(&big).unwrap();
    // Sparse but not all zeros: a pattern at the start, a hole, and a tail.
    std::io::Write::write_all(&mut &file, &(0..1u32 << 20).map(|i| (i % 253) as u8).collect::<Vec<_>>())
        .unwrap();
    file.set_len(500_000_000).unwrap();
    drop(file);

    ana.send(&Command::SendFiles { to: vec![bo.id], paths: vec![big.clone()], tag: None });
    send_batch(&mut ana, bo.id, (0..BURST).map(text));
    let had = bo.expect(LONG, "first data", |event| match event {
        Event::TransferProgress { progress, .. } if progress.bytes_done > 0 => Some(progress.bytes_done),
        _ => None,
    });
    bo.kill();
    assert_history_intact(&bo_dir);

    let mut bo = Daemon::start("bo", &bo_flags);
    let resumed_at = bo.expect(LONG, "resumed progress", |event| match event {
        Event::TransferProgress { progress, .. } => Some(progress.bytes_done),
        _ => None,
    });
    assert!(resumed_at >= had, "resumed at {resumed_at}, had {had} before the crash");
    let (state, reason) = bo.expect(LONG, "transfer end", |event| match event {
        Event::TransferStateChanged { state, reason, .. } if !state.is_live() => {
            Some((*state, reason.clone()))
        }
        _ => None,
    });
    assert_eq!(state, TransferState::Completed, "{reason}");
    assert_eq!(hash_file(&downloads.join("big.bin")), hash_file(&big), "the resumed file differs");
    // Every message of the burst is acknowledged in the end and stored once, in order.
    expect_batch_delivered(&mut ana, BURST, LONG);
    expect_burst_in_history(&mut bo, ana.id, BURST);
}

#[test]
fn a_sender_killed_mid_burst_sends_the_rest_after_restart_and_nothing_twice() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_dir = dirs.path().join("ana");
    let ana_flags = net.flags(1, 2, &ana_dir);
    let mut ana = Daemon::start("ana", &ana_flags);
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);

    send_batch(&mut ana, bo.id, (0..BURST).map(text));
    // Killed once the first messages arrived, while the rest are being stored and sent.
    bo.expect(LONG, "first message", |event| matches!(event, Event::MessageReceived { .. }).then_some(()));
    ana.kill();
    assert_history_intact(&ana_dir);

    // What the crashed sender had stored is what it owes; commands it never read are gone.
    let mut ana = Daemon::start("ana", &ana_flags);
    let (page, _) = history_page(&mut ana, bo.id, None, 500);
    let stored = page.iter().filter(|m| m.direction == Direction::Outgoing).count();
    assert!(stored > 0, "nothing was stored before the crash");
    expect_burst_in_history(&mut bo, ana.id, stored);
}

/// Waits up to `within` for the next connection on `listener` (non-blocking), polling.
fn accept_within(listener: &TcpListener, within: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok((stream, _)) = listener.accept() {
            return Some(stream);
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_peer_that_dies_while_we_connect_is_dialled_again() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, dirs.path()));
    // "Bo" announces itself and resets every connection the moment it is accepted, as a
    // process being killed does.
    let listener = TcpListener::bind((net.ip(2), net.port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let bo = Identity::from_private([3; 32]);
    let presence = presence_of(&bo, "bo", net.port);
    let udp = UdpSocket::bind((net.ip(2), net.port)).unwrap();
    udp.send_to(&Datagram::Announce(presence).encode(&bo), (net.ip(1), net.port)).unwrap();
    ana.expect_peers(&[bo.peer_id()]);
    send_batch(&mut ana, bo.peer_id(), ["are you there?".to_owned()]);

    for attempt in 1..=3 {
        let stream =
            accept_within(&listener, SHORT).unwrap_or_else(|| panic!("attempt {attempt} never came"));
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
        drop(stream);
    }
}
