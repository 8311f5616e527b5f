//! File offers, the frame whose names end up on disk: whatever decodes has names that
//! either are refused or clean to components that cannot leave the download folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::frame::{self, Frame, Header, KIND_OFFER};
use pigeon::protocol::names::sanitize_path;

fuzz_target!(|payload: &[u8]| {
    let Ok(len) = u32::try_from(payload.len()) else { return };
    let mut bytes = frame::encode_header(Header { kind: KIND_OFFER, len: len as usize }).to_vec();
    bytes.extend_from_slice(payload);
    let Ok(Some((Frame::Offer(offer), _))) = frame::decode(&bytes) else { return };
    for entry in &offer.entries {
        let Ok(components) = sanitize_path(&entry.path) else { continue };
        for component in components {
            assert!(!component.is_empty() && component != "." && component != "..", "{component:?}");
            assert!(
                !component.contains(['/', '\\']) && !component.chars().any(char::is_control),
                "{component:?}"
            );
        }
    }
});
