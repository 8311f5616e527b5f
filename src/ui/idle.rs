//! Automatic away, as IP Messenger and FeiQ do it: after some minutes without keyboard or
//! mouse input our status becomes away, and returns when the user is back. The session's
//! idle time comes from its D-Bus: GNOME's `org.gnome.Mutter.IdleMonitor`, else the
//! `org.freedesktop.ScreenSaver` of KDE and others, else (an X11 session only: under
//! Wayland, X sees only its own clients' input) X's MIT-SCREEN-SAVER extension. A thread of
//! its own asks when the user could first have become idle (the threshold after the last
//! input), every few seconds while away, and tells the window only when the user goes idle
//! or comes back.

use std::cell::Cell;
use std::time::Duration;

use super::wake::Wake;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// How often the idle time is looked at while away, to see the user come back.
const LOOK_WHILE_AWAY: Duration = Duration::from_secs(3);

/// The shortest wait between two looks.
const MIN_LOOK: Duration = Duration::from_millis(500);

/// Whether the user is idle, as it changes; the thread ends when this is dropped.
pub struct IdleWatch {
    changes: Receiver<bool>,
    /// New thresholds, in seconds (0: never away).
    thresholds: Sender<u64>,
}

impl IdleWatch {
    /// Watches the session's idle time against `threshold_secs` (0: never away).
    pub fn start(wake: &Wake, threshold_secs: u64) -> IdleWatch {
        let (tx, changes) = crossbeam_channel::bounded(4);
        let (thresholds, updates) = crossbeam_channel::bounded(4);
        let wake = wake.clone();
        let spawned = std::thread::Builder::new()
            .name("pigeon-idle".into())
            .spawn(move || watch(&wake, threshold_secs, &updates, &tx));
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

fn watch(wake: &Wake, threshold_secs: u64, updates: &Receiver<u64>, changes: &Sender<bool>) {
    let sources = Sources {
        bus: zbus::blocking::Connection::session().ok(),
        x11: x11_screen(),
        last: Cell::new(Source::Mutter),
    };
    let mut threshold = Duration::from_secs(threshold_secs);
    let mut idle = false;
    loop {
        let next_look = if threshold.is_zero() {
            None
        } else {
            let Some(idle_for) = sources.idle_time() else {
                return log::info!("no automatic away: the session does not tell its idle time");
            };
            if (idle_for >= threshold) != idle {
                idle = !idle;
                if changes.send(idle).is_err() {
                    return;
                }
                wake.now();
            }
            // At the keyboard, the user cannot be idle before the threshold is reached
            // counting from the last input: no look is needed before then.
            Some(if idle { LOOK_WHILE_AWAY } else { (threshold - idle_for).max(MIN_LOOK) })
        };
        let update = match next_look {
            Some(wait) => updates.recv_timeout(wait),
            None => updates.recv().map_err(|_closed| RecvTimeoutError::Disconnected),
        };
        match update {
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
    /// The source that answered last: asked first next time, so that a desktop with only the
    /// last of them is not asked the others every time.
    last: Cell<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Mutter,
    ScreenSaver,
    X11,
}

impl Sources {
    /// How long the session has had no input, from whichever source answers.
    fn idle_time(&self) -> Option<Duration> {
        let last = self.last.get();
        let others = [Source::Mutter, Source::ScreenSaver, Source::X11].into_iter().filter(|s| *s != last);
        std::iter::once(last).chain(others).find_map(|source| {
            let idle = self.ask(source)?;
            self.last.set(source);
            Some(idle)
        })
    }

    fn ask(&self, source: Source) -> Option<Duration> {
        let ms = match source {
            Source::Mutter => ask::<u64>(
                self.bus.as_ref()?,
                "org.gnome.Mutter.IdleMonitor",
                "/org/gnome/Mutter/IdleMonitor/Core",
                "GetIdletime",
            )?,
            Source::ScreenSaver => u64::from(ask::<u32>(
                self.bus.as_ref()?,
                "org.freedesktop.ScreenSaver",
                "/org/freedesktop/ScreenSaver",
                "GetSessionIdleTime",
            )?),
            Source::X11 => {
                use x11rb::protocol::screensaver::ConnectionExt;
                let (conn, root) = self.x11.as_ref()?;
                u64::from(conn.screensaver_query_info(*root).ok()?.reply().ok()?.ms_since_user_input)
            }
        };
        Some(Duration::from_millis(ms))
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
