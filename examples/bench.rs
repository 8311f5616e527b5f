//! Pigeon's node benchmarks, on private loopback addresses only (127.200.x.y, explicit
//! targets, no broadcast): discovery convergence of 8 nodes, send→delivered round trips,
//! and an idle daemon's CPU and memory. Run through `scripts/bench.sh`; results are recorded
//! in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot set up should stop loudly")]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Select;
use pigeon::protocol::ids::PeerId;
use pigeon::store::MessageState;
use pigeon::{Command, Config, Event, Node};

/// Nodes in the convergence run (the target size).
const NODES: u8 = 8;
/// Messages in the round-trip run.
const ROUND_TRIPS: usize = 1000;
/// Longest any single wait may take before the benchmark gives up.
const DEADLINE: Duration = Duration::from_secs(20);
/// Port shared by every benchmark node (addresses differ).
const PORT: u16 = 29_426;

fn ip(net: u8, i: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 200, net, i)
}

fn config(dir: &tempfile::TempDir, net: u8, i: u8, count: u8) -> Config {
    let mut config = Config::in_dir(dir.path().join(format!("n{i}")));
    config.settings.name = format!("bench{i}");
    config.settings.bind = ip(net, i);
    config.settings.port = PORT;
    config.settings.broadcast = false;
    config.settings.targets = (1..=count).filter(|&o| o != i).map(|o| ip(net, o).to_string()).collect();
    config
}

fn convergence() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..NODES).map(|i| Node::start(&config(&dir, 1, i, NODES)).unwrap()).collect();
    let started = Instant::now();
    nodes.push(Node::start(&config(&dir, 1, NODES, NODES)).unwrap());
    let mut seen: Vec<std::collections::HashSet<PeerId>> = vec![Default::default(); nodes.len()];
    let want = usize::from(NODES - 1);
    while seen.iter().any(|s| s.len() < want) {
        let mut select = Select::new();
        for node in &nodes {
            select.recv(node.events());
        }
        let op = select.select_timeout(DEADLINE).expect("nodes converge");
        let i = op.index();
        match op.recv(nodes[i].events()).unwrap() {
            Event::PeerJoined { peer } => {
                seen[i].insert(peer.id);
            }
            Event::PeerLeft { id, .. } => {
                seen[i].remove(&id);
            }
            _ => {}
        }
    }
    started.elapsed()
}

fn round_trips() -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(&config(&dir, 2, 1, 2)).unwrap();
    let b = Node::start(&config(&dir, 2, 2, 2)).unwrap();
    let wait = |node: &Node, pick: &mut dyn FnMut(&Event) -> bool| loop {
        let event = node.events().recv_timeout(DEADLINE).expect("event before the deadline");
        if pick(&event) {
            return event;
        }
    };
    wait(&a, &mut |e| matches!(e, Event::PeerJoined { peer } if peer.id == b.id()));
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for n in 0..ROUND_TRIPS {
        let start = Instant::now();
        a.send(Command::SendMessage { to: vec![b.id()], text: format!("ping {n}"), tag: None }).unwrap();
        let Event::MessageQueued { message, .. } =
            wait(&a, &mut |e| matches!(e, Event::MessageQueued { .. }))
        else {
            unreachable!()
        };
        wait(
            &a,
            &mut |e| matches!(e, Event::MessageStateChanged { msg_id, state: MessageState::Delivered, .. } if *msg_id == message.msg_id),
        );
        times.push(start.elapsed());
        // Keep B's event queue short, as a real consumer would.
        while b.events().try_recv().is_ok() {}
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        let mut slow: Vec<(usize, Duration)> = times.iter().copied().enumerate().collect();
        slow.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        eprintln!("slowest round trips (index, time): {:?}", &slow[..10]);
    }
    times.sort();
    times
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = String::from_utf8(Process::new("getconf").arg("CLK_TCK").output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    ticks / hz
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn idle(binary: &PathBuf, secs: u64) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::new(binary)
        .args(["--bind", &ip(3, 1).to_string(), "--port", &PORT.to_string(), "--no-broadcast"])
        .args(["--target", &ip(3, 2).to_string(), "--data-dir"])
        .arg(dir.path())
        .arg("daemon")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.contains("\"started\""), "daemon did not start: {first}");
    let pid = child.id();
    let before = cpu_seconds(pid);
    crossbeam_channel::after(Duration::from_secs(secs)).recv().unwrap();
    let cpu = cpu_seconds(pid) - before;
    let rss = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    drop(child.stdin.take());
    child.wait().unwrap();
    (cpu / secs as f64 * 100.0, rss, peak)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut idle_secs = 60;
    let mut binary = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/pigeon"));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--idle-secs" => idle_secs = args.next().unwrap().parse().unwrap(),
            "--bin" => binary = args.next().unwrap().into(),
            other => panic!("unknown argument {other}; use --idle-secs N, --bin PATH"),
        }
    }
    let converge = convergence();
    println!("| discovery: {NODES} nodes all see all, after the last start | {:.1} ms |", ms(converge));
    let rtt = round_trips();
    println!(
        "| send→delivered round trip, {ROUND_TRIPS} messages | p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms |",
        ms(percentile(&rtt, 50)),
        ms(percentile(&rtt, 99)),
        ms(*rtt.last().unwrap())
    );
    let (cpu, rss, peak) = idle(&binary, idle_secs);
    println!("| idle daemon over {idle_secs} s | CPU {cpu:.3} %, RSS {rss} KiB (peak {peak} KiB) |");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
