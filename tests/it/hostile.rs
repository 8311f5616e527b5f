//! Hostile and broken traffic, on private loopback addresses: a flood of junk datagrams at
//! the discovery port and hundreds of junk TCP connections (silent, garbage, slow-loris) at
//! the chat port. The node keeps delivering between real peers with bounded CPU, drops and
//! counts the junk, logs it at a limited rate, and closes slow connections on time.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use pigeon::protocol::announce::Datagram;
use pigeon::protocol::ipmsg::IPMSG_PORT;
use pigeon::secure::Identity;

use crate::util::{Daemon, Junk, Net, cpu_time, expect_batch_delivered, heavy, presence_of, send_batch};

/// Datagrams per second at the discovery port, and for how long.
const FLOOD_RATE: u64 = 100_000;
const FLOOD_TIME: Duration = Duration::from_secs(10);

/// Junk connections of each kind: silent, garbage, slow-loris.
const JUNK_EACH: usize = 100;

/// A connection must be closed this soon after it opened without a hello: the node's 10 s
/// deadline plus its 1 s housekeeping tick, and slack for a loaded CI machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

/// Sends a mix of junk at `to` at [`FLOOD_RATE`] for [`FLOOD_TIME`] from `from`; returns how
/// many datagrams went out, how many came back (replies to forged announces), and how long
/// it took (on a busy machine the last burst runs over).
fn flood(from: Ipv4Addr, to: SocketAddrV4) -> (u64, u64, Duration) {
    let socket = UdpSocket::bind((from, 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut replies = 0u64;
    let mut reply = [0u8; 2048];
    let mut junk = Junk::new(0x5eed);
    let forger = Identity::from_private([7; 32]);
    let presence = presence_of(&forger, "mallory", 9);
    let announce = Datagram::Announce(presence).encode(&forger);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < FLOOD_TIME {
        // Pace in 1 ms steps: as many as the rate allows by now.
        let due = u64::try_from(start.elapsed().as_micros()).unwrap() * FLOOD_RATE / 1_000_000;
        while sent < due {
            let datagram = match sent % 4 {
                0 => junk.some_bytes(1300),
                1 => [&b"PIGN\x03"[..], &junk.some_bytes(200)].concat(),
                2 => {
                    // A real announce with a few bits flipped: mostly undecodable, sometimes a
                    // forged presence that still decodes.
                    let mut bytes = announce.clone();
                    for _ in 0..1 + junk.below(3) {
                        let at = junk.below(bytes.len());
                        bytes[at] ^= 1 << junk.below(8);
                    }
                    bytes
                }
                _ => b"1:1:x:y:32:hello\0".to_vec(),
            };
            // A full socket buffer or a refused datagram is part of a flood.
            socket.send_to(&datagram, to).ok();
            sent += 1;
        }
        while socket.recv_from(&mut reply).is_ok() {
            replies += 1;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
    (sent, replies, start.elapsed())
}

/// What a junk connection does.
#[derive(Clone, Copy, PartialEq)]
enum JunkKind {
    /// Connects and says nothing.
    Silent,
    /// Sends 2,000 random bytes at once.
    Garbage,
    /// Sends one byte per poll, forever.
    SlowLoris,
}

/// Holds junk connections and notes when the node closes each.
struct JunkConnections {
    conns: Vec<(TcpStream, JunkKind, Instant, Option<Duration>)>,
}

impl JunkConnections {
    /// Opens one connection of each kind given, from `from`.
    fn open(from: Ipv4Addr, to: SocketAddrV4, kinds: impl IntoIterator<Item = JunkKind>) -> JunkConnections {
        let mut junk = Junk::new(0xbad);
        let conns = kinds
            .into_iter()
            .map(|kind| {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
                socket.bind(&SocketAddrV4::new(from, 0).into()).unwrap();
                socket.connect(&to.into()).unwrap();
                let mut stream: TcpStream = socket.into();
                if kind == JunkKind::Garbage {
                    stream.write_all(&junk.bytes(2000)).ok();
                }
                stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                (stream, kind, Instant::now(), None)
            })
            .collect();
        JunkConnections { conns }
    }

    /// One round: the slow-loris ones send one more byte; every one is checked for being closed.
    fn poll(&mut self) {
        for (stream, kind, opened, closed) in &mut self.conns {
            if closed.is_some() {
                continue;
            }
            let gone = if *kind == JunkKind::SlowLoris {
                stream.write_all(b"P").is_err()
            } else {
                let mut buf = [0u8; 4096];
                // Our handshake message may arrive first; only the end of the stream counts.
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break true,
                        Ok(_) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break false,
                        Err(err) if err.kind() == std::io::ErrorKind::TimedOut => break false,
                        Err(_) => break true,
                    }
                }
            };
            if gone {
                *closed = Some(opened.elapsed());
            }
        }
    }

    /// Polls every `every` until all are closed or `deadline` has passed.
    fn poll_until_closed(&mut self, deadline: Instant, every: Duration) {
        while self.open_count() > 0 && Instant::now() < deadline {
            self.poll();
            std::thread::park_timeout(every);
        }
    }

    fn open_count(&self) -> usize {
        self.conns.iter().filter(|(_, _, _, closed)| closed.is_none()).count()
    }

    fn slowest_close(&self) -> Option<Duration> {
        self.conns.iter().filter_map(|(_, _, _, closed)| *closed).max()
    }
}

#[test]
fn a_datagram_flood_and_junk_connections_do_not_stop_real_peers() {
    let _alone = heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut ana = Daemon::start("ana", &net.flags(1, 2, &dirs.path().join("ana")));
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);
    bo.expect_peers(&[ana.id]);
    let target = SocketAddrV4::new(net.ip(1), net.port);
    let cpu_before = cpu_time(ana.pid());
    let started = Instant::now();
    let flooder = {
        let from = net.ip(9);
        std::thread::Builder::new().name("it-flood".into()).spawn(move || flood(from, target)).unwrap()
    };
    let kinds = [JunkKind::Silent, JunkKind::Garbage, JunkKind::SlowLoris];
    let mut junk = JunkConnections::open(net.ip(8), target, (0..3 * JUNK_EACH).map(|i| kinds[i % 3]));

    // Real traffic both ways while the flood runs.
    send_batch(&mut bo, ana.id, (0..50).map(|i| format!("bo {i}")));
    send_batch(&mut ana, bo.id, (0..50).map(|i| format!("ana {i}")));
    junk.poll();
    expect_batch_delivered(&mut bo, 50, FLOOD_TIME);
    expect_batch_delivered(&mut ana, 50, FLOOD_TIME);
    junk.poll_until_closed(started + FLOOD_TIME + CLOSED_WITHIN, Duration::from_millis(200));
    let (sent, replies, flooded) = flooder.join().unwrap();
    let elapsed = started.elapsed();
    let cpu = cpu_time(ana.pid()) - cpu_before;
    eprintln!(
        "flood: {sent} datagrams in {FLOOD_TIME:?} ({} per second), {replies} replies; ana used {cpu:?} of CPU \
         in {elapsed:?}; slowest junk connection closed after {:?}",
        sent / FLOOD_TIME.as_secs(),
        junk.slowest_close()
    );
    // Forged announces that still decode get replies only within the node's reply budget
    // (250 at once, then 50 per second, counted over the flood as it ran), so the node is no
    // amplifier.
    let budget = 250 + 50 * (flooded.as_secs() + 1);
    assert!(replies <= budget, "{replies} replies to forged announces in {flooded:?}, budget {budget}");
    assert_eq!(junk.open_count(), 0, "junk connections still open after {CLOSED_WITHIN:?}");
    assert!(junk.slowest_close().unwrap() <= CLOSED_WITHIN);
    // One receiving thread may be busy all the time; the rest of the node must not be.
    assert!(cpu < elapsed.mul_f64(1.25), "ana used {cpu:?} of CPU in {elapsed:?}");

    let stats = ana.wait_for_stats("junk counted", |s| {
        s.malformed_datagrams > 0 && s.bad_connections >= 3 * JUNK_EACH as u64
    });
    assert!(stats.malformed_datagrams <= sent, "{stats:?}");
    assert!(ana.peers().iter().any(|peer| peer.id == bo.id), "bo is still listed");
    // Bo's, one per direction at most: a peer counts as connecting until its hello, so
    // commands arriving during a slow handshake do not open more.
    assert!(stats.connections <= 2, "junk or redundant connections are left: {stats:?}");
    // Rate-limited: one line per 10 s of each kind of junk, whatever the volume.
    let log = ana.log();
    let lines = |what: &str| log.lines().filter(|line| line.contains(what) && line.contains("INFO")).count();
    let most = usize::try_from(elapsed.as_secs() / 10).unwrap() + 2;
    assert!(
        lines("malformed datagram") <= most,
        "{} lines about malformed datagrams",
        lines("malformed datagram")
    );
    assert!(lines("junk connection") <= most, "{} lines about junk connections", lines("junk connection"));

    // And afterwards still delivers at once.
    send_batch(&mut bo, ana.id, ["after the flood".to_owned()]);
    expect_batch_delivered(&mut bo, 1, Duration::from_secs(5));
}

#[test]
fn slow_ip_messenger_requests_are_cut_off_two_seconds_after_connecting() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let _ana = Daemon::start("ana", &net.flags(1, 1, dirs.path()));
    let to = SocketAddrV4::new(net.ip(1), IPMSG_PORT);
    // More than the node reads at once, each trickling a request a byte at a time.
    let mut conns = JunkConnections::open(net.ip(8), to, [JunkKind::SlowLoris; 40]);
    conns.poll_until_closed(Instant::now() + Duration::from_secs(10), Duration::from_millis(250));
    let slowest = if conns.open_count() > 0 { Duration::MAX } else { conns.slowest_close().unwrap() };
    // 2 s for the request, then the next write notices: a trickle cannot hold a reader.
    assert!(slowest <= Duration::from_secs(4), "a slow request was still open after {slowest:?}");
}
