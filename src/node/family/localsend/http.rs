//! Just enough HTTP/1.1 for the LocalSend API, both ways: one request per connection
//! (`Connection: close`), heads of at most [`MAX_HEAD`] bytes, bodies by `Content-Length`
//! or chunked (the apps stream uploads either way), and nothing else. Over TLS or plain TCP
//! alike: everything here works on any `Read + Write`.
//!
//! Why not an HTTP library: the caller must see the certificate the other side presented
//! (its fingerprint is the device's identity) before it sends or believes a byte, and the
//! small sync clients and servers do not show it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};

/// Largest request or response head taken.
pub const MAX_HEAD: usize = 16 * 1024;

/// Most header lines taken.
const MAX_HEADERS: usize = 64;

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many bytes.
    Known(u64),
    /// Chunked transfer encoding.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// A request's head.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// How its body is delimited (`Known(0)` for none).
    pub length: Length,
}

/// Reads a request head.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Request> {
    let head = read_head(reader)?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&head).map_err(invalid)? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => return Err(invalid("incomplete request head")),
    }
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: path.to_owned(),
        query: parse_query(query),
        length: body_length(parsed.headers, Length::Known(0))?,
    })
}

/// Reads a response head: its status and how its body is delimited.
pub fn read_response(reader: &mut impl BufRead) -> io::Result<(u16, Length)> {
    let head = read_head(reader)?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head).map_err(invalid)? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => return Err(invalid("incomplete response head")),
    }
    let status = parsed.code.unwrap_or_default();
    let length = if status == 204 || status == 304 {
        Length::Known(0)
    } else {
        body_length(parsed.headers, Length::UntilClose)?
    };
    Ok((status, length))
}

/// The head, up to and including its blank line.
fn read_head(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let room = (MAX_HEAD - head.len()) as u64;
        let before = head.len();
        let read = reader.take(room).read_until(b'\n', &mut head)?;
        if read == 0 {
            return Err(if head.is_empty() {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed before a request")
            } else {
                invalid("the head ended early")
            });
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            // Blank lines before a request are allowed and skipped.
            if before == 0 {
                head.clear();
                continue;
            }
            return Ok(head);
        }
        if head.len() >= MAX_HEAD {
            return Err(invalid("the head is too large"));
        }
    }
}

fn body_length(headers: &[httparse::Header<'_>], otherwise: Length) -> io::Result<Length> {
    let value = |name: &str| {
        headers.iter().find(|header| header.name.eq_ignore_ascii_case(name)).map(|header| header.value)
    };
    if let Some(encoding) = value("transfer-encoding") {
        if String::from_utf8_lossy(encoding).to_ascii_lowercase().contains("chunked") {
            return Ok(Length::Chunked);
        }
        return Err(invalid("unknown transfer encoding"));
    }
    match value("content-length") {
        Some(length) => std::str::from_utf8(length)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Length::Known)
            .ok_or_else(|| invalid("bad Content-Length")),
        None => Ok(otherwise),
    }
}

/// Query parameters, percent-decoded (`+` is a space).
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' if at + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[at + 1..at + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        at += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A message body as it arrives, delimited as its head said.
pub struct Body<'a, R> {
    reader: &'a mut R,
    length: Length,
    /// Bytes left of the body (`Known`) or of the current chunk (`Chunked`).
    left: u64,
    /// Chunked: the last chunk was read.
    done: bool,
}

impl<'a, R: BufRead> Body<'a, R> {
    /// The body that follows a head read from `reader`.
    pub fn new(reader: &'a mut R, length: Length) -> Body<'a, R> {
        let left = if let Length::Known(len) = length { len } else { 0 };
        Body { reader, length, left, done: false }
    }

    /// The whole body, failing when it is longer than `max` bytes.
    pub fn read_limited(mut self, max: usize) -> io::Result<Vec<u8>> {
        if let Length::Known(len) = self.length
            && len > max as u64
        {
            return Err(invalid(format!("a body of {len} bytes (limit {max})")));
        }
        let mut bytes = Vec::new();
        (&mut self).take(max as u64 + 1).read_to_end(&mut bytes)?;
        if bytes.len() > max {
            return Err(invalid(format!("a body over {max} bytes")));
        }
        Ok(bytes)
    }

    /// Reads what is left of the body or chunk, up to `buf`'s size; an early end is an
    /// error (`early` says which).
    fn read_left(&mut self, buf: &mut [u8], early: &str) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.reader.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, early.to_owned()));
        }
        self.left -= read as u64;
        Ok(read)
    }

    /// Reads the size line of the next chunk; false after the last one.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let mut line = Vec::new();
        self.reader.take(1024).read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16).map_err(|_bad| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut trailer = Vec::new();
                if self.reader.take(1024).read_until(b'\n', &mut trailer)? == 0
                    || trailer.trim_ascii().is_empty()
                {
                    break;
                }
            }
            self.done = true;
            return Ok(false);
        }
        self.left = size;
        Ok(true)
    }
}

impl<R: BufRead> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.length {
            Length::UntilClose => self.reader.read(buf),
            Length::Known(_) => {
                if self.left == 0 {
                    return Ok(0);
                }
                self.read_left(buf, "the body ended early")
            }
            Length::Chunked => {
                if self.done {
                    return Ok(0);
                }
                if self.left == 0 && !self.next_chunk()? {
                    return Ok(0);
                }
                let read = self.read_left(buf, "a chunk ended early")?;
                if self.left == 0 {
                    let mut end = [0u8; 2];
                    self.reader.read_exact(&mut end)?;
                    if &end != b"\r\n" {
                        return Err(invalid("a chunk without its line end"));
                    }
                }
                Ok(read)
            }
        }
    }
}

/// Writes a response: JSON when `json` is given, else an empty body.
pub fn write_response(writer: &mut impl Write, status: u16, json: Option<&[u8]>) -> io::Result<()> {
    let body = json.unwrap_or_default();
    let kind = if json.is_some() { "Content-Type: application/json\r\n" } else { "" };
    write!(
        writer,
        "HTTP/1.1 {status} {}\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )?;
    writer.write_all(body)?;
    writer.flush()
}

/// Writes a request head for a body of `length` bytes.
pub fn write_request_head(
    writer: &mut impl Write,
    method: &str,
    host: &str,
    target: &str,
    content_type: &str,
    length: u64,
) -> io::Result<()> {
    write!(
        writer,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

fn invalid(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_a_query_and_a_chunked_body_reads_whole() {
        let wire =
            b"\r\nPOST /api/localsend/v2/upload?sessionId=s%201&fileId=a+b&token=t HTTP/1.1\r\nHost: x\r\n\
            Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        let mut reader = io::BufReader::new(&wire[..]);
        let request = read_request(&mut reader).unwrap();
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/localsend/v2/upload"));
        assert_eq!(request.query["sessionId"], "s 1");
        assert_eq!(request.query["fileId"], "a b");
        assert_eq!(request.length, Length::Chunked);
        let body = Body::new(&mut reader, request.length).read_limited(100).unwrap();
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn bodies_over_their_limit_and_heads_over_theirs_are_refused() {
        let wire = b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
        let mut reader = io::BufReader::new(&wire[..]);
        let request = read_request(&mut reader).unwrap();
        assert!(Body::new(&mut reader, request.length).read_limited(9).is_err());
        let chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n";
        let mut reader = io::BufReader::new(&chunked[..]);
        let request = read_request(&mut reader).unwrap();
        assert!(Body::new(&mut reader, request.length).read_limited(9).is_err());
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD], b"\r\n\r\n"].concat();
        assert!(read_request(&mut io::BufReader::new(&huge[..])).is_err());
        let short = b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123";
        let mut reader = io::BufReader::new(&short[..]);
        let request = read_request(&mut reader).unwrap();
        assert!(Body::new(&mut reader, request.length).read_limited(100).is_err(), "short bodies are errors");
    }

    #[test]
    fn responses_read_back_and_values_encode() {
        let mut wire = Vec::new();
        write_response(&mut wire, 200, Some(br#"{"a":1}"#)).unwrap();
        let mut reader = io::BufReader::new(&wire[..]);
        let (status, length) = read_response(&mut reader).unwrap();
        assert_eq!((status, length), (200, Length::Known(7)));
        assert_eq!(Body::new(&mut reader, length).read_limited(100).unwrap(), br#"{"a":1}"#);
        let mut empty = Vec::new();
        write_response(&mut empty, 204, None).unwrap();
        assert_eq!(read_response(&mut io::BufReader::new(&empty[..])).unwrap(), (204, Length::Known(0)));
        assert_eq!(percent_decode(&percent_encode("a b/ç%")), "a b/ç%");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
