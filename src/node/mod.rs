//! The engine: one [`Node`] owns every socket, thread and piece of state; the outside world
//! sends it [`Command`]s and receives [`Event`]s. It knows nothing of windows or terminals.
//!
//! - `hub`: the one thread that owns the state, and routes work to the families.
//! - `family`: one adapter per kind of peer (other Pigeons, IP Messenger clients).
//! - `command`, `event`: the vocabulary consumers use; `lines`, `control`: the JSON lines of
//!   the daemon and the control socket.
//! - `inbox`, `worker`, `threads`, `backoff`: how threads report, stop and retry.
//! - `socket`, `udp`, `listener`, `interfaces`, `files`: sockets, receivers, disk.
//!
//! Threads, all named `pigeon-*`: see docs/ARCHITECTURE.md. The window and the CLI use only
//! what this module exports (its vocabulary below), never `protocol` or `store` directly.

mod backoff;
pub mod command;
mod control;
pub mod doctor;
mod doorbell;
pub mod ending;
pub mod event;
mod family;
mod files;
mod hub;
mod inbox;
mod interfaces;
mod ipv6;
pub mod lines;
mod listener;
mod log_limit;
mod mdns;
mod multicast;
mod pace;
mod room_log;
mod sinks;
mod socket;
pub(crate) mod threads;
mod udp;
mod worker;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use doorbell::{Bell, Doorbell};
use thiserror::Error;

pub use command::Command;
pub use control::socket_path as control_socket_path;
pub use event::{
    Event, LeaveReason, PeerInfo, RoomInfo, RoomMember, RoomPost, Stats, TransferInfo, human_bytes,
};
pub use family::native::heartbeat::{HEARTBEAT_INTERVAL, PEER_TIMEOUT, SUBNET_HEARTBEATS};
pub use worker::Progress;

/// The vocabulary of the window and the CLI: what they name of the protocol and the store,
/// so that neither depends on those layers.
pub use crate::protocol::announce::Status;
pub use crate::protocol::ids::{MsgId, PeerId, RoomId, TransferId};
pub use crate::protocol::invite::{Invite, MAX_LINK_BYTES as MAX_INVITE_LINK_BYTES};
pub use crate::protocol::keys::PublicKey;
pub use crate::protocol::names::display_path;
pub use crate::protocol::room::{PostedIn, SharedFiles};
pub use crate::protocol::transfer::{Entry, EntryKind};
pub use crate::protocol::{Family, MAX_TEXT_BYTES};
pub use crate::store::{
    ChatMessage, ConversationSummary, Direction, KnownPeer, MessageState, TransferState, Trust,
};

use crate::config::{Config, host_name};
use crate::protocol::ids::ID_BYTES;
use crate::secure::{Identity, IdentityError};
use crate::store::{Checkpointer, Store, StoreError};
use family::Adapter;
use family::ipmsg::IpMsg;
use family::localsend::{self, LocalSend};
use family::native::{self as native, Native};
use hub::core::{Core, Profile, Receiving};
use hub::{Hub, HubParts};
use inbox::Input;
use sinks::{Origin, Sinks};
use threads::StopFlag;

/// File name of the history database inside the data folder.
pub const HISTORY_FILE: &str = "history.sqlite3";

/// File locked while a node runs on a data folder.
const LOCK_FILE: &str = "pigeon.lock";

/// Commands queued for the hub before senders are told it is busy.
const INPUT_QUEUE: usize = 1024;

/// Events queued for the owner before the hub starts dropping (and counting) them.
const EVENT_QUEUE: usize = 16 * 1024;

/// Reports of the hub's workers and helpers queued before those threads wait (the hub never
/// waits for them, so they always get room).
const NET_QUEUE: usize = 4096;

/// How often the write-ahead log is copied into the history database at most, while there
/// are writes (none, no checkpoint). Short enough that the log stays small (lookups in a long
/// log slowed receiving 10,000 small files by a tenth).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

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

/// A command the node did not take.
#[derive(Debug, Error)]
pub enum SendError {
    /// The node has stopped and takes no more commands.
    #[error("the node has stopped")]
    Stopped,
    /// The node's queue is full (it is flooded, or a consumer floods it): the command comes
    /// back to be sent again later. Never a wait.
    #[error("the node is busy; try again in a moment")]
    Busy(Command),
}

/// The node has stopped and takes no more commands.
#[derive(Debug, Error)]
#[error("the node has stopped")]
pub struct NodeStopped;

/// A running node. Dropping it stops the node (goodbye sent, threads joined).
pub struct Node {
    /// Commands to the hub; closing it also stops the hub.
    inputs: Bell<Input>,
    /// Asks the hub to stop without queueing behind commands.
    stop_request: Bell<()>,
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
pub struct CommandSender(Bell<Input>);

impl CommandSender {
    /// Queues a command for the hub without waiting: a full queue gives the command back.
    pub fn try_send(&self, command: Command) -> Result<(), SendError> {
        self.0.try_send(Input::Command(command, Origin::Owner)).map_err(|err| match err {
            TrySendError::Full(Input::Command(command, _)) => SendError::Busy(command),
            TrySendError::Full(_) | TrySendError::Disconnected(_) => SendError::Stopped,
        })
    }

    /// Queues a command for the hub, waiting for room if it is busy (for threads that may
    /// wait: the daemon's stdin reader, the command line; never a window).
    pub fn send(&self, command: Command) -> Result<(), NodeStopped> {
        self.0.send(Input::Command(command, Origin::Owner)).map_err(|_stopped| NodeStopped)
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
        let control = bind_control(data_dir);
        let checkpointer = Checkpointer::open(&data_dir.join(HISTORY_FILE))?;

        let stop = StopFlag::default();
        let bell = Arc::new(Doorbell::default());
        let (inputs_tx, inputs_rx) = doorbell::queue(INPUT_QUEUE, &bell);
        let (stop_tx, stop_rx) = doorbell::queue(1, &bell);
        let (events_tx, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (net_tx, net_rx) = doorbell::queue(NET_QUEUE, &bell);
        let me = Profile {
            name: hub::clip_label(settings.name.clone()),
            group: hub::clip_label(settings.group.clone()),
            status: settings.status,
            host: hub::clip_label(host_name()),
        };
        let receiving = Receiving { download_dir: config.download_dir(), auto_accept: settings.auto_accept };
        let core = Core::new(me, store, Sinks::new(events_tx), net_tx, receiving, identity.clone())?;
        core.speed_limits.set(settings.speed_limit_kbps, settings.total_speed_limit_kbps);

        let mut io_threads = Vec::new();
        let setup = native::Setup {
            settings,
            identity: identity.clone(),
            targets: targets.clone(),
            stop: stop.clone(),
            bell: bell.clone(),
            io_threads: &mut io_threads,
        };
        let native = Native::start(setup, &core)?;
        let local_addr = native.local_addr();
        let mut families: Vec<Box<dyn Adapter>> = vec![Box::new(native)];
        let mut unavailable = Vec::new();
        let mut ipmsg_addr = None;
        if settings.ipmsg {
            match IpMsg::start(settings, &targets, &stop, &bell, &mut io_threads)? {
                Ok(ipmsg) => {
                    families.push(Box::new(ipmsg));
                    ipmsg_addr = Some(SocketAddrV4::new(settings.bind, settings.ipmsg_port));
                }
                Err(reason) => unavailable.push((Family::Ipmsg, reason)),
            }
        }
        if settings.localsend {
            let mut setup = localsend::Setup {
                settings,
                data_dir,
                targets: &targets,
                stop: &stop,
                bell: &bell,
                io_threads: &mut io_threads,
            };
            match LocalSend::start(&mut setup)? {
                Ok(localsend) => families.push(Box::new(localsend)),
                Err(reason) => unavailable.push((Family::LocalSend, reason)),
            }
        }
        let (checkpoint_stop, checkpoints) = spawn_checkpointer(checkpointer, &mut io_threads)?;
        let control_path = match control {
            Some(control) => {
                let (inputs, stop) = (inputs_tx.clone(), stop.clone());
                let thread =
                    threads::spawn("pigeon-control", move || control::accept_loop(&control, &inputs, &stop));
                io_threads.push(thread.map_err(StartError::Thread)?);
                Some(control::socket_path(data_dir))
            }
            None => None,
        };

        let hub = Hub::new(HubParts {
            core,
            families,
            key: identity.public(),
            inputs: inputs_rx,
            stop_requests: stop_rx,
            net: net_rx,
            stop,
            io_threads,
            wake: Wake {
                local_addr,
                ipmsg_addr,
                control: control_path,
                checkpoint_stop: Some(checkpoint_stop),
            },
            bell,
            checkpoints,
            lock,
            unavailable,
        })?;
        let hub = threads::spawn("pigeon-hub", move || hub.run(local_addr)).map_err(StartError::Thread)?;
        let id = identity.peer_id();
        Ok(Node {
            inputs: inputs_tx,
            stop_request: stop_tx,
            events: events_rx,
            hub: Some(hub),
            id,
            local_addr,
        })
    }

    /// A handle for sending commands, clonable into other threads.
    pub fn commands(&self) -> CommandSender {
        CommandSender(self.inputs.clone())
    }

    /// Sends one command without waiting (see [`CommandSender::try_send`]).
    pub fn try_send(&self, command: Command) -> Result<(), SendError> {
        self.commands().try_send(command)
    }

    /// Sends one command, waiting for room (see [`CommandSender::send`]).
    pub fn send(&self, command: Command) -> Result<(), NodeStopped> {
        self.commands().send(command)
    }

    /// The node's events, in order. The first is `Started`, the last `Stopped`.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Calls `waker` after each batch of events (a UI sets `request_repaint` here). Never
    /// waits: a node too busy to take it says so.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) -> Result<(), NodeStopped> {
        self.inputs.try_send(Input::SetWaker(Arc::new(waker))).map_err(|_full_or_stopped| NodeStopped)
    }

    /// This node's identity.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Address and port the node is bound to.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    /// Says goodbye and stops, joining every thread; returns within 2 s whatever peers do.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Full means a stop is already asked for; gone means the hub already stopped.
        self.stop_request.try_send(()).ok();
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
        if self.local_addr.ip().is_unspecified() {
            // The IPv6 sockets, when there are: same port, on [::1].
            let own_v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.local_addr.port()));
            if let Ok(udp) = UdpSocket::bind((std::net::Ipv6Addr::LOCALHOST, 0)) {
                udp.send_to(&[], own_v6).ok();
            }
            TcpStream::connect_timeout(&own_v6, Duration::from_millis(200)).ok();
        }
        if let Some(path) = &self.control {
            std::os::unix::net::UnixStream::connect(path).ok();
        }
    }
}

/// Starts the thread that copies the write-ahead log into the history database after the
/// hub wrote (it says so on the second sender returned), at most every
/// [`CHECKPOINT_INTERVAL`]: an idle node wakes it never. Dropping either sender ends it.
fn spawn_checkpointer(
    checkpointer: Checkpointer,
    io_threads: &mut Vec<JoinHandle<()>>,
) -> Result<(Sender<()>, Sender<()>), StartError> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    // One waiting note is enough: it means "there were writes since the last checkpoint".
    let (written, writes) = crossbeam_channel::bounded::<()>(1);
    let thread = threads::spawn("pigeon-checkpoint", move || {
        while writes.recv().is_ok() {
            if let Err(err) = checkpointer.checkpoint() {
                log::warn!("history checkpoint failed: {err}");
            }
            if stopped.recv_timeout(CHECKPOINT_INTERVAL) == Err(RecvTimeoutError::Disconnected) {
                break;
            }
        }
    });
    io_threads.push(thread.map_err(StartError::Thread)?);
    Ok((stop, written))
}

/// The first port after the configured one where both UDP and TCP can be bound now, trying
/// at most `tries` ports (for offering another when the configured one is taken).
pub fn free_port_after(settings: &crate::config::Settings, tries: u16) -> Option<u16> {
    (1..=tries).filter_map(|step| settings.port.checked_add(step)).find(|&port| {
        let addr = SocketAddrV4::new(settings.bind, port);
        std::net::TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
    })
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
            let mut addrs =
                with_port(target, default_port).to_socket_addrs().map_err(|e| err(e.to_string()))?;
            addrs
                .find_map(|addr| match addr {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                })
                .ok_or_else(|| err(String::from("no IPv4 address")))
        })
        .collect()
}

/// `target` (`host`, `host:port`, `[v6]:port` or a bare IPv6 address) with `port` when it
/// names none, ready for `to_socket_addrs`.
pub(crate) fn with_port(target: &str, port: u16) -> String {
    let has_port = target.parse::<SocketAddr>().is_ok()
        || target.rsplit_once(':').is_some_and(|(host, _)| !host.contains(':'));
    match target.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => SocketAddr::from((v6, port)).to_string(),
        Err(_) if has_port => target.to_owned(),
        Err(_) => format!("{target}:{port}"),
    }
}

/// A fresh random identifier.
pub(crate) fn random_id<T>(wrap: fn([u8; ID_BYTES]) -> T) -> T {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system always provides randomness");
    wrap(bytes)
}

/// A fresh random seed (for jitter, not for secrets).
pub(crate) fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system always provides randomness");
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::with_port;

    #[test]
    fn a_target_gets_the_default_port_only_when_it_names_none() {
        assert_eq!(with_port("10.0.0.7", 2426), "10.0.0.7:2426");
        assert_eq!(with_port("10.0.0.7:9", 2426), "10.0.0.7:9");
        assert_eq!(with_port("pc-ana.local", 2426), "pc-ana.local:2426");
        assert_eq!(with_port("pc-ana.local:9", 2426), "pc-ana.local:9");
        assert_eq!(with_port("2001:db8::7", 2426), "[2001:db8::7]:2426");
        assert_eq!(with_port("[2001:db8::7]:9", 2426), "[2001:db8::7]:9");
    }
}
