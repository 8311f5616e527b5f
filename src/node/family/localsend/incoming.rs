//! Offers from LocalSend devices, one at a time as in the apps (another while one is open
//! is answered 409). A text offer is a chat message, stored at once and answered 204. A file
//! offer becomes an incoming transfer like any other: its names are sanitized (folders are
//! the paths of their files), its `prepare-upload` waits, unanswered, for our user (or for
//! "always accept"), and once accepted is answered with a token per file; each upload is then
//! stored by its connection thread (`receive`) and the transfer completes with its last file.
//! A PIN, when set, is checked first, with LocalSend's rules: a wrong one 401, and after
//! [`PIN_ATTEMPTS`] wrong ones 429 for [`PIN_LOCKOUT`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::receive::{Grant, Upload};
use super::server::Reply;
use super::{LocalSend, devices};
use crate::node::ending::Ending;
use crate::node::event::Event;
use crate::node::files;
use crate::node::hub::core::{Core, now_ms};
use crate::node::hub::transfers::{FetchJob, incoming_record};
use crate::node::random_id;
use crate::node::threads::StopFlag;
use crate::node::worker::{Meter, Reporter, Tally};
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::localsend::{PrepareAnswer, PrepareUpload, sha256_bytes};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{Entry, EntryKind};
use crate::store::TransferState;

/// Wrong PINs from one address before it must wait.
const PIN_ATTEMPTS: u32 = 3;

/// How long an address that gave too many wrong PINs waits.
const PIN_LOCKOUT: Duration = Duration::from_secs(60);

/// Addresses whose wrong PINs are counted at most.
const MAX_PIN_TRACKED: usize = 1024;

/// An accepted offer whose sender sends nothing for this long has given up (the apps retry
/// a broken upload at once, or cancel).
const STALL_TIMEOUT: Duration = Duration::from_secs(45);

/// Wrong PINs per address.
#[derive(Default)]
pub struct PinTries(HashMap<Ipv4Addr, (u32, Instant)>);

impl PinTries {
    fn locked(&self, ip: Ipv4Addr, now: Instant) -> bool {
        self.0
            .get(&ip)
            .is_some_and(|(tries, at)| *tries >= PIN_ATTEMPTS && now.duration_since(*at) < PIN_LOCKOUT)
    }

    fn failed(&mut self, ip: Ipv4Addr, now: Instant) {
        if self.0.len() >= MAX_PIN_TRACKED && !self.0.contains_key(&ip) {
            self.forget_old(now);
        }
        let entry = self.0.entry(ip).or_insert((0, now));
        *entry = (entry.0 + 1, now);
    }

    /// Forgets addresses whose last wrong PIN is older than the lockout.
    pub fn forget_old(&mut self, now: Instant) {
        self.0.retain(|_, (_, at)| now.duration_since(*at) < PIN_LOCKOUT);
    }
}

/// The offer to us being decided or received.
pub struct Incoming {
    transfer: TransferId,
    ip: Ipv4Addr,
    session: String,
    /// By the sender's file id.
    files: BTreeMap<String, IncomingFile>,
    /// The `prepare-upload` waiting for our user.
    reply: Option<Sender<Reply>>,
    /// Once accepted: where files go and how progress is told.
    accepted: Option<Accepted>,
    /// When an upload last started or ended.
    last_activity: Instant,
}

struct IncomingFile {
    token: String,
    /// Its entry in the transfer.
    index: usize,
    size: u64,
    sha256: Option<[u8; 32]>,
    /// An upload of it is being stored.
    busy: bool,
    done: bool,
}

struct Accepted {
    places: Vec<Vec<String>>,
    root: PathBuf,
    staging: PathBuf,
    stop: StopFlag,
    reporter: Reporter,
    tally: Arc<Tally>,
}

impl Incoming {
    /// When the accepted offer has stalled, if no upload is under way.
    pub fn stalls_at(&self) -> Option<Instant> {
        let idle = self.accepted.is_some() && self.files.values().all(|meta| !meta.busy);
        idle.then(|| self.last_activity + STALL_TIMEOUT)
    }

    /// Answers the waiting `prepare-upload` with `status` (nothing when none waits).
    pub fn refuse(self, status: u16) {
        if let Some(reply) = self.reply {
            reply.try_send(Reply::Empty(status)).ok();
        }
    }
}

/// An offer from a sender not proven yet, kept while we ask it who it is.
pub struct Unproven {
    ip: Ipv4Addr,
    offer: PrepareUpload,
    reply: Sender<Reply>,
}

impl LocalSend {
    /// A `prepare-upload`. `None` when the answer comes later (the user decides).
    #[allow(clippy::too_many_arguments, reason = "a request's every part, each used once")]
    pub(super) fn on_prepare(
        &mut self,
        core: &mut Core,
        from: SocketAddrV4,
        presented: Option<String>,
        pin: Option<&str>,
        offer: PrepareUpload,
        reply: &Sender<Reply>,
        now: Instant,
    ) -> Option<Reply> {
        let ip = *from.ip();
        if let Some(expected) = &self.pin {
            if self.pin_tries.locked(ip, now) {
                return Some(Reply::Empty(429));
            }
            if pin != Some(expected.as_str()) {
                self.pin_tries.failed(ip, now);
                return Some(Reply::Empty(401));
            }
        }
        if self.is_us_or_a_pigeon(&offer.info) {
            return Some(Reply::Empty(403));
        }
        let https = offer.info.uses_https();
        let proven = presented.filter(|presented| https && *presented == offer.info.fingerprint);
        let listed = self.sender_of(&offer, ip);
        let peer = match (listed, proven) {
            (Some(peer), _) => peer,
            (None, Some(fingerprint)) => {
                let addr = SocketAddrV4::new(ip, offer.info.port.unwrap_or(crate::protocol::localsend::PORT));
                let info = offer.info.clone();
                self.device_seen(core, addr, true, fingerprint, &info, now);
                devices::peer_id(&info.fingerprint)
            }
            (None, None) => {
                // Ask it who it is; the offer waits for the answer (see `on_proven`).
                if self.unproven.is_some() || self.incoming.is_some() {
                    return Some(Reply::Empty(409));
                }
                let addr = SocketAddrV4::new(ip, offer.info.port.unwrap_or(crate::protocol::localsend::PORT));
                self.ask(core, addr, https, now);
                self.unproven = Some(Unproven { ip, offer, reply: reply.clone() });
                return None;
            }
        };
        self.take_offer(core, peer, ip, &offer, reply)
    }

    /// The listed device that made `offer` from `ip`, if it is one.
    fn sender_of(&self, offer: &PrepareUpload, ip: Ipv4Addr) -> Option<PeerId> {
        self.devices
            .iter()
            .find(|(_, device)| {
                *device.addr.ip() == ip && (!device.https || device.fingerprint == offer.info.fingerprint)
            })
            .map(|(id, _)| *id)
    }

    /// The sender at `ip` was asked and is listed now: its waiting offer goes on.
    pub(super) fn on_proven(&mut self, core: &mut Core, ip: Ipv4Addr) {
        let Some(unproven) = self.unproven.take_if(|unproven| unproven.ip == ip) else { return };
        let Unproven { ip, offer, reply } = unproven;
        let answer = match self.sender_of(&offer, ip) {
            Some(peer) => self.take_offer(core, peer, ip, &offer, &reply),
            None => Some(Reply::Empty(403)),
        };
        if let Some(answer) = answer {
            reply.try_send(answer).ok();
        }
    }

    /// The sender at `ip` did not prove who it is: its offer is refused.
    pub(super) fn on_not_proven(&mut self, ip: Ipv4Addr) {
        if let Some(unproven) = self.unproven.take_if(|unproven| unproven.ip == ip) {
            unproven.reply.try_send(Reply::Empty(403)).ok();
        }
    }

    fn take_offer(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        ip: Ipv4Addr,
        offer: &PrepareUpload,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        if self.incoming.is_some() {
            return Some(Reply::Empty(409));
        }
        if let Some(text) = offer.message_text() {
            self.text_received(core, peer, text);
            return Some(Reply::Empty(204));
        }
        let transfer = random_id(TransferId::from_bytes);
        if core.offer_over_limits(transfer, peer, offer.files.len()).is_some() {
            return Some(Reply::Empty(403));
        }
        let (entries, files, refusal) = match entries_of(offer) {
            Ok((entries, files)) => (entries, files, None),
            Err(refusal) => (Vec::new(), BTreeMap::new(), Some(refusal)),
        };
        core.store_on_use(&[peer]);
        let record = incoming_record(transfer, peer, entries, refusal.as_ref());
        match core.offer_received(record) {
            Some((TransferState::Offered | TransferState::Active, _)) => {
                let session = random_id(TransferId::from_bytes).to_string();
                self.incoming = Some(Incoming {
                    transfer,
                    ip,
                    session,
                    files,
                    reply: Some(reply.clone()),
                    accepted: None,
                    last_activity: Instant::now(),
                });
                None
            }
            _ => Some(Reply::Empty(403)),
        }
    }

    fn text_received(&mut self, core: &mut Core, peer: PeerId, text: &str) {
        core.store_on_use(&[peer]);
        let msg_id = random_id(MsgId::from_bytes);
        match core.store.insert_incoming(msg_id, peer, text, now_ms(), false) {
            Ok(Some(message)) => core.sinks.emit(&Event::MessageReceived { message }),
            Ok(None) => {}
            Err(err) => log::error!("cannot store a LocalSend text from {peer}: {err}"),
        }
    }

    /// Our user (or "always accept") accepted the waiting offer: its sender gets the tokens.
    pub(super) fn accepted(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        let id = job.record.id;
        let Some(incoming) = self.incoming.as_mut().filter(|incoming| incoming.transfer == id) else {
            return Err(String::from("a LocalSend offer does not outlive its connection"));
        };
        let tokens: BTreeMap<String, String> = incoming
            .files
            .iter_mut()
            .map(|(file, meta)| {
                meta.token = random_id(TransferId::from_bytes).to_string();
                (file.clone(), meta.token.clone())
            })
            .collect();
        let answer = PrepareAnswer { session_id: incoming.session.clone(), files: tokens };
        let sent = incoming
            .reply
            .take()
            .map(|reply| reply.try_send(Reply::Json(200, serde_json::to_vec(&answer).unwrap_or_default())));
        if !matches!(sent, Some(Ok(()))) {
            core.end_transfer(id, TransferState::Failed, "the sender stopped waiting for an answer", false);
            return Ok(());
        }
        let root = core.saved_in(&job.record);
        let total = job.record.entries.iter().map(|entry| entry.size).sum();
        incoming.accepted = Some(Accepted {
            places: job.places,
            staging: files::staging_dir(&root, id),
            root,
            stop: job.stop,
            reporter: job.reporter,
            tally: Tally::new(total, 0),
        });
        if incoming.files.is_empty() {
            core.end_transfer(id, TransferState::Completed, "", false);
        }
        Ok(())
    }

    /// An `upload`: granted when it is for a file of the accepted offer, from its sender,
    /// with its token, and not being stored already.
    pub(super) fn on_upload(
        &mut self,
        ip: Ipv4Addr,
        session: &str,
        file: &str,
        token: &str,
        now: Instant,
    ) -> Reply {
        let Some(incoming) = self.incoming.as_mut().filter(|incoming| incoming.session == session) else {
            return Reply::Empty(403);
        };
        let Some(accepted) = incoming.accepted.as_ref().filter(|_| incoming.ip == ip) else {
            return Reply::Empty(403);
        };
        let Some(meta) = incoming.files.get_mut(file).filter(|meta| meta.token == token && !meta.done) else {
            return Reply::Empty(403);
        };
        if meta.busy {
            return Reply::Empty(409);
        }
        let Some(place) = accepted.places.get(meta.index) else { return Reply::Empty(403) };
        meta.busy = true;
        incoming.last_activity = now;
        let mut meter = Meter::sharing(accepted.reporter.clone(), accepted.tally.clone());
        meter.start_file(u32::try_from(meta.index).unwrap_or(u32::MAX), 0);
        Reply::Receive(Box::new(Grant {
            session: session.to_owned(),
            file: file.to_owned(),
            root: accepted.root.clone(),
            staging: accepted.staging.clone(),
            place: place.clone(),
            size: meta.size,
            sha256: meta.sha256,
            stop: accepted.stop.clone(),
            meter,
            reporter: accepted.reporter.clone(),
        }))
    }

    pub(super) fn on_uploaded(
        &mut self,
        core: &mut Core,
        session: &str,
        file: &str,
        outcome: Upload,
        now: Instant,
    ) {
        let Some(incoming) = self.incoming.as_mut().filter(|incoming| incoming.session == session) else {
            return;
        };
        let Some(meta) = incoming.files.get_mut(file) else { return };
        meta.busy = false;
        incoming.last_activity = now;
        let id = incoming.transfer;
        match outcome {
            Upload::Stored => {
                meta.done = true;
                if incoming.files.values().all(|meta| meta.done) {
                    if let Some(accepted) = &incoming.accepted {
                        files::remove_staging(&accepted.staging);
                    }
                    core.end_transfer(id, TransferState::Completed, "", false);
                }
            }
            Upload::Stopped => {}
            Upload::BrokeOff(reason) => {
                log::info!("LocalSend upload for {id} broke off ({reason}); waiting for a retry");
            }
            Upload::Failed(reason) => core.end_transfer(id, TransferState::Failed, &reason, false),
        }
    }

    /// Fails an accepted offer whose sender stopped sending.
    pub(super) fn fail_stalled(&mut self, core: &mut Core, now: Instant) {
        let Some(incoming) = &self.incoming else { return };
        if incoming.stalls_at().is_some_and(|at| now >= at) {
            let reason = format!("the sender stopped sending (nothing for {} s)", STALL_TIMEOUT.as_secs());
            core.end_transfer(incoming.transfer, TransferState::Failed, &reason, false);
        }
    }

    /// A `cancel` from the sender.
    pub(super) fn on_cancel(&mut self, core: &mut Core, ip: Ipv4Addr, session: &str) -> Reply {
        let ours = self.incoming.as_ref().filter(|incoming| {
            incoming.ip == ip && (incoming.session == session || incoming.reply.is_some())
        });
        if let Some(incoming) = ours {
            let id = incoming.transfer;
            core.end_transfer(id, TransferState::Cancelled, &Ending::CancelledThere("").reason(), false);
        }
        Reply::Empty(200)
    }

    /// A transfer ended (declined, cancelled, failed, done): if it is the offer to us, its
    /// waiting sender hears no and later uploads are refused.
    pub(super) fn incoming_ended(&mut self, id: TransferId) {
        if let Some(incoming) = self.incoming.take_if(|incoming| incoming.transfer == id) {
            incoming.refuse(403);
        }
    }
}

/// The entries of a file offer (each folder once, before its files) and its files by the
/// sender's id, or why the offer is refused (an unsafe name).
fn entries_of(offer: &PrepareUpload) -> Result<(Vec<Entry>, BTreeMap<String, IncomingFile>), String> {
    let mut folders = BTreeSet::new();
    let mut named = Vec::new();
    for (id, meta) in &offer.files {
        let components = sanitize_path(&meta.file_name).map_err(|err| err.to_string())?;
        for depth in 1..components.len() {
            folders.insert(components[..depth].join("/"));
        }
        named.push((id, meta, components.join("/")));
    }
    let mut entries: Vec<Entry> =
        folders.into_iter().map(|path| Entry { path, kind: EntryKind::Dir, size: 0 }).collect();
    let mut files = BTreeMap::new();
    for (id, meta, path) in named {
        files.insert(
            id.clone(),
            IncomingFile {
                token: String::new(),
                index: entries.len(),
                size: meta.size,
                sha256: meta.sha256.as_deref().and_then(sha256_bytes),
                busy: false,
                done: false,
            },
        );
        entries.push(Entry { path, kind: EntryKind::File, size: meta.size });
    }
    Ok((entries, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(names: &[&str]) -> PrepareUpload {
        let files = names
            .iter()
            .enumerate()
            .map(|(at, name)| {
                let id = format!("f{at}");
                let meta = crate::protocol::localsend::FileMeta {
                    id: id.clone(),
                    file_name: (*name).to_owned(),
                    size: 3,
                    file_type: "application/octet-stream".into(),
                    sha256: None,
                    preview: None,
                    metadata: None,
                };
                (id, meta)
            })
            .collect();
        let info = serde_json::from_str(r#"{"alias":"Phone","fingerprint":"F"}"#).unwrap();
        PrepareUpload { info, files }
    }

    #[test]
    fn folders_come_from_the_paths_of_their_files_and_hostile_names_stay_inside_or_are_refused() {
        let (entries, files) = entries_of(&offer(&["Photos/2026/a.jpg", "Photos/b.jpg", "c.txt"])).unwrap();
        let paths: Vec<(&str, EntryKind)> = entries.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            paths,
            [
                ("Photos", EntryKind::Dir),
                ("Photos/2026", EntryKind::Dir),
                ("Photos/2026/a.jpg", EntryKind::File),
                ("Photos/b.jpg", EntryKind::File),
                ("c.txt", EntryKind::File)
            ]
        );
        assert_eq!(entries[files["f1"].index].path, "Photos/b.jpg");
        // Roots and drive letters are dropped (the name lands inside the download folder);
        // a parent component refuses the offer.
        let (entries, _) = entries_of(&offer(&["/etc/passwd", "C:\\x", "a\u{7}b\u{202e}"])).unwrap();
        assert!(entries.iter().all(|entry| !entry.path.starts_with('/') && !entry.path.contains(':')));
        assert!(
            entries.iter().all(|entry| !entry.path.contains('\u{7}') && !entry.path.contains('\u{202e}'))
        );
        assert!(entries_of(&offer(&["ok.txt", "../x"])).is_err());
    }

    #[test]
    fn three_wrong_pins_lock_an_address_for_a_minute() {
        let (mut tries, now, ip) = (PinTries::default(), Instant::now(), Ipv4Addr::new(10, 0, 0, 9));
        for _ in 0..PIN_ATTEMPTS {
            assert!(!tries.locked(ip, now));
            tries.failed(ip, now);
        }
        assert!(tries.locked(ip, now));
        assert!(!tries.locked(Ipv4Addr::new(10, 0, 0, 8), now));
        assert!(!tries.locked(ip, now + PIN_LOCKOUT));
        tries.forget_old(now + PIN_LOCKOUT);
        assert!(tries.0.is_empty());
    }
}
