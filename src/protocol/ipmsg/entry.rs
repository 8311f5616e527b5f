//! The extra of presence packets (`BR_ENTRY`, `ANSENTRY`, `BR_ABSENCE`): `nick \0 group`,
//! then optionally IP Messenger's UTF-8 names (`\0\nUN:user\nHN:host\nNN:nick\nGN:group`) or
//! iptux's `\0 icon \0 encoding`.

use super::text::{self, Charset};

/// What a presence packet says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Display name (the login name when the nick is empty).
    pub nick: String,
    /// Group, possibly empty.
    pub group: String,
    /// The encoding the sender declared (iptux) or used for its names.
    pub charset: Charset,
}

impl Entry {
    /// Reads the extra of a presence packet; `flagged_utf8` is the packet's `UTF8OPT`.
    pub fn decode(extra: &[u8], flagged_utf8: bool) -> Entry {
        let mut fields = extra.split(|&b| b == 0);
        let nick = fields.next().unwrap_or_default();
        let group = fields.next().unwrap_or_default();
        let rest: Vec<&[u8]> = fields.collect();
        // IP Messenger's UTF-8 names, when present, win over the legacy ones.
        let utf8_field = |key: &[u8]| {
            rest.iter().flat_map(|field| field.split(|&b| b == b'\n')).find_map(|line| {
                line.strip_prefix(key).and_then(|value| std::str::from_utf8(value).ok()).map(str::to_owned)
            })
        };
        let declared = match rest.get(1).copied() {
            Some(encoding) if encoding.eq_ignore_ascii_case(b"utf-8") => Some(Charset::Utf8),
            Some(encoding)
                if encoding.eq_ignore_ascii_case(b"gb18030") || encoding.eq_ignore_ascii_case(b"gbk") =>
            {
                Some(Charset::Gb18030)
            }
            _ => None,
        };
        let (legacy_nick, used) = text::decode(nick, flagged_utf8);
        let (legacy_group, group_used) = text::decode(group, flagged_utf8);
        let charset = declared.unwrap_or(if group_used == Charset::Gb18030 { group_used } else { used });
        Entry {
            nick: utf8_field(b"NN:").unwrap_or(legacy_nick),
            group: utf8_field(b"GN:").unwrap_or(legacy_group),
            charset,
        }
    }

    /// Our presence extra: names in UTF-8 (which iptux and FeiQ's UTF-8 check accept), and
    /// IP Messenger's UTF-8 name fields for clients that read them. Deliberately not iptux's
    /// `icon \0 encoding` form, which would promise iptux's own extensions.
    pub fn encode(nick: &str, group: &str, user: &str, host: &str) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(nick.as_bytes());
        out.push(0);
        out.extend_from_slice(group.as_bytes());
        out.push(0);
        out.extend_from_slice(format!("\nUN:{user}\nHN:{host}\nNN:{nick}\nGN:{group}").as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn our_entries_round_trip(nick in "[^\\x00\\n]{0,30}", group in "[^\\x00\\n]{0,30}", user in "[a-z]{1,8}", host in "[a-z-]{1,12}") {
            let entry = Entry::decode(&Entry::encode(&nick, &group, &user, &host), true);
            prop_assert_eq!((entry.nick, entry.group, entry.charset), (nick, group, Charset::Utf8));
        }
    }

    #[test]
    fn iptux_ipmsg_and_feiq_entries_decode() {
        let iptux = Entry::decode(b"iptux-A\0grpA\0icon-tux.png\0utf-8", false);
        assert_eq!(
            (iptux.nick.as_str(), iptux.group.as_str(), iptux.charset),
            ("iptux-A", "grpA", Charset::Utf8)
        );
        let ipmsg =
            Entry::decode(b"\x93\x63\x92\x86\0\0\nUN:tanaka\nHN:pc\nNN:\xe7\x94\xb0\xe4\xb8\xad\nGN:", false);
        assert_eq!(ipmsg.nick, "田中");
        let feiq_nick = text::encode("张三", Charset::Gb18030);
        let feiq = Entry::decode(
            &[feiq_nick.as_slice(), b"\0", &text::encode("研发部", Charset::Gb18030)].concat(),
            false,
        );
        assert_eq!(
            (feiq.nick.as_str(), feiq.group.as_str(), feiq.charset),
            ("张三", "研发部", Charset::Gb18030)
        );
        let bare = Entry::decode(b"", false);
        assert_eq!((bare.nick.as_str(), bare.group.as_str()), ("", ""));
    }

    #[test]
    fn our_entry_reads_back_and_does_not_claim_iptux_extensions() {
        let extra = Entry::encode("安娜", "研发", "ana", "ana-pc");
        let entry = Entry::decode(&extra, false);
        assert_eq!((entry.nick.as_str(), entry.group.as_str()), ("安娜", "研发"));
        // iptux calls a peer compatible when the fourth NUL-separated field is non-empty.
        assert!(extra.split(|&b| b == 0).nth(3).is_none_or(<[u8]>::is_empty));
    }
}
