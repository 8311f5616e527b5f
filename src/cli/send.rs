//! `pigeon send PEER TEXT`: find the peer, send, and wait for its acknowledgement.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pigeon::node::MAX_TEXT_BYTES;
use pigeon::node::MessageState;
use pigeon::node::PeerInfo;
use pigeon::node::{MsgId, PeerId};
use pigeon::{Command, Config, Event};

use super::session::Session;
use super::{EXIT_ERROR, EXIT_FAILED, peers};

/// Shortest id prefix accepted as a peer reference: short enough to type, long enough to be
/// unique on any LAN.
const MIN_ID_PREFIX: usize = 4;

/// Prefix of [`command_tag`].
const TAG_PREFIX: &str = "pigeon-send-";

/// What a PEER argument designates among the known peers.
#[derive(Debug, PartialEq)]
enum Resolution {
    Found(PeerId),
    Ambiguous(Vec<String>),
    NotFound,
}

fn resolve(query: &str, peers: &HashMap<PeerId, PeerInfo>) -> Resolution {
    if let Ok(id) = query.parse::<PeerId>() {
        return Resolution::Found(id);
    }
    let by_addr = |peer: &&PeerInfo| format!("{}:{}", peer.addr, peer.port) == query;
    let by_name = |peer: &&PeerInfo| peer.name.to_lowercase() == query.to_lowercase();
    let lower = query.to_ascii_lowercase();
    let by_prefix = |peer: &&PeerInfo| {
        query.len() >= MIN_ID_PREFIX
            && lower.bytes().all(|b| b.is_ascii_hexdigit())
            && peer.id.to_string().starts_with(&lower)
    };
    for matches in [&by_addr as &dyn Fn(&&PeerInfo) -> bool, &by_name, &by_prefix] {
        let mut found: Vec<&PeerInfo> = peers.values().filter(matches).collect();
        match found.len() {
            0 => continue,
            1 => return Resolution::Found(found.remove(0).id),
            _ => {
                let mut names: Vec<String> = found
                    .iter()
                    .map(|p| format!("{} ({}:{}, id {})", p.name, p.addr, p.port, p.id))
                    .collect();
                names.sort();
                return Resolution::Ambiguous(names);
            }
        }
    }
    Resolution::NotFound
}

/// Sends `text` to `query`; exit 0 once delivered.
pub fn run(
    config: &Config,
    query: &str,
    text: &str,
    wait: Duration,
    timeout: Duration,
    pin: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if text.len() > MAX_TEXT_BYTES {
        eprintln!(
            "pigeon: the message is {} bytes; the limit is {MAX_TEXT_BYTES} bytes (64 KiB)",
            text.len()
        );
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    Session::run_reported(config, |session| deliver(session, query, text, (wait, timeout), pin))
}

/// Finds the peer a PEER argument designates, waiting up to `wait` for it to appear (and
/// connecting first when it is an address). `Ok(Err(message))` is a failure for the user.
pub fn find_peer(
    session: &mut Session,
    query: &str,
    wait: Duration,
) -> anyhow::Result<Result<(PeerId, String), String>> {
    let mut known: HashMap<PeerId, PeerInfo> = peers::list(session)?.into_iter().map(|p| (p.id, p)).collect();
    if resolve(query, &known) == Resolution::NotFound
        && let Ok(addr) = query.parse::<SocketAddr>()
    {
        session.send(&Command::Connect { addr: addr.to_string() })?;
    }
    let look_until = Instant::now() + wait;
    let peer = loop {
        match resolve(query, &known) {
            Resolution::Found(id) => break id,
            Resolution::Ambiguous(names) => {
                return Ok(Err(format!(
                    "{query:?} matches several peers; use an id:\n  {}",
                    names.join("\n  ")
                )));
            }
            Resolution::NotFound => {}
        }
        match session.next_event(look_until)? {
            Some(Event::PeerJoined { peer } | Event::PeerUpdated { peer }) => {
                known.insert(peer.id, peer);
            }
            Some(Event::ConnectFailed { addr, reason }) => {
                return Ok(Err(format!("cannot reach {addr}: {reason}")));
            }
            Some(_) => {}
            None => {
                let mut names: Vec<&str> = known.values().map(|p| p.name.as_str()).collect();
                names.sort_unstable();
                let seen = if names.is_empty() { String::from("none") } else { names.join(", ") };
                return Ok(Err(format!("no peer {query:?} found within {wait:?} (peers seen: {seen})")));
            }
        }
    };
    let name = known.get(&peer).map_or_else(|| peer.to_string(), |p| p.name.clone());
    Ok(Ok((peer, name)))
}

/// The outcome of a command that did not succeed: exit code 1 and why.
pub fn failed(message: String) -> anyhow::Result<(ExitCode, String)> {
    Ok((ExitCode::from(EXIT_FAILED), message))
}

/// Hands the node the PIN the device `peer` asks for, if the user gave one.
pub fn give_pin(session: &mut Session, peer: PeerId, pin: Option<&str>) -> anyhow::Result<()> {
    if let Some(pin) = pin {
        session.send(&Command::SetPin { peer, pin: pin.to_owned() })?;
    }
    Ok(())
}

/// Tag that marks this process's commands on a node other clients may also use.
pub fn command_tag() -> String {
    format!("{TAG_PREFIX}{}", std::process::id())
}

fn deliver(
    session: &mut Session,
    query: &str,
    text: &str,
    (wait, timeout): (Duration, Duration),
    pin: Option<&str>,
) -> anyhow::Result<(ExitCode, String)> {
    let (peer, name) = match find_peer(session, query, wait)? {
        Ok(found) => found,
        Err(message) => return failed(message),
    };
    give_pin(session, peer, pin)?;
    let tag = command_tag();
    session.send(&Command::SendMessage { to: vec![peer], text: text.to_owned(), tag: Some(tag.clone()) })?;
    let deadline = Instant::now() + timeout;
    let queued = session.wait_for(deadline, |event| match event {
        Event::MessageQueued { message, tag: Some(t) } if *t == tag => Some(Ok(message.msg_id)),
        Event::CommandFailed { error, tag: Some(t) } if *t == tag => Some(Err(error.clone())),
        _ => None,
    })?;
    let msg_id: MsgId = match queued {
        Some(Ok(msg_id)) => msg_id,
        Some(Err(error)) => return failed(error),
        None => return failed(String::from("the node did not accept the message")),
    };
    let mut left = false;
    let delivered = session.wait_for(deadline, |event| match event {
        Event::MessageStateChanged { msg_id: id, state, .. }
            if *id == msg_id && *state >= MessageState::Delivered =>
        {
            Some(())
        }
        Event::PeerLeft { id, .. } if *id == peer => {
            left = true;
            None
        }
        Event::PeerJoined { peer: info } if info.id == peer => {
            left = false;
            None
        }
        _ => None,
    })?;
    let outbox = "it stays in the outbox and is sent while Pigeon runs on this data folder";
    match delivered {
        Some(()) => Ok((ExitCode::SUCCESS, format!("delivered to {name}"))),
        None if left => {
            failed(format!("{name} left before confirming the message; {outbox} once {name} is back"))
        }
        // Still listed: the peer is there, the network did not carry the message or its
        // confirmation in time. Saying the peer is away would send the user looking in the
        // wrong place.
        None => failed(format!(
            "no confirmation from {name} within {timeout:?} although {name} is still on the network \
             (packets lost on the way?); {outbox}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pigeon::node::PublicKey;
    use pigeon::node::Status;
    use pigeon::node::Trust;

    fn peer(n: u8, name: &str, addr: &str) -> PeerInfo {
        PeerInfo {
            id: PeerId::from_bytes([n; 16]),
            name: name.into(),
            group: String::new(),
            host: String::new(),
            addr: addr.into(),
            port: 2426,
            status: Status::Online,
            key: Some(PublicKey::from_bytes([n; 32])),
            trust: Trust::Unverified,
            client: None,
            family: pigeon::node::Family::Pigeon,
        }
    }

    fn table() -> HashMap<PeerId, PeerInfo> {
        [peer(0xab, "Ana", "10.0.0.1"), peer(0xcd, "Bo", "10.0.0.2"), peer(0xce, "bo", "10.0.0.3")]
            .into_iter()
            .map(|p| (p.id, p))
            .collect()
    }

    #[test]
    fn resolves_by_name_address_id_and_prefix() {
        let peers = table();
        let ana = PeerId::from_bytes([0xab; 16]);
        assert_eq!(resolve("ana", &peers), Resolution::Found(ana));
        assert_eq!(resolve("10.0.0.1:2426", &peers), Resolution::Found(ana));
        assert_eq!(resolve(&ana.to_string(), &peers), Resolution::Found(ana));
        assert_eq!(resolve("abab", &peers), Resolution::Found(ana));
        assert_eq!(resolve("cdcd", &peers), Resolution::Found(PeerId::from_bytes([0xcd; 16])));
    }

    #[test]
    fn reports_ambiguity_and_absence() {
        let peers = table();
        assert!(matches!(resolve("BO", &peers), Resolution::Ambiguous(names) if names.len() == 2));
        assert_eq!(resolve("Cy", &peers), Resolution::NotFound);
        assert_eq!(resolve("ab", &peers), Resolution::NotFound);
        assert_eq!(resolve("10.0.0.9:2426", &peers), Resolution::NotFound);
    }
}
