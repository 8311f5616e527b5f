//! `pigeon room …`: group rooms from the command line — create, list, post, read, and change
//! members or the name. A room is named by its name or a prefix of its id.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use pigeon::node::{RoomId, RoomInfo};
use pigeon::{Command, Config, Event};

use super::peers::ANSWER_TIMEOUT;
use super::send::{failed, find_peer};
use super::session::Session;

/// `pigeon room` subcommands. ROOM is a room's name or a prefix of its id.
#[derive(Subcommand, Debug, Clone)]
pub enum Action {
    /// Start a room with these members (names, ids or id prefixes of Pigeon peers).
    Create {
        /// The room's name.
        name: String,
        /// Its members besides you.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// List your rooms.
    List,
    /// Post to a room (exits 0 once stored; members online get it at once).
    Send {
        /// The room.
        room: String,
        /// The text (UTF-8, at most 64 KiB).
        text: String,
    },
    /// Post files and folders to a room: every other member gets an offer to accept (exits 0
    /// once posted).
    Files {
        /// The room.
        room: String,
        /// Files and folders.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Print a room's posts, in the room's order, with who read each (and mark them read).
    History {
        /// The room.
        room: String,
    },
    /// Add a member.
    Add {
        /// The room.
        room: String,
        /// The peer.
        member: String,
    },
    /// Remove a member.
    Remove {
        /// The room.
        room: String,
        /// The member (name or id prefix).
        member: String,
    },
    /// Rename a room.
    Rename {
        /// The room.
        room: String,
        /// Its new name.
        name: String,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: String,
    },
}

/// Runs `action`; `wait` is how long to look for peers named on the command line.
pub fn run(config: &Config, action: Action, wait: Duration) -> anyhow::Result<ExitCode> {
    Session::run_reported(config, move |session| match action {
        Action::Create { name, members } => {
            let mut ids = Vec::new();
            for query in &members {
                match find_peer(session, query, wait)? {
                    Ok((id, _)) => ids.push(id),
                    Err(message) => return failed(message),
                }
            }
            let tag = Some(String::from("cli-room-create"));
            session.send(&Command::RoomCreate { name: name.clone(), members: ids, tag: tag.clone() })?;
            answer(session, |event| match event {
                Event::RoomUpdated { room, tag: t } if *t == tag => {
                    Some(Ok(format!("{} {}", room.room, room.name)))
                }
                Event::CommandFailed { error, tag: t } if *t == tag => Some(Err(error.clone())),
                _ => None,
            })
        }
        Action::List => {
            let rooms = list(session)?;
            let lines: Vec<String> = rooms
                .iter()
                .map(|room| {
                    let state = if room.joined { "" } else { "  (left)" };
                    format!(
                        "{}  {}  {} members, {} posts{state}",
                        room.room,
                        room.name,
                        room.members.len(),
                        room.posts
                    )
                })
                .collect();
            Ok((
                ExitCode::SUCCESS,
                if lines.is_empty() { String::from("no rooms") } else { lines.join("\n") },
            ))
        }
        Action::Send { room, text } => {
            let Some(room) = find_room(session, &room)? else { return failed(format!("no room {room:?}")) };
            let tag = Some(String::from("cli-room-send"));
            session.send(&Command::RoomSend { room, text, tag: tag.clone() })?;
            answer(session, |event| match event {
                Event::RoomPosted { tag: t, .. } if *t == tag => Some(Ok(String::from("posted"))),
                Event::CommandFailed { error, tag: t } if *t == tag => Some(Err(error.clone())),
                _ => None,
            })
        }
        Action::Files { room, paths } => {
            let Some(room) = find_room(session, &room)? else { return failed(format!("no room {room:?}")) };
            let paths = match super::send_file::absolute_paths(&paths) {
                Ok(paths) => paths,
                Err(message) => return failed(message),
            };
            let tag = Some(String::from("cli-room-files"));
            session.send(&Command::RoomSendFiles { room, paths, tag: tag.clone() })?;
            answer(session, |event| match event {
                Event::RoomPosted { tag: t, .. } if *t == tag => {
                    Some(Ok(String::from("posted; members get an offer")))
                }
                Event::CommandFailed { error, tag: t } if *t == tag => Some(Err(error.clone())),
                _ => None,
            })
        }
        Action::History { room } => {
            let Some(room) = find_room(session, &room)? else { return failed(format!("no room {room:?}")) };
            let others = list(session)?
                .iter()
                .find(|info| info.room == room)
                .map_or(0, |info| info.members.len().saturating_sub(1));
            session.send(&Command::RoomHistory { room })?;
            let printed = answer(session, |event| match event {
                Event::RoomHistory { room: r, posts } if *r == room => Some(Ok(posts
                    .iter()
                    .map(|post| {
                        let read = post.read_by.len();
                        let mut text = post.text.clone();
                        if let Some(files) = &post.files {
                            let names = files.names.iter().map(|n| pigeon::node::display_path(n));
                            let names: Vec<String> = names.collect();
                            let noun = if files.files == 1 { "file" } else { "files" };
                            text = format!("{text}[{} {noun}: {}]", files.files, names.join(", "));
                        }
                        format!("{} {}: {text}  (read by {read} of {others})", post.sent_at_ms, post.author)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))),
                Event::CommandFailed { error, tag: None } => Some(Err(error.clone())),
                _ => None,
            });
            session.send(&Command::RoomMarkRead { room })?;
            printed
        }
        Action::Add { room, member } => {
            let member = match find_peer(session, &member, wait)? {
                Ok((id, _)) => id,
                Err(message) => return failed(message),
            };
            change(session, &room, |room| Command::RoomAdd { room, member })
        }
        Action::Remove { room, member } => {
            // A member may be offline: look it up in the room, by name or id.
            let Some(room_id) = find_room(session, &room)? else {
                return failed(format!("no room {room:?}"));
            };
            let info = list(session)?.into_iter().find(|r| r.room == room_id);
            let found = info.and_then(|info| {
                info.members.into_iter().find(|m| m.name == member || m.id.to_string().starts_with(&member))
            });
            let Some(found) = found else { return failed(format!("no member {member:?} in that room")) };
            change(session, &room, |room| Command::RoomRemove { room, member: found.id })
        }
        Action::Rename { room, name } => change(session, &room, |room| Command::RoomRename { room, name }),
        Action::Leave { room } => change(session, &room, |room| Command::RoomLeave { room }),
    })
}

/// Sends the command `make` builds for the room named `query` and waits for the room to
/// change (or the command to fail).
fn change(
    session: &mut Session,
    query: &str,
    make: impl FnOnce(RoomId) -> Command,
) -> anyhow::Result<(ExitCode, String)> {
    let Some(room) = find_room(session, query)? else { return failed(format!("no room {query:?}")) };
    session.send(&make(room))?;
    answer(session, |event| match event {
        Event::RoomUpdated { room: info, .. } if info.room == room => {
            Some(Ok(format!("{} {}: {} members", info.room, info.name, info.members.len())))
        }
        Event::CommandFailed { error, tag: None } => Some(Err(error.clone())),
        _ => None,
    })
}

/// Waits for the node's answer: `pick` says which event it is.
fn answer(
    session: &mut Session,
    pick: impl FnMut(&Event) -> Option<Result<String, String>>,
) -> anyhow::Result<(ExitCode, String)> {
    match session.wait_for(Instant::now() + ANSWER_TIMEOUT, pick)? {
        Some(Ok(text)) => Ok((ExitCode::SUCCESS, text)),
        Some(Err(error)) => failed(error),
        None => failed(String::from("the node did not answer")),
    }
}

/// Every room the node holds.
fn list(session: &mut Session) -> anyhow::Result<Vec<RoomInfo>> {
    session.send(&Command::ListRooms)?;
    let rooms = session.wait_for(Instant::now() + ANSWER_TIMEOUT, |event| match event {
        Event::Rooms { rooms } => Some(rooms.clone()),
        _ => None,
    })?;
    Ok(rooms.unwrap_or_default())
}

/// The room whose name is `query`, or whose id starts with it.
fn find_room(session: &mut Session, query: &str) -> anyhow::Result<Option<RoomId>> {
    let rooms = list(session)?;
    let by_name: Vec<&RoomInfo> = rooms.iter().filter(|room| room.name == query).collect();
    if let [room] = by_name.as_slice() {
        return Ok(Some(room.room));
    }
    let by_id: Vec<&RoomInfo> =
        rooms.iter().filter(|room| room.room.to_string().starts_with(query)).collect();
    Ok(match by_id.as_slice() {
        [room] => Some(room.room),
        _ => None,
    })
}
