//! Every socket option Pigeon sets, in one place (socket2), with the reason for each.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::threads::StopFlag;

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
    bound_udp(addr.into(), false)
}

/// A discovery socket bound to `addr`: broadcast allowed, address shareable so that several
/// nodes can bind different addresses of one machine on the same port. An IPv6 one is
/// IPv6 only: IPv4 has sockets of its own.
pub fn udp_socket(addr: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
    bound_udp(addr.into(), true)
}

fn bound_udp(addr: SocketAddr, share_address: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(share_address)?;
    if addr.is_ipv4() {
        socket.set_broadcast(true)?;
    } else {
        socket.set_only_v6(true)?;
    }
    socket.set_recv_buffer_size(UDP_RECV_BUFFER)?;
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket.into())
}

/// The TCP listener. No SO_REUSEPORT: a second node on the same address and port must fail
/// here, loudly, instead of silently sharing connections.
pub fn tcp_listener(addr: impl Into<SocketAddr>) -> io::Result<TcpListener> {
    let addr = addr.into();
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Lets a restarted node rebind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    // Linux applies the receive timeout to accept(), so the accept thread can see shutdown.
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(std::os::fd::OwnedFd::from(socket).into())
}

/// Longest pause between two looks at a connection being made: how late a raised stop flag
/// is noticed, at most.
const CONNECT_POLL: Duration = Duration::from_millis(50);

/// Connects from `local` (the node's bind address, so peers see the address we announce
/// from; IPv6 connections from the address the system picks) with a deadline, so a peer
/// that vanished costs a bounded wait, and gives up as soon as `stop` is raised, so that a
/// node stops at once even while a peer's host never answers.
pub fn connect(
    local: Ipv4Addr,
    addr: SocketAddr,
    timeout: Duration,
    stop: &StopFlag,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv4() && !local.is_unspecified() {
        socket.bind(&SockAddr::from(SocketAddrV4::new(local, 0)))?;
    }
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => wait_connected(&socket, timeout, stop)?,
        Err(err) => return Err(err),
    }
    socket.set_nonblocking(false)?;
    let stream: TcpStream = socket.into();
    prepare_stream(&stream)?;
    Ok(stream)
}

/// Waits for a connect started without blocking to succeed, fail, time out or be stopped.
/// Looks often at first (a LAN answers within a millisecond), then every [`CONNECT_POLL`].
fn wait_connected(socket: &Socket, timeout: Duration, stop: &StopFlag) -> io::Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(err) = socket.take_error()? {
            return Err(err);
        }
        match socket.peer_addr() {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
            Err(err) => return Err(err),
        }
        if stop.is_raised() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped while connecting"));
        }
        if started.elapsed() >= timeout {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"));
        }
        // The socket offers no readiness to wait on without a poller; a short, bounded pause.
        crossbeam_channel::after(pause).recv().ok();
        pause = (pause * 2).min(CONNECT_POLL);
    }
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

/// How often a [`Patient`] socket looks at its stop flag while it waits.
pub const PATIENT_POLL: Duration = Duration::from_millis(100);

/// A blocking socket whose reads and writes wait at most until a deadline and stop as soon
/// as a stop flag is raised (for handshakes on data connections: a peer that accepted the
/// connection and says nothing must not hold up a cancel or a shutdown). The socket's own
/// timeouts are set to [`PATIENT_POLL`], which is only how often it looks.
pub struct Patient<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    stop: &'a StopFlag,
    /// When set, the deadline moves this far ahead with every byte that moves: a long
    /// transfer is fine, a silent peer is not.
    idle: Option<Duration>,
}

impl<'a> Patient<'a> {
    /// Waits on `stream` for at most `within` from now, or until `stop` is raised.
    pub fn new(stream: &'a TcpStream, within: Duration, stop: &'a StopFlag) -> io::Result<Patient<'a>> {
        stream.set_read_timeout(Some(PATIENT_POLL))?;
        stream.set_write_timeout(Some(PATIENT_POLL))?;
        Ok(Patient { stream, deadline: Instant::now() + within, stop, idle: None })
    }

    /// Waits on `stream` for at most `idle` without a byte moving, or until `stop` is raised.
    pub fn idle(stream: &'a TcpStream, idle: Duration, stop: &'a StopFlag) -> io::Result<Patient<'a>> {
        let patient = Patient::new(stream, idle, stop)?;
        Ok(Patient { idle: Some(idle), ..patient })
    }

    fn moved(&mut self, done: io::Result<usize>) -> io::Result<usize> {
        if let (Some(idle), Ok(1..)) = (self.idle, &done) {
            self.deadline = Instant::now() + idle;
        }
        done
    }

    /// Whether an error is only the poll interval passing, and if so whether to go on.
    fn keep_waiting(&self, err: io::Error) -> io::Result<()> {
        if !matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return Err(err);
        }
        if self.stop.is_raised() {
            // Not `Interrupted`: `read_exact` and `write_all` would retry that for ever.
            return Err(io::Error::other("stopped"));
        }
        if Instant::now() >= self.deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer did not answer in time"));
        }
        Ok(())
    }
}

impl io::Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&mut &*self.stream).read(buf) {
                Err(err) => self.keep_waiting(err)?,
                done => return self.moved(done),
            }
        }
    }
}

impl io::Write for Patient<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match (&mut &*self.stream).write(buf) {
                Err(err) => self.keep_waiting(err)?,
                done => return self.moved(done),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        (&mut &*self.stream).flush()
    }
}

/// Sends one datagram without ever blocking: with the socket's send buffer full (packets
/// waiting for an address to resolve hold it), the datagram is dropped with an error
/// instead of stopping the hub. Datagrams are repeated or resent by their protocols.
pub fn send_datagram(socket: &UdpSocket, bytes: &[u8], to: impl Into<SocketAddr>) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_to_with_flags(bytes, &SockAddr::from(to.into()), libc::MSG_DONTWAIT)
}
