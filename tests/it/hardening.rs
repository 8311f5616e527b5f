//! What anyone on the LAN can do without the user doing anything, and what it may cost:
//! forged announces (store nothing, keep the log small), forged and replayed goodbyes and
//! announces (change nothing), a known name under a new key (no alarm until proven), claims
//! that would make us send heartbeats anywhere (only proven peers hear from us directly),
//! offers by the thousand (bounded, summarised), and names built to fool a terminal.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use pigeon::protocol::announce::{Datagram, Goodbye, MAX_DATAGRAM, Presence};
use pigeon::protocol::transfer::{Entry, EntryKind};
use pigeon::secure::Identity;
use pigeon::store::{MessageState, Store, Trust};
use pigeon::{Command, Event};

use crate::raw::{RawPeer, rand_bytes};
use crate::util::{
    Daemon, Net, SHORT, data_resident_bytes, expect_state, forge, heavy, next_seq, presence_of, send,
};

/// Forged announces in the flood test, and the rate they go at (the kernel's socket buffer
/// would drop a faster burst before the node saw it).
const FORGED: u64 = 10_000;
const FORGED_PER_SECOND: u64 = 4_000;

/// What the history database and its log may hold after the flood (they held 0.2 and
/// 186 MB before only proven peers were stored).
const HISTORY_AFTER_FLOOD: u64 = 2 * 1024 * 1024;

/// Memory for data a node may hold while strangers offer it 20 offers of 49,999 files (its
/// resident total reached 132 MB with 30 before offers waiting for the user were bounded;
/// bounded, the data takes 27-30 MB of a debug build).
const DATA_AFTER_OFFERS: u64 = 48 * 1024 * 1024;

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

#[test]
fn ten_thousand_forged_announces_store_nothing_and_leave_the_history_small() {
    let _alone = heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let bo_dir = dirs.path().join("bo");
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &bo_dir));
    let socket = UdpSocket::bind((net.ip(9), 0)).unwrap();
    let started = Instant::now();
    for n in 0..FORGED {
        let forger = Identity::from_private(rand_bytes());
        let announce = Datagram::Announce(presence_of(&forger, &format!("forged{n}"), 9)).encode(&forger);
        socket.send_to(&announce, (net.ip(2), net.port)).unwrap();
        let due = started + Duration::from_micros(n * 1_000_000 / FORGED_PER_SECOND);
        // Pacing only (nothing to wait for): an early wake just sends the next one sooner.
        std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
    }
    let stats = bo.wait_for_stats("the flood taken in", |stats| {
        stats.datagrams + stats.dropped_datagrams >= FORGED * 9 / 10
    });
    eprintln!("after {FORGED} forged announces: {stats:?}");
    assert!(stats.peers_online <= 512, "listed unproven peers are capped: {}", stats.peers_online);
    assert!(stats.unproven_refused > 0, "the rest were refused and counted");
    bo.stop();
    let history = bo_dir.join(pigeon::node::HISTORY_FILE);
    let wal = bo_dir.join(format!("{}-wal", pigeon::node::HISTORY_FILE));
    let (db_bytes, wal_bytes) = (file_size(&history), file_size(&wal));
    eprintln!("history {db_bytes} B, log {wal_bytes} B");
    assert!(db_bytes + wal_bytes < HISTORY_AFTER_FLOOD, "history {db_bytes} B + log {wal_bytes} B");
    let stored = Store::open(&history).unwrap().known_peers().unwrap();
    assert!(stored.is_empty(), "no unproven key is stored: {} peers", stored.len());
}

#[test]
fn forged_and_replayed_goodbyes_and_an_unproven_key_under_a_known_name_change_nothing() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Address 3 is a target of both nodes and no node's: a listener there hears them.
    let bo_dir = dirs.path().join("bo");
    let mut ana = Daemon::start("ana", &net.flags(1, 3, &dirs.path().join("ana")));
    let tap = UdpSocket::bind((net.ip(3), net.port)).unwrap();
    tap.set_read_timeout(Some(SHORT)).unwrap();
    let bo = Daemon::start("bo", &net.flags(2, 3, &bo_dir));
    ana.expect_peers(&[bo.id]);
    // A message makes the connection whose handshake proves bo's key to ana.
    let msg = send(&mut ana, &[bo.id], "hello bo")[0];
    expect_state(&mut ana, msg, MessageState::Delivered);
    let bo_info = ana.peers().into_iter().find(|peer| peer.id == bo.id).unwrap();
    let bo_key = bo_info.key.unwrap();
    let to_ana = SocketAddr::from((net.ip(1), net.port));
    let mut heard = [0u8; MAX_DATAGRAM];
    let mut next_from_bo = |kind: fn(&Datagram) -> bool| loop {
        let (len, from) = tap.recv_from(&mut heard).unwrap();
        let bytes = heard.get(..len).unwrap().to_vec();
        if from.ip() == net.ip(2) && Datagram::decode(&bytes).is_ok_and(|d| kind(&d)) {
            return bytes;
        }
    };
    let captured_heartbeat = next_from_bo(|d| !matches!(d, Datagram::Goodbye(_)));

    // A goodbye in bo's name, signed by someone else: dropped as malformed.
    let mallory = Identity::from_private(rand_bytes());
    let forged = Datagram::Goodbye(Goodbye { id: bo.id, key: bo_key, seq: next_seq() });
    let malformed = ana.stats().malformed_datagrams;
    let udp = UdpSocket::bind((net.ip(7), 0)).unwrap();
    udp.send_to(&forge(&forged, bo_key, &mallory), to_ana).unwrap();
    ana.wait_for_stats("forged goodbye dropped", |stats| stats.malformed_datagrams > malformed);
    // A heartbeat of bo's, replayed: older than what ana has taken from bo since.
    let stale = ana.stats().stale_datagrams;
    udp.send_to(&captured_heartbeat, to_ana).unwrap();
    ana.wait_for_stats("replayed heartbeat dropped", |stats| stats.stale_datagrams > stale);
    assert!(ana.peers().iter().any(|peer| peer.id == bo.id), "bo is still listed");

    // Bo's real goodbye, captured and replayed after bo is back, drops nobody.
    bo.stop();
    let goodbye = next_from_bo(|d| matches!(d, Datagram::Goodbye(_)));
    ana.expect_peers(&[]);
    let bo = Daemon::start("bo", &net.flags(2, 3, &bo_dir));
    ana.expect_peers(&[bo.id]);
    let stale = ana.stats().stale_datagrams;
    udp.send_to(&goodbye, to_ana).unwrap();
    ana.wait_for_stats("replayed goodbye dropped", |stats| stats.stale_datagrams > stale);
    assert!(ana.peers().iter().any(|peer| peer.id == bo.id), "a replayed goodbye drops nobody");

    // A fresh key announcing bo's name and host: not listed, no alarm, bo's key untouched.
    let impostor = Identity::from_private(rand_bytes());
    let mut claim: Presence = presence_of(&impostor, &bo_info.name, net.port);
    claim.host.clone_from(&bo_info.host);
    let refused = ana.stats().unproven_refused;
    udp.send_to(&Datagram::Announce(claim).encode(&impostor), to_ana).unwrap();
    let stats = ana.wait_for_stats("impostor refused", |stats| stats.unproven_refused > refused);
    assert_eq!(stats.peers_online, 1, "only bo is listed");
    ana.send(&Command::SafetyNumber { peer: bo.id });
    let trust = ana.expect(SHORT, "bo's trust", |event| match event {
        Event::SafetyNumber { trust, .. } => Some(*trust),
        Event::KeyChanged { .. } => panic!("an unproven announce raised a key change"),
        _ => None,
    });
    assert_eq!(trust, Trust::Unverified, "bo's key is as it was");
}

#[test]
fn only_proven_peers_hear_our_heartbeats_directly_whatever_a_claim_says() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    // A stranger outside bo's targets claims a three-day heartbeat at the port it listens on.
    let stranger_socket = UdpSocket::bind((net.ip(9), 0)).unwrap();
    stranger_socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let stranger = Identity::from_private(rand_bytes());
    let mut claim = presence_of(&stranger, "stranger", stranger_socket.local_addr().unwrap().port());
    claim.heartbeat_secs = u16::MAX;
    stranger_socket.send_to(&Datagram::Announce(claim).encode(&stranger), (net.ip(2), net.port)).unwrap();
    bo.expect_peers(&[stranger.peer_id()]);
    // A peer that proved its key by connecting, also outside the targets, hears from bo.
    let proven_socket = UdpSocket::bind((net.ip(7), net.port)).unwrap();
    proven_socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let proven = RawPeer::connect(&net, (net.ip(2), net.port).into(), "proven");
    bo.expect_peers(&[stranger.peer_id(), proven.identity.peer_id()]);

    let mut buf = [0u8; MAX_DATAGRAM];
    let (mut to_proven, mut to_stranger) = (0, 0);
    let deadline = Instant::now() + SHORT;
    while to_proven < 2 && Instant::now() < deadline {
        if proven_socket.recv_from(&mut buf).is_ok() {
            to_proven += 1;
        }
        while let Ok((len, _)) = stranger_socket.recv_from(&mut buf) {
            // Its announce is answered once (a reply, budgeted); a heartbeat would be more.
            if matches!(Datagram::decode(buf.get(..len).unwrap()), Ok(Datagram::Heartbeat(_))) {
                to_stranger += 1;
            }
        }
    }
    assert_eq!(to_proven, 2, "the proven peer hears bo's heartbeats");
    assert_eq!(to_stranger, 0, "no heartbeat goes to a port that only a claim named");
}

fn big_offer(n: usize) -> Vec<Entry> {
    (0..n).map(|i| Entry { path: format!("f{i}.bin"), kind: EntryKind::File, size: 1 }).collect()
}

#[test]
fn offers_by_the_thousand_are_bounded_and_summarised_and_messages_keep_flowing() {
    let _alone = heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 3, &dirs.path().join("bo")));
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &dirs.path().join("cy")));
    cy.expect_peers(&[bo.id]);
    let mut offerer = RawPeer::connect(&net, (net.ip(2), net.port).into(), "offerer");
    let data_before = data_resident_bytes(bo.pid());
    let offering = std::thread::Builder::new()
        .name("it-offerer".into())
        .spawn(move || {
            for _ in 0..20 {
                offerer.offer(big_offer(49_999));
            }
            offerer
        })
        .unwrap();
    // Messages from a real peer meanwhile, one at a time (reported, not timed here: see
    // docs/BENCHMARKS.md).
    let mut latencies = Vec::new();
    for n in 0..20 {
        let sent_at = Instant::now();
        let sent = send(&mut cy, &[bo.id], &format!("through the offers {n}"));
        expect_state(&mut cy, sent[0], MessageState::Delivered);
        latencies.push(sent_at.elapsed());
    }
    let _offerer = offering.join().unwrap();
    latencies.sort();
    eprintln!("cy's messages during the offers: median {:?}, slowest {:?}", latencies[10], latencies[19]);
    let stats = bo.wait_for_stats("offers beyond the limits declined", |stats| stats.offers_refused >= 18);
    assert_eq!(stats.offers_refused, 18, "two offers of 49,999 fit in 100,000 waiting entries");
    let data = data_resident_bytes(bo.pid());
    eprintln!(
        "data resident before the offers: {} MB, after 20: {} MB",
        data_before / 1_000_000,
        data / 1_000_000
    );
    assert!(data < DATA_AFTER_OFFERS, "{data} bytes of data resident");

    bo.send(&Command::ListTransfers);
    let transfers = bo.expect(SHORT, "transfers", |event| match event {
        Event::Transfers { transfers } => Some(transfers.clone()),
        _ => None,
    });
    assert_eq!(transfers.len(), 2);
    let line = serde_json::to_string(&Event::Transfers { transfers: transfers.clone() }).unwrap();
    assert!(line.len() < 64 * 1024, "list_transfers is a summary: {} bytes", line.len());
    assert!(transfers.iter().all(|t| t.entries.len() == 50 && t.entries_total == 49_999));
    let id = transfers[0].transfer_id;
    bo.send(&Command::TransferEntries { transfer_id: id, offset: 49_000, limit: 5000 });
    let (total, page) = bo.expect(SHORT, "a page of entries", |event| match event {
        Event::TransferEntries { transfer_id, total, entries, .. } if *transfer_id == id => {
            Some((*total, entries.clone()))
        }
        _ => None,
    });
    assert_eq!((total, page.len()), (49_999, 999));
    assert_eq!(page[0].path, "f49000.bin");
}

#[test]
fn names_built_to_fool_a_terminal_are_shown_and_placed_clean() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let bo_dir = dirs.path().join("bo");
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &bo_dir));
    // Into a download folder that does not exist yet, a nested file without its folder.
    let downloads = dirs.path().join("not yet").join("Downloads");
    bo.send(&Command::SetReceiving { download_dir: Some(downloads.clone()), auto_accept: None });
    let mut peer = RawPeer::connect(&net, (net.ip(2), net.port).into(), "tricky");
    let entries = vec![
        Entry { path: "\u{1b}[2Jclear\u{0}\u{9b}.txt".into(), kind: EntryKind::File, size: 3 },
        Entry { path: "bidi-\u{202e}txt.exe".into(), kind: EntryKind::File, size: 3 },
        Entry { path: "sub/zero\u{200b}width.txt".into(), kind: EntryKind::File, size: 3 },
    ];
    let id = peer.offer(entries.clone());
    let info = bo.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.transfer_id == id => Some(transfer.clone()),
        _ => None,
    });
    let shown: Vec<&str> = info.entries.iter().map(|entry| entry.path.as_str()).collect();
    assert_eq!(shown, ["[2Jclear.txt", "bidi-txt.exe", "sub/zerowidth.txt"]);
    assert_eq!(info.summary, "3 files, 9 B: [2Jclear.txt, bidi-txt.exe, sub");
    assert!(!serde_json::to_string(&info).unwrap().contains(['\u{1b}', '\u{202e}', '\u{200b}']));
    bo.send(&Command::AcceptTransfer { transfer_id: id, always: false });
    peer.serve(&entries, b"abc");
    bo.expect(SHORT, "completed", |event| match event {
        Event::TransferStateChanged {
            transfer_id, state: pigeon::store::TransferState::Completed, ..
        } if *transfer_id == id => Some(()),
        _ => None,
    });
    for placed in ["[2Jclear.txt", "bidi-txt.exe", "sub/zerowidth.txt"] {
        assert_eq!(std::fs::read(downloads.join(placed)).unwrap(), b"abc", "{placed}");
    }
}

#[test]
fn a_fetch_for_nothing_we_offered_is_declined_with_a_reason() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let _bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let stranger = Identity::from_private(rand_bytes());
    let stream = std::net::TcpStream::connect((net.ip(2), net.port)).unwrap();
    let mut data = crate::raw::RawConn::open(stream, &stranger, pigeon::secure::Role::Initiator);
    let transfer_id = pigeon::protocol::ids::TransferId::from_bytes(rand_bytes());
    data.send(&pigeon::protocol::frame::Frame::Fetch(pigeon::protocol::transfer::Fetch {
        transfer_id,
        index: 0,
        offset: 0,
    }));
    let frames: Vec<_> = std::iter::from_fn(|| data.next()).collect();
    let declined = frames.iter().find_map(|frame| match frame {
        pigeon::protocol::frame::Frame::Decline(end) => Some(end.clone()),
        _ => None,
    });
    let declined = declined.unwrap_or_else(|| panic!("no decline before the close: {frames:?}"));
    assert_eq!(declined.transfer_id, transfer_id);
    assert!(declined.failed && declined.reason.contains("not an offer to you"), "{declined:?}");
}

#[test]
fn a_malformed_offer_is_declined_with_its_reason_and_the_connection_stays() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let mut peer = RawPeer::connect(&net, (net.ip(2), net.port).into(), "sloppy");
    let id = pigeon::protocol::ids::TransferId::from_bytes(rand_bytes());
    let payload = format!(r#"{{"transfer_id":"{id}","entries":[{{"path":"a","kind":"symlink","size":1}}]}}"#);
    let header = pigeon::protocol::frame::encode_header(pigeon::protocol::frame::Header {
        kind: pigeon::protocol::frame::KIND_OFFER,
        len: payload.len(),
    });
    peer.chat.write(&[header.as_slice(), payload.as_bytes()].concat());
    let declined = std::iter::from_fn(|| peer.chat.next())
        .find_map(|frame| match frame {
            pigeon::protocol::frame::Frame::Decline(end) if end.transfer_id == id => Some(end),
            _ => None,
        })
        .expect("a decline, not a closed connection");
    assert!(declined.failed && declined.reason.contains("malformed offer"), "{declined:?}");
    // The same connection still carries a good offer.
    let good = peer.offer(vec![Entry { path: "b.txt".into(), kind: EntryKind::File, size: 1 }]);
    bo.expect(SHORT, "the good offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.transfer_id == good => Some(()),
        _ => None,
    });
    assert_eq!(bo.stats().offers_refused, 1);
}
