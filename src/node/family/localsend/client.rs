//! Our requests to LocalSend devices, on the family's threads (never the hub's): connect,
//! TLS handshake, and — before a byte of the request goes out — the presented certificate
//! compared with the fingerprint we expect, so an impostor at a device's address learns
//! nothing and gets nothing.

use std::io::{self, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use super::http::{self, Body};
use super::tls;
use crate::node::socket::{self, Patient};
use crate::node::threads::StopFlag;

/// Time to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer body taken (answers are small JSON).
const MAX_ANSWER: usize = 1024 * 1024;

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The device's address and HTTP port.
    pub addr: SocketAddrV4,
    /// HTTPS (else plain HTTP).
    pub https: bool,
    /// The fingerprint its certificate must have; `None` to learn it.
    pub expect: Option<String>,
    /// The PIN our user gave for it, sent with offers.
    pub pin: Option<String>,
}

/// What a device answered.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The fingerprint of the certificate it presented (HTTPS).
    pub presented: Option<String>,
}

/// A request's body: its length, and what writes it.
pub struct Payload<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// Bytes that `write` writes.
    pub length: u64,
    /// Writes the body.
    pub write: &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
}

/// How we make requests.
#[derive(Clone)]
pub struct Client {
    /// Our TLS settings.
    pub tls: Arc<rustls::ClientConfig>,
    /// The address we connect from (the node's bind address).
    pub local: Ipv4Addr,
}

impl Client {
    /// Makes one request and reads its answer; waits at most `patience` for any byte (a
    /// `prepare-upload` waits for the other user), and stops when `stop` is raised.
    pub fn call(
        &self,
        target: &Target,
        method: &str,
        path: &str,
        payload: Option<Payload<'_>>,
        patience: Duration,
        stop: &StopFlag,
    ) -> Result<Answer, String> {
        let addr = SocketAddr::V4(target.addr);
        let tcp =
            socket::connect(self.local, addr, CONNECT_TIMEOUT, stop).map_err(|err| connect_error(&err))?;
        let patient = Patient::idle(&tcp, patience, stop).map_err(|err| err.to_string())?;
        if target.https {
            let name = rustls::pki_types::ServerName::IpAddress(IpAddr::V4(*target.addr.ip()).into());
            let conn =
                rustls::ClientConnection::new(self.tls.clone(), name).map_err(|err| err.to_string())?;
            let mut stream = rustls::StreamOwned::new(conn, patient);
            stream.conn.complete_io(&mut stream.sock).map_err(|err| format!("TLS: {err}"))?;
            let presented = tls::presented(stream.conn.peer_certificates());
            if let Some(expected) = &target.expect
                && presented.as_ref() != Some(expected)
            {
                return Err(String::from(
                    "its certificate is not the one it had (another device at its address?)",
                ));
            }
            let mut answer = exchange(&mut stream, target, method, path, payload)?;
            answer.presented = presented;
            Ok(answer)
        } else {
            let mut stream = patient;
            exchange(&mut stream, target, method, path, payload)
        }
    }

    /// POSTs `bytes` as `content_type` to `path` (see [`Client::call`]).
    pub fn post(
        &self,
        target: &Target,
        path: &str,
        content_type: &str,
        bytes: &[u8],
        patience: Duration,
        stop: &StopFlag,
    ) -> Result<Answer, String> {
        let mut write = |out: &mut dyn Write| out.write_all(bytes);
        let payload = Payload { content_type, length: bytes.len() as u64, write: &mut write };
        self.call(target, "POST", path, Some(payload), patience, stop)
    }
}

fn exchange(
    stream: &mut (impl io::Read + Write),
    target: &Target,
    method: &str,
    path: &str,
    payload: Option<Payload<'_>>,
) -> Result<Answer, String> {
    let host = target.addr.to_string();
    let sent = match payload {
        Some(payload) => {
            http::write_request_head(stream, method, &host, path, payload.content_type, payload.length)
                .and_then(|()| (payload.write)(stream))
        }
        None => http::write_request_head(stream, method, &host, path, "application/json", 0),
    };
    let flushed = sent.and_then(|()| stream.flush());
    let mut reader = BufReader::new(stream);
    // A receiver may answer before taking the whole body (a refused upload): read its answer
    // even when writing failed, and fail with the write error only when there is none.
    let answered = http::read_response(&mut reader).and_then(|(status, length)| {
        let body = Body::new(&mut reader, length).read_limited(MAX_ANSWER)?;
        Ok(Answer { status, body, presented: None })
    });
    match (answered, flushed) {
        (Ok(answer), _) => Ok(answer),
        (Err(_), Err(err)) | (Err(err), Ok(())) => Err(err.to_string()),
    }
}

fn connect_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => String::from("connection refused (LocalSend not running there?)"),
        io::ErrorKind::TimedOut => String::from("no answer (a firewall, or it left?)"),
        _ => err.to_string(),
    }
}
