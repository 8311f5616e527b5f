//! The native family: other Pigeons. Discovery by UDP announces and heartbeats
//! (`discovery`, `heartbeat`), one Noise-encrypted TCP connection per peer for chat frames
//! (`connection`, `conns`, `chat`), and transfers pulled by the receiver over data
//! connections of their own (`data`, `send`, `receive`, `stream`). Trust is trust on first
//! use of each peer's key, pinned once a handshake proves it (`presence`, `hub::trust`).
//!
//! The family's threads — UDP receivers, the TCP accept thread, connection readers and
//! writers, connect attempts — report on its own queue; nothing here waits for them.

mod chat;
mod connection;
mod conns;
mod data;
mod dialling;
mod discovery;
pub mod heartbeat;
mod hints;
mod invites;
mod links;
mod presence;
mod receive;
mod rooms;
mod send;
mod stream;

use std::collections::HashMap;
use std::io;
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream, UdpSocket,
};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TrySendError};

use self::connection::{ConnHandle, ConnId};
use self::conns::Connections;
use self::discovery::Announcer;
use self::heartbeat::{Due, Schedule, heartbeat_secs};
use self::links::Links;
use super::Adapter;
use crate::node::doorbell::{self, Bell, Doorbell};
use crate::node::event::Stats;
use crate::node::hub::core::Core;
use crate::node::hub::outbox::InFlight;
use crate::node::hub::rooms::RoomFrame;
use crate::node::hub::transfers::FetchJob;
use crate::node::ipv6::Ipv6Discovery;
use crate::node::mdns::Mdns;
use crate::node::multicast::Group;
use crate::node::sinks::Origin;
use crate::node::threads::{self, StopFlag};
use crate::node::udp::Counters;
use crate::node::{StartError, interfaces, random_seed, socket};
use crate::protocol::Family;
use crate::protocol::announce::{Datagram, MULTICAST_GROUP, MULTICAST_GROUP_V6, Presence};
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
        from: SocketAddr,
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
    /// A room events frame arrived on a connection, its signatures checked.
    RoomEvents {
        /// Which connection.
        conn: ConnId,
        /// The events.
        checked: rooms::CheckedEvents,
    },
    /// mDNS found a Pigeon, or its record went away.
    Mdns(crate::node::mdns::Hint),
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
    /// An invite link being used.
    Invite(Box<invites::Joining>),
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
    /// The hub's doorbell, which the family's queues ring.
    pub bell: Arc<Doorbell>,
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
    /// Connections dialled for an invite, until their hello.
    joining: HashMap<ConnId, invites::Joining>,
    /// This node on mDNS (none: off).
    mdns: Option<Mdns>,
    /// What mDNS found.
    found: hints::Found,
    /// Datagrams from the UDP receivers.
    datagrams: Receiver<Report>,
    /// Reports from the family's other threads.
    reports: Receiver<Report>,
    /// For new threads (connections, connect attempts).
    report_tx: Bell<Report>,
    /// Counters shared with the receiver threads.
    counters: Arc<Counters>,
    /// The node's stop flag.
    stop: StopFlag,
    /// When the next housekeeping is due.
    next_housekeeping: Instant,
    /// Datagrams dropped as replays or second copies (see `Stats::stale_datagrams`).
    stale_datagrams: u64,
    /// Unproven presences not listed (see `Stats::unproven_refused`).
    unproven_refused: u64,
}

impl Native {
    /// Binds the native port (TCP and UDP) and starts the receiver and accept threads.
    pub fn start(setup: Setup<'_>, core: &Core) -> Result<Native, StartError> {
        let settings = setup.settings;
        let (listener, udp, port) = listen(settings.bind, settings.port)?;
        let scope = interfaces::Scope::of(settings);
        let scope_of_mdns = scope.clone();
        log_virtual_skipped(&scope);
        let local_addr = SocketAddrV4::new(settings.bind, port);
        let bind_err = |source| StartError::Bind { addr: local_addr, source };
        // Where other nodes send broadcasts and multicasts: the configured port, even when
        // another user's Pigeon on this computer holds it and we listen on a port of our own.
        let discovery_port = if settings.port == 0 { port } else { settings.port };
        // Our own socket receives them only when bound to every address at that port; else
        // sockets bound to the broadcast addresses and the group do (they see no unicast, so
        // the Pigeon holding the port keeps its replies).
        let own_socket_hears_all = settings.bind.is_unspecified() && port == discovery_port;
        let mut shared_udp = Vec::new();
        if settings.broadcast && !own_socket_hears_all {
            for addr in interfaces::broadcast_receiver_addrs(&scope, discovery_port) {
                shared_udp
                    .push(socket::udp_socket(addr).map_err(|source| StartError::Bind { addr, source })?);
            }
        }
        let (group, group_udp) = if settings.multicast {
            let member = own_socket_hears_all.then_some(&udp);
            Group::open_or_warn("Pigeon", MULTICAST_GROUP.into(), &scope, discovery_port, member)
        } else {
            (None, None)
        };
        shared_udp.extend(group_udp);
        let (listeners_v6, ipv6) =
            if settings.uses_ipv6() { listen_ipv6(port, discovery_port).unzip() } else { (None, None) };
        if let Some(ipv6) = &ipv6 {
            shared_udp.push(ipv6.socket().try_clone().map_err(bind_err)?);
        }
        let (report_tx, reports) = doorbell::queue(QUEUE, &setup.bell);
        let (datagram_tx, datagrams) = doorbell::queue(DATAGRAM_QUEUE, &setup.bell);
        let counters = Arc::new(Counters::default());
        let announcer = Announcer::new(
            udp.try_clone().map_err(bind_err)?,
            setup.identity.clone(),
            crate::node::hub::core::now_ms,
            scope,
            discovery_port,
            (settings.broadcast, group, ipv6),
            setup.targets,
        );
        for socket in std::iter::once(udp).chain(shared_udp) {
            let (queue, stop, counters) = (datagram_tx.clone(), setup.stop.clone(), counters.clone());
            let receiver = threads::spawn("pigeon-udp", move || {
                discovery::receive_loop(&socket, &queue, &stop, &counters);
            });
            setup.io_threads.push(receiver.map_err(StartError::Thread)?);
        }
        for listener in std::iter::once(listener).chain(listeners_v6) {
            let (queue, stop) = (report_tx.clone(), setup.stop.clone());
            let accept = threads::spawn("pigeon-listen", move || {
                crate::node::listener::accept_loop(&listener, &stop, |stream, remote| {
                    queue.send(Report::Accepted { stream, remote }).is_ok()
                });
            });
            setup.io_threads.push(accept.map_err(StartError::Thread)?);
        }
        let mdns = if settings.uses_mdns() {
            let queue = report_tx.clone();
            let hand_on =
                move |hint| !matches!(queue.try_send(Report::Mdns(hint)), Err(TrySendError::Disconnected(_)));
            match Mdns::start(setup.identity.peer_id(), port, scope_of_mdns, hand_on) {
                Ok((mdns, thread)) => {
                    setup.io_threads.push(thread);
                    Some(mdns)
                }
                Err(err) => {
                    log::warn!("no mDNS ({err}): finding Pigeons by the other ways");
                    None
                }
            }
        } else {
            None
        };
        let now = Instant::now();
        Ok(Native {
            me: presence::presence_of(core, &setup.identity, port),
            identity: setup.identity,
            local_ip: settings.bind,
            local_addr,
            announcer,
            schedule: Schedule::new(now, random_seed()),
            links: Links::default(),
            conns: Connections::default(),
            in_flight: InFlight::default(),
            offered_on: HashMap::new(),
            joining: HashMap::new(),
            mdns,
            found: hints::Found::default(),
            datagrams,
            reports,
            report_tx,
            counters,
            stop: setup.stop,
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
            stale_datagrams: 0,
            unproven_refused: 0,
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
            Report::RoomEvents { conn, checked } => {
                if let Some(peer) = self.conns.get(conn).and_then(|conn| conn.peer) {
                    core.peers.heard(peer, now);
                    self.on_room_events(core, peer, checked);
                }
            }
            Report::Mdns(hint) => self.on_hint(hint, now),
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
}

/// Says once, at the start, which virtual interfaces discovery leaves out and how to use
/// them: someone running Pigeon in a VM or a container on this machine would wonder.
fn log_virtual_skipped(scope: &interfaces::Scope) {
    for surveyed in scope.survey() {
        if surveyed.skipped == Some(interfaces::Skipped::Virtual) {
            let name = &surveyed.name;
            log::info!("not announcing on {name} (a container's or VM's bridge; --interface {name} uses it)");
        }
    }
}

/// The IPv6 side of a node listening at `port`: a TCP listener and discovery; none, with a
/// warning, on a system without IPv6 or where another program holds the port for IPv6
/// (IPv4 goes on alone).
fn listen_ipv6(port: u16, discovery_port: u16) -> Option<(TcpListener, Ipv6Discovery)> {
    let opened =
        socket::tcp_listener(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)).and_then(|listener| {
            Ok((listener, Ipv6Discovery::open(MULTICAST_GROUP_V6.into(), port, discovery_port)?))
        });
    opened.map_err(|err| log::warn!("no IPv6 at port {port} ({err}): finding Pigeons over IPv4 only")).ok()
}

/// Attempts at a port of our own when another Pigeon holds the configured one.
const OWN_PORT_ATTEMPTS: usize = 8;

/// The TCP listener and the UDP socket of the node, on one port: `port` at `bind`, or, when
/// something else (another user's Pigeon on this computer) holds it, one the kernel picks
/// — which the presence announces, so peers connect there and reply there.
fn listen(bind: Ipv4Addr, port: u16) -> Result<(TcpListener, UdpSocket, u16), StartError> {
    let wanted = SocketAddrV4::new(bind, port);
    let bind_err = |addr, source| StartError::Bind { addr, source };
    match socket::tcp_listener(wanted) {
        Ok(listener) => {
            let udp = socket::udp_socket(wanted).map_err(|source| bind_err(wanted, source))?;
            return Ok((listener, udp, port));
        }
        // Only the usual port: one chosen by hand is the user's to change (the window
        // offers a free one), while two users' Pigeons both on defaults must just work.
        Err(err) if err.kind() == io::ErrorKind::AddrInUse && port == crate::config::DEFAULT_PORT => {
            log::info!(
                "port {port} is taken (another Pigeon on this computer?): listening on a port of our own"
            );
        }
        Err(source) => return Err(bind_err(wanted, source)),
    }
    let mut last = None;
    for _ in 0..OWN_PORT_ATTEMPTS {
        let listener =
            socket::tcp_listener(SocketAddrV4::new(bind, 0)).map_err(|source| bind_err(wanted, source))?;
        let own =
            SocketAddrV4::new(bind, listener.local_addr().map_err(|source| bind_err(wanted, source))?.port());
        // The kernel picked a free TCP port; the same UDP port is usually free too.
        match socket::udp_socket(own) {
            Ok(udp) => return Ok((listener, udp, own.port())),
            Err(source) => last = Some(bind_err(own, source)),
        }
    }
    Err(last.unwrap_or_else(|| bind_err(wanted, io::Error::from(io::ErrorKind::AddrInUse))))
}

impl Adapter for Native {
    fn family(&self) -> Family {
        Family::Pigeon
    }

    fn take_reports(&mut self, core: &mut Core, now: Instant) -> usize {
        let reports: Vec<Report> =
            super::one_turn(&self.reports).into_iter().chain(super::one_turn(&self.datagrams)).collect();
        let taken = reports.len();
        for report in reports {
            self.on_report(core, report, now);
        }
        taken
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

    fn room_frame(&mut self, core: &mut Core, peer: PeerId, frame: RoomFrame, now: Instant) {
        self.send_room_frame(core, peer, frame, now);
    }

    fn connect(&mut self, core: &mut Core, addr: SocketAddr, origin: Origin) -> bool {
        self.dial(core, Dial::Addr { addr: addr.to_string(), origin }, addr);
        true
    }

    fn make_invite(&self, core: &Core) -> Option<crate::protocol::invite::Invite> {
        Some(Native::make_invite(self, core))
    }

    fn use_invite(
        &mut self,
        core: &mut Core,
        invite: crate::protocol::invite::Invite,
        origin: Origin,
    ) -> bool {
        Native::use_invite(self, core, invite, origin);
        true
    }

    fn next_timer(&self) -> Instant {
        // Deadlines to check exist only with messages in flight or connections waiting for
        // their hello; otherwise only heartbeats wake the family.
        if self.in_flight.is_empty() && !self.conns.has_ungreeted() {
            return self.schedule.next();
        }
        self.schedule.next().min(self.next_housekeeping)
    }

    fn on_timer(&mut self, core: &mut Core, now: Instant) {
        let interval = Duration::from_secs(heartbeat_secs(core.peers.count(Family::Pigeon) + 1).into());
        if let Some(due) = self.schedule.due(now, interval) {
            self.announce(core, due);
            if due == Due::Heartbeat {
                self.direct_to_the_found(now);
            }
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
        drop(self.mdns.take());
        self.announcer.goodbye(self.direct_addrs());
        for (_, conn) in self.conns.drain() {
            core.workers.adopt_all(conn.handle.close());
        }
    }

    fn stats(&self, stats: &mut Stats) {
        self.counters.add_to(stats);
        stats.stale_datagrams += self.stale_datagrams;
        stats.unproven_refused += self.unproven_refused;
        stats.bad_connections += self.conns.junk();
        stats.connections_opened += self.conns.opened();
        stats.connections += self.conns.len();
    }
}
