//! The dependency rule of docs/ARCHITECTURE.md, enforced: `protocol/` stays pure (no sockets,
//! threads, channels or UI), `node/` knows nothing of the window, and the window never touches
//! sockets. Breaking it would make the wire code untestable without I/O.

use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    files
}

fn assert_never_names(dir: &str, forbidden: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    for (path, text) in sources(&root) {
        for word in forbidden {
            assert!(!text.contains(word), "{path} names {word}, which {dir} must not use");
        }
    }
}

#[test]
fn protocol_is_pure() {
    assert!(!sources(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/protocol"))).is_empty());
    assert_never_names(
        "src/protocol",
        &["std::net", "socket2", "crossbeam", "egui", "std::thread", "SystemTime"],
    );
}

#[test]
fn node_knows_no_window_and_window_no_sockets() {
    assert_never_names("src/node", &["egui", "eframe", "crate::ui"]);
    assert_never_names("src/ui", &["std::net", "socket2"]);
}

#[test]
fn window_and_command_line_use_the_nodes_vocabulary_only() {
    // What they name of the protocol and the store comes re-exported by `pigeon::node`, so
    // that the engine can change its layers without touching them.
    let layers = ["crate::protocol", "crate::store", "pigeon::protocol", "pigeon::store"];
    assert_never_names("src/ui", &layers);
    assert_never_names("src/cli", &layers);
}

#[test]
fn threads_and_state_machines_never_name_the_hub() {
    // I/O threads report on queues (`node::inbox`, each family's report type) and state
    // machines take the time as an argument; only the adapters, which the hub calls, see it.
    let files = [
        "backoff.rs",
        "control.rs",
        "files.rs",
        "inbox.rs",
        "interfaces.rs",
        "listener.rs",
        "socket.rs",
        "threads.rs",
        "udp.rs",
        "worker.rs",
        "family/ipmsg/fetch.rs",
        "family/ipmsg/peers.rs",
        "family/ipmsg/serve.rs",
        "family/localsend/client.rs",
        "family/localsend/http.rs",
        "family/localsend/receive.rs",
        "family/localsend/send.rs",
        "family/localsend/server.rs",
        "family/localsend/tls.rs",
        "family/native/connection.rs",
        "family/native/conns.rs",
        "family/native/discovery.rs",
        "family/native/heartbeat.rs",
        "family/native/links.rs",
        "family/native/receive.rs",
        "family/native/send.rs",
        "family/native/stream.rs",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/node");
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(!text.contains("hub::"), "src/node/{file} names the hub");
    }
}

#[test]
fn state_machines_take_the_time_as_an_argument() {
    // So that timeouts, resends, backoffs and schedules are tested with simulated time.
    let machines = [
        "backoff.rs",
        "hub/outbox.rs",
        "hub/peers.rs",
        "family/native/conns.rs",
        "family/native/heartbeat.rs",
        "family/native/links.rs",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/node");
    for file in machines {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for clock in ["Instant::now()", "SystemTime::now()"] {
            assert!(!code.contains(clock), "src/node/{file} reads the clock ({clock})");
        }
    }
}
