//! Data connections of transfers between Pigeons: the receiver opens one and asks for data
//! (a fetch); the sender hands the connection — its socket and its encrypted session — to a
//! sending worker. Only the peer the files were offered to may fetch them: the handshake
//! proved its key. Any other fetch is answered with a decline that says why, then closed.

use std::time::Instant;

use super::Native;
use super::connection::ConnId;
use super::receive::{self, ReceiveJob};
use super::send::{self, SendJob};
use crate::node::hub::core::Core;
use crate::node::hub::transfers::FetchJob;
use crate::node::threads;
use crate::protocol::transfer::Fetch;

impl Native {
    /// A peer opened a data connection for a transfer we offered.
    pub(super) fn on_fetch(&mut self, core: &mut Core, conn_id: ConnId, fetch: Fetch, now: Instant) {
        let Some(conn) = self.conns.remove(conn_id) else { return };
        if let Some(dialed) = conn.dialed.filter(|_| conn.peer.is_none()) {
            self.dial_failed(dialed, now);
        }
        let remote = conn.handle.remote;
        let Some(session) = conn.session else {
            core.workers.adopt_all(conn.handle.close());
            return;
        };
        let (stream, handover) = conn.handle.release();
        let peer = session.remote().peer_id();
        let Some(job) = core.start_serving(fetch.transfer_id, peer, true) else {
            log::info!(
                "refused fetch for {} from {remote}: not an offer of ours to that peer",
                fetch.transfer_id
            );
            let refusal = send::Refusal { stream, session, handover, transfer_id: fetch.transfer_id };
            match threads::spawn("pigeon-refuse", move || send::refuse(refusal)) {
                Ok(thread) => core.workers.adopt(thread),
                Err(err) => log::error!("cannot start refusing thread: {err}"),
            }
            return;
        };
        let job = SendJob {
            stream,
            session,
            handover,
            entries: job.record.entries,
            sources: job.record.sources,
            fetch,
            stop: job.stop,
            reporter: job.reporter,
        };
        match threads::spawn("pigeon-send", move || send::send(job)) {
            Ok(thread) => core.workers.adopt(thread),
            Err(err) => log::error!("cannot start send worker: {err}"),
        }
    }

    /// Starts the receiving worker of an accepted transfer, if its sender is online.
    pub(super) fn start_receiving(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        let record = job.record;
        let link = self.links.get(record.peer).ok_or_else(|| format!("{} is not online", record.peer))?;
        let download_dir = core.saved_in(&record);
        let receive = ReceiveJob {
            id: record.id,
            peer_addr: link.tcp_addr(),
            peer: record.peer,
            identity: self.identity.clone(),
            local_ip: self.local_ip,
            entries: record.entries,
            places: job.places,
            files_done: record.files_done,
            download_dir,
            stop: job.stop,
            reporter: job.reporter,
        };
        let thread = threads::spawn("pigeon-receive", move || receive::receive(&receive))
            .map_err(|err| format!("cannot start receive worker: {err}"))?;
        core.workers.adopt(thread);
        Ok(())
    }
}
