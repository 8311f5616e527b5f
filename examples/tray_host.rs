//! A stand-in for a desktop panel, for `scripts/bench-tray.sh`: a StatusNotifierWatcher on
//! the session bus (`DBUS_SESSION_BUS_ADDRESS`) that prints each item registering, so that
//! `pigeon --hidden` finds a tray and stays hidden in it.

#![allow(clippy::unwrap_used, reason = "a benchmark helper that cannot set up should stop loudly")]

use std::io::Write;

#[path = "support/sni_watcher.rs"]
mod sni_watcher;

/// Says on stdout that an item registered.
fn registered(service: &str) {
    println!("registered {service}");
    std::io::stdout().flush().ok();
}

fn main() {
    let _panel = zbus::blocking::connection::Builder::session()
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", sni_watcher::Watcher { registered: Box::new(registered) })
        .unwrap()
        .build()
        .unwrap();
    println!("ready");
    std::io::stdout().flush().ok();
    // Serves until stdin closes (the script ends).
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).ok();
}
