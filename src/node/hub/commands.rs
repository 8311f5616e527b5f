//! The user's commands, each turned into work for the core or the families: messages,
//! queries answered from the store, our profile and targets, transfers, trust.

use std::net::{SocketAddr, SocketAddrV4};

use super::Hub;
use super::core::{Core, now_ms};
use crate::node::command::{Command, MAX_PAGE};
use crate::node::event::{Event, Stats, TransferInfo};
use crate::node::random_id;
use crate::node::sinks::Origin;
use crate::protocol::Family;
use crate::protocol::ids::{MsgId, PeerId};
use crate::protocol::message::check_text_len;
use crate::protocol::room::Change;
use crate::store::Trust;

impl Hub {
    pub(super) fn on_command(&mut self, command: Command, origin: Origin) {
        let core = &mut self.core;
        match command {
            Command::SendMessage { to, text, tag } => send_message(core, &to, &text, tag, origin),
            Command::MarkRead { peer } => match core.store.mark_read(peer) {
                Ok(()) => core.queue_for(peer),
                Err(err) => core.fail(origin, None, &err),
            },
            Command::ListPeers => core.sinks.reply(origin, Event::Peers { peers: core.peers.infos() }),
            Command::ListConversations => match core.store.conversations() {
                Ok(conversations) => core.sinks.reply(origin, Event::Conversations { conversations }),
                Err(err) => core.fail(origin, None, &err),
            },
            Command::LoadHistory { peer, before, after, limit } => {
                load_history(core, peer, Page { before, after, limit }, origin);
            }
            Command::Search { query, peer, limit } => {
                match core.store.search(&query, peer, limit.min(MAX_PAGE)) {
                    Ok(messages) => core.sinks.reply(origin, Event::SearchResults { query, messages }),
                    Err(err) => core.fail(origin, None, &err),
                }
            }
            Command::Connect { addr } => self.connect(&addr, origin),
            Command::MakeInvite => self.make_invite(origin),
            Command::UseInvite { link } => self.use_invite(&link, origin),
            Command::SetProfile { name, group, status } => {
                if let Some(name) = name {
                    core.me.name = clip_label(name);
                }
                if let Some(group) = group {
                    core.me.group = clip_label(group);
                }
                if let Some(status) = status {
                    core.me.status = status;
                }
                for family in &mut self.families {
                    family.profile_changed(&mut self.core);
                }
            }
            Command::SetTargets { targets } => match parse_targets(&targets) {
                Ok(targets) => {
                    for family in &mut self.families {
                        family.set_targets(&mut self.core, &targets);
                    }
                }
                Err(err) => core.fail(origin, None, &err),
            },
            Command::SetReceiving { download_dir, auto_accept } => {
                if let Some(dir) = download_dir {
                    core.receiving.download_dir = dir;
                }
                if let Some(auto_accept) = auto_accept {
                    core.receiving.auto_accept = auto_accept;
                }
            }
            Command::SetSpeedLimits { per_transfer_kbps, total_kbps } => {
                core.speed_limits.set(per_transfer_kbps, total_kbps);
            }
            Command::Stats => self.stats(origin),
            Command::SendFiles { to, paths, tag } => core.send_files(to, paths, tag, origin),
            Command::AcceptTransfer { transfer_id, always } => {
                core.accept(transfer_id, always, origin);
                if always {
                    auto_accept_from(core, None);
                }
            }
            Command::SetAutoAcceptFrom { peer, on } => {
                let changed =
                    if on { core.store.trust_sender(peer) } else { core.store.distrust_sender(peer) };
                match changed {
                    Ok(()) => auto_accept_from(core, None),
                    Err(err) => core.fail(origin, None, &err),
                }
            }
            Command::ListAutoAcceptFrom => auto_accept_from(core, Some(origin)),
            Command::DeclineTransfer { transfer_id } => core.decline(transfer_id, origin),
            Command::CancelTransfer { transfer_id } => core.cancel(transfer_id, origin),
            Command::RetryTransfer { transfer_id } => core.retry(transfer_id, origin),
            Command::SetPin { peer, pin } => self.set_pin(peer, pin, origin),
            Command::ListTransfers => core.list_transfers(origin),
            Command::RoomCreate { name, members, tag } => core.room_create(&name, &members, tag, origin),
            Command::RoomSend { room, text, tag } => {
                if let Err(err) = check_text_len(&text) {
                    return core.fail(origin, tag, &format!("not posted: {err}"));
                }
                core.room_change(room, Change::Post { text, files: None }, tag, origin);
            }
            Command::RoomSendFiles { room, paths, tag } => core.room_send_files(room, paths, tag, origin),
            Command::RoomAdd { room, member } => match core.member_of(member) {
                Ok(member) => {
                    core.room_change(room, Change::Add { member }, None, origin);
                }
                Err(err) => core.fail(origin, None, &format!("not added: {err}")),
            },
            Command::RoomRemove { room, member } => {
                let after_seq = core.rooms.last_seq_of(room, member);
                core.room_change(room, Change::Remove { member, after_seq }, None, origin);
            }
            Command::RoomRename { room, name } => {
                core.room_change(room, Change::Rename { name }, None, origin);
            }
            Command::RoomLeave { room } => {
                core.room_change(room, Change::Leave, None, origin);
            }
            Command::ListRooms => core.list_rooms(origin),
            Command::RoomMarkRead { room } => core.room_mark_read(room, origin),
            Command::RoomHistory { room } => core.room_history(room, origin),
            Command::TransferEntries { transfer_id, offset, limit } => {
                core.transfer_entries(transfer_id, offset, limit, origin);
            }
            Command::SafetyNumber { peer } => core.safety_number(&self.key, peer, origin),
            Command::Verify { peer, verified } => {
                let trust = if verified { Trust::Verified } else { Trust::Unverified };
                core.set_trust(&self.key, peer, trust, origin);
            }
            Command::AcceptKey { peer } => core.set_trust(&self.key, peer, Trust::Unverified, origin),
            Command::Shutdown => {}
        }
    }

    fn connect(&mut self, addr: &str, origin: Origin) {
        let sock = match addr.parse::<SocketAddr>() {
            Ok(sock) => sock,
            Err(err) => return self.core.fail(origin, None, &format!("cannot connect to {addr:?}: {err}")),
        };
        let connected = self
            .families
            .iter_mut()
            .any(|family| family.family() == Family::Pigeon && family.connect(&mut self.core, sock, origin));
        if !connected {
            self.core.fail(
                origin,
                None,
                &format!("cannot connect to {addr:?}: no family connects by address"),
            );
        }
    }

    fn make_invite(&mut self, origin: Origin) {
        let invite = self.families.iter().find_map(|family| family.make_invite(&self.core));
        match invite {
            Some(invite) => self.core.sinks.reply(origin, Event::Invite { link: invite.to_link() }),
            None => self.core.fail(origin, None, &"no family makes invite links"),
        }
    }

    fn use_invite(&mut self, link: &str, origin: Origin) {
        let invite = match crate::protocol::invite::Invite::parse(link) {
            Ok(invite) => invite,
            Err(err) => return self.core.fail(origin, None, &err),
        };
        let used = self.families.iter_mut().any(|family| {
            family.family() == Family::Pigeon && family.use_invite(&mut self.core, invite.clone(), origin)
        });
        if !used {
            self.core.fail(origin, None, &"no family uses invite links");
        }
    }

    fn set_pin(&mut self, peer: PeerId, pin: String, origin: Origin) {
        let family = self.core.peers.family_of(peer);
        if family.is_none() {
            return self.core.fail(origin, None, &format!("no peer {peer}"));
        }
        let taken = super::family_for(&mut self.families, family)
            .is_some_and(|adapter| adapter.set_pin(&mut self.core, peer, pin));
        if !taken {
            self.core.fail(origin, None, &format!("{peer} does not ask for PINs"));
        }
    }

    fn stats(&mut self, origin: Origin) {
        let mut stats = Stats {
            dropped_events: self.core.sinks.dropped,
            offers_refused: self.core.offers_refused,
            room_events_refused: self.core.room_events_refused,
            room_bytes_received: self.core.room_bytes_received,
            room_events_received: self.core.room_events_received,
            peers_online: self.core.peers.len(),
            ..Stats::default()
        };
        for family in &self.families {
            family.stats(&mut stats);
        }
        self.core.sinks.reply(origin, Event::Stats { stats });
    }
}

fn send_message(core: &mut Core, to: &[PeerId], text: &str, tag: Option<String>, origin: Origin) {
    if let Err(err) = check_text_len(text) {
        return core.fail(origin, tag, &format!("message not sent: {err}"));
    }
    if to.is_empty() {
        return core.fail(origin, tag, &"message not sent: no recipient");
    }
    if let Some(unknown) = to.iter().find(|peer| core.peers.family_of(**peer).is_none()) {
        return core.fail(origin, tag, &format!("message not sent: unknown peer {unknown}"));
    }
    core.store_on_use(to);
    let sent_at_ms = now_ms();
    for &peer in to {
        let also_to: Vec<PeerId> =
            to.iter().copied().filter(|&other| other != peer).take(crate::protocol::MAX_ALSO_TO).collect();
        match core.store.insert_outgoing(random_id(MsgId::from_bytes), peer, text, sent_at_ms, &also_to) {
            Ok(message) => core.sinks.emit(&Event::MessageQueued { message, tag: tag.clone() }),
            Err(err) => {
                core.fail(origin, tag.clone(), &err);
                continue;
            }
        }
        core.queue_for(peer);
    }
}

/// Tells who is accepted without asking: to `origin` (its question), else to everyone (a
/// change).
fn auto_accept_from(core: &mut Core, origin: Option<Origin>) {
    match core.store.trusted_senders() {
        Ok(peers) => match origin {
            Some(origin) => core.sinks.reply(origin, Event::AutoAcceptFrom { peers }),
            None => core.sinks.emit(&Event::AutoAcceptFrom { peers }),
        },
        Err(err) => log::error!("cannot read the peers accepted without asking: {err}"),
    }
}

/// Which page of a conversation `load_history` asks for.
#[derive(Clone, Copy)]
struct Page {
    before: Option<i64>,
    after: Option<i64>,
    limit: usize,
}

fn load_history(core: &mut Core, peer: PeerId, page: Page, origin: Origin) {
    let limit = page.limit.min(MAX_PAGE);
    // One more than asked says whether there are more beyond the page.
    let loaded = match page.after {
        Some(after) => core.store.history_after(peer, after, limit + 1).map(|mut newer| {
            let has_more = newer.len() > limit;
            newer.truncate(limit);
            (newer, has_more)
        }),
        None => core.store.history(peer, page.before, limit + 1).map(|mut older| {
            let has_more = older.len() > limit;
            if has_more {
                older.remove(0);
            }
            (older, has_more)
        }),
    };
    match loaded {
        Ok((messages, has_more)) => {
            let transfers = messages
                .iter()
                .filter_map(|message| message.transfer)
                .filter_map(|id| match core.transfers.record(id) {
                    Some(live) => Some(TransferInfo::from_record(live)),
                    None => core
                        .store
                        .transfer(id)
                        .ok()
                        .flatten()
                        .map(|stored| TransferInfo::from_record(&stored)),
                })
                .collect();
            core.sinks
                .reply(origin, Event::History { peer, messages, has_more, after: page.after, transfers });
        }
        Err(err) => core.fail(origin, None, &err),
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

/// Targets given as IPv4 addresses with an optional port (each family puts its own port on
/// those without).
fn parse_targets(targets: &[String]) -> Result<Vec<SocketAddrV4>, String> {
    targets
        .iter()
        .map(|target| {
            target
                .parse::<SocketAddrV4>()
                .or_else(|_| target.parse::<std::net::Ipv4Addr>().map(|ip| SocketAddrV4::new(ip, 0)))
                .map_err(|_not_an_address| format!("invalid target {target:?}: expected an IPv4 address"))
        })
        .collect()
}
