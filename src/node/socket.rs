//! Every socket option Pigeon sets, in one place (socket2), with the reason for each.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How often blocked receive calls wake up to notice a shutdown that no wake-up packet
/// reached. Long enough that an idle node costs nothing measurable.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Kernel receive buffer for discovery: room for a burst of announces from a large subnet
/// (and for a flood to be dropped by the kernel rather than by us).
const UDP_RECV_BUFFER: usize = 1 << 20;

/// Pending connections the kernel queues for us while the accept thread hands one over.
const LISTEN_BACKLOG: i32 = 128;

/// The IP Messenger socket: like a discovery socket, but without address sharing, so that
/// a port held by another IP Messenger client is reported instead of silently shared.
pub fn ipmsg_socket(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    bound_udp(addr, false)
}

/// A discovery socket bound to `addr`: broadcast allowed, address shareable so that several
/// nodes can bind different addresses of one machine on the same port.
pub fn udp_socket(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    bound_udp(addr, true)
}

fn bound_udp(addr: SocketAddrV4, share_address: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(share_address)?;
    socket.set_broadcast(true)?;
    socket.set_recv_buffer_size(UDP_RECV_BUFFER)?;
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket.into())
}

/// The TCP listener. No SO_REUSEPORT: a second node on the same address and port must fail
/// here, loudly, instead of silently sharing connections.
pub fn tcp_listener(addr: SocketAddrV4) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted node rebind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    // Linux applies the receive timeout to accept(), so the accept thread can see shutdown.
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(std::os::fd::OwnedFd::from(socket).into())
}

/// Connects from `local` (the node's bind address, so peers see the address we announce
/// from) with a deadline, so a peer that vanished costs a bounded wait.
pub fn connect(local: Ipv4Addr, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if !local.is_unspecified() {
        socket.bind(&SockAddr::from(SocketAddrV4::new(local, 0)))?;
    }
    socket.connect_timeout(&SockAddr::from(addr), timeout)?;
    let stream: TcpStream = socket.into();
    prepare_stream(&stream)?;
    Ok(stream)
}

/// Options for every established connection, accepted or connected.
pub fn prepare_stream(stream: &TcpStream) -> io::Result<()> {
    // Chat frames are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    // An accepted socket inherits the listener's timeouts; the reader sets its own.
    stream.set_read_timeout(None)?;
    Ok(())
}

/// The control socket listener, private to the user (mode 0600), with the poll timeout so its
/// accept thread can see shutdown.
pub fn unix_listener(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    socket.bind(&SockAddr::unix(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(std::os::fd::OwnedFd::from(socket).into())
}
