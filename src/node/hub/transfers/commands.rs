//! The user's say in transfers: offering files (listed off the hub thread), accepting,
//! declining, cancelling, retrying and listing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::super::core::{Core, Intent, now_ms};
use crate::node::ending::Ending;
use crate::node::event::{Event, TransferInfo, shown_entry};
use crate::node::files::{self, Scanned};
use crate::node::inbox::NetEvent;
use crate::node::random_id;
use crate::node::sinks::Origin;
use crate::node::threads;
use crate::protocol::frame::{Frame, HEADER_LEN, MAX_OFFER_PAYLOAD};
use crate::protocol::ids::{PeerId, RoomId, TransferId};
use crate::protocol::names::sanitize_path;
use crate::protocol::room::PostedIn;
use crate::protocol::transfer::{EntryKind, Offer};
use crate::store::{Direction, TransferRecord, TransferState};

/// Transfers listed by `list_transfers`.
const LISTED_TRANSFERS: usize = 100;

impl Core {
    /// Lists the files to offer on a helper thread (a big folder takes a while); the offers
    /// go out when the list comes back ([`Core::on_scanned`]).
    pub fn send_files(&mut self, to: Vec<PeerId>, paths: Vec<PathBuf>, tag: Option<String>, origin: Origin) {
        if let Some(unknown) = to.iter().find(|peer| self.peers.family_of(**peer).is_none()) {
            self.fail(origin, tag, &format!("files not sent: unknown peer {unknown}"));
            return;
        }
        self.store_on_use(&to);
        if to.is_empty() || paths.is_empty() {
            self.fail(origin, tag, &"files not sent: nothing to send or no recipient");
            return;
        }
        self.scan(to, None, paths, tag, origin);
    }

    /// Answers `room_send_files`: the files are listed first, like [`Core::send_files`].
    pub fn room_send_files(
        &mut self,
        room: RoomId,
        paths: Vec<PathBuf>,
        tag: Option<String>,
        origin: Origin,
    ) {
        if let Err(err) = self.rooms.may_post(room) {
            return self.fail(origin, tag, &format!("files not posted: {err}"));
        }
        if paths.is_empty() {
            return self.fail(origin, tag, &"files not posted: nothing to send");
        }
        self.scan(Vec::new(), Some(room), paths, tag, origin);
    }

    fn scan(
        &mut self,
        to: Vec<PeerId>,
        room: Option<RoomId>,
        paths: Vec<PathBuf>,
        tag: Option<String>,
        origin: Origin,
    ) {
        let net = self.net.clone();
        let spawned = threads::spawn("pigeon-scan", move || {
            let result = files::scan(&paths);
            net.send(NetEvent::Scanned { to, room, tag, origin, result }).ok();
        });
        match spawned {
            Ok(thread) => self.workers.adopt(thread),
            Err(err) => log::error!("cannot start scan thread: {err}"),
        }
    }

    /// The files to offer are listed: one transfer per recipient; posted to `room` first
    /// when they go to one (its members now are the recipients).
    pub fn on_scanned(
        &mut self,
        to: Vec<PeerId>,
        room: Option<RoomId>,
        tag: Option<String>,
        origin: Origin,
        result: std::io::Result<Scanned>,
    ) {
        let scanned = match result {
            Ok(scanned) if scanned.entries.is_empty() => {
                self.fail(origin, tag, &"files not sent: nothing to send (only links or special files)");
                return;
            }
            Ok(scanned) => scanned,
            Err(err) => {
                self.fail(origin, tag, &format!("files not sent: {err}"));
                return;
            }
        };
        if let Err(err) = check_offer(&scanned) {
            self.fail(origin, tag, &format!("files not sent: {err}"));
            return;
        }
        let (to, posted) = match room {
            None => (to, None),
            Some(room) => {
                let Some((seq, members)) = self.post_files(room, &scanned.entries, tag.clone(), origin)
                else {
                    return;
                };
                (members, Some(PostedIn { room, seq }))
            }
        };
        for peer in to {
            self.offer_listed(
                peer,
                scanned.entries.clone(),
                scanned.sources.clone(),
                posted,
                tag.clone(),
                origin,
            );
        }
    }

    /// Offers listed files to `peer` (for a room post: tagged with it).
    pub fn offer_listed(
        &mut self,
        peer: PeerId,
        entries: Vec<crate::protocol::transfer::Entry>,
        sources: Vec<PathBuf>,
        room: Option<PostedIn>,
        tag: Option<String>,
        origin: Origin,
    ) {
        let record = TransferRecord {
            id: random_id(TransferId::from_bytes),
            peer,
            direction: Direction::Outgoing,
            entries,
            sources,
            root_names: BTreeMap::new(),
            state: TransferState::Offered,
            files_done: 0,
            reason: String::new(),
            created_ms: now_ms(),
            room,
            row: None,
            saved_in: None,
        };
        self.add_outgoing(record, tag, origin);
    }

    fn live_incoming(&mut self, id: TransferId, origin: Origin) -> Option<&TransferRecord> {
        match self.transfers.record(id) {
            Some(record) if record.direction == Direction::Incoming => self.transfers.record(id),
            _ => {
                self.fail(origin, None, &format!("no incoming transfer {id} waiting"));
                None
            }
        }
    }

    /// The user accepts an offer (`always`: and every future one from that peer).
    pub fn accept(&mut self, id: TransferId, always: bool, origin: Origin) {
        let Some(record) = self.live_incoming(id, origin) else { return };
        if record.state != TransferState::Offered {
            return;
        }
        let peer = record.peer;
        let top_folders: Vec<String> = record
            .entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::Dir)
            .filter_map(|entry| match sanitize_path(&entry.path).ok()?.as_slice() {
                [top] => Some(top.clone()),
                _ => None,
            })
            .collect();
        // Each top-level folder gets a fresh local name now, so a second "Photos" never
        // mixes into the first.
        let mut root_names = BTreeMap::new();
        let saved_in = self.receiving.download_dir.clone();
        for top in top_folders {
            match files::reserve_folder(&saved_in, &top) {
                Ok(local) => {
                    root_names.insert(top, local);
                }
                Err(err) => {
                    let folder = saved_in.display();
                    self.end_transfer(
                        id,
                        TransferState::Failed,
                        &format!("cannot create a folder in {folder}: {err}"),
                        true,
                    );
                    return;
                }
            }
        }
        let stored = self
            .store
            .set_root_names(id, &root_names)
            .and_then(|()| self.store.set_saved_in(id, &saved_in))
            .and_then(|()| if always { self.store.trust_sender(peer) } else { Ok(()) });
        if let Err(err) = stored {
            log::error!("cannot record acceptance of {id}: {err}");
        }
        self.transfers.set_accepted(id, root_names, saved_in);
        if let Some(record) = self.transfers.record(id) {
            self.sinks.emit(&Event::TransferUpdated { transfer: TransferInfo::from_record(record) });
        }
        self.set_transfer_state(id, TransferState::Active, "");
        self.intents.push_back(Intent::Fetch(id));
    }

    /// The user declines an offer.
    pub fn decline(&mut self, id: TransferId, origin: Origin) {
        let Some(record) = self.live_incoming(id, origin) else { return };
        if record.state == TransferState::Offered {
            self.end_transfer(id, TransferState::Declined, &Ending::DeclinedHere.reason(), true);
        }
    }

    /// The user cancels a transfer (either side).
    pub fn cancel(&mut self, id: TransferId, origin: Origin) {
        if self.transfers.record(id).is_none() {
            self.fail(origin, None, &format!("no running transfer {id}"));
            return;
        }
        self.end_transfer(id, TransferState::Cancelled, &Ending::CancelledHere.reason(), true);
    }

    /// The user retries a failed or interrupted incoming transfer, from where it stopped, or
    /// a failed or declined outgoing one: its files are offered again (the other side has
    /// nothing to resume from).
    pub fn retry(&mut self, id: TransferId, origin: Origin) {
        let record = match self.store.transfer(id) {
            Ok(Some(record)) => record,
            Ok(None) => return self.fail(origin, None, &format!("no transfer {id}")),
            Err(err) => return self.fail(origin, None, &err),
        };
        if record.direction == Direction::Outgoing
            && matches!(record.state, TransferState::Failed | TransferState::Declined)
            && record.room.is_none()
        {
            let picked = record.picked_paths();
            return self.send_files(vec![record.peer], picked, None, origin);
        }
        // Offers refused for unsafe names fail sanitizing again and stay refused.
        let resumable = record.direction == Direction::Incoming
            && matches!(record.state, TransferState::Active | TransferState::Failed)
            && record.entries.iter().all(|entry| sanitize_path(&entry.path).is_ok());
        if !resumable {
            return self.fail(origin, None, &format!("transfer {id} cannot be retried from this side"));
        }
        if self.transfers.record(id).is_none() {
            self.transfers.track(record);
        }
        self.transfers.ready_to_resume(id, Instant::now());
        self.set_transfer_state(id, TransferState::Active, "");
        self.intents.push_back(Intent::Fetch(id));
    }

    /// Answers `transfer_entries`: a page of one transfer's entries, as they are shown.
    pub fn transfer_entries(&mut self, transfer_id: TransferId, offset: usize, limit: usize, origin: Origin) {
        let record = match self.transfers.record(transfer_id).cloned() {
            Some(record) => record,
            None => match self.store.transfer(transfer_id) {
                Ok(Some(record)) => record,
                Ok(None) => return self.fail(origin, None, &format!("no transfer {transfer_id}")),
                Err(err) => return self.fail(origin, None, &err),
            },
        };
        let limit = limit.min(crate::node::command::MAX_ENTRIES_PAGE);
        let entries = record.entries.iter().skip(offset).take(limit).map(shown_entry).collect();
        let total = record.entries.len();
        self.sinks.reply(origin, Event::TransferEntries { transfer_id, offset, total, entries });
    }

    /// Answers `list_transfers`: the newest, live ones as they stand now.
    pub fn list_transfers(&mut self, origin: Origin) {
        match self.store.recent_transfers(LISTED_TRANSFERS) {
            Ok(records) => {
                let transfers = records
                    .iter()
                    .map(|record| {
                        TransferInfo::from_record(self.transfers.record(record.id).unwrap_or(record))
                    })
                    .collect();
                self.sinks.reply(origin, Event::Transfers { transfers });
            }
            Err(err) => self.fail(origin, None, &err),
        }
    }
}

/// Whether an offer of `scanned` fits the protocol's limits.
fn check_offer(scanned: &Scanned) -> Result<(), String> {
    // The longest room reference there is, so that a list that fits fits in any room.
    let room = Some(PostedIn { room: RoomId::from_bytes([0; 16]), seq: u64::MAX });
    let probe =
        Offer { transfer_id: TransferId::from_bytes([0; 16]), entries: scanned.entries.clone(), room };
    probe.validate().map_err(|err| err.to_string())?;
    let encoded = Frame::Offer(probe).encode().len() - HEADER_LEN;
    if encoded > MAX_OFFER_PAYLOAD {
        return Err(format!("the list of names takes {encoded} bytes, over {MAX_OFFER_PAYLOAD}"));
    }
    Ok(())
}
