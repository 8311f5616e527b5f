//! A hand-written peer that speaks the wire protocol directly (through Pigeon's own secure
//! layer), to send what a real node never would: hostile names, wrong keys, odd frames.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use pigeon::protocol::announce::{Presence, Status};
use pigeon::protocol::frame::{self, Frame};
use pigeon::protocol::ids::TransferId;
use pigeon::protocol::transfer::{Entry, EntryKind, FileEnd, Offer};
use pigeon::secure::{Identity, Role, SecureReader, SecureWriter, handshake};

use crate::util::{Net, SHORT};

/// Random bytes for ids and keys.
pub fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// One encrypted connection, after the handshake.
pub struct RawConn {
    writer: SecureWriter<TcpStream>,
    reader: SecureReader<TcpStream>,
    buf: Vec<u8>,
}

impl RawConn {
    /// Runs the handshake on `stream` as `role`.
    pub fn open(stream: TcpStream, identity: &Identity, role: Role) -> RawConn {
        stream.set_read_timeout(Some(SHORT)).unwrap();
        let session = std::sync::Arc::new(handshake(&mut &stream, identity, role).unwrap());
        RawConn {
            writer: SecureWriter::new(stream.try_clone().unwrap(), session.clone()),
            reader: SecureReader::new(stream, session),
            buf: Vec::new(),
        }
    }

    /// Writes raw plaintext bytes (frames or parts of them) and flushes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &Frame) {
        self.write(&frame.encode());
    }

    /// The next frame, `None` when the stream ends or stays silent for [`SHORT`].
    pub fn next(&mut self) -> Option<Frame> {
        loop {
            if let Ok(Some((frame, used))) = frame::decode(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = self.reader.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A peer with its own key, a listener for data connections and a chat connection to a node.
pub struct RawPeer {
    pub identity: Identity,
    pub presence: Presence,
    listener: TcpListener,
    pub chat: RawConn,
}

impl RawPeer {
    /// Connects to the node at `to` from address 7 of `net` and says hello as `name`.
    pub fn connect(net: &Net, to: SocketAddr, name: &str) -> RawPeer {
        let listener = TcpListener::bind((net.ip(7), net.port)).unwrap();
        RawPeer::connect_with(net, to, name, listener)
    }

    /// Like [`RawPeer::connect`], with data connections arriving at `listener` (bound to
    /// address 7 and the port of `net`), which the test may leave unserved.
    pub fn connect_with(net: &Net, to: SocketAddr, name: &str, listener: TcpListener) -> RawPeer {
        let identity = Identity::from_private(rand_bytes());
        let presence = Presence {
            id: identity.peer_id(),
            key: identity.public(),
            name: name.into(),
            group: String::new(),
            host: "m".into(),
            status: Status::Online,
            heartbeat_secs: pigeon::protocol::announce::HEARTBEAT_SECS,
            port: net.port,
            seq: 0,
        };
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((net.ip(7), 0)).into()).unwrap();
        socket.connect(&to.into()).unwrap();
        let mut chat = RawConn::open(socket.into(), &identity, Role::Initiator);
        chat.send(&Frame::Hello(presence.clone()));
        RawPeer { identity, presence, listener, chat }
    }

    /// Offers `entries` and returns the transfer id.
    pub fn offer(&mut self, entries: Vec<Entry>) -> TransferId {
        let transfer_id = TransferId::from_bytes(rand_bytes());
        self.chat.send(&Frame::Offer(Offer { transfer_id, entries, room: None }));
        transfer_id
    }

    /// Serves one fetch: every file entry gets `content`.
    pub fn serve(&mut self, entries: &[Entry], content: &[u8]) {
        let (stream, _) = self.listener.accept().unwrap();
        let mut data = RawConn::open(stream, &self.identity, Role::Responder);
        assert!(matches!(data.next(), Some(Frame::Fetch(_))));
        data.send(&Frame::Hello(self.presence.clone()));
        for (index, entry) in entries.iter().enumerate() {
            if entry.kind == EntryKind::File {
                data.write(&frame::chunk_header(content.len()));
                data.write(content);
                let hash = blake3::hash(content).to_hex().to_string();
                let end = FileEnd { index: u32::try_from(index).unwrap(), blake3: hash };
                data.send(&Frame::FileEnd(end));
            }
        }
        assert!(matches!(data.next(), Some(Frame::Done(_))), "receiver confirms");
    }
}
