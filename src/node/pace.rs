//! Speed limits on what this node sends (the user's setting: KB/s per transfer, and for all
//! transfers together), so that a big send leaves room on a slow Wi-Fi. Every family's
//! sending worker counts its bytes through its [`Meter`](super::worker::Meter), which asks
//! here how long to wait: a virtual-time bucket (GCRA) per transfer and one for the node,
//! with a fifth of a second of burst. Waiting is sleeping on the worker's stop flag (a
//! cancel ends it at once), never spinning; and a limited sender cuts its reads to a tenth of a
//! second's worth, so the other side sees a steady trickle rather than one big chunk and a
//! long silence (which its stall timeout would take for a dead link).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::threads::StopFlag;

/// Bytes one KB/s stands for, per second.
pub const KB: u64 = 1024;

/// How far ahead of its rate a sender may run (bytes worth this much time).
const BURST: Duration = Duration::from_millis(200);

/// A limited sender reads and sends this much time's worth at once.
const SLICE_TIME_PER_SEC: u64 = 10;

/// The smallest piece a limited sender cuts (framing costs stay small).
const MIN_SLICE: usize = 4 * 1024;

/// The node's limits, changed while it runs; 0: none.
#[derive(Default)]
pub struct SpeedLimits {
    per_transfer: AtomicU64,
    total: AtomicU64,
    all: Mutex<Bucket>,
}

impl SpeedLimits {
    /// Changes the limits (KB/s, 0: none); running transfers follow at their next piece.
    pub fn set(&self, per_transfer_kbps: u64, total_kbps: u64) {
        self.per_transfer.store(per_transfer_kbps.saturating_mul(KB), Ordering::Relaxed);
        self.total.store(total_kbps.saturating_mul(KB), Ordering::Relaxed);
    }

    fn rates(&self) -> (u64, u64) {
        (self.per_transfer.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

/// A virtual-time bucket: when the bytes taken so far are due at the rate.
#[derive(Default)]
pub struct Bucket {
    due: Option<Instant>,
}

impl Bucket {
    /// Takes `bytes` at `rate` (bytes per second, 0: unlimited) at `now`; returns how long
    /// to wait before going on.
    fn take(&mut self, bytes: u64, rate: u64, now: Instant) -> Duration {
        if rate == 0 {
            self.due = None;
            return Duration::ZERO;
        }
        #[expect(clippy::cast_precision_loss, reason = "byte counts and rates far below 2^52")]
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let due = self.due.map_or(now, |due| due.max(now)) + cost;
        self.due = Some(due);
        due.saturating_duration_since(now + BURST)
    }
}

/// A sending worker's pacing: the node's limits and the worker's stop flag.
#[derive(Clone)]
pub struct Pace {
    limits: Arc<SpeedLimits>,
    stop: StopFlag,
}

impl Pace {
    /// Paces by `limits`; a wait ends early when `stop` is raised.
    pub fn new(limits: Arc<SpeedLimits>, stop: StopFlag) -> Pace {
        Pace { limits, stop }
    }

    /// `bytes` were sent for the transfer whose bucket is `own`: sleeps as long as the
    /// limits want.
    pub fn sent(&self, bytes: u64, own: &Mutex<Bucket>) {
        let (per_transfer, total) = self.limits.rates();
        if per_transfer == 0 && total == 0 {
            return;
        }
        let now = Instant::now();
        let own_wait = own.lock().unwrap_or_else(PoisonError::into_inner).take(bytes, per_transfer, now);
        let all_wait = self.limits.all.lock().unwrap_or_else(PoisonError::into_inner).take(bytes, total, now);
        self.stop.wait(own_wait.max(all_wait));
    }

    /// How much a sender should read and send at once, at most `len`.
    pub fn slice(&self, len: usize) -> usize {
        let rate = match self.limits.rates() {
            (0, 0) => return len,
            (0, rate) | (rate, 0) => rate,
            (one, other) => one.min(other),
        };
        let slice = usize::try_from(rate / SLICE_TIME_PER_SEC).unwrap_or(usize::MAX);
        slice.clamp(MIN_SLICE, len.max(MIN_SLICE)).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_transfer_kbps: u64, total_kbps: u64) -> Arc<SpeedLimits> {
        let limits = Arc::new(SpeedLimits::default());
        limits.set(per_transfer_kbps, total_kbps);
        limits
    }

    #[test]
    fn a_bucket_lets_a_burst_through_then_asks_to_wait_at_the_rate() {
        let mut bucket = Bucket::default();
        let now = Instant::now();
        // 100 KB at 1000 KB/s is 0.1 s: within the burst.
        assert_eq!(bucket.take(100 * KB, 1000 * KB, now), Duration::ZERO);
        // Another 200 KB at once: due at 0.3 s, 0.1 s past the burst.
        let wait = bucket.take(200 * KB, 1000 * KB, now);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Much later the debt is gone: no credit is saved up beyond the burst either.
        let later = now + Duration::from_secs(10);
        assert_eq!(bucket.take(100 * KB, 1000 * KB, later), Duration::ZERO);
        let wait = bucket.take(1000 * KB, 1000 * KB, later);
        assert!((wait.as_secs_f64() - 0.9).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn no_limit_means_no_wait_and_whole_pieces() {
        let pace = Pace::new(limits(0, 0), StopFlag::default());
        assert_eq!(pace.slice(1 << 20), 1 << 20);
        let mut bucket = Bucket::default();
        assert_eq!(bucket.take(u64::MAX, 0, Instant::now()), Duration::ZERO);
    }

    #[test]
    fn a_limited_sender_cuts_a_tenth_of_a_second_of_the_lower_limit() {
        let pace = Pace::new(limits(500, 100), StopFlag::default());
        assert_eq!(pace.slice(1 << 20), 10 * 1024);
        let slow = Pace::new(limits(1, 0), StopFlag::default());
        assert_eq!(slow.slice(1 << 20), MIN_SLICE);
        assert_eq!(slow.slice(100), 100);
    }

    #[test]
    fn a_raised_stop_ends_the_wait() {
        let stop = StopFlag::default();
        stop.raise();
        let pace = Pace::new(limits(1, 0), stop);
        let started = Instant::now();
        pace.sent(1 << 30, &Mutex::default());
        assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    }
}
