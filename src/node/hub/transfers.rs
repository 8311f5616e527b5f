//! Transfers, whatever the family: the table of those that may still move data, and their
//! life — offered, accepted, active, interrupted and resumed, ended — kept in the store and
//! told to consumers. Every change of state is stored and told in one place
//! (`Core::record_state`), whether it moves a transfer on ([`Core::set_transfer_state`]) or
//! ends it ([`Core::end_transfer`]). The bytes move in the families' workers; a family starts them
//! when the hub applies an [`Intent::Fetch`], or when its peer fetches from us.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::core::{Core, Intent, now_ms};
use crate::node::ending::Ending;
use crate::node::event::{Event, TransferInfo};
use crate::node::files;
use crate::node::pace::Pace;
use crate::node::sinks::Origin;
use crate::node::threads::StopFlag;
use crate::node::worker::{Report, Reporter, WorkerId, WorkerReport};
use crate::protocol::Family;
use crate::protocol::ids::{PeerId, RoomId, TransferId};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{Entry, EntryKind};
use crate::store::{Direction, StoreError, TransferRecord, TransferState};

mod commands;

/// First and longest pause before a receiver retries an interrupted transfer.
const RESUME_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(15));

/// Offers from one peer that may wait for the user at once; more are declined (and
/// counted in `Stats::offers_refused`).
pub const MAX_WAITING_OFFERS_PER_PEER: usize = 8;

/// Files and folders of all offers waiting for the user, at most (two offers of the largest
/// size the protocol allows); an offer that would go beyond is declined.
pub const MAX_WAITING_ENTRIES: usize = 100_000;

/// A transfer that may still move data.
struct Live {
    /// As stored.
    record: TransferRecord,
    /// The worker moving its data now, and that worker's stop flag.
    worker: Option<(WorkerId, StopFlag)>,
    /// Receiver: when the next automatic resume may start.
    resume: crate::node::backoff::Backoff,
}

/// The transfers that may still move data.
#[derive(Default)]
pub struct Transfers {
    live: HashMap<TransferId, Live>,
}

impl Transfers {
    /// Why an incoming offer may not wait for the user beside those waiting already, if it
    /// may not: more than [`MAX_WAITING_OFFERS_PER_PEER`] from its sender, or more than
    /// [`MAX_WAITING_ENTRIES`] files and folders in all. Offers wait in memory; these bound
    /// what anyone can make us hold without the user doing anything.
    fn over_pending_limits(&self, peer: PeerId, offered: usize) -> Option<String> {
        let waiting = || {
            self.live
                .values()
                .map(|live| &live.record)
                .filter(|r| r.direction == Direction::Incoming && r.state == TransferState::Offered)
        };
        if waiting().filter(|r| r.peer == peer).count() >= MAX_WAITING_OFFERS_PER_PEER {
            return Some(format!("{MAX_WAITING_OFFERS_PER_PEER} offers from you are waiting already"));
        }
        let entries: usize = waiting().map(|r| r.entries.len()).sum();
        (entries + offered > MAX_WAITING_ENTRIES)
            .then(|| format!("more than {MAX_WAITING_ENTRIES} files and folders are waiting to be accepted"))
    }

    fn track(&mut self, record: TransferRecord) {
        let resume = crate::node::backoff::Backoff::new(RESUME_BACKOFF.0, RESUME_BACKOFF.1, Instant::now());
        self.live.insert(record.id, Live { record, worker: None, resume });
    }

    fn set_accepted(&mut self, id: TransferId, root_names: BTreeMap<String, String>, saved_in: PathBuf) {
        if let Some(live) = self.live.get_mut(&id) {
            live.record.root_names = root_names;
            live.record.saved_in = Some(saved_in);
        }
    }

    fn set_placed(&mut self, id: TransferId, top: String, local: String) -> Option<&TransferRecord> {
        let live = self.live.get_mut(&id)?;
        live.record.root_names.insert(top, local);
        Some(&live.record)
    }

    fn ready_to_resume(&mut self, id: TransferId, now: Instant) {
        if let Some(live) = self.live.get_mut(&id) {
            live.resume.reset(now);
        }
    }

    /// A live transfer as it stands.
    pub fn record(&self, id: TransferId) -> Option<&TransferRecord> {
        self.live.get(&id).map(|live| &live.record)
    }

    /// Our offers to `peer` still waiting for an answer, oldest first.
    pub fn offers_to(&self, peer: PeerId) -> Vec<&TransferRecord> {
        let mut offers: Vec<&TransferRecord> = self
            .live
            .values()
            .map(|live| &live.record)
            .filter(|record| {
                record.peer == peer
                    && record.direction == Direction::Outgoing
                    && record.state == TransferState::Offered
            })
            .collect();
        offers.sort_by_key(|record| record.created_ms);
        offers
    }

    /// Our offers of files posted to `room` still waiting for an answer: (transfer, peer).
    pub fn room_offers(&self, room: RoomId) -> Vec<(TransferId, PeerId)> {
        self.live
            .values()
            .map(|live| &live.record)
            .filter(|record| {
                record.direction == Direction::Outgoing
                    && record.state == TransferState::Offered
                    && record.room.is_some_and(|posted| posted.room == room)
            })
            .map(|record| (record.id, record.peer))
            .collect()
    }

    /// Whether a transfer may still move data (its resume or its offer needs the hub's
    /// periodic look).
    pub fn is_busy(&self) -> bool {
        !self.live.is_empty()
    }

    /// Stops every worker (shutdown).
    pub fn stop_all(&mut self) {
        for live in self.live.values_mut() {
            if let Some((_, stop)) = live.worker.take() {
                stop.raise();
            }
        }
    }
}

/// What a family needs to start moving an accepted offer's data.
pub struct FetchJob {
    /// The transfer.
    pub record: TransferRecord,
    /// Sanitized local place of each entry (folder names as chosen at accept).
    pub places: Vec<Vec<String>>,
    /// The worker's stop flag.
    pub stop: StopFlag,
    /// The worker's way to the hub.
    pub reporter: Reporter,
}

/// What a family needs to serve a fetch of one of our offers.
pub struct ServeJob {
    /// The transfer.
    pub record: TransferRecord,
    /// The serving threads' stop flag.
    pub stop: StopFlag,
    /// Their way to the hub.
    pub reporter: Reporter,
}

/// The record of an offer made to us: waiting for the user, or failed at once when a name
/// in it is unsafe (`refusal` says why).
pub fn incoming_record(
    id: TransferId,
    peer: PeerId,
    entries: Vec<Entry>,
    refusal: Option<&impl std::fmt::Display>,
) -> TransferRecord {
    let (state, reason) = match refusal {
        Some(refusal) => (TransferState::Failed, Ending::Refused(&refusal.to_string()).reason()),
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
        room: None,
        row: None,
        saved_in: None,
    }
}

#[cfg(test)]
impl FetchJob {
    /// The worker this job is for.
    fn reporter_worker(&self) -> WorkerId {
        self.reporter.worker()
    }
}

impl Core {
    /// Records a transfer we offer and queues the offer for its peer.
    pub fn add_outgoing(&mut self, mut record: TransferRecord, tag: Option<String>, origin: Origin) {
        if let Err(err) = self.store.insert_transfer(&mut record) {
            self.fail(origin, tag, &err);
            return;
        }
        self.sinks.emit(&Event::TransferAdded { transfer: TransferInfo::from_record(&record), tag });
        let peer = record.peer;
        self.transfers.track(record);
        self.queue_for(peer);
    }

    /// Records an offer made to us. `None` when it is one we know (re-sent); else its state:
    /// `Failed` when refused, `Active` when accepted at once (auto-accept, "always accept"),
    /// `Offered` while it waits for the user.
    pub fn offer_received(&mut self, mut record: TransferRecord) -> Option<(TransferState, String)> {
        if record.state == TransferState::Failed {
            // Only the reason is worth keeping of an offer refused as unsafe.
            record.entries.clear();
        }
        // A room it claims to be posted in is dropped when we know better (the offer can
        // arrive before the room's events do; consumers show it at the post, which only a
        // member can have made).
        record.room = record.room.filter(|posted| !self.rooms.is_outsider(posted.room, record.peer));
        match self.store.insert_transfer(&mut record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(err) => {
                log::error!("cannot record offer {}: {err}", record.id);
                return None;
            }
        }
        self.sinks.emit(&Event::TransferAdded { transfer: TransferInfo::from_record(&record), tag: None });
        if record.state == TransferState::Failed {
            return Some((TransferState::Failed, record.reason));
        }
        let (id, peer) = (record.id, record.peer);
        self.transfers.track(record);
        let trusted = self.store.is_trusted_sender(peer).unwrap_or_else(|err| {
            log::warn!("cannot read trusted senders: {err}");
            false
        });
        let allowed = self.peers.get(peer).is_some_and(|p| p.info.trust.allows_auto_accept());
        if (self.receiving.auto_accept || trusted) && allowed {
            self.accept(id, false, Origin::Owner);
            return Some((TransferState::Active, String::new()));
        }
        Some((TransferState::Offered, String::new()))
    }

    /// Why an offer of `entries` files and folders from `peer` is declined unseen, if it is
    /// (see `Transfers::over_pending_limits`): families ask before they look at its names,
    /// so a refused offer costs next to nothing. Neither stored nor shown, only counted: its
    /// sender may repeat it without end.
    pub fn offer_over_limits(&mut self, id: TransferId, peer: PeerId, entries: usize) -> Option<String> {
        let reason = self.transfers.over_pending_limits(peer, entries)?;
        self.offers_refused += 1;
        log::info!("declined offer {id} from {peer}: {reason}");
        Some(reason)
    }

    /// The folder an incoming transfer's files go to: the one chosen when it was accepted
    /// (the download folder then), else today's.
    pub fn saved_in(&self, record: &TransferRecord) -> PathBuf {
        record.saved_in.clone().unwrap_or_else(|| self.receiving.download_dir.clone())
    }

    /// Moves a live transfer to `state` (not an ending: see [`Core::end_transfer`]).
    pub fn set_transfer_state(&mut self, id: TransferId, state: TransferState, reason: &str) {
        if let Some(live) = self.transfers.live.get_mut(&id) {
            if live.record.state == state {
                return;
            }
            live.record.state = state;
            live.record.reason = reason.to_owned();
        }
        self.record_state(id, state, reason);
    }

    /// Stores a transfer's new state and tells every consumer: the one place that does.
    fn record_state(&mut self, id: TransferId, state: TransferState, reason: &str) {
        if let Err(err) = self.store.set_transfer_state(id, state, reason) {
            log::error!("cannot record that transfer {id} is {state:?}: {err}");
        }
        self.sinks.emit(&Event::TransferStateChanged { transfer_id: id, state, reason: reason.to_owned() });
    }

    /// Ends a transfer here: stops its worker (without waiting for it), records the state,
    /// removes partial data, and leaves its family to tell the peer (when `tell_peer`).
    pub fn end_transfer(&mut self, id: TransferId, state: TransferState, reason: &str, tell_peer: bool) {
        let Some(mut live) = self.transfers.live.remove(&id) else { return };
        if let Some((_, stop)) = live.worker.take() {
            stop.raise();
        }
        if live.record.direction == Direction::Incoming && state != TransferState::Completed {
            // Partial data is worthless once the transfer is over, and a folder reserved for it
            // that stayed empty would look like a download.
            let download_dir = self.saved_in(&live.record);
            files::remove_staging(&files::staging_dir(&download_dir, id));
            for folder in live.record.root_names.values() {
                std::fs::remove_dir(download_dir.join(folder)).ok();
            }
        }
        live.record.state = state;
        live.record.reason = reason.to_owned();
        self.record_state(id, state, reason);
        self.intents.push_back(Intent::Ended { record: live.record, tell_peer });
    }

    /// A worker's report.
    pub fn on_worker_report(&mut self, report: WorkerReport, now: Instant) {
        let WorkerReport { transfer: id, worker, report } = report;
        let Some(live) = self.transfers.live.get_mut(&id) else { return };
        let current = live.worker.as_ref().is_some_and(|(running, _)| *running == worker);
        if !current && !matches!(report, Report::Finished) {
            // A worker replaced or stopped meanwhile: only its completion still means something.
            return;
        }
        if report.is_last() {
            live.worker = None;
        }
        let incoming = live.record.direction == Direction::Incoming;
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
            Report::Contents(entries) => self.contents_found(id, entries),
            Report::Placed { top, local } => {
                let Some(record) = self.transfers.set_placed(id, top, local) else { return };
                if let Err(err) = self.store.set_root_names(id, &record.root_names) {
                    log::error!("cannot record where a file of {id} went: {err}");
                }
                self.sinks.emit(&Event::TransferUpdated { transfer: TransferInfo::from_record(record) });
            }
            // The sender completes when the receiver confirms, which is what Finished means on
            // both sides; the receiver says so to the sender.
            Report::Finished => self.end_transfer(id, TransferState::Completed, "", incoming),
            Report::Interrupted(reason) => {
                live.resume.failed(now);
                self.sinks.emit(&Event::TransferInterrupted { transfer_id: id, reason });
            }
            Report::Failed(reason) => self.end_transfer(id, TransferState::Failed, &reason, true),
            Report::Cancelled => {}
        }
    }

    /// Folders offered without their contents turned out to hold `found`: the transfer now
    /// lists them, so it says how many files it brought.
    fn contents_found(&mut self, id: TransferId, found: Vec<Entry>) {
        let Some(live) = self.transfers.live.get_mut(&id) else { return };
        // A folder's size was its files' total; now its files carry it.
        for folder in live.record.entries.iter_mut().filter(|entry| entry.kind == EntryKind::Dir) {
            let prefix = format!("{}/", folder.path);
            if found.iter().any(|entry| entry.path.starts_with(&prefix)) {
                folder.size = 0;
            }
        }
        live.record.entries.extend(found);
        if let Err(err) = self.store.set_transfer_entries(id, &live.record.entries) {
            log::error!("cannot record what transfer {id} held: {err}");
        }
        self.sinks.emit(&Event::TransferUpdated { transfer: TransferInfo::from_record(&live.record) });
    }

    /// Incoming transfers that may resume now: accepted, no worker, pause over, sender online.
    pub fn resume_transfers(&mut self, now: Instant) {
        let due: Vec<TransferId> = self
            .transfers
            .live
            .values()
            .filter(|live| {
                live.worker.is_none()
                    && live.record.direction == Direction::Incoming
                    && live.record.state == TransferState::Active
                    && live.resume.is_ready(now)
                    && self.peers.is_online(live.record.peer)
            })
            .map(|live| live.record.id)
            .collect();
        self.intents.extend(due.into_iter().map(Intent::Fetch));
    }

    /// Claims an accepted incoming transfer for a new worker: `None` when it has one already,
    /// is not accepted, or names an unsafe place (refused at offer time, so never here).
    pub fn start_fetch(&mut self, id: TransferId) -> Option<FetchJob> {
        let worker = self.next_worker();
        let live = self.transfers.live.get_mut(&id)?;
        let record = &live.record;
        if live.worker.is_some()
            || record.direction != Direction::Incoming
            || record.state != TransferState::Active
        {
            return None;
        }
        let places: Result<Vec<Vec<String>>, _> = record
            .entries
            .iter()
            .map(|entry| sanitize_path(&entry.path).map(|c| files::local_components(&c, &record.root_names)))
            .collect();
        let places = places.ok()?;
        let stop = StopFlag::default();
        live.worker = Some((worker, stop.clone()));
        let reporter = Reporter::new(self.net.clone(), id, worker);
        Some(FetchJob { record: live.record.clone(), places, stop, reporter })
    }

    /// A fetch the family could not start (its peer is not reachable now): it resumes later.
    pub fn fetch_not_started(&mut self, id: TransferId, now: Instant) {
        if let Some(live) = self.transfers.live.get_mut(&id) {
            live.worker = None;
            live.resume.failed(now);
        }
    }

    /// `peer` fetches our offer `id`. `again` when the fetch replaces the running one (a
    /// receiver reconnecting after an interruption: the old worker is stopped); otherwise a
    /// running worker's stop flag is shared (an IP Messenger client fetching entries in
    /// parallel). `None` when the transfer is not ours to serve to that peer. The transfer
    /// is active from now on.
    pub fn start_serving(&mut self, id: TransferId, peer: PeerId, again: bool) -> Option<ServeJob> {
        self.revive_failed(id);
        let next = self.next_worker();
        let net = self.net.clone();
        let live = self.transfers.live.get_mut(&id)?;
        if live.record.direction != Direction::Outgoing || live.record.peer != peer {
            return None;
        }
        let (worker, stop) = match live.worker.take() {
            Some((running, stop)) if !again => (running, stop),
            previous => {
                if let Some((_, stop)) = previous {
                    stop.raise();
                }
                (next, StopFlag::default())
            }
        };
        live.worker = Some((worker, stop.clone()));
        let pace = Pace::new(self.speed_limits.clone(), stop.clone());
        let reporter = Reporter::sending(net, id, worker, pace);
        let job = ServeJob { record: live.record.clone(), stop, reporter };
        self.set_transfer_state(id, TransferState::Active, "");
        Some(job)
    }

    /// A receiver retrying a transfer that failed (its disk was full, say) finds the sender
    /// ready: a failed outgoing transfer becomes live again on its fetch.
    fn revive_failed(&mut self, id: TransferId) {
        if self.transfers.live.contains_key(&id) {
            return;
        }
        match self.store.transfer(id) {
            Ok(Some(record))
                if record.direction == Direction::Outgoing && record.state == TransferState::Failed =>
            {
                self.transfers.track(record);
            }
            Ok(_) => {}
            Err(err) => log::error!("cannot look up transfer {id}: {err}"),
        }
    }

    /// Loads live transfers at start so they resume; those of a family whose transfers do
    /// not survive a restart (`resumes` says no) fail, unless they are our offers still
    /// waiting for an answer (sent again).
    pub fn load_transfers(&mut self, resumes: impl Fn(Family) -> bool) -> Result<(), StoreError> {
        for record in self.store.live_transfers()? {
            let family = self.peers.family_of(record.peer).unwrap_or_default();
            let waiting_offer =
                record.direction == Direction::Outgoing && record.state == TransferState::Offered;
            if !resumes(family) && !waiting_offer {
                let reason = Ending::StoppedHere.reason();
                self.store.set_transfer_state(record.id, TransferState::Failed, &reason)?;
                continue;
            }
            if waiting_offer {
                self.outbox.mark(record.peer);
            }
            self.transfers.track(record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::doorbell::{self, Doorbell};
    use crate::node::hub::core::{Profile, Receiving, Remember};
    use crate::node::sinks::Sinks;
    use crate::protocol::announce::Status;
    use crate::protocol::transfer::EntryKind;
    use crate::store::Store;

    /// A core with a real store in a temporary folder, and the events it emits.
    fn core(dir: &tempfile::TempDir) -> (Core, crossbeam_channel::Receiver<Event>) {
        let store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        let (events_tx, events) = crossbeam_channel::bounded(1024);
        let (net, _reports) = doorbell::queue(64, &Arc::new(Doorbell::default()));
        let me =
            Profile { name: "me".into(), group: String::new(), status: Status::Online, host: "h".into() };
        let receiving = Receiving { download_dir: dir.path().join("downloads"), auto_accept: false };
        let identity = Arc::new(crate::secure::Identity::from_private([5; 32]));
        (Core::new(me, store, Sinks::new(events_tx), net, receiving, identity).unwrap(), events)
    }

    fn peer() -> crate::node::event::PeerInfo {
        crate::node::event::PeerInfo {
            id: PeerId::from_bytes([5; 16]),
            name: "ana".into(),
            group: String::new(),
            host: "h".into(),
            addr: "10.0.0.5".into(),
            port: 2426,
            status: Status::Online,
            key: None,
            trust: crate::store::Trust::Unverified,
            client: None,
            family: Family::Pigeon,
        }
    }

    fn fetch_intents(core: &mut Core) -> Vec<TransferId> {
        core.intents
            .drain(..)
            .filter_map(|intent| if let Intent::Fetch(id) = intent { Some(id) } else { None })
            .collect()
    }

    fn report(id: TransferId, worker: WorkerId, report: Report) -> WorkerReport {
        WorkerReport { transfer: id, worker, report }
    }

    #[test]
    fn at_start_a_transfer_of_a_family_that_cannot_resume_fails_saying_it_must_be_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut core, _events) = core(&dir);
        core.peer_seen(peer(), None, Instant::now(), Remember::Yes);
        let id = TransferId::from_bytes([7; 16]);
        let entries = vec![Entry { path: "photo.jpg".into(), kind: EntryKind::File, size: 10 }];
        core.offer_received(incoming_record(id, peer().id, entries, None::<&String>));
        core.load_transfers(|_| false).unwrap();
        let record = core.store.transfer(id).unwrap().unwrap();
        assert_eq!(record.state, TransferState::Failed);
        assert_eq!(Ending::of(&record.reason), Ending::StoppedHere, "{}", record.reason);
    }

    #[test]
    fn an_interrupted_transfer_resumes_after_its_pause_and_a_replaced_workers_reports_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut core, events) = core(&dir);
        let start = Instant::now();
        core.peer_seen(peer(), None, start, Remember::Yes);
        let id = TransferId::from_bytes([9; 16]);
        let entries = vec![Entry { path: "a.bin".into(), kind: EntryKind::File, size: 10 }];
        let offered = core.offer_received(incoming_record(id, peer().id, entries, None::<&String>));
        assert_eq!(offered.map(|(state, _)| state), Some(TransferState::Offered), "no auto-accept");
        assert_eq!(
            core.offer_received(incoming_record(id, peer().id, Vec::new(), None::<&String>)),
            None,
            "a resent offer"
        );
        core.accept(id, false, Origin::Owner);
        assert_eq!(fetch_intents(&mut core), [id]);
        let first = core.start_fetch(id).unwrap();
        assert!(core.start_fetch(id).is_none(), "one worker at a time");

        // The connection breaks: no resume before the pause is over, then one.
        let broke = start + Duration::from_secs(1);
        core.on_worker_report(
            report(id, first.reporter_worker(), Report::Interrupted("cable".into())),
            broke,
        );
        core.resume_transfers(broke + Duration::from_millis(400));
        assert!(fetch_intents(&mut core).is_empty(), "resumed during the pause");
        core.resume_transfers(broke + Duration::from_millis(600));
        assert_eq!(fetch_intents(&mut core), [id]);
        let second = core.start_fetch(id).unwrap();

        // The first worker's last words change nothing; the second one's completion ends it.
        core.on_worker_report(report(id, first.reporter_worker(), Report::Failed("old".into())), broke);
        assert_eq!(core.transfers.record(id).map(|r| r.state), Some(TransferState::Active));
        core.on_worker_report(report(id, second.reporter_worker(), Report::FilesDone(1)), broke);
        core.on_worker_report(report(id, second.reporter_worker(), Report::Finished), broke);
        assert!(core.transfers.record(id).is_none(), "no longer live");
        assert!(matches!(core.intents.pop_front(), Some(Intent::Ended { tell_peer: true, .. })));
        let states: Vec<TransferState> = events
            .try_iter()
            .filter_map(|event| {
                if let Event::TransferStateChanged { state, .. } = event { Some(state) } else { None }
            })
            .collect();
        assert_eq!(states, [TransferState::Active, TransferState::Completed]);
        assert_eq!(
            core.store.transfer(id).unwrap().map(|r| (r.state, r.files_done)),
            Some((TransferState::Completed, 1))
        );
    }
}
