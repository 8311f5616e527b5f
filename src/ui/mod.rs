//! The desktop window (eframe/egui): peer list, conversation, compose box, transfers and
//! settings, in English and Simplified Chinese. It is one consumer of the node, like the CLI:
//! commands go in, events come out, and nothing here touches a socket or the database.
//!
//! - `app`: the eframe app; owns the node and the panes' state.
//! - `model`: what the window knows, built from node events (no egui, unit-tested).
//! - `peer_list`, `conversation`, `room`, `compose`, `search`, `transfers`, `settings`, `picker`: the
//!   panes.
//! - `fonts`, `i18n`, `text`, `theme`: CJK fonts, translations, links and times, colours and
//!   text sizes.
//! - `background`: the thread for disk, D-Bus and process work.
//! - `tray`, `notifier`, `idle`, `instance`, `autostart`: living on the desktop; `hidden`: a
//!   start in the tray that makes the window only when it is first opened; `wake`: how the
//!   threads wake the window, or the loop standing in for it.

mod app;
mod autostart;
mod background;
mod compose;
mod conversation;
mod doctor;
pub mod fonts;
mod hidden;
pub mod i18n;
mod idle;
mod instance;
mod invite;
pub mod model;
mod notifier;
mod peer_list;
mod picker;
mod pin;
mod room;
mod search;
mod settings;
mod startup;
mod text;
mod theme;
mod transfers;
mod tray;
mod wake;

use std::sync::Arc;

pub use app::PigeonApp;
pub use instance::{Ask, hand_over};
pub use startup::Root;

use crate::config::Config;

/// The window's icon, also installed as the app icon.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/pigeon-256.png");

/// Size of a new window.
pub const WINDOW_SIZE: [f32; 2] = [1024.0, 680.0];

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No display, no OpenGL, or the window system refused (eframe's reason, as text: its
    /// error may hold a cause that cannot cross threads).
    #[error("cannot open the window: {0}")]
    Window(String),
}

/// Opens the window and starts the node in it; returns when Pigeon quits (closing the
/// window hides it in the tray, when there is one). The node starts only once the window
/// exists, so a machine without a display never announces itself. With `hidden`, Pigeon
/// starts in the tray without a window (when there is a tray), and the window is made when
/// the user first opens it. With `invite`, the window uses that invite link once it runs.
pub fn run(config: Config, hidden: bool, invite: Option<String>) -> Result<(), RunError> {
    let (config, running) = if hidden {
        match hidden::wait_in_tray(config) {
            hidden::InTray::Quit => return Ok(()),
            hidden::InTray::Open(app) => (app.config().clone(), Some(app)),
            hidden::InTray::Unable(config) => (*config, None),
        }
    } else {
        (config, None)
    };
    let mut viewport = eframe::egui::ViewportBuilder::default()
        .with_title("Pigeon")
        .with_app_id("pigeon")
        .with_inner_size(WINDOW_SIZE)
        .with_min_inner_size([640.0, 400.0]);
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(Arc::new(icon)),
        Err(err) => log::warn!("window icon: {err}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        // Window size and position are kept with the node's other state.
        persistence_path: Some(config.data_dir.join("window.ron")),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "Pigeon",
        options,
        Box::new(move |cc| {
            let mut root = match running {
                Some(mut app) => {
                    app.attach(&cc.egui_ctx);
                    Root::Running(app)
                }
                None => Root::start(&cc.egui_ctx, config)?,
            };
            if let (Root::Running(app), Some(link)) = (&mut root, invite) {
                app.use_invite_link(&link);
            }
            Ok(Box::new(root))
        }),
    )
    .map_err(|err| RunError::Window(err.to_string()))
}
