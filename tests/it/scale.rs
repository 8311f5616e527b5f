//! The scale benchmark (`scripts/bench-scale.sh`; results in docs/BENCHMARKS.md): a lab of
//! 100 and of 250 hosts on one bridge, started within a second as after a power cut. It
//! measures the time from the last start until every host lists every other (and the CPU
//! each host spent to get there: the lab's two cores play all the hosts, a LAN gives each
//! its own), then a steady
//! state: datagrams each host receives per second, its CPU (share of one core) and its
//! resident memory. Not a test: it asserts only that the lab works, and prints the numbers.
//!
//! `PIGEON_SCALE_HOSTS` (default `100,250`), `PIGEON_SCALE_STEADY_SECS` (default 60),
//! `PIGEON_SCALE_NETWORKS` (default `open`; also `no-broadcast`: the bridge drops
//! broadcasts, and `ipv6-only`: no host has an IPv4 address), each size run on each network;
//! `PIGEON_TEST_BIN` names the daemon binary (the script passes a release build).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pigeon::Event;
use pigeon::node::PeerId;

use crate::lab::{Lab, skip_unless};
use crate::messy::{START_SPREAD, footprint, mass_start};
use crate::util::{Daemon, heavy};

/// How long a lab may take to converge before the run gives up.
const CONVERGE_LIMIT: Duration = Duration::from_secs(120);

/// Time after convergence before the steady state is measured: the start-up announces and
/// replies are over, and every host has slowed its heartbeat to the subnet's size.
const SETTLE: Duration = Duration::from_secs(15);

/// What the lab's network lets through.
#[derive(Clone, Copy)]
enum Network {
    /// Everything.
    Open,
    /// No broadcast crosses the bridge (as on many Wi-Fi networks).
    NoBroadcast,
    /// No host has an IPv4 address.
    Ipv6Only,
}

impl Network {
    fn parse(name: &str) -> Network {
        match name {
            "open" => Network::Open,
            "no-broadcast" => Network::NoBroadcast,
            "ipv6-only" => Network::Ipv6Only,
            other => panic!("unknown network {other}: open, no-broadcast or ipv6-only"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Network::Open => "open",
            Network::NoBroadcast => "no-broadcast",
            Network::Ipv6Only => "ipv6-only",
        }
    }

    /// Makes `lab` this network.
    fn shape(self, lab: &Lab) {
        match self {
            Network::Open => {}
            Network::NoBroadcast => lab.bridge_drops("ip daddr { 10.77.0.255, 255.255.255.255 }").unwrap(),
            Network::Ipv6Only => lab.ipv6_only(),
        }
    }
}

/// One run's results.
struct Run {
    hosts: usize,
    network: Network,
    converged: Vec<Duration>,
    /// CPU each host had used (start-up included) when it listed every other one: on a real
    /// LAN, where each host has a processor of its own, what its convergence costs.
    converge_cpu: Vec<Duration>,
    datagrams_per_sec: Vec<f64>,
    cpu_share: Vec<f64>,
    rss_kib: Vec<u64>,
    timeouts: usize,
}

fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sorted[sorted.len() / 2]
}

fn max<T: Copy + PartialOrd>(values: &[T]) -> T {
    values.iter().copied().fold(values[0], |a, b| if b > a { b } else { a })
}

/// When each host lists every other one, from the last start, and the CPU it had used by
/// then; hosts polled in turn.
fn convergence(hosts: &mut [Daemon], last_start: Instant) -> Vec<(Duration, Duration)> {
    let count = hosts.len();
    let mut listed: Vec<HashSet<PeerId>> = vec![HashSet::new(); count];
    let mut done: Vec<Option<(Duration, Duration)>> = vec![None; count];
    let until = Instant::now() + CONVERGE_LIMIT;
    while done.iter().any(Option::is_none) {
        assert!(Instant::now() < until, "not converged within {CONVERGE_LIMIT:?}");
        for (i, host) in hosts.iter_mut().enumerate() {
            for event in host.drain_for(Duration::from_micros(200)) {
                match event {
                    Event::PeerJoined { peer } => {
                        listed[i].insert(peer.id);
                    }
                    Event::PeerLeft { id, .. } => {
                        listed[i].remove(&id);
                    }
                    _ => {}
                }
            }
            if done[i].is_none() && listed[i].len() == count - 1 {
                done[i] = Some((last_start.elapsed(), cpu_ns(host.pid())));
            }
        }
    }
    done.into_iter().map(Option::unwrap).collect()
}

/// CPU time a process's threads have used so far, to the nanosecond (`/proc/PID/stat` counts
/// in hundredths of a second, too coarse for a thousandth of a core).
fn cpu_ns(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn run(hosts_wanted: usize, network: Network, steady: Duration) -> Option<Run> {
    let tag = format!("s{hosts_wanted}{}", &network.name()[..1]);
    let lab = skip_unless(Lab::up(&tag, hosts_wanted))?;
    network.shape(&lab);
    let dirs = tempfile::tempdir_in("/dev/shm").unwrap();
    let (mut hosts, last_start) = mass_start(&lab, hosts_wanted, &dirs, (START_SPREAD, &[]));
    let (converged, converge_cpu) = convergence(&mut hosts, last_start).into_iter().unzip();
    let settled = Instant::now() + SETTLE;
    for host in &mut hosts {
        host.drain_for(settled.saturating_duration_since(Instant::now()));
    }
    let sample = |hosts: &mut [Daemon]| -> Vec<(u64, Duration)> {
        hosts.iter_mut().map(|host| (host.stats().datagrams, cpu_ns(host.pid()))).collect()
    };
    let before = sample(&mut hosts);
    let started = Instant::now();
    let until = started + steady;
    let mut timeouts = 0;
    for host in &mut hosts {
        let events = host.drain_for(until.saturating_duration_since(Instant::now()));
        timeouts += events.iter().filter(|event| matches!(event, Event::PeerLeft { .. })).count();
    }
    let after = sample(&mut hosts);
    let elapsed = started.elapsed().as_secs_f64();
    let datagrams_per_sec = before.iter().zip(&after).map(|(b, a)| (a.0 - b.0) as f64 / elapsed).collect();
    let cpu_share = before.iter().zip(&after).map(|(b, a)| (a.1 - b.1).as_secs_f64() / elapsed).collect();
    let rss_kib = hosts.iter().map(|host| footprint(host.pid()).0).collect();
    Some(Run {
        hosts: hosts_wanted,
        network,
        converged,
        converge_cpu,
        datagrams_per_sec,
        cpu_share,
        rss_kib,
        timeouts,
    })
}

#[test]
#[ignore = "minutes long; run by scripts/bench-scale.sh"]
fn scale() {
    let _alone = heavy();
    let counts: Vec<usize> = std::env::var("PIGEON_SCALE_HOSTS")
        .unwrap_or_else(|_| "100,250".into())
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let steady = Duration::from_secs(
        std::env::var("PIGEON_SCALE_STEADY_SECS").map_or(60, |secs| secs.parse().unwrap()),
    );
    let networks: Vec<Network> = std::env::var("PIGEON_SCALE_NETWORKS")
        .unwrap_or_else(|_| "open".into())
        .split(',')
        .map(|name| Network::parse(name.trim()))
        .collect();
    let mut rows = Vec::new();
    for (count, network) in
        counts.iter().flat_map(|count| networks.iter().map(move |network| (*count, *network)))
    {
        let Some(run) = run(count, network, steady) else { return };
        let ms = |d: Duration| d.as_millis();
        rows.push(format!(
            "| {} | {} | {} ms / {} ms | {} ms / {} ms | {:.1} / {:.1} | {:.3} % / {:.3} % | {:.1} / {:.1} MiB | {} |",
            run.hosts,
            run.network.name(),
            ms(median(&run.converged)),
            ms(max(&run.converged)),
            ms(median(&run.converge_cpu)),
            ms(max(&run.converge_cpu)),
            median(&run.datagrams_per_sec),
            max(&run.datagrams_per_sec),
            100.0 * median(&run.cpu_share),
            100.0 * max(&run.cpu_share),
            median(&run.rss_kib) as f64 / 1024.0,
            max(&run.rss_kib) as f64 / 1024.0,
            run.timeouts,
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    eprintln!(
        "| hosts | network | all list all after the last start (median / slowest host) | CPU each host used until then, start-up included (median / max) | datagrams received per host per second (median / max) | CPU per host, share of one core (median / max) | resident memory per host (median / max) | peers expired in the steady state |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        eprintln!("{row}");
    }
}
