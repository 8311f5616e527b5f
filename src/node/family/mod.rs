//! The seam between the hub and the families of peers. The hub owns what is the same for
//! every family (the peer table, conversations and the outbox, transfers and their states,
//! trust decisions: `hub::core`); each family is an [`Adapter`] that turns those into its
//! wire and reports back what its peers do. One module per family:
//!
//! - [`native`]: other Pigeons — Noise over TCP, UDP discovery with heartbeats.
//! - [`ipmsg`]: IP Messenger clients (IP Messenger, FeiQ, iptux) — plaintext UDP/TCP 2425.
//! - [`localsend`]: LocalSend devices (phones, Macs, PCs) — HTTPS on 53317, multicast.
//!
//! Each family has queues of its own for its I/O threads' reports, which ring the hub's
//! doorbell (`node::doorbell`) like every queue into the hub. Adding a family means a module implementing
//! [`Adapter`], its name in [`Family`], and one line in `node::start` that starts it;
//! docs/ARCHITECTURE.md lists what each method must do.

pub mod ipmsg;
pub mod localsend;
pub mod native;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Instant;

use super::event::Stats;
use super::hub::core::Core;
use super::hub::rooms::RoomFrame;
use super::hub::transfers::FetchJob;
use super::sinks::Origin;
use crate::protocol::Family;
use crate::protocol::ids::PeerId;
use crate::store::TransferRecord;

/// Reports a family takes from its queue in one turn at most, so that one busy family
/// cannot starve commands or another family's peers.
pub const REPORTS_PER_TURN: usize = 64;

/// The reports a family takes in one turn: at most [`REPORTS_PER_TURN`] of what is queued.
pub fn one_turn<R>(queue: &crossbeam_channel::Receiver<R>) -> Vec<R> {
    queue.try_iter().take(REPORTS_PER_TURN).collect()
}

/// What the hub asks of every family. Every method returns at once: a family sends on
/// sockets that never block, and hands slow work (connecting, moving files) to threads that
/// report back on its queue.
pub trait Adapter: Send {
    /// Which family this is.
    fn family(&self) -> Family;

    /// Takes in what the family's threads reported (at most [`REPORTS_PER_TURN`] from each
    /// of its queues, which ring the hub's doorbell); returns how many it took.
    fn take_reports(&mut self, core: &mut Core, now: Instant) -> usize;

    /// Delivers what the outbox holds for `peer`, one of this family's: queued messages,
    /// read receipts, offers. Marks the peer delivered in the outbox once nothing is left.
    fn deliver(&mut self, core: &mut Core, peer: PeerId, now: Instant);

    /// Starts the worker that fetches an accepted incoming transfer; `Err` (with why) when
    /// it cannot now (the peer is not reachable), and the transfer resumes later.
    fn fetch(&mut self, core: &mut Core, job: FetchJob) -> Result<(), String>;

    /// A transfer with one of this family's peers ended here: tell the peer (when
    /// `tell_peer`) and forget what the family held for it.
    fn transfer_ended(&mut self, core: &mut Core, record: &TransferRecord, tell_peer: bool);

    /// One of this family's peers left the list (goodbye, timeout): forget its link.
    fn peer_left(&mut self, core: &mut Core, peer: PeerId);

    /// Our profile (`core.me`) changed: tell the family's peers.
    fn profile_changed(&mut self, core: &mut Core);

    /// The extra addresses to announce to changed (another subnet, a VPN).
    fn set_targets(&mut self, core: &mut Core, targets: &[SocketAddrV4]);

    /// Reach a peer at a typed-in address (when discovery cannot); `false` when this
    /// family does not connect by address.
    fn connect(&mut self, _core: &mut Core, _addr: SocketAddr, _origin: Origin) -> bool {
        false
    }

    /// An invite link to us (`protocol::invite`); none when this family has no links.
    fn make_invite(&self, _core: &Core) -> Option<crate::protocol::invite::Invite> {
        None
    }

    /// Use an invite link: connect to the inviter, verify it, and hand back its token;
    /// `false` when this family has no links.
    fn use_invite(
        &mut self,
        _core: &mut Core,
        _invite: crate::protocol::invite::Invite,
        _origin: Origin,
    ) -> bool {
        false
    }

    /// Our user gave the PIN `peer` asks of senders (empty: none): use it from now on, and
    /// offer again what it refused for want of it. `false` when this family has no PINs.
    fn set_pin(&mut self, _core: &mut Core, _peer: PeerId, _pin: String) -> bool {
        false
    }

    /// Carry a room frame to `peer`, one of this family's, connecting if need be (a
    /// connection that comes up later catches up by itself). Families whose peers cannot
    /// sign are never asked: they cannot be room members.
    fn room_frame(&mut self, _core: &mut Core, _peer: PeerId, _frame: RoomFrame, _now: Instant) {}

    /// When the family next needs [`Adapter::on_timer`].
    fn next_timer(&self) -> Instant;

    /// Timed work: heartbeats, resends, deadlines.
    fn on_timer(&mut self, core: &mut Core, now: Instant);

    /// Whether transfers with this family's peers can resume after Pigeon restarts.
    fn resumes_transfers(&self) -> bool;

    /// The node stops: say goodbye, close connections, stop what serves the peers.
    fn stop(&mut self, core: &mut Core);

    /// Adds the family's counters.
    fn stats(&self, stats: &mut Stats);
}
