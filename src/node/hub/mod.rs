//! The hub: the one thread that owns the node's state — peer table, connections, outbox
//! (in the store) — and reacts to commands, network input and timers in a `select!` loop.
//! Other threads only carry bytes and report here over channels.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, select};

mod ipmsg;
mod transfers;
mod trust;

pub use ipmsg::IpMsg;

use super::command::{Command, MAX_PAGE};
use super::connection::{ConnHandle, ConnId, HELLO_TIMEOUT};
use super::discovery::{Announcer, Counters};
use super::event::{Event, LeaveReason, PeerInfo, Stats};
use super::files::Scanned;
use super::log_limit::{JUNK_LOG_INTERVAL, LogLimit};
use super::sinks::{ClientId, Origin, Sinks, Waker};
use super::threads::{self, StopFlag};
use super::transfer::Report;
use super::{random_id, socket};
use crate::protocol::announce::{Datagram, Goodbye, HEARTBEAT_SECS, Presence};
use crate::protocol::frame::Frame;
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::message::{MAX_RECEIPT_IDS, Receipt, WireMessage, check_text_len};
use crate::secure::{Identity, Role, Session};
use crate::store::{KnownPeer, MessageState, Store, StoreError, Trust};

/// A node starts with one announce per entry, each followed by this pause: announces at 0,
/// 0.25 and 1.25 s make discovery survive lost datagrams without waiting for heartbeats.
const STARTUP_ANNOUNCES: [Duration; 3] =
    [Duration::from_millis(250), Duration::from_secs(1), HEARTBEAT_INTERVAL];

/// How often a node repeats its presence once started, while the subnet holds at most
/// [`SUBNET_HEARTBEATS`] × 2 nodes.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(HEARTBEAT_SECS as u64);

/// Heartbeats per second all nodes of a subnet send together, at most: beyond 50 nodes each
/// one slows down, so every host receives at most this many per second however many there
/// are (docs/ARCHITECTURE.md, "Discovery and its traffic").
pub const SUBNET_HEARTBEATS: usize = 25;

/// The slowest heartbeat, so that even on a huge subnet a vanished peer goes within 2 min.
const MAX_HEARTBEAT_SECS: u16 = 30;

/// Heartbeats a peer may miss before it is dropped.
const MISSED_HEARTBEATS: u32 = 4;

/// A peer with the usual heartbeat that is silent for this long is dropped: four heartbeats
/// missed. With the housekeeping interval this bounds the time a crashed peer stays listed
/// to 9 s.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(MISSED_HEARTBEATS as u64 * HEARTBEAT_SECS as u64);

/// Our heartbeat interval, in whole seconds, when `nodes` (us included) share the subnet.
pub fn heartbeat_secs(nodes: usize) -> u16 {
    let secs = nodes.div_ceil(SUBNET_HEARTBEATS);
    u16::try_from(secs).unwrap_or(u16::MAX).clamp(HEARTBEAT_SECS, MAX_HEARTBEAT_SECS)
}

/// How often the hub checks expiries, acknowledgement timeouts and reconnects.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

/// An unacknowledged message after this long means the connection is dead (pulled cable,
/// sleeping laptop); it is closed and the message resent on a new one.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to establish a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// First and longest pause between reconnect attempts to a peer with queued messages.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(10));

/// Open connections beyond this are refused at accept, so junk connections cannot exhaust
/// file descriptors or threads.
const MAX_CONNECTIONS: usize = 512;

/// Connections that have not said hello yet, at most. A new one beyond this closes the oldest
/// of them: a real peer says hello within milliseconds of connecting, so a flood of silent or
/// junk connections can neither exhaust threads nor keep real peers out.
const MAX_UNGREETED: usize = 64;

/// What the I/O threads report to the hub.
pub enum NetEvent {
    /// An IP Messenger client asked for a file or folder we offered (TCP).
    IpMsgRequest {
        /// The connection, its request read.
        stream: TcpStream,
        /// The client.
        from: SocketAddrV4,
        /// The request packet.
        packet: crate::protocol::ipmsg::Packet,
    },
    /// A request of an IP Messenger client was served (or failed).
    IpMsgServed {
        /// The transfer.
        transfer: TransferId,
        /// Which top-level entry of the offer.
        index: usize,
        /// Whether all of it was sent.
        outcome: Result<(), String>,
    },
    /// An IP Messenger packet decoded by its receiver thread.
    IpMsg {
        /// Source address.
        from: SocketAddrV4,
        /// The packet.
        packet: crate::protocol::ipmsg::Packet,
    },
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
        target: ConnectTarget,
        /// The stream, or why not.
        result: std::io::Result<TcpStream>,
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
    /// A scan of files to offer finished.
    Scanned {
        /// Recipients.
        to: Vec<PeerId>,
        /// Tag of the command.
        tag: Option<String>,
        /// Who asked.
        origin: Origin,
        /// What was found, or why not.
        result: std::io::Result<Scanned>,
    },
    /// A transfer worker reports.
    Transfer(TransferId, Report),
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
pub enum ConnectTarget {
    /// Deliver queued messages to a known peer.
    Peer(PeerId),
    /// A `connect` command.
    Addr {
        /// The address as the user gave it.
        addr: String,
        /// Who asked.
        origin: Origin,
    },
}

/// Requests from the node handle and control clients.
pub enum Input {
    /// A command and who sent it.
    Command(Command, Origin),
    /// A control client wants events.
    Subscribe(ClientId, Sender<Event>),
    /// A control client left.
    Unsubscribe(ClientId),
    /// The owner's waker.
    SetWaker(Waker),
}

/// A peer currently online.
struct Peer {
    /// What it last told us about itself.
    presence: Presence,
    /// Where we last heard it from.
    ip: Ipv4Addr,
    /// When we last heard anything from it; it expires after [`MISSED_HEARTBEATS`] of its
    /// heartbeat intervals of silence.
    last_seen: Instant,
    /// The connection we send on, once its hello arrived.
    conn: Option<ConnId>,
    /// Whether a connect attempt is under way.
    connecting: bool,
    /// No reconnect before this instant.
    retry_at: Instant,
    /// Pause before the next reconnect after a failure.
    backoff: Duration,
    /// How far we trust its key.
    trust: Trust,
}

impl Peer {
    /// A connect attempt failed: the next one waits, twice as long each time.
    fn connect_failed(&mut self) {
        self.connecting = false;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(RETRY_BACKOFF.1);
    }

    /// Silence after which the peer is dropped, by the heartbeat interval it announced.
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.presence.heartbeat_secs.into()) * MISSED_HEARTBEATS
    }

    fn info(&self) -> PeerInfo {
        PeerInfo {
            id: self.presence.id,
            name: self.presence.name.clone(),
            group: self.presence.group.clone(),
            host: self.presence.host.clone(),
            addr: self.ip.to_string(),
            port: self.presence.port,
            status: self.presence.status,
            key: Some(self.presence.key),
            trust: self.trust,
            client: None,
        }
    }

    fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.presence.port))
    }
}

/// A live connection.
struct Conn {
    /// Threads and write queue.
    handle: ConnHandle,
    /// The peer at the other end, once its hello arrived.
    peer: Option<PeerId>,
    /// The encrypted session, once the handshake finished.
    session: Option<Arc<Session>>,
    /// When it was opened: without a hello within [`HELLO_TIMEOUT`] of this it is closed,
    /// however the bytes trickle in.
    opened: Instant,
    /// The peer we connected to, for a connection we opened: until its hello arrives the
    /// peer counts as still connecting, so no second connect starts meanwhile.
    dialed: Option<PeerId>,
}

/// Everything the hub is started with.
pub struct HubParts {
    /// Our presence as announced.
    pub me: Presence,
    /// The history database.
    pub store: Store,
    /// Sends discovery datagrams.
    pub announcer: Announcer,
    /// Commands and subscriptions.
    pub inputs: Receiver<Input>,
    /// Reports from I/O threads.
    pub net: Receiver<NetEvent>,
    /// A sender for new I/O threads (connections, connects).
    pub net_tx: Sender<NetEvent>,
    /// The owner's event channel.
    pub events: Sender<Event>,
    /// Raised at shutdown for the I/O threads.
    pub stop: StopFlag,
    /// Long-lived I/O threads (receivers, listener, control), joined at shutdown.
    pub io_threads: Vec<JoinHandle<()>>,
    /// Counters shared with the receiver threads.
    pub counters: Arc<Counters>,
    /// Sockets to poke so blocked I/O threads notice shutdown at once.
    pub wake: super::Wake,
    /// Held for the node's lifetime: the data folder is ours.
    pub lock: std::fs::File,
    /// The bound address, used as the source of outgoing connections.
    pub local_ip: Ipv4Addr,
    /// Where received files go.
    pub download_dir: std::path::PathBuf,
    /// Accept every offer without asking.
    pub auto_accept: bool,
    /// Our key pair, for handshakes.
    pub identity: Arc<Identity>,
    /// IP Messenger interoperation, when its port could be bound.
    pub ipmsg: Option<IpMsg>,
    /// Why IP Messenger is off although it was asked for.
    pub ipmsg_unavailable: Option<String>,
}

/// The hub's state. See the module doc.
pub struct Hub {
    me: Presence,
    store: Store,
    announcer: Announcer,
    inputs: Receiver<Input>,
    net: Receiver<NetEvent>,
    net_tx: Sender<NetEvent>,
    sinks: Sinks,
    stop: StopFlag,
    io_threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    wake: super::Wake,
    _lock: std::fs::File,
    /// Address outgoing connections are made from (unspecified: the system picks).
    local_ip: Ipv4Addr,
    /// Where received files go.
    download_dir: std::path::PathBuf,
    /// Accept every offer without asking.
    auto_accept: bool,
    /// Our key pair, for handshakes.
    identity: Arc<Identity>,
    /// IP Messenger peers and their messages.
    ipmsg: Option<IpMsg>,
    /// Why IP Messenger is off although it was asked for; reported once at start.
    ipmsg_unavailable: Option<String>,
    /// Transfers that may still move data.
    transfers: HashMap<TransferId, transfers::LiveTransfer>,
    /// Online peers.
    peers: HashMap<PeerId, Peer>,
    /// Every peer id ever seen (online or not): messages to them may be queued.
    known: HashSet<PeerId>,
    /// Peers with messages or read receipts still to deliver.
    outbox_peers: HashSet<PeerId>,
    /// Open connections.
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    /// Messages written to a connection and not yet acknowledged: where and when.
    awaiting_ack: HashMap<MsgId, (ConnId, Instant)>,
    /// Short-lived helper threads (connect attempts, file scans), joined when finished.
    helpers: Vec<JoinHandle<()>>,
    /// Connections closed for invalid framing, a missing or late hello.
    bad_connections: u64,
    /// Rate limit of the log line about them.
    junk_log: LogLimit,
    /// Start-up announces still to send.
    startup_left: std::slice::Iter<'static, Duration>,
    next_announce: Instant,
    next_housekeeping: Instant,
}

impl Hub {
    /// Builds the hub; nothing happens until [`Hub::run`].
    pub fn new(parts: HubParts) -> Result<Hub, StoreError> {
        let known = parts.store.known_peers()?.into_iter().map(|peer| peer.id).collect();
        let outbox_peers = parts.store.peers_with_undelivered()?.into_iter().collect();
        let now = Instant::now();
        let mut hub = Hub {
            me: parts.me,
            store: parts.store,
            announcer: parts.announcer,
            inputs: parts.inputs,
            net: parts.net,
            net_tx: parts.net_tx,
            sinks: Sinks::new(parts.events),
            stop: parts.stop,
            io_threads: parts.io_threads,
            counters: parts.counters,
            wake: parts.wake,
            _lock: parts.lock,
            local_ip: parts.local_ip,
            download_dir: parts.download_dir,
            auto_accept: parts.auto_accept,
            identity: parts.identity,
            ipmsg: parts.ipmsg,
            ipmsg_unavailable: parts.ipmsg_unavailable,
            transfers: HashMap::new(),
            peers: HashMap::new(),
            known,
            outbox_peers,
            conns: HashMap::new(),
            next_conn: 0,
            awaiting_ack: HashMap::new(),
            helpers: Vec::new(),
            bad_connections: 0,
            junk_log: LogLimit::new(JUNK_LOG_INTERVAL),
            startup_left: STARTUP_ANNOUNCES.iter(),
            next_announce: now,
            next_housekeeping: now + HOUSEKEEPING_INTERVAL,
        };
        hub.load_transfers()?;
        Ok(hub)
    }

    /// Runs until a shutdown command or until the node handle is dropped, then stops cleanly.
    pub fn run(mut self, local_addr: SocketAddrV4) {
        self.sinks.emit(&Event::Started {
            id: self.me.id,
            name: self.me.name.clone(),
            addr: local_addr.to_string(),
        });
        if let Some(reason) = self.ipmsg_unavailable.take() {
            self.sinks.emit(&Event::IpmsgUnavailable { reason });
        }
        self.ipmsg_announce(crate::protocol::ipmsg::mode::BR_ENTRY);
        loop {
            let now = Instant::now();
            if now >= self.next_announce {
                self.announce_on_schedule(now);
            }
            if now >= self.next_housekeeping {
                self.housekeeping(now);
                self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            }
            self.sinks.wake();
            let timeout =
                self.next_announce.min(self.next_housekeeping).saturating_duration_since(Instant::now());
            select! {
                recv(self.inputs) -> input => match input {
                    Ok(Input::Command(Command::Shutdown, _)) | Err(_) => break,
                    Ok(input) => self.on_input(input),
                },
                recv(self.net) -> event => {
                    if let Ok(event) = event {
                        self.on_net(event);
                    }
                },
                default(timeout) => {},
            }
        }
        self.shut_down();
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Command(command, origin) => self.on_command(command, origin),
            Input::Subscribe(client, events) => self.sinks.subscribe(client, events),
            Input::Unsubscribe(client) => self.sinks.unsubscribe(client),
            Input::SetWaker(waker) => self.sinks.set_waker(waker),
        }
    }

    fn on_command(&mut self, command: Command, origin: Origin) {
        match command {
            Command::SendMessage { to, text, tag } => self.send_message(&to, &text, tag, origin),
            Command::MarkRead { peer } => {
                if let Err(err) = self.store.mark_read(peer) {
                    self.fail(origin, None, &err);
                    return;
                }
                self.outbox_peers.insert(peer);
                self.flush(peer);
            }
            Command::ListPeers => {
                let mut peers: Vec<PeerInfo> = self.peers.values().map(Peer::info).collect();
                peers.extend(self.ipmsg_peers());
                peers.sort_by(|a, b| (&a.group, &a.name, a.id).cmp(&(&b.group, &b.name, b.id)));
                self.sinks.reply(origin, Event::Peers { peers });
            }
            Command::ListConversations => match self.store.conversations() {
                Ok(conversations) => self.sinks.reply(origin, Event::Conversations { conversations }),
                Err(err) => self.fail(origin, None, &err),
            },
            Command::LoadHistory { peer, before, limit } => {
                let limit = limit.min(MAX_PAGE);
                match self.store.history(peer, before, limit + 1) {
                    Ok(mut messages) => {
                        let has_more = messages.len() > limit;
                        if has_more {
                            messages.remove(0);
                        }
                        self.sinks.reply(origin, Event::History { peer, messages, has_more });
                    }
                    Err(err) => self.fail(origin, None, &err),
                }
            }
            Command::Search { query, limit } => match self.store.search(&query, limit.min(MAX_PAGE)) {
                Ok(messages) => self.sinks.reply(origin, Event::SearchResults { query, messages }),
                Err(err) => self.fail(origin, None, &err),
            },
            Command::Connect { addr } => match addr.parse::<SocketAddr>() {
                Ok(sock) => self.start_connect(ConnectTarget::Addr { addr, origin }, sock),
                Err(err) => self.fail(origin, None, &format!("cannot connect to {addr:?}: {err}")),
            },
            Command::SetProfile { name, group, status } => {
                if let Some(name) = name {
                    self.me.name = clip_label(name);
                }
                if let Some(group) = group {
                    self.me.group = clip_label(group);
                }
                if let Some(status) = status {
                    self.me.status = status;
                }
                self.announce(&Datagram::Heartbeat(self.me.clone()));
                self.ipmsg_announce(crate::protocol::ipmsg::mode::BR_ABSENCE);
            }
            Command::SetTargets { targets } => match parse_targets(&targets, self.me.port) {
                Ok(addrs) => {
                    self.announcer.set_targets(addrs);
                    self.announce(&Datagram::Heartbeat(self.me.clone()));
                }
                Err(err) => self.fail(origin, None, &err),
            },
            Command::SetReceiving { download_dir, auto_accept } => {
                if let Some(dir) = download_dir {
                    self.download_dir = dir;
                }
                if let Some(auto_accept) = auto_accept {
                    self.auto_accept = auto_accept;
                }
            }
            Command::Stats => {
                let stats = Stats {
                    datagrams: self.counters.datagrams.load(Ordering::Relaxed),
                    malformed_datagrams: self.counters.malformed_datagrams.load(Ordering::Relaxed),
                    bad_connections: self.bad_connections,
                    connections_opened: self.next_conn,
                    dropped_events: self.sinks.dropped,
                    peers_online: self.peers.len(),
                    connections: self.conns.len(),
                };
                self.sinks.reply(origin, Event::Stats { stats });
            }
            Command::SendFiles { to, paths, tag } => self.send_files(to, paths, tag, origin),
            Command::AcceptTransfer { transfer_id, always } => self.accept(transfer_id, always, origin),
            Command::DeclineTransfer { transfer_id } => self.decline(transfer_id, origin),
            Command::CancelTransfer { transfer_id } => self.cancel(transfer_id, origin),
            Command::RetryTransfer { transfer_id } => self.retry(transfer_id, origin),
            Command::ListTransfers => self.list_transfers(origin),
            Command::SafetyNumber { peer } => self.safety_number(peer, origin),
            Command::Verify { peer, verified } => {
                let trust = if verified { Trust::Verified } else { Trust::Unverified };
                self.set_trust(peer, trust, origin);
            }
            Command::AcceptKey { peer } => self.set_trust(peer, Trust::Unverified, origin),
            Command::Shutdown => {}
        }
    }

    fn fail(&mut self, origin: Origin, tag: Option<String>, error: &dyn std::fmt::Display) {
        self.sinks.reply(origin, Event::CommandFailed { error: error.to_string(), tag });
    }

    fn send_message(&mut self, to: &[PeerId], text: &str, tag: Option<String>, origin: Origin) {
        if let Err(err) = check_text_len(text) {
            self.fail(origin, tag, &format!("message not sent: {err}"));
            return;
        }
        if to.is_empty() {
            self.fail(origin, tag, &"message not sent: no recipient");
            return;
        }
        if let Some(unknown) = to.iter().find(|peer| !self.known.contains(peer)) {
            self.fail(origin, tag, &format!("message not sent: unknown peer {unknown}"));
            return;
        }
        let sent_at_ms = now_ms();
        for &peer in to {
            match self.store.insert_outgoing(random_id(MsgId::from_bytes), peer, text, sent_at_ms) {
                Ok(message) => self.sinks.emit(&Event::MessageQueued { message, tag: tag.clone() }),
                Err(err) => {
                    self.fail(origin, tag.clone(), &err);
                    continue;
                }
            }
            self.outbox_peers.insert(peer);
            self.flush(peer);
        }
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Datagram { from, datagram } => self.on_datagram(from, datagram),
            NetEvent::IpMsg { from, packet } => self.on_ipmsg(from, &packet),
            NetEvent::IpMsgRequest { stream, from, packet } => self.on_ipmsg_request(stream, from, &packet),
            NetEvent::IpMsgServed { transfer, index, outcome } => {
                self.on_ipmsg_served(transfer, index, outcome);
            }
            NetEvent::Accepted { stream, remote } => {
                if self.conns.len() >= MAX_CONNECTIONS {
                    log::info!("refusing connection from {remote}: {MAX_CONNECTIONS} already open");
                    return;
                }
                self.make_room_for_ungreeted();
                self.open_conn(stream, Role::Responder, None);
            }
            NetEvent::Connected { target, result } => self.on_connected(target, result),
            NetEvent::Secured { conn, session } => {
                if let Some(conn) = self.conns.get_mut(&conn) {
                    conn.session = Some(session);
                }
            }
            NetEvent::Frame { conn, frame } => self.on_frame(conn, frame),
            NetEvent::Scanned { to, tag, origin, result } => self.on_scanned(to, tag, origin, result),
            NetEvent::Transfer(id, report) => self.on_transfer_report(id, report),
            NetEvent::Closed { conn, reason, misbehaved } => {
                // A connection the hub closed already was counted then. One whose reader
                // gave up waiting for a hello is junk as much as one the hub cut off.
                let silent = |c: &Conn| c.peer.is_none() && c.opened.elapsed() >= HELLO_TIMEOUT;
                match self.conns.get(&conn) {
                    Some(c) if misbehaved || silent(c) => self.close_junk(conn, &reason),
                    _ => self.close_conn(conn, &reason),
                }
            }
        }
    }

    fn on_datagram(&mut self, from: SocketAddrV4, datagram: Datagram) {
        if datagram.sender() == self.me.id {
            return;
        }
        match datagram {
            Datagram::Announce(presence) => {
                self.announcer.reply(&self.me, from);
                self.saw(presence, *from.ip(), false);
            }
            Datagram::Heartbeat(presence) => {
                if !self.peers.contains_key(&presence.id) {
                    self.announcer.reply(&self.me, from);
                }
                self.saw(presence, *from.ip(), false);
            }
            Datagram::Reply(presence) => self.saw(presence, *from.ip(), false),
            Datagram::Goodbye(Goodbye { id }) => self.drop_peer(id, LeaveReason::Goodbye),
        }
    }

    /// Records that `presence` is alive: adds or refreshes the peer. `ip` is where it was heard;
    /// a TCP source address (`from_tcp`) only places a peer we did not know, because a
    /// connection may come from another local address than the one the peer announces from.
    fn saw(&mut self, presence: Presence, ip: Ipv4Addr, from_tcp: bool) {
        let now = Instant::now();
        let id = presence.id;
        let changed = match self.peers.get_mut(&id) {
            Some(peer) => {
                if !from_tcp && peer.conn.is_some() && peer.ip != ip {
                    // A proven connection outranks an unauthenticated datagram: whoever sends
                    // this cannot move the peer elsewhere while it is connected.
                    log::debug!("ignoring presence of {id} from {ip}: connected at {}", peer.ip);
                    return;
                }
                peer.last_seen = now;
                let ip = if from_tcp { peer.ip } else { ip };
                let changed = peer.presence != presence || peer.ip != ip;
                peer.presence = presence;
                peer.ip = ip;
                changed
            }
            None => {
                let mut peer = Peer {
                    presence,
                    ip,
                    last_seen: now,
                    conn: None,
                    connecting: false,
                    retry_at: now,
                    backoff: RETRY_BACKOFF.0,
                    trust: Trust::Unverified,
                };
                self.remember(&peer.info());
                let change = self.pin(&mut peer);
                let info = peer.info();
                self.peers.insert(id, peer);
                self.known.insert(id);
                self.sinks.emit(&Event::PeerJoined { peer: info.clone() });
                if let Some((previous, previous_verified)) = change {
                    self.sinks.emit(&Event::KeyChanged { peer: info, previous, previous_verified });
                }
                self.flush(id);
                self.transfer_housekeeping(now);
                return;
            }
        };
        if changed && let Some(info) = self.peers.get(&id).map(Peer::info) {
            self.remember(&info);
            self.sinks.emit(&Event::PeerUpdated { peer: info });
        }
    }

    fn remember(&mut self, info: &PeerInfo) {
        let known = KnownPeer {
            id: info.id,
            name: info.name.clone(),
            group: info.group.clone(),
            host: info.host.clone(),
            addr: format!("{}:{}", info.addr, info.port),
        };
        if let Err(err) = self.store.remember_peer(&known, now_ms()) {
            log::warn!("cannot remember peer {}: {err}", info.id);
        }
    }

    fn drop_peer(&mut self, id: PeerId, reason: LeaveReason) {
        if let Some(peer) = self.peers.remove(&id) {
            if let Some(conn) = peer.conn {
                self.close_conn(conn, "peer left");
            }
            self.sinks.emit(&Event::PeerLeft { id, reason });
        }
    }

    fn open_conn(&mut self, stream: TcpStream, role: Role, dialed: Option<PeerId>) {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let started = socket::prepare_stream(&stream)
            .and_then(|()| ConnHandle::start(id, stream, role, self.identity.clone(), &self.net_tx));
        match started {
            Ok(handle) => {
                handle.send(&Frame::Hello(self.me.clone()));
                self.conns
                    .insert(id, Conn { handle, peer: None, session: None, opened: Instant::now(), dialed });
            }
            Err(err) => {
                // Also a connection reset right after connecting (the peer was dying): an
                // attempt that failed, or the peer would count as connecting for ever.
                log::info!("connection setup failed: {err}");
                if let Some(peer) = dialed.and_then(|peer| self.peers.get_mut(&peer)) {
                    peer.connect_failed();
                }
            }
        }
    }

    /// Closes the oldest connection still without hello when there are too many of them.
    fn make_room_for_ungreeted(&mut self) {
        let ungreeted = self.conns.iter().filter(|(_, conn)| conn.peer.is_none());
        if ungreeted.clone().count() < MAX_UNGREETED {
            return;
        }
        if let Some(oldest) = ungreeted.min_by_key(|(_, conn)| conn.opened).map(|(id, _)| *id) {
            self.close_junk(oldest, &format!("more than {MAX_UNGREETED} connections without hello"));
        }
    }

    /// Closes connections that did not say hello in time (silent, slow-loris, or stuck in
    /// the handshake).
    fn close_late_hellos(&mut self, now: Instant) {
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.peer.is_none() && now.duration_since(conn.opened) > HELLO_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.close_junk(id, &format!("no hello within {} s", HELLO_TIMEOUT.as_secs()));
        }
    }

    /// Closes a connection that broke the rules or never said hello: counted, and logged at
    /// a limited rate.
    fn close_junk(&mut self, id: ConnId, reason: &str) {
        self.bad_connections += 1;
        if let Some(count) = self.junk_log.tick(Instant::now()) {
            let from = self.conns.get(&id).map(|conn| conn.handle.remote.to_string()).unwrap_or_default();
            log::info!("closed {count} junk connection(s), the last from {from}: {reason}");
        }
        self.close_conn(id, reason);
    }

    /// A connection leaves the table: if we dialed it and its hello never came, that attempt
    /// failed (the peer no longer counts as connecting).
    fn dial_ended(&mut self, conn: &Conn) {
        if let Some(peer) = conn.dialed.filter(|_| conn.peer.is_none()).and_then(|id| self.peers.get_mut(&id))
        {
            peer.connect_failed();
        }
    }

    fn close_conn(&mut self, id: ConnId, reason: &str) {
        let Some(conn) = self.conns.remove(&id) else { return };
        log::debug!("connection {} to {} closed: {reason}", id.0, conn.handle.remote);
        self.dial_ended(&conn);
        conn.handle.close();
        self.awaiting_ack.retain(|_, (on, _)| *on != id);
        let Some(peer_id) = conn.peer else { return };
        if let Some(peer) = self.peers.get_mut(&peer_id)
            && peer.conn == Some(id)
        {
            peer.conn = None;
            // Whatever was in flight on it goes out again on a new connection.
            self.flush(peer_id);
        }
    }

    fn on_connected(&mut self, target: ConnectTarget, result: std::io::Result<TcpStream>) {
        match (target, result) {
            (ConnectTarget::Peer(id), result) => {
                let Some(peer) = self.peers.get_mut(&id) else { return };
                match result {
                    // Still connecting until the hello: see `Conn::dialed`.
                    Ok(stream) => self.open_conn(stream, Role::Initiator, Some(id)),
                    Err(err) => {
                        log::debug!("connect to {id} failed: {err}");
                        peer.connect_failed();
                    }
                }
            }
            (ConnectTarget::Addr { .. }, Ok(stream)) => self.open_conn(stream, Role::Initiator, None),
            (ConnectTarget::Addr { addr, origin }, Err(err)) => {
                self.sinks.reply(origin, Event::ConnectFailed { addr, reason: err.to_string() });
            }
        }
    }

    fn on_frame(&mut self, conn_id: ConnId, frame: Frame) {
        let Some(conn) = self.conns.get(&conn_id) else { return };
        let remote_ip = match conn.handle.remote.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => return,
        };
        if let Frame::Hello(presence) = frame {
            self.on_hello(conn_id, presence, remote_ip);
            return;
        }
        if let Frame::Fetch(fetch) = frame {
            self.on_fetch(conn_id, fetch);
            return;
        }
        let Some(peer) = conn.peer else { return };
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.last_seen = Instant::now();
        }
        match frame {
            Frame::Message(message) => self.on_message(conn_id, peer, &message),
            Frame::Delivered(receipt) => self.on_receipt(peer, &receipt, MessageState::Delivered),
            Frame::Read(receipt) => self.on_receipt(peer, &receipt, MessageState::Read),
            Frame::Offer(offer) => self.on_offer(conn_id, peer, offer),
            answer @ (Frame::Decline(_) | Frame::Cancel(_) | Frame::Done(_)) => {
                self.on_transfer_answer(peer, answer);
            }
            // Data frames belong on data connections; a chat connection ignores them.
            Frame::Hello(_)
            | Frame::Unknown { .. }
            | Frame::Fetch(_)
            | Frame::Chunk(_)
            | Frame::FileEnd(_) => {}
        }
    }

    fn on_hello(&mut self, conn_id: ConnId, presence: Presence, ip: Ipv4Addr) {
        let id = presence.id;
        if id == self.me.id {
            self.close_conn(conn_id, "connected to ourselves");
            return;
        }
        // The presence says who the peer claims to be; the handshake proved which key it holds.
        let proven = self.conns.get(&conn_id).and_then(|conn| conn.session.as_ref()).map(|s| s.remote());
        if proven != Some(presence.key) {
            self.close_junk(
                conn_id,
                &format!("hello claims to be {id} but the handshake proved another key"),
            );
            return;
        }
        let dialed = self.conns.get_mut(&conn_id).and_then(|conn| {
            conn.peer = Some(id);
            conn.dialed
        });
        if let Some(other) =
            dialed.filter(|dialed| *dialed != id).and_then(|other| self.peers.get_mut(&other))
        {
            // We dialed someone else's old address: no connection to them came of it.
            other.connect_failed();
        }
        self.saw(presence, ip, true);
        if let Some(peer) = self.peers.get_mut(&id) {
            let previous = peer.conn.replace(conn_id);
            peer.backoff = RETRY_BACKOFF.0;
            peer.connecting = false;
            if let Some(previous) = previous.filter(|previous| *previous != conn_id) {
                // Messages still in flight on the previous connection go out again on this
                // one, from the oldest: if only the later ones went here, the receiver could
                // read them before the earlier ones arrive on the other connection. The
                // receiver drops the copies, so each message is still shown once.
                self.awaiting_ack.retain(|_, (on, _)| *on != previous);
            }
        }
        self.flush(id);
    }

    fn on_message(&mut self, conn_id: ConnId, peer: PeerId, message: &WireMessage) {
        let unconfirmed = self.peers.get(&peer).is_some_and(|p| p.trust.is_unconfirmed());
        match self.store.insert_incoming(message.msg_id, peer, &message.text, message.sent_at_ms, unconfirmed)
        {
            Ok(Some(stored)) => self.sinks.emit(&Event::MessageReceived { message: stored }),
            Ok(None) => log::debug!("duplicate message {} from {peer}", message.msg_id),
            Err(err) => {
                // Not acknowledged, so the sender keeps it and retries.
                log::error!("cannot store message from {peer}: {err}");
                return;
            }
        }
        if let Some(conn) = self.conns.get(&conn_id) {
            conn.handle.send(&Frame::Delivered(Receipt { msg_ids: vec![message.msg_id] }));
        }
    }

    fn on_receipt(&mut self, peer: PeerId, receipt: &Receipt, state: MessageState) {
        for &msg_id in &receipt.msg_ids {
            if state == MessageState::Delivered {
                self.awaiting_ack.remove(&msg_id);
            }
            match self.store.advance_outgoing(peer, msg_id, state) {
                Ok(true) => self.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state }),
                Ok(false) => {}
                Err(err) => log::error!("cannot record receipt for {msg_id}: {err}"),
            }
        }
    }

    /// Delivers what is queued for `peer`: on its connection if one is up, else by opening
    /// one (respecting the retry backoff).
    fn flush(&mut self, id: PeerId) {
        if !self.outbox_peers.contains(&id) {
            return;
        }
        if self.ipmsg_flush(id) {
            // IP Messenger resends on its own schedule (ipmsg_housekeeping).
            self.outbox_peers.remove(&id);
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Some(conn_id) = peer.conn else {
            if !peer.connecting && Instant::now() >= peer.retry_at {
                peer.connecting = true;
                let addr = peer.tcp_addr();
                self.start_connect(ConnectTarget::Peer(id), addr);
            }
            return;
        };
        if let Err(err) = self.write_outbox(id, conn_id) {
            log::error!("cannot read outbox for {id}: {err}");
        }
    }

    fn write_outbox(&mut self, peer: PeerId, conn_id: ConnId) -> Result<(), StoreError> {
        let offers_pending = self.send_offers(peer, conn_id);
        let Some(conn) = self.conns.get(&conn_id) else { return Ok(()) };
        let mut pending = self.store.undelivered(peer)?;
        let reads = self.store.unreported_reads(peer, MAX_RECEIPT_IDS)?;
        if pending.is_empty() && reads.is_empty() && !offers_pending {
            self.outbox_peers.remove(&peer);
            return Ok(());
        }
        let now = Instant::now();
        let mut stuck = false;
        let mut newly_sent = Vec::new();
        pending.retain(|m| !self.awaiting_ack.contains_key(&m.msg_id));
        for message in pending {
            let frame = Frame::Message(WireMessage {
                msg_id: message.msg_id,
                sent_at_ms: message.sent_at_ms,
                text: message.text,
            });
            if !conn.handle.send(&frame) {
                stuck = true;
                break;
            }
            self.awaiting_ack.insert(message.msg_id, (conn_id, now));
            newly_sent.push(message.msg_id);
        }
        if !stuck && !reads.is_empty() {
            if conn.handle.send(&Frame::Read(Receipt { msg_ids: reads.clone() })) {
                self.store.mark_reads_reported(peer, &reads)?;
            } else {
                stuck = true;
            }
        }
        for msg_id in newly_sent {
            if self.store.advance_outgoing(peer, msg_id, MessageState::Sent)? {
                self.sinks.emit(&Event::MessageStateChanged { msg_id, peer, state: MessageState::Sent });
            }
        }
        if stuck {
            self.close_conn(conn_id, "write queue full");
        }
        Ok(())
    }

    fn start_connect(&mut self, target: ConnectTarget, addr: SocketAddr) {
        let net = self.net_tx.clone();
        let local = self.local_ip;
        let spawned = threads::spawn("pigeon-connect", move || {
            let result = socket::connect(local, addr, CONNECT_TIMEOUT);
            // The hub may have stopped meanwhile; the stream then just closes.
            net.send(NetEvent::Connected { target, result }).ok();
        });
        match spawned {
            Ok(handle) => self.helpers.push(handle),
            Err(err) => log::error!("cannot start connect thread: {err}"),
        }
    }

    fn announce_on_schedule(&mut self, now: Instant) {
        match self.startup_left.next() {
            Some(delay) => {
                self.announce(&Datagram::Announce(self.me.clone()));
                self.next_announce = now + *delay;
            }
            None => {
                // Told to the others in the heartbeat itself, so they wait long enough.
                self.me.heartbeat_secs = heartbeat_secs(self.peers.len() + 1);
                self.announce(&Datagram::Heartbeat(self.me.clone()));
                self.next_announce = now + Duration::from_secs(self.me.heartbeat_secs.into());
            }
        }
    }

    fn announce(&self, datagram: &Datagram) {
        self.announcer.announce(datagram, self.peer_discovery_addrs());
    }

    /// Known peers' discovery addresses (peers announce from the port they listen on).
    fn peer_discovery_addrs(&self) -> Vec<SocketAddrV4> {
        self.peers.values().map(|peer| SocketAddrV4::new(peer.ip, peer.presence.port)).collect()
    }

    fn housekeeping(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.duration_since(peer.last_seen) > peer.timeout())
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.drop_peer(id, LeaveReason::Timeout);
        }
        let stale: HashSet<ConnId> = self
            .awaiting_ack
            .values()
            .filter(|(_, sent)| now.duration_since(*sent) > ACK_TIMEOUT)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in stale {
            self.close_conn(conn, "acknowledgement timed out");
        }
        self.close_late_hellos(now);
        self.transfer_housekeeping(now);
        self.ipmsg_housekeeping(now);
        let waiting: Vec<PeerId> = self.outbox_peers.iter().copied().collect();
        for id in waiting {
            self.flush(id);
        }
        threads::join_finished(&mut self.helpers);
    }

    fn shut_down(mut self) {
        self.stop.raise();
        self.announcer.goodbye(Goodbye { id: self.me.id }, self.peer_discovery_addrs());
        self.ipmsg_goodbye();
        for (_, conn) in self.conns.drain() {
            conn.handle.close();
        }
        self.stop_transfers();
        threads::join_all(self.helpers.drain(..));
        self.sinks.emit(&Event::Stopped);
        self.sinks.wake();
        self.sinks.drop_clients();
        self.wake.poke();
        threads::join_all(self.io_threads.drain(..));
    }
}

/// Keeps a label within the protocol's limit, cutting at a character boundary.
pub fn clip_label(mut label: String) -> String {
    let mut end = label.len().min(crate::protocol::MAX_LABEL_BYTES);
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    label.truncate(end);
    label
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Targets given as IPv4 addresses with an optional port.
fn parse_targets(targets: &[String], default_port: u16) -> Result<Vec<SocketAddrV4>, String> {
    targets
        .iter()
        .map(|target| {
            target
                .parse::<SocketAddrV4>()
                .or_else(|_| {
                    target.parse::<std::net::Ipv4Addr>().map(|ip| SocketAddrV4::new(ip, default_port))
                })
                .map_err(|_not_an_address| format!("invalid target {target:?}: expected an IPv4 address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_slow_down_so_a_subnet_carries_at_most_25_per_second() {
        assert_eq!(heartbeat_secs(1), HEARTBEAT_SECS);
        assert_eq!(heartbeat_secs(50), HEARTBEAT_SECS);
        assert_eq!(heartbeat_secs(51), 3);
        assert_eq!(heartbeat_secs(250), 10);
        assert_eq!(heartbeat_secs(1_000_000), MAX_HEARTBEAT_SECS);
        // Up to 750 nodes (three /24s' worth) the cap holds exactly.
        for nodes in 1..=750u16 {
            let per_second = f64::from(nodes) / f64::from(heartbeat_secs(nodes.into()));
            assert!(per_second <= 25.0, "{nodes} nodes send {per_second} heartbeats per second");
        }
    }
}
