//! Waking whoever keeps Pigeon's state: the window once it exists, and before that (a start
//! hidden in the tray, whose window has never been opened) the plain loop that runs the same
//! state without one. The threads that hand the window something (node events, tray clicks,
//! notifications, idle changes, later starts) wake through this, not through egui, so that
//! they work the same with or without a window.

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use eframe::egui;

/// A handle to wake the window, or the loop standing in for it; cheap to clone.
#[derive(Clone, Default)]
pub struct Wake(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// The window, once it is there: from then on waking is asking it for a frame.
    window: OnceLock<egui::Context>,
    /// Before the window: the earliest moment the loop is wanted.
    due: Mutex<Option<Instant>>,
    bell: Condvar,
}

impl Wake {
    /// Wants a look now.
    pub fn now(&self) {
        self.after(Duration::ZERO);
    }

    /// Wants a look in `delay` at the latest.
    pub fn after(&self, delay: Duration) {
        if let Some(ctx) = self.0.window.get() {
            return ctx.request_repaint_after(delay);
        }
        let at = Instant::now() + delay;
        let mut due = self.0.due.lock().unwrap_or_else(PoisonError::into_inner);
        if due.is_none_or(|due| at < due) {
            *due = Some(at);
            self.0.bell.notify_all();
        }
        drop(due);
        // The window may have come between the look above and the lock.
        if let Some(ctx) = self.0.window.get() {
            ctx.request_repaint_after(delay);
        }
    }

    /// From now on, waking asks `ctx` for a frame.
    pub fn attach(&self, ctx: &egui::Context) {
        if self.0.window.set(ctx.clone()).is_err() {
            log::warn!("a second window for the same state; it is not woken");
        }
        ctx.request_repaint();
    }

    /// Waits until someone wants a look (the loop without a window), at most `longest`.
    pub fn sleep(&self, longest: Duration) {
        let until = Instant::now() + longest;
        let mut due = self.0.due.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            let wake_at = due.map_or(until, |due| due.min(until));
            if wake_at <= now {
                if due.is_some_and(|due| due <= now) {
                    *due = None;
                }
                return;
            }
            due = self.0.bell.wait_timeout(due, wake_at - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_from_another_thread_ends_the_sleep_and_is_used_up() {
        let wake = Wake::default();
        let waker = wake.clone();
        let started = Instant::now();
        let thread = std::thread::Builder::new().name("waker".into()).spawn(move || waker.now()).unwrap();
        wake.sleep(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(30));
        thread.join().unwrap();
        let again = Instant::now();
        wake.sleep(Duration::from_millis(50));
        assert!(again.elapsed() >= Duration::from_millis(50), "the wake was used up by the first sleep");
    }

    #[test]
    fn the_earliest_of_two_delays_wins() {
        let wake = Wake::default();
        wake.after(Duration::from_secs(3600));
        wake.after(Duration::from_millis(20));
        let started = Instant::now();
        wake.sleep(Duration::from_secs(30));
        let slept = started.elapsed();
        assert!(slept >= Duration::from_millis(15) && slept < Duration::from_secs(30), "slept {slept:?}");
    }
}
