//! The record stream an IP Messenger peer sends for a folder, read record by record as
//! the download does: length prefix, header, then the file bytes that follow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::ipmsg::attach::{AttachKind, parse_dir_header, parse_dir_header_len};

fuzz_target!(|stream: &[u8]| {
    let mut rest = stream;
    while let Some(colon) = rest.iter().take(9).position(|&b| b == b':') {
        let Ok(len) = parse_dir_header_len(rest.get(..colon).unwrap_or_default()) else { return };
        let Some(header) = rest.get(colon + 1..len) else { return };
        let Ok(record) = parse_dir_header(header) else { return };
        let body = if record.kind == AttachKind::File {
            usize::try_from(record.size).unwrap_or(usize::MAX)
        } else {
            0
        };
        let Some(next) = rest.get(len..).and_then(|after| after.get(body..)) else { return };
        rest = next;
    }
});
