//! The node never waits on its own threads. A transfer cancelled while its data connection
//! hangs (in a connect the peer's host never answers, or in a handshake the peer never
//! speaks) leaves everyone else served at once, and shutdown does not wait for it; a hub
//! whose queue is full while it closes connections neither deadlocks nor stops late. Before,
//! the hub joined such threads inline and froze for seconds, or for good.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pigeon::protocol::announce::Datagram;
use pigeon::protocol::announce::Goodbye;
use pigeon::protocol::frame::Frame;
use pigeon::protocol::ids::{MsgId, TransferId};
use pigeon::protocol::message::WireMessage;
use pigeon::protocol::transfer::{Entry, EntryKind};
use pigeon::secure::{Identity, Role, SecureReader, SecureWriter, handshake};
use pigeon::store::{MessageState, TransferState};
use pigeon::{Command, Event};

use crate::raw::{RawPeer, rand_bytes};
use crate::util::{Daemon, Net, SHORT, expect_state, heavy, next_seq, presence_of, send};

/// How soon the node must answer while one of its workers hangs (the bound).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// How soon a stopped node must have exited, whatever its workers are doing.
const STOP_WITHIN: Duration = Duration::from_secs(2);

/// Where a data connection to the peer gets stuck.
#[derive(Clone, Copy, Debug)]
enum Stuck {
    /// The peer's host never answers the connect: its accept queue is full, so the kernel
    /// drops every further SYN, as a firewall dropping new connections would.
    Connect,
    /// The connection is made but the peer never speaks the handshake.
    Handshake,
}

/// A data listener on address 7 of `net` that gets connections stuck as `stuck` says, and
/// the connection that keeps its accept queue full (for [`Stuck::Connect`]).
fn stuck_listener(net: &Net, stuck: Stuck) -> (TcpListener, Option<TcpStream>) {
    let addr = SocketAddr::from((net.ip(7), net.port));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&addr.into()).unwrap();
    match stuck {
        Stuck::Connect => {
            socket.listen(0).unwrap();
            let filler = TcpStream::connect(addr).unwrap();
            (socket.into(), Some(filler))
        }
        Stuck::Handshake => {
            socket.listen(16).unwrap();
            (socket.into(), None)
        }
    }
}

/// Offers one file from a scripted peer whose data connections hang, and has `bo` accept it;
/// the receiving worker is then stuck for seconds. Returns the transfer.
fn accept_stuck_offer(bo: &mut Daemon, peer: &mut RawPeer) -> TransferId {
    let id = peer.offer(vec![Entry { path: "a.bin".into(), kind: EntryKind::File, size: 1000 }]);
    bo.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.transfer_id == id => Some(()),
        _ => None,
    });
    bo.send(&Command::AcceptTransfer { transfer_id: id, always: false });
    bo.expect(SHORT, "accepted", |event| match event {
        Event::TransferStateChanged { transfer_id, state: TransferState::Active, .. }
            if *transfer_id == id =>
        {
            Some(())
        }
        _ => None,
    });
    id
}

fn cancelling_a_stuck_transfer_leaves_everyone_served(stuck: Stuck) {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(2, 3, &dirs.path().join("bo")));
    let mut cy = Daemon::start("cy", &net.flags(3, 3, &dirs.path().join("cy")));
    bo.expect_peers(&[cy.id]);
    cy.expect_peers(&[bo.id]);
    // Cy's connection to bo is up before the clock starts.
    let warm = send(&mut cy, &[bo.id], "before");
    expect_state(&mut cy, warm[0], MessageState::Delivered);
    let (listener, _filler) = stuck_listener(&net, stuck);
    let mut ana = RawPeer::connect_with(&net, (net.ip(2), net.port).into(), "ana", listener);

    let id = accept_stuck_offer(&mut bo, &mut ana);
    let cancelled = Instant::now();
    bo.send(&Command::CancelTransfer { transfer_id: id });
    let msg_id = send(&mut cy, &[bo.id], "meanwhile")[0];
    bo.send(&Command::Stats);
    let (mut answered, mut ended) = (None, None);
    bo.expect(SHORT, "stats and the cancel", |event| {
        match event {
            Event::Stats { .. } => answered = Some(cancelled.elapsed()),
            Event::TransferStateChanged { transfer_id, state, .. } if *transfer_id == id => {
                ended = Some(*state);
            }
            _ => {}
        }
        (answered.is_some() && ended.is_some()).then_some(())
    });
    let answered = answered.unwrap();
    assert_eq!(ended, Some(TransferState::Cancelled));
    expect_state(&mut cy, msg_id, MessageState::Delivered);
    let delivered = cancelled.elapsed();
    eprintln!("{stuck:?}: stats answered {answered:?}, a message delivered {delivered:?} after the cancel");
    assert!(answered < ANSWER_WITHIN, "{stuck:?}: stats took {answered:?} while a worker hung");
    assert!(delivered < ANSWER_WITHIN, "{stuck:?}: cy's message took {delivered:?} while a worker hung");

    // A node stopping with a worker stuck the same way does not wait for it.
    accept_stuck_offer(&mut bo, &mut ana);
    let stopping = Instant::now();
    bo.stop();
    let stopped = stopping.elapsed();
    assert!(stopped < STOP_WITHIN, "{stuck:?}: shutdown took {stopped:?} with a worker stuck");
}

#[test]
fn cancelling_a_transfer_stuck_in_connect_leaves_everyone_served() {
    cancelling_a_stuck_transfer_leaves_everyone_served(Stuck::Connect);
}

#[test]
fn cancelling_a_transfer_stuck_in_the_handshake_leaves_everyone_served() {
    cancelling_a_stuck_transfer_leaves_everyone_served(Stuck::Handshake);
}

/// A scripted peer that says hello and then writes messages as fast as the node takes them,
/// reading whatever comes back, until `stop` is raised or the node closes the connection.
fn chatter(
    net: &Net,
    from: u8,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (Identity, std::thread::JoinHandle<()>) {
    let identity = Identity::from_private(rand_bytes());
    let presence = presence_of(&identity, &format!("chatty{from}"), net.port);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((net.ip(from), 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    let session = Arc::new(handshake(&mut &stream, &identity, Role::Initiator).unwrap());
    let mut reader = SecureReader::new(stream.try_clone().unwrap(), session.clone());
    std::thread::Builder::new()
        .name(format!("it-chatty{from}-read"))
        .spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        })
        .unwrap();
    let mut writer = SecureWriter::new(stream, session);
    let thread = std::thread::Builder::new()
        .name(format!("it-chatty{from}"))
        .spawn(move || {
            let mut frames = vec![Frame::Hello(presence).encode()];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for bytes in frames.drain(..) {
                    if writer.write_all(&bytes).and_then(|()| writer.flush()).is_err() {
                        return;
                    }
                }
                let message = WireMessage {
                    msg_id: MsgId::from_bytes(rand_bytes()),
                    sent_at_ms: 1,
                    text: "chatter ".repeat(50),
                    also_to: Vec::new(),
                };
                frames.push(Frame::Message(message).encode());
            }
        })
        .unwrap();
    (identity, thread)
}

#[test]
fn a_full_queue_while_connections_close_neither_deadlocks_nor_delays_shutdown() {
    const CHATTY: u8 = 8;
    const FLOOD: Duration = Duration::from_secs(4);
    let _alone = heavy();
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(1, 1, &dirs.path().join("bo")));
    let node: SocketAddr = (net.ip(1), net.port).into();
    let stop = Arc::new(AtomicBool::new(false));
    let chatty: Vec<_> = (0..CHATTY).map(|k| chatter(&net, 10 + k, node, stop.clone())).collect();

    // Decodable announces, each from a new forged key, cost the hub far more than a datagram
    // costs the receiver thread: the hub's queue fills. Goodbyes from the chatty peers make
    // the hub close their connections while their readers wait for room in that queue.
    let socket = UdpSocket::bind((net.ip(2), 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < FLOOD {
        let forged = Identity::from_private(rand_bytes());
        let announce = Datagram::Announce(presence_of(&forged, "forged", 9)).encode(&forged);
        // A full socket buffer is part of a flood.
        socket.send_to(&announce, node).ok();
        sent += 1;
        if sent.is_multiple_of(500) {
            for (chatty, _) in &chatty {
                let goodbye = Goodbye { id: chatty.peer_id(), key: chatty.public(), seq: next_seq() };
                socket.send_to(&Datagram::Goodbye(goodbye).encode(chatty), node).ok();
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!("{sent} forged announces in {FLOOD:?}");

    let asked = Instant::now();
    bo.send(&Command::Stats);
    bo.expect(SHORT, "stats after the flood", |event| matches!(event, Event::Stats { .. }).then_some(()));
    eprintln!("stats answered {:?} after the flood", asked.elapsed());
    let stopping = Instant::now();
    bo.stop();
    let stopped = stopping.elapsed();
    assert!(stopped < STOP_WITHIN, "shutdown took {stopped:?} after the flood");
    for (_, thread) in chatty {
        thread.join().unwrap();
    }
}
