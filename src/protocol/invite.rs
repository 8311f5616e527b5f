//! Invite links: `pigeon://invite?…`, what someone on another subnet or across a VPN needs to
//! reach us and to trust us in one step, handed over out of band (a chat, an e-mail, a QR
//! code): our addresses with the port, our peer id (derived from our key, so the handshake
//! with whoever answers at those addresses proves it is us), our name, and a token signed by
//! our key that the joiner hands back over the encrypted connection, so that we mark its key
//! verified in turn.
//!
//! ```text
//! pigeon://invite?v=1&id=<32 hex>&name=<percent-encoded UTF-8>&addr=<ip:port>[&addr=…]&t=<unix secs>.<128 hex>
//! ```

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::MAX_LABEL_BYTES;
use super::ids::{PeerId, parse_hex, to_hex};
use super::keys::{PublicKey, SIGNATURE_BYTES, Signature, Signer};

/// How every invite link starts.
pub const PREFIX: &str = "pigeon://invite?";

/// How long a token is honoured after it was made. Long enough for a link sent by e-mail to
/// be used after a weekend; short enough that a link found in an old chat later is not.
pub const TOKEN_VALID_SECS: u64 = 14 * 24 * 3600;

/// The most addresses a link carries (every interface of a machine with a few).
pub const MAX_ADDRS: usize = 8;

/// The longest link read: a full one is under 500 bytes.
pub const MAX_LINK_BYTES: usize = 2048;

/// What a token's signature covers before its time: a signature made for anything else
/// with the same key can never pass for a token.
const TOKEN_CONTEXT: &[u8] = b"pigeon 2026-12 invite token\n";

/// Characters left as they are in a name: RFC 3986's unreserved ones.
const NAME_KEEPS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// An invite, as made by its inviter and read from its link by the joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The inviter.
    pub id: PeerId,
    /// The inviter's display name, shown before connecting.
    pub name: String,
    /// Where the inviter listens: `a.b.c.d:port` or `[v6 address]:port`, each of the shape
    /// [`is_socket_addr`] checks (the node reads them as socket addresses when it dials).
    pub addrs: Vec<String>,
    /// Handed back by the joiner.
    pub token: Token,
}

/// Proof, for the inviter, that a joiner got the link: made with the inviter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// When it was made, in seconds since 1970.
    pub made_secs: u64,
    /// The inviter's signature over `pigeon 2026-12 invite token\n` and `made_secs`.
    pub signature: Signature,
}

/// Why a link cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not a Pigeon invite at all.
    #[error("not a Pigeon invite link (it starts with {PREFIX})")]
    NotALink,
    /// A part is missing or unreadable.
    #[error("the invite link is damaged: {0} (copy all of it)")]
    Damaged(&'static str),
    /// Made by a newer Pigeon.
    #[error("the invite link is from a newer Pigeon (version {0}); update Pigeon")]
    NewerVersion(String),
}

impl Token {
    /// A token made now (`now_secs`) with `signer`, the inviter's key.
    pub fn new(signer: &dyn Signer, now_secs: u64) -> Token {
        Token { made_secs: now_secs, signature: signer.sign(&Token::signed(now_secs)) }
    }

    fn signed(made_secs: u64) -> Vec<u8> {
        [TOKEN_CONTEXT, &made_secs.to_be_bytes()].concat()
    }

    /// Whether `key` (the inviter's own) made this token and it is still valid at `now_secs`.
    pub fn check(&self, key: &PublicKey, now_secs: u64) -> Result<(), &'static str> {
        if !key.verifies(&Token::signed(self.made_secs), &self.signature) {
            return Err("not made by us");
        }
        // A minute of clock skew between two machines is forgiven.
        if self.made_secs > now_secs + 60 {
            return Err("made in the future");
        }
        if now_secs.saturating_sub(self.made_secs) > TOKEN_VALID_SECS {
            return Err("expired");
        }
        Ok(())
    }

    /// As written in a link and on the wire.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.made_secs, to_hex(&self.signature))
    }

    /// Reads [`Token::encode`]'s form.
    pub fn decode(text: &str) -> Option<Token> {
        let (secs, signature) = text.split_once('.')?;
        Some(Token { made_secs: secs.parse().ok()?, signature: parse_hex::<SIGNATURE_BYTES>(signature)? })
    }
}

impl Invite {
    /// The link.
    pub fn to_link(&self) -> String {
        let name = utf8_percent_encode(&self.name, NAME_KEEPS);
        let mut link = format!("{PREFIX}v=1&id={}&name={name}", self.id);
        for addr in &self.addrs {
            // An IPv6 address's brackets (and a scope's %) are not allowed in a query.
            let addr = addr.replace('%', "%25").replace('[', "%5B").replace(']', "%5D");
            link.push_str(&format!("&addr={addr}"));
        }
        link.push_str(&format!("&t={}", self.token.encode()));
        link
    }

    /// Reads a link, forgiving what copying and pasting add around it (spaces, line
    /// breaks, angle brackets). The token is only read here; the inviter checks it.
    pub fn parse(text: &str) -> Result<Invite, InviteError> {
        let link = text.trim().trim_start_matches('<').trim_end_matches('>');
        if link.len() > MAX_LINK_BYTES {
            return Err(InviteError::Damaged("far too long"));
        }
        let query = link.strip_prefix(PREFIX).ok_or(InviteError::NotALink)?;
        let (mut version, mut id, mut name, mut token, mut addrs) = (None, None, None, None, Vec::new());
        for pair in query.split('&').map(|pair| pair.split('\n').collect::<String>()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            match key {
                "v" => version = Some(value.to_owned()),
                "id" => {
                    id = Some(value.parse::<PeerId>().map_err(|_unreadable| InviteError::Damaged("the id"))?);
                }
                "name" => {
                    let decoded = percent_decode_str(value)
                        .decode_utf8()
                        .map_err(|_unreadable| InviteError::Damaged("the name"))?;
                    name = Some(decoded.into_owned());
                }
                "addr" if addrs.len() < MAX_ADDRS => {
                    let value = percent_decode_str(value).decode_utf8_lossy();
                    if !is_socket_addr(&value) {
                        return Err(InviteError::Damaged("an address"));
                    }
                    addrs.push(value.into_owned());
                }
                "t" => token = Some(Token::decode(value).ok_or(InviteError::Damaged("the token"))?),
                // Later versions may add parts; this one reads what it knows.
                _ => {}
            }
        }
        match version.as_deref() {
            Some("1") => {}
            Some(other) => return Err(InviteError::NewerVersion(other.to_owned())),
            None => return Err(InviteError::Damaged("the version")),
        }
        let name = name.unwrap_or_default();
        if name.len() > MAX_LABEL_BYTES || name.chars().any(char::is_control) {
            return Err(InviteError::Damaged("the name"));
        }
        if addrs.is_empty() {
            return Err(InviteError::Damaged("no address"));
        }
        Ok(Invite {
            id: id.ok_or(InviteError::Damaged("the id"))?,
            name,
            addrs,
            token: token.ok_or(InviteError::Damaged("the token"))?,
        })
    }
}

/// Whether `text` looks like an IP address with a port: letters, digits, dots and colons
/// (IPv6 in brackets, with an optional `%scope`), then `:` and a port from 1 to 65535.
pub fn is_socket_addr(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else { return false };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host = host.strip_prefix('[').and_then(|v6| v6.strip_suffix(']')).unwrap_or(host);
    let host_ok = !host.is_empty()
        && host.len() <= 64
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '%'));
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::Identity;

    fn invite(identity: &Identity, now: u64) -> Invite {
        Invite {
            id: identity.peer_id(),
            name: "Ana 李 & co".into(),
            addrs: vec!["10.0.0.5:2426".into(), "[fe80::1%2]:2426".into()],
            token: Token::new(identity, now),
        }
    }

    #[test]
    fn a_link_reads_back_as_the_invite_it_was_made_from_even_pasted_with_line_breaks() {
        let identity = Identity::from_private([7; 32]);
        let invite = invite(&identity, 1_800_000_000);
        let link = invite.to_link();
        assert!(link.starts_with(PREFIX) && link.len() < 500, "{link}");
        assert!(!link.contains(' ') && !link.contains('李'), "the name is percent-encoded: {link}");
        assert_eq!(Invite::parse(&link), Ok(invite.clone()));
        let (head, tail) = link.split_at(200);
        assert_eq!(Invite::parse(&format!("  <{head}\n{tail}>\n")), Ok(invite));
    }

    #[test]
    fn only_the_inviters_key_made_a_token_and_only_for_two_weeks() {
        let (ana, bo) = (Identity::from_private([7; 32]), Identity::from_private([8; 32]));
        let made = 1_800_000_000;
        let token = Token::new(&ana, made);
        assert_eq!(token.check(&ana.public(), made + TOKEN_VALID_SECS), Ok(()));
        assert_eq!(token.check(&bo.public(), made), Err("not made by us"));
        assert_eq!(token.check(&ana.public(), made + TOKEN_VALID_SECS + 1), Err("expired"));
        assert_eq!(token.check(&ana.public(), made - 61), Err("made in the future"));
        let forged = Token { made_secs: made + 1, ..token };
        assert_eq!(forged.check(&ana.public(), made + 1), Err("not made by us"), "the time is signed");
        assert_eq!(Token::decode(&token.encode()), Some(token));
    }

    #[test]
    fn damaged_links_and_other_links_are_refused_with_what_is_wrong() {
        let identity = Identity::from_private([7; 32]);
        let link = invite(&identity, 1_800_000_000).to_link();
        assert_eq!(Invite::parse("https://example.org/"), Err(InviteError::NotALink));
        assert_eq!(Invite::parse(&link.replace("v=1", "v=2")), Err(InviteError::NewerVersion("2".into())));
        assert_eq!(Invite::parse(&link[..link.find("&t=").unwrap()]), Err(InviteError::Damaged("the token")));
        assert_eq!(
            Invite::parse(&link.replace("10.0.0.5:2426", "10.0.0.5")),
            Err(InviteError::Damaged("an address"))
        );
        assert_eq!(
            Invite::parse(&link.replace("name=Ana", "name=%0AAna")),
            Err(InviteError::Damaged("the name"))
        );
        assert!(Invite::parse(&"x".repeat(MAX_LINK_BYTES + 1)).is_err());
    }
}
