//! The hub: the one thread that owns the node's state and routes what reaches it — commands,
//! reports of its workers, each family's reports, timers — to the part that handles it. It
//! never waits on another thread: it sends, and threads report back on queues that ring its
//! doorbell; with every queue empty it parks until a ring or its next timer.
//!
//! - [`core`]: the state every family shares, and the intents families leave for the hub.
//! - [`peers`], [`outbox`], [`transfers`]: the peer table, what waits for whom, transfers.
//! - `commands`: the user's commands; `trust`: their say in keys.
//!
//! Each family of peers (`node::family`) is an adapter the hub hands work to.

mod commands;
pub mod core;
pub mod outbox;
pub mod peers;
pub mod rooms;
pub mod transfers;
pub mod trust;

pub use commands::clip_label;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};

use self::core::{Core, Intent};
use super::command::Command;
use super::doorbell::Doorbell;
use super::event::Event;
use super::family::Adapter;
use super::inbox::{Input, NetEvent};
use super::threads::StopFlag;
use crate::protocol::Family;
use crate::protocol::keys::PublicKey;

/// How often the hub expires silent peers, resumes transfers, retries the outbox and joins
/// finished threads.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

/// How long an idle hub (no peer to expire, nothing to retry) sleeps at most.
const IDLE_HOUSEKEEPING: Duration = Duration::from_secs(60);

/// How long shutdown waits for the node's threads, at most: they were all told to stop and
/// notice within a fraction of this; one that does not is let go, so `Node::shutdown`
/// returns within 2 s whatever a peer does.
const STOP_BUDGET: Duration = Duration::from_millis(1500);

/// Everything the hub is started with.
pub struct HubParts {
    /// The shared state.
    pub core: Core,
    /// The families, each started.
    pub families: Vec<Box<dyn Adapter>>,
    /// Our identity's public key (safety numbers).
    pub key: PublicKey,
    /// Commands and subscriptions.
    pub inputs: Receiver<Input>,
    /// Asks the hub to stop at once (the node handle's shutdown, which must not queue
    /// behind commands).
    pub stop_requests: Receiver<()>,
    /// Reports of the hub's workers and helpers.
    pub net: Receiver<NetEvent>,
    /// Raised at shutdown for the I/O threads.
    pub stop: StopFlag,
    /// Long-lived I/O threads (receivers, listeners, control), joined at shutdown.
    pub io_threads: Vec<JoinHandle<()>>,
    /// Pokes the blocked I/O threads at shutdown.
    pub wake: super::Wake,
    /// Rung by every queue into the hub.
    pub bell: Arc<Doorbell>,
    /// Told (without waiting) that the store was written, so that the log is checkpointed.
    pub checkpoints: crossbeam_channel::Sender<()>,
    /// Held for the node's lifetime: the data folder is ours.
    pub lock: std::fs::File,
    /// Why IP Messenger is off although it was asked for; told once at start.
    pub unavailable: Vec<(Family, String)>,
}

/// The hub. See the module doc.
pub struct Hub {
    core: Core,
    families: Vec<Box<dyn Adapter>>,
    key: PublicKey,
    inputs: Receiver<Input>,
    stop_requests: Receiver<()>,
    net: Receiver<NetEvent>,
    stop: StopFlag,
    io_threads: Vec<JoinHandle<()>>,
    wake: super::Wake,
    bell: Arc<Doorbell>,
    checkpoints: crossbeam_channel::Sender<()>,
    /// The store's change count when the checkpointer was last told.
    changes_told: u64,
    _lock: std::fs::File,
    unavailable: Vec<(Family, String)>,
    /// When the hub's housekeeping last ran.
    last_housekeeping: Instant,
}

/// What one turn over the queues found.
enum Turn {
    /// Stop asked for.
    Stop,
    /// Something was handled; look again at once.
    Worked,
    /// Every queue was empty.
    Idle,
}

impl Hub {
    /// Builds the hub and loads the transfers that resume; nothing happens until [`Hub::run`].
    pub fn new(parts: HubParts) -> Result<Hub, crate::store::StoreError> {
        let mut hub = Hub {
            core: parts.core,
            families: parts.families,
            key: parts.key,
            inputs: parts.inputs,
            stop_requests: parts.stop_requests,
            net: parts.net,
            stop: parts.stop,
            io_threads: parts.io_threads,
            wake: parts.wake,
            bell: parts.bell,
            checkpoints: parts.checkpoints,
            changes_told: 0,
            _lock: parts.lock,
            unavailable: parts.unavailable,
            last_housekeeping: Instant::now(),
        };
        let resuming: Vec<Family> = hub
            .families
            .iter()
            .filter(|family| family.resumes_transfers())
            .map(|family| family.family())
            .collect();
        hub.core.load_transfers(|family| resuming.contains(&family))?;
        Ok(hub)
    }

    /// Runs until a shutdown command, a stop request or the node handle is dropped, then
    /// stops cleanly.
    pub fn run(mut self, local_addr: std::net::SocketAddrV4) {
        self.bell.answer_here();
        let (id, key, name) = (self.key.peer_id(), self.key, self.core.me.name.clone());
        self.core.sinks.emit(&Event::Started { id, key, name, addr: local_addr.to_string() });
        for (family, reason) in std::mem::take(&mut self.unavailable) {
            self.core.sinks.emit(&Event::FamilyUnavailable { family, reason });
        }
        loop {
            let now = Instant::now();
            self.on_timers(now);
            self.apply_intents(now);
            self.core.sinks.wake();
            self.tell_checkpointer();
            match self.take_turn(now) {
                Turn::Stop => break,
                Turn::Worked => {}
                Turn::Idle => Doorbell::wait(self.next_timer().saturating_duration_since(Instant::now())),
            }
        }
        self.shut_down();
    }

    /// Takes one thing from each queue that has one (up to a family's turn from its own),
    /// so that no queue waits behind another.
    fn take_turn(&mut self, now: Instant) -> Turn {
        if self.stop_requests.try_recv().is_ok() {
            return Turn::Stop;
        }
        let mut worked = false;
        match self.inputs.try_recv() {
            Ok(Input::Command(Command::Shutdown, _)) | Err(TryRecvError::Disconnected) => return Turn::Stop,
            Ok(input) => {
                self.on_input(input);
                worked = true;
            }
            Err(TryRecvError::Empty) => {}
        }
        if let Ok(event) = self.net.try_recv() {
            self.on_net(event);
            worked = true;
        }
        for family in &mut self.families {
            worked |= family.take_reports(&mut self.core, now) > 0;
        }
        if worked { Turn::Worked } else { Turn::Idle }
    }

    /// Tells the checkpointer when the store was written since it was last told.
    fn tell_checkpointer(&mut self) {
        let changes = self.core.store.changes();
        if changes != self.changes_told {
            self.changes_told = changes;
            // Full: a note is waiting already.
            self.checkpoints.try_send(()).ok();
        }
    }

    /// When the next timer is due: the hub's own or a family's.
    fn next_timer(&self) -> Instant {
        self.families.iter().map(|family| family.next_timer()).fold(self.housekeeping_due(), Instant::min)
    }

    fn on_timers(&mut self, now: Instant) {
        for family in &mut self.families {
            if now >= family.next_timer() {
                family.on_timer(&mut self.core, now);
            }
        }
        if now < self.housekeeping_due() {
            return;
        }
        self.last_housekeeping = now;
        for id in self.core.peers.expired(now) {
            self.core.peer_left(id, super::event::LeaveReason::Timeout);
        }
        self.core.resume_transfers(now);
        for peer in self.core.outbox.waiting() {
            self.core.intents.push_back(Intent::Deliver(peer));
        }
        self.core.workers.reap();
    }

    /// When housekeeping is next needed: a second after the last while there is something
    /// to retry, resume or join; else when the next peer would expire (an idle node sleeps).
    fn housekeeping_due(&self) -> Instant {
        let core = &self.core;
        let busy = !core.workers.is_empty() || core.outbox.is_busy() || core.transfers.is_busy();
        let tick = self.last_housekeeping + HOUSEKEEPING_INTERVAL;
        if busy {
            return tick;
        }
        let idle = self.last_housekeeping + IDLE_HOUSEKEEPING;
        core.peers.next_expiry().map_or(idle, |expiry| expiry.clamp(tick, idle))
    }

    /// Applies what families and the core left for the hub, until nothing is left.
    fn apply_intents(&mut self, now: Instant) {
        while let Some(intent) = self.core.intents.pop_front() {
            match intent {
                Intent::Deliver(peer) => {
                    if let Some(family) = family_for(&mut self.families, self.core.peers.family_of(peer)) {
                        family.deliver(&mut self.core, peer, now);
                    }
                }
                Intent::Fetch(id) => self.fetch(id, now),
                Intent::Ended { record, tell_peer } => {
                    if let Some(family) =
                        family_for(&mut self.families, self.core.peers.family_of(record.peer))
                    {
                        family.transfer_ended(&mut self.core, &record, tell_peer);
                    }
                }
                Intent::Left(peer, kind) => {
                    if let Some(family) = family_for(&mut self.families, Some(kind)) {
                        family.peer_left(&mut self.core, peer);
                    }
                }
                Intent::Room(peer, frame) => {
                    if let Some(family) = family_for(&mut self.families, self.core.peers.family_of(peer)) {
                        family.room_frame(&mut self.core, peer, frame, now);
                    }
                }
            }
        }
    }

    /// Starts the worker of an accepted incoming transfer through its peer's family.
    fn fetch(&mut self, id: crate::protocol::ids::TransferId, now: Instant) {
        let Some(job) = self.core.start_fetch(id) else { return };
        let Some(family) = family_for(&mut self.families, self.core.peers.family_of(job.record.peer)) else {
            return;
        };
        if let Err(reason) = family.fetch(&mut self.core, job) {
            log::debug!("transfer {id} waits: {reason}");
            self.core.fetch_not_started(id, now);
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Command(command, origin) => self.on_command(command, origin),
            Input::Subscribe(client, events) => self.core.sinks.subscribe(client, events),
            Input::Unsubscribe(client) => self.core.sinks.unsubscribe(client),
            Input::SetWaker(waker) => self.core.sinks.set_waker(waker),
        }
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Worker(report) => self.core.on_worker_report(report, Instant::now()),
            NetEvent::Scanned { to, room, tag, origin, result } => {
                self.core.on_scanned(to, room, tag, origin, result);
            }
        }
    }

    fn shut_down(mut self) {
        self.stop.raise();
        for family in &mut self.families {
            family.stop(&mut self.core);
        }
        self.core.transfers.stop_all();
        // Threads waiting for room in the hub's queues are let go: their sends fail now.
        drop(std::mem::replace(&mut self.net, crossbeam_channel::never()));
        drop(std::mem::replace(&mut self.inputs, crossbeam_channel::never()));
        // And the checkpointer, which waits for news of writes.
        drop(std::mem::replace(&mut self.checkpoints, crossbeam_channel::bounded(1).0));
        self.families.clear();
        self.core.sinks.emit(&Event::Stopped);
        self.core.sinks.wake();
        self.core.sinks.drop_clients();
        self.wake.poke();
        let deadline = Instant::now() + STOP_BUDGET;
        self.core.workers.adopt_all(self.io_threads.drain(..));
        let left = self.core.workers.join_until(deadline);
        if left > 0 {
            log::warn!("stopped with {left} thread(s) still finishing");
        }
    }
}

/// The running adapter of `family`, if there is one.
fn family_for(families: &mut [Box<dyn Adapter>], family: Option<Family>) -> Option<&mut Box<dyn Adapter>> {
    let family = family?;
    families.iter_mut().find(|adapter| adapter.family() == family)
}
