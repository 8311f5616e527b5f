//! The receive pane: one conversation or room as chat bubbles with sender, time and delivery
//! or read state, days separated, links clickable, text selectable.
//!
//! Only rows in view are laid out. Every row has a height — measured when it was last shown,
//! estimated from its text before that — and a prefix sum of those heights places the rows, so
//! a conversation of 100,000 messages scrolls like one of ten. When a measured height differs
//! from its estimate above the visible area, the scroll position moves by the difference, so
//! what the user reads stays put.

use eframe::egui::{self, Align, Layout, Rect, RichText, Ui, UiBuilder, vec2};

use super::i18n::Lang;
use super::model::{Model, RowMeta, TransferView};
use super::text::{self, Segment};
use super::theme;
use super::transfers::{self, Place, TransferAction};
use crate::node::MessageState;
use crate::tr;

/// Widest a bubble gets, as a share of the pane.
const BUBBLE_SHARE: f32 = 0.72;

/// Space between rows.
const ROW_GAP: f32 = 6.0;

/// Scrolled this close to the top, the next older page is requested.
const LOAD_MARGIN: f32 = 400.0;

/// Per-conversation view state that is not part of the model.
#[derive(Debug, Default)]
pub struct ChatView {
    /// Scroll offset of the last frame.
    offset: f32,
    /// Width and text size the heights were measured at; a change invalidates them.
    measured_at: Measure,
    /// Scroll correction to apply in the next frame.
    correction: f32,
    /// Top of each row and, last, the total height; rebuilt when `stale`.
    offsets: Vec<f32>,
    /// A row was added or re-measured since `offsets` was built.
    stale: bool,
    /// A row to bring into view (a search result), and the frames left to settle it: the
    /// rows around it are measured as they show, which moves it, so the view re-aims until
    /// the row stays where it was put.
    scroll_to: Option<(usize, u8)>,
}

/// Frames a jump to a row may take to settle (each measures the rows in view).
const SETTLE_FRAMES: u8 = 8;

impl ChatView {
    /// Brings row `index` into view in the next frame.
    pub fn scroll_to(&mut self, index: usize) {
        self.scroll_to = Some((index, SETTLE_FRAMES));
    }
}

/// What the height of a row depends on besides its text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Measure {
    /// Widest a bubble gets.
    bubble_width: f32,
    /// Points of message text.
    text_size: f32,
}

/// Which ends of the loaded rows the user scrolled near, so the caller loads more there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NearEdges {
    /// Older rows are wanted.
    pub top: bool,
    /// Newer rows are wanted.
    pub bottom: bool,
}

/// One row as the pane draws it (built only for rows in view).
pub struct Bubble<'a> {
    /// Who wrote it.
    pub sender: String,
    /// Ours: drawn on the right.
    pub outgoing: bool,
    /// When, sender's clock.
    pub sent_at_ms: u64,
    /// The text.
    pub text: &'a str,
    /// Delivery state of a message of ours.
    pub state: Option<MessageState>,
    /// The sender's key was not confirmed when it arrived.
    pub unconfirmed: bool,
    /// Files the post offers, in one line.
    pub files: Option<String>,
    /// A line under the text (read state in rooms) and what hovering it tells.
    pub footer: Option<(String, String)>,
    /// The row the user jumped to (a search result): outlined.
    pub marked: bool,
    /// "Also to Bo, Marta": who else the message went to.
    pub also_to: Option<String>,
    /// A transfer of files: drawn as its card instead of a bubble.
    pub card: Option<Card<'a>>,
}

/// A transfer shown in the timeline, and what its card needs to know.
pub struct Card<'a> {
    /// Names and trust of peers.
    pub model: &'a Model,
    /// The transfer.
    pub view: &'a TransferView,
}

/// What the user asked of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowAction {
    /// A button on a transfer's card.
    Transfer(TransferAction),
    /// Pass this message's text on to someone else.
    Forward(String),
}

/// What happened in the timeline this frame.
#[derive(Debug, Default)]
pub struct Shown {
    /// The ends the user scrolled near.
    pub near: NearEdges,
    /// What was asked of a row.
    pub action: Option<RowAction>,
}

/// Draws the rows (`rows` says how tall, `bubble_at` what they hold); `prepended` rows just
/// came in above. `at_present` says the last row is the newest there is, so the view follows
/// new rows as they come. Returns which ends the user scrolled near and what was clicked.
pub fn show<'a>(
    ui: &mut Ui,
    rows: &mut [RowMeta],
    prepended: &mut usize,
    view: &mut ChatView,
    at_present: bool,
    bubble_at: impl Fn(usize) -> Option<Bubble<'a>>,
    lang: Lang,
) -> Shown {
    let width = ui.available_width();
    let bubble_width = (width * BUBBLE_SHARE).max(120.0);
    let measure = Measure { bubble_width, text_size: egui::TextStyle::Body.resolve(ui.style()).size };
    if (measure.bubble_width - view.measured_at.bubble_width).abs() > 0.5
        || measure.text_size != view.measured_at.text_size
    {
        rows.iter_mut().for_each(|row| (row.height, row.width) = (None, None));
        view.measured_at = measure;
        view.stale = true;
    }
    if *prepended > 0 {
        // Older messages came in above: keep the same message at the top of the view.
        view.correction += (0..*prepended).map(|i| row_height(rows, i, measure)).sum::<f32>();
        *prepended = 0;
        view.stale = true;
    }
    if view.stale || view.offsets.len() != rows.len() + 1 {
        view.offsets = prefix_sums(rows, measure);
        view.stale = false;
    }
    let offsets = &view.offsets;
    let total = offsets.last().copied().unwrap_or(0.0);

    let mut area =
        egui::ScrollArea::vertical().auto_shrink(false).stick_to_bottom(at_present).animated(false);
    let aim = view.scroll_to.and_then(|(index, _)| offsets.get(index)).map(|top| {
        // A third of the way down, so what led to it shows above.
        (top - ui.available_height() / 3.0).max(0.0)
    });
    if let Some(aim) = aim {
        area = area.vertical_scroll_offset(aim);
        view.correction = 0.0;
    } else if view.correction != 0.0 {
        area = area.vertical_scroll_offset((view.offset + view.correction).max(0.0));
        view.correction = 0.0;
    }
    let output = area.show_viewport(ui, |ui, viewport| {
        ui.set_min_height(total);
        let origin = ui.max_rect().min;
        let first = offsets.partition_point(|&top| top <= viewport.min.y).saturating_sub(1);
        let mut correction = 0.0;
        let mut remeasured = false;
        let mut action = None;
        for (index, &top) in offsets.iter().enumerate().take(rows.len()).skip(first) {
            if top > viewport.max.y {
                break;
            }
            let Some(bubble) = bubble_at(index) else { continue };
            let rect = Rect::from_min_size(origin + vec2(0.0, top), vec2(width, f32::MAX / 4.0));
            let mut row = ui.new_child(UiBuilder::new().max_rect(rect).layout(Layout::top_down(Align::Min)));
            let (clicked, drawn_width) = draw_row(&mut row, rows, index, &bubble, bubble_width, lang);
            action = action.or(clicked);
            let measured = row.min_rect().height() + ROW_GAP;
            let before = row_height(rows, index, measure);
            if let Some(meta) = rows.get_mut(index) {
                meta.height = Some(measured);
                if bubble.outgoing && meta.width.is_none_or(|w| (w - drawn_width).abs() > 0.5) {
                    // Drawn at a guessed place: once more where it belongs.
                    ui.ctx().request_repaint();
                }
                meta.width = Some(drawn_width);
            }
            if (measured - before).abs() > 0.5 {
                remeasured = true;
                if top < viewport.min.y {
                    correction += measured - before;
                }
            }
        }
        if remeasured {
            ui.ctx().request_repaint();
        }
        (correction, remeasured, action)
    });
    let (correction, remeasured, action) = output.inner;
    view.offset = output.state.clamped_offset().y;
    view.correction += correction;
    view.stale |= remeasured;
    if let (Some((index, frames)), Some(aim)) = (view.scroll_to, aim) {
        let settled = !remeasured && (view.offset - aim).abs() < 1.0;
        view.scroll_to = (!settled && frames > 1).then_some((index, frames - 1));
        if view.scroll_to.is_some() {
            ui.ctx().request_repaint();
            // Not settled: no page is asked for on the way.
            return Shown { near: NearEdges::default(), action };
        }
    }
    let viewport_height = output.inner_rect.height();
    let near = NearEdges {
        top: view.offset < LOAD_MARGIN,
        bottom: view.offset + viewport_height > total - LOAD_MARGIN,
    };
    Shown { near, action }
}

fn prefix_sums(rows: &[RowMeta], measure: Measure) -> Vec<f32> {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut y = 0.0;
    offsets.push(y);
    for index in 0..rows.len() {
        y += row_height(rows, index, measure);
        offsets.push(y);
    }
    offsets
}

/// The measured height of a row, or an estimate from its text.
fn row_height(rows: &[RowMeta], index: usize, measure: Measure) -> f32 {
    let Some(meta) = rows.get(index) else { return 0.0 };
    if let Some(height) = meta.height {
        return height;
    }
    let Measure { bubble_width, text_size } = measure;
    let columns_per_line = ((bubble_width - 20.0) / (text_size * 0.55)).max(8.0);
    let lines = (meta.columns as f32 / columns_per_line).ceil().max(1.0) + meta.newlines as f32;
    let separator = if starts_day(rows, index) { 30.0 } else { 0.0 };
    if meta.card {
        // Title, what it holds, a progress bar or a line of state, buttons.
        return separator + 4.0 * text_size * 1.6 + 24.0 + ROW_GAP;
    }
    separator + 16.0 + 18.0 + lines * (text_size * 1.3) + ROW_GAP
}

fn starts_day(rows: &[RowMeta], index: usize) -> bool {
    match (index.checked_sub(1).and_then(|previous| rows.get(previous)), rows.get(index)) {
        (Some(previous), Some(row)) => previous.day != row.day,
        _ => true,
    }
}

/// Draws one row (a day's title first if it starts one); returns what was clicked on it and
/// how wide its bubble or card came out.
fn draw_row(
    ui: &mut Ui,
    rows: &[RowMeta],
    index: usize,
    message: &Bubble<'_>,
    bubble_width: f32,
    lang: Lang,
) -> (Option<RowAction>, f32) {
    let width = rows.get(index).and_then(|row| row.width);
    if starts_day(rows, index) {
        ui.add_space(6.0);
        ui.vertical_centered(|ui| {
            ui.label(RichText::new(day_title(message.sent_at_ms, lang)).small().weak());
        });
        ui.add_space(6.0);
    }
    // Ours sit at the right edge: indented by what their width left over last time they
    // were drawn (a layout from the right would stretch them to their widest).
    let indent = if message.outgoing {
        (ui.available_width() - width.unwrap_or(bubble_width).min(bubble_width)).max(0.0)
    } else {
        0.0
    };
    ui.horizontal(|ui| {
        let spacing = std::mem::take(&mut ui.spacing_mut().item_spacing.x);
        ui.add_space(indent);
        ui.vertical(|ui| {
            ui.spacing_mut().item_spacing.x = spacing;
            ui.set_max_width(bubble_width);
            match &message.card {
                Some(card) => {
                    let drawn =
                        ui.scope(|ui| transfers::card_ui(ui, card.model, card.view, Place::Timeline, lang));
                    (drawn.inner.map(RowAction::Transfer), drawn.response.rect.width())
                }
                None => bubble_frame(ui, message, bubble_width, lang),
            }
        })
        .inner
    })
    .inner
}

/// A message's bubble with its right-click menu (copy, forward); returns what the menu was
/// asked and the bubble's width.
fn bubble_frame(
    ui: &mut Ui,
    message: &Bubble<'_>,
    bubble_width: f32,
    lang: Lang,
) -> (Option<RowAction>, f32) {
    let palette = theme::palette(ui.visuals());
    let fill = if message.outgoing { palette.bubble_out } else { palette.bubble_in };
    let stroke = if message.marked { egui::Stroke::new(2.0, palette.accent) } else { egui::Stroke::NONE };
    // The bubble senses clicks beneath its text, so a right-click anywhere on it (the text's
    // own labels included) opens its menu, and links and selection still work.
    let scope = ui.scope_builder(UiBuilder::new().sense(egui::Sense::click()), |ui| {
        egui::Frame::new()
            .fill(fill)
            .stroke(stroke)
            .corner_radius(8.0)
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.set_max_width(bubble_width);
                bubble(ui, message, lang)
            })
            .inner
    });
    let width = scope.response.rect.width();
    let menu_on = match scope.inner {
        Some(text) => scope.response | text,
        None => scope.response,
    };
    let mut action = None;
    menu_on.context_menu(|ui| {
        if ui.button(tr!(lang, "message.copy")).clicked() {
            ui.ctx().copy_text(message.text.to_owned());
            ui.close();
        }
        if ui.button(tr!(lang, "message.forward")).clicked() {
            action = Some(RowAction::Forward(message.text.to_owned()));
            ui.close();
        }
    });
    (action, width)
}

/// Where a message of ours stands, in a word.
pub fn state_name(state: MessageState, lang: Lang) -> String {
    let key = match state {
        MessageState::Queued => "message.queued",
        MessageState::Sent => "message.sent",
        MessageState::Delivered => "message.delivered",
        MessageState::Read => "message.read",
    };
    tr!(lang, key).into_owned()
}

/// "Today", "Yesterday" or "2026-11-20 Friday", in the window's language.
fn day_title(ms: u64, lang: Lang) -> String {
    let day = text::local_day(ms);
    let today = chrono::Local::now().date_naive();
    if day == today {
        return tr!(lang, "day.today").into_owned();
    }
    if today.pred_opt() == Some(day) {
        return tr!(lang, "day.yesterday").into_owned();
    }
    let weekdays = tr!(lang, "day.weekdays");
    let weekday = weekdays
        .split(',')
        .nth(chrono::Datelike::weekday(&day).num_days_from_monday() as usize)
        .unwrap_or("");
    format!("{} {weekday}", day.format("%Y-%m-%d"))
}

/// Draws a bubble's content; returns the response of its text, if it has text.
fn bubble(ui: &mut Ui, message: &Bubble<'_>, lang: Lang) -> Option<egui::Response> {
    let time = text::local_time(message.sent_at_ms).format("%H:%M").to_string();
    ui.horizontal(|ui| {
        ui.label(RichText::new(&message.sender).small().strong());
        ui.label(RichText::new(time).small().weak());
        if let Some(state) = message.state {
            let palette = theme::palette(ui.visuals());
            let color = match state {
                MessageState::Queued | MessageState::Sent => palette.weak,
                MessageState::Delivered => palette.text,
                MessageState::Read => palette.accent,
            };
            ui.label(RichText::new(state_name(state, lang)).small().color(color));
        }
    });
    if let Some(also_to) = &message.also_to {
        ui.label(RichText::new(also_to).small().weak());
    }
    if message.unconfirmed {
        ui.label(RichText::new(tr!(lang, "message.unconfirmed")).small().color(ui.visuals().warn_fg_color));
    }
    let text = (!message.text.is_empty()).then(|| message_text(ui, message.text));
    if let Some(files) = &message.files {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(RichText::new(files));
        });
    }
    if let Some((footer, hover)) = &message.footer {
        ui.label(RichText::new(footer).small().weak()).on_hover_text(hover);
    }
    text
}

/// The text with its links; returns the union of its pieces' responses.
fn message_text(ui: &mut Ui, body: &str) -> egui::Response {
    let segments = text::segments(body);
    let font = egui::TextStyle::Body.resolve(ui.style());
    if let [Segment::Text(plain)] = segments.as_slice() {
        return ui.add(egui::Label::new(RichText::new(*plain).font(font)).wrap());
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        let mut pieces: Option<egui::Response> = None;
        for segment in segments {
            let piece = match segment {
                Segment::Text(plain) => {
                    ui.add(egui::Label::new(RichText::new(plain).font(font.clone())).wrap())
                }
                Segment::Link(link) => {
                    ui.hyperlink_to(RichText::new(link).font(font.clone()), text::link_target(link))
                }
            };
            pieces = Some(match pieces {
                Some(before) => before | piece,
                None => piece,
            });
        }
        pieces
    })
    .inner
    .unwrap_or_else(|| ui.response())
}
