//! Invite links on the native family (`protocol::invite`): making one that names our
//! addresses, and using one — dialling its addresses in turn, checking that whoever answers
//! holds the key the link names, marking it verified and handing its token back — and, as
//! the inviter, verifying the joiner whose token our key made.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::connection::ConnId;
use super::{Dial, Native};
use crate::node::event::Event;
use crate::node::hub::core::{Core, now_ms};
use crate::node::sinks::Origin;
use crate::protocol::frame::{Frame, InviteAnswer, InvitedFrame};
use crate::protocol::ids::PeerId;
use crate::protocol::invite::{Invite, MAX_ADDRS, Token};
use crate::secure::Role;
use crate::store::Trust;

/// An invite being used: which of its addresses is being dialled, and who asked.
pub struct Joining {
    /// The invite.
    pub invite: Invite,
    /// Index of the address being dialled.
    pub next: usize,
    /// Who asked.
    pub origin: Origin,
}

impl Native {
    /// An invite to us: our addresses on the interfaces in use (or the bound one) at our
    /// port — IPv4 first, then routable IPv6 ones when we listen there —, our name and a
    /// token made now.
    pub(super) fn make_invite(&self, core: &Core) -> Invite {
        let port = self.local_addr.port();
        let scope = self.announcer.scope();
        let ips: Vec<IpAddr> = if self.local_ip.is_unspecified() {
            let ipv4 = scope.subnets().into_iter().map(|subnet| IpAddr::V4(subnet.ip));
            let ipv6 = if self.announcer.ipv6_on() { scope.ipv6_routable() } else { Vec::new() };
            ipv4.chain(ipv6.into_iter().map(IpAddr::V6)).collect()
        } else {
            vec![IpAddr::V4(self.local_ip)]
        };
        Invite {
            id: self.me.id,
            name: core.me.name.clone(),
            addrs: ips.into_iter().take(MAX_ADDRS).map(|ip| SocketAddr::new(ip, port).to_string()).collect(),
            token: Token::new(&*self.identity, now_ms() / 1000),
        }
    }

    /// Starts using `invite`: its first address is dialled.
    pub(super) fn use_invite(&mut self, core: &mut Core, invite: Invite, origin: Origin) {
        if invite.id == self.me.id {
            return core.fail(origin, None, &"this invite link is our own");
        }
        self.dial_invite(core, Joining { invite, next: 0, origin });
    }

    fn dial_invite(&mut self, core: &mut Core, joining: Joining) {
        match joining.invite.addrs.get(joining.next).map(|addr| addr.parse::<SocketAddr>()) {
            Some(Ok(addr)) => self.dial(core, Dial::Invite(Box::new(joining)), addr),
            Some(Err(err)) => {
                log::info!("invite: cannot dial {}: {err}", joining.invite.addrs[joining.next]);
                let next = Joining { next: joining.next + 1, ..joining };
                self.dial_invite(core, next);
            }
            None => {
                let name = &joining.invite.name;
                let addrs = &joining.invite.addrs;
                let error = format!(
                    "cannot reach {name} at {}: no answer (is {name}'s Pigeon running, and can this computer \
                     reach that address?)",
                    addrs.join(", ")
                );
                core.fail(joining.origin, None, &error);
            }
        }
    }

    /// A connect for an invite ended: with a stream, the handshake and hello follow; without,
    /// the next address is tried.
    pub(super) fn invite_connected(
        &mut self,
        core: &mut Core,
        mut joining: Joining,
        result: std::io::Result<std::net::TcpStream>,
        now: Instant,
    ) {
        match result {
            Ok(stream) => {
                if let Some(conn) = self.open_conn(stream, Role::Initiator, None, now) {
                    self.joining.insert(conn, joining);
                }
            }
            Err(err) => {
                log::info!("invite: {} did not answer: {err}", joining.invite.addrs[joining.next]);
                joining.next += 1;
                self.dial_invite(core, joining);
            }
        }
    }

    /// The hello on connection `conn` came from `peer`: if we dialled it for an invite, the
    /// peer is the inviter — verified, and handed its token back — or not, and then the
    /// connection is for nothing.
    pub(super) fn hello_for_invite(&mut self, core: &mut Core, conn: ConnId, peer: PeerId, now: Instant) {
        let Some(joining) = self.joining.remove(&conn) else { return };
        let Joining { invite, origin, .. } = joining;
        if peer != invite.id {
            let at = invite.addrs.get(joining.next).cloned().unwrap_or_default();
            let error =
                format!("the Pigeon at {at} is not {} who made the link (it has another key)", invite.name);
            self.close_conn(core, conn, "not the inviter", now);
            return core.fail(origin, None, &error);
        }
        core.set_trust(&self.identity.public(), peer, Trust::Verified, origin);
        self.send_to(peer, &Frame::Invited(InvitedFrame { token: invite.token.encode() }));
    }

    /// `peer` handed back a token: if our key made it and it is still valid, the peer got our
    /// link from us, so its key is the one we meant to trust. Answered either way, so that
    /// the joiner can tell its user.
    pub(super) fn on_invited(&mut self, core: &mut Core, peer: PeerId, invited: &InvitedFrame) {
        let checked = Token::decode(&invited.token)
            .ok_or("unreadable")
            .and_then(|token| token.check(&self.identity.public(), now_ms() / 1000));
        let answer = match checked {
            Ok(()) => {
                core.set_trust(&self.identity.public(), peer, Trust::Verified, Origin::Owner);
                InviteAnswer { accepted: true, reason: String::new() }
            }
            Err(reason) => {
                log::info!("an invite token from {peer} was refused: {reason}");
                InviteAnswer { accepted: false, reason: reason.to_owned() }
            }
        };
        self.send_to(peer, &Frame::InviteAnswer(answer));
    }

    /// The inviter answered the token we handed back.
    pub(super) fn on_invite_answer(core: &mut Core, peer: PeerId, answer: InviteAnswer) {
        core.sinks.emit(&Event::InviteAnswered { peer, accepted: answer.accepted, reason: answer.reason });
    }
}
