//! Retrying after failures without hammering: each failure doubles the pause before the next
//! attempt, up to a ceiling; a success starts over. Time is passed in, so the schedule is
//! tested without sleeping.

use std::time::{Duration, Instant};

/// When the next attempt may start, and how long the pause after the next failure is.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First pause, and the one after a success.
    first: Duration,
    /// Longest pause.
    longest: Duration,
    /// Pause after the next failure.
    pause: Duration,
    /// No attempt before this.
    ready_at: Instant,
}

impl Backoff {
    /// Ready at once; pauses from `first` up to `longest`.
    pub fn new(first: Duration, longest: Duration, now: Instant) -> Backoff {
        Backoff { first, longest, pause: first, ready_at: now }
    }

    /// Whether an attempt may start at `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }

    /// An attempt failed at `now`: the next waits, twice as long as this one did.
    pub fn failed(&mut self, now: Instant) {
        self.ready_at = now + self.pause;
        self.pause = (self.pause * 2).min(self.longest);
    }

    /// An attempt succeeded: the next failure waits the first pause again.
    pub fn succeeded(&mut self) {
        self.pause = self.first;
    }

    /// Ready at `now` with the first pause (the user asked to retry).
    pub fn reset(&mut self, now: Instant) {
        self.pause = self.first;
        self.ready_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_ceiling_and_a_success_starts_over() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(250), ms(1000), start);
        assert!(backoff.is_ready(start));
        // Each failure's pause: ready again exactly then, not a millisecond before.
        let pause_after_failure = |backoff: &mut Backoff, now: Instant| {
            backoff.failed(now);
            let pause = (1..=2000).map(ms).find(|pause| backoff.is_ready(now + *pause)).unwrap();
            assert!(!backoff.is_ready(now + pause - ms(1)));
            pause
        };
        let mut now = start;
        let mut pauses = Vec::new();
        for _ in 0..4 {
            let pause = pause_after_failure(&mut backoff, now);
            pauses.push(pause);
            now += pause;
        }
        assert_eq!(pauses, [ms(250), ms(500), ms(1000), ms(1000)]);
        backoff.succeeded();
        assert_eq!(pause_after_failure(&mut backoff, now), ms(250));
        backoff.reset(now);
        assert!(backoff.is_ready(now));
    }
}
