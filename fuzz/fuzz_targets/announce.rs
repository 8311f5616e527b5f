//! UDP discovery datagrams: decoding never panics, and whatever decodes re-encodes to a
//! datagram that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::announce::Datagram;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(datagram) = Datagram::decode(bytes) {
        let again = Datagram::decode(&datagram.encode()).expect("our own encoding decodes");
        assert_eq!(again, datagram);
    }
});
