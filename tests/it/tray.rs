//! Pigeon in the desktop's tray. The real `pigeon` window runs under Xvfb on a private
//! session bus (a `dbus-daemon` this test starts), and the test plays the panel: a
//! StatusNotifierWatcher written here with zbus, as KDE's or the AppIndicator extension's
//! is. The item registers, its menu lists Open, the statuses and Quit, an arriving message
//! turns it to "needs attention" with the count in its tooltip; closing the window hides it
//! and the node stays reachable; starting Pigeon again shows it (and the second process
//! exits), so does a click on the icon; Quit quits.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pigeon::store::MessageState;
use pigeon::{Command, Event};
use zbus::zvariant::{OwnedValue, Structure, Value};

use crate::util::{Daemon, Net, SHORT, pigeon_bin};
use crate::xvfb::Xvfb;

/// A private session bus, stopped when dropped.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start(dir: &Path) -> Bus {
        let mut child = Process::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (scripts/install-deps.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        Bus { child, address: line.trim().to_owned() }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The panel's side: it learns which items register.
struct Watcher {
    registered: Sender<String>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: String) {
        self.registered.send(service).ok();
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

/// The window, killed when dropped (Quit makes it exit first).
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn proxy<'a>(
    bus: &zbus::blocking::Connection,
    item: &str,
    path: &'a str,
    interface: &'a str,
) -> zbus::blocking::Proxy<'a> {
    zbus::blocking::proxy::Builder::new(bus)
        .destination(item.to_owned())
        .unwrap()
        .path(path)
        .unwrap()
        .interface(interface)
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .unwrap()
}

/// Polls `probe` until it gives something, for at most `within`.
fn poll<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} not seen within {within:?}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// The menu's entries: (id, label), in order.
fn menu_entries(menu: &zbus::blocking::Proxy<'_>) -> Vec<(i32, String)> {
    type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
    let (_revision, (_, _, children)): (u32, Layout) =
        menu.call("GetLayout", &(0i32, -1i32, Vec::<String>::new())).unwrap();
    let mut entries = Vec::new();
    for child in children {
        let Ok(entry) = Structure::try_from(Value::from(child)) else { continue };
        let fields = entry.fields();
        let (Some(Value::I32(id)), Some(Value::Dict(props))) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let label: Option<String> = props.get(&"label").ok().flatten();
        entries.push((*id, label.unwrap_or_default()));
    }
    entries
}

/// Whether a window called Pigeon is mapped on `xvfb`.
fn window_visible(xvfb: &Xvfb) -> bool {
    Process::new("xdotool")
        .args(["search", "--onlyvisible", "--name", "Pigeon"])
        .env("DISPLAY", &xvfb.display)
        .output()
        .is_ok_and(|out| !out.stdout.is_empty())
}

/// Asks the window to close as a window manager's close button does (WM_DELETE_WINDOW),
/// through libX11 from Python (no tool on Debian sends it without a window manager).
fn close_window(xvfb: &Xvfb) {
    const SCRIPT: &str = r#"
import ctypes, subprocess, sys
x = ctypes.CDLL("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5), ("pad", ctypes.c_long * 12)]
display = x.XOpenDisplay(None)
window = int(subprocess.check_output(["xdotool", "search", "--name", "Pigeon"]).split()[0])
event = ClientMessage(type=33, send_event=1, display=display, window=window, format=32,
                      message_type=x.XInternAtom(display, b"WM_PROTOCOLS", 0))
event.data[0] = x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
x.XSendEvent(display, window, 0, 0, ctypes.byref(event))
x.XFlush(display)
"#;
    let status = Process::new("python3").args(["-c", SCRIPT]).env("DISPLAY", &xvfb.display).status().unwrap();
    assert!(status.success(), "could not send WM_DELETE_WINDOW");
}

#[test]
fn pigeon_lives_in_the_tray_shows_unread_hides_on_close_and_quits_from_its_menu() {
    let Some(xvfb) = Xvfb::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let bus = Bus::start(dirs.path());
    #[expect(clippy::disallowed_methods, reason = "a test's record of registrations")]
    let (registered, items): (Sender<String>, Receiver<String>) = crossbeam_channel::unbounded();
    let panel = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", Watcher { registered })
        .unwrap()
        .build()
        .unwrap();

    let net = Net::new();
    let ana_dir = dirs.path().join("ana");
    std::fs::create_dir_all(&ana_dir).unwrap();
    let log = ana_dir.join("stderr.log");
    let mut app = App(Process::new(pigeon_bin())
        .args(net.flags(1, 2, &ana_dir))
        .args(["--name", "Ana"])
        .env("DISPLAY", &xvfb.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env_remove("WAYLAND_DISPLAY")
        .env("LANG", "en_US.UTF-8")
        .env("RUST_LOG", "pigeon=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap());
    let mut bo = Daemon::start("Bo", &net.flags(2, 2, &dirs.path().join("bo")));
    let item = items.recv_timeout(SHORT * 3).unwrap_or_else(|_| {
        panic!("no item registered:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
    });
    let sni = proxy(&panel, &item, "/StatusNotifierItem", "org.kde.StatusNotifierItem");
    let status = || sni.get_property::<String>("Status").unwrap();
    assert_eq!(status(), "Active");
    let menu_path: zbus::zvariant::OwnedObjectPath = sni.get_property("Menu").unwrap();
    let menu = proxy(&panel, &item, menu_path.as_str(), "com.canonical.dbusmenu");
    let entries = menu_entries(&menu);
    let labels: Vec<&str> = entries.iter().map(|(_, label)| label.as_str()).collect();
    for wanted in ["Open Pigeon", "Online", "Away", "Busy", "Quit"] {
        assert!(labels.contains(&wanted), "{wanted} not in the menu: {labels:?}");
    }

    // A message arrives: the icon asks for attention and says how many.
    let ana = bo.expect(SHORT, "Ana", |event| match event {
        Event::PeerJoined { peer } if peer.name == "Ana" => Some(peer.id),
        _ => None,
    });
    bo.send(&Command::SendMessage { to: vec![ana], text: "lunch?".into(), tag: None });
    poll(SHORT, "needs attention", || (status() == "NeedsAttention").then_some(()));
    type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);
    let (_, _, _, description) = sni.get_property::<ToolTip>("ToolTip").unwrap();
    assert_eq!(description, "1 unread");

    // Closed, the window hides; Pigeon stays on the network and takes messages.
    poll(SHORT, "the window", || window_visible(&xvfb).then_some(()));
    close_window(&xvfb);
    poll(SHORT, "the window hidden", || (!window_visible(&xvfb)).then_some(()));
    assert!(app.0.try_wait().unwrap().is_none(), "Pigeon quit on close");
    bo.send(&Command::SendMessage { to: vec![ana], text: "still there?".into(), tag: None });
    bo.expect(SHORT, "delivered to the hidden window", |event| match event {
        Event::MessageStateChanged { state: MessageState::Delivered, .. } => Some(()),
        _ => None,
    });
    poll(SHORT, "2 unread", || {
        let (_, _, _, description) = sni.get_property::<ToolTip>("ToolTip").unwrap();
        (description == "2 unread").then_some(())
    });

    // Started again, Pigeon shows the window it has and exits: one process, one window.
    let mut again = App(Process::new(pigeon_bin())
        .args(net.flags(1, 2, &ana_dir))
        .env("DISPLAY", &xvfb.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let exit = poll(SHORT, "the second start exiting", || again.0.try_wait().unwrap());
    assert!(exit.success(), "{exit:?}");
    poll(SHORT, "the window shown by the second start", || window_visible(&xvfb).then_some(()));

    // Closed again, a click on the icon shows it; Quit quits.
    close_window(&xvfb);
    poll(SHORT, "the window hidden again", || (!window_visible(&xvfb)).then_some(()));
    let () = sni.call("Activate", &(0i32, 0i32)).unwrap();
    poll(SHORT, "the window shown again", || window_visible(&xvfb).then_some(()));
    let quit = entries.iter().find(|(_, label)| label == "Quit").unwrap().0;
    let () = menu.call("Event", &(quit, "clicked", Value::from(0i32), 0u32)).unwrap();
    let exit = poll(SHORT, "Pigeon quitting", || app.0.try_wait().unwrap());
    assert!(exit.success(), "{exit:?}");
}
