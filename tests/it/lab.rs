//! Network-namespace lab: hosts on a private bridge find each other by real broadcast (no
//! targets) and a host killed with SIGKILL expires from the others' lists within the
//! documented bound. Needs root; without it the test says why and skips.

use std::process::Command as Process;
use std::time::{Duration, Instant};

use pigeon::Event;
use pigeon::node::{LeaveReason, PEER_TIMEOUT};

use crate::util::{Daemon, SHORT};

/// A bridge in its own namespace plus one namespace per host, all named after this process
/// and test so parallel tests and runs never collide; removed on drop.
pub struct Lab {
    prefix: String,
    hosts: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Process::new("ip").args(args).output().map_err(|err| format!("cannot run ip: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Lab {
    /// Builds a lab of `hosts` namespaces on 10.(net).0.0/24, or says why it cannot.
    pub fn up(tag: &str, hosts: usize) -> Result<Lab, String> {
        let prefix = format!("pgt{}{tag}", std::process::id());
        let lab = Lab { prefix, hosts };
        let hub = lab.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let ns = lab.host(i);
            ip(&["netns", "add", &ns])?;
            let port = format!("vh{i}");
            ip(&["-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lab.addr(i)),
                "brd",
                "10.77.0.255",
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(lab)
    }

    /// Namespace name of the bridge.
    pub fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    /// Namespace name of host `i`.
    pub fn host(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    /// Address of host `i` (each host is alone in its namespace, so labs may share it).
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Prefix that runs a command inside host `i`.
    pub fn exec(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.host(i)]
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let names = (0..self.hosts).map(|i| self.host(i)).chain([self.hub()]);
        for ns in names {
            // Best effort: a namespace that failed to appear has nothing to remove.
            ip(&["netns", "del", &ns]).ok();
        }
    }
}

/// Builds a lab or explains loudly why this machine cannot.
pub fn lab_or_skip(tag: &str, hosts: usize) -> Option<Lab> {
    match Lab::up(tag, hosts) {
        Ok(lab) => Some(lab),
        Err(reason) => {
            eprintln!("SKIPPED: network-namespace lab unavailable (needs root and iproute2): {reason}");
            None
        }
    }
}

#[test]
fn four_hosts_find_each_other_by_broadcast_and_a_killed_one_expires() {
    let Some(lab) = lab_or_skip("d", 4) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut hosts: Vec<Daemon> = (0..4)
        .map(|i| {
            let flags = vec!["--data-dir".into(), dirs.path().join(format!("h{i}")).display().to_string()];
            Daemon::start_with(&format!("h{i}"), &lab.exec(i), &flags)
        })
        .collect();
    let ids: Vec<_> = hosts.iter().map(|h| h.id).collect();
    for (i, host) in hosts.iter_mut().enumerate() {
        let others: Vec<_> = ids.iter().copied().filter(|id| *id != ids[i]).collect();
        host.expect_peers(&others);
        let peers = host.peers();
        assert!(peers.iter().all(|p| p.addr.starts_with("10.77.0.")), "{peers:?}");
    }

    let victim = hosts.pop().unwrap();
    let victim_id = victim.id;
    let killed_at = Instant::now();
    victim.kill();
    let bound = PEER_TIMEOUT + Duration::from_secs(2);
    for host in &mut hosts {
        let reason = host.expect(bound + SHORT, "the killed host expiring", |event| match event {
            Event::PeerLeft { id, reason } if *id == victim_id => Some(*reason),
            _ => None,
        });
        assert_eq!(reason, LeaveReason::Timeout);
    }
    let took = killed_at.elapsed();
    assert!(took <= bound, "expiry took {took:?}, documented bound {bound:?}");
}
