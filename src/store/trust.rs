//! Trust on first use: which public key we pinned for each peer, whether the user verified
//! it, and which peers turned up with a new key under a name and host we already knew.
//!
//! Peer ids are derived from public keys, so one id always means one key. A "key change" is
//! therefore a *new* id that presents the display name and host name of a peer we already
//! pinned: the same colleague after a reinstall, or someone pretending to be them. It stays
//! marked until the user accepts it; then the old id is retired.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{KnownPeer, Store, StoreError, parse};
use crate::protocol::ids::PeerId;
use crate::protocol::keys::PublicKey;

/// How far we trust a peer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Pinned on first sight, not compared out loud.
    #[default]
    Unverified,
    /// The user compared the safety number and marked it verified.
    Verified,
    /// A new key under the name and host of a peer pinned before; not yet accepted. Its
    /// messages are marked and its files are never accepted automatically.
    KeyChanged,
    /// An old key that the user replaced by accepting a newer one.
    Replaced,
    /// An IP Messenger peer: no key, nothing encrypted or authenticated. Never stored.
    Unencrypted,
}

impl Trust {
    /// Whether messages and files from a peer at this level may not be from who they claim:
    /// a changed key not yet accepted, or an old key the user replaced.
    pub fn is_unconfirmed(self) -> bool {
        matches!(self, Trust::KeyChanged | Trust::Replaced)
    }

    /// Whether offers from a peer at this level may be accepted without asking (auto-accept,
    /// "always accept"): only from a key that is proven and not in doubt. IP Messenger peers
    /// prove nothing, so their offers always wait for the user.
    pub fn allows_auto_accept(self) -> bool {
        matches!(self, Trust::Unverified | Trust::Verified)
    }

    fn code(self) -> i64 {
        match self {
            Trust::Unverified => 0,
            Trust::Verified => 1,
            Trust::KeyChanged => 2,
            Trust::Replaced => 3,
            Trust::Unencrypted => 4,
        }
    }

    fn from_code(code: i64) -> Result<Self, StoreError> {
        Ok(match code {
            0 => Trust::Unverified,
            1 => Trust::Verified,
            2 => Trust::KeyChanged,
            3 => Trust::Replaced,
            4 => Trust::Unencrypted,
            _ => return Err(StoreError::Corrupt("trust level")),
        })
    }
}

/// What we hold about one peer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedKey {
    /// The key.
    pub key: PublicKey,
    /// How far we trust it.
    pub trust: Trust,
    /// For [`Trust::KeyChanged`]: the peer whose name and host it took over.
    pub replaces: Option<PeerId>,
}

impl Store {
    /// Pins `key` for a peer seen for the first time (recording the peer if it is not yet)
    /// and decides its trust: [`Trust::KeyChanged`] if another pinned, not retired key already
    /// went by the same name and host. Returns the pin and, for a change, whether the old key
    /// was verified.
    pub fn pin_new_key(
        &self,
        peer: &KnownPeer,
        key: PublicKey,
        seen_at_ms: u64,
    ) -> Result<(PinnedKey, bool), StoreError> {
        let (id, name, host) = (peer.id, &peer.name, &peer.host);
        let (trust, replaces, was_verified) = match self.other_key_under(name, host, id)? {
            Some((old, old_trust)) => (Trust::KeyChanged, Some(old), old_trust == Trust::Verified),
            None => (Trust::Unverified, None, false),
        };
        self.conn.execute(
            "INSERT INTO peers (id, name, grp, host, addr, last_seen_ms, family, pubkey, trust, replaces)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET pubkey = ?8, trust = ?9, replaces = ?10",
            params![
                id.to_string(),
                name,
                peer.group,
                host,
                peer.addr,
                super::to_sql_int(seen_at_ms),
                peer.family.as_str(),
                key.to_string(),
                trust.code(),
                replaces.map(|r| r.to_string())
            ],
        )?;
        Ok((PinnedKey { key, trust, replaces }, was_verified))
    }

    /// The peer, other than `id`, whose pinned key (not replaced) goes by `name` on `host`,
    /// most recently seen first, and how far it is trusted: whom a new key under that name
    /// and host would replace.
    pub fn other_key_under(
        &self,
        name: &str,
        host: &str,
        id: PeerId,
    ) -> Result<Option<(PeerId, Trust)>, StoreError> {
        let earlier: Option<(String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT id, trust FROM peers
                 WHERE name = ?1 AND host = ?2 AND id != ?3 AND pubkey IS NOT NULL AND trust != ?4
                 ORDER BY last_seen_ms DESC LIMIT 1",
            )?
            .query_row(params![name, host, id.to_string(), Trust::Replaced.code()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        earlier.map(|(old, trust)| Ok((parse(&old, "peer id")?, Trust::from_code(trust)?))).transpose()
    }

    /// The pinned key of `id`, if we have seen its key.
    pub fn pinned_key(&self, id: PeerId) -> Result<Option<PinnedKey>, StoreError> {
        let row: Option<(Option<String>, i64, Option<String>)> = self
            .conn
            .prepare_cached("SELECT pubkey, trust, replaces FROM peers WHERE id = ?1")?
            .query_row([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let Some((Some(key), trust, replaces)) = row else { return Ok(None) };
        Ok(Some(PinnedKey {
            key: parse(&key, "public key")?,
            trust: Trust::from_code(trust)?,
            replaces: replaces.map(|old| parse(&old, "peer id")).transpose()?,
        }))
    }

    /// Sets a peer's trust. Accepting a changed key (to unverified or verified) retires the
    /// key it replaced.
    pub fn set_trust(&mut self, id: PeerId, trust: Trust) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let replaces: Option<Option<String>> = tx
            .query_row("SELECT replaces FROM peers WHERE id = ?1", [id.to_string()], |row| row.get(0))
            .optional()?;
        if trust != Trust::KeyChanged
            && let Some(Some(old)) = &replaces
        {
            tx.execute("UPDATE peers SET trust = ?2 WHERE id = ?1", params![old, Trust::Replaced.code()])?;
        }
        tx.execute("UPDATE peers SET trust = ?2 WHERE id = ?1", params![id.to_string(), trust.code()])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(n: u8, name: &str) -> (KnownPeer, PublicKey) {
        let key = PublicKey::from_bytes([n; 32]);
        let peer = KnownPeer {
            id: key.peer_id(),
            name: name.into(),
            group: String::new(),
            host: "pc".into(),
            addr: "10.0.0.1:2426".into(),
            family: Default::default(),
        };
        (peer, key)
    }

    /// A peer seen (recorded, its key not pinned yet).
    fn seen(store: &Store, n: u8, name: &str, at: u64) -> (KnownPeer, PublicKey) {
        let (peer, key) = known(n, name);
        store.remember_peer(&peer, at).unwrap();
        (peer, key)
    }

    #[test]
    fn first_key_is_pinned_and_a_new_key_under_the_same_name_is_a_change_until_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        // Pinning records a peer not seen before.
        let (ana, ana_key) = known(1, "Ana");
        let (pin, _) = store.pin_new_key(&ana, ana_key, 1).unwrap();
        assert_eq!(pin.trust, Trust::Unverified);
        assert_eq!(store.known_peers().unwrap(), std::slice::from_ref(&ana));
        store.set_trust(ana.id, Trust::Verified).unwrap();

        let (bo, bo_key) = seen(&store, 2, "Bo", 2);
        assert_eq!(store.pin_new_key(&bo, bo_key, 2).unwrap().0.trust, Trust::Unverified);

        let (again, new_key) = seen(&store, 3, "Ana", 3);
        let (pin, was_verified) = store.pin_new_key(&again, new_key, 3).unwrap();
        assert_eq!((pin.trust, pin.replaces, was_verified), (Trust::KeyChanged, Some(ana.id), true));
        assert_eq!(store.pinned_key(again.id).unwrap(), Some(pin));

        store.set_trust(again.id, Trust::Unverified).unwrap();
        assert_eq!(store.pinned_key(ana.id).unwrap().unwrap().trust, Trust::Replaced);
        // The retired key no longer counts: a third key is compared with the accepted one.
        let (third, third_key) = seen(&store, 4, "Ana", 4);
        let (pin, was_verified) = store.pin_new_key(&third, third_key, 4).unwrap();
        assert_eq!((pin.replaces, was_verified), (Some(again.id), false));
    }

    #[test]
    fn peers_without_a_key_are_never_matched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.sqlite3")).unwrap();
        seen(&store, 1, "Ana", 1);
        let (new, key) = seen(&store, 2, "Ana", 2);
        assert_eq!(store.pin_new_key(&new, key, 2).unwrap().0.trust, Trust::Unverified);
        assert_eq!(store.pinned_key(PublicKey::from_bytes([1; 32]).peer_id()).unwrap(), None);
    }
}
