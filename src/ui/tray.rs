//! The icon in the desktop's tray, so that Pigeon stays reachable with its window closed: a
//! StatusNotifierItem on the session bus (by `ksni`, pure Rust, no GTK), which KDE, GNOME
//! with the AppIndicator extension, Xfce, Cinnamon, MATE and most panels show. It shows the
//! unread count (tooltip, and the "needs attention" state), opens the window on a click, and
//! has a menu: Open Pigeon, our status, Quit. Its D-Bus thread hands the user's choices to
//! the window, and wakes it, since a hidden window draws no frames of its own.

use super::wake::Wake;
use crossbeam_channel::{Receiver, Sender};
use ksni::blocking::TrayMethods;

use super::i18n::Lang;
use super::settings::status_name;
use crate::node::Status;
use crate::tr;

/// What the user chose in the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window (the icon was clicked, or "Open Pigeon").
    Open,
    /// Our status, from the menu.
    SetStatus(Status),
    /// Quit Pigeon.
    Quit,
}

/// What the tray shows; changed by the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// Unread messages and offers.
    pub unread: u64,
    /// Our status.
    pub status: Status,
    /// The status is away because the user is idle (the choice stays what it was).
    pub away_while_idle: bool,
    /// The menu's language.
    pub lang: Lang,
}

/// The running tray icon; dropping it removes the icon.
pub struct Tray {
    handle: ksni::blocking::Handle<Item>,
    actions: Receiver<TrayAction>,
    shown: Shown,
}

/// Choices the window has not taken yet; more are dropped (the user cannot click faster
/// than the window takes them, unless it hangs).
const PENDING_ACTIONS: usize = 16;

/// The icon's pixels, 32 × 32.
const ICON_PNG: &[u8] = include_bytes!("../../assets/pigeon-32.png");

impl Tray {
    /// Puts the icon in the tray; `Err` (why) when the desktop has no tray (no
    /// StatusNotifierWatcher on the session bus) or there is no session bus.
    pub fn start(wake: &Wake, shown: Shown) -> Result<Tray, String> {
        let (tx, actions) = crossbeam_channel::bounded(PENDING_ACTIONS);
        let item = Item { shown, tx, wake: wake.clone(), icon: icon() };
        let handle = item.spawn().map_err(|err| err.to_string())?;
        Ok(Tray { handle, actions, shown })
    }

    /// The user's choices since the last call.
    pub fn actions(&self) -> Vec<TrayAction> {
        self.actions.try_iter().collect()
    }

    /// Shows `shown` (a no-op when nothing changed, so it can be called every frame).
    pub fn show(&mut self, shown: Shown) {
        if shown != self.shown {
            self.shown = shown;
            // The D-Bus thread takes it; the window never waits for it.
            self.handle.update(move |item: &mut Item| item.shown = shown);
        }
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The item as D-Bus sees it (lives on ksni's thread).
struct Item {
    shown: Shown,
    tx: Sender<TrayAction>,
    wake: Wake,
    icon: Vec<ksni::Icon>,
}

impl Item {
    fn choose(&self, action: TrayAction) {
        if self.tx.try_send(action).is_ok() {
            self.wake.now();
        }
    }
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        "pigeon".into()
    }

    fn title(&self) -> String {
        "Pigeon".into()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::Communications
    }

    fn status(&self) -> ksni::Status {
        if self.shown.unread > 0 { ksni::Status::NeedsAttention } else { ksni::Status::Active }
    }

    fn icon_name(&self) -> String {
        "pigeon".into()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icon.clone()
    }

    fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icon.clone()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        let lang = self.shown.lang;
        let description = match self.shown.unread {
            0 if self.shown.away_while_idle => tr!(lang, "tray.away_while_idle").into_owned(),
            0 => status_name(self.shown.status, lang),
            count => tr!(lang, "tray.unread", count = count).into_owned(),
        };
        ksni::ToolTip { title: "Pigeon".into(), description, ..Default::default() }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.choose(TrayAction::Open);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::{RadioGroup, RadioItem, StandardItem};
        let lang = self.shown.lang;
        let statuses = [Status::Online, Status::Away, Status::Busy];
        let selected = statuses.iter().position(|status| *status == self.shown.status).unwrap_or(0);
        vec![
            StandardItem {
                label: tr!(lang, "tray.open").into_owned(),
                activate: Box::new(|item: &mut Item| item.choose(TrayAction::Open)),
                ..Default::default()
            }
            .into(),
            ksni::MenuItem::Separator,
            RadioGroup {
                selected,
                select: Box::new(move |item: &mut Item, index| {
                    if let Some(status) = statuses.get(index) {
                        item.choose(TrayAction::SetStatus(*status));
                    }
                }),
                options: statuses
                    .iter()
                    .map(|status| RadioItem { label: status_name(*status, lang), ..Default::default() })
                    .collect(),
            }
            .into(),
            ksni::MenuItem::Separator,
            StandardItem {
                label: tr!(lang, "tray.quit").into_owned(),
                activate: Box::new(|item: &mut Item| item.choose(TrayAction::Quit)),
                ..Default::default()
            }
            .into(),
        ]
    }
}

/// The icon as StatusNotifierItem wants it: ARGB32 in network byte order.
fn icon() -> Vec<ksni::Icon> {
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(png) => {
            let data = png.rgba.chunks_exact(4).flat_map(|p| [p[3], p[0], p[1], p[2]]).collect();
            let (width, height) = (png.width as i32, png.height as i32);
            vec![ksni::Icon { width, height, data }]
        }
        Err(err) => {
            log::warn!("tray icon: {err}");
            Vec::new()
        }
    }
}
