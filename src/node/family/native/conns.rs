//! The native family's open connections, and the rules that keep junk from costing more
//! than a bounded amount: at most [`MAX_CONNECTIONS`] open; at most [`MAX_UNGREETED`]
//! waiting for their hello, the oldest making room for a new one; a hello within
//! [`HELLO_TIMEOUT`] of connecting, however slowly the bytes trickle in. Junk closed under
//! these rules is counted and logged at a limited rate.
//!
//! The table is generic over the connection's handle so that the rules are tested with time
//! passed in and no sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::connection::{ConnId, HELLO_TIMEOUT};
use crate::node::log_limit::{JUNK_LOG_INTERVAL, LogLimit};
use crate::protocol::ids::PeerId;
use crate::secure::Session;

/// Open connections beyond this are refused at accept, so junk connections cannot exhaust
/// file descriptors or threads.
pub const MAX_CONNECTIONS: usize = 512;

/// Connections that have not said hello yet, at most. A new one beyond this closes the oldest
/// of them: a real peer says hello within milliseconds of connecting, so a flood of silent or
/// junk connections can neither exhaust threads nor keep real peers out.
pub const MAX_UNGREETED: usize = 64;

/// One open connection.
pub struct Conn<H> {
    /// Its threads and write queue.
    pub handle: H,
    /// The peer at the other end, once its hello arrived.
    pub peer: Option<PeerId>,
    /// The encrypted session, once the handshake finished.
    pub session: Option<Arc<Session>>,
    /// When it was opened: without a hello within [`HELLO_TIMEOUT`] of this it is closed.
    pub opened: Instant,
    /// The peer we connected to, for a connection we opened: until its hello arrives the
    /// peer counts as still being dialled.
    pub dialed: Option<PeerId>,
}

/// The open connections. See the module doc.
pub struct Connections<H> {
    conns: HashMap<ConnId, Conn<H>>,
    /// Connections opened since start (the next id).
    opened: u64,
    /// Connections closed for breaking the rules.
    junk: u64,
    /// Rate limit of the log line about them.
    junk_log: LogLimit,
}

impl<H> Default for Connections<H> {
    fn default() -> Self {
        Connections { conns: HashMap::new(), opened: 0, junk: 0, junk_log: LogLimit::new(JUNK_LOG_INTERVAL) }
    }
}

impl<H> Connections<H> {
    /// The id the next connection gets.
    pub fn next_id(&mut self) -> ConnId {
        let id = ConnId(self.opened);
        self.opened += 1;
        id
    }

    /// A connection was opened at `now` (by us to `dialed`, or by the other end).
    pub fn insert(&mut self, id: ConnId, handle: H, dialed: Option<PeerId>, now: Instant) {
        self.conns.insert(id, Conn { handle, peer: None, session: None, opened: now, dialed });
    }

    /// Whether another connection may be accepted.
    pub fn has_room(&self) -> bool {
        self.conns.len() < MAX_CONNECTIONS
    }

    /// The connection to close so that a new one may wait for its hello: the oldest of
    /// those waiting, when [`MAX_UNGREETED`] wait already.
    pub fn to_make_room(&self) -> Option<ConnId> {
        let ungreeted = self.conns.iter().filter(|(_, conn)| conn.peer.is_none());
        if ungreeted.clone().count() < MAX_UNGREETED {
            return None;
        }
        ungreeted.min_by_key(|(_, conn)| conn.opened).map(|(id, _)| *id)
    }

    /// Whether some connection still waits for its hello.
    pub fn has_ungreeted(&self) -> bool {
        self.conns.values().any(|conn| conn.peer.is_none())
    }

    /// Connections still without hello [`HELLO_TIMEOUT`] after they opened.
    pub fn late_hellos(&self, now: Instant) -> Vec<ConnId> {
        self.conns.iter().filter(|(_, conn)| is_late(conn, now)).map(|(id, _)| *id).collect()
    }

    /// Whether a connection that ended by itself was junk: it never said hello in time.
    pub fn was_silent(&self, id: ConnId, now: Instant) -> bool {
        self.conns.get(&id).is_some_and(|conn| is_late(conn, now))
    }

    /// Counts a connection closed as junk and logs it, at a limited rate.
    pub fn count_junk(&mut self, from: &dyn std::fmt::Display, reason: &str, now: Instant) {
        self.junk += 1;
        if let Some(count) = self.junk_log.tick(now) {
            log::info!("closed {count} junk connection(s), the last from {from}: {reason}");
        }
    }

    /// A connection.
    pub fn get(&self, id: ConnId) -> Option<&Conn<H>> {
        self.conns.get(&id)
    }

    /// A connection, to change.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<H>> {
        self.conns.get_mut(&id)
    }

    /// Takes a connection out of the table.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<H>> {
        self.conns.remove(&id)
    }

    /// Takes every connection out (shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = (ConnId, Conn<H>)> + '_ {
        self.conns.drain()
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Connections opened since start.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Connections closed as junk since start.
    pub fn junk(&self) -> u64 {
        self.junk
    }
}

fn is_late<H>(conn: &Conn<H>, now: Instant) -> bool {
    conn.peer.is_none() && now.duration_since(conn.opened) >= HELLO_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_oldest_waiting_connection_makes_room_and_a_hello_is_due_from_connect() {
        let start = Instant::now();
        let mut conns: Connections<()> = Connections::default();
        for n in 0..MAX_UNGREETED {
            let id = conns.next_id();
            conns.insert(id, (), None, start + Duration::from_millis(u64::try_from(n).unwrap()));
        }
        // A greeted connection never counts against the ungreeted.
        let greeted = conns.next_id();
        conns.insert(greeted, (), None, start);
        conns.get_mut(greeted).unwrap().peer = Some(PeerId::from_bytes([1; 16]));
        assert_eq!(conns.to_make_room(), Some(ConnId(0)));
        conns.remove(ConnId(0));
        assert_eq!(conns.to_make_room(), None);
        // A slow-loris is late however its bytes trickle: the clock runs from connect.
        assert!(conns.late_hellos(start + HELLO_TIMEOUT - Duration::from_millis(1)).is_empty());
        let late = conns.late_hellos(start + HELLO_TIMEOUT + Duration::from_millis(1));
        assert_eq!(late, [ConnId(1)], "only the one opened within the first millisecond is late yet");
        assert!(conns.was_silent(ConnId(1), start + HELLO_TIMEOUT + Duration::from_millis(1)));
        conns.count_junk(&"10.0.0.9:4000", "no hello", start);
        assert_eq!((conns.junk(), conns.opened(), conns.len()), (1, 65, 64));
    }
}
