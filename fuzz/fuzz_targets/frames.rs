//! A TCP byte stream read frame by frame, as a connection's reader does: decoding never
//! panics, never claims more bytes than it was given, and every frame round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::frame;

fuzz_target!(|stream: &[u8]| {
    let mut rest = stream;
    while let Ok(Some((decoded, used))) = frame::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        let encoded = decoded.encode();
        let (again, again_used) = frame::decode(&encoded).expect("our own encoding decodes").expect("whole");
        assert_eq!(again, decoded);
        assert_eq!(again_used, encoded.len());
        rest = rest.get(used..).unwrap_or_default();
    }
});
