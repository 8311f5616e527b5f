//! One window per data folder: the window listens on `window.sock` in its data folder, and
//! a second start of Pigeon (the menu entry again, the session's autostart, the command
//! line) asks it to show itself there and exits, instead of failing with "already running".

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::wake::Wake;
use crossbeam_channel::{Receiver, Sender};

/// The socket's file name in the data folder.
const SOCKET: &str = "window.sock";

/// What a later start asks of the running window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask<'a> {
    /// Only whether it is there (a start that wants no window: the session's autostart).
    Ping,
    /// Show the window.
    Show,
    /// Show it and use this invite link (one opened from a browser or a chat).
    UseInvite(&'a str),
}

/// What the window is asked, read from a later start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Show the window.
    Show,
    /// Show it and use the link.
    UseInvite(String),
}

const SHOW: &str = "show";
const PING: &str = "ping";
const INVITE: &str = "invite ";

/// The longest line read: an invite link and its word.
const MAX_LINE: u64 = crate::node::MAX_INVITE_LINK_BYTES as u64 + 16;

/// Requests queued before later ones are dropped: a burst of clicks on one link is one.
const QUEUE: usize = 4;

/// Whether a window is open on `data_dir` already; it is asked what `ask` says.
pub fn hand_over(data_dir: &Path, ask: Ask<'_>) -> bool {
    let Ok(mut stream) = UnixStream::connect(data_dir.join(SOCKET)) else { return false };
    let written = match ask {
        Ask::Ping => writeln!(stream, "{PING}"),
        Ask::Show => writeln!(stream, "{SHOW}"),
        // One line: a link pasted with line breaks is joined first.
        Ask::UseInvite(link) => writeln!(stream, "{INVITE}{}", link.split_whitespace().collect::<String>()),
    };
    if written.is_err() {
        return false;
    }
    // The window answers once it took the request, so that this process exits only then.
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).is_ok_and(|read| read > 0)
}

/// Requests from later starts; the listening thread ends with the process.
pub struct WindowRequests {
    requests: Receiver<Request>,
    path: PathBuf,
}

impl WindowRequests {
    /// Listens on `data_dir` (the node holds the data folder's lock, so a socket file left
    /// there belongs to a window that is gone). Each request wakes the window.
    pub fn listen(data_dir: &Path, wake: &Wake) -> std::io::Result<WindowRequests> {
        let path = data_dir.join(SOCKET);
        std::fs::remove_file(&path).ok();
        let listener = UnixListener::bind(&path)?;
        let (tx, requests) = crossbeam_channel::bounded(QUEUE);
        let wake = wake.clone();
        std::thread::Builder::new()
            .name("pigeon-window-socket".into())
            .spawn(move || serve(&listener, &tx, &wake))?;
        Ok(WindowRequests { requests, path })
    }

    /// The requests that came since the last call.
    pub fn take(&self) -> Vec<Request> {
        self.requests.try_iter().collect()
    }
}

impl Drop for WindowRequests {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}

fn serve(listener: &UnixListener, requests: &Sender<Request>, wake: &Wake) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        // Only the first line, and only so long: a stray client cannot hold the thread.
        stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok();
        let read = BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line);
        if !read.is_ok_and(|read| read > 0) {
            continue;
        }
        let asked = line.trim();
        let request = match asked.strip_prefix(INVITE) {
            Some(link) => Some(Request::UseInvite(link.to_owned())),
            None if asked == SHOW => Some(Request::Show),
            None if asked == PING => None,
            None => continue,
        };
        if let Some(request) = request {
            // A full queue already holds requests enough: the user clicked many times.
            requests.try_send(request).ok();
            wake.now();
        }
        writeln!(stream, "ok").ok();
    }
}
