//! `pigeon peers`: list who is on the network, as a table or as JSON.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use pigeon::node::PeerInfo;
use pigeon::node::Status;
use pigeon::node::Trust;
use pigeon::{Command, Config, Event};
use unicode_width::UnicodeWidthStr;

use super::session::Session;

/// How long a fresh node listens by default: its start-up announces go out at 0, 0.25 and
/// 1 s, and answers come back within milliseconds on a LAN.
const DEFAULT_WAIT: Duration = Duration::from_millis(1500);

/// How long a node may take to answer `list_peers`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Lists peers after listening for `wait`.
pub fn run(config: &Config, wait: Option<Duration>, json: bool) -> anyhow::Result<ExitCode> {
    let mut session = Session::open(config)?;
    let wait = wait.unwrap_or(if session.is_local() { DEFAULT_WAIT } else { Duration::ZERO });
    let listen_until = Instant::now() + wait;
    while session.next_event(listen_until)?.is_some() {}
    let peers = list(&mut session)?;
    session.close();
    if json {
        println!("{}", serde_json::to_string_pretty(&peers)?);
    } else {
        print_table(&peers);
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the node for its peer list.
pub fn list(session: &mut Session) -> anyhow::Result<Vec<PeerInfo>> {
    session.send(&Command::ListPeers)?;
    session
        .wait_for(Instant::now() + ANSWER_TIMEOUT, |event| match event {
            Event::Peers { peers } => Some(peers.clone()),
            _ => None,
        })?
        .context("the node did not answer with its peer list")
}

fn print_table(peers: &[PeerInfo]) {
    if peers.is_empty() {
        println!("No peers found. Others must run Pigeon on this subnet, or be added with --target.");
        return;
    }
    let rows: Vec<[String; 7]> = peers
        .iter()
        .map(|peer| {
            [
                peer.name.clone(),
                peer.group.clone(),
                peer.host.clone(),
                format!("{}:{}", peer.addr, peer.port),
                status_word(peer.status).to_owned(),
                trust_word(peer.trust).to_owned(),
                peer.id.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "GROUP", "HOST", "ADDRESS", "STATUS", "KEY", "ID"].map(String::from);
    // Terminal columns, not chars: CJK names take two columns per character.
    let mut widths = header.clone().map(|h| h.width());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.width())))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn trust_word(trust: Trust) -> &'static str {
    match trust {
        Trust::Unverified => "unverified",
        Trust::Verified => "verified",
        Trust::KeyChanged => "CHANGED",
        Trust::Replaced => "replaced",
        Trust::Unencrypted => "NONE (IPMsg)",
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Online | Status::Unknown => "online",
        Status::Away => "away",
        Status::Busy => "busy",
    }
}
