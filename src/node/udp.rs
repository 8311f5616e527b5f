//! The receiving half of every UDP socket (native discovery, IP Messenger): a thread that
//! decodes each datagram and hands it on, counting what did not decode and what found the
//! hub's queue full. Datagrams are droppable by nature (discovery repeats itself, IP
//! Messenger resends), so a busy hub never makes this thread wait: the kernel's buffer and
//! this thread keep draining the socket whatever the hub is doing.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::TrySendError;

use super::doorbell::Bell;

use super::log_limit::{JUNK_LOG_INTERVAL, LogLimit};
use super::threads::StopFlag;
use crate::protocol::error::DecodeError;

/// Counters the receiver threads update and the hub reports in `Stats` events.
#[derive(Default)]
pub struct Counters {
    /// Datagrams dropped because they did not decode.
    pub malformed_datagrams: AtomicU64,
    /// Datagrams decoded and handed to the hub.
    pub datagrams: AtomicU64,
    /// Datagrams decoded and dropped because the hub's queue was full.
    pub dropped_datagrams: AtomicU64,
}

impl Counters {
    /// Adds these counts to `stats`.
    pub fn add_to(&self, stats: &mut crate::node::event::Stats) {
        stats.datagrams += self.datagrams.load(Ordering::Relaxed);
        stats.malformed_datagrams += self.malformed_datagrams.load(Ordering::Relaxed);
        stats.dropped_datagrams += self.dropped_datagrams.load(Ordering::Relaxed);
    }
}

/// A decoded datagram, and whether the hub must hear of it at once.
pub struct Decoded<T> {
    /// What goes to the hub.
    pub report: T,
    /// Whether to wake the hub for it. A heartbeat can wait for the hub's next turn (within
    /// a second): at 25 heartbeats a second, waking the hub for each cost more than all the
    /// rest of the work on them.
    pub urgent: bool,
}

/// A datagram's source as a family's decoder takes it.
pub trait Source: Copy + std::fmt::Display {
    /// `addr` as this kind of source; none: not for this family (an IPv4-only family's
    /// decoder never sees an IPv6 source).
    fn of(addr: SocketAddr) -> Option<Self>;
}

impl Source for SocketAddr {
    fn of(addr: SocketAddr) -> Option<Self> {
        Some(addr)
    }
}

impl Source for SocketAddrV4 {
    fn of(addr: SocketAddr) -> Option<Self> {
        match addr {
            SocketAddr::V4(addr) => Some(addr),
            SocketAddr::V6(_) => None,
        }
    }
}

/// Receives on `socket` until `stop` is raised, handing what `decode` makes of each datagram
/// (at most `max_len` bytes) to `queue` without ever waiting for room.
pub fn receive_loop<T, A: Source>(
    socket: &UdpSocket,
    queue: &Bell<T>,
    stop: &StopFlag,
    counters: &Counters,
    max_len: usize,
    decode: impl Fn(A, &[u8]) -> Result<Decoded<T>, DecodeError>,
) {
    let mut buf = vec![0u8; max_len + 1];
    let mut junk_log = LogLimit::new(JUNK_LOG_INTERVAL);
    let mut full_log = LogLimit::new(JUNK_LOG_INTERVAL);
    while !stop.is_raised() {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                log::debug!("datagram receive: {err}");
                continue;
            }
        };
        if stop.is_raised() {
            return;
        }
        let Some(from) = A::of(from) else { continue };
        let bytes = buf.get(..len).unwrap_or_default();
        match decode(from, bytes) {
            Ok(Decoded { report, urgent }) => {
                match if urgent { queue.try_send(report) } else { queue.try_send_quietly(report) } {
                    Ok(()) => {
                        counters.datagrams.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Full(_)) => {
                        counters.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
                        if let Some(count) = full_log.tick(Instant::now()) {
                            log::info!("dropped {count} datagram(s): the hub is not keeping up");
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(err) => {
                counters.malformed_datagrams.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = junk_log.tick(Instant::now()) {
                    log::info!("dropped {count} malformed datagram(s), the last from {from}: {err}");
                }
            }
        }
    }
}
