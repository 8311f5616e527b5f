//! A StatusNotifierWatcher, the part of a desktop panel that tray icons register with: for
//! what stands in for a panel here, `examples/tray_host.rs` and the tray tests
//! (`tests/it/tray.rs`), which both include this file.

/// Tells `registered` of each item that registers (its bus name).
pub struct Watcher {
    pub registered: Box<dyn Fn(&str) + Send + Sync>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        (self.registered)(service);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

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
