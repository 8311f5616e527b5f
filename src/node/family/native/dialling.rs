//! The native family's connections over their life: dialling a peer (on a thread of its
//! own, so the hub never waits for a connect), starting a connection's threads, closing it —
//! counted as junk when it broke the rules — and the deadlines checked once a second.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::connection::{self, ConnHandle, ConnId};
use super::{ACK_TIMEOUT, CONNECT_TIMEOUT, Dial, Native, Report};
use crate::node::event::Event;
use crate::node::family::Adapter;
use crate::node::hub::core::Core;
use crate::node::{socket, threads};
use crate::protocol::frame::Frame;
use crate::protocol::ids::PeerId;
use crate::secure::Role;

impl Native {
    pub(super) fn dial(&mut self, core: &mut Core, target: Dial, addr: SocketAddr) {
        let queue = self.report_tx.clone();
        let (local, stop) = (self.local_ip, self.stop.clone());
        let spawned = threads::spawn("pigeon-connect", move || {
            let result = socket::connect(local, addr, CONNECT_TIMEOUT, &stop);
            // The family may have stopped meanwhile; the stream then just closes.
            queue.send(Report::Connected { target, result }).ok();
        });
        match spawned {
            Ok(thread) => core.workers.adopt(thread),
            Err(err) => log::error!("cannot start connect thread: {err}"),
        }
    }

    pub(super) fn on_connected(
        &mut self,
        core: &mut Core,
        target: Dial,
        result: io::Result<TcpStream>,
        now: Instant,
    ) {
        match (target, result) {
            (Dial::Peer(id), result) => {
                if self.links.get(id).is_none() {
                    return;
                }
                match result {
                    // Still being dialled until the hello: see `Conn::dialed`.
                    Ok(stream) => {
                        self.open_conn(stream, Role::Initiator, Some(id), now);
                    }
                    Err(err) => {
                        log::debug!("connect to {id} failed: {err}");
                        self.dial_failed(id, now);
                    }
                }
            }
            (Dial::Addr { .. }, Ok(stream)) => {
                self.open_conn(stream, Role::Initiator, None, now);
            }
            (Dial::Invite(joining), result) => self.invite_connected(core, *joining, result, now),
            (Dial::Addr { addr, origin }, Err(err)) => {
                core.sinks.reply(origin, Event::ConnectFailed { addr, reason: err.to_string() });
            }
        }
    }

    pub(super) fn dial_failed(&mut self, id: PeerId, now: Instant) {
        if let Some(link) = self.links.get_mut(id) {
            link.dial_failed(now);
        }
    }

    /// Starts a connection's threads and says hello; its id, unless it could not start.
    pub(super) fn open_conn(
        &mut self,
        stream: TcpStream,
        role: Role,
        dialed: Option<PeerId>,
        now: Instant,
    ) -> Option<ConnId> {
        let id = self.conns.next_id();
        let started = socket::prepare_stream(&stream)
            .and_then(|()| ConnHandle::start(id, stream, role, self.identity.clone(), &self.report_tx));
        match started {
            Ok(handle) => {
                handle.send(&Frame::Hello(self.me.clone()));
                self.conns.insert(id, handle, dialed, now);
                Some(id)
            }
            Err(err) => {
                // Also a connection reset right after connecting (the peer was dying): an
                // attempt that failed, or the peer would count as being dialled for ever.
                log::info!("connection setup failed: {err}");
                if let Some(peer) = dialed {
                    self.dial_failed(peer, now);
                }
                None
            }
        }
    }

    /// Closes a connection that broke the rules or never said hello: counted, and logged at
    /// a limited rate.
    pub(super) fn close_junk(&mut self, core: &mut Core, id: ConnId, reason: &str, now: Instant) {
        let from = self.conns.get(id).map(|conn| conn.handle.remote.to_string()).unwrap_or_default();
        self.conns.count_junk(&from, reason, now);
        self.close_conn(core, id, reason, now);
    }

    /// Closes a connection without waiting for its threads. If we dialled it and its hello
    /// never came, that attempt failed; what was in flight on it goes out again on another.
    pub(super) fn close_conn(&mut self, core: &mut Core, id: ConnId, reason: &str, now: Instant) {
        let Some(conn) = self.conns.remove(id) else { return };
        if let Some(joining) = self.joining.remove(&id) {
            let error =
                format!("the connection to {} ended before it said who it is: {reason}", joining.invite.name);
            core.fail(joining.origin, None, &error);
        }
        log::debug!("connection {} to {} closed: {reason}", id.0, conn.handle.remote);
        if let Some(dialed) = conn.dialed.filter(|_| conn.peer.is_none()) {
            self.dial_failed(dialed, now);
        }
        core.workers.adopt_all(conn.handle.close());
        self.in_flight.retain(|on| *on != id);
        let Some(peer) = conn.peer else { return };
        if let Some(link) = self.links.get_mut(peer)
            && link.conn == Some(id)
        {
            link.conn = None;
            self.deliver(core, peer, now);
        }
    }

    pub(super) fn housekeeping(&mut self, core: &mut Core, now: Instant) {
        let stale: std::collections::BTreeSet<ConnId> = self
            .in_flight
            .overdue(now, ACK_TIMEOUT)
            .into_iter()
            .filter_map(|msg_id| self.in_flight.route(msg_id).copied())
            .collect();
        for conn in stale {
            self.close_conn(core, conn, "acknowledgement timed out", now);
        }
        let hello = connection::HELLO_TIMEOUT.as_secs();
        for conn in self.conns.late_hellos(now) {
            self.close_junk(core, conn, &format!("no hello within {hello} s"), now);
        }
    }
}
