//! TCP accept threads: take incoming connections and hand each to whoever serves them (the
//! native family starts a reader and a writer per connection; IP Messenger reads a request).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::threads::StopFlag;

/// Accepts until `stop` is raised (checked at least every socket poll interval) or `take`
/// says no more (its queue is gone), handing each connection to `take`.
pub fn accept_loop(
    listener: &TcpListener,
    stop: &StopFlag,
    mut take: impl FnMut(TcpStream, SocketAddr) -> bool,
) {
    while !stop.is_raised() {
        match listener.accept() {
            Ok((stream, remote)) => {
                if stop.is_raised() || !take(stream, remote) {
                    return;
                }
            }
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                // Out of file descriptors and similar: keep the node alive and try again after
                // a pause, instead of spinning.
                log::warn!("accept failed: {err}");
                let pause = crossbeam_channel::after(super::socket::POLL_INTERVAL);
                pause.recv().ok();
            }
        }
    }
}
