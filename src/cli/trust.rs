//! `pigeon trust PEER`: show the safety number to compare with a peer, and record that it
//! matched (`--verify`), or accept a peer's changed key (`--accept-key`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pigeon::node::PeerId;
use pigeon::node::Trust;
use pigeon::{Command, Config, Event};

use super::peers::ANSWER_TIMEOUT;
use super::send::{failed, find_peer};
use super::session::Session;

/// What to change, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Only show the code.
    Show,
    /// The codes matched.
    Verify,
    /// Back to unverified.
    Unverify,
    /// Accept a changed key.
    AcceptKey,
}

/// Shows (and possibly changes) how far we trust `query`.
pub fn run(config: &Config, query: &str, decision: Decision, wait: Duration) -> anyhow::Result<ExitCode> {
    let query = query.to_owned();
    Session::run_reported(config, move |session| {
        let (peer, name) = match find_peer(session, &query, wait)? {
            Ok(found) => found,
            Err(message) => return failed(message),
        };
        session.send(&match decision {
            Decision::Show => Command::SafetyNumber { peer },
            Decision::Verify => Command::Verify { peer, verified: true },
            Decision::Unverify => Command::Verify { peer, verified: false },
            Decision::AcceptKey => Command::AcceptKey { peer },
        })?;
        let answer = session.wait_for(Instant::now() + ANSWER_TIMEOUT, |event| match event {
            Event::SafetyNumber { peer: of, code, trust } if *of == peer => Some(Ok((code.clone(), *trust))),
            Event::CommandFailed { error, tag: None } => Some(Err(error.clone())),
            _ => None,
        })?;
        match answer {
            Some(Ok((code, trust))) => Ok((ExitCode::SUCCESS, describe(&name, peer, &code, trust))),
            Some(Err(error)) => failed(error),
            None => failed(String::from("the node did not answer")),
        }
    })
}

fn describe(name: &str, peer: PeerId, code: &str, trust: Trust) -> String {
    let state = match trust {
        Trust::Unverified => "not verified yet",
        Trust::Verified => "verified",
        Trust::KeyChanged => {
            "KEY CHANGED: this is a new key under a name and host we knew; until you accept \
                              it, its messages are marked and its files need your OK"
        }
        Trust::Replaced => "replaced: you accepted a newer key for this name",
        Trust::Unencrypted => "an IP Messenger peer: nothing is encrypted or authenticated",
    };
    let mut text = format!("{name} ({peer}): {state}\nsafety number: {code}");
    if trust != Trust::Verified {
        text.push_str(&format!(
            "\nCompare it with the number {name} sees for you (`pigeon trust YOUR-NAME` on their machine), \
             in person or on a call. If they match: pigeon trust {peer} --verify"
        ));
    }
    text
}
