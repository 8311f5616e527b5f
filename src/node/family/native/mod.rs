//! The native family: other Pigeons. Discovery by UDP announces and heartbeats
//! (`discovery`, `heartbeat`), one Noise-encrypted TCP connection per peer for chat frames
//! (`connection`, `conns`, `chat`), and transfers pulled by the receiver over data
//! connections of their own (`data`, `send`, `receive`, `stream`). Trust is trust on first
//! use of each peer's key (`trust`).
//!
//! The family's threads — UDP receivers, the TCP accept thread, connection readers and
//! writers, connect attempts — report on its own queue; nothing here waits for them.

mod chat;
mod connection;
mod conns;
mod data;
mod discovery;
pub mod heartbeat;
mod links;
mod receive;
mod send;
mod stream;
mod trust;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};

use self::connection::{ConnHandle, ConnId};
use self::conns::Connections;
use self::discovery::Announcer;
use self::heartbeat::{Due, Schedule, heartbeat_secs};
use self::links::{Heard, Links};
use super::Adapter;
use crate::node::event::{Event, LeaveReason, Stats};
use crate::node::hub::core::Core;
use crate::node::hub::outbox::InFlight;
use crate::node::hub::transfers::FetchJob;
use crate::node::sinks::Origin;
use crate::node::threads::{self, StopFlag};
use crate::node::udp::Counters;
use crate::node::{StartError, interfaces, random_seed, socket};
use crate::protocol::Family;
use crate::protocol::announce::{Datagram, Goodbye, Presence};
use crate::protocol::frame::Frame;
use crate::protocol::ids::{PeerId, TransferId};
use crate::secure::{Identity, Role, Session};
use crate::store::TransferRecord;

/// Reports of connections, connects and the listener queued before those threads wait (a
/// reader that waits holds its TCP peer back, which is all a full queue should do).
const QUEUE: usize = 1024;

/// Discovery datagrams queued before the receivers drop (and count) more: the start-up
/// announces of a whole /24 (750 in 1.25 s) fit. A queue of its own, so that a flood of
/// datagrams never keeps a peer's frames from the hub.
const DATAGRAM_QUEUE: usize = 1024;

/// How often the family checks acknowledgement timeouts and hello deadlines.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

/// An unacknowledged message after this long means the connection is dead (pulled cable,
/// sleeping laptop); it is closed and the message resent on a new one.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to establish a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What the family's threads report.
pub enum Report {
    /// A discovery datagram decoded by a receiver thread.
    Datagram {
        /// Source address (the sender's discovery socket).
        from: SocketAddrV4,
        /// The datagram.
        datagram: Datagram,
    },
    /// The listener accepted a connection.
    Accepted {
        /// The new connection.
        stream: TcpStream,
        /// The other end.
        remote: SocketAddr,
    },
    /// A connect attempt finished.
    Connected {
        /// Why we connected.
        target: Dial,
        /// The stream, or why not.
        result: io::Result<TcpStream>,
    },
    /// A connection's handshake finished; comes before any of its frames.
    Secured {
        /// Which connection.
        conn: ConnId,
        /// The session, with the other end's proven key.
        session: Arc<Session>,
    },
    /// A frame arrived on a connection.
    Frame {
        /// Which connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// A connection ended.
    Closed {
        /// Which connection.
        conn: ConnId,
        /// Why, for the log.
        reason: String,
        /// Whether the peer broke the protocol (counted in stats).
        misbehaved: bool,
    },
}

/// What a connect attempt was for.
pub enum Dial {
    /// Deliver what waits for a known peer.
    Peer(PeerId),
    /// A `connect` command.
    Addr {
        /// The address as the user gave it.
        addr: String,
        /// Who asked.
        origin: Origin,
    },
}

/// What the family needs to start.
pub struct Setup<'a> {
    /// The node's settings.
    pub settings: &'a crate::config::Settings,
    /// Our key pair.
    pub identity: Arc<Identity>,
    /// Extra announce targets, resolved.
    pub targets: Vec<SocketAddrV4>,
    /// The node's stop flag.
    pub stop: StopFlag,
    /// Where the long-lived threads go (joined at shutdown).
    pub io_threads: &'a mut Vec<JoinHandle<()>>,
}

/// The native family's state. See the module doc.
pub struct Native {
    /// Our presence as announced; its heartbeat interval follows the subnet's size.
    me: Presence,
    /// Our key pair, for handshakes.
    identity: Arc<Identity>,
    /// Address outgoing connections are made from (unspecified: the system picks).
    local_ip: Ipv4Addr,
    /// Where we listen.
    local_addr: SocketAddrV4,
    /// Sends discovery datagrams.
    announcer: Announcer,
    /// When the next announce or heartbeat is due.
    schedule: Schedule,
    /// Pigeon peers online.
    links: Links,
    /// Open connections.
    conns: Connections<ConnHandle>,
    /// Messages written to a connection and not yet acknowledged.
    in_flight: InFlight<ConnId>,
    /// Our offers, each with the connection it was last sent on (sent again on a new one).
    offered_on: HashMap<TransferId, ConnId>,
    /// Datagrams from the UDP receivers.
    datagrams: Receiver<Report>,
    /// Reports from the family's other threads.
    reports: Receiver<Report>,
    /// For new threads (connections, connect attempts).
    report_tx: Sender<Report>,
    /// Counters shared with the receiver threads.
    counters: Arc<Counters>,
    /// The node's stop flag.
    stop: StopFlag,
    /// When the next housekeeping is due.
    next_housekeeping: Instant,
}

impl Native {
    /// Binds the native port (TCP and UDP) and starts the receiver and accept threads.
    pub fn start(setup: Setup<'_>, core: &Core) -> Result<Native, StartError> {
        let settings = setup.settings;
        let wanted = SocketAddrV4::new(settings.bind, settings.port);
        let listener =
            socket::tcp_listener(wanted).map_err(|source| StartError::Bind { addr: wanted, source })?;
        let port = listener.local_addr().map_err(|source| StartError::Bind { addr: wanted, source })?.port();
        let local_addr = SocketAddrV4::new(settings.bind, port);
        let bind_err = |source| StartError::Bind { addr: local_addr, source };
        let udp = socket::udp_socket(local_addr).map_err(bind_err)?;
        let broadcast_udp =
            match settings.broadcast.then(|| interfaces::broadcast_receiver_addr(settings.bind, port)) {
                Some(Some(addr)) => {
                    Some(socket::udp_socket(addr).map_err(|source| StartError::Bind { addr, source })?)
                }
                _ => None,
            };
        let (report_tx, reports) = crossbeam_channel::bounded(QUEUE);
        let (datagram_tx, datagrams) = crossbeam_channel::bounded(DATAGRAM_QUEUE);
        let counters = Arc::new(Counters::default());
        let announcer = Announcer::new(
            udp.try_clone().map_err(bind_err)?,
            settings.bind,
            port,
            settings.broadcast,
            setup.targets,
        );
        for socket in std::iter::once(udp).chain(broadcast_udp) {
            let (queue, stop, counters) = (datagram_tx.clone(), setup.stop.clone(), counters.clone());
            let receiver = threads::spawn("pigeon-udp", move || {
                discovery::receive_loop(&socket, &queue, &stop, &counters);
            });
            setup.io_threads.push(receiver.map_err(StartError::Thread)?);
        }
        let (queue, stop) = (report_tx.clone(), setup.stop.clone());
        let accept = threads::spawn("pigeon-listen", move || {
            crate::node::listener::accept_loop(&listener, &stop, |stream, remote| {
                queue.send(Report::Accepted { stream, remote }).is_ok()
            });
        });
        setup.io_threads.push(accept.map_err(StartError::Thread)?);
        let now = Instant::now();
        Ok(Native {
            me: presence_of(core, &setup.identity, port),
            identity: setup.identity,
            local_ip: settings.bind,
            local_addr,
            announcer,
            schedule: Schedule::new(now, random_seed()),
            links: Links::default(),
            conns: Connections::default(),
            in_flight: InFlight::default(),
            offered_on: HashMap::new(),
            datagrams,
            reports,
            report_tx,
            counters,
            stop: setup.stop,
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
        })
    }

    /// Where the family listens (the node's address and port).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    fn on_report(&mut self, core: &mut Core, report: Report, now: Instant) {
        match report {
            Report::Datagram { from, datagram } => self.on_datagram(core, from, datagram, now),
            Report::Accepted { stream, remote } => {
                if !self.conns.has_room() {
                    log::info!("refusing connection from {remote}: {} already open", self.conns.len());
                    return;
                }
                if let Some(oldest) = self.conns.to_make_room() {
                    let reason = format!("more than {} connections without hello", conns::MAX_UNGREETED);
                    self.close_junk(core, oldest, &reason, now);
                }
                self.open_conn(stream, Role::Responder, None, now);
            }
            Report::Connected { target, result } => self.on_connected(core, target, result, now),
            Report::Secured { conn, session } => {
                if let Some(conn) = self.conns.get_mut(conn) {
                    conn.session = Some(session);
                }
            }
            Report::Frame { conn, frame } => self.on_frame(core, conn, frame, now),
            Report::Closed { conn, reason, misbehaved } => {
                // A connection the family closed already was counted then. One whose reader
                // gave up waiting for a hello is junk as much as one cut off here.
                if misbehaved || self.conns.was_silent(conn, now) {
                    self.close_junk(core, conn, &reason, now);
                } else {
                    self.close_conn(core, conn, &reason, now);
                }
            }
        }
    }

    fn on_datagram(&mut self, core: &mut Core, from: SocketAddrV4, datagram: Datagram, now: Instant) {
        if datagram.sender() == self.me.id {
            return;
        }
        match datagram {
            Datagram::Announce(presence) => {
                self.announcer.reply(&self.me, from, now);
                self.saw(core, presence, *from.ip(), false, now);
            }
            Datagram::Heartbeat(presence) => {
                if self.links.get(presence.id).is_none() {
                    self.announcer.reply(&self.me, from, now);
                }
                self.saw(core, presence, *from.ip(), false, now);
            }
            Datagram::Reply(presence) => self.saw(core, presence, *from.ip(), false, now),
            Datagram::Goodbye(Goodbye { id }) => core.peer_left(id, LeaveReason::Goodbye),
        }
    }

    /// `presence` is alive, heard from `ip` (see [`Links::heard`] for what a TCP source may
    /// change): the peer table learns it, a new peer's key is pinned.
    fn saw(&mut self, core: &mut Core, presence: Presence, ip: Ipv4Addr, from_tcp: bool, now: Instant) {
        let id = presence.id;
        let heard = self.links.heard(presence, ip, from_tcp, now);
        let Some(link) = self.links.get(id) else { return };
        let (trust, key_change) = match heard {
            Heard::Ignored => {
                log::debug!("ignoring presence of {id} from {ip}: connected at {}", link.ip);
                return;
            }
            // The common case (every heartbeat): only the time it was heard changes.
            Heard::Same if core.peers.is_online(id) => return core.peers.heard(id, now),
            Heard::New => {
                core.remember(&link.info(crate::store::Trust::default()));
                trust::pin(&mut core.store, &link.presence)
            }
            Heard::Changed | Heard::Same => {
                (core.peers.get(id).map(|p| p.info.trust).unwrap_or_default(), None)
            }
        };
        let info = link.info(trust);
        core.peer_seen(info.clone(), Some(link.expires_after()), now);
        if let Some(change) = key_change {
            let (previous, previous_verified) = (change.previous, change.previous_verified);
            core.sinks.emit(&Event::KeyChanged { peer: info, previous, previous_verified });
        }
    }

    fn dial(&mut self, core: &mut Core, target: Dial, addr: SocketAddr) {
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

    fn on_connected(&mut self, core: &mut Core, target: Dial, result: io::Result<TcpStream>, now: Instant) {
        match (target, result) {
            (Dial::Peer(id), result) => {
                if self.links.get(id).is_none() {
                    return;
                }
                match result {
                    // Still being dialled until the hello: see `Conn::dialed`.
                    Ok(stream) => self.open_conn(stream, Role::Initiator, Some(id), now),
                    Err(err) => {
                        log::debug!("connect to {id} failed: {err}");
                        self.dial_failed(id, now);
                    }
                }
            }
            (Dial::Addr { .. }, Ok(stream)) => self.open_conn(stream, Role::Initiator, None, now),
            (Dial::Addr { addr, origin }, Err(err)) => {
                core.sinks.reply(origin, Event::ConnectFailed { addr, reason: err.to_string() });
            }
        }
    }

    fn dial_failed(&mut self, id: PeerId, now: Instant) {
        if let Some(link) = self.links.get_mut(id) {
            link.dial_failed(now);
        }
    }

    fn open_conn(&mut self, stream: TcpStream, role: Role, dialed: Option<PeerId>, now: Instant) {
        let id = self.conns.next_id();
        let started = socket::prepare_stream(&stream)
            .and_then(|()| ConnHandle::start(id, stream, role, self.identity.clone(), &self.report_tx));
        match started {
            Ok(handle) => {
                handle.send(&Frame::Hello(self.me.clone()));
                self.conns.insert(id, handle, dialed, now);
            }
            Err(err) => {
                // Also a connection reset right after connecting (the peer was dying): an
                // attempt that failed, or the peer would count as being dialled for ever.
                log::info!("connection setup failed: {err}");
                if let Some(peer) = dialed {
                    self.dial_failed(peer, now);
                }
            }
        }
    }

    /// Closes a connection that broke the rules or never said hello: counted, and logged at
    /// a limited rate.
    fn close_junk(&mut self, core: &mut Core, id: ConnId, reason: &str, now: Instant) {
        let from = self.conns.get(id).map(|conn| conn.handle.remote.to_string()).unwrap_or_default();
        self.conns.count_junk(&from, reason, now);
        self.close_conn(core, id, reason, now);
    }

    /// Closes a connection without waiting for its threads. If we dialled it and its hello
    /// never came, that attempt failed; what was in flight on it goes out again on another.
    fn close_conn(&mut self, core: &mut Core, id: ConnId, reason: &str, now: Instant) {
        let Some(conn) = self.conns.remove(id) else { return };
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

    fn housekeeping(&mut self, core: &mut Core, now: Instant) {
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

    fn announce(&mut self, core: &Core, due: Due) {
        // Told to the others in the heartbeat itself, so they wait long enough.
        self.me.heartbeat_secs = heartbeat_secs(core.peers.count(Family::Pigeon) + 1);
        let datagram = match due {
            Due::Announce => Datagram::Announce(self.me.clone()),
            Due::Heartbeat => Datagram::Heartbeat(self.me.clone()),
        };
        self.announcer.announce(&datagram, self.links.discovery_addrs());
    }
}

/// Our presence for the native family.
fn presence_of(core: &Core, identity: &Identity, port: u16) -> Presence {
    Presence {
        id: identity.peer_id(),
        key: identity.public(),
        name: core.me.name.clone(),
        group: core.me.group.clone(),
        host: core.me.host.clone(),
        status: core.me.status,
        port,
        heartbeat_secs: crate::protocol::announce::HEARTBEAT_SECS,
    }
}

impl Adapter for Native {
    fn family(&self) -> Family {
        Family::Pigeon
    }

    fn watch<'a>(&'a self, select: &mut Select<'a>) -> usize {
        select.recv(&self.datagrams);
        select.recv(&self.reports);
        2
    }

    fn take_reports(&mut self, core: &mut Core, now: Instant) {
        for report in super::one_turn(&self.reports).into_iter().chain(super::one_turn(&self.datagrams)) {
            self.on_report(core, report, now);
        }
    }

    fn deliver(&mut self, core: &mut Core, peer: PeerId, now: Instant) {
        if !core.outbox.is_waiting(peer) {
            return;
        }
        let Some(link) = self.links.get_mut(peer) else { return };
        match link.conn {
            Some(conn) => self.write_outbox(core, peer, conn, now),
            None if link.may_dial(now) => {
                link.dial_started();
                let addr = link.tcp_addr();
                self.dial(core, Dial::Peer(peer), addr);
            }
            None => {}
        }
    }

    fn fetch(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        self.start_receiving(core, job)
    }

    fn transfer_ended(&mut self, _core: &mut Core, record: &TransferRecord, tell_peer: bool) {
        self.offered_on.remove(&record.id);
        if tell_peer {
            self.tell_end(record);
        }
    }

    fn peer_left(&mut self, core: &mut Core, peer: PeerId) {
        if let Some(conn) = self.links.remove(peer).and_then(|link| link.conn) {
            self.close_conn(core, conn, "peer left", Instant::now());
        }
    }

    fn profile_changed(&mut self, core: &mut Core) {
        (self.me.name, self.me.group, self.me.status) =
            (core.me.name.clone(), core.me.group.clone(), core.me.status);
        self.announce(core, Due::Heartbeat);
    }

    fn set_targets(&mut self, core: &mut Core, targets: &[SocketAddrV4]) {
        // A target without a port (0) is at ours.
        let port = self.me.port;
        let targets =
            targets.iter().map(|t| if t.port() == 0 { SocketAddrV4::new(*t.ip(), port) } else { *t });
        self.announcer.set_targets(targets.collect());
        self.announce(core, Due::Heartbeat);
    }

    fn connect(&mut self, core: &mut Core, addr: SocketAddr, origin: Origin) -> bool {
        self.dial(core, Dial::Addr { addr: addr.to_string(), origin }, addr);
        true
    }

    fn next_timer(&self) -> Instant {
        self.schedule.next().min(self.next_housekeeping)
    }

    fn on_timer(&mut self, core: &mut Core, now: Instant) {
        let interval = Duration::from_secs(heartbeat_secs(core.peers.count(Family::Pigeon) + 1).into());
        if let Some(due) = self.schedule.due(now, interval) {
            self.announce(core, due);
        }
        if now >= self.next_housekeeping {
            self.housekeeping(core, now);
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
        }
    }

    fn resumes_transfers(&self) -> bool {
        true
    }

    fn stop(&mut self, core: &mut Core) {
        self.announcer.goodbye(Goodbye { id: self.me.id }, self.links.discovery_addrs());
        for (_, conn) in self.conns.drain() {
            core.workers.adopt_all(conn.handle.close());
        }
    }

    fn stats(&self, stats: &mut Stats) {
        use std::sync::atomic::Ordering::Relaxed;
        stats.datagrams += self.counters.datagrams.load(Relaxed);
        stats.malformed_datagrams += self.counters.malformed_datagrams.load(Relaxed);
        stats.dropped_datagrams += self.counters.dropped_datagrams.load(Relaxed);
        stats.bad_connections += self.conns.junk();
        stats.connections_opened += self.conns.opened();
        stats.connections += self.conns.len();
    }
}
