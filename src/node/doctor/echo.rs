//! Whether our own broadcasts and multicasts come back to us: the kernel hands a copy of
//! each to our own sockets through the same input path, and so through the local firewall,
//! as the datagrams of others on the network. One that does not come back is dropped here,
//! before any network could.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::Echo;
use crate::config::Settings;
use crate::node::interfaces::Subnet;
use crate::node::socket;
use crate::protocol::announce::MULTICAST_GROUP;

/// How long to wait for the copies: they come back in microseconds unless dropped.
const WAIT: Duration = Duration::from_millis(500);

/// What the probe datagrams start with: not a Pigeon datagram, so a Pigeon running here
/// drops (and counts) them.
const TAG: &str = "pigeon-doctor";

/// Sends one broadcast and one multicast (as the settings have them on) out of each used
/// interface, to the discovery port, and says which came back.
pub fn listen_for_our_own(settings: &Settings, used: &[(String, Subnet)]) -> Vec<Echo> {
    let port = settings.port;
    let Ok(socket) = socket::udp_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)) else {
        log::info!("doctor: cannot listen on UDP {port}; no echo test");
        return Vec::new();
    };
    let group = Ipv4Addr::from(MULTICAST_GROUP);
    let nonce = crate::node::random_seed();
    let mut echoes = Vec::new();
    for (name, subnet) in used {
        let mut send = |method: &'static str, to: Ipv4Addr| {
            let bytes = format!("{TAG} {nonce:016x} {method} {name}");
            let sent = socket::send_datagram(&socket, bytes.as_bytes(), SocketAddrV4::new(to, port));
            if let Err(err) = sent {
                log::info!("doctor: {method} on {name}: {err}");
            }
            echoes.push((Echo { interface: name.clone(), method, came_back: false }, bytes));
        };
        if settings.broadcast {
            send("broadcast", subnet.broadcast);
        }
        if settings.multicast
            && socket.join_multicast_v4(&group, &subnet.ip).is_ok()
            && socket2::SockRef::from(&socket).set_multicast_if_v4(&subnet.ip).is_ok()
        {
            send("multicast", group);
        }
    }
    wait_for_copies(&socket, &mut echoes);
    echoes.into_iter().map(|(echo, _)| echo).collect()
}

fn wait_for_copies(socket: &UdpSocket, echoes: &mut [(Echo, String)]) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 256];
    while echoes.iter().any(|(echo, _)| !echo.came_back) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let Ok((len, _)) = socket.recv_from(&mut buf) else { return };
        let got = buf.get(..len).unwrap_or_default();
        if let Some((echo, _)) = echoes.iter_mut().find(|(_, sent)| sent.as_bytes() == got) {
            echo.came_back = true;
        }
    }
}
