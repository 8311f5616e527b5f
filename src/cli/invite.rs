//! `pigeon invite` prints an invite link to us; `pigeon connect LINK` uses one: it connects
//! to the link's maker across subnets or a VPN, marks its key verified (the link names it)
//! and waits until the maker has verified ours in turn.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pigeon::node::Invite;
use pigeon::node::Trust;
use pigeon::{Command, Config, Event};

use super::peers::ANSWER_TIMEOUT;
use super::send::failed;
use super::session::Session;

/// Prints a fresh invite link.
pub fn run_invite(config: &Config) -> anyhow::Result<ExitCode> {
    Session::run_reported(config, |session| {
        session.send(&Command::MakeInvite)?;
        let answer = session.wait_for(Instant::now() + ANSWER_TIMEOUT, |event| match event {
            Event::Invite { link } => Some(Ok(link.clone())),
            Event::CommandFailed { error, tag: None } => Some(Err(error.clone())),
            _ => None,
        })?;
        match answer {
            Some(Ok(link)) => Ok((ExitCode::SUCCESS, link)),
            Some(Err(error)) => failed(error),
            None => failed(String::from("the node did not answer")),
        }
    })
}

/// Uses `link`, giving up after `timeout`.
pub fn run_connect(config: &Config, link: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    // Read here too, so that a damaged link is refused before a node starts.
    let invite = match Invite::parse(link) {
        Ok(invite) => invite,
        Err(err) => {
            eprintln!("pigeon: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    Session::run_reported(config, |session| {
        session.send(&Command::UseInvite { link: link.to_owned() })?;
        let (maker, name) = (invite.id, invite.name.clone());
        let deadline = Instant::now() + timeout;
        let verified = session.wait_for(deadline, |event| match event {
            Event::SafetyNumber { peer, trust: Trust::Verified, .. } if *peer == maker => Some(Ok(())),
            Event::CommandFailed { error, tag: None } => Some(Err(error.clone())),
            _ => None,
        })?;
        match verified {
            Some(Ok(())) => {}
            Some(Err(error)) => return failed(error),
            None => return failed(format!("no answer from {name} within {timeout:?}")),
        }
        let answered = session.wait_for(deadline, |event| match event {
            Event::InviteAnswered { peer, accepted, reason } if *peer == maker => {
                Some((*accepted, reason.clone()))
            }
            _ => None,
        })?;
        match answered {
            Some((true, _)) => {
                Ok((ExitCode::SUCCESS, format!("connected to {name} ({maker}); both keys verified")))
            }
            Some((false, reason)) => failed(format!(
                "connected to {name} and verified their key, but {name} did not verify yours: the link is \
                 {reason}; ask for a new one"
            )),
            None => failed(format!(
                "connected to {name} and verified their key, but {name} did not confirm yours within {timeout:?} \
                 (an older Pigeon?)"
            )),
        }
    })
}
