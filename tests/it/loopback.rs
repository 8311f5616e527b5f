//! Real `pigeon daemon` processes on private loopback addresses: discovery with explicit
//! targets, end-to-end acknowledged delivery, group sends, goodbye, the outbox surviving a
//! restart, read receipts, history and hostile input. These are the promises a user sees.

use std::net::UdpSocket;
use std::time::Duration;

use pigeon::node::LeaveReason;
use pigeon::protocol::MAX_TEXT_BYTES;
use pigeon::protocol::ids::{MsgId, PeerId};
use pigeon::store::{ChatMessage, Direction, MessageState};
use pigeon::{Command, Event};

use crate::util::{Daemon, Net, SHORT, expect_state, history_page, send};

/// Starts `count` daemons that target each other.
fn cluster(net: &Net, names: &[&str], dirs: &tempfile::TempDir) -> Vec<Daemon> {
    let count = u8::try_from(names.len()).unwrap();
    names
        .iter()
        .zip(1..)
        .map(|(name, i)| Daemon::start(name, &net.flags(i, count, &dirs.path().join(name))))
        .collect()
}

fn texts(messages: &[ChatMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

fn expect_received(daemon: &mut Daemon, text: &str) -> MsgId {
    daemon.expect(SHORT, &format!("message {text:?}"), |event| match event {
        Event::MessageReceived { message } if message.text == text => Some(message.msg_id),
        _ => None,
    })
}

#[test]
fn three_nodes_see_each_other_and_messages_are_acknowledged() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&net, &["ana", "bo", "cy"], &dirs);
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.id).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != ids[i]).collect();
        node.expect_peers(&others);
    }
    let bo = nodes[0].peers().into_iter().find(|p| p.id == ids[1]).unwrap();
    assert_eq!(
        (bo.name.as_str(), bo.addr.as_str(), bo.port),
        ("bo", net.ip(2).to_string().as_str(), net.port)
    );

    // A -> B, delivered end to end.
    let [msg] = send(&mut nodes[0], &[ids[1]], "你好, Bo")[..] else { unreachable!() };
    assert_eq!(expect_received(&mut nodes[1], "你好, Bo"), msg);
    expect_state(&mut nodes[0], msg, MessageState::Delivered);

    // A -> B and C at once: one message each, both delivered.
    let group = send(&mut nodes[0], &[ids[1], ids[2]], "team lunch?");
    expect_received(&mut nodes[1], "team lunch?");
    expect_received(&mut nodes[2], "team lunch?");
    for msg in group {
        expect_state(&mut nodes[0], msg, MessageState::Delivered);
    }

    // B reads the conversation: A sees "read".
    nodes[1].send(&Command::MarkRead { peer: ids[0] });
    expect_state(&mut nodes[0], msg, MessageState::Read);

    // B quits: A and C see it leave at once (goodbye, not timeout).
    let bo = nodes.remove(1);
    assert!(bo.stop().success());
    for node in &mut nodes {
        let reason = node.expect(SHORT, "bo leaving", |event| match event {
            Event::PeerLeft { id, reason } if *id == ids[1] => Some(*reason),
            _ => None,
        });
        assert_eq!(reason, LeaveReason::Goodbye);
    }
}

#[test]
fn outbox_survives_restart_and_delivers_exactly_once() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_flags = net.flags(1, 2, &dirs.path().join("ana"));
    let bo_flags = net.flags(2, 2, &dirs.path().join("bo"));
    let mut ana = Daemon::start("ana", &ana_flags);
    let bo = Daemon::start("bo", &bo_flags);
    ana.expect_peers(&[bo.id]);
    let bo_id = bo.id;
    assert!(bo.stop().success());
    ana.expect_peers(&[]);

    // Written while Bo is away; Ana restarts too before Bo is back.
    let queued = send(&mut ana, &[bo_id], "while you were out");
    send(&mut ana, &[bo_id], "and a second one");
    assert!(ana.stop().success());
    let mut ana = Daemon::start("ana", &ana_flags);
    let mut bo = Daemon::start("bo", &bo_flags);
    assert_eq!(bo.id, bo_id, "identity kept across restarts");

    assert_eq!(expect_received(&mut bo, "while you were out"), queued[0]);
    expect_received(&mut bo, "and a second one");
    expect_state(&mut ana, queued[0], MessageState::Delivered);
    let late = bo.drain_for(Duration::from_millis(500));
    assert!(!late.iter().any(|e| matches!(e, Event::MessageReceived { .. })), "shown twice: {late:?}");

    // History holds each message once, in order.
    let (messages, has_more) = history_page(&mut bo, ana.id, None, 10);
    assert!(!has_more);
    assert_eq!(texts(&messages), ["while you were out", "and a second one"]);
    assert!(messages.iter().all(|m| m.direction == Direction::Incoming));
}

/// Regression: a peer's repeated start-up announces were taken for a restart, and the
/// connection carrying our messages was dropped and rebuilt (a 750 ms stall).
#[test]
fn start_up_announces_do_not_interrupt_a_conversation() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let bo_started = std::time::Instant::now();
    ana.expect_peers(&[bo.id]);
    // Keep talking until Bo's last start-up announce (at 1.25 s) has certainly arrived.
    for n in 0..5000 {
        if bo_started.elapsed() > Duration::from_millis(2000) {
            break;
        }
        let ids = send(&mut ana, &[bo.id], &format!("ping {n}"));
        expect_state(&mut ana, ids[0], MessageState::Delivered);
    }
    assert!(bo_started.elapsed() > Duration::from_millis(2000), "conversation too slow to cover start-up");
    assert_eq!(ana.stats().connections_opened, 1, "the connection to Bo was rebuilt");
}

#[test]
fn history_pages_and_search() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&net, &["ana", "bo"], &dirs);
    let bo_id = nodes[1].id;
    nodes[0].expect_peers(&[bo_id]);
    for text in ["first", "note 0", "note 1", "note 2", "note 3"] {
        let ids = send(&mut nodes[0], &[bo_id], text);
        expect_state(&mut nodes[0], ids[0], MessageState::Delivered);
    }
    let ana = &mut nodes[0];
    let (page, more) = history_page(ana, bo_id, None, 3);
    assert!(more);
    assert_eq!(texts(&page), ["note 1", "note 2", "note 3"]);
    let (older, more) = history_page(ana, bo_id, Some(page[0].seq), 3);
    assert!(!more);
    assert_eq!(texts(&older), ["first", "note 0"]);
    ana.send(&Command::Search { query: "NOTE".into(), peer: None, limit: 10 });
    let found = ana.expect(SHORT, "search results", |event| match event {
        Event::SearchResults { messages, .. } => Some(messages.len()),
        _ => None,
    });
    assert_eq!(found, 4);
}

#[test]
fn bad_input_gets_errors_and_the_node_keeps_working() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&net, &["ana", "bo"], &dirs);
    let bo_id = nodes[1].id;
    let ana = &mut nodes[0];
    ana.expect_peers(&[bo_id]);

    ana.send_line("this is not json");
    ana.expect(SHORT, "error for a malformed line", |e| {
        matches!(e, Event::CommandFailed { .. }).then_some(())
    });
    ana.send(&Command::SendMessage { to: vec![bo_id], text: "x".repeat(MAX_TEXT_BYTES + 1), tag: None });
    let error = ana.expect(SHORT, "error for a long text", |event| match event {
        Event::CommandFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(error.contains("65536"), "{error}");
    ana.send(&Command::SendMessage { to: vec![PeerId::from_bytes([9; 16])], text: "hi".into(), tag: None });
    let error = ana.expect(SHORT, "error for an unknown peer", |event| match event {
        Event::CommandFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(error.contains("unknown peer"), "{error}");

    // Junk on the discovery port is dropped and counted.
    let junk = UdpSocket::bind((net.ip(9), 0)).unwrap();
    for payload in [&b"PIGN\x01\x01{broken"[..], b"\x00", b"PIGN\x07\x01{}", &[0xff; 1500]] {
        junk.send_to(payload, (net.ip(1), net.port)).unwrap();
    }
    // Junk on the TCP port: a connection that does not say hello is closed and counted.
    let mut tcp = std::net::TcpStream::connect((net.ip(1), net.port)).unwrap();
    std::io::Write::write_all(&mut tcp, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    ana.wait_for_stats("junk counted", |stats| stats.malformed_datagrams >= 4 && stats.bad_connections >= 1);

    // Still delivers.
    let ids = send(ana, &[bo_id], "still here");
    expect_state(ana, ids[0], MessageState::Delivered);
}
