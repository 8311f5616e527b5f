//! Room events in the history database: stored once each, as their authors signed them, and
//! loaded at start to rebuild every room.

use rusqlite::params;

use super::{Store, StoreError, to_sql_int};
use crate::protocol::ids::RoomId;
use crate::protocol::room::SignedEvent;

impl Store {
    /// Stores events (their signatures checked) in one transaction: a catch-up frame of
    /// hundreds costs one commit. Events held already are left as they are.
    pub fn insert_room_events<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a SignedEvent>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO room_events (room, author, seq, json, sig) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
            )?;
            for event in events {
                let sig = crate::protocol::ids::to_hex(&event.signature);
                insert.execute(params![
                    event.body.room.to_string(),
                    event.body.author.to_string(),
                    to_sql_int(event.body.seq),
                    event.json,
                    sig
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored room event, decoded again (a damaged row is left out with a warning; its
    /// signature was checked when it arrived).
    pub fn room_events(&self) -> Result<Vec<(RoomId, SignedEvent)>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT json, sig FROM room_events")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
        let mut events = Vec::new();
        for row in rows {
            let (json, sig) = row?;
            match SignedEvent::from_store(json, &sig) {
                Ok(event) => events.push((event.body.room, event)),
                Err(err) => log::warn!("left out a stored room event: {err}"),
            }
        }
        Ok(events)
    }
}
