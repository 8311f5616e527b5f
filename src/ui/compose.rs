//! The send pane: buttons to attach files or a folder above a multi-line box where Enter
//! sends and Shift+Enter starts a new line, with the Send button at its right.

use eframe::egui::{self, Align, Key, Layout, Modifiers, Ui};

use super::i18n::Lang;
use crate::tr;

/// Tallest the box grows, in lines, before it scrolls.
const MAX_ROWS: usize = 8;

/// What the user asked for in the pane this frame.
#[derive(Debug, PartialEq, Eq)]
pub enum ComposeAction {
    /// Send this text (already trimmed, never empty).
    Send(String),
    /// Open the file picker.
    AttachFiles,
    /// Open the folder picker.
    AttachFolder,
}

/// The box's text and how it is to be drawn.
pub struct Input<'a> {
    /// The text typed so far; emptied on send.
    pub draft: &'a mut String,
    /// False once the node stopped.
    pub enabled: bool,
    /// Move the cursor into the box (a conversation or room was just opened: what the user
    /// types next goes there).
    pub focus: bool,
}

/// Draws the pane over `input`.
pub fn show(ui: &mut Ui, input: Input<'_>, lang: Lang) -> Option<ComposeAction> {
    let Input { draft, enabled, focus } = input;
    let mut action = None;
    let edit_id = ui.scope_id().with("compose");
    // Enter must be taken before the text box sees it, or it would insert a line break.
    let focused = ui.memory(|memory| memory.has_focus(edit_id));
    // (consume_key ignores Shift, which must still mean "new line".)
    if focused
        && ui.input_mut(|input| !input.modifiers.shift && input.consume_key(Modifiers::NONE, Key::Enter))
    {
        action = take(draft);
    }
    ui.horizontal(|ui| {
        if ui.add_enabled(enabled, egui::Button::new(tr!(lang, "compose.attach_files")).small()).clicked() {
            action = Some(ComposeAction::AttachFiles);
        }
        if ui.add_enabled(enabled, egui::Button::new(tr!(lang, "compose.attach_folder")).small()).clicked() {
            action = Some(ComposeAction::AttachFolder);
        }
    });
    // Send at the right, the box takes the rest of the width, however narrow the window.
    ui.with_layout(Layout::right_to_left(Align::Min), |ui| {
        let send =
            ui.add_enabled(enabled && !draft.trim().is_empty(), egui::Button::new(tr!(lang, "compose.send")));
        if send.clicked() {
            action = take(draft);
        }
        let line = egui::TextStyle::Body.resolve(ui.style()).size * 1.35;
        let rows = draft.lines().count().clamp(2, MAX_ROWS);
        let edit = egui::TextEdit::multiline(draft)
            .id(edit_id)
            .hint_text(tr!(lang, "compose.hint"))
            .desired_rows(2)
            .desired_width(ui.available_width())
            .return_key(egui::KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter));
        egui::ScrollArea::vertical().max_height(rows as f32 * line + 12.0).show(ui, |ui| {
            let response = ui.add_enabled(enabled, edit);
            if focus && enabled {
                response.request_focus();
            }
        });
    });
    action
}

fn take(draft: &mut String) -> Option<ComposeAction> {
    let text = draft.trim().to_owned();
    if text.is_empty() {
        return None;
    }
    draft.clear();
    Some(ComposeAction::Send(text))
}
