//! The room pane: a group room's header (name, members online, rename, leave), its members
//! with who is online (add, remove), offers of files posted to it, its posts in the room's
//! order with read state, and the dialogs that create, rename and leave rooms. Like the other
//! panes it only draws and returns what the user asked for ([`RoomAction`]).

use std::collections::{BTreeSet, HashMap};

use eframe::egui::{self, Align, Layout, RichText, Ui};

use super::compose::{self, ComposeAction};
use super::conversation::{self, Bubble, ChatView};
use super::i18n::Lang;
use super::model::{Model, RoomChat, short_id};
use super::theme;
use super::transfers::{self, TransferAction};
use crate::node::{Direction, PeerId, PostedIn, RoomId, Status, TransferState, display_path, human_bytes};
use crate::tr;

/// Narrowest the posts get with the member list beside them: below, the list starts folded.
const MIN_POSTS_WIDTH: f32 = 360.0;

/// What the user asked for in the pane or its dialogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAction {
    /// Post this text.
    Post(String),
    /// Pick files to post.
    AttachFiles,
    /// Pick a folder to post.
    AttachFolder,
    /// Add this peer.
    Add(PeerId),
    /// Remove this member.
    Remove(PeerId),
    /// Give the room this name.
    Rename(String),
    /// Leave the room.
    Leave,
    /// An answer to a files offer shown in the room.
    Transfer(TransferAction),
}

/// State of the pane that lives across frames.
#[derive(Debug, Default)]
pub struct RoomPane {
    /// The user's choice to show the member list; without one it shows when there is room.
    members_choice: Option<bool>,
    /// The rename dialog is open, with this text.
    rename: Option<String>,
    /// The "leave?" dialog is open.
    leaving: bool,
    /// Scroll state per room.
    views: HashMap<RoomId, ChatView>,
}

impl RoomPane {
    /// Draws `room`, with `input` in its box.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        model: &mut Model,
        room: RoomId,
        input: compose::Input<'_>,
        lang: Lang,
    ) -> Vec<RoomAction> {
        let mut actions = Vec::new();
        let Some(entry) = model.rooms.get(&room) else { return actions };
        let (name, joined) = (entry.name.clone(), entry.joined);
        let roomy = ui.available_width() >= MIN_POSTS_WIDTH + 180.0;
        let mut members_open = self.members_choice.unwrap_or(roomy);
        self.header(ui, model, room, &mut members_open, lang);
        if members_open != self.members_choice.unwrap_or(roomy) {
            self.members_choice = Some(members_open);
        }
        ui.separator();
        egui::Panel::bottom("room-compose").resizable(false).show(ui, |ui| {
            ui.add_space(4.0);
            if joined {
                actions.extend(compose::show(ui, input, lang).map(|action| match action {
                    ComposeAction::Send(text) => RoomAction::Post(text),
                    ComposeAction::AttachFiles => RoomAction::AttachFiles,
                    ComposeAction::AttachFolder => RoomAction::AttachFolder,
                }));
            } else {
                ui.label(RichText::new(tr!(lang, "rooms.not_member")).color(ui.visuals().warn_fg_color));
            }
            ui.add_space(4.0);
        });
        if members_open && joined {
            egui::Panel::right("room-members").resizable(true).default_size(190.0).min_size(150.0).show(
                ui,
                |ui| {
                    actions.extend(members_ui(ui, model, room, lang));
                },
            );
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(action) = transfers::room_offers(ui, model, room, lang) {
                actions.push(RoomAction::Transfer(action));
            }
            // The posts are taken out for the frame so the model can still be read for names.
            let mut chat = model.room_chats.remove(&room).unwrap_or_default();
            if chat.posts.is_empty() {
                let text = if chat.loaded {
                    tr!(lang, "rooms.empty", name = name)
                } else {
                    tr!(lang, "chat.loading")
                };
                ui.label(RichText::new(text).weak());
            } else {
                let view = self.views.entry(room).or_default();
                posts_ui(ui, model, room, &mut chat, view, lang);
            }
            model.room_chats.insert(room, chat);
        });
        actions.extend(self.dialogs(ui.ctx(), &name, lang));
        actions
    }

    fn header(&mut self, ui: &mut Ui, model: &Model, room: RoomId, members_open: &mut bool, lang: Lang) {
        let Some(info) = model.rooms.get(&room) else { return };
        ui.horizontal(|ui| {
            ui.heading(&info.name);
            let online = model.online_members(room);
            let detail = tr!(lang, "rooms.members_count", count = info.members.len(), online = online);
            ui.label(RichText::new(detail).weak());
            if !info.joined {
                return;
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.button(tr!(lang, "rooms.leave")).clicked() {
                    self.leaving = true;
                }
                if ui.button(tr!(lang, "rooms.rename")).clicked() {
                    self.rename = Some(info.name.clone());
                }
                ui.toggle_value(members_open, tr!(lang, "rooms.members"));
            });
        });
    }

    fn dialogs(&mut self, ctx: &egui::Context, name: &str, lang: Lang) -> Option<RoomAction> {
        let mut action = None;
        if let Some(text) = &mut self.rename {
            let mut done = false;
            let modal = egui::Modal::new(egui::Id::unique("room-rename")).show(ctx, |ui| {
                ui.set_width(340.0);
                ui.heading(tr!(lang, "rooms.rename_title"));
                let edit = ui.add(egui::TextEdit::singleline(text).desired_width(f32::INFINITY));
                if ui.memory(|memory| memory.focused().is_none()) {
                    edit.request_focus();
                }
                let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                ui.horizontal(|ui| {
                    let valid = !text.trim().is_empty() && text.trim() != name;
                    if (ui.add_enabled(valid, egui::Button::new(tr!(lang, "rooms.save"))).clicked()
                        || entered)
                        && valid
                    {
                        action = Some(RoomAction::Rename(text.trim().to_owned()));
                    }
                    done |= ui.button(tr!(lang, "rooms.cancel")).clicked();
                });
            });
            if done || action.is_some() || modal.should_close() {
                self.rename = None;
            }
        }
        if self.leaving {
            let mut done = false;
            let modal = egui::Modal::new(egui::Id::unique("room-leave")).show(ctx, |ui| {
                ui.set_width(360.0);
                ui.heading(tr!(lang, "rooms.leave_title", name = name));
                ui.label(tr!(lang, "rooms.leave_explain"));
                ui.add_space(6.0);
                ui.horizontal(|ui| {
                    if ui.button(tr!(lang, "rooms.leave")).clicked() {
                        action = Some(RoomAction::Leave);
                    }
                    done |= ui.button(tr!(lang, "rooms.cancel")).clicked();
                });
            });
            if done || action.is_some() || modal.should_close() {
                self.leaving = false;
            }
        }
        action
    }
}

fn members_ui(ui: &mut Ui, model: &Model, room: RoomId, lang: Lang) -> Option<RoomAction> {
    let info = model.rooms.get(&room)?;
    let mut action = None;
    ui.add_space(6.0);
    ui.strong(tr!(lang, "rooms.members"));
    let mut members: Vec<(bool, String, PeerId)> =
        info.members.iter().map(|m| (!model.is_online(m.id), model.member_name(room, m.id), m.id)).collect();
    members.sort();
    egui::ScrollArea::vertical().max_height(ui.available_height() - 40.0).show(ui, |ui| {
        for (offline, name, id) in &members {
            ui.horizontal(|ui| {
                let status = model.peers.get(id).map_or(Status::Online, |p| p.status);
                ui.label(RichText::new("●").color(theme::status_color(ui.visuals(), !offline, status)));
                let me = model.me.id == Some(*id);
                let shown = if me { format!("{name} ({})", tr!(lang, "rooms.you")) } else { name.clone() };
                let text = if *offline { RichText::new(shown).weak() } else { RichText::new(shown) };
                ui.label(text);
                if !me {
                    ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                        let remove = ui.small_button("✖").on_hover_text(tr!(lang, "rooms.remove"));
                        if remove.clicked() {
                            action = Some(RoomAction::Remove(*id));
                        }
                    });
                }
            });
        }
    });
    ui.add_space(4.0);
    let mut candidates: Vec<(String, PeerId)> = model
        .peers
        .values()
        .filter(|p| p.client.is_none() && !info.members.iter().any(|m| m.id == p.id))
        .map(|p| (p.name.clone(), p.id))
        .collect();
    candidates.sort();
    egui::ComboBox::from_id_salt(("room-add", room))
        .selected_text(tr!(lang, "rooms.add_member"))
        .width(ui.available_width())
        .show_ui(ui, |ui| {
            for (name, id) in candidates {
                if ui.selectable_label(false, name).clicked() {
                    action = Some(RoomAction::Add(id));
                }
            }
        });
    action
}

fn posts_ui(ui: &mut Ui, model: &Model, room: RoomId, chat: &mut RoomChat, view: &mut ChatView, lang: Lang) {
    let members = model.rooms.get(&room).map_or(0, |r| r.members.len());
    let posts = &chat.posts;
    let bubble_at = |index: usize| {
        let post = posts.get(index)?;
        let outgoing = model.me.id == Some(post.author);
        let footer = outgoing.then(|| {
            let others = members.saturating_sub(1);
            let names: Vec<String> = post.read_by.iter().map(|id| model.member_name(room, *id)).collect();
            let line = if names.is_empty() {
                tr!(lang, "rooms.read_by_none").into_owned()
            } else {
                tr!(lang, "rooms.read_by", count = names.len(), total = others).into_owned()
            };
            (line, names.join(", "))
        });
        let files = post.files.as_ref().map(|files| {
            let names: Vec<String> = files.names.iter().map(|n| display_path(n)).collect();
            let posted = PostedIn { room, seq: post.seq };
            let state = files_state(model, posted, post.author, outgoing, lang);
            let size = human_bytes(files.bytes);
            let count = if files.files == 1 {
                tr!(lang, "rooms.one_file", size = size)
            } else {
                tr!(lang, "rooms.files_count", count = files.files, size = size)
            };
            format!("📎 {}\n{count} · {state}", names.join(", "))
        });
        Some(Bubble {
            sender: model.member_name(room, post.author),
            outgoing,
            sent_at_ms: post.sent_at_ms,
            text: &post.text,
            state: None,
            unconfirmed: false,
            files,
            footer,
            marked: false,
            also_to: None,
            card: None,
        })
    };
    // Rooms load whole: there are never older posts to ask for.
    conversation::show(ui, &mut chat.rows, &mut 0, view, true, bubble_at, lang);
}

/// Where the files of a post stand for us: our offer's state (we received it), or how many
/// members received ours.
fn files_state(model: &Model, posted: PostedIn, author: PeerId, ours: bool, lang: Lang) -> String {
    let mut mine = model.transfers.iter().filter(|t| t.info.room == Some(posted));
    if ours {
        let offers: Vec<_> = mine.filter(|t| t.info.direction == Direction::Outgoing).collect();
        let done = offers.iter().filter(|t| t.info.state == TransferState::Completed).count();
        if done == 0 {
            return tr!(lang, "rooms.files_offered").into_owned();
        }
        return tr!(lang, "rooms.files_received", count = done, total = offers.len()).into_owned();
    }
    match mine.find(|t| t.info.direction == Direction::Incoming && t.info.peer == author) {
        Some(view) if view.info.state == TransferState::Offered => {
            tr!(lang, "rooms.files_answer").into_owned()
        }
        Some(view) => transfers::state_text(model, view, lang),
        None => tr!(lang, "rooms.files_not_offered").into_owned(),
    }
}

/// The "new room" dialog: a name and members picked from the Pigeon peers.
#[derive(Debug)]
pub struct CreateRoom {
    name: String,
    chosen: BTreeSet<PeerId>,
}

impl CreateRoom {
    /// With these peers ticked (those selected in the list).
    pub fn new(preselected: &[PeerId]) -> CreateRoom {
        CreateRoom { name: String::new(), chosen: preselected.iter().copied().collect() }
    }

    /// Draws the dialog. `Some(None)`: cancelled; `Some(Some(..))`: create with this name
    /// and these members; `None` while open.
    #[allow(clippy::option_option, reason = "closed without an answer is not the same as open")]
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        model: &Model,
        lang: Lang,
    ) -> Option<Option<(String, Vec<PeerId>)>> {
        let mut outcome = None;
        let mut peers: Vec<_> = model.peers.values().collect();
        peers.sort_by_cached_key(|p| (!p.online, p.name.to_lowercase(), p.id));
        let modal = egui::Modal::new(egui::Id::unique("room-create")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading(tr!(lang, "rooms.create_title"));
            let label = ui.label(tr!(lang, "rooms.name"));
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.name)
                        .hint_text(tr!(lang, "rooms.name_hint"))
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            if ui.memory(|memory| memory.focused().is_none()) {
                edit.request_focus();
            }
            ui.add_space(6.0);
            ui.label(tr!(lang, "rooms.pick_members"));
            egui::ScrollArea::vertical().max_height(260.0).show(ui, |ui| {
                if !peers.iter().any(|p| p.client.is_none()) {
                    ui.label(RichText::new(tr!(lang, "rooms.no_peers")).weak());
                }
                for peer in &peers {
                    let mut ticked = self.chosen.contains(&peer.id);
                    let label = if peer.name.is_empty() { short_id(peer.id) } else { peer.name.clone() };
                    let signs = peer.client.is_none();
                    let row = ui.add_enabled(signs, egui::Checkbox::new(&mut ticked, label));
                    if signs && row.changed() {
                        if ticked {
                            self.chosen.insert(peer.id);
                        } else {
                            self.chosen.remove(&peer.id);
                        }
                    }
                    if !signs {
                        row.on_disabled_hover_text(tr!(lang, "rooms.ipmsg_cannot"));
                    }
                }
            });
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                let valid = !self.name.trim().is_empty() && !self.chosen.is_empty();
                if ui.add_enabled(valid, egui::Button::new(tr!(lang, "rooms.create"))).clicked() {
                    outcome =
                        Some(Some((self.name.trim().to_owned(), self.chosen.iter().copied().collect())));
                }
                if ui.button(tr!(lang, "rooms.cancel")).clicked() {
                    outcome = Some(None);
                }
            });
        });
        if outcome.is_none() && modal.should_close() {
            outcome = Some(None);
        }
        outcome
    }
}
