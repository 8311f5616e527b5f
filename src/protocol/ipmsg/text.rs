//! Text encodings of IP Messenger peers. iptux and IP Messenger for Windows take UTF-8;
//! FeiQ (飞秋) speaks GBK/GB18030 only; nothing marks which is which except the `UTF8OPT`
//! flag (rarely set) and the client's version string. So received text is decoded with a
//! fallback chain — UTF-8 when flagged or valid, else GB18030 — and text to a peer is encoded
//! in one encoding chosen per peer and kept (iptux mangles a peer whose encoding flips).

use encoding_rs::GB18030;

/// How text to and from one peer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// UTF-8 (iptux, IP Messenger for Windows 3+, Pigeon).
    #[default]
    Utf8,
    /// GB18030, a superset of GBK (FeiQ and older Chinese clients).
    Gb18030,
}

/// Whether a version string is FeiQ's (`1_lbt6_0#128#…`), which only speaks GBK.
pub fn is_feiq(version: &[u8]) -> bool {
    version.windows(4).any(|w| w == b"_lbt")
}

/// The charset to use with a client, judged from its version string.
pub fn charset_for(version: &[u8]) -> Charset {
    if is_feiq(version) { Charset::Gb18030 } else { Charset::Utf8 }
}

/// Decodes received text: UTF-8 when the packet says so or the bytes are valid UTF-8,
/// otherwise GB18030 (which maps every byte sequence, so nothing is lost); returns the
/// charset that was used.
pub fn decode(bytes: &[u8], flagged_utf8: bool) -> (String, Charset) {
    if flagged_utf8 {
        return (String::from_utf8_lossy(bytes).into_owned(), Charset::Utf8);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), Charset::Utf8),
        Err(_) => {
            let (text, _, _) = GB18030.decode(bytes);
            (text.into_owned(), Charset::Gb18030)
        }
    }
}

/// Encodes text for a peer.
pub fn encode(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 => text.as_bytes().to_vec(),
        // GB18030 covers all of Unicode, so nothing is replaced.
        Charset::Gb18030 => GB18030.encode(text).0.into_owned(),
    }
}

/// FeiQ appends its font settings to a message as `{…}`; people should not see them.
pub fn strip_feiq_format(text: &str) -> &str {
    match (text.rfind('{'), text.ends_with('}')) {
        (Some(start), true) => &text[..start],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_decodes_through_the_fallback_chain() {
        let gbk = encode("你好，世界", Charset::Gb18030);
        assert_eq!(gbk, [0xc4, 0xe3, 0xba, 0xc3, 0xa3, 0xac, 0xca, 0xc0, 0xbd, 0xe7]);
        assert_eq!(decode(&gbk, false), ("你好，世界".to_owned(), Charset::Gb18030));
        assert_eq!(decode("你好".as_bytes(), false), ("你好".to_owned(), Charset::Utf8));
        assert_eq!(decode(b"plain", false), ("plain".to_owned(), Charset::Utf8));
        // Flagged UTF-8 that is not: shown with replacement characters, never dropped.
        assert_eq!(decode(&[0x61, 0xff], true).0, "a\u{fffd}");
        // Every byte sequence decodes to something.
        assert!(!decode(&[0x81, 0xff, 0x00, 0x80], false).0.is_empty());
        assert_eq!(encode("emoji 😀 survives", Charset::Gb18030).len(), 6 + 4 + 9);
    }

    #[test]
    fn clients_are_told_apart_by_version() {
        assert!(is_feiq(b"1_lbt6_0#128#74E6E2152F9D#0#0#0#4001#9"));
        assert_eq!(charset_for(b"1_lbt4_10#32899#002481627512#0#0#0"), Charset::Gb18030);
        assert_eq!(charset_for(b"1_iptux 0.8.3"), Charset::Utf8);
        assert_eq!(strip_feiq_format("你好{/font;-12;0;0;0;400;0;0;0;134;宋体}"), "你好");
        assert_eq!(strip_feiq_format("a {b} c"), "a {b} c");
    }
}
