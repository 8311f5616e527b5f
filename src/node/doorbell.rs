//! How threads wake the hub. Every queue into the hub is a bounded channel whose sending end
//! rings the hub's doorbell after each send; the hub takes what is queued and, when every
//! queue is empty, parks until the bell rings or its next timer is due.
//!
//! Why not wait on all the channels with crossbeam's `Select`: before it sleeps, a select
//! spins and yields the processor several times, and measured at 100 hosts (25 heartbeats a
//! second each) that waiting cost more than all the work on the datagrams. Parking is one
//! futex wait; ringing a bell nobody is waiting at is one atomic operation.

use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendError, SendTimeoutError, Sender, TrySendError};

/// The hub's doorbell.
#[derive(Default)]
pub struct Doorbell {
    /// The hub's thread, once it answers the door.
    hub: OnceLock<Thread>,
}

impl Doorbell {
    /// Wakes the hub if it waits (a ring before it first waits is kept by its first check).
    pub fn ring(&self) {
        if let Some(hub) = self.hub.get() {
            hub.unpark();
        }
    }

    /// Called on the hub's thread before its loop: rings wake this thread from now on.
    pub fn answer_here(&self) {
        // Set once; a second hub on the same bell cannot exist.
        self.hub.set(std::thread::current()).ok();
    }

    /// On the hub's thread: sleeps until a ring or `timeout` (or spuriously; the hub looks
    /// at its queues either way).
    pub fn wait(timeout: Duration) {
        std::thread::park_timeout(timeout);
    }
}

/// The sending end of a queue into the hub: rings the doorbell after each send.
pub struct Bell<T> {
    tx: Sender<T>,
    bell: Arc<Doorbell>,
}

impl<T> Clone for Bell<T> {
    fn clone(&self) -> Self {
        Bell { tx: self.tx.clone(), bell: self.bell.clone() }
    }
}

/// A bounded queue into the hub.
pub fn queue<T>(capacity: usize, bell: &Arc<Doorbell>) -> (Bell<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    (Bell { tx, bell: bell.clone() }, rx)
}

impl<T> Bell<T> {
    /// Sends, waiting for room (the hub never waits for anyone, so room comes).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let sent = self.tx.send(value);
        self.bell.ring();
        sent
    }

    /// Sends if there is room.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let sent = self.tx.try_send(value);
        if sent.is_ok() {
            self.bell.ring();
        }
        sent
    }

    /// Sends if there is room, without ringing: for reports that can wait until the hub's
    /// next turn, which comes at its next timer at the latest (within a second).
    pub fn try_send_quietly(&self, value: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(value)
    }

    /// Sends, waiting at most `timeout` for room.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        let sent = self.tx.send_timeout(value, timeout);
        self.bell.ring();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_ring_wakes_a_waiting_hub_and_an_early_ring_is_not_lost() {
        let bell = Arc::new(Doorbell::default());
        let (tx, rx) = queue::<u32>(4, &bell);
        let hub = {
            let bell = bell.clone();
            std::thread::Builder::new()
                .name("test-hub".into())
                .spawn(move || {
                    bell.answer_here();
                    let started = Instant::now();
                    let mut got = Vec::new();
                    while got.len() < 2 && started.elapsed() < Duration::from_secs(10) {
                        match rx.try_recv() {
                            Ok(value) => got.push(value),
                            Err(_) => Doorbell::wait(Duration::from_secs(10)),
                        }
                    }
                    (got, started.elapsed())
                })
                .unwrap()
        };
        tx.send(1).unwrap();
        tx.try_send(2).unwrap();
        let (got, took) = hub.join().unwrap();
        assert_eq!(got, [1, 2]);
        assert!(took < Duration::from_secs(5), "the hub slept through the bell: {took:?}");
    }
}
