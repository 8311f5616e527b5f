//! Network-namespace lab: hosts on a private bridge find each other by real broadcast (no
//! targets) and a host killed with SIGKILL expires from the others' lists within the
//! documented bound. Needs root; without it the test says why and skips.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use pigeon::Event;
use pigeon::node::{LeaveReason, PEER_TIMEOUT};

use crate::util::{Daemon, SHORT};

/// A bridge in its own namespace plus one namespace per host, all named after this process
/// and test so parallel tests and runs never collide; removed on drop.
pub struct Lab {
    prefix: String,
    hosts: usize,
    /// Programs the lab runs (the impaired switch instead of a bridge, an mDNS reflector),
    /// each ended by closing its stdin.
    helpers: Vec<Child>,
    /// Namespaces beyond the hosts: the far ends of side links.
    side_hosts: Vec<String>,
}

/// What the link of every host does to frames, as `tc qdisc add … netem loss L delay D J`
/// would on each host's interface.
pub struct Impairment {
    /// Share of frames lost, 0 to 1.
    pub loss: f64,
    /// Mean delay.
    pub delay: Duration,
    /// Delay varies uniformly by up to this much either way.
    pub jitter: Duration,
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
    /// Builds a lab of `hosts` namespaces on 10.77.0.0/24 joined by a bridge, or says why it
    /// cannot.
    pub fn up(tag: &str, hosts: usize) -> Result<Lab, String> {
        let lab = Lab::namespaces(tag, hosts)?;
        let hub = lab.hub();
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let port = format!("vh{i}");
            ip(&[
                "-n",
                &hub,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &lab.host(i),
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            lab.address(i)?;
        }
        Ok(lab)
    }

    /// Builds a lab whose hosts are joined by `tests/lab/impaired_switch.py`, which loses and
    /// delays frames as netem would (the kernels we run on may lack sch_netem).
    pub fn impaired(tag: &str, hosts: usize, impairment: &Impairment) -> Result<Lab, String> {
        let mut lab = Lab::namespaces(tag, hosts)?;
        let taps: Vec<String> = (0..hosts).map(|i| format!("tap{i}")).collect();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/impaired_switch.py");
        let mut switch = Process::new("ip")
            .args(["netns", "exec", &lab.hub(), "python3", script])
            .args(["--loss", &impairment.loss.to_string()])
            .args(["--delay-ms", &impairment.delay.as_millis().to_string()])
            .args(["--jitter-ms", &impairment.jitter.as_millis().to_string()])
            .args(&taps)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start the impaired switch: {err}"))?;
        let mut ready = String::new();
        BufReader::new(switch.stdout.take().unwrap()).read_line(&mut ready).ok();
        lab.helpers.push(switch);
        if ready.trim() != "ready" {
            return Err("the impaired switch did not start (python3 and /dev/net/tun needed)".into());
        }
        for (i, tap) in taps.iter().enumerate() {
            ip(&["-n", &lab.hub(), "link", "set", tap, "netns", &lab.host(i)])?;
            ip(&["-n", &lab.host(i), "link", "set", tap, "name", "eth0"])?;
            lab.address(i)?;
        }
        Ok(lab)
    }

    /// The hub namespace and one empty namespace per host.
    fn namespaces(tag: &str, hosts: usize) -> Result<Lab, String> {
        make_room_for_neighbours()?;
        let prefix = format!("pgt{}{tag}", std::process::id());
        let lab = Lab { prefix, hosts, helpers: Vec::new(), side_hosts: Vec::new() };
        let hub = lab.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for i in 0..hosts {
            let ns = lab.host(i);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// Gives host `i`'s eth0 its address and brings it up.
    fn address(&self, i: usize) -> Result<(), String> {
        let ns = self.host(i);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.addr(i)),
            "brd",
            "10.77.0.255",
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])
    }

    /// Gives host `i` a second interface, `name`, with address 10.78.N.1/24, linked straight
    /// to a new namespace holding 10.78.N.2 on its eth0 (N counts side links from 0), as a
    /// computer with a second network card, or a container bridge, would have. Returns the
    /// prefix that runs a command in the new namespace.
    pub fn side_link(&mut self, i: usize, name: &str) -> Vec<String> {
        let n = self.side_hosts.len();
        let side = format!("{}x{n}", self.prefix);
        ip(&["netns", "add", &side]).unwrap();
        self.side_hosts.push(side.clone());
        let host = self.host(i);
        ip(&["-n", &host, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", &side])
            .unwrap();
        for (ns, iface, addr) in
            [(&host, name, format!("10.78.{n}.1/24")), (&side, "eth0", format!("10.78.{n}.2/24"))]
        {
            ip(&["-n", ns, "addr", "add", &addr, "brd", &format!("10.78.{n}.255"), "dev", iface]).unwrap();
            ip(&["-n", ns, "link", "set", iface, "up"]).unwrap();
        }
        ip(&["-n", &side, "link", "set", "lo", "up"]).unwrap();
        vec!["ip".into(), "netns".into(), "exec".into(), side]
    }

    /// Takes every host's IPv4 addresses away and waits (up to 10 s) until their IPv6
    /// link-local addresses are usable: an address stays tentative for a second or two after
    /// its link comes up, while the kernel checks that no one else has it, as it has long
    /// been over on a real network.
    pub fn ipv6_only(&self) {
        for i in 0..self.hosts {
            self.ip_in(i, &["-4", "addr", "flush", "dev", "eth0"]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for i in 0..self.hosts {
            loop {
                let out = Process::new("ip")
                    .args(["-n", &self.host(i), "-6", "addr", "show", "dev", "eth0", "tentative"])
                    .output()
                    .unwrap();
                if out.stdout.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "host {i}'s IPv6 address stays tentative");
                crossbeam_channel::after(Duration::from_millis(50)).recv().ok();
            }
        }
    }

    /// Makes host `i` reflect mDNS between its interfaces `interfaces` (name, IPv4 address),
    /// as an office's mDNS gateway does between segments (`tests/lab/mdns_reflector.py`).
    pub fn reflect_mdns(&mut self, i: usize, interfaces: &[(&str, &str)]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/mdns_reflector.py");
        let mut reflector = Process::new("ip")
            .args(["netns", "exec", &self.host(i), "python3", script])
            .args(interfaces.iter().flat_map(|(name, addr)| [*name, *addr]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(reflector.stdout.take().unwrap()).read_line(&mut ready).ok();
        self.helpers.push(reflector);
        assert_eq!(ready.trim(), "ready", "the mDNS reflector did not start");
    }

    /// Runs `ip -n <host i> ARGS…` (to take interfaces down, change addresses, …).
    pub fn ip_in(&self, i: usize, args: &[&str]) {
        let mut all = vec!["-n", &self.host(i)].into_iter().map(str::to_owned).collect::<Vec<_>>();
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        ip(&all.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    }

    /// Makes the bridge drop the IPv4 packets `matching` (an nftables match such as
    /// `ip daddr 10.77.0.255`), as a switch or access point that filters them would.
    pub fn bridge_drops(&self, matching: &str) -> Result<(), String> {
        let rules = format!(
            "table bridge lab {{\n chain forward {{\n type filter hook forward priority 0;\n {matching} drop\n }}\n}}\n"
        );
        let out = Process::new("ip")
            .args(["netns", "exec", &self.hub(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut nft| {
                use std::io::Write;
                nft.stdin.take().unwrap().write_all(rules.as_bytes())?;
                nft.wait_with_output()
            })
            .map_err(|err| format!("cannot run nft: {err}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("nft {rules}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
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
        for mut helper in self.helpers.drain(..) {
            // Closing its stdin ends it; killing is the fallback.
            drop(helper.stdin.take());
            helper.kill().ok();
            helper.wait().ok();
        }
        let side_hosts = std::mem::take(&mut self.side_hosts);
        let names = (0..self.hosts).map(|i| self.host(i)).chain([self.hub()]).chain(side_hosts);
        for ns in names {
            // Best effort: a namespace that failed to appear has nothing to remove.
            ip(&["netns", "del", &ns]).ok();
        }
    }
}

/// The kernel's neighbour (ARP) table, with the least each limit must be for a lab of 250
/// hosts (each resolving the other 249) plus the smaller labs of tests running alongside.
/// The table is one for the whole machine, not one per namespace: with Linux's default hard
/// limit of 1,024 entries, a lab of 33 hosts or more overflows it ("neighbor table overflow"
/// in the kernel log) and the kernel drops outgoing datagrams — broadcasts included — while
/// `sendto` reports success (UDP hides ENOBUFS). On a real LAN every host has a table of its
/// own, so a lab without this would show peers expiring that no office would see.
const NEIGHBOUR_LIMITS: [(&str, u64); 3] = [
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh1", 1 << 16),
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", 1 << 17),
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", 1 << 18),
];

/// Raises (never lowers) the neighbour table's limits to [`NEIGHBOUR_LIMITS`].
fn make_room_for_neighbours() -> Result<(), String> {
    for (path, least) in NEIGHBOUR_LIMITS {
        let now: u64 = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {path}: {err}"))?
            .trim()
            .parse()
            .map_err(|err| format!("{path}: {err}"))?;
        if now < least {
            std::fs::write(path, least.to_string()).map_err(|err| format!("cannot raise {path}: {err}"))?;
        }
    }
    Ok(())
}

/// Builds a lab or explains loudly why this machine cannot.
pub fn lab_or_skip(tag: &str, hosts: usize) -> Option<Lab> {
    skip_unless(Lab::up(tag, hosts))
}

/// The lab, or a loud explanation of why this machine cannot build it.
pub fn skip_unless(lab: Result<Lab, String>) -> Option<Lab> {
    match lab {
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
