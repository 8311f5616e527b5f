//! The TCP accept thread: takes incoming connections and hands them to the hub, which starts
//! a reader and a writer for each (thread per connection).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use crossbeam_channel::Sender;

use super::hub::NetEvent;
use super::threads::StopFlag;

/// Accepts native connections until `stop` is raised.
pub fn accept_loop(listener: &TcpListener, net: &Sender<NetEvent>, stop: &StopFlag) {
    accept_with(listener, net, stop, |stream, remote| Some(NetEvent::Accepted { stream, remote }));
}

/// Accepts until `stop` is raised (checked at least every socket poll interval), handing
/// what `take` makes of each connection to the hub (`None`: dropped).
pub fn accept_with(
    listener: &TcpListener,
    net: &Sender<NetEvent>,
    stop: &StopFlag,
    mut take: impl FnMut(TcpStream, SocketAddr) -> Option<NetEvent>,
) {
    while !stop.is_raised() {
        match listener.accept() {
            Ok((stream, remote)) => {
                if stop.is_raised() {
                    return;
                }
                if let Some(event) = take(stream, remote)
                    && net.send(event).is_err()
                {
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
