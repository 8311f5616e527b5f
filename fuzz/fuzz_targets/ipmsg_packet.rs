//! IP Messenger datagrams and everything read out of them (presence extras, text in either
//! charset, attachment lists, file requests): nothing panics, and packets round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon::protocol::ipmsg::attach::{parse_attachments, parse_request};
use pigeon::protocol::ipmsg::entry::Entry;
use pigeon::protocol::ipmsg::{Packet, opt, text};

fuzz_target!(|bytes: &[u8]| {
    let Ok(packet) = Packet::decode(bytes) else { return };
    let again = Packet::decode(&packet.encode()).expect("our own encoding decodes");
    assert_eq!(again, packet);
    let utf8 = packet.has(opt::UTF8OPT);
    Entry::decode(&packet.extra, utf8);
    let (body, attachments) = match packet.extra.iter().position(|&b| b == 0) {
        Some(nul) => packet.extra.split_at(nul),
        None => (packet.extra.as_slice(), &[][..]),
    };
    text::decode(body, utf8);
    parse_attachments(attachments.get(1..).unwrap_or_default()).ok();
    parse_request(&packet.extra);
});
