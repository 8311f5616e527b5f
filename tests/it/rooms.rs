//! Group rooms between real daemons on loopback: a room reaches every member, a member that
//! was away catches up from whichever member is online (not only the authors), everyone
//! ends with the same posts in the same order, and a non-member learns nothing.

use pigeon::node::event::{RoomInfo, RoomPost, TransferInfo};
use pigeon::protocol::ids::{PeerId, RoomId, TransferId};
use pigeon::protocol::room::PostedIn;
use pigeon::store::TransferState;
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

/// Waits until every one of `texts` was posted in `room`, in whatever order they arrive (a
/// catch-up sends them author by author); returns the posts.
fn posts_arrive(daemon: &mut Daemon, room: RoomId, texts: &[&str]) -> Vec<RoomPost> {
    let mut arrived: Vec<RoomPost> = Vec::new();
    daemon.expect(SHORT, &format!("posts {texts:?}"), |event| {
        if let Event::RoomPosted { room: r, post, .. } = event
            && *r == room
            && texts.contains(&post.text.as_str())
        {
            arrived.push(post.clone());
        }
        (arrived.len() == texts.len()).then_some(())
    });
    arrived
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
    let arrived = posts_arrive(&mut cy, room, &["while cy was out", "bo too"]);
    let relayed = arrived.iter().find(|post| post.text == "while cy was out").expect("ana's post");
    assert_ne!(relayed.author, bo.id, "the author is ana, however it came");
    assert_eq!(history(&mut cy, room), ana_history, "the same posts in the same order");
    assert_eq!(history(&mut bo, room), ana_history);
    assert_eq!(ana_history.len(), 3);
}

#[test]
fn a_member_away_while_long_posts_were_written_catches_up_on_all_of_them() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Specs");
    cy.stop();
    // Twenty posts near the 64 KiB limit: more than one frame's worth.
    let texts: Vec<String> = (0..20).map(|n| format!("{n:02} {}", "规格 spec ".repeat(5_000))).collect();
    for text in &texts {
        ana.send(&Command::RoomSend { room, text: text.clone(), tag: None });
    }
    let long_posts_arrive = |daemon: &mut Daemon| {
        let mut seen = std::collections::BTreeSet::new();
        daemon.expect(SHORT, "the 20 long posts", |event| {
            if let Event::RoomPosted { room: r, post, .. } = event
                && *r == room
            {
                seen.insert(post.text.clone());
            }
            (seen.len() == texts.len()).then_some(())
        });
        seen
    };
    long_posts_arrive(&mut bo);
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let arrived = long_posts_arrive(&mut cy);
    assert!(texts.iter().all(|text| arrived.contains(text)));
    assert_eq!(history(&mut cy, room), history(&mut ana, room));
}

#[test]
fn a_long_catch_up_takes_each_answer_once() {
    // Signing and checking 6,000 events in a debug build keeps both cores busy for seconds.
    let _alone = crate::util::heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Log");
    cy.stop();
    // Three answers' worth (2,048 events each).
    let posts = 6_000;
    for n in 0..posts {
        ana.send(&Command::RoomSend { room, text: format!("line {n}"), tag: None });
    }
    let last = format!("line {}", posts - 1);
    bo.expect(SHORT, "the last post", |event| match event {
        Event::RoomPosted { post, .. } if post.text == last => Some(()),
        _ => None,
    });
    ana.stop();
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let mut arrived = 0;
    cy.expect(SHORT, "the catch-up", |event| {
        arrived += usize::from(matches!(event, Event::RoomPosted { .. }));
        (arrived == posts).then_some(())
    });
    // Both ends say what they hold when they meet, so the first answer may come twice; every
    // later one once (it used to come twice too: each copy asked for the next).
    let received = cy.stats().room_events_received;
    assert!(received < posts as u64 * 3 / 2, "{received} events received for {posts} posts");
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
        also_to: Vec::new(),
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

/// Host `i` of a lab, which must be running.
fn host(hosts: &mut [Option<Daemon>], i: usize) -> &mut Daemon {
    hosts[i].as_mut().expect("host running")
}

/// Waits until `daemon`'s view of `room` is `settled` (it changes only by `room_updated`).
fn room_settles(daemon: &mut Daemon, room: RoomId, settled: impl Fn(&RoomInfo) -> bool) -> RoomInfo {
    if let Some(info) = room_info(daemon, room).filter(|info| settled(info)) {
        return info;
    }
    daemon.expect(SHORT, "the room to settle", |event| match event {
        Event::RoomUpdated { room: info, .. } if info.room == room && settled(info) => Some(info.clone()),
        _ => None,
    })
}

/// The room as `daemon` holds it now, if it does.
fn room_info(daemon: &mut Daemon, room: RoomId) -> Option<RoomInfo> {
    daemon.send(&Command::ListRooms);
    daemon.expect(SHORT, "rooms", |event| match event {
        Event::Rooms { rooms } => Some(rooms.iter().find(|info| info.room == room).cloned()),
        _ => None,
    })
}

/// The offer a member gets for files posted to `room`.
fn room_offer(daemon: &mut Daemon, room: RoomId) -> TransferInfo {
    daemon.expect(SHORT, "a room file offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.room.is_some_and(|p| p.room == room) => {
            Some(transfer.clone())
        }
        _ => None,
    })
}

fn transfer_ends(daemon: &mut Daemon, id: TransferId) -> TransferState {
    daemon.expect(SHORT, "the transfer's end", |event| match event {
        Event::TransferStateChanged { transfer_id, state, .. }
            if *transfer_id == id && *state != TransferState::Active =>
        {
            Some(*state)
        }
        _ => None,
    })
}

#[test]
fn files_posted_to_a_room_are_offered_to_each_member_who_accepts_or_declines_and_to_one_added_later() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let dir = |name: &str| dirs.path().join(name);
    let start = |name: &str, i: u8| {
        let mut flags = net.flags(i, 5, &dir(name));
        flags.extend(["--download-dir".into(), dir(name).join("downloads").display().to_string()]);
        Daemon::start(name, &flags)
    };
    let mut ana = start("ana", 1);
    let mut members: Vec<Daemon> =
        ["bo", "cy", "dee"].iter().zip(2..).map(|(name, i)| start(name, i)).collect();
    let mut eve = start("eve", 5);
    let ids: Vec<PeerId> = members.iter().map(|m| m.id).collect();
    ana.expect_peers(&[ids[0], ids[1], ids[2], eve.id]);
    ana.send(&Command::RoomCreate { name: "Design".into(), members: ids.clone(), tag: None });
    let room = created(&mut ana, "Design").room;
    let shared = dir("shared");
    std::fs::create_dir_all(shared.join("mockups")).unwrap();
    std::fs::write(shared.join("mockups/home.png"), b"not really a png").unwrap();
    std::fs::write(shared.join("brief.txt"), "什么 and why".repeat(1000)).unwrap();
    let paths = vec![shared.join("brief.txt"), shared.join("mockups")];
    ana.send(&Command::RoomSendFiles { room, paths: paths.clone(), tag: Some("files".into()) });
    let post = ana.expect(SHORT, "the files post", |event| match event {
        Event::RoomPosted { post, tag: Some(tag), .. } if tag == "files" => Some(post.clone()),
        _ => None,
    });
    let files = post.files.clone().expect("a files post describes them");
    assert_eq!((files.files, files.names.clone()), (2, vec!["brief.txt".into(), "mockups".into()]));

    // Every member sees the post and gets an offer tagged with it; bo and cy accept, dee
    // declines.
    let mut offers = Vec::new();
    for member in &mut members {
        // The post and the offer travel apart: either may come first.
        let (mut seen, mut offer) = (None, None);
        member.expect(SHORT, "the files post and its offer", |event| {
            match event {
                Event::RoomPosted { room: r, post: p, .. } if *r == room => seen = Some(p.clone()),
                Event::TransferAdded { transfer, .. } if transfer.room.is_some() => {
                    offer = Some(transfer.clone());
                }
                _ => {}
            }
            (seen.is_some() && offer.is_some()).then_some(())
        });
        let (seen, offer) = (seen.unwrap(), offer.unwrap());
        assert_eq!((seen.author, seen.files), (ana.id, Some(files.clone())));
        assert_eq!(offer.room, Some(PostedIn { room, seq: post.seq }), "the offer names the post");
        offers.push(offer.transfer_id);
    }
    for (member, id) in members.iter_mut().zip(&offers).take(2) {
        member.send(&Command::AcceptTransfer { transfer_id: *id, always: false });
    }
    members[2].send(&Command::DeclineTransfer { transfer_id: offers[2] });
    let expected = [TransferState::Completed, TransferState::Completed, TransferState::Declined];
    for ((member, id), state) in members.iter_mut().zip(&offers).zip(expected) {
        assert_eq!(transfer_ends(member, *id), state);
    }
    let mut answers = std::collections::HashMap::new();
    ana.expect(SHORT, "every member's answer", |event| {
        if let Event::TransferStateChanged { transfer_id, state, .. } = event
            && *state != TransferState::Active
        {
            answers.insert(*transfer_id, *state);
        }
        (answers.len() == offers.len()).then_some(())
    });
    let seen: Vec<TransferState> = offers.iter().map(|id| answers[id]).collect();
    assert_eq!(seen, expected, "ana sees each answer");
    for name in ["bo", "cy"] {
        let got = std::fs::read(dir(name).join("downloads/mockups/home.png")).unwrap();
        assert_eq!(got, b"not really a png");
        assert!(dir(name).join("downloads/brief.txt").exists());
    }
    assert!(!dir("dee").join("downloads/brief.txt").exists(), "declined, nothing written");

    // Eve, added later by bo, gets ana's offer too, and sees the post in the history.
    members[0].send(&Command::RoomAdd { room, member: eve.id });
    let late = room_offer(&mut eve, room);
    assert_eq!((late.peer, late.files), (ana.id, 2));
    eve.send(&Command::AcceptTransfer { transfer_id: late.transfer_id, always: false });
    assert_eq!(transfer_ends(&mut eve, late.transfer_id), TransferState::Completed);
    // Removed, dee hears no more: bo removes dee; a new post's offer goes to the others only.
    members[0].send(&Command::RoomRemove { room, member: ids[2] });
    room_settles(&mut ana, room, |info| info.members.len() == 4);
    ana.send(&Command::RoomSendFiles { room, paths: vec![shared.join("brief.txt")], tag: None });
    for member in members.iter_mut().take(2).chain([&mut eve]) {
        room_offer(member, room);
    }
    let after = members[2].drain_for(std::time::Duration::from_millis(300));
    assert!(
        !after.iter().any(|e| matches!(e, Event::TransferAdded { .. } | Event::RoomPosted { .. })),
        "a removed member gets no new post and no offer: {after:?}"
    );
}

#[test]
fn lab_six_hosts_a_room_of_five_catches_up_without_its_authors_and_racing_changes_converge() {
    let Some(lab) = crate::lab::lab_or_skip("r", 6) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let dir = |i: usize| dirs.path().join(format!("h{i}"));
    let start = |i: usize| {
        let flags = vec!["--data-dir".into(), dir(i).display().to_string()];
        Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
    };
    let mut hosts: Vec<Option<Daemon>> = (0..6).map(|i| Some(start(i))).collect();
    let ids: Vec<PeerId> = hosts.iter().map(|h| h.as_ref().unwrap().id).collect();
    host(&mut hosts, 0).expect_peers(&ids[1..]);
    host(&mut hosts, 0).send(&Command::RoomCreate {
        name: "Floor 3".into(),
        members: ids[1..5].to_vec(),
        tag: None,
    });
    let room = created(host(&mut hosts, 0), "Floor 3").room;
    for i in 1..5 {
        created(host(&mut hosts, i), "Floor 3");
    }

    // Host 4 is away while three authors write.
    hosts[4].take().unwrap().stop();
    for i in 0..3 {
        post(host(&mut hosts, i), room, &format!("from h{i}"));
    }
    let texts = ["from h0", "from h1", "from h2"];
    posts_arrive(host(&mut hosts, 3), room, &texts);
    let expected = history(host(&mut hosts, 3), room);
    for author in hosts.iter_mut().take(3) {
        author.take().unwrap().stop();
    }
    // Host 4 comes back while the authors are away: host 3 is the only member online.
    hosts[4] = Some(start(4));
    posts_arrive(host(&mut hosts, 4), room, &texts);
    assert_eq!(history(host(&mut hosts, 4), room), expected, "the same posts, once, in the same order");

    // A rename on host 3 and an add on host 4 at the same moment converge on both.
    host(&mut hosts, 3).send(&Command::RoomRename { room, name: "Floor 3 (east)".into() });
    host(&mut hosts, 4).send(&Command::RoomAdd { room, member: ids[5] });
    let settled = |info: &RoomInfo| info.name == "Floor 3 (east)" && info.members.len() == 6;
    let three = room_settles(host(&mut hosts, 3), room, settled);
    let four = room_settles(host(&mut hosts, 4), room, settled);
    assert_eq!(three, four, "both hosts compute the same room");
    created(host(&mut hosts, 5), "Floor 3 (east)");
}

#[test]
fn read_state_says_who_has_read_each_post() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, mut cy, room, _) = three_in_a_room(&net, dirs.path(), "Reads");
    post(&mut ana, room, "first");
    post(&mut ana, room, "second");
    posted(&mut bo, room, "second");
    posted(&mut cy, room, "second");
    bo.send(&Command::RoomMarkRead { room });
    let (reader, upto) = ana.expect(SHORT, "bo's read mark", |event| match event {
        Event::RoomRead { reader, seq, .. } => Some((*reader, *seq)),
        _ => None,
    });
    assert_eq!(reader, bo.id);
    assert_eq!(upto, 3, "up to ana's second post (her create was number 1)");
    let read_by = history_read_by(&mut ana, room);
    assert_eq!(read_by, [vec![bo.id], vec![bo.id]], "read by 1 of 2, and who");
    post(&mut cy, room, "third");
    posted(&mut ana, room, "third");
    let read_by_cy = history_read_by(&mut ana, room);
    assert_eq!(read_by_cy.last(), Some(&Vec::new()), "nobody has read the newest yet");
}

fn history_read_by(daemon: &mut Daemon, room: RoomId) -> Vec<Vec<PeerId>> {
    daemon.send(&Command::RoomHistory { room });
    daemon.expect(SHORT, "history", |event| match event {
        Event::RoomHistory { room: r, posts } if *r == room => {
            Some(posts.iter().map(|p| p.read_by.clone()).collect())
        }
        _ => None,
    })
}

/// Post latency benchmark (scripts/bench-rooms.sh, root): a room of 50 members on 50 hosts
/// of a namespace lab; one member posts PIGEON_ROOM_LATENCY_POSTS posts (default 100), one at
/// a time, each once every member has stored the one before. Prints p50/p99 of the time from
/// the post to all 49 others having stored it, and the poster's CPU per post.
/// Posts of the latency benchmark reported apart, as the connections' warm-up.
const COLD_POSTS: usize = 5;

#[test]
#[ignore = "benchmark: scripts/bench-rooms.sh"]
fn bench_post_latency() {
    let posts: usize =
        std::env::var("PIGEON_ROOM_LATENCY_POSTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let hosts = 50;
    let Some(lab) = crate::lab::lab_or_skip("rl", hosts) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut members: Vec<Daemon> = (0..hosts)
        .map(|i| {
            let flags = vec!["--data-dir".into(), dirs.path().join(format!("h{i}")).display().to_string()];
            Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
        })
        .collect();
    let ids: Vec<PeerId> = members.iter().map(|m| m.id).collect();
    members[0].expect_peers_within(&ids[1..], std::time::Duration::from_secs(60));
    members[0].send(&Command::RoomCreate { name: "Everyone".into(), members: ids[1..].to_vec(), tag: None });
    let room = created(&mut members[0], "Everyone").room;
    for member in &mut members[1..] {
        created(member, "Everyone");
    }
    let (poster, others) = members.split_first_mut().unwrap();
    // A first post warms up every connection; it is not counted.
    let mut latencies = Vec::with_capacity(posts);
    let cpu_before = crate::util::cpu_time(poster.pid());
    for n in 0..=posts {
        let text = format!("post {n}: lunch is at noon today");
        let started = std::time::Instant::now();
        poster.send(&Command::RoomSend { room, text: text.clone(), tag: None });
        for member in others.iter_mut() {
            posted(member, room, &text);
        }
        if n > 0 {
            latencies.push(started.elapsed());
        }
    }
    let cpu = crate::util::cpu_time(poster.pid()) - cpu_before;
    // The first posts can meet connections still opening between members that only just
    // found each other; they are reported apart.
    let settled: Vec<std::time::Duration> = latencies.iter().skip(COLD_POSTS).copied().collect();
    let percentile = |sorted: &[std::time::Duration], percent: usize| {
        sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)].as_secs_f64() * 1e3
    };
    let cold = latencies.iter().take(COLD_POSTS).max().copied().unwrap_or_default();
    latencies.sort();
    let mut settled = settled;
    settled.sort();
    println!(
        "| members | posts | to all stored: p50 | p99 | first {COLD_POSTS} posts, slowest | after them: p50 | p99 | poster CPU per post |"
    );
    println!(
        "| {hosts} | {posts} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} ms |",
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        cold.as_secs_f64() * 1e3,
        percentile(&settled, 50),
        percentile(&settled, 99),
        cpu.as_secs_f64() * 1e3 / (posts + 1) as f64,
    );
}

/// Catch-up benchmark (scripts/bench-rooms.sh): a member that was away while 10,000 posts
/// were made catches up from another; prints the time, the bytes its events take against
/// the bytes of their texts, and the CPU both spent.
#[test]
#[ignore = "a benchmark; run by scripts/bench-rooms.sh"]
fn bench_catch_up() {
    let posts: usize = std::env::var("PIGEON_ROOM_POSTS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut ana, mut bo, cy, room, cy_dir) = three_in_a_room(&net, dirs.path(), "Bench");
    cy.stop();
    let text = |n: usize| format!("message {n:05}: the quarterly numbers are in the shared folder");
    for n in 0..posts {
        ana.send(&Command::RoomSend { room, text: text(n), tag: None });
    }
    let last = text(posts - 1);
    bo.expect(std::time::Duration::from_secs(300), "the last post", |event| match event {
        Event::RoomPosted { post, .. } if post.text == last => Some(()),
        _ => None,
    });
    ana.stop();

    let bo_cpu = crate::util::cpu_time(bo.pid());
    let started = std::time::Instant::now();
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let mut first = None;
    let mut arrived = 0;
    cy.expect(std::time::Duration::from_secs(300), "the catch-up", |event| {
        if matches!(event, Event::RoomPosted { .. }) {
            first.get_or_insert_with(|| started.elapsed());
            arrived += 1;
        }
        (arrived == posts).then_some(())
    });
    let took = started.elapsed();
    let (bo_cpu, cy_cpu) = (crate::util::cpu_time(bo.pid()) - bo_cpu, crate::util::cpu_time(cy.pid()));
    let wire_bytes = cy.stats().room_bytes_received;
    cy.stop();
    // A node holding them starts (loads and decodes every event) in:
    let restarted = std::time::Instant::now();
    let cy = Daemon::start("cy", &net.flags(3, 3, &cy_dir));
    let start_time = restarted.elapsed();
    cy.stop();
    let db = rusqlite::Connection::open(cy_dir.join(pigeon::node::HISTORY_FILE)).unwrap();
    let event_bytes: i64 = db
        .query_row("SELECT SUM(LENGTH(json) + LENGTH(sig)) FROM room_events", [], |row| row.get(0))
        .unwrap();
    let text_bytes: usize = (0..posts).map(|n| text(n).len()).sum();
    println!(
        "| posts | catch-up (from start) | from first post | on the wire / texts | stored / texts | CPU sender | CPU receiver | restart holding them |"
    );
    println!(
        "| {posts} | {:.2} s | {:.2} s | {wire_bytes} / {text_bytes} B ({:.2}×) | {event_bytes} B ({:.1}×) | {:.2} s | {:.2} s | {:.2} s |",
        took.as_secs_f64(),
        (took - first.unwrap_or_default()).as_secs_f64(),
        wire_bytes as f64 / text_bytes as f64,
        event_bytes as f64 / text_bytes as f64,
        bo_cpu.as_secs_f64(),
        cy_cpu.as_secs_f64(),
        start_time.as_secs_f64(),
    );
}

/// Memory benchmark (scripts/bench-rooms.sh): a node that 20 rooms of 250 members each
/// include, with 100 posts in each, made and signed by a scripted member. Prints the memory
/// the node's data takes before and after.
#[test]
#[ignore = "a benchmark; run by scripts/bench-rooms.sh"]
fn bench_memory() {
    use pigeon::protocol::room::{Change, EventBody, Member, RoomEvents, SignedEvent, room_id};
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let before = crate::util::data_resident_bytes(bo.pid());
    let mut ana = RawPeer::connect(&net, (net.ip(2), net.port).into(), "ana");
    let bo_member = {
        let hello = std::iter::from_fn(|| ana.chat.next())
            .find_map(|frame| match frame {
                pigeon::protocol::frame::Frame::Hello(presence) => Some(presence),
                _ => None,
            })
            .expect("bo's hello");
        Member { id: hello.id, key: hello.key, name: "bo".into() }
    };
    let others: Vec<Member> = (0..248u32)
        .map(|n| {
            let identity = pigeon::secure::Identity::from_private(blake3::hash(&n.to_le_bytes()).into());
            Member { id: identity.peer_id(), key: identity.public(), name: format!("member {n}") }
        })
        .collect();
    let me = Member { id: ana.identity.peer_id(), key: ana.identity.public(), name: "ana".into() };
    for r in 0..20u8 {
        let nonce = [r; 16];
        let room = room_id(me.id, &nonce);
        let mut members = others.clone();
        members.extend([me.clone(), bo_member.clone()]);
        let mut events = Vec::new();
        for seq in 1..=101u64 {
            let change = if seq == 1 {
                let nonce = nonce.iter().map(|b| format!("{b:02x}")).collect();
                Change::Create { nonce, name: format!("room {r}"), members: members.clone() }
            } else {
                Change::Post {
                    text: format!("post {seq} in room {r}: something worth reading today"),
                    files: None,
                }
            };
            let body =
                EventBody { room, author: me.id, key: me.key, seq, lamport: seq, sent_at_ms: seq, change };
            events.push(SignedEvent::sign(body, &ana.identity).to_wire());
        }
        ana.chat.send(&pigeon::protocol::frame::Frame::RoomEvents(RoomEvents { room, events, more: false }));
        posted(&mut bo, room, &format!("post 101 in room {r}: something worth reading today"));
    }
    let after = crate::util::data_resident_bytes(bo.pid());
    println!("| rooms | members each | posts each | data before | data after |");
    println!("| 20 | 250 | 100 | {:.1} MB | {:.1} MB |", before as f64 / 1e6, after as f64 / 1e6);
}

#[test]
fn a_relayed_event_with_a_forged_author_is_refused_and_a_replayed_change_changes_nothing() {
    use pigeon::protocol::frame::Frame;
    use pigeon::protocol::room::{Change, EventBody, Member, RoomEvents, SignedEvent, room_id};
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let mut mallory = RawPeer::connect(&net, (net.ip(2), net.port).into(), "mallory");
    let hello = std::iter::from_fn(|| mallory.chat.next())
        .find_map(|frame| match frame {
            Frame::Hello(presence) => Some(presence),
            _ => None,
        })
        .expect("bo's hello");
    let cy = pigeon::secure::Identity::from_private(crate::raw::rand_bytes());
    let member = |id: &pigeon::secure::Identity, name: &str| Member {
        id: id.peer_id(),
        key: id.public(),
        name: name.into(),
    };
    let bo_member = Member { id: hello.id, key: hello.key, name: "bo".into() };
    let (m, nonce) = (mallory.identity.clone(), [3u8; 16]);
    let room = room_id(m.peer_id(), &nonce);
    let make =
        |author: &pigeon::secure::Identity, signer: &pigeon::secure::Identity, seq: u64, change: Change| {
            let body = EventBody {
                room,
                author: author.peer_id(),
                key: author.public(),
                seq,
                lamport: seq,
                sent_at_ms: seq,
                change,
            };
            let mut event = SignedEvent::sign(body, author);
            if signer.peer_id() != author.peer_id() {
                // The forger puts its own signature on another member's event.
                event.signature = pigeon::protocol::keys::Signer::sign(
                    signer,
                    &[pigeon::protocol::room::SIGNING_CONTEXT, event.json.as_bytes()].concat(),
                );
            }
            event.to_wire()
        };
    let nonce_hex = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let members = vec![member(&m, "mallory"), member(&cy, "cy"), bo_member];
    let create = make(&m, &m, 1, Change::Create { nonce: nonce_hex, name: "Ops".into(), members });
    let remove = make(&m, &m, 2, Change::Remove { member: cy.peer_id(), after_seq: 0 });
    let add = make(&m, &m, 3, Change::Add { member: member(&cy, "cy") });
    let send = |mallory: &mut RawPeer, events| {
        mallory.chat.send(&Frame::RoomEvents(RoomEvents { room, events, more: false }));
    };
    send(&mut mallory, vec![create, remove.clone(), add]);
    let info = room_settles(&mut bo, room, |info| info.members.len() == 3);
    assert!(info.members.iter().any(|m| m.id == cy.peer_id()), "cy removed and added back");

    // A post in cy's name that mallory signed, relayed by mallory: refused and counted.
    let refused = bo.stats().room_events_refused;
    send(
        &mut mallory,
        vec![make(&cy, &m, 1, Change::Post { text: "cy never said this".into(), files: None })],
    );
    bo.wait_for_stats("the forged post refused", |stats| stats.room_events_refused > refused);
    // The old removal again: held already, nothing changes; a fresh post shows it.
    send(&mut mallory, vec![remove]);
    send(&mut mallory, vec![make(&m, &m, 4, Change::Post { text: "still here".into(), files: None })]);
    bo.expect(SHORT, "the fresh post", |event| match event {
        Event::RoomPosted { post, .. } if post.text == "still here" => Some(()),
        Event::RoomPosted { post, .. } => panic!("a forged post was shown: {}", post.text),
        Event::RoomUpdated { room: info, .. } => panic!("a replayed change changed the room: {info:?}"),
        _ => None,
    });
    assert_eq!(room_info(&mut bo, room).map(|info| info.members.len()), Some(3));
    assert!(history(&mut bo, room).iter().all(|(_, text)| text != "cy never said this"));
}
