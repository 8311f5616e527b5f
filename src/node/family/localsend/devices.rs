//! LocalSend devices as we list them. An announcement (or a `register`) is only a claim: a
//! device is listed once we asked it ourselves (`register` to an announcement, `info`
//! otherwise) and the certificate it presented has the fingerprint it goes by — unless a
//! client certificate with that fingerprint came with its request, which proves the same.
//! A device that stops answering is asked again every [`LIVENESS`] and leaves the list after
//! [`GONE_AFTER`] failed asks in a row (the apps send no goodbye).
//!
//! Asking costs a connection, so it is bounded: at most [`MAX_PROBES`] at once and one per
//! address every [`ASK_AGAIN_AFTER`], and at most [`MAX_DEVICES`] are listed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::client::Target;
use super::{LocalSend, Report};
use crate::node::event::{Event, LeaveReason, PeerInfo};
use crate::node::hub::clip_label;
use crate::node::hub::core::{Core, Remember};
use crate::node::threads;
use crate::protocol::Family;
use crate::protocol::announce::Status;
use crate::protocol::ids::PeerId;
use crate::protocol::keys::PublicKey;
use crate::protocol::localsend::{self as wire, DeviceInfo, path};
use crate::store::Trust;

/// How often devices not heard from lately are asked whether they are still there.
pub const LIVENESS: Duration = Duration::from_secs(20);

/// How often we announce ourselves after the first few times.
pub const REANNOUNCE: Duration = Duration::from_secs(60);

/// Failed asks in a row after which a device has left.
const GONE_AFTER: u32 = 2;

/// Asks running at once.
const MAX_PROBES: usize = 8;

/// An address is asked again only after this long (announcements repeat; floods happen).
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(3);

/// How long an ask waits.
const PROBE_PATIENCE: Duration = Duration::from_secs(10);

/// Devices listed at most.
const MAX_DEVICES: usize = 256;

/// A listed device.
pub struct Device {
    /// Its address and HTTP port.
    pub addr: SocketAddrV4,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// Its fingerprint (over HTTPS, of the certificate it presented).
    pub fingerprint: String,
    /// When it last answered or announced itself.
    heard: Instant,
    /// Asks in a row it did not answer.
    failures: u32,
}

impl Device {
    /// Where requests to it go, pinned to its certificate.
    pub fn target(&self) -> Target {
        Target {
            addr: self.addr,
            https: self.https,
            expect: self.https.then(|| self.fingerprint.clone()),
            pin: None,
        }
    }
}

/// The asks in flight.
#[derive(Default)]
pub struct Probes {
    running: usize,
    /// When each address was last asked (pruned as they age).
    asked: HashMap<Ipv4Addr, Instant>,
}

impl LocalSend {
    pub(super) fn on_announced(
        &mut self,
        core: &mut Core,
        from: SocketAddrV4,
        info: &DeviceInfo,
        now: Instant,
    ) {
        if self.is_us_or_a_pigeon(info) {
            return;
        }
        let addr = SocketAddrV4::new(*from.ip(), info.port.unwrap_or(wire::PORT));
        let known = self
            .devices
            .values_mut()
            .find(|device| device.addr == addr && device.fingerprint == info.fingerprint);
        match known {
            // An announcement asks for an answer; an answer to ours asks for nothing.
            Some(device) if info.announce != Some(true) => device.heard = now,
            _ => self.probe(core, addr, info.uses_https(), true, now),
        }
    }

    /// A `register` from `from`: believed at once when the client's certificate proves its
    /// fingerprint, else checked by asking it back.
    pub(super) fn on_register(
        &mut self,
        core: &mut Core,
        from: SocketAddrV4,
        presented: Option<String>,
        info: &DeviceInfo,
        now: Instant,
    ) {
        if self.is_us_or_a_pigeon(info) {
            return;
        }
        let addr = SocketAddrV4::new(*from.ip(), info.port.unwrap_or(wire::PORT));
        match presented {
            Some(presented) if presented == info.fingerprint && info.uses_https() => {
                self.device_seen(core, addr, true, presented, info, now);
            }
            _ => self.probe(core, addr, info.uses_https(), false, now),
        }
    }

    pub(super) fn is_us_or_a_pigeon(&self, info: &DeviceInfo) -> bool {
        info.fingerprint == self.fingerprint || info.device_model.as_deref() == Some(wire::PIGEON_MODEL)
    }

    /// Asks the device at `addr` to describe itself: with our own description (`register`,
    /// which answers its announcement) or not (`info`).
    fn probe(&mut self, core: &mut Core, addr: SocketAddrV4, https: bool, register: bool, now: Instant) {
        let ip = *addr.ip();
        if self.probes.running >= MAX_PROBES
            || self.probes.asked.get(&ip).is_some_and(|at| now.duration_since(*at) < ASK_AGAIN_AFTER)
        {
            return;
        }
        self.probes.asked.retain(|_, at| now.duration_since(*at) < ASK_AGAIN_AFTER);
        self.probes.asked.insert(ip, now);
        let target = Target { addr, https, expect: None, pin: None };
        let body = register.then(|| serde_json::to_vec(&self.me(core, None)).unwrap_or_default());
        let (sender, stop) = (self.sender.clone(), self.stop.clone());
        let spawned = threads::spawn("pigeon-localsend-probe", move || {
            let outcome = match &body {
                Some(body) => sender.client.post(
                    &target,
                    path::REGISTER,
                    "application/json",
                    body,
                    PROBE_PATIENCE,
                    &stop,
                ),
                None => sender.client.call(&target, "GET", path::INFO, None, PROBE_PATIENCE, &stop),
            };
            let outcome = outcome.and_then(|answer| {
                if answer.status != 200 {
                    return Err(format!("it answered HTTP {}", answer.status));
                }
                let info: DeviceInfo = serde_json::from_slice(&answer.body)
                    .map_err(|err| format!("not a LocalSend answer: {err}"))?;
                Ok((info, answer.presented))
            });
            sender.queue.send(Report::Probed { addr, https, outcome }).ok();
        });
        match spawned {
            Ok(thread) => {
                self.probes.running += 1;
                core.workers.adopt(thread);
            }
            Err(err) => log::warn!("LocalSend: cannot ask {addr}: {err}"),
        }
    }

    pub(super) fn on_probed(
        &mut self,
        core: &mut Core,
        addr: SocketAddrV4,
        https: bool,
        outcome: Result<(DeviceInfo, Option<String>), String>,
        now: Instant,
    ) {
        self.probes.running = self.probes.running.saturating_sub(1);
        match outcome {
            Ok((info, presented)) => {
                // Over HTTPS the certificate is the identity, whatever the body claims.
                let fingerprint = if https { presented } else { Some(info.fingerprint.clone()) };
                let Some(fingerprint) = fingerprint else { return };
                if fingerprint != info.fingerprint {
                    log::info!(
                        "LocalSend device at {addr} claims {} but presents {fingerprint}",
                        info.fingerprint
                    );
                }
                if !self.is_us_or_a_pigeon(&info) && fingerprint != self.fingerprint {
                    self.device_seen(core, addr, https, fingerprint, &info, now);
                }
                self.on_proven(core, *addr.ip());
            }
            Err(reason) => {
                log::debug!("LocalSend device at {addr}: {reason}");
                self.on_not_proven(*addr.ip());
                let gone: Vec<PeerId> = self
                    .devices
                    .iter_mut()
                    .filter(|(_, device)| device.addr == addr)
                    .filter_map(|(id, device)| {
                        device.failures += 1;
                        (device.failures >= GONE_AFTER).then_some(*id)
                    })
                    .collect();
                for id in gone {
                    core.peer_left(id, LeaveReason::Timeout);
                }
            }
        }
    }

    /// Asks the device at `addr` who it is (an offer came from it before anything else).
    pub(super) fn ask(&mut self, core: &mut Core, addr: SocketAddrV4, https: bool, now: Instant) {
        self.probe(core, addr, https, false, now);
    }

    /// A device proved to be `fingerprint`: listed, its fingerprint pinned (HTTPS).
    pub(super) fn device_seen(
        &mut self,
        core: &mut Core,
        addr: SocketAddrV4,
        https: bool,
        fingerprint: String,
        info: &DeviceInfo,
        now: Instant,
    ) {
        let id = peer_id(&fingerprint);
        if !self.devices.contains_key(&id) && self.devices.len() >= MAX_DEVICES {
            return;
        }
        // Someone else at this address now: the one before is gone.
        let replaced: Vec<PeerId> = self
            .devices
            .iter()
            .filter(|(other, device)| **other != id && device.addr == addr)
            .map(|(id, _)| *id)
            .collect();
        for old in replaced {
            core.peer_left(old, LeaveReason::Goodbye);
            self.devices.remove(&old);
        }
        let key = if https { wire::sha256_bytes(&fingerprint).map(PublicKey::from_bytes) } else { None };
        let mut peer = PeerInfo {
            id,
            name: clip_label(info.alias.clone()),
            group: String::new(),
            host: clip_label(info.device_model.clone().unwrap_or_default()),
            addr: addr.ip().to_string(),
            port: addr.port(),
            status: Status::Online,
            key,
            trust: Trust::Unencrypted,
            client: Some(format!("LocalSend · {}", info.kind())),
            family: Family::LocalSend,
        };
        let (remember, key_change) = match key {
            Some(key) => {
                let (trust, change) = core.pin_key(&Core::known_peer(&peer), key);
                peer.trust = trust;
                (Remember::Yes, change)
            }
            // A plain HTTP device proves nothing: stored only once a conversation starts.
            None => (Remember::No, None),
        };
        self.devices.insert(id, Device { addr, https, fingerprint, heard: now, failures: 0 });
        core.peer_seen(peer.clone(), None, now, remember);
        if let Some(change) = key_change {
            let (previous, previous_verified) = (change.previous, change.previous_verified);
            core.sinks.emit(&Event::KeyChanged { peer, previous, previous_verified });
        }
        if core.outbox.is_waiting(id) {
            core.queue_for(id);
        }
    }

    /// Asks the devices not heard from lately whether they are still there.
    pub(super) fn check_liveness(&mut self, core: &mut Core, now: Instant) {
        let quiet: Vec<(SocketAddrV4, bool)> = self
            .devices
            .values()
            .filter(|device| now.duration_since(device.heard) >= LIVENESS)
            .map(|device| (device.addr, device.https))
            .collect();
        for (addr, https) in quiet {
            self.probe(core, addr, https, false, now);
        }
    }
}

/// The id of a LocalSend device: derived from its fingerprint, so a device keeps its
/// history for as long as it keeps its certificate.
pub fn peer_id(fingerprint: &str) -> PeerId {
    let hash = blake3::Hasher::new_derive_key("pigeon 2026-12 localsend device id")
        .update(fingerprint.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    PeerId::from_bytes(bytes)
}
