//! When we tell the subnet we are here: three announces at start (0, 0.25 and 1.25 s, so
//! discovery survives lost datagrams), then a heartbeat every interval. The interval is the
//! one our presence announces — peers drop us after [`MISSED_HEARTBEATS`] of them — so it is
//! kept whatever else the node does: a heartbeat sent late does not push the next one back,
//! and each is moved by a little random jitter so that hosts started together (after a power
//! cut) do not stay in lock-step and hit the air at the same instant for ever.
//!
//! Time is passed in: the schedule is tested with simulated time, late callers included.

use std::time::{Duration, Instant};

use crate::protocol::announce::HEARTBEAT_SECS;

/// A node starts with one announce per entry, each followed by this pause: announces at 0,
/// 0.25 and 1.25 s make discovery survive lost datagrams without waiting for heartbeats.
const STARTUP_ANNOUNCES: [Duration; 3] =
    [Duration::from_millis(250), Duration::from_secs(1), HEARTBEAT_INTERVAL];

/// How often a node repeats its presence once started, while the subnet holds at most
/// [`SUBNET_HEARTBEATS`] × 2 nodes.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(HEARTBEAT_SECS as u64);

/// Heartbeats per second all nodes of a subnet send together, at most: beyond 50 nodes each
/// one slows down, so every host receives at most this many per second however many there
/// are (docs/ARCHITECTURE.md, "Discovery and its traffic").
pub const SUBNET_HEARTBEATS: usize = 25;

/// The slowest heartbeat, so that even on a huge subnet a vanished peer goes within 2 min.
const MAX_HEARTBEAT_SECS: u16 = 30;

/// Heartbeats a peer may miss before it is dropped.
pub const MISSED_HEARTBEATS: u32 = 4;

/// A peer with the usual heartbeat that is silent for this long is dropped: four heartbeats
/// missed. With the housekeeping interval this bounds the time a crashed peer stays listed
/// to 9 s.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(MISSED_HEARTBEATS as u64 * HEARTBEAT_SECS as u64);

/// Each gap between heartbeats is the interval moved by up to this share either way: hosts
/// that started together drift apart within a few beats, the mean gap stays the interval,
/// and no gap comes near the four intervals a peer waits before dropping us.
const JITTER: f64 = 0.1;

/// Our heartbeat interval, in whole seconds, when `nodes` (us included) share the subnet.
pub fn heartbeat_secs(nodes: usize) -> u16 {
    let secs = nodes.div_ceil(SUBNET_HEARTBEATS);
    u16::try_from(secs).unwrap_or(u16::MAX).clamp(HEARTBEAT_SECS, MAX_HEARTBEAT_SECS)
}

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A start-up announce (peers answer it).
    Announce,
    /// A heartbeat.
    Heartbeat,
}

/// The schedule. See the module doc.
pub struct Schedule {
    /// Start-up announces still to send, each with the pause after it.
    startup_left: std::slice::Iter<'static, Duration>,
    /// When the next datagram is due.
    next: Instant,
    /// State of the jitter's generator (xorshift64*).
    rng: u64,
}

impl Schedule {
    /// A schedule whose first announce is due at `now`; `seed` makes its jitter its own.
    pub fn new(now: Instant, seed: u64) -> Schedule {
        Schedule { startup_left: STARTUP_ANNOUNCES.iter(), next: now, rng: seed.max(1) }
    }

    /// When the next datagram is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// What to send at `now`, if anything is due; `interval` is the heartbeat interval our
    /// presence announces now.
    pub fn due(&mut self, now: Instant, interval: Duration) -> Option<Due> {
        if now < self.next {
            return None;
        }
        if let Some(pause) = self.startup_left.next() {
            self.next = self.following(now, *pause);
            return Some(Due::Announce);
        }
        let pause = self.jittered(interval);
        self.next = self.following(now, pause);
        Some(Due::Heartbeat)
    }

    /// When the next datagram is due, `pause` after this one: counted from when this one
    /// was due, not from when we got to it (a busy start does not stretch the schedule);
    /// never a burst to catch up.
    fn following(&self, now: Instant, pause: Duration) -> Instant {
        let following = self.next + pause;
        if following > now { following } else { now + pause }
    }

    fn jittered(&mut self, interval: Duration) -> Duration {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let random = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        #[allow(clippy::cast_precision_loss, reason = "53 random bits fit an f64 exactly")]
        let unit = random as f64 / (1u64 << 53) as f64;
        interval.mul_f64(1.0 + JITTER * (2.0 * unit - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn heartbeats_slow_down_so_a_subnet_carries_at_most_25_per_second() {
        assert_eq!(heartbeat_secs(1), HEARTBEAT_SECS);
        assert_eq!(heartbeat_secs(50), HEARTBEAT_SECS);
        assert_eq!(heartbeat_secs(51), 3);
        assert_eq!(heartbeat_secs(250), 10);
        assert_eq!(heartbeat_secs(1_000_000), MAX_HEARTBEAT_SECS);
        // Up to 750 nodes (three /24s' worth) the cap holds exactly.
        for nodes in 1..=750u16 {
            let per_second = f64::from(nodes) / f64::from(heartbeat_secs(nodes.into()));
            assert!(per_second <= 25.0, "{nodes} nodes send {per_second} heartbeats per second");
        }
    }

    /// Runs a schedule from `start` for `beats` heartbeats, polled at the instants `poll`
    /// picks after each due time (a busy hub is late); returns when each heartbeat went out.
    fn run(
        seed: u64,
        start: Instant,
        beats: usize,
        mut lateness: impl FnMut(usize) -> Duration,
    ) -> Vec<Instant> {
        let mut schedule = Schedule::new(start, seed);
        let mut sent = Vec::new();
        let mut polls = 0;
        while sent.len() < beats {
            let now = schedule.next() + lateness(polls);
            polls += 1;
            if schedule.due(now, HEARTBEAT_INTERVAL) == Some(Due::Heartbeat) {
                sent.push(now);
            }
        }
        sent
    }

    fn gaps(sent: &[Instant]) -> Vec<f64> {
        sent.windows(2).map(|pair| (pair[1] - pair[0]).as_secs_f64()).collect()
    }

    #[test]
    fn start_up_announces_come_first_then_heartbeats_at_the_announced_interval() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 7);
        let mut announces = Vec::new();
        let mut now = start;
        while let Some(Due::Announce) = schedule.due(now, HEARTBEAT_INTERVAL) {
            announces.push(now - start);
            now = schedule.next();
        }
        assert_eq!(announces, [Duration::ZERO, Duration::from_millis(250), Duration::from_millis(1250)]);
        // A start so busy that the second announce goes out 0.7 s late: the third still goes
        // out at 1.25 s.
        let mut busy = Schedule::new(start, 7);
        assert_eq!(busy.due(start, HEARTBEAT_INTERVAL), Some(Due::Announce));
        assert_eq!(busy.due(start + Duration::from_millis(950), HEARTBEAT_INTERVAL), Some(Due::Announce));
        assert_eq!(busy.next(), start + Duration::from_millis(1250));
        let sent = run(7, start, 1000, |_| Duration::ZERO);
        let gaps = gaps(&sent);
        assert!(gaps.iter().all(|gap| (1.8..=2.2).contains(gap)), "{gaps:?}");
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 2.0).abs() < 0.02, "mean gap {mean} s, announced 2 s");
    }

    #[test]
    fn a_late_hub_does_not_push_heartbeats_back_nor_burst_to_catch_up() {
        let start = Instant::now();
        // The hub gets to the timer up to 0.9 s late, by a pattern of its own.
        let late = |poll: usize| Duration::from_millis(u64::try_from((poll * 7919) % 900).unwrap());
        let sent = run(11, start, 500, late);
        let gaps = gaps(&sent);
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 2.0).abs() < 0.05, "mean gap {mean} s: the announced interval is not kept");
        assert!(gaps.iter().all(|gap| *gap <= 2.2 + 0.9), "a gap longer than the jitter and the lateness");
        assert!(gaps.iter().all(|gap| *gap >= 0.9), "a burst: {gaps:?}");
        // Far behind (the hub stalled for 20 s): one heartbeat, then the usual pace.
        let mut schedule = Schedule::new(start, 3);
        let mut now = start;
        while schedule.due(now, HEARTBEAT_INTERVAL) == Some(Due::Announce) {
            now = schedule.next();
        }
        let stalled = now + 20 * SECOND;
        assert_eq!(schedule.due(stalled, HEARTBEAT_INTERVAL), Some(Due::Heartbeat));
        assert_eq!(schedule.due(stalled, HEARTBEAT_INTERVAL), None);
        assert!(schedule.next() >= stalled + Duration::from_millis(1800));
    }

    #[test]
    fn hosts_started_together_drift_apart() {
        let start = Instant::now();
        let hosts: Vec<Vec<Instant>> =
            (1..=20).map(|seed| run(seed, start, 30, |_| Duration::ZERO)).collect();
        // Where in the 2 s cycle each host's 30th heartbeat falls: spread out, not one instant.
        let phases: Vec<f64> = hosts.iter().map(|sent| (sent[29] - start).as_secs_f64() % 2.0).collect();
        let spread =
            phases.iter().copied().fold(f64::MIN, f64::max) - phases.iter().copied().fold(f64::MAX, f64::min);
        assert!(spread > 0.5, "phases {phases:?}");
    }
}
