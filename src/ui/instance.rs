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

/// What a second start writes: show the window, or only say whether it is there (a start
/// that wants no window, the session's autostart).
const SHOW: &str = "show";
const PING: &str = "ping";

/// Whether a window is open on `data_dir` already; with `show`, it is asked to show itself.
pub fn hand_over(data_dir: &Path, show: bool) -> bool {
    let Ok(mut stream) = UnixStream::connect(data_dir.join(SOCKET)) else { return false };
    if writeln!(stream, "{}", if show { SHOW } else { PING }).is_err() {
        return false;
    }
    // The window answers once it took the request, so that this process exits only then.
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).is_ok_and(|read| read > 0)
}

/// Requests to show the window, from later starts; the listening thread ends with the
/// process.
pub struct ShowRequests {
    requests: Receiver<()>,
    path: PathBuf,
}

impl ShowRequests {
    /// Listens on `data_dir` (the node holds the data folder's lock, so a socket file left
    /// there belongs to a window that is gone). Each request wakes the window.
    pub fn listen(data_dir: &Path, wake: &Wake) -> std::io::Result<ShowRequests> {
        let path = data_dir.join(SOCKET);
        std::fs::remove_file(&path).ok();
        let listener = UnixListener::bind(&path)?;
        let (tx, requests) = crossbeam_channel::bounded(1);
        let wake = wake.clone();
        std::thread::Builder::new()
            .name("pigeon-window-socket".into())
            .spawn(move || serve(&listener, &tx, &wake))?;
        Ok(ShowRequests { requests, path })
    }

    /// Whether a show request came since the last call.
    pub fn asked(&self) -> bool {
        self.requests.try_iter().count() > 0
    }
}

impl Drop for ShowRequests {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}

fn serve(listener: &UnixListener, requests: &Sender<()>, wake: &Wake) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        // Only the first line, and only so long: a stray client cannot hold the thread.
        stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok();
        let read = BufReader::new((&stream).take(64)).read_line(&mut line);
        if !read.is_ok_and(|read| read > 0) {
            continue;
        }
        let asked = line.trim();
        if asked == SHOW {
            // A full queue already holds a request: this one is the same.
            requests.try_send(()).ok();
            wake.now();
        }
        if asked == SHOW || asked == PING {
            writeln!(stream, "ok").ok();
        }
    }
}
