//! Living on the desktop: the tray icon and its menu, clicks in notifications, later starts
//! of Pigeon asking to show the window, automatic away, and what closing the window does.
//! The part that needs no window runs the same in a start hidden in the tray, before the
//! window has ever been made.

use eframe::egui::{self, ViewportCommand};

use super::PigeonApp;
use crate::node::{Command, Status};
use crate::tr;
use crate::ui::instance::{Request, WindowRequests};
use crate::ui::notifier::{Clicked, Topic};
use crate::ui::settings::SettingsPatch;
use crate::ui::transfers::TransferAction;
use crate::ui::tray::{Shown, Tray, TrayAction};

/// The tray icon, whether closing the window hides it, later starts asking to show it.
#[derive(Default)]
pub(super) struct Desktop {
    tray: Option<Tray>,
    requests: Option<WindowRequests>,
    /// The user asked to quit (tray menu, Ctrl+Q): the next close is not turned into a hide.
    quitting: bool,
    /// Our status shows away because the user is idle (the setting stays as it was).
    pub(super) away_while_idle: bool,
    /// Telling the user, once, that closing quits on this desktop (it has no tray).
    telling_closing_quits: bool,
}

impl Desktop {
    pub(super) fn has_tray(&self) -> bool {
        self.tray.is_some()
    }
}

/// What the user wants of the window, asked from outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Nothing.
    Nothing,
    /// Show it (tray, a clicked notification, a later start of Pigeon).
    Open,
    /// Quit Pigeon (the tray's menu).
    Quit,
}

impl PigeonApp {
    /// Puts Pigeon in the desktop's tray (`tray`, when the caller made it already, else one is
    /// tried here) and listens for later starts.
    pub fn on_desktop(mut self, tray: Option<Tray>) -> PigeonApp {
        match WindowRequests::listen(&self.config.data_dir, &self.wake) {
            Ok(requests) => self.desktop.requests = Some(requests),
            Err(err) => log::warn!("a second start cannot show this window: {err}"),
        }
        let shown = self.tray_shown();
        self.desktop.tray = match tray.map_or_else(|| Tray::start(&self.wake, shown), Ok) {
            Ok(tray) => Some(tray),
            Err(err) => {
                log::info!("no tray icon ({err}): closing the window quits Pigeon");
                None
            }
        };
        self
    }

    pub(super) fn tray_shown(&self) -> Shown {
        let status = if self.desktop.away_while_idle { Status::Away } else { self.config.settings.status };
        Shown {
            unread: self.model.total_unread(),
            status,
            away_while_idle: self.desktop.away_while_idle,
            lang: self.lang,
        }
    }

    /// The tray's choices, clicks in notifications, later starts and automatic away: what
    /// needs no window. Returns what is wanted of the window.
    pub(super) fn live_on_desktop(&mut self) -> Wanted {
        let mut actions = self.desktop.tray.as_ref().map(Tray::actions).unwrap_or_default();
        for request in self.desktop.requests.as_ref().map(WindowRequests::take).unwrap_or_default() {
            actions.push(TrayAction::Open);
            if let Request::UseInvite(link) = request {
                self.use_invite_link(&link);
            }
        }
        for clicked in self.notifier.clicked() {
            match clicked {
                Clicked::Open(topic) => {
                    actions.push(TrayAction::Open);
                    match topic {
                        Topic::Peer(peer) => self.select(peer, egui::Modifiers::NONE, &[]),
                        Topic::Room(room) => self.open_room(room),
                    }
                }
                Clicked::Accept(transfer_id) => {
                    self.on_transfer_action(TransferAction::Accept(transfer_id, false));
                }
                Clicked::Decline(transfer_id) => {
                    self.on_transfer_action(TransferAction::Decline(transfer_id));
                }
            }
        }
        let mut wanted = Wanted::Nothing;
        for action in actions {
            match action {
                TrayAction::Open if wanted == Wanted::Nothing => wanted = Wanted::Open,
                TrayAction::Open => {}
                TrayAction::SetStatus(status) => {
                    self.apply_settings(&SettingsPatch { status: Some(status), ..SettingsPatch::default() });
                }
                TrayAction::Quit => wanted = Wanted::Quit,
            }
        }
        self.away_while_idle();
        let shown = self.tray_shown();
        if let Some(tray) = &mut self.desktop.tray {
            tray.show(shown);
        }
        wanted
    }

    /// The window's part: showing it, Ctrl+Q, and closing it into the tray.
    pub(super) fn window_on_desktop(&mut self, ctx: &egui::Context, wanted: Wanted) {
        match wanted {
            Wanted::Nothing => {}
            Wanted::Open => {
                ctx.send_viewport_cmd(ViewportCommand::Visible(true));
                ctx.send_viewport_cmd(ViewportCommand::Focus);
            }
            Wanted::Quit => self.quit(ctx),
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Q)) {
            self.quit(ctx);
        }
        let closing = ctx.input(|i| i.viewport().close_requested());
        if !closing || self.desktop.quitting || !self.config.settings.keep_running {
            return;
        }
        if self.desktop.has_tray() {
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            ctx.send_viewport_cmd(ViewportCommand::Visible(false));
        } else if !self.config.settings.told_no_tray {
            // The user expects to stay reachable, as with a tray: say once that they will not.
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            self.desktop.telling_closing_quits = true;
            self.apply_settings(&SettingsPatch { told_no_tray: Some(true), ..SettingsPatch::default() });
        }
    }

    /// "This desktop has no tray: closing quits", with Quit and Keep the window.
    pub(super) fn closing_quits_dialog(&mut self, ctx: &egui::Context) {
        if !self.desktop.telling_closing_quits {
            return;
        }
        let lang = self.lang;
        let (mut quit, mut keep) = (false, false);
        let modal = egui::Modal::new(egui::Id::unique("closing-quits")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading(tr!(lang, "tray.none_title"));
            ui.label(tr!(lang, "tray.none_explain"));
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                quit = ui.button(tr!(lang, "tray.quit_now")).clicked();
                keep = ui.button(tr!(lang, "tray.keep_open")).clicked();
            });
        });
        if quit {
            self.desktop.telling_closing_quits = false;
            self.quit(ctx);
        } else if keep || modal.should_close() {
            self.desktop.telling_closing_quits = false;
        }
    }

    /// Idle while online: the others see away, without the setting changing; back at the
    /// keyboard, online again. A status the user chose (away, busy) is left alone.
    fn away_while_idle(&mut self) {
        let status = match self.idle.changed() {
            Some(true) if self.config.settings.status == Status::Online => {
                self.desktop.away_while_idle = true;
                Status::Away
            }
            Some(false) if self.desktop.away_while_idle => {
                self.desktop.away_while_idle = false;
                self.config.settings.status
            }
            _ => return,
        };
        self.send(Command::SetProfile { name: None, group: None, status: Some(status) });
    }

    fn quit(&mut self, ctx: &egui::Context) {
        self.desktop.quitting = true;
        ctx.send_viewport_cmd(ViewportCommand::Close);
    }
}
