//! The window's own file and folder picker, drawn with egui (the `egui_file` crate): used when
//! the desktop has no file dialog of its own (no XDG portal, no zenity), so picking works on
//! any Linux desktop.

use std::path::PathBuf;

use eframe::egui;
use egui_file::FileDialog;

use super::i18n::Lang;
use crate::node::{PeerId, RoomId};
use crate::tr;

/// What the picked paths are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Files to send to these peers.
    SendFiles(Vec<PeerId>),
    /// A folder to send to these peers.
    SendFolder(Vec<PeerId>),
    /// Files to post to a room.
    RoomFiles(RoomId),
    /// A folder to post to a room.
    RoomFolder(RoomId),
    /// The new download folder (settings).
    DownloadFolder,
}

/// An open picker.
pub struct Picker {
    dialog: FileDialog,
    purpose: Purpose,
}

impl Picker {
    /// Opens a picker for `purpose`, starting in `start`.
    pub fn open(purpose: Purpose, start: PathBuf, lang: Lang) -> Picker {
        let dialog = match purpose {
            Purpose::SendFiles(_) | Purpose::RoomFiles(_) => FileDialog::open_file().multi_select(true),
            Purpose::SendFolder(_) | Purpose::RoomFolder(_) | Purpose::DownloadFolder => {
                FileDialog::select_folder()
            }
        };
        let mut dialog = dialog
            .initial_path(start)
            .title(&tr!(lang, "picker.title"))
            .open_button_text(tr!(lang, "picker.choose").into_owned().into())
            .cancel_button_text(tr!(lang, "picker.cancel").into_owned().into())
            .show_new_folder(false)
            .show_rename(false)
            .default_size([640.0, 420.0]);
        dialog.open();
        Picker { dialog, purpose }
    }

    /// Draws the picker; once the user chose, returns the purpose and the paths (empty when
    /// cancelled). Returns `None` while it is open.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<(Purpose, Vec<PathBuf>)> {
        self.dialog.show(ctx);
        if self.dialog.visible() {
            return None;
        }
        let mut paths: Vec<PathBuf> = self.dialog.selection().into_iter().map(PathBuf::from).collect();
        if paths.is_empty() && self.dialog.selected() {
            paths.extend(self.dialog.path().map(PathBuf::from));
        }
        if !self.dialog.selected() {
            paths.clear();
        }
        Some((self.purpose.clone(), paths))
    }
}
