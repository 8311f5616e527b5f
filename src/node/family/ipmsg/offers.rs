//! Files between IP Messenger clients and us. Their offers (a message's attachment list)
//! become incoming transfers, fetched once accepted by a worker (`fetch`). Ours go out as a
//! message with an attachment list; the client fetches each offered entry over TCP, on a
//! connection of its own (`serve`), and the transfer is complete once every entry with data
//! was taken whole — or failed, with the reason, when a client hangs up early.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::IpMsg;
use super::fetch::{self, IpMsgReceiveJob, Item};
use super::serve::{self, ServeRequest};
use crate::node::hub::core::Core;
use crate::node::hub::transfers::{FetchJob, incoming_record};
use crate::node::threads;
use crate::node::worker::Tally;
use crate::protocol::ids::{MsgId, PeerId, TransferId};
use crate::protocol::ipmsg::attach::{self, AttachKind, Attachment};
use crate::protocol::ipmsg::text::{self, Charset};
use crate::protocol::ipmsg::{Packet, mode, opt};
use crate::protocol::names::sanitize_path;
use crate::protocol::transfer::{Entry, EntryKind};
use crate::store::TransferState;

/// Request for one file's bytes.
const GETFILEDATA: u32 = 0x60;
/// Request for a folder stream.
const GETDIRFILES: u32 = 0x62;

/// What fetching a client's offer needs: where, under which packet number, and the sender's
/// number of each entry (in the order of the transfer's entries).
pub struct IpOffer {
    ip: Ipv4Addr,
    packet_no: u32,
    file_ids: Vec<u32>,
    mtimes: Vec<Option<u64>>,
}

/// One of our offers being fetched.
pub struct Serving {
    /// Bytes sent, all entries together (a client fetches them in parallel).
    tally: Arc<Tally>,
    /// Top-level entries the client took whole.
    served: BTreeSet<usize>,
}

/// Where an offer came from.
#[derive(Clone, Copy)]
pub struct Offered {
    /// The client's address.
    pub ip: Ipv4Addr,
    /// The client.
    pub peer: PeerId,
    /// The transfer it becomes.
    pub transfer: TransferId,
    /// The packet number of the offer.
    pub packet_no: u32,
}

impl IpMsg {
    /// Records a client's offer as an incoming transfer waiting for the user. A name that is
    /// a path (or a parent folder) is refused, as in native offers.
    pub(super) fn offer_received(
        &mut self,
        core: &mut Core,
        offered: Offered,
        attachments: &[Attachment],
        utf8_flagged: bool,
    ) {
        // IP Messenger has no way to decline with a reason: the offer is just not listed.
        if core.offer_over_limits(offered.transfer, offered.peer, attachments.len()).is_some() {
            return;
        }
        let entries: Vec<Entry> = attachments
            .iter()
            .map(|attachment| Entry {
                path: text::decode(&attachment.name, utf8_flagged).0,
                kind: if attachment.kind == AttachKind::Dir { EntryKind::Dir } else { EntryKind::File },
                size: attachment.size,
            })
            .collect();
        let refusal = entries.iter().find_map(|entry| match sanitize_path(&entry.path) {
            Ok(components) if components.len() == 1 => None,
            Ok(_) => Some(format!("{:?} is a path, not a name", entry.path)),
            Err(err) => Some(err.to_string()),
        });
        let file_ids = attachments.iter().map(|attachment| attachment.file_id).collect();
        let mtimes = attachments.iter().map(|attachment| attachment.mtime).collect();
        let offer = IpOffer { ip: offered.ip, packet_no: offered.packet_no, file_ids, mtimes };
        self.offers.insert(offered.transfer, offer);
        let record = incoming_record(offered.transfer, offered.peer, entries, refusal.as_ref());
        if !matches!(core.offer_received(record), Some((TransferState::Offered | TransferState::Active, _))) {
            self.offers.remove(&offered.transfer);
        }
    }

    /// Starts the worker that fetches an accepted offer of a client.
    pub(super) fn start_fetch(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String> {
        let record = job.record;
        let offer = self.offers.get(&record.id).ok_or("the offer is gone (Pigeon restarted since)")?;
        let items = record
            .entries
            .iter()
            .zip(offer.file_ids.iter().zip(&offer.mtimes))
            .zip(job.places)
            .map(|((entry, (&file_id, &mtime)), place)| Item {
                file_id,
                kind: if entry.kind == EntryKind::Dir { AttachKind::Dir } else { AttachKind::File },
                path: entry.path.clone(),
                size: entry.size,
                mtime,
                place,
            })
            .collect();
        let receive = IpMsgReceiveJob {
            addr: self.peer_addr(offer.ip),
            offer_packet: offer.packet_no,
            me: (super::VERSION.to_vec(), self.user.as_bytes().to_vec(), self.host.as_bytes().to_vec()),
            items,
            files_done: record.files_done,
            download_dir: core.saved_in(&record),
            id: record.id,
            stop: job.stop,
            reporter: job.reporter,
        };
        let thread = threads::spawn("pigeon-ipmsg-receive", move || fetch::receive(&receive))
            .map_err(|err| format!("cannot start a receive worker: {err}"))?;
        core.workers.adopt(thread);
        Ok(())
    }

    /// Sends our offers waiting for `peer` (each once; resent until acknowledged).
    pub(super) fn send_offers(&mut self, core: &mut Core, peer: PeerId, ip: Ipv4Addr, now: Instant) {
        let Some(charset) = self.peers.get(&ip).map(|peer| peer.charset) else { return };
        let waiting: Vec<(TransferId, Vec<Entry>, Vec<PathBuf>)> = core
            .transfers
            .offers_to(peer)
            .into_iter()
            .filter(|record| !self.sent_offers.values().any(|(id, _)| *id == record.id))
            .map(|record| (record.id, record.entries.clone(), record.sources.clone()))
            .collect();
        for (id, entries, sources) in waiting {
            let mut list = Vec::new();
            for (index, entry) in top_level(&entries) {
                let kind = if entry.kind == EntryKind::Dir { AttachKind::Dir } else { AttachKind::File };
                let file_id = u32::try_from(index).unwrap_or(u32::MAX);
                let mtime = sources.get(index).and_then(|source| serve::mtime(source));
                let name = text::encode(&entry.path, charset);
                list.extend(attach::encode_attachment(
                    file_id,
                    &name,
                    item_size(&entries, index),
                    mtime,
                    kind,
                ));
            }
            let utf8 = if charset == Charset::Utf8 { opt::UTF8OPT } else { 0 };
            let extra = [vec![0], list].concat();
            let packet = self.packet(mode::SENDMSG | opt::FILEATTACHOPT | opt::SENDCHECKOPT | utf8, extra);
            self.sent_offers.insert(packet.packet_no, (id, ip));
            self.send_tracked(MsgId::from_bytes(*id.as_bytes()), &packet, ip, now);
        }
    }

    /// A client asks for something we offered: serve it on its own thread.
    pub(super) fn on_request(
        &mut self,
        core: &mut Core,
        stream: TcpStream,
        from: SocketAddrV4,
        packet: &Packet,
    ) {
        let want_folder = match packet.mode() {
            GETFILEDATA => false,
            GETDIRFILES => true,
            other => return log::debug!("IP Messenger TCP command {other:#x} from {from} ignored"),
        };
        let Some((offer_packet, file_id, offset)) = attach::parse_request(&packet.extra) else { return };
        // Only the peer the offer went to may fetch it.
        let Some(&(id, ip)) = self.sent_offers.get(&offer_packet) else { return };
        let Some(peer) = self.peers.get(&ip).map(|peer| peer.id).filter(|_| ip == *from.ip()) else {
            return log::info!("{from} asked for an offer made to {ip}; refused");
        };
        let index = usize::try_from(file_id).unwrap_or(usize::MAX);
        let wanted = core.transfers.record(id).and_then(|record| record.entries.get(index)).cloned();
        let Some(top) =
            wanted.filter(|top| !top.path.contains('/') && (top.kind == EntryKind::Dir) == want_folder)
        else {
            return;
        };
        let Some(job) = core.start_serving(id, peer, false) else { return };
        let prefix = format!("{}/", top.path);
        let entries: Vec<(Entry, PathBuf)> = job
            .record
            .entries
            .iter()
            .zip(&job.record.sources)
            .enumerate()
            .filter(|(at, (entry, _))| *at == index || (want_folder && entry.path.starts_with(&prefix)))
            .map(|(_, (entry, source))| (entry.clone(), source.clone()))
            .collect();
        let total = job.record.entries.iter().map(|entry| entry.size).sum();
        let serving = self
            .serving
            .entry(id)
            .or_insert_with(|| Serving { tally: Tally::new(total, 0), served: BTreeSet::new() });
        let request = ServeRequest {
            index,
            entries,
            offset,
            charset: self.peers.get(&ip).map_or(Charset::Utf8, |peer| peer.charset),
            stream,
            stop: job.stop,
            reporter: job.reporter,
            tally: serving.tally.clone(),
            queue: self.report_tx.clone(),
        };
        match threads::spawn("pigeon-ipmsg-serve", move || serve::serve(request)) {
            Ok(thread) => core.workers.adopt(thread),
            Err(err) => log::error!("cannot start a serving thread: {err}"),
        }
    }

    /// A request was served: the offer is complete once every entry with data was taken
    /// whole, and failed as soon as one was not.
    pub(super) fn on_served(
        &mut self,
        core: &mut Core,
        id: TransferId,
        index: usize,
        outcome: Result<(), String>,
    ) {
        if let Err(reason) = outcome {
            let name = core
                .transfers
                .record(id)
                .and_then(|record| record.entries.get(index))
                .map(|e| e.path.clone());
            let reason = format!("{} was not received whole: {reason}", name.unwrap_or_default());
            core.end_transfer(id, TransferState::Failed, &reason, false);
            return;
        }
        let Some(serving) = self.serving.get_mut(&id) else { return };
        serving.served.insert(index);
        let Some(record) = core.transfers.record(id) else { return };
        // iptux never fetches an empty entry, so those do not count.
        let complete = top_level(&record.entries)
            .filter(|(at, _)| item_size(&record.entries, *at) > 0)
            .all(|(at, _)| serving.served.contains(&at));
        if complete {
            core.end_transfer(id, TransferState::Completed, "", false);
        }
    }
}

/// The top-level entries of an offer, with their positions (which are their file ids).
fn top_level(entries: &[Entry]) -> impl Iterator<Item = (usize, &Entry)> {
    entries.iter().enumerate().filter(|(_, entry)| !entry.path.contains('/'))
}

/// Bytes of a top-level entry: a file's size, or the total of a folder's files.
fn item_size(entries: &[Entry], index: usize) -> u64 {
    let Some(top) = entries.get(index) else { return 0 };
    let prefix = format!("{}/", top.path);
    entries
        .iter()
        .filter(|entry| entry.path == top.path || entry.path.starts_with(&prefix))
        .map(|entry| entry.size)
        .sum()
}
