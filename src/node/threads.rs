//! Named threads, stop flags, and the list of threads the hub has let go of, so every thread
//! shows up by name in a debugger or `top -H`, every blocking loop has a way to end, and the
//! hub never waits for a thread to finish (it hands the thread to [`Workers`] instead).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts a named thread.
pub fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(body)
}

/// Raised once to ask threads to stop: the node's (every I/O thread holds it) or one
/// worker's (cancelling a transfer). Threads that block with a timeout check it on each
/// wake-up.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<Raised>);

#[derive(Default)]
struct Raised {
    flag: AtomicBool,
    /// For [`StopFlag::wait`]: raising wakes the waiters.
    lock: Mutex<()>,
    bell: Condvar,
}

impl StopFlag {
    /// Asks every holder to stop.
    pub fn raise(&self) {
        self.0.flag.store(true, Ordering::Release);
        let _held = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.0.bell.notify_all();
    }

    /// Whether stopping was asked for.
    pub fn is_raised(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
    }

    /// Waits `time`, or less if stopping is asked for meanwhile; returns whether it was.
    pub fn wait(&self, time: Duration) -> bool {
        let until = Instant::now() + time;
        let mut held = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if self.is_raised() || left.is_zero() {
                return self.is_raised();
            }
            held = self.0.bell.wait_timeout(held, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// Joins threads, logging (not propagating) a panic: shutdown must finish regardless.
pub fn join_all(threads: impl IntoIterator<Item = JoinHandle<()>>) {
    for thread in threads {
        let name = thread.thread().name().unwrap_or("?").to_owned();
        if thread.join().is_err() {
            log::error!("thread {name} panicked");
        }
    }
}

/// How often [`Workers::join_until`] looks again at threads still running.
const JOIN_POLL: Duration = Duration::from_millis(10);

/// Threads that were told to stop (or that end by themselves) and are joined once they
/// have finished: the hub never blocks on a thread, even one stuck in a connect.
#[derive(Default)]
pub struct Workers {
    running: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Takes a thread to join when it finishes.
    pub fn adopt(&mut self, thread: JoinHandle<()>) {
        self.running.push(thread);
    }

    /// Takes threads to join when they finish.
    pub fn adopt_all(&mut self, threads: impl IntoIterator<Item = JoinHandle<()>>) {
        self.running.extend(threads);
    }

    /// Joins the threads that have finished; never waits.
    pub fn reap(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.running).into_iter().partition(JoinHandle::is_finished);
        self.running = running;
        join_all(done);
    }

    /// Whether every thread let go of was joined.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// At shutdown: joins threads as they finish until `deadline`, then lets the rest go
    /// (they were told to stop and end by themselves; the process may exit first). Returns
    /// how many were let go.
    pub fn join_until(&mut self, deadline: Instant) -> usize {
        loop {
            self.reap();
            if self.running.is_empty() || Instant::now() >= deadline {
                break;
            }
            // Threads offer no "finished" notification to wait on; a short, bounded poll.
            crossbeam_channel::after(JOIN_POLL).recv().ok();
        }
        for thread in &self.running {
            log::warn!(
                "thread {} still running at shutdown; not waiting for it",
                thread.thread().name().unwrap_or("?")
            );
        }
        std::mem::take(&mut self.running).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_the_flag_is_raised_elsewhere_and_runs_out_otherwise() {
        let stop = StopFlag::default();
        assert!(!stop.wait(Duration::from_millis(20)), "nobody raised it");
        let raiser = stop.clone();
        let thread = spawn("raiser", move || raiser.raise()).unwrap();
        let started = Instant::now();
        assert!(stop.wait(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(60));
        thread.join().unwrap();
    }

    #[test]
    fn shutdown_joins_finished_threads_and_lets_stuck_ones_go() {
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        let mut workers = Workers::default();
        let stuck = spawn("test-stuck", move || {
            released.recv().ok();
        })
        .unwrap();
        let quick = spawn("test-quick", || {}).unwrap();
        workers.adopt_all([stuck, quick]);
        // The quick one is joined as it finishes; the stuck one is let go at the deadline.
        assert_eq!(workers.join_until(Instant::now() + Duration::from_millis(300)), 1);
        workers.reap();
        drop(release);
    }
}
