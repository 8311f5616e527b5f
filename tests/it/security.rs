//! Identity and trust between real daemons on loopback: a changed key is detected, reported
//! and marked until accepted; safety numbers agree; a peer cannot be impersonated by a hello
//! or an announce without its private key.

use std::net::UdpSocket;

use pigeon::protocol::announce::{Datagram, Presence, Status};
use pigeon::protocol::frame::Frame;
use pigeon::secure::identity::KEY_FILE;
use pigeon::secure::{Identity, Role};
use pigeon::store::{MessageState, Trust};
use pigeon::{Command, Event};

use crate::raw::{RawConn, RawPeer, rand_bytes};
use crate::util::{Daemon, Net, SHORT};

fn safety_number(daemon: &mut Daemon, peer: pigeon::protocol::ids::PeerId) -> (String, Trust) {
    daemon.send(&Command::SafetyNumber { peer });
    daemon.expect(SHORT, "safety number", |event| match event {
        Event::SafetyNumber { peer: of, code, trust } if *of == peer => Some((code.clone(), *trust)),
        _ => None,
    })
}

fn received(daemon: &mut Daemon, text: &str) -> bool {
    daemon.expect(SHORT, &format!("message {text:?}"), |event| match event {
        Event::MessageReceived { message } if message.text == text => Some(message.unconfirmed_sender),
        _ => None,
    })
}

#[test]
fn safety_numbers_agree_and_a_new_key_under_a_known_name_is_marked_until_accepted() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_dir = dirs.path().join("ana");
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &ana_dir));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);
    bo.expect_peers(&[ana.id]);

    let (ana_code, ana_trust) = safety_number(&mut ana, bo.id);
    let (bo_code, _) = safety_number(&mut bo, ana.id);
    assert_eq!(ana_code, bo_code, "both ends derive the same code");
    assert_eq!(ana_trust, Trust::Unverified);
    bo.send(&Command::Verify { peer: ana.id, verified: true });
    assert_eq!(safety_number(&mut bo, ana.id).1, Trust::Verified);

    // Ana reinstalls: same name, same host, new key.
    let old_ana = ana.id;
    ana.stop();
    std::fs::remove_file(ana_dir.join(KEY_FILE)).unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &ana_dir));
    assert_ne!(ana.id, old_ana, "a new key is a new id");
    // Her announces alone do not list her under the old name: only a handshake proves the
    // new key. Her first message makes the connection that proves it.
    ana.expect_peers(&[bo.id]);
    ana.send(&Command::SendMessage { to: vec![bo.id], text: "it is me, honest".into(), tag: None });
    let (previous, previous_verified) = bo.expect(SHORT, "key change", |event| match event {
        Event::KeyChanged { peer, previous, previous_verified } if peer.id == ana.id => {
            assert_eq!(peer.trust, Trust::KeyChanged);
            Some((*previous, *previous_verified))
        }
        _ => None,
    });
    assert_eq!((previous, previous_verified), (old_ana, true));
    assert!(received(&mut bo, "it is me, honest"), "marked while the key is not accepted");

    bo.send(&Command::AcceptKey { peer: ana.id });
    assert_eq!(safety_number(&mut bo, ana.id).1, Trust::Unverified);
    assert_eq!(safety_number(&mut bo, old_ana).1, Trust::Replaced);
    ana.send(&Command::SendMessage { to: vec![bo.id], text: "and again".into(), tag: None });
    assert!(!received(&mut bo, "and again"), "not marked once accepted");
}

#[test]
fn a_hello_claiming_another_peers_key_is_refused() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    bo.expect_peers(&[ana.id]);
    let ana_presence = bo.peers().into_iter().find(|p| p.id == ana.id).unwrap();

    // Mallory completes a handshake with its own key, then says it is Ana.
    let mallory = RawPeer::connect(&net, (net.ip(2), net.port).into(), "mallory");
    let mut claim = mallory.presence.clone();
    claim.id = ana_presence.id;
    claim.key = ana_presence.key.unwrap();
    // Counted before connecting: bo may refuse the impostor before this test reads the counters.
    let bad_before = bo.stats().bad_connections;
    let stream = std::net::TcpStream::connect((net.ip(2), net.port)).unwrap();
    let mut impostor = RawConn::open(stream, &mallory.identity, Role::Initiator);
    impostor.send(&Frame::Hello(claim));
    bo.wait_for_stats("impostor refused", |stats| stats.bad_connections > bad_before);
    let frames: Vec<Frame> = std::iter::from_fn(|| impostor.next()).collect();
    assert!(frames.iter().all(|frame| matches!(frame, Frame::Hello(_))), "only bo's hello: {frames:?}");

    // Ana is still Ana for bo, and still reachable.
    let id = ana.id;
    bo.send(&Command::SendMessage { to: vec![id], text: "still you?".into(), tag: None });
    assert!(!received(&mut ana, "still you?"));
}

#[test]
fn an_announce_claiming_an_offline_peer_does_not_receive_its_messages() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    bo.expect_peers(&[ana.id]);
    let ana_info = bo.peers().into_iter().find(|p| p.id == ana.id).unwrap();
    let ana_id = ana.id;
    ana.stop();
    bo.expect_peers(&[]);
    bo.send(&Command::SendMessage { to: vec![ana_id], text: "for ana only".into(), tag: None });
    let msg_id = bo.expect(SHORT, "queued", |event| match event {
        Event::MessageQueued { message, .. } => Some(message.msg_id),
        _ => None,
    });

    // Mallory announces Ana's id and key from its own address, signed with its own key.
    let udp = UdpSocket::bind((net.ip(7), net.port)).unwrap();
    let mallory = Identity::from_private(rand_bytes());
    let claim = Presence {
        id: ana_info.id,
        key: ana_info.key.unwrap(),
        name: ana_info.name.clone(),
        group: String::new(),
        host: ana_info.host.clone(),
        status: Status::Online,
        heartbeat_secs: pigeon::protocol::announce::HEARTBEAT_SECS,
        port: net.port,
        seq: crate::util::next_seq(),
    };
    let forged = crate::util::forge(&Datagram::Announce(claim.clone()), claim.key, &mallory);
    let malformed_before = bo.stats().malformed_datagrams;
    udp.send_to(&forged, (net.ip(2), net.port)).unwrap();
    bo.wait_for_stats("the forged announce dropped", |stats| stats.malformed_datagrams > malformed_before);
    assert!(bo.peers().iter().all(|peer| peer.id != ana_id), "a forged announce lists nobody");

    // Mallory connects itself and says it is Ana: the handshake shows Mallory's key, so the
    // connection is closed and the message stays queued.
    let stream = std::net::TcpStream::connect((net.ip(2), net.port)).unwrap();
    let mut conn = RawConn::open(stream, &mallory, Role::Initiator);
    conn.send(&Frame::Hello(Presence { seq: 0, ..claim }));
    let frames: Vec<Frame> = std::iter::from_fn(|| conn.next()).collect();
    assert!(
        frames.iter().all(|frame| !matches!(frame, Frame::Message(_))),
        "no message reaches the impostor: {frames:?}"
    );
    bo.send(&Command::LoadHistory { peer: ana_id, before: None, after: None, limit: 10 });
    let state = bo.expect(SHORT, "history", |event| match event {
        Event::History { messages, .. } => messages.iter().find(|m| m.msg_id == msg_id).map(|m| m.state),
        _ => None,
    });
    assert!(state < MessageState::Delivered, "{state:?}");
}

#[test]
fn an_oversized_frame_inside_the_encryption_closes_only_that_connection() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    bo.expect_peers(&[ana.id]);
    let mut mallory = RawPeer::connect(&net, (net.ip(2), net.port).into(), "mallory");
    let bad_before = bo.stats().bad_connections;
    // A message frame header declaring 4 GiB: refused from the header, before any buffering.
    mallory.chat.write(b"PG\x02\x02\xff\xff\xff\xff");
    bo.wait_for_stats("oversized frame refused", |stats| stats.bad_connections > bad_before);
    while mallory.chat.next().is_some() {}
    bo.send(&Command::SendMessage { to: vec![ana.id], text: "unaffected".into(), tag: None });
    assert!(!received(&mut ana, "unaffected"));
}
