//! Pigeon: a LAN messenger. Start it on machines of one subnet and they find each other,
//! exchange messages and keep every conversation, with no server and no account.
//!
//! # Layout
//! - [`protocol`]: wire formats as pure functions (bytes <-> types), no I/O.
//! - [`store`]: history, outbox, known peers and identity in one SQLite file.
pub mod protocol;
pub mod store;
