//! Logging of things a hostile host or a broken network can repeat at will (junk datagrams,
//! junk connections): the first occurrence is logged, then at most one line per interval
//! saying how many more there were, so that a flood cannot also flood the log.

use std::time::{Duration, Instant};

/// How often each kind of junk is logged, at most.
pub const JUNK_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One rate-limited log line's state.
pub struct LogLimit {
    interval: Duration,
    last_line: Option<Instant>,
    since_last_line: u64,
}

impl LogLimit {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> LogLimit {
        LogLimit { interval, last_line: None, since_last_line: 0 }
    }

    /// Counts one occurrence; when a line is due, returns how many occurred since the
    /// previous line (this one included).
    pub fn tick(&mut self, now: Instant) -> Option<u64> {
        self.since_last_line += 1;
        if self.last_line.is_some_and(|at| now.duration_since(at) < self.interval) {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.since_last_line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_carries_the_count() {
        let mut limit = LogLimit::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limit.tick(start), Some(1));
        let quiet: Vec<_> = (1..=999).map(|ms| limit.tick(start + Duration::from_millis(ms))).collect();
        assert!(quiet.iter().all(Option::is_none));
        assert_eq!(limit.tick(start + Duration::from_secs(10)), Some(1000));
        assert_eq!(limit.tick(start + Duration::from_secs(11)), None);
    }
}
