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
