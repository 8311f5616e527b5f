//! The families of peers: each speaks its own protocol, and a node keeps all of them in one
//! list. A peer's family decides how it is reached, what its offers look like and what trust
//! means for it; the node's adapter for each family lives in `node::family`.

use serde::{Deserialize, Serialize};

/// Which protocol a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Another Pigeon: encrypted, authenticated, resumable (this module's siblings).
    #[default]
    Pigeon,
    /// An IP Messenger client (IP Messenger, FeiQ, iptux): plaintext UDP and TCP on 2425.
    Ipmsg,
    /// A LocalSend device (phones, Macs, PCs with the LocalSend app): HTTPS on 53317,
    /// multicast discovery.
    #[serde(rename = "localsend")]
    LocalSend,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 3] = [Family::Pigeon, Family::Ipmsg, Family::LocalSend];

    /// The family's name as stored and as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Pigeon => "pigeon",
            Family::Ipmsg => "ipmsg",
            Family::LocalSend => "localsend",
        }
    }

    /// The family's name for people, the same in every language: "IP Messenger".
    pub fn product_name(self) -> &'static str {
        match self {
            Family::Pigeon => "Pigeon",
            Family::Ipmsg => "IP Messenger",
            Family::LocalSend => "LocalSend",
        }
    }

    /// The family named `name` (as [`Family::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|family| family.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_json() {
        for family in Family::ALL {
            assert_eq!(Family::from_name(family.as_str()), Some(family));
            assert_eq!(serde_json::to_string(&family).unwrap(), format!("\"{}\"", family.as_str()));
        }
        assert_eq!(Family::from_name("bluetooth"), None);
    }
}
