//! The engine: one [`Node`] owns every socket, thread and piece of state; the outside world
//! sends it [`Command`]s and receives [`Event`]s. It knows nothing of windows or terminals.
//!
//! Threads, all named `pigeon-*`: the hub (state owner, `hub.rs`), one UDP receiver per
//! discovery socket, the TCP accept thread, a reader and a writer per connection, short-lived
//! connect threads, and the control-socket threads. See docs/ARCHITECTURE.md.

pub mod command;
mod connection;
mod control;
pub mod discovery;
pub mod event;
mod files;
mod hub;
mod ipmsg_receive;
mod ipmsg_send;
pub mod lines;
mod listener;
mod log_limit;
mod sinks;
mod socket;
pub(crate) mod threads;
pub mod transfer;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use thiserror::Error;

pub use command::Command;
pub use control::socket_path as control_socket_path;
pub use event::{Event, LeaveReason, PeerInfo, Stats, TransferInfo, human_bytes};
pub use hub::{HEARTBEAT_INTERVAL, PEER_TIMEOUT, SUBNET_HEARTBEATS};
pub use transfer::Progress;

use crate::config::{Config, host_name};
use crate::protocol::announce::{HEARTBEAT_SECS, Presence};
use crate::protocol::ids::{ID_BYTES, PeerId};
use crate::secure::{Identity, IdentityError};
use crate::store::{Checkpointer, Store, StoreError};
use discovery::{Announcer, Counters};
use hub::{Hub, HubParts, Input};
use sinks::Origin;
use threads::StopFlag;

/// File name of the history database inside the data folder.
pub const HISTORY_FILE: &str = "history.sqlite3";

/// File locked while a node runs on a data folder.
const LOCK_FILE: &str = "pigeon.lock";

/// Commands queued for the hub before senders wait.
const INPUT_QUEUE: usize = 1024;

/// Events queued for the owner before the hub starts dropping (and counting) them.
const EVENT_QUEUE: usize = 16 * 1024;

/// I/O reports queued for the hub before I/O threads wait.
const NET_QUEUE: usize = 4096;

/// How often the write-ahead log is copied into the history database. Short enough that the
/// log stays small (lookups in a long log slowed receiving 10,000 small files by a tenth), long
/// enough that an idle node does nothing measurable.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a command waits for room in the hub's queue before the send fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Another Pigeon already runs on this data folder.
    #[error("another Pigeon is already running on {}", .0.display())]
    Locked(PathBuf),
    /// The data folder cannot be created or used.
    #[error("cannot use data folder {}: {source}", path.display())]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The port cannot be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another program using this port? choose another with --port)"
    )]
    Bind {
        /// Address and port.
        addr: SocketAddrV4,
        /// Why.
        source: io::Error,
    },
    /// A configured target does not resolve to an IPv4 address.
    #[error("cannot resolve target {target:?}: {reason}")]
    Target {
        /// The target as configured.
        target: String,
        /// Why.
        reason: String,
    },
    /// The key file cannot be read or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The history database cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(io::Error),
}

/// The node has stopped and takes no more commands.
#[derive(Debug, Error)]
#[error("the node has stopped")]
pub struct NodeStopped;

/// A running node. Dropping it stops the node (goodbye sent, threads joined).
pub struct Node {
    /// Commands to the hub; closing it also stops the hub.
    inputs: Sender<Input>,
    /// Events from the hub.
    events: Receiver<Event>,
    /// The hub thread, joined on stop.
    hub: Option<JoinHandle<()>>,
    /// Our identity.
    id: PeerId,
    /// Bound address of the discovery socket and TCP listener.
    local_addr: SocketAddrV4,
}

/// A clonable way to send commands to a node.
#[derive(Clone)]
pub struct CommandSender(Sender<Input>);

impl CommandSender {
    /// Queues a command for the hub (waiting a bounded time if the hub is busy).
    pub fn send(&self, command: Command) -> Result<(), NodeStopped> {
        self.0
            .send_timeout(Input::Command(command, Origin::Owner), COMMAND_TIMEOUT)
            .map_err(|_stopped| NodeStopped)
    }
}

impl Node {
    /// Starts a node: takes the data folder, binds the ports, starts the threads.
    pub fn start(config: &Config) -> Result<Node, StartError> {
        let settings = &config.settings;
        let data_dir = &config.data_dir;
        let data_err = |source| StartError::DataDir { path: data_dir.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(data_err)?;
        let lock = lock_data_dir(data_dir)?;
        let store = Store::open(&data_dir.join(HISTORY_FILE))?;
        let identity = Arc::new(Identity::load_or_create(data_dir)?);
        let targets = resolve_targets(&settings.targets, settings.port)?;

        let wanted = SocketAddrV4::new(settings.bind, settings.port);
        let listener =
            socket::tcp_listener(wanted).map_err(|source| StartError::Bind { addr: wanted, source })?;
        let port = listener.local_addr().map_err(|source| StartError::Bind { addr: wanted, source })?.port();
        let local_addr = SocketAddrV4::new(settings.bind, port);
        let bind_err = |source| StartError::Bind { addr: local_addr, source };
        let udp = socket::udp_socket(local_addr).map_err(bind_err)?;
        let broadcast_udp =
            match settings.broadcast.then(|| discovery::broadcast_receiver_addr(settings.bind, port)) {
                Some(Some(addr)) => {
                    Some(socket::udp_socket(addr).map_err(|source| StartError::Bind { addr, source })?)
                }
                _ => None,
            };
        let control = bind_control(data_dir);
        let checkpointer = Checkpointer::open(&data_dir.join(HISTORY_FILE))?;

        let stop = StopFlag::default();
        let counters = Arc::new(Counters::default());
        let (inputs_tx, inputs_rx) = crossbeam_channel::bounded(INPUT_QUEUE);
        let (events_tx, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (net_tx, net_rx) = crossbeam_channel::bounded(NET_QUEUE);
        let mut io_threads = Vec::new();
        let announcer = Announcer::new(
            udp.try_clone().map_err(bind_err)?,
            settings.bind,
            port,
            settings.broadcast,
            targets,
        );
        for socket in std::iter::once(udp).chain(broadcast_udp) {
            let (net, stop, counters) = (net_tx.clone(), stop.clone(), counters.clone());
            io_threads.push(
                threads::spawn("pigeon-udp", move || {
                    discovery::receive_loop(&socket, &net, &stop, &counters);
                })
                .map_err(StartError::Thread)?,
            );
        }
        let (net, stop_listen) = (net_tx.clone(), stop.clone());
        io_threads.push(
            threads::spawn("pigeon-listen", move || listener::accept_loop(&listener, &net, &stop_listen))
                .map_err(StartError::Thread)?,
        );
        let (checkpoint_stop, checkpoint_stopped) = crossbeam_channel::bounded::<()>(0);
        io_threads.push(
            threads::spawn("pigeon-checkpoint", move || {
                // Runs until the hub drops the sender at shutdown.
                while checkpoint_stopped.recv_timeout(CHECKPOINT_INTERVAL) == Err(RecvTimeoutError::Timeout) {
                    if let Err(err) = checkpointer.checkpoint() {
                        log::warn!("history checkpoint failed: {err}");
                    }
                }
            })
            .map_err(StartError::Thread)?,
        );
        let (ipmsg, ipmsg_unavailable) = if settings.ipmsg {
            start_ipmsg(settings, &net_tx, &stop, &counters, &mut io_threads)?
        } else {
            (None, None)
        };
        let ipmsg_addr = ipmsg.as_ref().map(|_| SocketAddrV4::new(settings.bind, settings.ipmsg_port));
        let control_path = control.as_ref().map(|_| control::socket_path(data_dir));
        if let Some(control) = control {
            let (inputs, stop) = (inputs_tx.clone(), stop.clone());
            io_threads.push(
                threads::spawn("pigeon-control", move || control::accept_loop(&control, &inputs, &stop))
                    .map_err(StartError::Thread)?,
            );
        }

        let me_id = identity.peer_id();
        let me = Presence {
            id: me_id,
            key: identity.public(),
            name: hub::clip_label(settings.name.clone()),
            group: hub::clip_label(settings.group.clone()),
            host: hub::clip_label(host_name()),
            status: settings.status,
            port,
            heartbeat_secs: HEARTBEAT_SECS,
        };
        let hub = Hub::new(HubParts {
            me,
            store,
            announcer,
            inputs: inputs_rx,
            net: net_rx,
            net_tx,
            events: events_tx,
            stop,
            io_threads,
            counters,
            wake: Wake {
                local_addr,
                ipmsg_addr,
                control: control_path,
                checkpoint_stop: Some(checkpoint_stop),
            },
            lock,
            local_ip: settings.bind,
            download_dir: config.download_dir(),
            auto_accept: settings.auto_accept,
            identity,
            ipmsg,
            ipmsg_unavailable,
        })?;
        let hub = threads::spawn("pigeon-hub", move || hub.run(local_addr)).map_err(StartError::Thread)?;
        Ok(Node { inputs: inputs_tx, events: events_rx, hub: Some(hub), id: me_id, local_addr })
    }

    /// A handle for sending commands, clonable into other threads.
    pub fn commands(&self) -> CommandSender {
        CommandSender(self.inputs.clone())
    }

    /// Sends one command (see [`CommandSender::send`]).
    pub fn send(&self, command: Command) -> Result<(), NodeStopped> {
        self.commands().send(command)
    }

    /// The node's events, in order. The first is `Started`, the last `Stopped`.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Calls `waker` after each batch of events (a UI sets `request_repaint` here).
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        // If the hub is gone there is nothing left to wake for.
        self.inputs.send_timeout(Input::SetWaker(Arc::new(waker)), COMMAND_TIMEOUT).ok();
    }

    /// This node's identity.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Address and port the node is bound to.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    /// Says goodbye and stops, joining every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Fails only if the hub already stopped, which is what we want anyway.
        self.inputs.send_timeout(Input::Command(Command::Shutdown, Origin::Owner), COMMAND_TIMEOUT).ok();
        if let Some(hub) = self.hub.take() {
            threads::join_all([hub]);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pokes the blocking I/O threads so that they notice shutdown without waiting for their
/// poll timeout. Only ever addresses this node's own sockets.
pub struct Wake {
    /// The node's own bound address (unspecified means 127.0.0.1).
    local_addr: SocketAddrV4,
    /// The IP Messenger socket's address, when it is bound.
    ipmsg_addr: Option<SocketAddrV4>,
    /// The control socket, if one was bound.
    control: Option<PathBuf>,
    /// Dropping it ends the checkpoint thread.
    checkpoint_stop: Option<Sender<()>>,
}

impl Wake {
    fn poke(&mut self) {
        self.checkpoint_stop.take();
        let ip =
            if self.local_addr.ip().is_unspecified() { Ipv4Addr::LOCALHOST } else { *self.local_addr.ip() };
        let own = SocketAddrV4::new(ip, self.local_addr.port());
        // Each poke is a courtesy: if it fails, the thread wakes at its poll timeout anyway.
        if let Ok(udp) = UdpSocket::bind(SocketAddrV4::new(ip, 0)) {
            udp.send_to(&[], own).ok();
            if let Some(ipmsg) = self.ipmsg_addr {
                udp.send_to(&[], SocketAddrV4::new(ip, ipmsg.port())).ok();
            }
        }
        TcpStream::connect_timeout(&SocketAddr::V4(own), Duration::from_millis(200)).ok();
        if let Some(ipmsg) = self.ipmsg_addr {
            let addr = SocketAddr::V4(SocketAddrV4::new(ip, ipmsg.port()));
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok();
        }
        if let Some(path) = &self.control {
            std::os::unix::net::UnixStream::connect(path).ok();
        }
    }
}

/// The first port after the configured one where both UDP and TCP can be bound now, trying
/// at most `tries` ports (for offering another when the configured one is taken).
pub fn free_port_after(settings: &crate::config::Settings, tries: u16) -> Option<u16> {
    (1..=tries).filter_map(|step| settings.port.checked_add(step)).find(|&port| {
        let addr = SocketAddrV4::new(settings.bind, port);
        std::net::TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
    })
}

/// Binds the IP Messenger port and starts its receiver. A port that cannot be bound is not
/// fatal: Pigeon peers work without it, and the reason is reported to the user.
fn start_ipmsg(
    settings: &crate::config::Settings,
    net: &Sender<hub::NetEvent>,
    stop: &StopFlag,
    counters: &Arc<Counters>,
    io_threads: &mut Vec<JoinHandle<()>>,
) -> Result<(Option<hub::IpMsg>, Option<String>), StartError> {
    let port = settings.ipmsg_port;
    let addr = SocketAddrV4::new(settings.bind, port);
    let udp = match socket::ipmsg_socket(addr) {
        Ok(udp) => udp,
        Err(err) => {
            let reason = format!(
                "IP Messenger is off: UDP port {port} cannot be used ({err}). Is another IP Messenger client \
                 (FeiQ, iptux) running on this computer?"
            );
            log::warn!("{reason}");
            return Ok((None, Some(reason)));
        }
    };
    let receiver = udp.try_clone().map_err(|source| StartError::Bind { addr, source })?;
    let (udp_net, udp_stop, counters) = (net.clone(), stop.clone(), counters.clone());
    io_threads.push(
        threads::spawn("pigeon-ipmsg", move || {
            discovery::ipmsg_receive_loop(&receiver, &udp_net, &udp_stop, &counters);
        })
        .map_err(StartError::Thread)?,
    );
    // Clients fetch what we offer over TCP on the same port; without it they cannot.
    match socket::tcp_listener(addr) {
        Ok(listener) => {
            let (net, stop) = (net.clone(), stop.clone());
            io_threads.push(
                threads::spawn("pigeon-ipmsg-listen", move || {
                    let mut readers = ipmsg_send::RequestReaders::new(net.clone());
                    listener::accept_with(&listener, &net, &stop, |stream, remote| {
                        readers.start(stream, remote);
                        None
                    });
                })
                .map_err(StartError::Thread)?,
            );
        }
        Err(err) => log::warn!("IP Messenger clients cannot fetch files: TCP port {port}: {err}"),
    }
    let mut destinations: Vec<SocketAddrV4> = Vec::new();
    if settings.broadcast {
        if settings.bind.is_unspecified() {
            destinations.push(SocketAddrV4::new(Ipv4Addr::BROADCAST, port));
        }
        destinations.extend(
            discovery::broadcast_subnets(settings.bind)
                .iter()
                .map(|subnet| SocketAddrV4::new(subnet.broadcast, port)),
        );
    }
    for target in resolve_targets(&settings.targets, port)? {
        destinations.push(SocketAddrV4::new(*target.ip(), port));
    }
    Ok((Some(hub::IpMsg::new(udp, port, destinations, host_name())), None))
}

fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StartError> {
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::DataDir { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(data_dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::DataDir { path, source }),
    }
}

/// Binds the control socket; a node without one still works, it just cannot take handoffs.
fn bind_control(data_dir: &Path) -> Option<std::os::unix::net::UnixListener> {
    let path = control::socket_path(data_dir);
    // We hold the data folder's lock, so a socket file left here is from a crashed node.
    std::fs::remove_file(&path).ok();
    match socket::unix_listener(&path) {
        Ok(listener) => Some(listener),
        Err(err) => {
            log::warn!("no control socket at {}: {err}", path.display());
            None
        }
    }
}

/// Resolves configured targets (`host` or `host:port`) to IPv4 socket addresses; may wait on
/// DNS for host names.
pub fn resolve_targets(targets: &[String], default_port: u16) -> Result<Vec<SocketAddrV4>, StartError> {
    targets
        .iter()
        .map(|target| {
            let err = |reason: String| StartError::Target { target: target.clone(), reason };
            let with_port =
                if target.contains(':') { target.clone() } else { format!("{target}:{default_port}") };
            let mut addrs = with_port.to_socket_addrs().map_err(|e| err(e.to_string()))?;
            addrs
                .find_map(|addr| match addr {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                })
                .ok_or_else(|| err(String::from("no IPv4 address")))
        })
        .collect()
}

/// A fresh random identifier.
pub(crate) fn random_id<T>(wrap: fn([u8; ID_BYTES]) -> T) -> T {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system always provides randomness");
    wrap(bytes)
}
