//! A stand-in for a desktop panel, for `scripts/bench-tray.sh`: a StatusNotifierWatcher on
//! the session bus (`DBUS_SESSION_BUS_ADDRESS`) that prints each item registering, so that
//! `pigeon --hidden` finds a tray and stays hidden in it.

#![allow(clippy::unwrap_used, reason = "a benchmark helper that cannot set up should stop loudly")]

use std::io::Write;

struct Watcher;

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        println!("registered {service}");
        std::io::stdout().flush().ok();
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {
    let _panel = zbus::blocking::connection::Builder::session()
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", Watcher)
        .unwrap()
        .build()
        .unwrap();
    println!("ready");
    std::io::stdout().flush().ok();
    // Serves until stdin closes (the script ends).
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).ok();
}
