//! The left pane: group rooms first, then peers grouped by group, each row with a status dot
//! (a room's mark), name, detail line and unread badge; a filter box (Ctrl+K, then Up/Down
//! to move through the list); several peers selectable with Ctrl- and Shift-click, or a whole
//! group from its header's menu; a menu on each peer.

use std::collections::BTreeSet;

use eframe::egui::{
    self, Align2, Color32, Modifiers, Rect, RichText, Sense, Stroke, TextStyle, Ui, WidgetInfo, vec2,
};

use super::i18n::Lang;
use super::model::{Model, PeerEntry};
use super::settings::status_name;
use super::theme;
use crate::node::{PeerId, RoomId, RoomInfo};
use crate::tr;

/// Height of every row (group headers included), so only visible rows are laid out: a name
/// and a detail line with some air, growing with the text size.
fn row_height(ui: &Ui) -> f32 {
    let style = ui.style();
    TextStyle::Body.resolve(style).size + TextStyle::Small.resolve(style).size + 14.0
}

/// Which peers the user picked; the conversation shows when exactly one is.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    chosen: Vec<PeerId>,
    anchor: Option<PeerId>,
}

impl Selection {
    /// Applies a click on `id` with the keyboard `modifiers` held; `order` is the list as shown,
    /// which a Shift-click selects a range of.
    pub fn click(&mut self, id: PeerId, modifiers: Modifiers, order: &[PeerId]) {
        let range = |anchor: PeerId| {
            let position = |p: PeerId| order.iter().position(|&o| o == p);
            match (position(anchor), position(id)) {
                (Some(a), Some(b)) => order[a.min(b)..=a.max(b)].to_vec(),
                _ => vec![id],
            }
        };
        match (modifiers.command, modifiers.shift, self.anchor) {
            (false, true, Some(anchor)) => self.chosen = range(anchor),
            (true, true, Some(anchor)) => {
                for peer in range(anchor) {
                    if !self.chosen.contains(&peer) {
                        self.chosen.push(peer);
                    }
                }
            }
            (true, false, _) => {
                if let Some(at) = self.chosen.iter().position(|&p| p == id) {
                    self.chosen.remove(at);
                } else {
                    self.chosen.push(id);
                }
                self.anchor = Some(id);
            }
            _ => {
                self.chosen = vec![id];
                self.anchor = Some(id);
            }
        }
    }

    /// The selected peers, in the order they were picked.
    pub fn peers(&self) -> &[PeerId] {
        &self.chosen
    }

    /// The peer whose conversation is shown, when exactly one is selected.
    pub fn single(&self) -> Option<PeerId> {
        match self.chosen.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Whether `id` is selected.
    pub fn contains(&self, id: PeerId) -> bool {
        self.chosen.contains(&id)
    }

    /// Nobody selected (a room was opened instead).
    pub fn clear(&mut self) {
        *self = Selection::default();
    }
}

/// State of the pane that lives across frames.
#[derive(Debug, Default)]
pub struct PeerList {
    /// Text typed into the filter box.
    pub filter: String,
    /// Groups the user folded.
    collapsed: BTreeSet<String>,
    /// The user folded the rooms.
    rooms_folded: bool,
    /// The filter box should take the keyboard in the next frame (Ctrl+K).
    pub focus_filter: bool,
}

/// What a peer's menu asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAction {
    /// Open the conversation.
    Write(PeerId),
    /// Pick files to send.
    SendFiles(PeerId),
    /// Pick a folder to send.
    SendFolder(PeerId),
    /// Show the safety number.
    SafetyNumber(PeerId),
    /// Accept its files without asking, or ask again.
    AutoAccept(PeerId, bool),
    /// Give the PIN a LocalSend device asks of senders.
    GivePin(PeerId),
    /// Select these peers (a whole group) to write to all of them.
    Select(Vec<PeerId>),
}

/// What happened in the pane this frame.
#[derive(Debug, Default)]
pub struct PeerListOutput {
    /// A row was clicked with these modifiers.
    pub clicked: Option<(PeerId, Modifiers)>,
    /// A room was clicked.
    pub clicked_room: Option<RoomId>,
    /// "New room" was clicked.
    pub new_room: bool,
    /// "Can't see someone?" was clicked.
    pub doctor: bool,
    /// Where each visible row is, so files dropped on a row go to that peer.
    pub rows: Vec<(Rect, PeerId)>,
    /// Peers in the order shown (for Shift-click ranges).
    pub order: Vec<PeerId>,
    /// Something asked of a peer's or a group's menu.
    pub action: Option<PeerAction>,
    /// Up (-1) or Down (+1) was pressed in the filter box: move the selection.
    pub step: Option<isize>,
}

enum Row<'a> {
    Group { name: &'a str, online: usize, total: usize, members: Vec<PeerId> },
    Peer(&'a PeerEntry),
    Rooms { count: usize },
    Room(&'a RoomInfo),
    NewRoom,
}

impl PeerList {
    /// Draws the pane.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        model: &Model,
        selection: &Selection,
        open_room: Option<RoomId>,
        lang: Lang,
    ) -> PeerListOutput {
        let mut output = PeerListOutput::default();
        let filter = ui.add(
            egui::TextEdit::singleline(&mut self.filter)
                .hint_text(tr!(lang, "peers.filter"))
                .desired_width(f32::INFINITY),
        );
        if std::mem::take(&mut self.focus_filter) {
            filter.request_focus();
        }
        if filter.has_focus() {
            let (up, down) =
                ui.input(|i| (i.key_pressed(egui::Key::ArrowUp), i.key_pressed(egui::Key::ArrowDown)));
            output.step = match (up, down) {
                (true, false) => Some(-1),
                (false, true) => Some(1),
                _ => None,
            };
        }
        ui.add_space(4.0);
        let rows = self.rows(model, &mut output.order);
        if !rows.iter().any(|row| matches!(row, Row::Peer(_) | Row::Group { .. })) {
            let text = if model.peers.is_empty() {
                tr!(lang, "peers.none_yet")
            } else {
                tr!(lang, "peers.no_match")
            };
            ui.label(RichText::new(text).weak());
            output.doctor = ui.link(tr!(lang, "doctor.title")).clicked();
            ui.add_space(4.0);
        }
        let height = row_height(ui);
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(ui, height, rows.len(), |ui, range| {
            for row in &rows[range] {
                match row {
                    Row::Group { name, online, total, members } => {
                        let response = self.group_row(ui, name, *online, *total, lang);
                        response.context_menu(|ui| {
                            if ui.button(tr!(lang, "peers.write_to_group", count = members.len())).clicked() {
                                output.action = Some(PeerAction::Select(members.clone()));
                                ui.close();
                            }
                        });
                    }
                    Row::Peer(entry) => {
                        let response = peer_row(ui, entry, selection.contains(entry.id), lang);
                        if response.clicked() {
                            output.clicked = Some((entry.id, ui.input(|i| i.modifiers)));
                        }
                        response.context_menu(|ui| {
                            output.action = output.action.take().or(peer_menu(ui, model, entry, lang));
                        });
                        output.rows.push((response.rect, entry.id));
                    }
                    Row::Rooms { count } => {
                        let title = tr!(lang, "rooms.section");
                        if fold_row(ui, self.rooms_folded, &format!("{title}  {count}")).clicked() {
                            self.rooms_folded = !self.rooms_folded;
                        }
                    }
                    Row::Room(entry) => {
                        if room_row(ui, model, entry, open_room == Some(entry.room), lang).clicked() {
                            output.clicked_room = Some(entry.room);
                        }
                    }
                    Row::NewRoom => {
                        let text = tr!(lang, "rooms.new");
                        let (rect, response) =
                            ui.allocate_exact_size(vec2(ui.available_width(), height), Sense::click());
                        response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, &text));
                        let color = if response.hovered() {
                            ui.visuals().strong_text_color()
                        } else {
                            ui.visuals().hyperlink_color
                        };
                        ui.painter().text(
                            rect.left_center() + vec2(8.0, 0.0),
                            Align2::LEFT_CENTER,
                            text,
                            TextStyle::Button.resolve(ui.style()),
                            color,
                        );
                        output.new_room |= response.clicked();
                    }
                }
            }
        });
        output
    }

    /// The rows to show: the rooms we are in (by name) and "New room", then groups in name
    /// order (no group first), online peers before offline ones, then by name; only rooms
    /// and peers that match the filter.
    fn rows<'a>(&self, model: &'a Model, order: &mut Vec<PeerId>) -> Vec<Row<'a>> {
        let needle = self.filter.trim().to_lowercase();
        let mut rooms: Vec<&RoomInfo> = model
            .rooms
            .values()
            .filter(|r| r.joined && (needle.is_empty() || r.name.to_lowercase().contains(&needle)))
            .collect();
        rooms.sort_by_cached_key(|r| (r.name.to_lowercase(), r.room));
        let mut rows = Vec::with_capacity(model.peers.len() + rooms.len() + 10);
        if needle.is_empty() || !rooms.is_empty() {
            rows.push(Row::Rooms { count: rooms.len() });
            if !self.rooms_folded {
                rows.extend(rooms.into_iter().map(Row::Room));
                if needle.is_empty() {
                    rows.push(Row::NewRoom);
                }
            }
        }
        let mut peers: Vec<&PeerEntry> = model.peers.values().filter(|p| p.matches(&needle)).collect();
        peers.sort_by_cached_key(|p| (p.group.to_lowercase(), !p.online, p.name.to_lowercase(), p.id));
        for group in peers.chunk_by(|a, b| a.group.to_lowercase() == b.group.to_lowercase()) {
            let name = group[0].group.as_str();
            let online = group.iter().filter(|p| p.online).count();
            let members = group.iter().map(|p| p.id).collect();
            rows.push(Row::Group { name, online, total: group.len(), members });
            if !self.collapsed.contains(name) {
                order.extend(group.iter().map(|p| p.id));
                rows.extend(group.iter().map(|p| Row::Peer(p)));
            }
        }
        rows
    }

    fn group_row(
        &mut self,
        ui: &mut Ui,
        name: &str,
        online: usize,
        total: usize,
        lang: Lang,
    ) -> egui::Response {
        let title = if name.is_empty() { tr!(lang, "peers.no_group").into_owned() } else { name.to_owned() };
        let response = fold_row(ui, self.collapsed.contains(name), &format!("{title}  {online}/{total}"));
        if response.clicked() && !self.collapsed.remove(name) {
            self.collapsed.insert(name.to_owned());
        }
        response
    }
}

/// A peer's menu: write, send, safety number, a device's PIN, always accept.
fn peer_menu(ui: &mut Ui, model: &Model, entry: &PeerEntry, lang: Lang) -> Option<PeerAction> {
    let mut action = None;
    let mut item = |ui: &mut Ui, key: &str, chosen: PeerAction| {
        if ui.button(tr!(lang, key)).clicked() {
            action = Some(chosen);
            ui.close();
        }
    };
    item(ui, "peers.menu.write", PeerAction::Write(entry.id));
    item(ui, "peers.menu.send_files", PeerAction::SendFiles(entry.id));
    item(ui, "peers.menu.send_folder", PeerAction::SendFolder(entry.id));
    if entry.has_safety_number() {
        item(ui, "peers.menu.safety_number", PeerAction::SafetyNumber(entry.id));
    }
    if entry.family == crate::node::Family::LocalSend {
        item(ui, "peers.menu.pin", PeerAction::GivePin(entry.id));
    }
    // IP Messenger peers have no key, plain-HTTP LocalSend devices no certificate: no proof
    // of who sends, so their files always wait for the user.
    if entry.trust.is_some_and(|trust| trust != crate::node::Trust::Unencrypted) {
        let mut always = model.auto_accept_from.contains(&entry.id);
        if ui.checkbox(&mut always, tr!(lang, "peers.menu.always_accept")).changed() {
            action = Some(PeerAction::AutoAccept(entry.id, always));
            ui.close();
        }
    }
    action
}

/// A header row that folds what is under it.
fn fold_row(ui: &mut Ui, folded: bool, title: &str) -> egui::Response {
    let arrow = if folded { "▶" } else { "▼" };
    let text = format!("{arrow} {title}");
    let (rect, response) = ui.allocate_exact_size(vec2(ui.available_width(), row_height(ui)), Sense::click());
    response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, &text));
    if ui.is_rect_visible(rect) {
        let color =
            if response.hovered() { ui.visuals().strong_text_color() } else { ui.visuals().text_color() };
        ui.painter().text(
            rect.left_bottom() + vec2(4.0, -8.0),
            Align2::LEFT_BOTTOM,
            text,
            TextStyle::Button.resolve(ui.style()),
            color,
        );
    }
    response
}

/// A clickable row named `name` (with its unread count, for screen readers and tests): its
/// background and badge drawn; the painter for the rest when it is in view.
fn list_row(
    ui: &mut Ui,
    name: &str,
    unread: u64,
    selected: bool,
    lang: Lang,
) -> (egui::Response, Option<egui::Painter>) {
    let (rect, response) = ui.allocate_exact_size(vec2(ui.available_width(), row_height(ui)), Sense::click());
    let label = if unread > 0 {
        format!("{name}, {}", tr!(lang, "peers.unread", count = unread))
    } else {
        name.to_owned()
    };
    response.widget_info(|| WidgetInfo::selected(egui::Role::Button, true, selected, &label));
    if !ui.is_rect_visible(rect) {
        return (response, None);
    }
    let visuals = ui.visuals();
    let painter = ui.painter_at(rect);
    if selected {
        painter.rect_filled(rect, 4.0, visuals.selection.bg_fill);
    } else if response.hovered() {
        painter.rect_filled(rect, 4.0, visuals.widgets.hovered.weak_bg_fill);
    }
    badge(&painter, rect, unread, ui.style());
    (response, Some(painter))
}

fn room_row(ui: &mut Ui, model: &Model, info: &RoomInfo, selected: bool, lang: Lang) -> egui::Response {
    let (response, painter) = list_row(ui, &info.name, info.unread as u64, selected, lang);
    let Some(painter) = painter else { return response };
    let rect = response.rect;
    let palette = theme::palette(ui.visuals());
    let mark = Rect::from_center_size(rect.left_center() + vec2(12.0, 0.0), vec2(18.0, 18.0));
    painter.rect_filled(mark, 4.0, palette.accent);
    painter.text(
        mark.center(),
        Align2::CENTER_CENTER,
        "#",
        TextStyle::Small.resolve(ui.style()),
        palette.panel,
    );
    let online = model.online_members(info.room);
    let detail = tr!(lang, "rooms.members_count", count = info.members.len(), online = online);
    row_text(ui, &painter, rect, [&info.name, &detail], row_colors(ui, true, selected));
    response
}

/// The colours of a row's name and detail line: readable on the selection when selected, the
/// name quieter for a peer offline.
fn row_colors(ui: &Ui, online: bool, selected: bool) -> [Color32; 2] {
    let palette = theme::palette(ui.visuals());
    match (selected, online) {
        (true, _) => [palette.strong, palette.on_selection],
        (false, true) => [palette.strong, palette.weak],
        (false, false) => [palette.weak, palette.weak],
    }
}

/// A row's name and detail line, right of its dot or mark.
fn row_text(
    ui: &Ui,
    painter: &egui::Painter,
    rect: Rect,
    [name, detail]: [&str; 2],
    [color, weak]: [Color32; 2],
) {
    let left = rect.left() + 26.0;
    let (body, small) = (TextStyle::Body.resolve(ui.style()), TextStyle::Small.resolve(ui.style()));
    let detail_top = rect.top() + 6.0 + body.size;
    painter.text(egui::pos2(left, rect.top() + 4.0), Align2::LEFT_TOP, name, body, color);
    painter.text(egui::pos2(left, detail_top), Align2::LEFT_TOP, detail, small, weak);
}

/// The unread count at a row's right end, if any.
fn badge(painter: &egui::Painter, rect: Rect, unread: u64, style: &egui::Style) {
    if unread == 0 {
        return;
    }
    let count = if unread > 99 { String::from("99+") } else { unread.to_string() };
    let galley = painter.layout_no_wrap(count, TextStyle::Small.resolve(style), theme::ON_BADGE);
    let size = vec2(galley.size().x.max(galley.size().y) + 8.0, galley.size().y + 4.0);
    let badge = Rect::from_center_size(rect.right_center() - vec2(size.x / 2.0 + 8.0, 0.0), size);
    painter.rect(
        badge,
        size.y / 2.0,
        theme::palette(&style.visuals).badge,
        Stroke::NONE,
        egui::StrokeKind::Inside,
    );
    painter.galley(badge.center() - galley.size() / 2.0, galley, theme::ON_BADGE);
}

fn peer_row(ui: &mut Ui, entry: &PeerEntry, selected: bool, lang: Lang) -> egui::Response {
    let (response, painter) = list_row(ui, &entry.name, entry.unread, selected, lang);
    let Some(painter) = painter else { return response };
    let rect = response.rect;
    let dot = rect.left_center() + vec2(12.0, 0.0);
    painter.circle_filled(dot, 5.0, theme::status_color(ui.visuals(), entry.online, entry.status));
    // The state in words too: a dot's colour alone says nothing to many eyes.
    let state =
        if entry.online { status_name(entry.status, lang) } else { tr!(lang, "peers.offline").into_owned() };
    let mut detail = format!("{state} · {}", entry.host);
    if let Some(client) = &entry.client {
        detail = format!("{detail} · {client}");
    }
    row_text(ui, &painter, rect, [&entry.name, &detail], row_colors(ui, entry.online, selected));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<PeerId> {
        (1..=n).map(|i| PeerId::from_bytes([i; 16])).collect()
    }

    #[test]
    fn clicks_select_one_ctrl_toggles_shift_selects_a_range() {
        let order = ids(5);
        let ctrl = Modifiers { command: true, ctrl: true, ..Modifiers::NONE };
        let shift = Modifiers { shift: true, ..Modifiers::NONE };
        let mut selection = Selection::default();
        selection.click(order[1], Modifiers::NONE, &order);
        assert_eq!(selection.single(), Some(order[1]));
        selection.click(order[3], shift, &order);
        assert_eq!(selection.peers(), &order[1..=3]);
        assert_eq!(selection.single(), None);
        selection.click(order[2], ctrl, &order);
        assert_eq!(selection.peers(), [order[1], order[3]]);
        selection.click(order[0], ctrl, &order);
        assert_eq!(selection.peers(), [order[1], order[3], order[0]]);
        selection.click(order[4], Modifiers::NONE, &order);
        assert_eq!(selection.peers(), [order[4]]);
    }
}
