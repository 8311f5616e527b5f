//! Handshake and record tests on Unix socket pairs: no network involved.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::protocol::PROTOCOL_VERSION;

fn spawn<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new().name("secure-test".into()).spawn(body).unwrap()
}

fn identity(n: u8) -> Identity {
    Identity::from_private([n; 32])
}

/// Both ends of a finished handshake: (initiator side, responder side).
fn pair() -> ((UnixStream, Arc<Session>), (UnixStream, Arc<Session>)) {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    for end in [&a, &b] {
        end.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let responder = spawn(move || {
        let session = handshake(&mut b, &identity(2), Role::Responder).unwrap();
        (b, Arc::new(session))
    });
    let session = handshake(&mut a, &identity(1), Role::Initiator).unwrap();
    ((a, Arc::new(session)), responder.join().unwrap())
}

/// What the writer puts on the wire for `writes`, each followed by a flush.
fn sealed(session: &Arc<Session>, writes: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut writer = SecureWriter::new(&mut wire, session.clone());
    for bytes in writes {
        writer.write_all(bytes).unwrap();
        writer.flush().unwrap();
    }
    drop(writer);
    wire
}

fn read_to_end(session: &Arc<Session>, wire: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    SecureReader::new(wire, session.clone()).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn both_ends_learn_the_other_key_and_data_flows_both_ways() {
    let ((mut a, a_session), (b, b_session)) = pair();
    assert_eq!(a_session.remote(), identity(2).public());
    assert_eq!(b_session.remote(), identity(1).public());

    // Sizes around the record boundary, one large write spanning many records, and tiny ones.
    let big: Vec<u8> =
        (0..3 * record::RECORD_PLAINTEXT + 17).map(|i| u8::try_from(i % 251).unwrap()).collect();
    let pieces: Vec<Vec<u8>> = vec![
        b"x".to_vec(),
        vec![7; record::RECORD_PLAINTEXT - 1],
        vec![8; record::RECORD_PLAINTEXT + 1],
        big,
    ];
    let expected: Vec<u8> = pieces.concat();
    let reader = spawn(move || {
        let mut got = vec![0u8; expected.len()];
        SecureReader::new(&b, b_session).read_exact(&mut got).unwrap();
        assert!(got == expected, "plaintext differs");
    });
    let mut writer = SecureWriter::new(&mut a, a_session);
    for piece in &pieces {
        writer.write_all(piece).unwrap();
    }
    writer.flush().unwrap();
    reader.join().unwrap();
}

#[test]
fn ciphertext_does_not_contain_the_plaintext() {
    let ((_a, a_session), (_b, b_session)) = pair();
    let wire = sealed(&a_session, &[b"meet me at the secret place"]);
    assert!(!wire.windows(6).any(|w| w == b"secret"));
    assert_eq!(read_to_end(&b_session, &wire).unwrap(), b"meet me at the secret place");
}

/// Seals two records ("one", "two") on a fresh session, arranges them with `arrange`, and
/// returns what the receiving end makes of the result.
fn receive_arranged(arrange: impl FnOnce(Vec<u8>, Vec<u8>) -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    let ((_a, sender), (_b, receiver)) = pair();
    let first = sealed(&sender, &[b"one"]);
    let second = sealed(&sender, &[b"two"]);
    read_to_end(&receiver, &arrange(first, second))
}

#[test]
fn replayed_reordered_altered_and_dropped_records_are_refused() {
    assert_eq!(receive_arranged(|one, two| [one, two].concat()).unwrap(), b"onetwo");
    type Arrange = fn(Vec<u8>, Vec<u8>) -> Vec<u8>;
    let cases: [(&str, Arrange); 4] = [
        ("replayed", |one, _| [one.clone(), one].concat()),
        ("reordered", |one, two| [two, one].concat()),
        ("dropped", |_, two| two),
        ("altered", |one, two| {
            let mut wire = [one, two].concat();
            *wire.last_mut().unwrap() ^= 1;
            wire
        }),
    ];
    for (what, arrange) in cases {
        let err = receive_arranged(arrange).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{what}: {err}");
    }
}

#[test]
fn a_stream_cut_inside_a_record_is_an_error_and_one_cut_between_records_is_the_end() {
    let ((_a, sender), (_b, receiver)) = pair();
    let wire = sealed(&sender, &[b"whole"]);
    let err = read_to_end(&receiver, &wire[..wire.len() - 1]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    let ((_a, sender), (_b, receiver)) = pair();
    assert_eq!(read_to_end(&receiver, &sealed(&sender, &[b"whole"])).unwrap(), b"whole");
}

#[test]
fn undersized_records_are_refused() {
    let ((_a, _sender), (_b, receiver)) = pair();
    // A record shorter than its tag cannot be genuine; an empty one would read as the end.
    for len in [0u16, 16] {
        let mut wire = len.to_be_bytes().to_vec();
        wire.resize(2 + usize::from(len), 0);
        let err = read_to_end(&receiver, &wire).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "length {len}");
    }
}

/// Runs a responder against `initiator_bytes` (what a misbehaving initiator sends before it
/// hangs up) and returns its verdict.
fn respond_to(initiator_bytes: &[u8]) -> HandshakeError {
    let (mut ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    theirs.write_all(initiator_bytes).unwrap();
    theirs.shutdown(std::net::Shutdown::Write).unwrap();
    handshake(&mut ours, &identity(2), Role::Responder).unwrap_err()
}

#[test]
fn foreign_old_truncated_and_oversized_handshakes_fail_with_a_reason() {
    assert!(matches!(respond_to(b"GET / HTTP/1.1\r\n"), HandshakeError::NotPigeon));
    assert!(matches!(respond_to(b"PGNS\x01"), HandshakeError::Version(1)));
    let preamble = [&handshake::PREAMBLE_MAGIC[..], &[PROTOCOL_VERSION]].concat();
    // The preamble, then a message announced as 32 bytes that stops after 10.
    let truncated = [&preamble[..], &[0, 32], &[0xaa; 10]].concat();
    assert!(matches!(respond_to(&truncated), HandshakeError::Io(_)));
    let oversized = [&preamble[..], &[0xff, 0xff]].concat();
    assert!(matches!(respond_to(&oversized), HandshakeError::TooLarge(65535)));
    for err in [respond_to(b"nonsense"), respond_to(&oversized)] {
        assert!(err.is_misbehaviour());
    }
    assert!(!respond_to(&truncated).is_misbehaviour());
}

#[test]
fn a_man_in_the_middle_who_alters_a_handshake_message_is_detected() {
    // Relay the handshake between two honest ends, flipping one bit of the second message.
    let (mut a, mut a_relay) = UnixStream::pair().unwrap();
    let (mut b_relay, mut b) = UnixStream::pair().unwrap();
    for end in [&a, &a_relay, &b_relay, &b] {
        end.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let responder = spawn(move || handshake(&mut b, &identity(2), Role::Responder).map(|_| ()));
    let relay = spawn(move || {
        let mut first = [0u8; 5 + 2 + 32];
        a_relay.read_exact(&mut first).unwrap();
        b_relay.write_all(&first).unwrap();
        let mut second = [0u8; 2 + 96];
        b_relay.read_exact(&mut second).unwrap();
        second[50] ^= 1;
        a_relay.write_all(&second).unwrap();
    });
    let initiator = handshake(&mut a, &identity(1), Role::Initiator);
    relay.join().unwrap();
    assert!(matches!(initiator, Err(HandshakeError::Noise(_))), "{initiator:?}");
    drop(a);
    assert!(responder.join().unwrap().is_err());
}
