//! The LocalSend family: phones, Macs and PCs running the LocalSend app (protocol v2.1,
//! `protocol::localsend`). Devices announce themselves over UDP multicast and are answered
//! with an HTTPS `register`; each is listed only once a TLS connection showed that its
//! certificate has the fingerprint it claims (`devices`), and its fingerprint is pinned like
//! a Pigeon key, so a changed one shows as a key change. Our HTTPS server (`server`) takes
//! their offers, texts and uploads (`incoming`, `receive`); our texts and files go out on
//! threads of their own (`outgoing`, `send`). HTTP is our own small one (`http`, `client`)
//! on rustls (`tls`), since the certificate a device presents is its identity.
//!
//! LocalSend is not end-to-end authenticated the way Pigeon is (a certificate proves only
//! that the device is the one seen before), and one offer is taken at a time, as in the apps.
//! Other Pigeons answer on LocalSend too: they are known by our device model and not listed
//! twice.

mod client;
mod devices;
mod http;
mod incoming;
mod outgoing;
mod receive;
mod send;
mod server;
mod tls;

use std::collections::HashMap;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use self::client::{Answer, Client};
use self::devices::{Device, Probes};
use self::incoming::{Incoming, PinTries, Unproven};
use self::outgoing::Outgoing;
use self::server::{Call, Reply};
use super::Adapter;
use crate::node::doorbell::{self, Doorbell};
use crate::node::event::Stats;
use crate::node::hub::core::Core;
use crate::node::hub::transfers::FetchJob;
use crate::node::interfaces::Scope;
use crate::node::multicast::Group;
use crate::node::threads::{self, StopFlag};
use crate::node::udp::{self, Counters, Decoded};
use crate::node::{StartError, socket};
use crate::protocol::Family;
use crate::protocol::error::DecodeError;
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::localsend::{self as wire, DeviceInfo};
use crate::store::TransferRecord;

/// Reports queued for the family before its threads wait (datagrams are dropped instead).
const QUEUE: usize = 1024;

/// What the family's threads report.
pub enum Report {
    /// A multicast or unicast announcement (or an old client's answer to ours).
    Announced {
        /// Its source.
        from: SocketAddrV4,
        /// What it says.
        info: DeviceInfo,
    },
    /// A request to our server, waiting for its answer.
    Call {
        /// The client.
        from: SocketAddrV4,
        /// The fingerprint of the certificate the client presented, if any.
        presented: Option<String>,
        /// The request.
        call: Call,
        /// Where the answer goes.
        reply: Sender<Reply>,
    },
    /// An upload we granted was stored, or not.
    Uploaded {
        /// The session.
        session: String,
        /// The file.
        file: String,
        /// How it went.
        outcome: receive::Upload,
    },
    /// A device we asked to describe itself (to verify it, or to see it is still there).
    Probed {
        /// Its address and HTTP port.
        addr: SocketAddrV4,
        /// Whether it was asked over HTTPS.
        https: bool,
        /// Its description and the fingerprint of the certificate it presented, or why not.
        outcome: Result<(DeviceInfo, Option<String>), String>,
    },
    /// A device answered one of our offers (or the offer could not be made).
    Answered {
        /// The transfer.
        transfer: TransferId,
        /// The answer.
        outcome: Result<Answer, String>,
    },
    /// A text went to a device, or did not.
    TextSent {
        /// The device.
        peer: PeerId,
        /// The message.
        msg_id: MsgId,
        /// How it went.
        outcome: Result<(), outgoing::TextFailure>,
    },
}

/// The family's state. See the module doc.
pub struct LocalSend {
    /// Sends announcements; receives unicast ones (and multicast when bound to every address).
    udp: UdpSocket,
    /// The LocalSend port (UDP and TCP).
    port: u16,
    /// The multicast group announcements go to (none: targets only).
    group: Option<Group>,
    /// The interfaces announcements go out of.
    scope: Scope,
    /// Extra addresses announced to (another subnet, a VPN), at the LocalSend port.
    targets: Vec<SocketAddrV4>,
    /// Our fingerprint.
    fingerprint: String,
    /// The PIN senders must give, if the user set one.
    pin: Option<String>,
    /// Wrong PINs per sender address.
    pin_tries: PinTries,
    /// The PINs our user gave for devices that ask for one (until the node stops).
    pins_given: HashMap<PeerId, String>,
    /// Devices listed, by peer id.
    devices: HashMap<PeerId, Device>,
    /// Requests made to devices to verify or see them.
    probes: Probes,
    /// The one offer to us being decided or received.
    incoming: Option<Incoming>,
    /// An offer from a sender we are asking who it is.
    unproven: Option<Unproven>,
    /// Our offers and texts on their way.
    outgoing: Outgoing,
    /// For threads that make requests.
    sender: send::Sender,
    /// The node's stop flag.
    stop: StopFlag,
    /// Reports from the family's threads.
    reports: Receiver<Report>,
    /// Counters of the UDP receivers.
    counters: Arc<Counters>,
    /// When announcements next go out.
    next_announce: Instant,
    /// Announcements sent so far (the first few come quickly).
    announced: u32,
    /// When devices are next looked at for liveness.
    next_liveness: Instant,
}

/// What starting the family needs.
pub struct Setup<'a> {
    /// The settings.
    pub settings: &'a crate::config::Settings,
    /// The data folder (our certificate lives there).
    pub data_dir: &'a Path,
    /// Extra addresses to announce to.
    pub targets: &'a [SocketAddrV4],
    /// The node's stop flag.
    pub stop: &'a StopFlag,
    /// The hub's doorbell.
    pub bell: &'a Arc<Doorbell>,
    /// Where the family's threads go.
    pub io_threads: &'a mut Vec<JoinHandle<()>>,
}

impl LocalSend {
    /// Binds the LocalSend port and starts the family's threads. A port that cannot be bound
    /// is not fatal (a LocalSend app on this computer has it): the reason comes back for
    /// the user, and everything else works.
    pub fn start(setup: &mut Setup<'_>) -> Result<Result<LocalSend, String>, StartError> {
        let settings = setup.settings;
        let port = settings.localsend_port;
        let addr = SocketAddrV4::new(settings.bind, port);
        let unavailable = |what: &str, err: &dyn std::fmt::Display| {
            let reason = format!(
                "LocalSend is off: {what} port {port} cannot be used ({err}). Is the LocalSend app running on this computer?"
            );
            log::warn!("{reason}");
            Ok(Err(reason))
        };
        let tls = match tls::Tls::load_or_create(setup.data_dir) {
            Ok(tls) => tls,
            Err(err) => {
                log::warn!("LocalSend is off: {err}");
                return Ok(Err(format!("LocalSend is off: {err}")));
            }
        };
        let listener = match socket::tcp_listener(addr) {
            Ok(listener) => listener,
            Err(err) => return unavailable("TCP", &err),
        };
        let udp = match socket::udp_socket(addr) {
            Ok(udp) => udp,
            Err(err) => return unavailable("UDP", &err),
        };
        let (report_tx, reports) = doorbell::queue(QUEUE, setup.bell);
        let counters = Arc::new(Counters::default());
        let mut receivers = vec![udp.try_clone().map_err(|source| StartError::Bind { addr, source })?];
        let (group, group_udp) = if settings.multicast {
            let member = settings.bind.is_unspecified().then_some(&udp);
            Group::open_or_warn("LocalSend", wire::MULTICAST_ADDR.into(), &Scope::of(settings), port, member)
        } else {
            (None, None)
        };
        receivers.extend(group_udp);
        for receiver in receivers {
            let (queue, stop, counters) = (report_tx.clone(), setup.stop.clone(), counters.clone());
            let thread = threads::spawn("pigeon-localsend-udp", move || {
                udp::receive_loop(
                    &receiver,
                    &queue,
                    &stop,
                    &counters,
                    wire::MAX_ANNOUNCEMENT,
                    decode_announcement,
                );
            });
            setup.io_threads.push(thread.map_err(StartError::Thread)?);
        }
        let server = server::start(listener, Some(tls.server.clone()), report_tx.clone(), setup.stop.clone());
        setup.io_threads.push(server.map_err(StartError::Thread)?);
        let now = Instant::now();
        let mut family = LocalSend {
            udp,
            port,
            group,
            scope: Scope::of(settings),
            targets: Vec::new(),
            fingerprint: tls.fingerprint.clone(),
            pin: settings.localsend_pin.clone().filter(|pin| !pin.is_empty()),
            pin_tries: PinTries::default(),
            pins_given: HashMap::new(),
            devices: HashMap::new(),
            probes: Probes::default(),
            incoming: None,
            unproven: None,
            outgoing: Outgoing::default(),
            sender: send::Sender {
                client: Client { tls: tls.client, local: settings.bind },
                queue: report_tx,
            },
            stop: setup.stop.clone(),
            reports,
            counters,
            next_announce: now,
            announced: 0,
            next_liveness: now + devices::LIVENESS,
        };
        family.aim_at(setup.targets);
        Ok(Ok(family))
    }

    fn aim_at(&mut self, targets: &[SocketAddrV4]) {
        self.targets = targets.iter().map(|target| SocketAddrV4::new(*target.ip(), self.port)).collect();
    }

    /// How we describe ourselves (`announce`: in a multicast message).
    fn me(&self, core: &Core, announce: Option<bool>) -> DeviceInfo {
        DeviceInfo {
            alias: core.me.name.clone(),
            version: wire::VERSION.into(),
            device_model: Some(wire::PIGEON_MODEL.into()),
            device_type: Some("desktop".into()),
            fingerprint: self.fingerprint.clone(),
            port: Some(self.port),
            protocol: Some("https".into()),
            download: false,
            announce,
        }
    }

    /// Announces us to the multicast group on each interface (when on) and to the targets.
    fn announce(&mut self, core: &Core) {
        let Ok(bytes) = serde_json::to_vec(&self.me(core, Some(true))) else { return };
        if let Some(group) = &mut self.group {
            group.send(&self.udp, &self.scope.subnets(), &bytes);
        }
        for to in &self.targets {
            if let Err(err) = socket::send_datagram(&self.udp, &bytes, *to) {
                log::debug!("LocalSend announcement to {to}: {err}");
            }
        }
    }

    fn on_report(&mut self, core: &mut Core, report: Report, now: Instant) {
        match report {
            Report::Announced { from, info } => self.on_announced(core, from, &info, now),
            Report::Call { from, presented, call, reply } => {
                self.on_call(core, from, presented, call, &reply, now);
            }
            Report::Uploaded { session, file, outcome } => {
                self.on_uploaded(core, &session, &file, outcome, now);
            }
            Report::Probed { addr, https, outcome } => self.on_probed(core, addr, https, outcome, now),
            Report::Answered { transfer, outcome } => self.on_answered(core, transfer, outcome),
            Report::TextSent { peer, msg_id, outcome } => self.on_text_sent(core, peer, msg_id, outcome),
        }
    }

    fn on_call(
        &mut self,
        core: &mut Core,
        from: SocketAddrV4,
        presented: Option<String>,
        call: Call,
        reply: &Sender<Reply>,
        now: Instant,
    ) {
        let answer = match call {
            Call::Info => Some(self.describe(core)),
            Call::Register(info) => {
                self.on_register(core, from, presented, &info, now);
                Some(self.describe(core))
            }
            Call::Prepare { pin, offer } => {
                self.on_prepare(core, from, presented, pin.as_deref(), offer, reply, now)
            }
            Call::Upload { session, file, token } => {
                Some(self.on_upload(*from.ip(), &session, &file, &token, now))
            }
            Call::Cancel { session } => Some(self.on_cancel(core, *from.ip(), &session)),
        };
        if let Some(answer) = answer {
            // The connection thread waits for it; if it gave up, nobody needs it.
            reply.try_send(answer).ok();
        }
    }

    /// Our `info` / `register` answer.
    fn describe(&self, core: &Core) -> Reply {
        let me = DeviceInfo { port: None, protocol: None, ..self.me(core, None) };
        Reply::Json(200, serde_json::to_vec(&me).unwrap_or_default())
    }
}

/// An announcement, unless it is not one.
fn decode_announcement(from: SocketAddrV4, bytes: &[u8]) -> Result<Decoded<Report>, DecodeError> {
    let info: DeviceInfo = serde_json::from_slice(bytes).map_err(|err| DecodeError::Body(err.to_string()))?;
    Ok(Decoded { report: Report::Announced { from, info }, urgent: true })
}

impl Adapter for LocalSend {
    fn family(&self) -> Family {
        Family::LocalSend
    }

    fn take_reports(&mut self, core: &mut Core, now: Instant) -> usize {
        let reports = super::one_turn(&self.reports);
        let taken = reports.len();
        for report in reports {
            self.on_report(core, report, now);
        }
        taken
    }

    fn deliver(&mut self, core: &mut Core, peer: PeerId, _now: Instant) {
        self.send_waiting(core, peer);
    }

    fn fetch(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        self.accepted(core, job)
    }

    fn transfer_ended(&mut self, _core: &mut Core, record: &TransferRecord, _tell_peer: bool) {
        self.incoming_ended(record.id);
        self.outgoing.ended(record.id);
    }

    fn peer_left(&mut self, _core: &mut Core, peer: PeerId) {
        self.devices.remove(&peer);
    }

    fn profile_changed(&mut self, core: &mut Core) {
        self.announce(core);
    }

    fn set_pin(&mut self, core: &mut Core, peer: PeerId, pin: String) -> bool {
        if pin.is_empty() {
            self.pins_given.remove(&peer);
        } else {
            self.pins_given.insert(peer, pin);
        }
        self.send_waiting(core, peer);
        true
    }

    fn set_targets(&mut self, core: &mut Core, targets: &[SocketAddrV4]) {
        self.aim_at(targets);
        self.announce(core);
    }

    fn next_timer(&self) -> Instant {
        let next = self.next_announce.min(self.next_liveness);
        self.incoming.as_ref().and_then(Incoming::stalls_at).map_or(next, |stalls| next.min(stalls))
    }

    fn on_timer(&mut self, core: &mut Core, now: Instant) {
        if now >= self.next_announce {
            self.announce(core);
            self.announced += 1;
            // A few quickly (a datagram may be lost as everyone starts), then now and then.
            let pause = if self.announced < 3 { Duration::from_secs(1) } else { devices::REANNOUNCE };
            self.next_announce = now + pause;
        }
        self.fail_stalled(core, now);
        if now >= self.next_liveness {
            self.check_liveness(core, now);
            self.pin_tries.forget_old(now);
            self.next_liveness = now + devices::LIVENESS;
        }
    }

    fn resumes_transfers(&self) -> bool {
        // A LocalSend session does not outlive its connection.
        false
    }

    fn stop(&mut self, _core: &mut Core) {
        if let Some(incoming) = self.incoming.take() {
            incoming.refuse(403);
        }
        self.outgoing.stop_all();
    }

    fn stats(&self, stats: &mut Stats) {
        self.counters.add_to(stats);
    }
}
