//! Encrypted records: what flows on a connection after the handshake.
//!
//! Each record is a 2-byte big-endian length and one Noise transport message (ciphertext and
//! a 16-byte tag) of at most 65,535 bytes, the Noise limit. The nonce is not sent: it is the
//! record's position in its direction, so a replayed, reordered or dropped record fails to
//! decrypt and ends the connection.
//!
//! The writer seals large writes straight from the caller's buffer and the reader opens
//! records straight into the caller's buffer when it is big enough, so file data is copied
//! no more often than without encryption, and nothing is allocated per record.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::Session;

/// Bytes of the length prefix.
const LEN_BYTES: usize = 2;

/// Bytes of the AEAD tag at the end of each record.
const TAG_BYTES: usize = 16;

/// Largest Noise message, hence largest record body.
pub const MAX_RECORD: usize = 65_535;

/// Plaintext bytes in a full record.
pub const RECORD_PLAINTEXT: usize = MAX_RECORD - TAG_BYTES;

/// Sealed bytes the writer collects before handing them to the socket, so that small frames
/// cost one system call per batch rather than per record.
const WRITE_BATCH: usize = 256 * 1024;

/// Bytes asked of the socket per read.
const READ_BATCH: usize = 256 * 1024;

fn crypto_error(what: &str, err: &snow::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {err}"))
}

/// Encrypts everything written to it. Call `flush` to push out a partial record.
///
/// Socket timeouts pass through as errors without losing anything: a later call continues
/// where the failed one stopped.
pub struct SecureWriter<W> {
    inner: W,
    session: Arc<Session>,
    /// Plaintext of the record being filled.
    plain: Vec<u8>,
    /// Sealed records waiting for the socket; `sealed[sent..]` is still to go.
    sealed: Vec<u8>,
    sent: usize,
}

impl<W: Write> SecureWriter<W> {
    /// Encrypts onto `inner` with `session`'s outgoing keys.
    pub fn new(inner: W, session: Arc<Session>) -> Self {
        SecureWriter {
            inner,
            session,
            plain: Vec::with_capacity(RECORD_PLAINTEXT),
            sealed: Vec::with_capacity(WRITE_BATCH + LEN_BYTES + MAX_RECORD),
            sent: 0,
        }
    }

    /// Appends one sealed record for `plaintext` (at most [`RECORD_PLAINTEXT`] bytes).
    fn seal(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let start = self.sealed.len();
        self.sealed.resize(start + LEN_BYTES + plaintext.len() + TAG_BYTES, 0);
        let body = self.sealed.get_mut(start + LEN_BYTES..).unwrap_or_default();
        let len =
            self.session.seal(plaintext, body).map_err(|err| crypto_error("encryption failed", &err))?;
        let prefix = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        if let Some(slot) = self.sealed.get_mut(start..start + LEN_BYTES) {
            slot.copy_from_slice(&prefix);
        }
        self.sealed.truncate(start + LEN_BYTES + len);
        Ok(())
    }

    fn seal_plain(&mut self) -> io::Result<()> {
        if self.plain.is_empty() {
            return Ok(());
        }
        let plain = std::mem::take(&mut self.plain);
        let sealed = self.seal(&plain);
        self.plain = plain;
        self.plain.clear();
        sealed
    }

    /// Hands sealed bytes to the socket until none are left.
    fn drain(&mut self) -> io::Result<()> {
        while let Some(rest) = self.sealed.get(self.sent..).filter(|rest| !rest.is_empty()) {
            match self.inner.write(rest)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => self.sent += n,
            }
        }
        self.sealed.clear();
        self.sent = 0;
        Ok(())
    }
}

impl<W: Write> Write for SecureWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.sealed.len() >= WRITE_BATCH {
            self.drain()?;
        }
        if self.plain.is_empty() && buf.len() >= RECORD_PLAINTEXT {
            self.seal(buf.get(..RECORD_PLAINTEXT).unwrap_or_default())?;
            return Ok(RECORD_PLAINTEXT);
        }
        let take = buf.len().min(RECORD_PLAINTEXT - self.plain.len());
        self.plain.extend_from_slice(buf.get(..take).unwrap_or_default());
        if self.plain.len() == RECORD_PLAINTEXT {
            self.seal_plain()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.seal_plain()?;
        self.drain()?;
        self.inner.flush()
    }
}

/// Decrypts what arrives on `inner`. Returns end of stream only at a record boundary.
pub struct SecureReader<R> {
    inner: R,
    session: Arc<Session>,
    /// Ciphertext received; `sealed[start..]` is not yet opened.
    sealed: Vec<u8>,
    start: usize,
    /// The opened record being handed out; `plain[taken..]` is left.
    plain: Vec<u8>,
    taken: usize,
}

impl<R: Read> SecureReader<R> {
    /// Decrypts from `inner` with `session`'s incoming keys.
    pub fn new(inner: R, session: Arc<Session>) -> Self {
        SecureReader {
            inner,
            session,
            sealed: Vec::with_capacity(READ_BATCH),
            start: 0,
            plain: Vec::with_capacity(MAX_RECORD),
            taken: 0,
        }
    }

    /// Whether every byte received has been handed out: nothing is lost if the socket is now
    /// read by someone else.
    pub fn is_drained(&self) -> bool {
        self.taken == self.plain.len() && self.start == self.sealed.len()
    }

    /// The length of the complete record at the front of the buffer, if there is one.
    fn complete_record(&self) -> io::Result<Option<usize>> {
        let pending = self.sealed.get(self.start..).unwrap_or_default();
        let Some(&[high, low]) = pending.get(..LEN_BYTES) else { return Ok(None) };
        let len = usize::from(u16::from_be_bytes([high, low]));
        // The writer never sends an empty record; one would read as end of stream.
        if len <= TAG_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("record of {len} bytes")));
        }
        Ok((pending.len() >= LEN_BYTES + len).then_some(len))
    }

    /// Reads more ciphertext; `false` at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        // What is left is less than one record, so moving it to the front is cheap.
        self.sealed.drain(..self.start);
        self.start = 0;
        let filled = self.sealed.len();
        self.sealed.resize(filled + READ_BATCH, 0);
        let read = self.inner.read(self.sealed.get_mut(filled..).unwrap_or_default());
        self.sealed.truncate(filled + *read.as_ref().unwrap_or(&0));
        Ok(read? > 0)
    }
}

impl<R: Read> Read for SecureReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.taken == self.plain.len() {
            let len = loop {
                if let Some(len) = self.complete_record()? {
                    break len;
                }
                if !self.fill()? {
                    if self.start == self.sealed.len() {
                        return Ok(0);
                    }
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-record"));
                }
            };
            let body = self.start + LEN_BYTES..self.start + LEN_BYTES + len;
            self.start = body.end;
            let ciphertext = self.sealed.get(body).unwrap_or_default();
            let opened = |err| crypto_error("decryption failed (altered, replayed or reordered data)", &err);
            if out.len() >= len {
                // Big reads (file chunks) get the plaintext without a detour; the cipher
                // needs room for the tag while it works.
                return self.session.open(ciphertext, out).map_err(opened);
            }
            self.plain.resize(len, 0);
            let n = self.session.open(ciphertext, &mut self.plain).map_err(opened)?;
            self.plain.truncate(n);
            self.taken = 0;
        }
        let rest = self.plain.get(self.taken..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out.get_mut(..n).unwrap_or_default().copy_from_slice(rest.get(..n).unwrap_or_default());
        self.taken += n;
        Ok(n)
    }
}
