//! Group rooms between real daemons on loopback: a room reaches every member, a member that
//! was away catches up from whichever member is online (not only the authors), everyone
//! ends with the same posts in the same order, and a non-member learns nothing.

use pigeon::node::event::{RoomInfo, RoomPost};
use pigeon::protocol::ids::{PeerId, RoomId};
use pigeon::{Command, Event};

use crate::raw::RawPeer;
use crate::util::{Daemon, Net, SHORT};

fn created(daemon: &mut Daemon, name: &str) -> RoomInfo {
    daemon.expect(SHORT, &format!("room {name}"), |event| match event {
        Event::RoomUpdated { room, .. } if room.name == name => Some(room.clone()),
        _ => None,
    })
}

fn posted(daemon: &mut Daemon, room: RoomId, text: &str) -> RoomPost {
    daemon.expect(SHORT, &format!("post {text:?}"), |event| match event {
        Event::RoomPosted { room: r, post, .. } if *r == room && post.text == text => Some(post.clone()),
        _ => None,
    })
}

fn post(daemon: &mut Daemon, room: RoomId, text: &str) {
    daemon.send(&Command::RoomSend { room, text: text.into(), tag: None });
    posted(daemon, room, text);
}

fn history(daemon: &mut Daemon, room: RoomId) -> Vec<(PeerId, String)> {
    daemon.send(&Command::RoomHistory { room });
    daemon.expect(SHORT, "room history", |event| match event {
        Event::RoomHistory { room: r, posts } if *r == room => {
            Some(posts.iter().map(|p| (p.author, p.text.clone())).collect())
        }
        _ => None,
    })
}

/// Ana, Bo and Cy on `net`, their data in `dir`, in a room `name` that Ana made and all
/// three have seen; also Cy's data folder (tests restart it).
fn three_in_a_room(
    net: &Net,
    dir: &std::path::Path,
    name: &str,
) -> (Daemon, Daemon, Daemon, RoomId, std::path::PathBuf) {
    let cy_dir = dir.join("cy");
    let mut ana = Daemon::start("ana", &net.flags(1, 3, &dir.join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 3, &dir.join("bo")));
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    ana.expect_peers(&[bo.id, cy.id]);
    ana.send(&Command::RoomCreate { name: name.into(), members: vec![bo.id, cy.id], tag: None });
    let room = created(&mut ana, name).room;
    for member in [&mut bo, &mut cy] {
        let info = created(member, name);
        assert_eq!((info.room, info.members.len(), info.joined), (room, 3, true));
    }
    (ana, bo, cy, room, cy_dir)
}

#[test]
fn a_member_that_was_away_catches_up_from_any_other_and_all_agree_on_the_order() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, mut cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Sales");
    post(&mut ana, room, "hello room");
    posted(&mut bo, room, "hello room");
    posted(&mut cy, room, "hello room");

    // Cy goes away; ana and bo talk; ana goes away before cy is back.
    cy.stop();
    bo.expect_peers(&[ana.id]);
    post(&mut ana, room, "while cy was out");
    posted(&mut bo, room, "while cy was out");
    post(&mut bo, room, "bo too");
    posted(&mut ana, room, "bo too");
    let ana_history = history(&mut ana, room);
    ana.stop();

    // Cy gets ana's post from bo, who did not write it (posts arrive by author, in any
    // order of the two).
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let mut arrived = Vec::new();
    cy.expect(SHORT, "both posts", |event| {
        if let Event::RoomPosted { post, .. } = event {
            arrived.push(post.clone());
        }
        (arrived.len() == 2).then_some(())
    });
    let relayed = arrived.iter().find(|post| post.text == "while cy was out").expect("ana's post");
    assert_ne!(relayed.author, bo.id, "the author is ana, however it came");
    assert_eq!(history(&mut cy, room), ana_history, "the same posts in the same order");
    assert_eq!(history(&mut bo, room), ana_history);
    assert_eq!(ana_history.len(), 3);
}

#[test]
fn a_peer_outside_a_room_learns_nothing_of_it() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);
    ana.send(&Command::RoomCreate { name: "Private".into(), members: vec![bo.id], tag: None });
    let room = created(&mut ana, "Private").room;
    post(&mut ana, room, "members only");
    posted(&mut bo, room, "members only");

    // Mallory, a real key but no member, asks for everything the room holds.
    let mut mallory = RawPeer::connect(&net, (net.ip(1), net.port).into(), "mallory");
    let refused = ana.stats().room_events_refused;
    let ask = pigeon::protocol::room::RoomSync {
        rooms: vec![pigeon::protocol::room::RoomHave { room, have: Default::default() }],
    };
    mallory.chat.send(&pigeon::protocol::frame::Frame::RoomSync(ask));
    ana.wait_for_stats("the non-member refused", |stats| stats.room_events_refused > refused);
    mallory.chat.send(&pigeon::protocol::frame::Frame::Message(pigeon::protocol::message::WireMessage {
        msg_id: pigeon::protocol::ids::MsgId::from_bytes(crate::raw::rand_bytes()),
        sent_at_ms: 1,
        text: "flush".into(),
    }));
    // Ana answers the later message (delivered) after the sync: nothing of the room came.
    let frames: Vec<_> = std::iter::from_fn(|| mallory.chat.next())
        .take_while(|frame| !matches!(frame, pigeon::protocol::frame::Frame::Delivered(_)))
        .collect();
    assert!(
        frames.iter().all(|frame| !matches!(frame, pigeon::protocol::frame::Frame::RoomEvents(_))),
        "a non-member got room events: {frames:?}"
    );
}

#[test]
fn a_member_removed_while_away_learns_it_and_gets_nothing_said_after() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Team");
    let cy_id = cy.id;
    cy.stop();
    ana.send(&Command::RoomRemove { room, member: cy_id });
    ana.expect(SHORT, "cy removed", |event| match event {
        Event::RoomUpdated { room: info, .. } if info.members.len() == 2 => Some(()),
        _ => None,
    });
    post(&mut ana, room, "after cy was removed");
    posted(&mut bo, room, "after cy was removed");

    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    cy.expect(SHORT, "told it is out", |event| match event {
        Event::RoomUpdated { room: info, .. } if info.room == room && !info.joined => Some(()),
        Event::RoomPosted { post, .. } => panic!("a removed member got {:?}", post.text),
        _ => None,
    });
    assert!(history(&mut cy, room).iter().all(|(_, text)| text != "after cy was removed"));
}

#[test]
fn a_member_killed_during_catch_up_resumes_after_restart_and_holds_each_post_once() {
    const POSTS: usize = 2000;
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Busy");
    cy.stop();
    for n in 0..POSTS {
        ana.send(&Command::RoomSend { room, text: format!("post {n:04}"), tag: None });
    }
    posted(&mut bo, room, &format!("post {:04}", POSTS - 1));
    let expected = history(&mut bo, room);
    assert_eq!(expected.len(), POSTS);
    ana.stop();

    // Cy catches up from bo, 256 events a frame, and is killed part way.
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let mut seen = 0;
    cy.expect(SHORT, "part of the catch-up", |event| {
        seen += usize::from(matches!(event, Event::RoomPosted { .. }));
        (seen >= 300).then_some(())
    });
    cy.kill();
    crate::crash::assert_history_intact(&cy_dir);
    // Whatever it held when it died, it ends with every post once, in the room's order.
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let deadline = std::time::Instant::now() + SHORT;
    let mut held = history(&mut cy, room);
    while held.len() < POSTS && std::time::Instant::now() < deadline {
        cy.expect(SHORT, "more of the catch-up", |event| {
            matches!(event, Event::RoomPosted { .. }).then_some(())
        });
        held = history(&mut cy, room);
    }
    assert_eq!(held, expected, "every post once, in the room's order");
}
