//! Message search: the field in the top bar (Ctrl+F), and the results shown in place of the
//! conversation — peer, time and the text around the match, highlighted. Enter or a click
//! opens the conversation at that message.
//!
//! The node answers from its index; the field asks once typing pauses, so a fast typist
//! sends one query, not one per letter.

use std::time::{Duration, Instant};

use eframe::egui::{self, Key, RichText, Sense, TextFormat, Ui, UiBuilder, text::LayoutJob};

use super::i18n::Lang;
use super::model::Model;
use super::text;
use crate::node::{Direction, PeerId};
use crate::tr;

/// Typing paused this long sends the query.
const TYPING_PAUSE: Duration = Duration::from_millis(250);

/// Results asked for; the newest come first.
pub const RESULTS: usize = 200;

/// Characters shown on each side of the match.
const CONTEXT: usize = 40;

/// The search field and what it asked.
#[derive(Debug, Default)]
pub struct SearchBar {
    /// The results take the conversation's place.
    pub open: bool,
    /// What is typed.
    pub text: String,
    /// Search only the conversation with this peer (offered when one was open).
    pub only: Option<PeerId>,
    /// The conversation open when the search started: what "only" can narrow to.
    pub scope: Option<PeerId>,
    /// What was last sent, and where.
    sent: Option<(String, Option<PeerId>)>,
    /// When the text last changed.
    typed_at: Option<Instant>,
    /// The field should take the keyboard in the next frame.
    focus: bool,
    /// The result Up/Down moved to.
    selected: usize,
    /// Up/Down moved it this frame: the list scrolls to it.
    moved: bool,
    /// Enter was pressed in the field: the selected result opens.
    pending_enter: bool,
}

/// What the user asked of the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchAction {
    /// Look for this text (in one conversation).
    Query(String, Option<PeerId>),
    /// Open the conversation with this peer at the message `seq`.
    Open(PeerId, i64),
}

impl SearchBar {
    /// Ctrl+F: the field takes the keyboard; `current` is the conversation on screen.
    pub fn start(&mut self, current: Option<PeerId>) {
        self.focus = true;
        self.open = !self.text.is_empty();
        if self.scope != current {
            self.scope = current;
            self.only = None;
        }
    }

    /// Closes the results (the text stays for the next Ctrl+F).
    pub fn close(&mut self) {
        self.open = false;
    }

    /// The field, for the top bar.
    pub fn field_ui(&mut self, ui: &mut Ui, lang: Lang) {
        let hint = tr!(lang, "search.hint");
        let edit = egui::TextEdit::singleline(&mut self.text).hint_text(hint).desired_width(220.0);
        let response = ui.add(edit);
        if std::mem::take(&mut self.focus) {
            response.request_focus();
        }
        if response.changed() {
            self.typed_at = Some(Instant::now());
            self.open = !self.text.trim().is_empty();
            self.selected = 0;
        }
        if response.has_focus() || response.lost_focus() {
            let (escape, enter, up, down) = ui.input(|i| {
                (
                    i.key_pressed(Key::Escape),
                    i.key_pressed(Key::Enter),
                    i.key_pressed(Key::ArrowUp),
                    i.key_pressed(Key::ArrowDown),
                )
            });
            if escape {
                self.close();
                response.surrender_focus();
            }
            if enter && self.open {
                // Enter sends at once (no pause), or opens the selected result.
                self.typed_at = None;
                self.pending_enter = true;
                response.request_focus();
            }
            self.moved = up != down;
            if up && !down {
                self.selected = self.selected.saturating_sub(1);
            } else if down && !up {
                self.selected += 1;
            }
        }
    }

    /// The query to send now, if typing paused on a new one (asks for a repaint when it
    /// will be due).
    pub fn due(&mut self, ctx: &egui::Context) -> Option<SearchAction> {
        let query = self.text.trim().to_owned();
        let wanted = (query.clone(), self.only);
        if !self.open || query.is_empty() || self.sent.as_ref() == Some(&wanted) {
            return None;
        }
        if let Some(typed) = self.typed_at {
            let waited = typed.elapsed();
            if waited < TYPING_PAUSE {
                ctx.request_repaint_after(TYPING_PAUSE - waited);
                return None;
            }
        }
        self.sent = Some(wanted);
        Some(SearchAction::Query(query, self.only))
    }

    /// The results, in place of the conversation.
    pub fn results_ui(&mut self, ui: &mut Ui, model: &Model, lang: Lang) -> Option<SearchAction> {
        let mut action = None;
        let query = self.text.trim().to_owned();
        ui.horizontal(|ui| {
            ui.heading(tr!(lang, "search.title", query = query));
            if let Some(peer) = self.scope {
                let mut only = self.only.is_some();
                let label = tr!(lang, "search.only_with", name = model.name_of(peer));
                if ui.checkbox(&mut only, label).changed() {
                    self.only = only.then_some(peer);
                }
            }
        });
        ui.separator();
        let answered = model.search.as_ref().filter(|s| s.query == query && s.peer == self.only);
        let Some(results) = answered.and_then(|s| s.results.as_ref()) else {
            ui.label(RichText::new(tr!(lang, "search.searching")).weak());
            return None;
        };
        if results.is_empty() {
            ui.label(RichText::new(tr!(lang, "search.none", query = query)).weak());
            return None;
        }
        self.selected = self.selected.min(results.len() - 1);
        let enter = std::mem::take(&mut self.pending_enter);
        let moved = std::mem::take(&mut self.moved);
        let note = if results.len() >= RESULTS {
            tr!(lang, "search.newest", count = results.len())
        } else {
            tr!(lang, "search.count", count = results.len())
        };
        ui.label(RichText::new(note).small().weak());
        egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            for (index, message) in results.iter().enumerate() {
                let selected = index == self.selected;
                let who = match message.direction {
                    Direction::Outgoing => tr!(lang, "search.you_to", name = model.name_of(message.peer)),
                    Direction::Incoming => model.name_of(message.peer).into(),
                };
                let time = text::local_time(message.sent_at_ms).format("%Y-%m-%d %H:%M").to_string();
                let fill = if selected {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.4)
                } else {
                    ui.visuals().faint_bg_color
                };
                let row =
                    ui.scope_builder(UiBuilder::new().id_salt(message.seq).sense(Sense::click()), |ui| {
                        egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(6).show(ui, |ui| {
                            ui.set_width(ui.available_width());
                            ui.horizontal(|ui| {
                                ui.label(RichText::new(who).strong());
                                ui.label(RichText::new(time).small().weak());
                            });
                            ui.label(highlighted(ui, &message.text, &query));
                        });
                    });
                let response = row.response.on_hover_cursor(egui::CursorIcon::PointingHand);
                if selected && moved {
                    response.scroll_to_me(None);
                }
                if response.clicked() || (enter && selected) {
                    action = Some(SearchAction::Open(message.peer, message.seq));
                }
                ui.add_space(2.0);
            }
        });
        action
    }
}

/// The text around the match, the match in the selection colour.
fn highlighted(ui: &Ui, body: &str, query: &str) -> LayoutJob {
    let style = ui.style();
    let font = egui::TextStyle::Body.resolve(style);
    let color = ui.visuals().text_color();
    let plain = TextFormat { font_id: font.clone(), color, ..TextFormat::default() };
    let mut job = LayoutJob::default();
    let Some(found) = text::find_match(body, query) else {
        let (cut, _) = text::snippet(body, 0..0, CONTEXT * 2);
        job.append(&cut, 0.0, plain);
        return job;
    };
    let (cut, at) = text::snippet(body, found, CONTEXT);
    job.append(&cut[..at.start], 0.0, plain.clone());
    let strong = TextFormat {
        background: ui.visuals().selection.bg_fill,
        color: ui.visuals().selection.stroke.color,
        ..plain.clone()
    };
    job.append(&cut[at.clone()], 0.0, strong);
    job.append(&cut[at.end..], 0.0, plain);
    job.wrap.max_rows = 3;
    job
}
