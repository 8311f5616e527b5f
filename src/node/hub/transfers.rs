//! The hub's share of file transfers: offers and answers on the chat connection, starting
//! and stopping transfer workers, resuming after interruptions and restarts, and keeping the
//! store and the consumers informed. The bytes themselves move in `node::transfer` workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Hub, NetEvent, now_ms};
use crate::node::connection::ConnId;
use crate::node::event::{Event, TransferInfo};
use crate::node::files::{self, Scanned};
use crate::node::ipmsg_receive;
use crate::node::random_id;
use crate::node::sinks::Origin;
use crate::node::threads;
use crate::node::transfer::{self, ReceiveJob, Report, SendJob};
use crate::protocol::frame::{Frame, HEADER_LEN, MAX_OFFER_PAYLOAD};
use crate::protocol::ids::{PeerId, TransferId};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{EntryKind, Fetch, Offer, TransferDone, TransferEnd};
use crate::store::{Direction, StoreError, TransferRecord, TransferState};

/// First and longest pause before a receiver retries an interrupted transfer.
const RESUME_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(15));

/// Transfers listed by `list_transfers`.
const LISTED_TRANSFERS: usize = 100;

/// A transfer that may still move data, and its worker if one runs.
pub(super) struct LiveTransfer {
    /// As stored.
    record: TransferRecord,
    /// The running worker and its cancel flag.
    worker: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    /// Receiver: no automatic resume before this.
    retry_at: Instant,
    /// Receiver: pause before the next automatic resume.
    backoff: Duration,
    /// Sender: the connection its offer was last sent on (sent again on a new connection).
    offered_on: Option<ConnId>,
}

impl LiveTransfer {
    pub(super) fn new(record: TransferRecord) -> LiveTransfer {
        LiveTransfer {
            record,
            worker: None,
            retry_at: Instant::now(),
            backoff: RESUME_BACKOFF.0,
            offered_on: None,
        }
    }

    /// Raises the cancel flag and joins the worker (it notices within a second).
    fn stop_worker(&mut self) {
        if let Some((thread, cancel)) = self.worker.take() {
            cancel.store(true, Ordering::Relaxed);
            threads::join_all([thread]);
        }
    }
}

impl Hub {
    pub(super) fn send_files(
        &mut self,
        to: Vec<PeerId>,
        paths: Vec<PathBuf>,
        tag: Option<String>,
        origin: Origin,
    ) {
        if let Some(unknown) = to.iter().find(|peer| !self.known.contains(peer)) {
            self.fail(origin, tag, &format!("files not sent: unknown peer {unknown}"));
            return;
        }
        if to.is_empty() || paths.is_empty() {
            self.fail(origin, tag, &"files not sent: nothing to send or no recipient");
            return;
        }
        // Listing a big folder takes a while: never on the hub thread.
        let net = self.net_tx.clone();
        let spawned = threads::spawn("pigeon-scan", move || {
            let result = files::scan(&paths);
            net.send(NetEvent::Scanned { to, tag, origin, result }).ok();
        });
        match spawned {
            Ok(handle) => self.helpers.push(handle),
            Err(err) => log::error!("cannot start scan thread: {err}"),
        }
    }

    pub(super) fn on_scanned(
        &mut self,
        to: Vec<PeerId>,
        tag: Option<String>,
        origin: Origin,
        result: std::io::Result<Scanned>,
    ) {
        let scanned = match result {
            Ok(scanned) if scanned.entries.is_empty() => {
                self.fail(origin, tag, &"files not sent: nothing to send (only links or special files)");
                return;
            }
            Ok(scanned) => scanned,
            Err(err) => {
                self.fail(origin, tag, &format!("files not sent: {err}"));
                return;
            }
        };
        let probe = Offer { transfer_id: TransferId::from_bytes([0; 16]), entries: scanned.entries.clone() };
        if let Err(err) = probe.validate() {
            self.fail(origin, tag, &format!("files not sent: {err}"));
            return;
        }
        let encoded = Frame::Offer(probe).encode().len() - HEADER_LEN;
        if encoded > MAX_OFFER_PAYLOAD {
            self.fail(
                origin,
                tag,
                &format!("files not sent: the list of names takes {encoded} bytes, over {MAX_OFFER_PAYLOAD}"),
            );
            return;
        }
        for peer in to {
            let record = TransferRecord {
                id: random_id(TransferId::from_bytes),
                peer,
                direction: Direction::Outgoing,
                entries: scanned.entries.clone(),
                sources: scanned.sources.clone(),
                root_names: BTreeMap::new(),
                state: TransferState::Offered,
                files_done: 0,
                reason: String::new(),
                created_ms: now_ms(),
            };
            if let Err(err) = self.store.insert_transfer(&record) {
                self.fail(origin, tag.clone(), &err);
                continue;
            }
            self.sinks.emit(&Event::TransferAdded {
                transfer: TransferInfo::from_record(&record),
                tag: tag.clone(),
            });
            self.transfers.insert(record.id, LiveTransfer::new(record));
            self.outbox_peers.insert(peer);
            self.flush(peer);
        }
    }

    /// Sends offers still waiting for an answer on `conn` (each once per connection).
    pub(super) fn send_offers(&mut self, peer: PeerId, conn_id: ConnId) -> bool {
        let Some(conn) = self.conns.get(&conn_id) else { return false };
        let mut pending = false;
        for live in self.transfers.values_mut() {
            let record = &live.record;
            if record.peer != peer
                || record.direction != Direction::Outgoing
                || record.state != TransferState::Offered
            {
                continue;
            }
            pending = true;
            if live.offered_on != Some(conn_id)
                && conn
                    .handle
                    .send(&Frame::Offer(Offer { transfer_id: record.id, entries: record.entries.clone() }))
            {
                live.offered_on = Some(conn_id);
            }
        }
        pending
    }

    pub(super) fn on_offer(&mut self, conn_id: ConnId, peer: PeerId, offer: Offer) {
        match self.store.transfer(offer.transfer_id) {
            Ok(Some(known)) => {
                self.answer_again(conn_id, &known);
                return;
            }
            Ok(None) => {}
            Err(err) => {
                log::error!("cannot look up transfer {}: {err}", offer.transfer_id);
                return;
            }
        }
        let refusal = offer.entries.iter().find_map(|entry| sanitize_path(&entry.path).err());
        let record = incoming_offer(offer.transfer_id, peer, offer.entries, refusal.as_ref());
        if let Err(err) = self.store.insert_transfer(&record) {
            log::error!("cannot record offer {}: {err}", record.id);
            return;
        }
        self.sinks.emit(&Event::TransferAdded { transfer: TransferInfo::from_record(&record), tag: None });
        if refusal.is_some() {
            let end = TransferEnd { transfer_id: record.id, reason: record.reason.clone(), failed: true };
            self.send_to_peer(peer, &Frame::Decline(end));
            return;
        }
        let id = record.id;
        self.track_offer(record);
        let trusted = self.store.is_trusted_sender(peer).unwrap_or_else(|err| {
            log::warn!("cannot read trusted senders: {err}");
            false
        });
        // A peer whose key is in doubt never gets files in without a question.
        let confirmed = self.peers.get(&peer).is_some_and(|p| !p.trust.is_unconfirmed());
        if (self.auto_accept || trusted) && confirmed {
            self.accept(id, false, Origin::Owner);
        }
    }

    /// A live transfer as it stands.
    pub(super) fn live_record(&self, id: TransferId) -> Option<TransferRecord> {
        self.transfers.get(&id).map(|live| live.record.clone())
    }

    /// Our offers to `peer` that wait for an answer.
    pub(super) fn offers_waiting(&self, peer: PeerId) -> Vec<TransferRecord> {
        self.transfers
            .values()
            .filter(|live| {
                live.record.peer == peer
                    && live.record.direction == Direction::Outgoing
                    && live.record.state == TransferState::Offered
            })
            .map(|live| live.record.clone())
            .collect()
    }

    /// A peer started fetching our offer `id`: it is active from now on. Returns the offer, or
    /// `None` when it is not live.
    pub(super) fn fetching_started(&mut self, id: TransferId) -> Option<TransferRecord> {
        if self.transfers.get(&id)?.record.direction != Direction::Outgoing {
            return None;
        }
        self.mark_active(id);
        self.transfers.get(&id).map(|live| live.record.clone())
    }

    /// A live transfer's data started flowing: recorded and told, once.
    fn mark_active(&mut self, id: TransferId) {
        let Some(live) = self.transfers.get_mut(&id) else { return };
        if live.record.state == TransferState::Active {
            return;
        }
        live.record.state = TransferState::Active;
        if let Err(err) = self.store.set_transfer_state(id, TransferState::Active, "") {
            log::error!("cannot record the start of {id}: {err}");
        }
        self.sinks.emit(&Event::TransferStateChanged {
            transfer_id: id,
            state: TransferState::Active,
            reason: String::new(),
        });
    }

    /// Keeps an incoming offer live until it is answered.
    pub(super) fn track_offer(&mut self, record: TransferRecord) {
        self.transfers.insert(record.id, LiveTransfer::new(record));
    }

    /// A re-sent offer for a transfer we already answered: repeat the answer.
    fn answer_again(&mut self, conn_id: ConnId, known: &TransferRecord) {
        let end = |failed| TransferEnd { transfer_id: known.id, reason: known.reason.clone(), failed };
        let frame = match known.state {
            TransferState::Declined => Frame::Decline(end(false)),
            TransferState::Cancelled => Frame::Cancel(end(false)),
            TransferState::Failed => Frame::Cancel(end(true)),
            TransferState::Completed => Frame::Done(TransferDone { transfer_id: known.id }),
            TransferState::Offered | TransferState::Active => return,
        };
        if let Some(conn) = self.conns.get(&conn_id) {
            conn.handle.send(&frame);
        }
    }

    fn send_to_peer(&self, peer: PeerId, frame: &Frame) {
        let conn = self.peers.get(&peer).and_then(|p| p.conn).and_then(|conn| self.conns.get(&conn));
        match conn {
            Some(conn) => {
                conn.handle.send(frame);
            }
            // The peer learns the answer when it offers again on the next connection.
            None => log::debug!("no connection to {peer} for a transfer answer"),
        }
    }

    fn live_incoming(&mut self, id: TransferId, origin: Origin) -> Option<&mut LiveTransfer> {
        match self.transfers.get(&id) {
            Some(live) if live.record.direction == Direction::Incoming => self.transfers.get_mut(&id),
            _ => {
                self.fail(origin, None, &format!("no incoming transfer {id} waiting"));
                None
            }
        }
    }

    pub(super) fn accept(&mut self, id: TransferId, always: bool, origin: Origin) {
        let Some(live) = self.live_incoming(id, origin) else { return };
        if live.record.state != TransferState::Offered {
            return;
        }
        let peer = live.record.peer;
        let top_folders: Vec<String> = live
            .record
            .entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::Dir)
            .filter_map(|entry| match sanitize_path(&entry.path).ok()?.as_slice() {
                [top] => Some(top.clone()),
                _ => None,
            })
            .collect();
        // Each top-level folder gets a fresh local name now, so a second "Photos" never
        // mixes into the first.
        let mut root_names = BTreeMap::new();
        for top in top_folders {
            match files::reserve_folder(&self.download_dir, &top) {
                Ok(local) => {
                    root_names.insert(top, local);
                }
                Err(err) => {
                    let reason = format!("cannot create a folder in {}: {err}", self.download_dir.display());
                    self.end_transfer(id, TransferState::Failed, &reason, true);
                    return;
                }
            }
        }
        let stored = self
            .store
            .set_root_names(id, &root_names)
            .and_then(|()| self.store.set_transfer_state(id, TransferState::Active, ""))
            .and_then(|()| if always { self.store.trust_sender(peer) } else { Ok(()) });
        if let Err(err) = stored {
            log::error!("cannot record acceptance of {id}: {err}");
        }
        if let Some(live) = self.transfers.get_mut(&id) {
            live.record.root_names = root_names;
            live.record.state = TransferState::Active;
        }
        self.sinks.emit(&Event::TransferStateChanged {
            transfer_id: id,
            state: TransferState::Active,
            reason: String::new(),
        });
        self.start_receiving(id);
    }

    pub(super) fn decline(&mut self, id: TransferId, origin: Origin) {
        let Some(live) = self.live_incoming(id, origin) else { return };
        if live.record.state == TransferState::Offered {
            self.end_transfer(id, TransferState::Declined, "declined", true);
        }
    }

    pub(super) fn cancel(&mut self, id: TransferId, origin: Origin) {
        if !self.transfers.contains_key(&id) {
            self.fail(origin, None, &format!("no running transfer {id}"));
            return;
        }
        self.end_transfer(id, TransferState::Cancelled, "cancelled", true);
    }

    pub(super) fn retry(&mut self, id: TransferId, origin: Origin) {
        let record = match self.store.transfer(id) {
            Ok(Some(record)) => record,
            Ok(None) => return self.fail(origin, None, &format!("no transfer {id}")),
            Err(err) => return self.fail(origin, None, &err),
        };
        // Offers refused for unsafe names fail sanitizing again and stay refused.
        let resumable = record.direction == Direction::Incoming
            && matches!(record.state, TransferState::Active | TransferState::Failed)
            && record.entries.iter().all(|entry| sanitize_path(&entry.path).is_ok());
        if !resumable {
            return self.fail(origin, None, &format!("transfer {id} cannot be retried from this side"));
        }
        if let Err(err) = self.store.set_transfer_state(id, TransferState::Active, "") {
            return self.fail(origin, None, &err);
        }
        let live = self.transfers.entry(id).or_insert_with(|| LiveTransfer::new(record));
        live.record.state = TransferState::Active;
        live.retry_at = Instant::now();
        live.backoff = RESUME_BACKOFF.0;
        self.sinks.emit(&Event::TransferStateChanged {
            transfer_id: id,
            state: TransferState::Active,
            reason: String::new(),
        });
        self.start_receiving(id);
    }

    /// Ends a transfer here and, if `tell_peer`, there: stops its worker, records the state.
    pub(super) fn end_transfer(
        &mut self,
        id: TransferId,
        state: TransferState,
        reason: &str,
        tell_peer: bool,
    ) {
        let Some(mut live) = self.transfers.remove(&id) else { return };
        live.stop_worker();
        self.ipmsg_forget(id);
        if let Err(err) = self.store.set_transfer_state(id, state, reason) {
            log::error!("cannot record the end of transfer {id}: {err}");
        }
        if live.record.direction == Direction::Incoming && state != TransferState::Completed {
            // Partial data is worthless once the transfer is over, and a folder reserved for it
            // that stayed empty would look like a download.
            transfer::remove_staging(&transfer::staging_dir(&self.download_dir, id));
            for folder in live.record.root_names.values() {
                std::fs::remove_dir(self.download_dir.join(folder)).ok();
            }
        }
        if tell_peer {
            let end = TransferEnd {
                transfer_id: id,
                reason: reason.to_owned(),
                failed: state == TransferState::Failed,
            };
            // Completion is confirmed on the data connection too; saying it here as well
            // covers a sender whose data connection broke just after the last file.
            let frame = match state {
                TransferState::Declined => Frame::Decline(end),
                TransferState::Completed => Frame::Done(TransferDone { transfer_id: id }),
                _ => Frame::Cancel(end),
            };
            self.send_to_peer(live.record.peer, &frame);
        }
        self.sinks.emit(&Event::TransferStateChanged { transfer_id: id, state, reason: reason.to_owned() });
    }

    /// The other side declined, cancelled, failed or completed a transfer.
    pub(super) fn on_transfer_answer(&mut self, peer: PeerId, frame: Frame) {
        let (id, state, reason) = match frame {
            Frame::Decline(end) => {
                (end.transfer_id, TransferState::Declined, format!("declined: {}", end.reason))
            }
            Frame::Cancel(end) if end.failed => {
                (end.transfer_id, TransferState::Failed, format!("failed at the other end: {}", end.reason))
            }
            Frame::Cancel(end) => (
                end.transfer_id,
                TransferState::Cancelled,
                format!("cancelled by the other side: {}", end.reason),
            ),
            Frame::Done(done) => (done.transfer_id, TransferState::Completed, String::new()),
            _ => return,
        };
        if self.transfers.get(&id).is_some_and(|live| live.record.peer == peer) {
            self.end_transfer(id, state, &reason, false);
        }
    }

    /// A peer opened a data connection for a transfer we offered.
    pub(super) fn on_fetch(&mut self, conn_id: ConnId, fetch: Fetch) {
        let Some(conn) = self.conns.remove(&conn_id) else { return };
        self.dial_ended(&conn);
        let remote = conn.handle.remote;
        let Some(session) = conn.session else { return conn.handle.close() };
        let stream = conn.handle.release();
        self.revive_failed(fetch.transfer_id);
        let Some(live) = self.transfers.get_mut(&fetch.transfer_id) else {
            log::info!("fetch for unknown or finished transfer {} from {remote}", fetch.transfer_id);
            return;
        };
        // Only the peer the files were offered to may fetch them: the handshake proved its key.
        let from_peer = session.remote().peer_id() == live.record.peer;
        if live.record.direction != Direction::Outgoing || !from_peer {
            log::info!("refused fetch for {} from {remote}", fetch.transfer_id);
            return;
        }
        live.stop_worker();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = SendJob {
            id: fetch.transfer_id,
            stream,
            session,
            entries: live.record.entries.clone(),
            sources: live.record.sources.clone(),
            fetch,
            cancel: cancel.clone(),
            net: self.net_tx.clone(),
        };
        let id = job.id;
        match threads::spawn("pigeon-send", move || transfer::send(&job)) {
            Ok(thread) => live.worker = Some((thread, cancel)),
            Err(err) => log::error!("cannot start send worker: {err}"),
        }
        self.mark_active(id);
    }

    /// A receiver retrying a transfer that failed (its disk was full, say) finds the sender
    /// ready: a failed outgoing transfer becomes live again on its fetch.
    fn revive_failed(&mut self, id: TransferId) {
        if self.transfers.contains_key(&id) {
            return;
        }
        match self.store.transfer(id) {
            Ok(Some(record))
                if record.direction == Direction::Outgoing && record.state == TransferState::Failed =>
            {
                self.transfers.insert(id, LiveTransfer::new(record));
            }
            Ok(_) => {}
            Err(err) => log::error!("cannot look up transfer {id}: {err}"),
        }
    }

    /// Starts (or resumes) the receiving worker if the sender is online.
    pub(super) fn start_receiving(&mut self, id: TransferId) {
        let Some(live) = self.transfers.get(&id) else { return };
        let record = &live.record;
        if live.worker.is_some()
            || record.direction != Direction::Incoming
            || record.state != TransferState::Active
        {
            return;
        }
        let places: Result<Vec<Vec<String>>, _> = record
            .entries
            .iter()
            .map(|entry| sanitize_path(&entry.path).map(|c| files::local_components(&c, &record.root_names)))
            .collect();
        let Ok(places) = places else { return };
        let cancel = Arc::new(AtomicBool::new(false));
        let spawned = if let Some(job) = self.ipmsg_receive_job(record, places.clone(), cancel.clone()) {
            threads::spawn("pigeon-ipmsg-receive", move || ipmsg_receive::receive(&job))
        } else {
            let Some(peer) = self.peers.get(&record.peer) else { return };
            let job = ReceiveJob {
                id,
                peer_addr: peer.tcp_addr(),
                peer: record.peer,
                identity: self.identity.clone(),
                local_ip: self.local_ip,
                entries: record.entries.clone(),
                places,
                files_done: record.files_done,
                download_dir: self.download_dir.clone(),
                cancel: cancel.clone(),
                net: self.net_tx.clone(),
            };
            threads::spawn("pigeon-receive", move || transfer::receive(&job))
        };
        match (spawned, self.transfers.get_mut(&id)) {
            (Ok(thread), Some(live)) => live.worker = Some((thread, cancel)),
            (Ok(_), None) => {}
            (Err(err), _) => log::error!("cannot start receive worker: {err}"),
        }
    }

    pub(super) fn on_transfer_report(&mut self, id: TransferId, report: Report) {
        let Some(live) = self.transfers.get_mut(&id) else { return };
        match report {
            Report::Progress(progress) => {
                self.sinks.emit(&Event::TransferProgress { transfer_id: id, progress });
            }
            Report::FilesDone(done) => {
                live.record.files_done = done;
                if let Err(err) = self.store.set_files_done(id, done) {
                    log::error!("cannot record progress of {id}: {err}");
                }
            }
            Report::Finished => {
                let incoming = live.record.direction == Direction::Incoming;
                // The sender completes when the receiver confirms, which is what Finished
                // means on both sides.
                self.end_transfer(id, TransferState::Completed, "", incoming);
            }
            Report::Interrupted(reason) => {
                live.stop_worker();
                live.retry_at = Instant::now() + live.backoff;
                live.backoff = (live.backoff * 2).min(RESUME_BACKOFF.1);
                self.sinks.emit(&Event::TransferInterrupted { transfer_id: id, reason });
            }
            Report::Failed(reason) => self.end_transfer(id, TransferState::Failed, &reason, true),
            Report::Cancelled => live.stop_worker(),
        }
    }

    /// Resumes receiving transfers whose sender is online and whose pause is over; sends
    /// offers that wait for a connection.
    pub(super) fn transfer_housekeeping(&mut self, now: Instant) {
        let due: Vec<TransferId> = self
            .transfers
            .values()
            .filter(|live| {
                live.worker.is_none()
                    && live.record.direction == Direction::Incoming
                    && live.record.state == TransferState::Active
                    && now >= live.retry_at
                    && self.peers.contains_key(&live.record.peer)
            })
            .map(|live| live.record.id)
            .collect();
        for id in due {
            self.start_receiving(id);
        }
    }

    /// Answers `list_transfers`.
    pub(super) fn list_transfers(&mut self, origin: Origin) {
        match self.store.recent_transfers(LISTED_TRANSFERS) {
            Ok(records) => {
                let transfers = records
                    .iter()
                    .map(|record| {
                        let record = self.transfers.get(&record.id).map_or(record, |live| &live.record);
                        TransferInfo::from_record(record)
                    })
                    .collect();
                self.sinks.reply(origin, Event::Transfers { transfers });
            }
            Err(err) => self.fail(origin, None, &err),
        }
    }

    /// Loads live transfers at start so they resume.
    pub(super) fn load_transfers(&mut self) -> Result<(), StoreError> {
        for record in self.store.live_transfers()? {
            // IP Messenger peers have no key. Their transfers cannot resume: the protocol has no
            // lasting offer ids (ours can be offered again, so only running ones end).
            let ipmsg_peer = self.store.pinned_key(record.peer)?.is_none();
            if ipmsg_peer
                && (record.direction == Direction::Incoming || record.state == TransferState::Active)
            {
                let reason = "interrupted when Pigeon stopped; IP Messenger transfers cannot resume, please send again";
                self.store.set_transfer_state(record.id, TransferState::Failed, reason)?;
                continue;
            }
            if record.direction == Direction::Outgoing && record.state == TransferState::Offered {
                self.outbox_peers.insert(record.peer);
            }
            self.transfers.insert(record.id, LiveTransfer::new(record));
        }
        Ok(())
    }

    /// Stops every worker (shutdown).
    pub(super) fn stop_transfers(&mut self) {
        for live in self.transfers.values_mut() {
            live.stop_worker();
        }
    }
}

/// The record of an offer made to us: waiting for the user, or failed at once when a name
/// in it is unsafe (`refusal` says why).
pub(super) fn incoming_offer(
    id: TransferId,
    peer: PeerId,
    entries: Vec<crate::protocol::transfer::Entry>,
    refusal: Option<&impl std::fmt::Display>,
) -> TransferRecord {
    let (state, reason) = match refusal {
        Some(refusal) => (TransferState::Failed, format!("refused an unsafe offer: {refusal}")),
        None => (TransferState::Offered, String::new()),
    };
    TransferRecord {
        id,
        peer,
        direction: Direction::Incoming,
        entries,
        sources: Vec::new(),
        root_names: BTreeMap::new(),
        state,
        files_done: 0,
        reason,
        created_ms: now_ms(),
    }
}
