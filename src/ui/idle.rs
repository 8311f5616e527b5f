//! Automatic away, as IP Messenger and FeiQ do it: after some minutes without keyboard or
//! mouse input our status becomes away, and returns when the user is back. The session's
//! idle time comes from its D-Bus: GNOME's `org.gnome.Mutter.IdleMonitor`, else the
//! `org.freedesktop.ScreenSaver` of KDE and others, else (an X11 session only: under
//! Wayland, X sees only its own clients' input) X's MIT-SCREEN-SAVER extension. A thread of
//! its own asks every few seconds (a quarter of the threshold, at most 15 s) and tells the
//! window only when the user goes idle or comes back.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use eframe::egui;

/// The longest wait between two looks at the idle time.
const MAX_POLL: Duration = Duration::from_secs(15);

/// The shortest (a threshold of seconds is for trials and tests).
const MIN_POLL: Duration = Duration::from_millis(500);

/// Whether the user is idle, as it changes; the thread ends when this is dropped.
pub struct IdleWatch {
    changes: Receiver<bool>,
    /// New thresholds, in seconds (0: never away).
    thresholds: Sender<u64>,
}

impl IdleWatch {
    /// Watches the session's idle time against `threshold_secs` (0: never away).
    pub fn start(ctx: &egui::Context, threshold_secs: u64) -> IdleWatch {
        let (tx, changes) = crossbeam_channel::bounded(4);
        let (thresholds, updates) = crossbeam_channel::bounded(4);
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("pigeon-idle".into())
            .spawn(move || watch(&ctx, threshold_secs, &updates, &tx));
        if let Err(err) = spawned {
            log::warn!("no automatic away: {err}");
        }
        IdleWatch { changes, thresholds }
    }

    /// Goes idle after `secs` from now on (0: never).
    pub fn set_threshold(&self, secs: u64) {
        self.thresholds.try_send(secs).ok();
    }

    /// The latest change: `Some(true)` when the user went idle, `Some(false)` when back.
    pub fn changed(&self) -> Option<bool> {
        self.changes.try_iter().last()
    }
}

fn watch(ctx: &egui::Context, threshold_secs: u64, updates: &Receiver<u64>, changes: &Sender<bool>) {
    let sources = Sources { bus: zbus::blocking::Connection::session().ok(), x11: x11_screen() };
    let mut threshold = Duration::from_secs(threshold_secs);
    let mut idle = false;
    loop {
        if !threshold.is_zero() {
            let Some(idle_for) = sources.idle_time() else {
                return log::info!("no automatic away: the session does not tell its idle time");
            };
            if (idle_for >= threshold) != idle {
                idle = !idle;
                if changes.send(idle).is_err() {
                    return;
                }
                ctx.request_repaint();
            }
        }
        let poll = if threshold.is_zero() { MAX_POLL } else { (threshold / 4).clamp(MIN_POLL, MAX_POLL) };
        match updates.recv_timeout(poll) {
            Ok(secs) => threshold = Duration::from_secs(secs),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Where the idle time can come from.
struct Sources {
    bus: Option<zbus::blocking::Connection>,
    /// An X connection and its root window, in an X11 session.
    x11: Option<(x11rb::rust_connection::RustConnection, u32)>,
}

impl Sources {
    /// How long the session has had no input, from whichever source answers.
    fn idle_time(&self) -> Option<Duration> {
        self.bus.as_ref().and_then(bus_idle_time).or_else(|| {
            use x11rb::protocol::screensaver::ConnectionExt;
            let (conn, root) = self.x11.as_ref()?;
            let info = conn.screensaver_query_info(*root).ok()?.reply().ok()?;
            Some(Duration::from_millis(u64::from(info.ms_since_user_input)))
        })
    }
}

/// The X display of an X11 session (not XWayland's: it sees only X clients' input).
fn x11_screen() -> Option<(x11rb::rust_connection::RustConnection, u32)> {
    let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var("XDG_SESSION_TYPE").is_ok_and(|kind| kind == "wayland");
    if wayland {
        return None;
    }
    use x11rb::connection::Connection;
    let (conn, screen) = x11rb::connect(None).ok()?;
    let root = conn.setup().roots.get(screen)?.root;
    Some((conn, root))
}

/// The idle time from the session bus's services: GNOME's, else the freedesktop one.
fn bus_idle_time(bus: &zbus::blocking::Connection) -> Option<Duration> {
    let mutter =
        ask::<u64>(bus, "org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core", "GetIdletime");
    let ms = mutter.or_else(|| {
        ask::<u32>(bus, "org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "GetSessionIdleTime")
            .map(u64::from)
    })?;
    Some(Duration::from_millis(ms))
}

/// Calls `method` (no arguments) of the service `name` (its interface has the same name) at
/// `path`; `None` when it is not there or answers something else.
fn ask<T: serde::de::DeserializeOwned + zbus::zvariant::Type>(
    bus: &zbus::blocking::Connection,
    name: &str,
    path: &str,
    method: &str,
) -> Option<T> {
    let reply = bus.call_method(Some(name), path, Some(name), method, &()).ok()?;
    reply.body().deserialize().ok()
}
