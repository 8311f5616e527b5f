//! The settings dialog: display name, group, status, language, theme, text size, download
//! folder, auto-accept, port and extra targets. Only the fields the user changed are written to the settings file,
//! so flags given for one session (`--bind`, `--no-broadcast` …) are never saved by accident.

use std::path::PathBuf;

use eframe::egui::{self, RichText};

use super::i18n::Lang;
use crate::config::{Settings, TextSize, Theme};
use crate::node::{PeerId, Status};
use crate::tr;

/// The dialog's fields while it is open.
#[derive(Debug, Clone)]
pub struct SettingsDialog {
    name: String,
    group: String,
    status: Status,
    language: Option<Lang>,
    theme: Theme,
    text_size: TextSize,
    /// Set by the folder picker too.
    pub download_dir: String,
    /// The download folder in effect when the dialog opened (finding it reads the disk, so
    /// once, not every frame).
    current_download_dir: PathBuf,
    auto_accept: bool,
    /// Sending limits, KB/s (0: none).
    speed_limit_kbps: u64,
    total_speed_limit_kbps: u64,
    keep_running: bool,
    /// Minutes idle before away (0: never).
    away_after_minutes: u64,
    /// Whether the session's autostart entry is there (read when the dialog opens), and
    /// the box for it.
    started_with_session: bool,
    start_with_session: bool,
    /// There is a place for the autostart entry (a home folder).
    can_start_with_session: bool,
    ipmsg: bool,
    localsend: bool,
    localsend_port: String,
    localsend_pin: String,
    port: String,
    targets: String,
    error: Option<String>,
}

/// How the dialog ended this frame.
#[derive(Debug)]
pub enum SettingsOutcome {
    /// Save: the fields changed, as a patch over any settings.
    Save(SettingsPatch),
    /// Closed without saving.
    Cancel,
    /// The user wants to pick the download folder.
    BrowseDownloadDir,
    /// Ask again before accepting this peer's files (applies at once).
    StopAutoAccept(PeerId),
}

/// The fields the user changed (`None`: left as it was).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SettingsPatch {
    /// Display name.
    pub name: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Language (`Some(None)`: follow the system).
    pub language: Option<Option<Lang>>,
    /// Light, dark or as the desktop is.
    pub theme: Option<Theme>,
    /// Text size.
    pub text_size: Option<TextSize>,
    /// Download folder.
    pub download_dir: Option<PathBuf>,
    /// Auto-accept.
    pub auto_accept: Option<bool>,
    /// Stay in the tray when the window is closed.
    pub keep_running: Option<bool>,
    /// Told that closing quits, on a desktop without a tray.
    pub told_no_tray: Option<bool>,
    /// Each transfer's sending limit, KB/s (0: none).
    pub speed_limit_kbps: Option<u64>,
    /// All transfers' sending limit, KB/s (0: none).
    pub total_speed_limit_kbps: Option<u64>,
    /// Seconds idle before away (0: never).
    pub away_after_secs: Option<u64>,
    /// Start at login (the autostart entry, not the settings file).
    pub start_with_session: Option<bool>,
    /// Talk to IP Messenger clients (takes effect at the next start).
    pub ipmsg: Option<bool>,
    /// Talk to LocalSend devices (takes effect at the next start).
    pub localsend: Option<bool>,
    /// LocalSend's port (takes effect at the next start).
    pub localsend_port: Option<u16>,
    /// The PIN LocalSend senders must give (`Some(None)`: none; at the next start).
    pub localsend_pin: Option<Option<String>>,
    /// Port (takes effect at the next start).
    pub port: Option<u16>,
    /// Extra targets.
    pub targets: Option<Vec<String>>,
}

impl SettingsPatch {
    /// Applies the changed fields to `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(name) = &self.name {
            settings.name.clone_from(name);
        }
        if let Some(group) = &self.group {
            settings.group.clone_from(group);
        }
        if let Some(status) = self.status {
            settings.status = status;
        }
        if let Some(language) = self.language {
            settings.language = language.map(|lang| lang.code().to_owned());
        }
        if let Some(theme) = self.theme {
            settings.theme = theme;
        }
        if let Some(text_size) = self.text_size {
            settings.text_size = text_size;
        }
        if let Some(dir) = &self.download_dir {
            settings.download_dir = Some(dir.clone());
        }
        if let Some(auto_accept) = self.auto_accept {
            settings.auto_accept = auto_accept;
        }
        if let Some(keep_running) = self.keep_running {
            settings.keep_running = keep_running;
        }
        if let Some(told) = self.told_no_tray {
            settings.told_no_tray = told;
        }
        if let Some(kbps) = self.speed_limit_kbps {
            settings.speed_limit_kbps = kbps;
        }
        if let Some(kbps) = self.total_speed_limit_kbps {
            settings.total_speed_limit_kbps = kbps;
        }
        if let Some(secs) = self.away_after_secs {
            settings.away_after_secs = secs;
        }
        if let Some(ipmsg) = self.ipmsg {
            settings.ipmsg = ipmsg;
        }
        if let Some(localsend) = self.localsend {
            settings.localsend = localsend;
        }
        if let Some(port) = self.localsend_port {
            settings.localsend_port = port;
        }
        if let Some(pin) = &self.localsend_pin {
            settings.localsend_pin.clone_from(pin);
        }
        if let Some(port) = self.port {
            settings.port = port;
        }
        if let Some(targets) = &self.targets {
            settings.targets.clone_from(targets);
        }
    }

    /// Whether something that only a restart applies changed.
    pub fn needs_restart(&self) -> bool {
        self.port.is_some()
            || self.ipmsg.is_some()
            || self.localsend.is_some()
            || self.localsend_port.is_some()
            || self.localsend_pin.is_some()
    }
}

impl SettingsDialog {
    /// A dialog showing `settings` as they are in effect, with the download folder in use
    /// and whether Pigeon starts with the session (`None`: it cannot, there is no home).
    pub fn new(
        settings: &Settings,
        download_dir: &std::path::Path,
        start_with_session: Option<bool>,
    ) -> SettingsDialog {
        let (can_start_with_session, start_with_session) =
            (start_with_session.is_some(), start_with_session.unwrap_or(false));
        SettingsDialog {
            name: settings.name.clone(),
            group: settings.group.clone(),
            status: settings.status,
            language: settings.language.as_deref().map(|code| Lang::choose(Some(code))),
            theme: settings.theme,
            text_size: settings.text_size,
            download_dir: download_dir.display().to_string(),
            current_download_dir: download_dir.to_path_buf(),
            auto_accept: settings.auto_accept,
            speed_limit_kbps: settings.speed_limit_kbps,
            total_speed_limit_kbps: settings.total_speed_limit_kbps,
            keep_running: settings.keep_running,
            away_after_minutes: settings.away_after_secs.div_ceil(60),
            started_with_session: start_with_session,
            start_with_session,
            can_start_with_session,
            ipmsg: settings.ipmsg,
            localsend: settings.localsend,
            localsend_port: settings.localsend_port.to_string(),
            localsend_pin: settings.localsend_pin.clone().unwrap_or_default(),
            port: settings.port.to_string(),
            targets: settings.targets.join("\n"),
            error: None,
        }
    }

    /// The download folder in effect, where the folder picker starts.
    pub fn current_download_dir(&self) -> &std::path::Path {
        &self.current_download_dir
    }

    /// Draws the dialog; `current` is what is in effect, to tell what changed;
    /// `auto_accept_from` the peers whose files are accepted without asking, with names.
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        current: &Settings,
        auto_accept_from: &[(PeerId, String)],
        has_tray: bool,
        lang: Lang,
    ) -> Option<SettingsOutcome> {
        let mut outcome = None;
        let modal = egui::Modal::new(egui::Id::unique("settings")).show(ctx, |ui| {
            ui.set_width(440.0);
            ui.heading(tr!(lang, "settings.title"));
            ui.add_space(6.0);
            // Taller than a small window: the fields scroll, the buttons stay in view.
            let fields_height = (ctx.content_rect().height() - 170.0).max(120.0);
            // A solid bar, not egui's floating one that shows only under the mouse: more
            // settings below must be seen to be there.
            ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
            egui::ScrollArea::vertical().max_height(fields_height).show(ui, |ui| {
                egui::Grid::new("settings-grid").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
                    labelled_text(ui, &tr!(lang, "settings.name"), &mut self.name);
                    labelled_text(ui, &tr!(lang, "settings.group"), &mut self.group);
                    let statuses =
                        [Status::Online, Status::Away, Status::Busy].map(|s| (s, status_name(s, lang)));
                    choice(ui, &tr!(lang, "settings.status"), &mut self.status, &statuses);
                    let mut languages = vec![(None, tr!(lang, "settings.language_system").into_owned())];
                    languages.extend(Lang::ALL.map(|l| (Some(l), l.native_name().to_owned())));
                    choice(ui, &tr!(lang, "settings.language"), &mut self.language, &languages);
                    let themes = [
                        (Theme::System, tr!(lang, "settings.theme_system").into_owned()),
                        (Theme::Light, tr!(lang, "settings.theme_light").into_owned()),
                        (Theme::Dark, tr!(lang, "settings.theme_dark").into_owned()),
                    ];
                    choice(ui, &tr!(lang, "settings.theme"), &mut self.theme, &themes);
                    let sizes = [
                        (TextSize::Small, tr!(lang, "settings.text_small").into_owned()),
                        (TextSize::Normal, tr!(lang, "settings.text_normal").into_owned()),
                        (TextSize::Large, tr!(lang, "settings.text_large").into_owned()),
                        (TextSize::Larger, tr!(lang, "settings.text_larger").into_owned()),
                    ];
                    choice(ui, &tr!(lang, "settings.text_size"), &mut self.text_size, &sizes);
                    ui.label(tr!(lang, "settings.download_dir"));
                    ui.horizontal(|ui| {
                        ui.add(egui::TextEdit::singleline(&mut self.download_dir).desired_width(300.0));
                        if ui.button(tr!(lang, "settings.browse")).clicked() {
                            outcome = Some(SettingsOutcome::BrowseDownloadDir);
                        }
                    });
                    ui.end_row();
                    ui.label("");
                    ui.checkbox(&mut self.auto_accept, tr!(lang, "settings.auto_accept"));
                    ui.end_row();
                    ui.label(tr!(lang, "settings.always_from"));
                    ui.vertical(|ui| {
                        if auto_accept_from.is_empty() {
                            ui.label(RichText::new(tr!(lang, "settings.always_from_none")).weak());
                        }
                        for (peer, name) in auto_accept_from {
                            ui.horizontal(|ui| {
                                ui.label(name);
                                if ui.small_button(tr!(lang, "settings.always_from_remove")).clicked() {
                                    outcome = Some(SettingsOutcome::StopAutoAccept(*peer));
                                }
                            });
                        }
                    });
                    ui.end_row();
                    ui.label(tr!(lang, "settings.speed_limit"));
                    ui.vertical(|ui| {
                        let limit = |ui: &mut egui::Ui, kbps: &mut u64, unit: &str| {
                            ui.horizontal(|ui| {
                                ui.add(egui::DragValue::new(kbps).range(0..=10_000_000).speed(16.0));
                                ui.label(unit);
                            });
                        };
                        limit(ui, &mut self.speed_limit_kbps, &tr!(lang, "settings.speed_per_transfer"));
                        limit(ui, &mut self.total_speed_limit_kbps, &tr!(lang, "settings.speed_total"));
                        ui.label(RichText::new(tr!(lang, "settings.speed_none")).small().weak());
                    });
                    ui.end_row();
                    ui.label("");
                    ui.vertical(|ui| {
                        ui.add_enabled(
                            has_tray,
                            egui::Checkbox::new(&mut self.keep_running, tr!(lang, "settings.keep_running")),
                        );
                        if !has_tray {
                            ui.label(RichText::new(tr!(lang, "settings.no_tray")).small().weak());
                        }
                        ui.add_enabled(
                            self.can_start_with_session,
                            egui::Checkbox::new(
                                &mut self.start_with_session,
                                tr!(lang, "settings.start_with_session"),
                            ),
                        );
                        if !self.can_start_with_session {
                            ui.label(RichText::new(tr!(lang, "settings.no_autostart")).small().weak());
                        }
                        ui.horizontal(|ui| {
                            ui.label(tr!(lang, "settings.away_after"));
                            ui.add(egui::DragValue::new(&mut self.away_after_minutes).range(0..=240));
                            ui.label(tr!(lang, "settings.away_minutes"));
                        });
                    });
                    ui.end_row();
                    ui.label("");
                    ui.checkbox(&mut self.ipmsg, tr!(lang, "settings.ipmsg"));
                    ui.end_row();
                    labelled_text(ui, &tr!(lang, "settings.port"), &mut self.port);
                    ui.label("");
                    ui.checkbox(&mut self.localsend, tr!(lang, "settings.localsend"));
                    ui.end_row();
                    labelled_text(ui, &tr!(lang, "settings.localsend_port"), &mut self.localsend_port);
                    let label = ui.label(tr!(lang, "settings.localsend_pin"));
                    ui.add(
                        egui::TextEdit::singleline(&mut self.localsend_pin)
                            .desired_width(120.0)
                            .hint_text(tr!(lang, "settings.localsend_pin_hint")),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label(tr!(lang, "settings.targets"));
                    ui.add(
                        egui::TextEdit::multiline(&mut self.targets)
                            .desired_rows(3)
                            .hint_text(tr!(lang, "settings.targets_hint")),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                });
            });
            ui.label(RichText::new(tr!(lang, "settings.restart_note")).small().weak());
            if let Some(error) = &self.error {
                ui.label(RichText::new(error).color(ui.visuals().error_fg_color));
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.button(tr!(lang, "settings.save")).clicked() {
                    match self.patch(current, lang) {
                        Ok(patch) => outcome = Some(SettingsOutcome::Save(patch)),
                        Err(error) => self.error = Some(error),
                    }
                }
                if ui.button(tr!(lang, "settings.cancel")).clicked() {
                    outcome = Some(SettingsOutcome::Cancel);
                }
            });
        });
        if modal.should_close() && outcome.is_none() {
            outcome = Some(SettingsOutcome::Cancel);
        }
        outcome
    }

    fn patch(&self, current: &Settings, lang: Lang) -> Result<SettingsPatch, String> {
        let changed = |new: &str, old: &str| (new.trim() != old).then(|| new.trim().to_owned());
        let name = self.name.trim();
        if name.is_empty() {
            return Err(tr!(lang, "settings.name_empty").into_owned());
        }
        let port = parse_port(&self.port, lang)?;
        let localsend_port = parse_port(&self.localsend_port, lang)?;
        let pin = Some(self.localsend_pin.trim().to_owned()).filter(|pin| !pin.is_empty());
        let targets: Vec<String> =
            self.targets.lines().map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
        let download_dir = PathBuf::from(self.download_dir.trim());
        if !download_dir.is_absolute() {
            return Err(tr!(lang, "settings.bad_folder").into_owned());
        }
        let current_language = current.language.as_deref().map(|code| Lang::choose(Some(code)));
        Ok(SettingsPatch {
            name: changed(name, &current.name),
            group: changed(&self.group, &current.group),
            status: (self.status != current.status).then_some(self.status),
            told_no_tray: None,
            language: (self.language != current_language).then_some(self.language),
            theme: (self.theme != current.theme).then_some(self.theme),
            text_size: (self.text_size != current.text_size).then_some(self.text_size),
            download_dir: (download_dir != self.current_download_dir).then_some(download_dir),
            auto_accept: (self.auto_accept != current.auto_accept).then_some(self.auto_accept),
            keep_running: (self.keep_running != current.keep_running).then_some(self.keep_running),
            speed_limit_kbps: (self.speed_limit_kbps != current.speed_limit_kbps)
                .then_some(self.speed_limit_kbps),
            total_speed_limit_kbps: (self.total_speed_limit_kbps != current.total_speed_limit_kbps)
                .then_some(self.total_speed_limit_kbps),
            // Minutes shown: a threshold of seconds (from the file) stays unless changed.
            away_after_secs: (self.away_after_minutes != current.away_after_secs.div_ceil(60))
                .then_some(self.away_after_minutes * 60),
            start_with_session: (self.start_with_session != self.started_with_session)
                .then_some(self.start_with_session),
            ipmsg: (self.ipmsg != current.ipmsg).then_some(self.ipmsg),
            localsend: (self.localsend != current.localsend).then_some(self.localsend),
            localsend_port: (localsend_port != current.localsend_port).then_some(localsend_port),
            localsend_pin: (pin != current.localsend_pin).then_some(pin),
            port: (port != current.port).then_some(port),
            targets: (targets != current.targets).then_some(targets),
        })
    }
}

/// A port typed by the user, or why it is not one.
fn parse_port(text: &str, lang: Lang) -> Result<u16, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|&port: &u16| port > 0)
        .ok_or_else(|| tr!(lang, "settings.bad_port", port = text.trim()).into_owned())
}

/// A labelled drop-down of `options` (value and its name), in a grid row.
fn choice<T: PartialEq + Copy>(ui: &mut egui::Ui, text: &str, value: &mut T, options: &[(T, String)]) {
    let label = ui.label(text);
    let shown =
        options.iter().find(|(option, _)| option == value).map(|(_, name)| name.clone()).unwrap_or_default();
    egui::ComboBox::from_id_salt(("settings-choice", text))
        .selected_text(shown)
        .show_ui(ui, |ui| {
            for (option, name) in options {
                ui.selectable_value(value, *option, name);
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
}

fn labelled_text(ui: &mut egui::Ui, label: &str, value: &mut String) {
    let label = ui.label(label);
    ui.add(egui::TextEdit::singleline(value).desired_width(300.0)).labelled_by(label.id);
    ui.end_row();
}

/// A status as the user reads it.
pub fn status_name(status: Status, lang: Lang) -> String {
    let key = match status {
        Status::Online | Status::Unknown => "status.online",
        Status::Away => "status.away",
        Status::Busy => "status.busy",
    };
    tr!(lang, key).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_patched_and_bad_values_are_explained() {
        let current = Settings { name: "Ana".into(), ..Settings::default() };
        let folder = PathBuf::from("/home/ana/Downloads/Pigeon");
        let mut dialog = SettingsDialog::new(&current, &folder, Some(false));
        assert_eq!(dialog.patch(&current, Lang::En), Ok(SettingsPatch::default()));
        dialog.name = " Ana Li ".into();
        dialog.targets = "10.8.0.255\n\n 10.9.0.7:2426 ".into();
        let patch = dialog.patch(&current, Lang::En).unwrap();
        assert_eq!(patch.name.as_deref(), Some("Ana Li"));
        assert_eq!(patch.targets, Some(vec!["10.8.0.255".to_owned(), "10.9.0.7:2426".to_owned()]));
        assert!(!patch.needs_restart(), "targets apply at once");
        let mut saved = current.clone();
        patch.apply(&mut saved);
        assert_eq!((saved.name.as_str(), saved.port), ("Ana Li", current.port));
        dialog.port = "70000".into();
        assert!(dialog.patch(&current, Lang::En).unwrap_err().contains("70000"));
        dialog.port = current.port.to_string();
        dialog.download_dir = "relative/folder".into();
        assert!(dialog.patch(&current, Lang::En).is_err());
    }
}
