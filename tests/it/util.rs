//! Helpers shared by the integration tests: unique loopback addresses, `pigeon daemon`
//! processes driven over JSON lines, and waiting for events with a deadline.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use pigeon::node::{PeerInfo, Stats};
use pigeon::protocol::ids::PeerId;
use pigeon::{Command, Event};

/// Generous deadline for things that take milliseconds on a quiet machine, so that a busy
/// 2-core CI runner does not produce false failures.
pub const SHORT: Duration = Duration::from_secs(10);

/// Held by the tests that load the machine on purpose (floods, 32 hosts, 500 MB), so that
/// they do not run at the same time and skew each other's timings on a 2-core runner.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits until no other heavy test runs; hold the guard for the test's duration.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    // A heavy test that failed poisons the lock; the next one may still run.
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counter behind [`Net::new`]; each test takes a fresh value.
static NEXT_NET: AtomicU16 = AtomicU16::new(0);

/// A private slice of loopback for one test: addresses 127.X.Y.1, .2, … and one port, never
/// shared with another test of this run (X and the port also depend on the process id, so
/// two concurrent runs do not collide either).
pub struct Net {
    prefix: [u8; 3],
    /// Port every node of the test uses (UDP and TCP).
    pub port: u16,
}

impl Net {
    /// Takes the next unused slice.
    pub fn new() -> Net {
        let n = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let x = 100 + u8::try_from(pid % 100).unwrap();
        let port = 20_000 + u16::try_from(pid % 100).unwrap() * 100 + n;
        Net { prefix: [127, x, u8::try_from(n).unwrap()], port }
    }

    /// Address of node `i` (1-based).
    pub fn ip(&self, i: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, i)
    }

    /// Flags for node `i` of `count`: bound to its address, targeting every other node, no
    /// broadcast, no multicast.
    pub fn flags(&self, i: u8, count: u8, data_dir: &Path) -> Vec<String> {
        let mut flags = vec![
            "--bind".into(),
            self.ip(i).to_string(),
            "--port".into(),
            self.port.to_string(),
            "--no-broadcast".into(),
            "--no-multicast".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        for other in (1..=count).filter(|&other| other != i) {
            flags.extend(["--target".into(), self.ip(other).to_string()]);
        }
        flags
    }
}

/// The `pigeon` binary under test: this build's, or the one `PIGEON_TEST_BIN` names (the
/// scale benchmark runs the lab with a release binary, and can compare two builds).
pub fn pigeon_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("PIGEON_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pigeon").to_owned())
    })
}

/// A running `pigeon daemon`; killed when dropped if still running.
pub struct Daemon {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    /// Our identity, from the `started` event.
    pub id: PeerId,
    /// Where the daemon's stderr goes, shown when a test fails.
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `pigeon [prefix...] daemon` with `flags` and waits for its `started` event.
    pub fn start(name: &str, flags: &[String]) -> Daemon {
        Daemon::start_with(name, &[], flags)
    }

    /// Like [`Daemon::start`], with a command prefix such as `ip netns exec NS`.
    pub fn start_with(name: &str, prefix: &[String], flags: &[String]) -> Daemon {
        let mut daemon = Daemon::launch_with(name, prefix, flags);
        daemon.wait_started();
        daemon
    }

    /// Waits for the `started` event of a daemon from [`Daemon::launch_with`].
    pub fn wait_started(&mut self) {
        self.id = self.expect(SHORT, "started", |event| match event {
            Event::Started { id, .. } => Some(*id),
            _ => None,
        });
    }

    /// Starts the process like [`Daemon::start_with`] without waiting for it to be up (to
    /// start many at once); its id is known after [`Daemon::wait_started`].
    pub fn launch_with(name: &str, prefix: &[String], flags: &[String]) -> Daemon {
        // Numbered: tests running at once reuse names ("ana"), and a failing test's log must
        // be its own.
        static STARTED: AtomicU16 = AtomicU16::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let stderr_path = std::env::current_dir()
            .unwrap()
            .join(format!("target/it-{}-{n}-{name}.stderr", std::process::id()));
        std::fs::create_dir_all(stderr_path.parent().unwrap()).unwrap();
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut process = match prefix.split_first() {
            Some((program, args)) => {
                let mut process = Process::new(program);
                process.args(args).arg(pigeon_bin());
                process
            }
            None => Process::new(pigeon_bin()),
        };
        let mut child = process
            .args(flags)
            .args(["--name", name, "daemon"])
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("pigeon starts");
        let stdout = child.stdout.take().unwrap();
        // The test reads events when it gets to them; blocking here would block the
        // daemon's stdout and make it drop events. A bounded channel of the size floods need
        // (100,000) also costs ~20 MB and ~30 ms per daemon up front.
        #[expect(
            clippy::disallowed_methods,
            reason = "a test buffer that must never push back on the daemon"
        )]
        let (tx, events) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name(format!("it-{name}-events"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let event: Event =
                        serde_json::from_str(&line).unwrap_or_else(|err| panic!("bad event {line:?}: {err}"));
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            })
            .unwrap();
        let stdin = child.stdin.take();
        Daemon { name: name.into(), child, stdin, events, id: PeerId::from_bytes([0; 16]), stderr_path }
    }

    /// Writes one command line.
    pub fn send(&mut self, command: &Command) {
        self.send_line(&serde_json::to_string(command).unwrap());
    }

    /// Writes one raw line (for malformed-input tests).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits up to `within` for an event `pick` accepts; fails the test otherwise.
    pub fn expect<T>(
        &mut self,
        within: Duration,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                    seen.push(event);
                }
                Err(_) => panic!(
                    "{}: no {what} within {within:?}; events seen: {seen:#?}\nstderr:\n{}",
                    self.name,
                    self.stderr_tail()
                ),
            }
        }
    }

    /// Collects every event that arrives within `window` (to check something did not happen).
    pub fn drain_for(&mut self, window: Duration) -> Vec<Event> {
        let deadline = Instant::now() + window;
        std::iter::from_fn(|| self.events.recv_deadline(deadline).ok()).collect()
    }

    /// Asks for the peer list and returns it.
    pub fn peers(&mut self) -> Vec<PeerInfo> {
        self.send(&Command::ListPeers);
        self.expect(SHORT, "peer list", |event| match event {
            Event::Peers { peers } => Some(peers.clone()),
            _ => None,
        })
    }

    /// Asks for the node's counters.
    pub fn stats(&mut self) -> Stats {
        self.send(&Command::Stats);
        self.expect(SHORT, "stats", |event| match event {
            Event::Stats { stats } => Some(stats.clone()),
            _ => None,
        })
    }

    /// Asks for the counters until `done` holds for them (junk is counted asynchronously).
    pub fn wait_for_stats(&mut self, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + SHORT;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{}: {what} not seen in {stats:?}", self.name);
            self.drain_for(Duration::from_millis(50));
        }
    }

    /// Waits until the peer list holds exactly `ids` (polling the list on each event).
    pub fn expect_peers(&mut self, ids: &[PeerId]) {
        self.expect_peers_within(ids, SHORT);
    }

    /// Like [`Daemon::expect_peers`], with a deadline of `within`.
    pub fn expect_peers_within(&mut self, ids: &[PeerId], within: Duration) {
        let mut want: Vec<PeerId> = ids.to_vec();
        want.sort();
        let deadline = Instant::now() + within;
        loop {
            let mut have: Vec<PeerId> = self.peers().into_iter().map(|p| p.id).collect();
            have.sort();
            if have == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: peers {have:?}, want {want:?}\n{}",
                self.name,
                self.stderr_tail()
            );
            self.expect(deadline.saturating_duration_since(Instant::now()), "peer change", |event| {
                matches!(event, Event::PeerJoined { .. } | Event::PeerLeft { .. }).then_some(())
            });
        }
    }

    /// Closes stdin (a clean stop: goodbye sent) and waits for the process to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        self.expect(SHORT, "stopped", |event| (*event == Event::Stopped).then_some(()));
        wait_exit(&mut self.child, SHORT)
    }

    /// SIGKILL: no goodbye, no cleanup.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        wait_exit(&mut self.child, SHORT);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already exited is fine; the process must not outlive the test.
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Waits for a process to exit, polling with a deadline.
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit within {within:?}");
        // Child processes offer no exit notification to wait on with a deadline; a short
        // bounded poll is the portable way.
        crossbeam_channel::after(Duration::from_millis(20)).recv().unwrap();
    }
}

/// Loads one history page: its messages (oldest first) and whether older ones exist.
pub fn history_page(
    daemon: &mut Daemon,
    peer: PeerId,
    before: Option<i64>,
    limit: usize,
) -> (Vec<pigeon::store::ChatMessage>, bool) {
    daemon.send(&Command::LoadHistory { peer, before, after: None, limit });
    daemon.expect(SHORT, "history page", |event| match event {
        Event::History { messages, has_more, .. } => Some((messages.clone(), *has_more)),
        _ => None,
    })
}

/// Every incoming text message of `receiver`'s conversation with `sender`, oldest first, over as
/// many history pages as it takes.
pub fn incoming_texts(receiver: &mut Daemon, sender: PeerId) -> Vec<String> {
    let mut texts = Vec::new();
    let mut before = None;
    loop {
        let (page, has_more) = history_page(receiver, sender, before, 500);
        before = page.first().map(|m| m.seq);
        // Text messages only: a transfer's row lists file names.
        let incoming = page
            .into_iter()
            .filter(|m| m.direction == pigeon::store::Direction::Incoming && m.transfer.is_none())
            .map(|m| m.text);
        texts.splice(0..0, incoming);
        if !has_more {
            return texts;
        }
    }
}

/// Sends `text` to `to` and returns the message ids, one per recipient, once queued.
pub fn send(from: &mut Daemon, to: &[PeerId], text: &str) -> Vec<pigeon::protocol::ids::MsgId> {
    from.send(&Command::SendMessage { to: to.to_vec(), text: text.into(), tag: Some("t".into()) });
    to.iter()
        .map(|_| {
            from.expect(SHORT, "message queued", |event| match event {
                Event::MessageQueued { message, .. } => Some(message.msg_id),
                _ => None,
            })
        })
        .collect()
}

/// Sends each of `texts` to `to` without waiting for anything.
pub fn send_batch(from: &mut Daemon, to: PeerId, texts: impl IntoIterator<Item = String>) {
    for text in texts {
        from.send(&Command::SendMessage { to: vec![to], text, tag: None });
    }
}

/// Waits until `count` messages `from` was asked to send are queued and delivered (acknowledged
/// by their recipients); returns their ids in the order they were queued.
pub fn expect_batch_delivered(
    from: &mut Daemon,
    count: usize,
    within: Duration,
) -> Vec<pigeon::protocol::ids::MsgId> {
    let mut queued = Vec::new();
    let mut delivered = std::collections::HashSet::new();
    let what = format!("{count} messages delivered");
    from.expect(within, &what, |event| {
        match event {
            Event::MessageQueued { message, .. } => queued.push(message.msg_id),
            Event::MessageStateChanged { msg_id, state: pigeon::store::MessageState::Delivered, .. } => {
                delivered.insert(*msg_id);
            }
            _ => {}
        }
        (queued.len() == count && queued.iter().all(|id| delivered.contains(id))).then_some(())
    });
    queued
}

/// Waits for a delivery-state change of `msg_id` to `state`.
pub fn expect_state(
    daemon: &mut Daemon,
    msg_id: pigeon::protocol::ids::MsgId,
    state: pigeon::store::MessageState,
) {
    daemon.expect(SHORT, &format!("{msg_id} {state:?}"), |event| match event {
        Event::MessageStateChanged { msg_id: id, state: s, .. } if *id == msg_id && *s == state => Some(()),
        _ => None,
    });
}

/// The presence a scripted peer with `identity` announces: online, no group, its TCP
/// listener on `port`.
pub fn presence_of(
    identity: &pigeon::secure::Identity,
    name: &str,
    port: u16,
) -> pigeon::protocol::announce::Presence {
    pigeon::protocol::announce::Presence {
        id: identity.peer_id(),
        key: identity.public(),
        name: name.into(),
        group: String::new(),
        host: format!("{name}-host"),
        status: pigeon::protocol::announce::Status::Online,
        port,
        heartbeat_secs: pigeon::protocol::announce::HEARTBEAT_SECS,
        seq: next_seq(),
    }
}

/// A datagram number greater than any this test process used before, as a node numbers its
/// datagrams (milliseconds since 1970, or one more than the last).
pub fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis(),
    )
    .unwrap_or(u64::MAX);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

/// CPU time (user + system) a process has used so far, from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name, which may itself contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
    Duration::from_millis(ticks * 10)
}

/// A small deterministic pseudo-random generator (xorshift64*), so junk is reproducible.
pub struct Junk(u64);

impl Junk {
    /// Seeded; the seed must not be 0.
    pub fn new(seed: u64) -> Junk {
        Junk(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    /// Between 1 and `most` random bytes.
    pub fn some_bytes(&mut self, most: usize) -> Vec<u8> {
        let len = 1 + self.below(most);
        self.bytes(len)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// Signs nothing: lets a test put a datagram that names someone else's key through the
/// encoder, to sign it with the forger's own key afterwards.
pub struct Claim(pub pigeon::protocol::keys::PublicKey);

impl pigeon::protocol::keys::Signer for Claim {
    fn public(&self) -> pigeon::protocol::keys::PublicKey {
        self.0
    }
    fn sign(&self, _message: &[u8]) -> pigeon::protocol::keys::Signature {
        [0; 64]
    }
}

/// `datagram`, naming a key `forger` does not hold, signed by `forger` anyway.
pub fn forge(
    datagram: &pigeon::protocol::announce::Datagram,
    claimed: pigeon::protocol::keys::PublicKey,
    forger: &pigeon::secure::Identity,
) -> Vec<u8> {
    let mut bytes = datagram.encode(&Claim(claimed));
    let signed = bytes.len() - 64;
    let signature = pigeon::protocol::keys::Signer::sign(
        forger,
        &[pigeon::protocol::announce::SIGNING_CONTEXT, bytes.get(..signed).unwrap()].concat(),
    );
    bytes.get_mut(signed..).unwrap().copy_from_slice(&signature);
    bytes
}

/// Memory a process has taken for its data (resident anonymous pages, from /proc): what
/// input can make grow. The program's own code is left out: a debug build's 400 MB binary
/// puts 20-30 MB of it in the resident total, more or less with the machine.
pub fn data_resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Starts Ana (node 1 of 2 on `net`) while something else holds her port of `family`,
/// returns the reason she reports, and checks that she still talks with Bo, a Pigeon.
pub fn family_unavailable_yet_pigeons_talk(
    net: &Net,
    dirs: &Path,
    family: pigeon::protocol::Family,
) -> String {
    let mut ana = Daemon::start("Ana", &net.flags(1, 2, &dirs.join("ana")));
    let reason = ana.expect(SHORT, "the report", |event| match event {
        Event::FamilyUnavailable { family: reported, reason } if *reported == family => Some(reason.clone()),
        _ => None,
    });
    let mut bo = Daemon::start("Bo", &net.flags(2, 2, &dirs.join("bo")));
    ana.expect_peers(&[bo.id]);
    ana.send(&Command::SendMessage { to: vec![bo.id], text: "still here".into(), tag: None });
    bo.expect(SHORT, "the message", |event| match event {
        Event::MessageReceived { message } => (message.text == "still here").then_some(()),
        _ => None,
    });
    reason
}
