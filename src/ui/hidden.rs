//! A start hidden in the tray (`pigeon --hidden`, as the session's autostart starts it): the
//! node, the tray icon, notifications and automatic away run on this thread without a
//! window, and the window is made only when the user first opens it. A Pigeon that sits in
//! the tray all day then holds no window, GPU context or fonts and draws nothing: it costs
//! what the node costs.

use std::sync::Arc;
use std::time::Duration;

use super::app::{PigeonApp, Wanted};
use super::i18n::Lang;
use super::tray::{Shown, Tray};
use super::wake::Wake;
use crate::config::Config;
use crate::node::Node;

/// How a start in the tray ended.
pub enum InTray {
    /// The user opened the window: it takes over this state.
    Open(Box<PigeonApp>),
    /// The user quit from the tray.
    Quit,
    /// No tray to hide in, or the node did not start: the window opens now (and says why).
    Unable(Box<Config>),
}

/// The longest sleep without a wake: only a safety net, every change wakes the loop.
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);

/// Runs Pigeon in the tray until the user opens the window or quits.
pub fn wait_in_tray(config: Config) -> InTray {
    let wake = Wake::default();
    // The tray before the node: without one there is nothing to hide in, and a machine
    // without a desktop session never announces itself.
    let shown = Shown {
        unread: 0,
        status: config.settings.status,
        away_while_idle: false,
        lang: Lang::choose(config.settings.language.as_deref()),
    };
    let tray = match Tray::start(&wake, shown) {
        Ok(tray) => tray,
        Err(err) => {
            log::info!("no tray icon ({err}): the window opens instead of hiding");
            return InTray::Unable(Box::new(config));
        }
    };
    let node = match Node::start(&config) {
        Ok(node) => node,
        Err(err) => {
            log::warn!("{err}");
            return InTray::Unable(Box::new(config));
        }
    };
    let app = match PigeonApp::without_window(wake.clone(), node, config.clone(), Arc::new(|| {})) {
        Ok(app) => app,
        Err(err) => {
            log::warn!("{err}");
            return InTray::Unable(Box::new(config));
        }
    };
    let mut app = app.on_desktop(Some(tray));
    loop {
        match app.tick(false) {
            Wanted::Open => return InTray::Open(Box::new(app)),
            Wanted::Quit => return InTray::Quit,
            // A node that stopped is explained in the window.
            Wanted::Nothing if app.stopped() => return InTray::Open(Box::new(app)),
            Wanted::Nothing => wake.sleep(LONGEST_SLEEP),
        }
    }
}
