//! Our LocalSend HTTPS server: an accept thread and a thread per connection (at most
//! [`MAX_CONNECTIONS`] at once; more are closed unanswered). A connection thread only reads
//! and writes: it parses the request, hands it to the hub as a [`Call`] with a way to
//! answer, and waits for the answer (the hub never waits for it). An accepted upload is the
//! exception: the hub answers with a [`Grant`] and the connection thread writes the file.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::Report;
use super::http::{self, Body, Request};
use super::receive::{self, Grant};
use super::tls;
use crate::node::doorbell::Bell;
use crate::node::socket::{self, Patient};
use crate::node::threads::{self, StopFlag};
use crate::protocol::localsend::{DeviceInfo, PrepareUpload, path};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;

/// Longest silence of a client mid-request.
const IDLE: Duration = Duration::from_secs(30);

/// How long an offer waits for our user before the sender is told no.
const PREPARE_WAIT: Duration = Duration::from_secs(600);

/// How long any other call waits for the hub.
const CALL_WAIT: Duration = Duration::from_secs(10);

/// Largest `prepare-upload` body (a few thousand files' names).
const MAX_PREPARE: usize = 4 * 1024 * 1024;

/// Largest `register` body.
const MAX_REGISTER: usize = 16 * 1024;

/// A request for the hub to answer.
#[derive(Debug)]
pub enum Call {
    /// `GET info`.
    Info,
    /// `POST register`: a device answers our announcement (or introduces itself).
    Register(DeviceInfo),
    /// `POST prepare-upload`: an offer of files or a text.
    Prepare {
        /// The `pin` the sender gave.
        pin: Option<String>,
        /// The offer.
        offer: PrepareUpload,
    },
    /// `POST upload`: may this body be stored?
    Upload {
        /// The session.
        session: String,
        /// The file.
        file: String,
        /// Its token.
        token: String,
    },
    /// `POST cancel`: the sender ends its session.
    Cancel {
        /// The session.
        session: String,
    },
}

/// The hub's answer to a [`Call`].
pub enum Reply {
    /// A JSON body with this status.
    Json(u16, Vec<u8>),
    /// No body, this status.
    Empty(u16),
    /// Store the upload as granted.
    Receive(Box<Grant>),
}

/// Starts the accept thread.
pub fn start(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    queue: Bell<Report>,
    stop: StopFlag,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let open = Arc::new(AtomicUsize::new(0));
    threads::spawn("pigeon-localsend-listen", move || {
        crate::node::listener::accept_loop(&listener, &stop, |stream, remote| {
            let SocketAddr::V4(from) = remote else { return true };
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                log::info!("LocalSend: too many connections; {from} closed unanswered");
                return true;
            }
            let (tls, queue, stop, open) = (tls.clone(), queue.clone(), stop.clone(), open.clone());
            let spawned = threads::spawn("pigeon-localsend-conn", move || {
                serve(&stream, from, tls, &queue, &stop);
                open.fetch_sub(1, Ordering::AcqRel);
            });
            if let Err(err) = spawned {
                log::warn!("LocalSend: cannot serve {from}: {err}");
            }
            true
        });
    })
}

/// Serves one connection: one request.
fn serve(
    tcp: &TcpStream,
    from: SocketAddrV4,
    tls: Option<Arc<rustls::ServerConfig>>,
    queue: &Bell<Report>,
    stop: &StopFlag,
) {
    if let Err(err) = socket::prepare_stream(tcp) {
        return log::debug!("LocalSend: {from}: {err}");
    }
    let Ok(patient) = Patient::idle(tcp, IDLE, stop) else { return };
    let outcome = match tls {
        Some(config) => match rustls::ServerConnection::new(config) {
            Ok(conn) => {
                let mut stream = rustls::StreamOwned::new(conn, patient);
                match stream.conn.complete_io(&mut stream.sock) {
                    Ok(_) => {
                        let presented = tls::presented(stream.conn.peer_certificates());
                        answer(&mut stream, from, presented, queue)
                    }
                    Err(err) => Err(format!("TLS: {err}")),
                }
            }
            Err(err) => Err(err.to_string()),
        },
        None => answer(&mut { patient }, from, None, queue),
    };
    if let Err(err) = outcome {
        log::debug!("LocalSend: {from}: {err}");
    }
}

fn answer(
    stream: &mut (impl Read + Write),
    from: SocketAddrV4,
    presented: Option<String>,
    queue: &Bell<Report>,
) -> Result<(), String> {
    let mut reader = BufReader::new(&mut *stream);
    let request = http::read_request(&mut reader).map_err(|err| err.to_string())?;
    let call = match read_call(&request, &mut reader) {
        Ok(call) => call,
        Err(status) => {
            drop(reader);
            return http::write_response(stream, status, None).map_err(|err| err.to_string());
        }
    };
    let wait = if matches!(call, Call::Prepare { .. }) { PREPARE_WAIT } else { CALL_WAIT };
    let (reply_tx, reply_rx): (Sender<Reply>, Receiver<Reply>) = crossbeam_channel::bounded(1);
    if queue.send(Report::Call { from, presented, call, reply: reply_tx }).is_err() {
        return Ok(());
    }
    let reply = reply_rx.recv_timeout(wait).unwrap_or(Reply::Empty(500));
    let (status, json) = match reply {
        Reply::Json(status, json) => (status, Some(json)),
        Reply::Empty(status) => (status, None),
        Reply::Receive(grant) => {
            let body = Body::new(&mut reader, request.length);
            let status = receive::store(*grant, body, queue);
            (status, None)
        }
    };
    drop(reader);
    http::write_response(stream, status, json.as_deref()).map_err(|err| err.to_string())
}

/// The call a request makes, or the status that refuses it.
fn read_call(request: &Request, reader: &mut BufReader<impl Read>) -> Result<Call, u16> {
    let query = |name: &str| request.query.get(name).cloned();
    let json = |reader: &mut BufReader<_>, max| {
        Body::new(reader, request.length).read_limited(max).map_err(|_too_large| 413u16)
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", path::INFO) => Ok(Call::Info),
        ("POST", path::REGISTER) => {
            let body = json(reader, MAX_REGISTER)?;
            serde_json::from_slice(&body).map(Call::Register).map_err(|_malformed| 400)
        }
        ("POST", path::PREPARE_UPLOAD) => {
            let body = json(reader, MAX_PREPARE)?;
            let offer = serde_json::from_slice(&body).map_err(|_malformed| 400u16)?;
            Ok(Call::Prepare { pin: query("pin"), offer })
        }
        ("POST", path::UPLOAD) => match (query("sessionId"), query("fileId"), query("token")) {
            (Some(session), Some(file), Some(token)) => Ok(Call::Upload { session, file, token }),
            _ => Err(400),
        },
        ("POST", path::CANCEL) => Ok(Call::Cancel { session: query("sessionId").unwrap_or_default() }),
        _ => Err(404),
    }
}
