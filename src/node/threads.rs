//! Named threads and the shared stop flag, so every thread shows up by name in a debugger or
//! `top -H`, and every blocking loop has a way to end.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Starts a named thread.
pub fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(body)
}

/// Set once when the node stops; threads that block with a timeout check it on each wake-up.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Asks every holder to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the node is stopping.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
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

/// Joins the threads of `handles` that have finished and keeps the others.
pub fn join_finished(handles: &mut Vec<JoinHandle<()>>) {
    let (done, running): (Vec<_>, Vec<_>) =
        std::mem::take(handles).into_iter().partition(JoinHandle::is_finished);
    *handles = running;
    join_all(done);
}
