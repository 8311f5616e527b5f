//! The IP Messenger protocol (IP Messenger, FeiQ 飞秋, iptux): one text packet per UDP
//! datagram, `version:packetNo:user:host:command:extra`, as pure functions over bytes.
//!
//! The header is split on bytes, never on decoded text: `extra` may hold NULs, binary data
//! (iptux's icons) and text in any of several encodings (see `text.rs`). Constants and
//! quirks follow the notes in `shared/ipmsg/PROTOCOL.md` (sections 2–7), which were checked
//! against a real iptux 0.8.3.

pub mod attach;
pub mod entry;
pub mod text;

use super::error::DecodeError;

/// The port every IP Messenger client uses, for UDP and TCP.
pub const IPMSG_PORT: u16 = 2425;

/// Largest datagram we send: iptux reads at most 8 KiB.
pub const MAX_SEND: usize = 8 * 1024;

/// Largest datagram we accept (IP Messenger for Windows sends up to 32 KiB).
pub const MAX_RECEIVE: usize = 64 * 1024;

/// Longest version, user or host field we keep.
const MAX_FIELD: usize = 256;

/// Command modes: the low 8 bits of the command.
pub mod mode {
    /// Announce at start-up (broadcast).
    pub const BR_ENTRY: u32 = 0x01;
    /// Goodbye.
    pub const BR_EXIT: u32 = 0x02;
    /// Answer to `BR_ENTRY` (unicast).
    pub const ANSENTRY: u32 = 0x03;
    /// Absence or name change.
    pub const BR_ABSENCE: u32 = 0x04;
    /// A message (and with `FILEATTACHOPT`, a file offer).
    pub const SENDMSG: u32 = 0x20;
    /// Acknowledgement; extra is the decimal packet number acknowledged.
    pub const RECVMSG: u32 = 0x21;
}

/// Option flags: the high 24 bits of the command.
pub mod opt {
    /// On entry packets: the user is absent.
    pub const ABSENCEOPT: u32 = 0x0000_0100;
    /// On messages: please answer with `RECVMSG`.
    pub const SENDCHECKOPT: u32 = 0x0000_0100;
    /// A broadcast message: no acknowledgement expected.
    pub const BROADCASTOPT: u32 = 0x0000_0400;
    /// An automatic reply: never answer it (no ping-pong).
    pub const AUTORETOPT: u32 = 0x0000_2000;
    /// The sender cannot be reached by broadcast.
    pub const DIALUPOPT: u32 = 0x0001_0000;
    /// On messages: an attachment list follows; on entry packets: attachments supported.
    pub const FILEATTACHOPT: u32 = 0x0020_0000;
    /// This packet's text is UTF-8.
    pub const UTF8OPT: u32 = 0x0080_0000;
    /// On entry packets: the sender can take UTF-8.
    pub const CAPUTF8OPT: u32 = 0x0100_0000;
}

/// The low 8 bits of a command.
pub fn mode_of(command: u32) -> u32 {
    command & 0xff
}

/// One IP Messenger packet. Text fields stay bytes: their encoding is decided per peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// `1`, `1_iptux 0.8.3`, `1_lbt6_0#128#…` (FeiQ): tells clients apart; not a number.
    pub version: Vec<u8>,
    /// Chosen by the sender, increasing; acknowledgements echo it.
    pub packet_no: u32,
    /// The sender's login name.
    pub user: Vec<u8>,
    /// The sender's host name.
    pub host: Vec<u8>,
    /// Mode (low 8 bits) and option flags.
    pub command: u32,
    /// Everything after the fifth ':', without the terminating NUL.
    pub extra: Vec<u8>,
}

impl Packet {
    /// The mode of the command.
    pub fn mode(&self) -> u32 {
        mode_of(self.command)
    }

    /// Whether the command has every bit of `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.command & flag == flag
    }

    /// Reads a datagram: five ':'-separated header fields, then the extra.
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        if bytes.len() > MAX_RECEIVE {
            return Err(DecodeError::TooLarge {
                what: "IP Messenger packet",
                len: bytes.len(),
                max: MAX_RECEIVE,
            });
        }
        let mut fields = bytes.splitn(6, |&b| b == b':');
        let mut next = |name| fields.next().ok_or(DecodeError::InvalidField(name));
        let version = next("version")?;
        let packet_no = next("packet number")?;
        let user = next("user")?;
        let host = next("host")?;
        let command = next("command")?;
        let extra = next("extra")?;
        if !version.starts_with(b"1") {
            return Err(DecodeError::InvalidField("version"));
        }
        for (field, name) in [(version, "version"), (user, "user"), (host, "host")] {
            if field.len() > MAX_FIELD {
                return Err(DecodeError::TooLarge { what: name, len: field.len(), max: MAX_FIELD });
            }
        }
        // Everyone ends a packet with one NUL; accept it missing.
        let extra = extra.strip_suffix(&[0]).unwrap_or(extra);
        Ok(Packet {
            version: version.to_vec(),
            packet_no: decimal(packet_no).ok_or(DecodeError::InvalidField("packet number"))?,
            user: user.to_vec(),
            host: host.to_vec(),
            command: decimal(command).ok_or(DecodeError::InvalidField("command"))?,
            extra: extra.to_vec(),
        })
    }

    /// The datagram, NUL-terminated as every client sends it. ':' in user and host become ';'
    /// (as IP Messenger for Windows does), since ':' separates the fields.
    pub fn encode(&self) -> Vec<u8> {
        let colon_free =
            |field: &[u8]| field.iter().map(|&b| if b == b':' { b';' } else { b }).collect::<Vec<_>>();
        let mut out = Vec::with_capacity(64 + self.extra.len());
        out.extend_from_slice(&colon_free(&self.version));
        out.push(b':');
        out.extend_from_slice(self.packet_no.to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(&colon_free(&self.user));
        out.push(b':');
        out.extend_from_slice(&colon_free(&self.host));
        out.push(b':');
        out.extend_from_slice(self.command.to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(&self.extra);
        out.push(0);
        out
    }
}

/// A decimal u32 as IP Messenger writes them (no sign, no spaces).
pub fn decimal(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header_field() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("field separator", |b| *b != b':'), 0..MAX_FIELD)
    }

    proptest! {
        #[test]
        fn packets_round_trip(
            version in header_field(),
            packet_no in any::<u32>(),
            user in header_field(),
            host in header_field(),
            command in any::<u32>(),
            extra in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut version = version;
            version.insert(0, b'1');
            version.truncate(MAX_FIELD);
            let packet = Packet { version, packet_no, user, host, command, extra };
            prop_assert_eq!(Packet::decode(&packet.encode()).unwrap(), packet);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            // Only a panic would fail this property; any result is fine.
            Packet::decode(&bytes).ok();
        }
    }

    /// Packets recorded from iptux 0.8.3 (PROTOCOL.md section 12), as hex.
    const IPTUX_BR_ENTRY: &str = "315f697074757820302e382e333a313a726f6f743a69707475782d613a3235373a69707475782d4100677270410069636f6e2d7475782e706e67007574662d3800";
    const IPTUX_RECVMSG: &str =
        "315f697074757820302e382e333a31323a726f6f743a69707475782d613a3238393a323038323230343400";
    const IPTUX_SENDMSG: &str =
        "315f697074757820302e382e333a33303a726f6f743a69707475782d613a3238383a747970656420696e20697074757800";
    const IPTUX_BR_EXIT: &str = "315f697074757820302e382e333a33343a726f6f743a69707475782d613a36353533383a00";

    pub(crate) fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn recorded_iptux_packets_decode_and_encode_back_byte_for_byte() {
        let entry = Packet::decode(&unhex(IPTUX_BR_ENTRY)).unwrap();
        assert_eq!(entry.version, b"1_iptux 0.8.3");
        assert_eq!((entry.packet_no, entry.mode()), (1, mode::BR_ENTRY));
        assert!(entry.has(opt::ABSENCEOPT));
        assert_eq!((entry.user.as_slice(), entry.host.as_slice()), (&b"root"[..], &b"iptux-a"[..]));
        assert_eq!(entry.extra, b"iptux-A\0grpA\0icon-tux.png\0utf-8");
        let ack = Packet::decode(&unhex(IPTUX_RECVMSG)).unwrap();
        assert_eq!((ack.mode(), ack.extra.as_slice()), (mode::RECVMSG, &b"20822044"[..]));
        assert!(ack.has(opt::SENDCHECKOPT), "iptux sets SENDCHECKOPT on its acks");
        let message = Packet::decode(&unhex(IPTUX_SENDMSG)).unwrap();
        assert_eq!((message.mode(), message.extra.as_slice()), (mode::SENDMSG, &b"typed in iptux"[..]));
        let exit = Packet::decode(&unhex(IPTUX_BR_EXIT)).unwrap();
        assert_eq!(exit.command, mode::BR_EXIT | opt::DIALUPOPT);
        for hex in [IPTUX_BR_ENTRY, IPTUX_RECVMSG, IPTUX_SENDMSG, IPTUX_BR_EXIT] {
            assert_eq!(Packet::decode(&unhex(hex)).unwrap().encode(), unhex(hex));
        }
    }

    #[test]
    fn colons_in_the_extra_survive_and_in_names_are_replaced() {
        let packet = Packet::decode(b"1:5:me:pc:32:a:b:c\0").unwrap();
        assert_eq!(packet.extra, b"a:b:c");
        let mut named = packet.clone();
        named.user = b"d:e".to_vec();
        assert_eq!(Packet::decode(&named.encode()).unwrap().user, b"d;e");
        assert_eq!(Packet::decode(b"1:5:me:pc:32:no terminator").unwrap().extra, b"no terminator");
    }

    #[test]
    fn malformed_packets_are_errors_never_panics() {
        for bad in [
            &b""[..],
            b"1:2:3:4",
            b"1:x:u:h:32:",
            b"1:2:u:h:thirty:",
            b"1:-2:u:h:32:",
            b"1:99999999999:u:h:32:",
            b"2:1:u:h:32:",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(Packet::decode(bad).is_err(), "{bad:?}");
        }
        let long_user = [b"1:1:".as_slice(), &[b'u'; 300], b":h:32:"].concat();
        assert!(Packet::decode(&long_user).is_err());
        assert!(Packet::decode(&vec![b'1'; MAX_RECEIVE + 1]).is_err());
    }
}
