//! Real, messy networks in namespace labs: a lossy, jittery link on every host; interfaces
//! that go down and come back or change address; many hosts at once. Needs root; without it
//! the tests say why and skip.

use std::time::{Duration, Instant};

use pigeon::protocol::ids::PeerId;
use pigeon::store::Direction;

use crate::lab::{Impairment, Lab, skip_unless};
use crate::util::{Daemon, expect_batch_delivered, history_page, send_batch};

/// Starts `pigeon daemon` on every host of `lab` (its own data folder, IP Messenger off).
fn start_all(lab: &Lab, count: usize, dirs: &tempfile::TempDir) -> Vec<Daemon> {
    (0..count)
        .map(|i| {
            let dir = dirs.path().join(format!("h{i}")).display().to_string();
            Daemon::start_with(
                &format!("h{i}"),
                &lab.exec(i),
                &["--data-dir".into(), dir, "--no-ipmsg".into()],
            )
        })
        .collect()
}

/// Waits until every host lists every other one.
fn expect_all_see_all(hosts: &mut [Daemon], within: Duration) {
    let ids: Vec<PeerId> = hosts.iter().map(|h| h.id).collect();
    let deadline = Instant::now() + within;
    for host in hosts.iter_mut() {
        let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != host.id).collect();
        host.expect_peers_within(&others, deadline.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn eight_hosts_on_a_lossy_jittery_link_deliver_every_message_once_and_in_order() {
    const HOSTS: usize = 8;
    const PER_HOST: usize = 125;
    let impairment =
        Impairment { loss: 0.2, delay: Duration::from_millis(50), jitter: Duration::from_millis(20) };
    let Some(lab) = skip_unless(Lab::impaired("l", HOSTS, &impairment)) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut hosts = start_all(&lab, HOSTS, &dirs);
    expect_all_see_all(&mut hosts, Duration::from_secs(60));

    // Host i sends its messages round-robin to the seven others, numbered per conversation.
    let ids: Vec<PeerId> = hosts.iter().map(|h| h.id).collect();
    let text = |from: usize, to: usize, n: usize| format!("{from}>{to} {n:04}");
    for (i, host) in hosts.iter_mut().enumerate() {
        let texts = (0..PER_HOST).map(|k| {
            let to = (i + 1 + k % (HOSTS - 1)) % HOSTS;
            (to, text(i, to, k / (HOSTS - 1)))
        });
        for (to, text) in texts {
            send_batch(host, ids[to], [text]);
        }
    }
    let started = Instant::now();
    for host in &mut hosts {
        expect_batch_delivered(host, PER_HOST, Duration::from_secs(180));
    }
    eprintln!("{} messages delivered {:?} after the last was sent", HOSTS * PER_HOST, started.elapsed());

    // Every receiver has each conversation's messages once, in the order they were sent.
    for to in 0..HOSTS {
        for from in (0..HOSTS).filter(|&from| from != to) {
            let (messages, _) = history_page(&mut hosts[to], ids[from], None, 500);
            let got: Vec<String> = messages
                .into_iter()
                .filter(|m| m.direction == Direction::Incoming)
                .map(|m| m.text)
                .collect();
            let sent = (0..PER_HOST).filter(|k| (from + 1 + k % (HOSTS - 1)) % HOSTS == to).count();
            let want: Vec<String> = (0..sent).map(|n| text(from, to, n)).collect();
            assert_eq!(got, want, "host {to}'s history with host {from}");
        }
    }
}
