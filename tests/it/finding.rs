//! Finding peers wherever the network lets packets through (issue 20): each way of being
//! found keeps working when a lab's bridge filters the others, as access points and managed
//! switches do.

use std::time::Duration;

use pigeon::Event;
use pigeon::protocol::ids::PeerId;
use pigeon::store::MessageState;

use crate::lab::{Lab, skip_unless};
use crate::util::{Daemon, SHORT, incoming_texts, send};

/// Starts `count` hosts on a lab whose bridge drops what `dropped` matches, with only the
/// native family on (IP Messenger and LocalSend find peers by broadcast and multicast too)
/// and the ways of finding peers that `off` does not turn off.
fn hosts_behind_a_filter(
    tag: &str,
    count: usize,
    (dropped, off): (&str, &[&str]),
    dirs: &tempfile::TempDir,
) -> Option<(Lab, Vec<Daemon>)> {
    let lab = skip_unless(Lab::up(tag, count))?;
    lab.bridge_drops(dropped).unwrap();
    let hosts = (0..count)
        .map(|i| {
            let data = dirs.path().join(format!("h{i}")).display().to_string();
            let mut flags = ["--data-dir", &data, "--no-ipmsg", "--no-localsend"].map(str::to_owned).to_vec();
            flags.extend(off.iter().map(|flag| (*flag).to_owned()));
            Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
        })
        .collect();
    Some((lab, hosts))
}

/// IPv6 and mDNS off: they would find peers whatever IPv4 filter the bridge has.
const IPV4_WAYS_ONLY: &[&str] = &["--no-ipv6", "--no-mdns"];

fn expect_all_see_all(hosts: &mut [Daemon], within: Duration) {
    let ids: Vec<PeerId> = hosts.iter().map(|host| host.id).collect();
    for host in hosts.iter_mut() {
        let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != host.id).collect();
        host.expect_peers_within(&others, within);
    }
}

#[test]
fn with_broadcasts_dropped_on_the_bridge_hosts_find_each_other_by_multicast() {
    let dirs = tempfile::tempdir().unwrap();
    let dropped = "ip daddr { 10.77.0.255, 255.255.255.255 }";
    let Some((_lab, mut hosts)) = hosts_behind_a_filter("fb", 3, (dropped, IPV4_WAYS_ONLY), &dirs) else {
        return;
    };
    expect_all_see_all(&mut hosts, Duration::from_secs(10));
}

#[test]
fn where_the_network_carries_mdns_and_nothing_else_hosts_find_each_other_by_mdns_and_stay_listed() {
    let dirs = tempfile::tempdir().unwrap();
    // As on Wi-Fi whose controller passes mDNS (a Bonjour gateway) and filters the rest.
    let dropped = "ip daddr { 10.77.0.255, 255.255.255.255, 239.255.24.26 }";
    let off = ["--no-ipv6"];
    let Some((_lab, mut hosts)) = hosts_behind_a_filter("fn", 3, (dropped, &off), &dirs) else { return };
    expect_all_see_all(&mut hosts, Duration::from_secs(10));
    expect_none_dropped(&mut hosts.iter_mut().collect::<Vec<_>>());
}

/// Waits longer than a peer stays listed unheard (8 s) and checks that none of `hosts`
/// dropped anyone meanwhile.
fn expect_none_dropped(hosts: &mut [&mut Daemon]) {
    let (first, rest) = hosts.split_first_mut().unwrap();
    let events = first
        .drain_for(Duration::from_secs(12))
        .into_iter()
        .chain(rest.iter_mut().flat_map(|host| host.drain_for(Duration::from_millis(10))));
    let left: Vec<Event> = events.filter(|event| matches!(event, Event::PeerLeft { .. })).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn with_multicast_dropped_on_the_bridge_hosts_find_each_other_by_broadcast() {
    let dirs = tempfile::tempdir().unwrap();
    let Some((_lab, mut hosts)) =
        hosts_behind_a_filter("fm", 3, ("ip daddr 224.0.0.0/4", IPV4_WAYS_ONLY), &dirs)
    else {
        return;
    };
    expect_all_see_all(&mut hosts, Duration::from_secs(10));
}

#[test]
fn a_host_whose_address_comes_after_its_start_joins_the_group_then_and_is_found() {
    let dirs = tempfile::tempdir().unwrap();
    let dropped = "ip daddr { 10.77.0.255, 255.255.255.255 }";
    let Some(lab) = skip_unless(Lab::up("fl", 2)) else { return };
    lab.bridge_drops(dropped).unwrap();
    // Host 1 hears of host 0 only through the group, so only once it joined on eth0.
    lab.bridge_drops("ip saddr 10.77.0.2 ip daddr 224.0.0.0/4").unwrap();
    // As at a login before the Wi-Fi connects: no address when Pigeon starts.
    lab.ip_in(1, &["addr", "flush", "dev", "eth0"]);
    let start = |i: usize| {
        let data = dirs.path().join(format!("h{i}")).display().to_string();
        let flags = ["--data-dir", &data, "--no-ipmsg", "--no-localsend", "--no-ipv6", "--no-mdns"]
            .map(str::to_owned);
        Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
    };
    let mut hosts = vec![start(0), start(1)];
    lab.ip_in(1, &["addr", "add", "10.77.0.2/24", "brd", "10.77.0.255", "dev", "eth0"]);
    expect_all_see_all(&mut hosts, Duration::from_secs(15));
}

/// Two users' Pigeons on one computer (host 0) and a third on host 1, none given a port, on
/// a bridge that drops `dropped`: all three list each other and every one's message reaches
/// both others.
fn two_users_on_one_computer_and_a_neighbour(tag: &str, dropped: &str) {
    let Some(lab) = skip_unless(Lab::up(tag, 2)) else { return };
    lab.bridge_drops(dropped).unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let start = |name: &str, host: usize| {
        let data = dirs.path().join(name).display().to_string();
        Daemon::start_with(
            name,
            &lab.exec(host),
            &["--data-dir".to_owned(), data, "--no-ipv6".into(), "--no-mdns".into()],
        )
    };
    let mut nodes = vec![start("ana", 0), start("bo", 0), start("cy", 1)];
    expect_all_see_all(&mut nodes, Duration::from_secs(10));
    let bo = nodes[0].peers().into_iter().find(|peer| peer.id == nodes[1].id).unwrap();
    assert_eq!(bo.addr, "10.77.0.1");
    assert_ne!(bo.port, 2426, "bo listens on a port of its own");
    let ids: Vec<PeerId> = nodes.iter().map(|node| node.id).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != ids[i]).collect();
        let mut waiting = send(node, &others, &format!("hello from {}", node.name));
        node.expect(SHORT, "both delivered", |event| {
            if let Event::MessageStateChanged { msg_id, state: MessageState::Delivered, .. } = event {
                waiting.retain(|id| id != msg_id);
            }
            waiting.is_empty().then_some(())
        });
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let senders = ids.iter().copied().filter(|id| *id != ids[i]).collect::<Vec<_>>();
        for sender in senders {
            assert_eq!(incoming_texts(node, sender).len(), 1, "{} from {sender}", node.name);
        }
    }
}

#[test]
fn two_users_pigeons_on_one_computer_and_a_neighbour_find_each_other_by_broadcast() {
    two_users_on_one_computer_and_a_neighbour("f2b", "ip daddr 224.0.0.0/4");
}

#[test]
fn two_users_pigeons_on_one_computer_and_a_neighbour_find_each_other_by_multicast() {
    two_users_on_one_computer_and_a_neighbour("f2m", "ip daddr { 10.77.0.255, 255.255.255.255 }");
}

#[test]
fn with_ipv4_gone_hosts_find_each_other_over_ipv6_and_messages_a_file_and_an_invite_go_over_it() {
    let Some(lab) = skip_unless(Lab::up("f6", 3)) else { return };
    // Besides the link-local ones, routable addresses (unique local), which invites carry.
    for i in 0..3 {
        lab.ip_in(i, &["-6", "addr", "add", &format!("fd77::{}/64", i + 1), "dev", "eth0", "nodad"]);
    }
    lab.ipv6_only();
    let dirs = tempfile::tempdir().unwrap();
    let downloads = dirs.path().join("downloads");
    let start = |i: usize, extra: &[String]| {
        let data = dirs.path().join(format!("h{i}")).display().to_string();
        let mut flags = ["--data-dir", &data, "--no-ipmsg", "--no-localsend"].map(str::to_owned).to_vec();
        flags.extend_from_slice(extra);
        Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
    };
    let receiving = ["--auto-accept".to_owned(), "--download-dir".into(), downloads.display().to_string()];
    let mut hosts = vec![start(0, &[]), start(1, &receiving), start(2, &[])];
    expect_all_see_all(&mut hosts, Duration::from_secs(10));
    let h1 = hosts[0].peers().into_iter().find(|peer| peer.id == hosts[1].id).unwrap();
    assert!(h1.addr.starts_with("fe80::"), "placed at {}", h1.addr);

    let (to, from) = (hosts[1].id, hosts[0].id);
    let sent = send(&mut hosts[0], &[to], "über IPv6 — 你好");
    crate::util::expect_state(&mut hosts[0], sent[0], MessageState::Delivered);
    assert_eq!(incoming_texts(&mut hosts[1], from), ["über IPv6 — 你好"]);
    let file = dirs.path().join("notes.txt");
    std::fs::write(&file, "carried over IPv6\n".repeat(10_000)).unwrap();
    hosts[0].send(&pigeon::Command::SendFiles { to: vec![to], paths: vec![file.clone()], tag: None });
    let (state, reason) = hosts[1].expect(Duration::from_secs(20), "the file", |event| match event {
        Event::TransferStateChanged { state, reason, .. } if !state.is_live() => {
            Some((*state, reason.clone()))
        }
        _ => None,
    });
    assert_eq!(state, pigeon::store::TransferState::Completed, "{reason}");
    assert_eq!(std::fs::read(downloads.join("notes.txt")).unwrap(), std::fs::read(&file).unwrap());

    // Host 0's invite offers its routable IPv6 address; a newcomer on host 2 uses it.
    hosts[0].send(&pigeon::Command::MakeInvite);
    let link = hosts[0].expect(SHORT, "an invite link", |event| match event {
        Event::Invite { link } => Some(link.clone()),
        _ => None,
    });
    assert!(link.contains("addr=%5Bfd77::1%5D:2426"), "{link}");
    let newcomer = dirs.path().join("newcomer").display().to_string();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.host(2), crate::util::pigeon_bin()])
        .args(["--data-dir", &newcomer, "--name", "newcomer", "--no-ipmsg", "--no-localsend"])
        .args(["connect", &link, "--timeout", "10"])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("both keys verified"), "{said}");
}

/// Whether `node` lists the peer `id` within `within`.
fn lists_within(node: &mut Daemon, id: PeerId, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if node.peers().iter().any(|peer| peer.id == id) {
            return true;
        }
        node.drain_for(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_host_on_two_networks_finds_peers_on_both_and_stays_off_a_container_bridge_unless_chosen() {
    let Some(mut lab) = skip_unless(Lab::up("fi", 2)) else { return };
    let office = lab.side_link(0, "eth1");
    let containers = lab.side_link(0, "docker0");
    let dirs = tempfile::tempdir().unwrap();
    let data = |name: &str| dirs.path().join(name).display().to_string();
    // The far ends never announce: they list host 0 only if host 0 announces to them.
    let quiet = |name: &str, exec: &[String]| {
        let flags = [
            "--data-dir",
            &data(name),
            "--no-broadcast",
            "--no-multicast",
            "--no-ipv6",
            "--no-mdns",
            "--no-ipmsg",
            "--no-localsend",
        ];
        Daemon::start_with(name, exec, &flags.map(str::to_owned))
    };
    let mut lan = Daemon::start_with("lan", &lab.exec(1), &["--data-dir".to_owned(), data("lan")]);
    let mut office = quiet("office", &office);
    let mut container = quiet("container", &containers);
    let host_flags = |extra: &[&str]| {
        let mut flags =
            vec!["--data-dir".to_owned(), data("host"), "--no-ipmsg".into(), "--no-localsend".into()];
        flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
        flags
    };
    let mut host = Daemon::start_with("host", &lab.exec(0), &host_flags(&[]));
    let host_id = host.id;
    host.expect_peers(&[lan.id, office.id]);
    lan.expect_peers(&[host_id]);
    office.expect_peers(&[host_id]);
    // Two heartbeats and then some: long enough for one to have gone to docker0.
    assert!(!lists_within(&mut container, host_id, Duration::from_secs(5)), "host announced on docker0");
    host.stop();

    let host = Daemon::start_with("host", &lab.exec(0), &host_flags(&["--interface", "docker0"]));
    container.expect_peers(&[host.id]);
}

/// Makes host 0 route between the lab (10.77.0.0/24) and a second subnet (10.78.0.0/24) on
/// its `eth1`, as an office router or a VPN would: no broadcast or multicast crosses it.
/// Returns the prefix that runs a command on the far subnet's host, 10.78.0.2.
fn route_to_a_far_subnet(lab: &mut Lab) -> Vec<String> {
    let far = lab.side_link(0, "eth1");
    let forward = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.host(0), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        .status()
        .unwrap();
    assert!(forward.success());
    lab.ip_in(1, &["route", "add", "10.78.0.0/24", "via", "10.77.0.1"]);
    let far_ns = far[3].clone();
    let route = std::process::Command::new("ip")
        .args(["-n", &far_ns, "route", "add", "default", "via", "10.78.0.1"])
        .status()
        .unwrap();
    assert!(route.success());
    far
}

#[test]
fn across_a_router_that_reflects_mdns_peers_find_each_other_stay_listed_and_talk() {
    let Some(mut lab) = skip_unless(Lab::up("fd", 2)) else { return };
    let far = route_to_a_far_subnet(&mut lab);
    lab.reflect_mdns(0, &[("eth0", "10.77.0.1"), ("eth1", "10.78.0.1")]);
    let dirs = tempfile::tempdir().unwrap();
    let start = |name: &str, exec: &[String]| {
        let data = dirs.path().join(name).display().to_string();
        Daemon::start_with(
            name,
            exec,
            &["--data-dir", &data, "--no-ipmsg", "--no-localsend"].map(str::to_owned),
        )
    };
    let mut ana = start("ana", &lab.exec(1));
    let mut bo = start("bo", &far);
    ana.expect_peers_within(&[bo.id], Duration::from_secs(15));
    bo.expect_peers_within(&[ana.id], Duration::from_secs(15));
    let placed = ana.peers().into_iter().find(|peer| peer.id == bo.id).unwrap();
    assert_eq!(placed.addr, "10.78.0.2");
    // Each hears the other's heartbeats, sent to where mDNS found it.
    expect_none_dropped(&mut [&mut ana, &mut bo]);
    let sent = send(&mut bo, &[ana.id], "found through the mDNS gateway");
    crate::util::expect_state(&mut bo, sent[0], MessageState::Delivered);
}

#[test]
fn an_invite_link_connects_across_a_router_and_verifies_both_keys() {
    let Some(mut lab) = skip_unless(Lab::up("fv", 2)) else { return };
    let far = route_to_a_far_subnet(&mut lab);
    let dirs = tempfile::tempdir().unwrap();
    let data = |name: &str| dirs.path().join(name).display().to_string();
    let mut ana = Daemon::start_with("ana", &lab.exec(1), &["--data-dir".to_owned(), data("ana")]);
    ana.send(&pigeon::Command::MakeInvite);
    let link = ana.expect(SHORT, "an invite link", |event| match event {
        Event::Invite { link } => Some(link.clone()),
        _ => None,
    });
    assert!(link.contains("addr=10.77.0.2:2426"), "{link}");

    let bo_dir = data("bo");
    let run_connect = |link: &str| {
        std::process::Command::new(&far[0])
            .args(&far[1..])
            .arg(crate::util::pigeon_bin())
            .args(["--data-dir", &bo_dir, "--name", "bo", "connect", link, "--timeout", "10"])
            .output()
            .unwrap()
    };
    let out = run_connect(&link);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("both keys verified"), "{said}");
    ana.expect(SHORT, "bo verified", |event| match event {
        Event::PeerUpdated { peer } | Event::PeerJoined { peer }
            if peer.name == "bo" && peer.trust == pigeon::node::Trust::Verified =>
        {
            Some(())
        }
        _ => None,
    });

    // A link whose id is not the key that answers (an edited or mixed-up link) is refused
    // with the reason, and nothing gets verified.
    let other = pigeon::protocol::ids::PeerId::from_bytes([9; 16]);
    let wrong = link.replacen(&format!("id={}", ana.id), &format!("id={other}"), 1);
    let out = run_connect(&wrong);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("is not ana who made the link"), "{said}");
}
