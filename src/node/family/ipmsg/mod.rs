//! The IP Messenger family (IP Messenger, FeiQ, iptux): presence from `BR_ENTRY`,
//! `ANSENTRY`, `BR_ABSENCE` and `BR_EXIT` (`peers`); messages both ways with `RECVMSG`
//! acknowledgements, resends and deduplication (`messages`); their file offers as incoming
//! transfers fetched by a worker (`offers`, `fetch`), and ours served to them over TCP
//! (`offers`, `serve`). Its peers join the same list and history as Pigeon peers, marked
//! with their client and as unencrypted: the protocol has no authentication, and nothing
//! pretends otherwise.
//!
//! Rules from the protocol notes: answer `BR_ENTRY` with a unicast `ANSENTRY`; never answer
//! `ANSENTRY`, `BR_ABSENCE` or a `RECVMSG` (iptux sets `SENDCHECKOPT` on its acks); do not
//! ack broadcast or auto-reply messages. Other Pigeons answer on this port too; their IP
//! Messenger packets are ignored, so nobody is listed twice.

mod fetch;
mod messages;
mod offers;
mod peers;
mod serve;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use self::offers::{IpOffer, Serving};
use self::peers::IpPeer;
use super::Adapter;
use crate::node::doorbell::{self, Bell, Doorbell};
use crate::node::event::{LeaveReason, Stats};
use crate::node::hub::core::{Core, Remember, now_ms};
use crate::node::hub::outbox::InFlight;
use crate::node::hub::transfers::FetchJob;
use crate::node::interfaces::Scope;
use crate::node::threads::{self, StopFlag};
use crate::node::udp::{self, Counters, Decoded};
use crate::node::{StartError, socket};
use crate::protocol::Family;
use crate::protocol::announce::Status;
use crate::protocol::ids::{PeerId, TransferId};
use crate::protocol::ipmsg::entry::Entry;
use crate::protocol::ipmsg::{MAX_RECEIVE, MAX_SEND, Packet, mode, opt};
use crate::store::TransferRecord;

/// Our version field: IP Messenger protocol 1, then who we are (clients tell each other
/// apart by it, and Pigeons ignore each other's IP Messenger packets by it).
const VERSION: &[u8] = b"1_pigeon";

/// Capabilities we announce: UTF-8, and taking file offers.
const ENTRY_OPTIONS: u32 = opt::CAPUTF8OPT | opt::FILEATTACHOPT;

/// Reports queued for the family before its threads wait (datagrams are dropped instead).
const QUEUE: usize = 1024;

/// How often unacknowledged packets are looked at for a resend.
const RESEND_CHECK: Duration = Duration::from_millis(250);

/// The family's timer while nothing waits for an acknowledgement: far enough to be never.
const IDLE: Duration = Duration::from_secs(3600);

/// What the family's threads report.
pub enum Report {
    /// A packet decoded by the UDP receiver.
    Packet {
        /// Source address.
        from: SocketAddrV4,
        /// The packet.
        packet: Packet,
    },
    /// A client asked over TCP for a file or folder we offered.
    Request {
        /// The connection, its request read.
        stream: TcpStream,
        /// The client.
        from: SocketAddrV4,
        /// The request packet.
        packet: Packet,
    },
    /// A request was served, or failed.
    Served {
        /// The transfer.
        transfer: TransferId,
        /// Which top-level entry of the offer.
        index: usize,
        /// Whether the client had all of it.
        outcome: Result<(), String>,
    },
}

/// The family's state. See the module doc.
pub struct IpMsg {
    /// The UDP socket on the IP Messenger port.
    socket: UdpSocket,
    /// The IP Messenger port (clients answer on it, whatever our source port).
    port: u16,
    /// The interfaces whose broadcast addresses entry packets go to (none: targets only).
    broadcast: Option<Scope>,
    /// Targets entry packets go to as well, at the IP Messenger port.
    targets: Vec<SocketAddrV4>,
    /// Our login name, as clients show it.
    user: String,
    /// Our host name.
    host: String,
    /// The last packet number used.
    last_packet: u32,
    /// Peers online, by address.
    peers: HashMap<Ipv4Addr, IpPeer>,
    /// Packets sent and not yet acknowledged (messages and offers), resent until they are.
    pending: InFlight<messages::Pending>,
    /// File offers received, until Pigeon stops (IP Messenger offers do not outlive it).
    offers: HashMap<TransferId, IpOffer>,
    /// Our offers, by the packet number they went out with, and the address they went to.
    sent_offers: HashMap<u32, (TransferId, Ipv4Addr)>,
    /// Our offers being fetched.
    serving: HashMap<TransferId, Serving>,
    /// Reports from the family's threads.
    reports: Receiver<Report>,
    /// For new threads.
    report_tx: Bell<Report>,
    /// Counters of the receiver thread.
    counters: Arc<Counters>,
    /// When unacknowledged packets are next looked at.
    next_resend_check: Instant,
    /// Whether our first `BR_ENTRY` went out.
    announced: bool,
}

impl IpMsg {
    /// Binds the IP Messenger port and starts its threads. A port that cannot be bound is not
    /// fatal: Pigeon peers work without it, and the reason comes back for the user.
    pub fn start(
        settings: &crate::config::Settings,
        targets: &[SocketAddrV4],
        stop: &StopFlag,
        bell: &Arc<Doorbell>,
        io_threads: &mut Vec<JoinHandle<()>>,
    ) -> Result<Result<IpMsg, String>, StartError> {
        let port = settings.ipmsg_port;
        let addr = SocketAddrV4::new(settings.bind, port);
        let udp = match socket::ipmsg_socket(addr) {
            Ok(udp) => udp,
            Err(err) => {
                let reason = format!(
                    "IP Messenger is off: UDP port {port} cannot be used ({err}). Is another IP Messenger \
                     client (FeiQ, iptux) running on this computer?"
                );
                log::warn!("{reason}");
                return Ok(Err(reason));
            }
        };
        let (report_tx, reports) = doorbell::queue(QUEUE, bell);
        let counters = Arc::new(Counters::default());
        let receiver = udp.try_clone().map_err(|source| StartError::Bind { addr, source })?;
        let (queue, udp_stop, udp_counters) = (report_tx.clone(), stop.clone(), counters.clone());
        let thread = threads::spawn("pigeon-ipmsg", move || {
            udp::receive_loop(&receiver, &queue, &udp_stop, &udp_counters, MAX_RECEIVE, |from, bytes| {
                Packet::decode(bytes)
                    .map(|packet| Decoded { report: Report::Packet { from, packet }, urgent: true })
            });
        });
        io_threads.push(thread.map_err(StartError::Thread)?);
        // Clients fetch what we offer over TCP on the same port; without it they cannot.
        match socket::tcp_listener(addr) {
            Ok(listener) => {
                let (queue, stop) = (report_tx.clone(), stop.clone());
                let thread =
                    threads::spawn("pigeon-ipmsg-listen", move || serve::listen(&listener, &queue, &stop));
                io_threads.push(thread.map_err(StartError::Thread)?);
            }
            Err(err) => log::warn!("IP Messenger clients cannot fetch files: TCP port {port}: {err}"),
        }
        let user = std::env::var("USER").unwrap_or_else(|_| String::from("pigeon"));
        // Numbers start from the clock so that they keep growing across our restarts.
        let last_packet = u32::try_from(now_ms() / 1000 % 0x7fff_0000).unwrap_or(1);
        let mut ipmsg = IpMsg {
            socket: udp,
            port,
            broadcast: settings.broadcast.then(|| Scope::of(settings)),
            targets: Vec::new(),
            user,
            host: crate::config::host_name(),
            last_packet,
            peers: HashMap::new(),
            pending: InFlight::default(),
            offers: HashMap::new(),
            sent_offers: HashMap::new(),
            serving: HashMap::new(),
            reports,
            report_tx,
            counters,
            next_resend_check: Instant::now(),
            announced: false,
        };
        ipmsg.aim_at(targets);
        Ok(Ok(ipmsg))
    }

    /// Entry packets go to the broadcast addresses and to `targets` (at our port).
    fn aim_at(&mut self, targets: &[SocketAddrV4]) {
        self.targets = targets.iter().map(|target| SocketAddrV4::new(*target.ip(), self.port)).collect();
    }

    /// Where entry packets go now: the broadcast addresses of the interfaces in use (listed
    /// afresh, so an interface that came up since the start counts), plus 255.255.255.255
    /// when every interface is ours to use, as IP Messenger clients send, and the targets.
    fn destinations(&self) -> Vec<SocketAddrV4> {
        let mut destinations = Vec::new();
        if let Some(scope) = &self.broadcast {
            if scope.bind.is_unspecified() && scope.chosen.is_empty() {
                destinations.push(SocketAddrV4::new(Ipv4Addr::BROADCAST, self.port));
            }
            destinations
                .extend(scope.subnets().iter().map(|subnet| SocketAddrV4::new(subnet.broadcast, self.port)));
        }
        destinations.extend(self.targets.iter().copied());
        destinations
    }

    fn packet(&mut self, command: u32, extra: Vec<u8>) -> Packet {
        self.last_packet = self.last_packet.wrapping_add(1).max(1);
        Packet {
            version: VERSION.to_vec(),
            packet_no: self.last_packet,
            user: self.user.as_bytes().to_vec(),
            host: self.host.as_bytes().to_vec(),
            command,
            extra,
        }
    }

    fn send(&self, packet: &Packet, to: SocketAddrV4) {
        let bytes = packet.encode();
        if bytes.len() > MAX_SEND {
            log::warn!("IP Messenger packet of {} bytes not sent to {to}", bytes.len());
            return;
        }
        self.send_bytes(&bytes, to);
    }

    fn send_bytes(&self, bytes: &[u8], to: SocketAddrV4) {
        // Best effort, like every UDP send here; a lost message is resent.
        if let Err(err) = socket::send_datagram(&self.socket, bytes, to) {
            log::debug!("IP Messenger send to {to}: {err}");
        }
    }

    fn peer_addr(&self, ip: Ipv4Addr) -> SocketAddrV4 {
        // Clients answer on the IP Messenger port, whatever our source port (iptux).
        SocketAddrV4::new(ip, self.port)
    }

    /// The address of a peer by its id.
    fn ip_of(&self, id: PeerId) -> Option<Ipv4Addr> {
        self.peers.iter().find(|(_, peer)| peer.id == id).map(|(ip, _)| *ip)
    }

    /// Our entry packet (`command` one of the entry modes) as it stands now.
    fn entry_packet(&mut self, core: &Core, command_mode: u32) -> Packet {
        let extra = Entry::encode(&core.me.name, &core.me.group, &self.user, &self.host);
        let absent = if core.me.status == Status::Online { 0 } else { opt::ABSENCEOPT };
        self.packet(command_mode | ENTRY_OPTIONS | absent, extra)
    }

    /// Announces us (at start, when our profile changes, and as goodbye).
    fn announce(&mut self, core: &Core, command_mode: u32) {
        let packet = self.entry_packet(core, command_mode);
        let destinations = self.destinations();
        for to in &destinations {
            self.send(&packet, *to);
        }
        // Peers reached only by an answer (another subnet) hear it too.
        for ip in self.peers.keys() {
            let to = self.peer_addr(*ip);
            if !destinations.contains(&to) {
                self.send(&packet, to);
            }
        }
    }

    fn on_report(&mut self, core: &mut Core, report: Report, now: Instant) {
        match report {
            Report::Packet { from, packet } => self.on_packet(core, from, &packet, now),
            Report::Request { stream, from, packet } => self.on_request(core, stream, from, &packet),
            Report::Served { transfer, index, outcome } => self.on_served(core, transfer, index, outcome),
        }
    }

    fn on_packet(&mut self, core: &mut Core, from: SocketAddrV4, packet: &Packet, now: Instant) {
        if packet.version.starts_with(VERSION) {
            // Another Pigeon (or our own broadcast): it is listed through its native announces.
            return;
        }
        let ip = *from.ip();
        match packet.mode() {
            mode::BR_ENTRY | mode::ANSENTRY | mode::BR_ABSENCE => self.on_entry(core, ip, packet, now),
            mode::BR_EXIT => {
                if let Some(peer) = self.peers.get(&ip) {
                    core.peer_left(peer.id, LeaveReason::Goodbye);
                }
            }
            mode::SENDMSG => self.on_message(core, ip, packet),
            mode::RECVMSG => self.on_ack(core, ip, packet),
            other => log::debug!("IP Messenger command {other:#x} from {ip} ignored"),
        }
    }

    fn on_entry(&mut self, core: &mut Core, ip: Ipv4Addr, packet: &Packet, now: Instant) {
        let mut peer = IpPeer::from_entry(ip, packet, now_ms());
        let id = peer.id;
        if let Some(old) = self.peers.remove(&ip) {
            if old.id != id {
                // Someone else at this address now: the one before is gone.
                core.peer_left(old.id, LeaveReason::Goodbye);
            }
            peer.continue_numbering(old, packet);
        }
        let info = peer.info(ip, self.port);
        self.peers.insert(ip, peer);
        if packet.mode() == mode::BR_ENTRY {
            let answer = self.entry_packet(core, mode::ANSENTRY);
            self.send(&answer, self.peer_addr(ip));
        }
        // The protocol has no keep-alive: a peer stays listed until it says BR_EXIT.
        // IP Messenger proves nothing, ever: its peers are stored only once a conversation
        // with them starts (a message either way), so a flood of entries stores nothing.
        core.peer_seen(info, None, now, Remember::No);
        core.queue_for(id);
    }
}

impl Adapter for IpMsg {
    fn family(&self) -> Family {
        Family::Ipmsg
    }

    fn take_reports(&mut self, core: &mut Core, now: Instant) -> usize {
        let reports = super::one_turn(&self.reports);
        let taken = reports.len();
        for report in reports {
            self.on_report(core, report, now);
        }
        taken
    }

    fn deliver(&mut self, core: &mut Core, peer: PeerId, now: Instant) {
        let Some(ip) = self.ip_of(peer) else { return };
        self.send_outbox(core, peer, ip, now);
        self.send_offers(core, peer, ip, now);
        // Unacknowledged packets are resent on the family's own schedule.
        core.outbox.delivered(peer);
    }

    fn fetch(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        self.start_fetch(core, job)
    }

    fn transfer_ended(&mut self, _core: &mut Core, record: &TransferRecord, _tell_peer: bool) {
        // The protocol has no way to say a transfer ended; serving threads see their stop
        // flag, and a client asking again is refused.
        self.serving.remove(&record.id);
        self.sent_offers.retain(|_, (offer, _)| *offer != record.id);
        self.offers.remove(&record.id);
    }

    fn peer_left(&mut self, _core: &mut Core, peer: PeerId) {
        if let Some(ip) = self.ip_of(peer) {
            self.peers.remove(&ip);
            self.pending.retain(|pending| pending.to != ip);
        }
    }

    fn profile_changed(&mut self, core: &mut Core) {
        self.announce(core, mode::BR_ABSENCE);
    }

    fn set_targets(&mut self, core: &mut Core, targets: &[SocketAddrV4]) {
        self.aim_at(targets);
        self.announce(core, mode::BR_ABSENCE);
    }

    fn next_timer(&self) -> Instant {
        // With nothing waiting for an acknowledgement the family has no timer.
        if !self.announced || !self.pending.is_empty() {
            self.next_resend_check
        } else {
            self.next_resend_check + IDLE
        }
    }

    fn on_timer(&mut self, core: &mut Core, now: Instant) {
        if !self.announced {
            // The first timer comes as the hub starts.
            self.announce(core, mode::BR_ENTRY);
            self.announced = true;
        }
        self.resend(now);
        self.next_resend_check = now + RESEND_CHECK;
    }

    fn resumes_transfers(&self) -> bool {
        // The protocol has no lasting offer ids; ours are offered again.
        false
    }

    fn stop(&mut self, core: &mut Core) {
        self.announce(core, mode::BR_EXIT);
    }

    fn stats(&self, stats: &mut Stats) {
        self.counters.add_to(stats);
    }
}
