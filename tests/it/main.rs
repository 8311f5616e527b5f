//! Pigeon's integration tests: one binary (fast to link on small CI machines) with a module
//! per area. Every node runs on its own loopback address or inside a network namespace the
//! test creates; nothing reaches a real network interface.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test by panicking, with the value shown")]

mod capture;
mod cli;
mod crash;
mod doctor;
mod finding;
mod freeze;
mod hardening;
mod hostile;
mod ipmsg;
mod iptux;
mod lab;
mod layering;
mod localsend;
mod loopback;
mod messy;
mod raw;
mod rooms;
mod scale;
mod security;
#[path = "../../examples/support/sni_watcher.rs"]
mod sni_watcher;
mod transfer;
mod tray;
mod util;
mod window;
mod window_smoke;
mod xvfb;
