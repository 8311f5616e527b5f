//! Pigeon: a LAN messenger. Start it on machines of one subnet and they find each other,
//! exchange messages and keep every conversation, with no server and no account.
//!
//! # Layout
//! - [`protocol`]: wire formats as pure functions (bytes <-> types), no I/O.
//! - [`store`]: history, outbox, known peers and their keys in one SQLite file.
//! - [`secure`]: our key pair, the Noise handshake and encrypted records.
//! - [`config`]: settings (TOML + flags) and folders.
//! - [`node`]: the engine: threads, sockets and the hub that owns all state.
//! - [`ui`]: the desktop window, one consumer of the node.
pub mod config;
pub mod node;
pub mod protocol;
pub mod secure;
pub mod store;
pub mod ui;

rust_i18n::i18n!("locales", fallback = "en");

pub use config::Config;
pub use node::{Command, Event, Node};
