//! Pigeon in the desktop's tray. The real `pigeon` window runs under Xvfb on a private
//! session bus (a `dbus-daemon` this test starts), and the test plays the panel: a
//! StatusNotifierWatcher written here with zbus, as KDE's or the AppIndicator extension's
//! is. The item registers, its menu lists Open, the statuses and Quit, an arriving message
//! turns it to "needs attention" with the count in its tooltip; closing the window hides it
//! and the node stays reachable; starting Pigeon again shows it (and the second process
//! exits), so does a click on the icon; Quit quits. Started hidden, Pigeon makes no window
//! until it is opened.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pigeon::store::MessageState;
use pigeon::{Command, Event};
use zbus::zvariant::{OwnedValue, Structure, Value};

use crate::sni_watcher::Watcher;
use crate::util::{Daemon, Net, SHORT, pigeon_bin, wait_exit};
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

/// A StatusNotifierItem's tooltip: icon name, icon pixmaps, title, description.
type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

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

/// The names of the windows whose name has "Pigeon" in it on `xvfb`, mapped or not.
fn window_names(xvfb: &Xvfb) -> Vec<String> {
    let search = Process::new("xdotool")
        .args(["search", "--name", "Pigeon", "getwindowname", "%@"])
        .env("DISPLAY", &xvfb.display)
        .output()
        .unwrap();
    String::from_utf8_lossy(&search.stdout).lines().map(str::to_owned).collect()
}

/// Whether there is a window called Pigeon on `xvfb`, even unmapped.
fn window_exists(xvfb: &Xvfb) -> bool {
    !window_names(xvfb).is_empty()
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

/// Whether the test's panel shows tray icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tray {
    Shown,
    None,
}

/// The desktop of a test: a screen, a session bus with a panel (tray watcher) and a
/// notification server on it, Pigeon's window as Ana, and Bo (a daemon) beside it.
struct Desktop {
    xvfb: Xvfb,
    net: Net,
    ana_dir: std::path::PathBuf,
    log: std::path::PathBuf,
    app: App,
    bo: Daemon,
    /// The test's own connection: the watcher and the notification server answer on it.
    panel: zbus::blocking::Connection,
    items: Receiver<String>,
    notes: Receiver<Shown>,
    /// The session's idle time the screensaver service reports, in ms.
    idle_ms: Arc<AtomicU32>,
    bus: Bus,
    _dirs: tempfile::TempDir,
}

impl Desktop {
    /// With `settings` in Ana's settings file and `flags` on her command line.
    fn start(settings: &str, flags: &[&str]) -> Option<Desktop> {
        Desktop::start_with(Tray::Shown, settings, flags)
    }

    /// The same, with or without a tray on the panel.
    fn start_with(tray: Tray, settings: &str, flags: &[&str]) -> Option<Desktop> {
        let xvfb = Xvfb::start()?;
        let dirs = tempfile::tempdir().unwrap();
        let bus = Bus::start(dirs.path());
        #[expect(clippy::disallowed_methods, reason = "a test's record of what Pigeon showed")]
        let ((registered, items), (shown, notes)) =
            (crossbeam_channel::unbounded(), crossbeam_channel::unbounded());
        let idle_ms = Arc::new(AtomicU32::new(0));
        let mut panel = zbus::blocking::connection::Builder::address(bus.address.as_str()).unwrap();
        if tray == Tray::Shown {
            let watcher = Watcher {
                registered: Box::new(move |item| {
                    registered.send(item.to_owned()).ok();
                }),
            };
            panel = panel
                .name("org.kde.StatusNotifierWatcher")
                .unwrap()
                .serve_at("/StatusNotifierWatcher", watcher)
                .unwrap();
        }
        let panel = panel
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at("/org/freedesktop/Notifications", Notifications { shown, next: AtomicU32::new(1) })
            .unwrap()
            .name("org.freedesktop.ScreenSaver")
            .unwrap()
            .serve_at("/org/freedesktop/ScreenSaver", ScreenSaver { idle_ms: idle_ms.clone() })
            .unwrap()
            .build()
            .unwrap();
        let net = Net::new();
        let ana_dir = dirs.path().join("ana");
        std::fs::create_dir_all(&ana_dir).unwrap();
        std::fs::write(ana_dir.join("config.toml"), settings).unwrap();
        let log = ana_dir.join("stderr.log");
        let app = App(Process::new(pigeon_bin())
            .args(net.flags(1, 2, &ana_dir))
            .args(["--name", "Ana"])
            .args(flags)
            .env("DISPLAY", &xvfb.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env_remove("WAYLAND_DISPLAY")
            .env("LANG", "en_US.UTF-8")
            .env("RUST_LOG", "pigeon=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap());
        let bo = Daemon::start("Bo", &net.flags(2, 2, &dirs.path().join("bo")));
        Some(Desktop { xvfb, net, ana_dir, log, app, bo, panel, items, notes, idle_ms, bus, _dirs: dirs })
    }

    /// Ana's id, once Bo lists her.
    fn ana(&mut self) -> pigeon::node::PeerId {
        self.bo.expect(SHORT, "Ana", |event| match event {
            Event::PeerJoined { peer } if peer.name == "Ana" => Some(peer.id),
            _ => None,
        })
    }

    /// Waits until Bo sees Ana (`ana`) with `status`.
    fn expect_status(&mut self, ana: pigeon::node::PeerId, status: pigeon::node::Status) {
        self.bo.expect(SHORT, &format!("Ana {status:?}"), |event| match event {
            Event::PeerUpdated { peer } if peer.id == ana && peer.status == status => Some(()),
            _ => None,
        });
    }

    /// The next notification Pigeon shows.
    fn next_note(&self) -> Shown {
        self.notes.recv_timeout(SHORT).unwrap_or_else(|_| {
            panic!("no notification:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default())
        })
    }

    /// Clicks `action` of notification `id`, as the notification server reports it.
    fn click(&self, id: u32, action: &str) {
        self.panel
            .emit_signal(
                None::<&str>,
                "/org/freedesktop/Notifications",
                "org.freedesktop.Notifications",
                "ActionInvoked",
                &(id, action),
            )
            .unwrap();
    }
}

/// The screensaver's side: how long the session has been idle.
struct ScreenSaver {
    idle_ms: Arc<AtomicU32>,
}

/// An idle time the screensaver refuses to tell, as a desktop without the service does.
const NOT_TOLD: u32 = u32::MAX;

#[zbus::interface(name = "org.freedesktop.ScreenSaver")]
impl ScreenSaver {
    fn get_session_idle_time(&self) -> zbus::fdo::Result<u32> {
        match self.idle_ms.load(Ordering::Relaxed) {
            NOT_TOLD => Err(zbus::fdo::Error::NotSupported("no idle time here".into())),
            ms => Ok(ms),
        }
    }
}

/// A notification as the server received it.
#[derive(Debug, Clone)]
struct Shown {
    id: u32,
    replaces: u32,
    summary: String,
    body: String,
    actions: Vec<String>,
}

/// The notification server's side.
struct Notifications {
    shown: Sender<Shown>,
    next: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[expect(clippy::too_many_arguments, reason = "the specification's method")]
    fn notify(
        &self,
        _app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = if replaces_id == 0 { self.next.fetch_add(1, Ordering::Relaxed) } else { replaces_id };
        self.shown.send(Shown { id, replaces: replaces_id, summary, body, actions }).ok();
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "pigeon".into(), "1".into(), "1.2".into())
    }
}

#[test]
fn pigeon_lives_in_the_tray_shows_unread_hides_on_close_and_quits_from_its_menu() {
    let Some(mut desktop) = Desktop::start("", &[]) else { return };
    let ana = desktop.ana();
    let item = desktop.items.recv_timeout(SHORT * 3).unwrap_or_else(|_| {
        panic!("no item registered:\n{}", std::fs::read_to_string(&desktop.log).unwrap_or_default())
    });
    let (xvfb, panel) = (&desktop.xvfb, &desktop.panel);
    let sni = proxy(panel, &item, "/StatusNotifierItem", "org.kde.StatusNotifierItem");
    let status = || sni.get_property::<String>("Status").unwrap();
    assert_eq!(status(), "Active");
    let menu_path: zbus::zvariant::OwnedObjectPath = sni.get_property("Menu").unwrap();
    let menu = proxy(panel, &item, menu_path.as_str(), "com.canonical.dbusmenu");
    let entries = menu_entries(&menu);
    let labels: Vec<&str> = entries.iter().map(|(_, label)| label.as_str()).collect();
    for wanted in ["Open Pigeon", "Online", "Away", "Busy", "Quit"] {
        assert!(labels.contains(&wanted), "{wanted} not in the menu: {labels:?}");
    }

    // A message arrives: the icon asks for attention and says how many.
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "lunch?".into(), tag: None });
    poll(SHORT, "needs attention", || (status() == "NeedsAttention").then_some(()));
    let (_, _, _, description) = sni.get_property::<ToolTip>("ToolTip").unwrap();
    assert_eq!(description, "1 unread");

    // Closed, the window hides; Pigeon stays on the network and takes messages.
    poll(SHORT, "the window", || window_visible(xvfb).then_some(()));
    close_window(xvfb);
    poll(SHORT, "the window hidden", || (!window_visible(xvfb)).then_some(()));
    assert!(desktop.app.0.try_wait().unwrap().is_none(), "Pigeon quit on close");
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "still there?".into(), tag: None });
    desktop.bo.expect(SHORT, "delivered to the hidden window", |event| match event {
        Event::MessageStateChanged { state: MessageState::Delivered, .. } => Some(()),
        _ => None,
    });
    poll(SHORT, "2 unread", || {
        let (_, _, _, description) = sni.get_property::<ToolTip>("ToolTip").unwrap();
        (description == "2 unread").then_some(())
    });

    // Started again, Pigeon shows the window it has and exits: one process, one window.
    let mut again = App(Process::new(pigeon_bin())
        .args(desktop.net.flags(1, 2, &desktop.ana_dir))
        .env("DISPLAY", &xvfb.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &desktop.bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let exit = wait_exit(&mut again.0, SHORT);
    assert!(exit.success(), "{exit:?}");
    poll(SHORT, "the window shown by the second start", || window_visible(xvfb).then_some(()));

    // Closed again, a click on the icon shows it; Quit quits.
    close_window(xvfb);
    poll(SHORT, "the window hidden again", || (!window_visible(xvfb)).then_some(()));
    let () = sni.call("Activate", &(0i32, 0i32)).unwrap();
    poll(SHORT, "the window shown again", || window_visible(xvfb).then_some(()));
    let quit = entries.iter().find(|(_, label)| label == "Quit").unwrap().0;
    let () = menu.call("Event", &(quit, "clicked", Value::from(0i32), 0u32)).unwrap();
    let exit = wait_exit(&mut desktop.app.0, SHORT);
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_notification_per_conversation_opens_it_when_clicked_and_an_offers_accepts_it() {
    let Some(mut desktop) = Desktop::start("", &[]) else { return };
    let ana = desktop.ana();
    let item = desktop.items.recv_timeout(SHORT * 3).expect("the tray item");
    // Hidden in the tray, Pigeon tells of what arrives.
    poll(SHORT, "the window", || window_visible(&desktop.xvfb).then_some(()));
    close_window(&desktop.xvfb);
    poll(SHORT, "the window hidden", || (!window_visible(&desktop.xvfb)).then_some(()));
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "lunch?".into(), tag: None });
    let first = desktop.next_note();
    assert_eq!((first.summary.as_str(), first.body.as_str(), first.replaces), ("Bo", "lunch?", 0));
    assert!(first.actions.contains(&"default".to_owned()), "{:?}", first.actions);
    // A burst is one notification, replaced, with the count.
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "at 12?".into(), tag: None });
    let second = desktop.next_note();
    assert_eq!(
        (second.replaces, second.summary.as_str(), second.body.as_str()),
        (first.id, "Bo · 2", "at 12?")
    );

    // Clicked, it shows the window with that conversation: Bo's messages are read.
    desktop.click(second.id, "default");
    poll(SHORT, "the window shown", || window_visible(&desktop.xvfb).then_some(()));
    desktop.bo.expect(SHORT, "read receipts", |event| match event {
        Event::MessageStateChanged { state: MessageState::Read, .. } => Some(()),
        _ => None,
    });

    // An offer's notification accepts it.
    close_window(&desktop.xvfb);
    poll(SHORT, "the window hidden", || (!window_visible(&desktop.xvfb)).then_some(()));
    let file = desktop.ana_dir.join("menu.txt");
    std::fs::write(&file, "soup").unwrap();
    desktop.bo.send(&Command::SendFiles { to: vec![ana], paths: vec![file], tag: None });
    let offer = desktop.next_note();
    assert!(offer.actions.contains(&"accept".to_owned()) && offer.actions.contains(&"decline".to_owned()));
    assert!(offer.body.contains("menu.txt"), "{offer:?}");
    desktop.click(offer.id, "accept");
    desktop.bo.expect(SHORT, "the file taken", |event| match event {
        Event::TransferStateChanged { state: pigeon::store::TransferState::Completed, .. } => Some(()),
        _ => None,
    });

    // Busy is "do not disturb": what arrives then is not told (the next notification is of
    // what came after Online again).
    let menu = proxy(&desktop.panel, &item, "/MenuBar", "com.canonical.dbusmenu");
    let entries = menu_entries(&menu);
    let id_of = |label: &str| entries.iter().find(|(_, l)| l == label).unwrap().0;
    let choose = |label: &str| {
        let () = menu.call("Event", &(id_of(label), "clicked", Value::from(0i32), 0u32)).unwrap();
    };
    choose("Busy");
    desktop.expect_status(ana, pigeon::node::Status::Busy);
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "in a meeting?".into(), tag: None });
    desktop.bo.expect(SHORT, "delivered while busy", |event| match event {
        Event::MessageStateChanged { state: MessageState::Delivered, .. } => Some(()),
        _ => None,
    });
    choose("Online");
    desktop.expect_status(ana, pigeon::node::Status::Online);
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "done?".into(), tag: None });
    assert_eq!(desktop.next_note().body, "done?");
}

#[test]
fn started_hidden_no_window_is_made_until_opened_idle_shows_away_and_input_brings_online_back() {
    // Started as the session's autostart starts it: hidden in the tray.
    let Some(mut desktop) = Desktop::start("away_after_secs = 2\n", &["--hidden"]) else { return };
    let ana = desktop.ana();
    let item = desktop.items.recv_timeout(SHORT * 3).expect("the tray item");
    let sni = proxy(&desktop.panel, &item, "/StatusNotifierItem", "org.kde.StatusNotifierItem");
    let description = || sni.get_property::<ToolTip>("ToolTip").unwrap().3;
    // Not a hidden window: none at all, so a day in the tray costs no window, GPU or fonts.
    assert!(!window_exists(&desktop.xvfb), "a window was made for a start in the tray");

    desktop.idle_ms.store(600_000, Ordering::Relaxed);
    desktop.expect_status(ana, pigeon::node::Status::Away);
    poll(SHORT, "the tray saying away (idle)", || (description() == "Away (idle)").then_some(()));
    desktop.idle_ms.store(300, Ordering::Relaxed);
    desktop.expect_status(ana, pigeon::node::Status::Online);
    // Automatic: the setting is not changed.
    let saved = std::fs::read_to_string(desktop.ana_dir.join("config.toml")).unwrap();
    assert!(!saved.contains("status"), "{saved}");

    // A message while there is no window is counted and notified; the window opened from
    // the tray carries on from there.
    desktop.bo.send(&Command::SendMessage { to: vec![ana], text: "are you there?".into(), tag: None });
    assert_eq!(desktop.next_note().body, "are you there?");
    poll(SHORT, "1 unread", || (description() == "1 unread").then_some(()));
    assert!(!window_exists(&desktop.xvfb), "a message made a window");
    let () = sni.call("Activate", &(0i32, 0i32)).unwrap();
    poll(SHORT, "the window opened from the tray", || window_visible(&desktop.xvfb).then_some(()));
    poll(SHORT, "the unread count in its title", || {
        window_names(&desktop.xvfb).iter().any(|name| name == "(1) Pigeon").then_some(())
    });
}

#[test]
fn without_a_tray_the_first_close_says_once_that_closing_quits() {
    let Some(mut desktop) = Desktop::start_with(Tray::None, "", &[]) else { return };
    desktop.ana();
    let xvfb = &desktop.xvfb;
    poll(SHORT, "the window", || window_visible(xvfb).then_some(()));
    close_window(xvfb);
    // Not quit yet: the window says why closing will quit, and remembers having said it.
    let settings = desktop.ana_dir.join("config.toml");
    poll(SHORT, "told_no_tray saved", || {
        std::fs::read_to_string(&settings).ok().filter(|saved| saved.contains("told_no_tray = true"))
    });
    assert!(desktop.app.0.try_wait().unwrap().is_none(), "Pigeon quit without saying so");
    assert!(window_visible(xvfb), "the window went away without a tray to go to");
    // Told once: the next close quits.
    close_window(xvfb);
    let exit = wait_exit(&mut desktop.app.0, SHORT);
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn without_an_idle_service_the_x_server_tells_the_idle_time() {
    let Some(mut desktop) = Desktop::start("away_after_secs = 2\n", &[]) else { return };
    desktop.idle_ms.store(NOT_TOLD, Ordering::Relaxed);
    let ana = desktop.ana();
    // Nobody touches this Xvfb: its idle time passes 2 s. Then someone is back at the mouse
    // (moving it every few hundred ms, or the 2 s would pass again before Bo hears).
    desktop.expect_status(ana, pigeon::node::Status::Away);
    let deadline = Instant::now() + SHORT;
    for step in 0u32.. {
        assert!(Instant::now() < deadline, "Ana not online again within {SHORT:?}");
        let moved = Process::new("xdotool")
            .args(["mousemove", &(200 + step % 2 * 50).to_string(), "200"])
            .env("DISPLAY", &desktop.xvfb.display)
            .status()
            .unwrap();
        assert!(moved.success());
        let online = desktop.bo.drain_for(Duration::from_millis(300)).into_iter().any(|event| {
            matches!(event, Event::PeerUpdated { peer } if peer.id == ana && peer.status == pigeon::node::Status::Online)
        });
        if online {
            break;
        }
    }
}

#[test]
fn an_invite_link_opened_while_pigeon_runs_is_used_by_the_running_window() {
    let Some(mut desktop) = Desktop::start("", &[]) else { return };
    desktop.ana();
    desktop.bo.send(&Command::MakeInvite);
    let link = desktop.bo.expect(SHORT, "Bo's link", |event| match event {
        Event::Invite { link } => Some(link.clone()),
        _ => None,
    });
    // As a browser or a chat opens a pigeon:// link: `pigeon LINK` (the .desktop entry's %u).
    let mut opened = App(Process::new(pigeon_bin())
        .args(desktop.net.flags(1, 2, &desktop.ana_dir))
        .arg(&link)
        .env("DISPLAY", &desktop.xvfb.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &desktop.bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let exit = wait_exit(&mut opened.0, SHORT);
    assert!(exit.success(), "{exit:?}");
    desktop.bo.expect(SHORT, "Ana verified through Bo's link", |event| match event {
        Event::PeerUpdated { peer } if peer.name == "Ana" && peer.trust == pigeon::node::Trust::Verified => {
            Some(())
        }
        _ => None,
    });
    assert!(desktop.app.0.try_wait().unwrap().is_none(), "one Pigeon, still running");
}
