//! UDP discovery datagrams: decoding never panics, and whatever decodes re-encodes to a
//! datagram that decodes to the same thing. Random bytes almost never carry a valid
//! signature, so each input is also tried signed by a fixed key: the body's parser and the
//! checks after it see every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::announce::{Datagram, SIGNING_CONTEXT};
use pigeon::protocol::keys::Signer;
use pigeon::secure::Identity;

fuzz_target!(|bytes: &[u8]| {
    Datagram::decode(bytes).ok();
    let identity = Identity::from_private([7; 32]);
    let mut signed = bytes.to_vec();
    signed.extend_from_slice(&identity.sign(&[SIGNING_CONTEXT, bytes].concat()));
    if let Ok(datagram) = Datagram::decode(&signed) {
        let again = Datagram::decode(&datagram.encode(&identity)).expect("our own encoding decodes");
        assert_eq!(again, datagram);
    }
});
