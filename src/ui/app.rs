//! The window: owns the node, turns its events into the [`Model`] (in `logic`, which eframe
//! also runs while the window is hidden, and which a start hidden in the tray runs without a
//! window until it is first opened) and draws the panes (in `ui`).
//!
//! The window repaints only on input, on a node event (the node's waker wakes it) or on a
//! background outcome; an idle window draws nothing.

mod desktop;

pub use desktop::Wanted;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui::{self, Align, Layout, RichText, Ui, ViewportCommand};

use super::autostart;
use super::background::{Background, Job, Outcome};
use super::compose::{self, ComposeAction};
use super::conversation::{self, Bubble, ChatView, RowAction};
use super::doctor::{DoctorOutcome, DoctorPanel};
use super::fonts;
use super::i18n::Lang;
use super::idle::IdleWatch;
use super::invite::{InviteDialog, InviteOutcome};
use super::model::{Model, PeerEntry, ToMany};
use super::notifier::{Note, Notifier, Topic};
use super::peer_list::{PeerAction, PeerList, Selection};
use super::picker::{Picker, Purpose};
use super::pin::{PinDialog, PinOutcome};
use super::room::{CreateRoom, RoomAction, RoomPane};
use super::search::{self, SearchAction, SearchBar};
use super::settings::{SettingsDialog, SettingsOutcome, SettingsPatch, status_name};
use super::theme;
use super::transfers::{self, TransferAction};
use super::wake::Wake;
use crate::config::Config;
use crate::node::Trust;
use crate::node::{Command, CommandSender, Node, SendError};
use crate::node::{Direction, PeerId, RoomId};
use crate::node::{Family, Status};
use crate::tr;

/// Events taken in one frame at most, so a flood cannot freeze the window; the rest wait for
/// the next frame, which is requested at once.
const EVENTS_PER_FRAME: usize = 5_000;

/// With no peer seen for this long, the window suggests checking the firewall.
const FIREWALL_HINT_AFTER: Duration = Duration::from_secs(20);

/// Messages loaded when a conversation opens, and per older page.
const PAGE: usize = 200;

/// How soon commands the node was too busy to take are offered again.
const RETRY_COMMANDS: Duration = Duration::from_millis(100);

/// Commands kept for a busy node at most; beyond, the window says it cannot keep up.
const MAX_UNSENT: usize = 10_000;

/// The text cursor blinks this long after the last key or pointer input, then stays lit (as
/// GTK's `cursor-blink-timeout`): blinking repaints the whole window twice a second, which
/// costs a few per cent of a core with software OpenGL.
const CARET_BLINKS_FOR: Duration = Duration::from_secs(10);

/// Narrower than this, the transfers list floats over the conversation instead of taking a
/// column beside it (peer list 250 + conversation 450 + list 320, roughly).
const TRANSFERS_BESIDE_FROM: f32 = 1020.0;

/// Tag of the window's `room_create`: the room it makes opens.
const CREATE_ROOM_TAG: &str = "window-room-create";

/// The Pigeon window.
pub struct PigeonApp {
    node: Node,
    commands: CommandSender,
    /// Commands the node was too busy to take, oldest first: offered again each frame, so
    /// the window never waits for the node.
    unsent: VecDeque<Command>,
    /// Wakes the window (or, before there is one, the loop of a start in the tray).
    wake: Wake,
    /// The window, once there is one.
    window: Option<egui::Context>,
    config: Config,
    lang: Lang,
    model: Model,
    peer_list: PeerList,
    selection: Selection,
    views: HashMap<PeerId, ChatView>,
    drafts: HashMap<Vec<PeerId>, String>,
    /// The room shown instead of a conversation.
    open_room: Option<RoomId>,
    /// A conversation or room was just opened: the next frame puts the cursor in its box.
    focus_compose: bool,
    room_pane: RoomPane,
    room_drafts: HashMap<RoomId, String>,
    create_room: Option<CreateRoom>,
    show_transfers: bool,
    search: SearchBar,
    settings: Option<SettingsDialog>,
    picker: Option<Picker>,
    safety_open: bool,
    background: Background,
    title: String,
    focused: bool,
    drop_rows: Vec<(egui::Rect, PeerId)>,
    started: Instant,
    first_frame_logged: bool,
    /// Last key or pointer input, for the caret's blinking.
    last_input: Instant,
    /// Whether the caret blinks now.
    caret_blinks: bool,
    /// Try the desktop's file dialog (until it proves absent).
    native_dialogs: bool,
    /// The desktop's file dialog is open: no second one.
    native_dialog_open: bool,
    /// Where the last pick came from: the next dialog opens there.
    last_folder: Option<PathBuf>,
    /// A message's text being forwarded, and the filter typed in the "Forward to" dialog.
    forward: Option<(String, String)>,
    /// The PIN a LocalSend device asks for, being typed.
    pin: Option<PinDialog>,
    /// "Invite with a link", when open.
    invite: Option<InviteDialog>,
    /// "Can't see someone?", when open.
    doctor: Option<DoctorPanel>,
    /// The tray icon and what closing the window does.
    desktop: desktop::Desktop,
    /// Desktop notifications, and what was clicked in them.
    notifier: Notifier,
    /// Whether the user is at the keyboard.
    idle: IdleWatch,
}

impl PigeonApp {
    /// The window around a started node; `also_wake` runs with every node event batch (tests
    /// use it to wait for events instead of sleeping).
    pub fn new(
        ctx: &egui::Context,
        node: Node,
        config: Config,
        also_wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<PigeonApp> {
        let mut app = PigeonApp::without_window(Wake::default(), node, config, also_wake)?;
        app.attach(ctx);
        Ok(app)
    }

    /// The window's state around a started node, before there is a window: [`Self::tick`]
    /// keeps it, [`Self::attach`] gives it its window. Everything that has news for it
    /// calls `wake`.
    pub fn without_window(
        wake: Wake,
        node: Node,
        config: Config,
        also_wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<PigeonApp> {
        let waker = wake.clone();
        // The node was just started: its queue is empty, and if it stopped already the
        // window says so when its Stopped event arrives.
        node.set_waker(move || {
            waker.now();
            also_wake();
        })
        .ok();
        let away_after_secs = config.settings.away_after_secs;
        let commands = node.commands();
        let unsent = [
            Command::ListPeers,
            Command::ListConversations,
            Command::ListTransfers,
            Command::ListRooms,
            Command::ListAutoAcceptFrom,
        ]
        .into();
        let lang = Lang::choose(config.settings.language.as_deref());
        Ok(PigeonApp {
            background: Background::start(&wake)?,
            node,
            commands,
            unsent,
            notifier: Notifier::start(&wake),
            idle: IdleWatch::start(&wake, away_after_secs),
            wake,
            window: None,
            config,
            lang,
            model: Model::default(),
            peer_list: PeerList::default(),
            selection: Selection::default(),
            views: HashMap::new(),
            drafts: HashMap::new(),
            open_room: None,
            focus_compose: false,
            room_pane: RoomPane::default(),
            room_drafts: HashMap::new(),
            create_room: None,
            show_transfers: false,
            search: SearchBar::default(),
            settings: None,
            picker: None,
            safety_open: false,
            title: String::new(),
            focused: true,
            drop_rows: Vec::new(),
            started: Instant::now(),
            first_frame_logged: false,
            last_input: Instant::now(),
            caret_blinks: true,
            native_dialogs: native_dialogs_possible(),
            native_dialog_open: false,
            last_folder: None,
            forward: None,
            pin: None,
            invite: None,
            doctor: None,
            desktop: desktop::Desktop::default(),
        })
    }

    /// Gives the state its window: fonts and theme go in, and waking now asks `ctx` for a
    /// frame.
    pub fn attach(&mut self, ctx: &egui::Context) {
        fonts::install(ctx);
        theme::install(ctx, self.config.settings.theme, self.config.settings.text_size);
        self.wake.attach(ctx);
        self.window = Some(ctx.clone());
    }

    /// Takes in what came from the node, the background and the desktop, without drawing;
    /// `focused`: whether the user has the window in front of them. Returns what is wanted of
    /// the window.
    pub fn tick(&mut self, focused: bool) -> Wanted {
        self.send_unsent();
        self.take_events(focused);
        self.take_outcomes();
        self.live_on_desktop()
    }

    /// Whether the node has stopped (the window then says why).
    pub fn stopped(&self) -> bool {
        self.model.stopped
    }

    /// The settings and folders in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the window knows (tests look here).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Takes in an event as if the node had sent it (benchmarks fill the window this way).
    pub fn apply(&mut self, event: crate::Event) {
        self.model.apply(event);
    }

    /// The node behind the window.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The language the window speaks.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Sends a command without ever waiting: one the node is too busy to take waits here,
    /// in order, and the top bar says so.
    fn send(&mut self, command: Command) {
        if self.unsent.len() >= MAX_UNSENT {
            self.model.notice(SendError::Busy(command).to_string());
            return;
        }
        self.unsent.push_back(command);
        self.send_unsent();
    }

    fn send_unsent(&mut self) {
        while let Some(command) = self.unsent.pop_front() {
            match self.commands.try_send(command) {
                Ok(()) => {}
                Err(SendError::Busy(command)) => {
                    self.unsent.push_front(command);
                    self.wake.after(RETRY_COMMANDS);
                    return;
                }
                Err(err @ SendError::Stopped) => {
                    self.unsent.clear();
                    if !self.model.stopped {
                        self.model.notice(err.to_string());
                    }
                    return;
                }
            }
        }
    }

    fn take_events(&mut self, focused: bool) {
        let mut arrivals = Vec::new();
        let mut created = None;
        for _ in 0..EVENTS_PER_FRAME {
            let Ok(event) = self.node.events().try_recv() else { break };
            if let crate::Event::RoomUpdated { room, tag: Some(tag) } = &event
                && tag == CREATE_ROOM_TAG
            {
                created = Some(room.room);
            }
            arrivals.extend(self.model.apply(event));
        }
        if let Some(room) = created {
            self.open_room(room);
        }
        if !self.node.events().is_empty() {
            self.wake.now();
        }
        let open = self.selection.single();
        for arrival in arrivals {
            let seen = match arrival.room {
                Some(room) => self.open_room == Some(room),
                None => open == Some(arrival.peer),
            };
            // An offer shows as a card in its conversation, where a message would.
            if focused && seen && (arrival.offer.is_none() || arrival.room.is_none()) {
                self.mark_seen(arrival.room, arrival.peer);
            } else if !focused && self.config.settings.status != Status::Busy {
                // Busy is "do not disturb": the count in the title and the tray still say it.
                self.notify(arrival);
            }
        }
        if focused && !self.focused {
            // Coming back to the window counts as reading the open conversation or room.
            if let Some(room) = self.open_room {
                self.mark_room_read(room);
            } else if let Some(peer) = open {
                self.mark_read(peer);
            }
        }
        self.focused = focused;
    }

    fn notify(&self, arrival: crate::ui::model::Arrival) {
        let lang = self.lang;
        let topic = match arrival.room {
            Some(room) => Topic::Room(room),
            None => Topic::Peer(arrival.peer),
        };
        let buttons =
            ["notify.open", "transfers.accept", "transfers.decline"].map(|key| tr!(lang, key).into_owned());
        self.notifier.notify(Note {
            topic,
            title: arrival.name,
            body: arrival.text,
            offer: arrival.offer,
            buttons,
        });
    }

    fn mark_seen(&mut self, room: Option<RoomId>, peer: PeerId) {
        match room {
            Some(room) => self.mark_room_read(room),
            None => self.mark_read(peer),
        }
    }

    fn mark_room_read(&mut self, room: RoomId) {
        self.notifier.seen(Topic::Room(room));
        if self.model.rooms.get(&room).is_some_and(|r| r.unread > 0) {
            self.model.mark_room_read(room);
            self.send(Command::RoomMarkRead { room });
        }
    }

    fn open_room(&mut self, room: RoomId) {
        self.open_room = Some(room);
        self.focus_compose = true;
        self.selection.clear();
        let chat = self.model.room_chats.entry(room).or_default();
        if !chat.loaded && !chat.loading {
            chat.loading = true;
            self.send(Command::RoomHistory { room });
        }
        self.mark_room_read(room);
    }

    fn on_room_action(&mut self, room: RoomId, action: RoomAction) {
        let command = match action {
            RoomAction::Post(text) => Command::RoomSend { room, text, tag: None },
            RoomAction::AttachFiles => return self.open_picker(Purpose::RoomFiles(room)),
            RoomAction::AttachFolder => return self.open_picker(Purpose::RoomFolder(room)),
            RoomAction::Add(member) => Command::RoomAdd { room, member },
            RoomAction::Remove(member) => Command::RoomRemove { room, member },
            RoomAction::Rename(name) => Command::RoomRename { room, name },
            RoomAction::Leave => {
                self.open_room = None;
                Command::RoomLeave { room }
            }
            RoomAction::Transfer(action) => return self.on_transfer_action(action),
        };
        self.send(command);
    }

    fn post_files(&mut self, room: RoomId, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.send(Command::RoomSendFiles { room, paths, tag: None });
        }
    }

    fn mark_read(&mut self, peer: PeerId) {
        self.notifier.seen(Topic::Peer(peer));
        if self.model.peers.get(&peer).is_some_and(|p| p.unread > 0) {
            self.model.mark_read(peer);
            self.send(Command::MarkRead { peer });
        }
    }

    fn take_outcomes(&mut self) {
        let outcomes: Vec<Outcome> = self.background.outcomes().collect();
        for outcome in outcomes {
            match outcome {
                Outcome::SettingsSaved(Ok(())) => {}
                Outcome::TargetsResolved(Ok(targets)) => self.send(Command::SetTargets { targets }),
                Outcome::Picked(purpose, picked) => {
                    self.native_dialog_open = false;
                    match picked {
                        Some(paths) => self.picked(purpose, paths),
                        None => {
                            // No portal and no zenity here: the window's own picker from now on.
                            self.native_dialogs = false;
                            self.open_picker(purpose);
                        }
                    }
                }
                Outcome::Examined(mut report) => {
                    let online = self.model.peers.values().filter(|peer| peer.online);
                    report.heard_from(online.map(|peer| (peer.family, peer.addr.as_str())));
                    if let Some(panel) = &mut self.doctor {
                        panel.report = Some(*report);
                    }
                }
                Outcome::OpenFailed { target, missing } => {
                    let key = if missing { "open.no_opener" } else { "open.failed" };
                    self.model.notice(tr!(self.lang, key, target = target).into_owned());
                }
                Outcome::SettingsSaved(Err(error)) | Outcome::TargetsResolved(Err(error)) => {
                    self.model.notice(error);
                }
            }
        }
    }

    fn caret(&mut self, ctx: &egui::Context) {
        if ctx.input(|i| !i.events.is_empty() || i.pointer.is_moving()) {
            self.last_input = Instant::now();
        }
        let idle = self.last_input.elapsed();
        let blinks = idle < CARET_BLINKS_FOR;
        if blinks {
            ctx.request_repaint_after(CARET_BLINKS_FOR - idle);
        }
        if blinks != self.caret_blinks {
            self.caret_blinks = blinks;
            ctx.all_styles_mut(|style| style.visuals.text_cursor.blink = blinks);
        }
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let unread = self.model.total_unread();
        let title = if unread > 0 { format!("({unread}) Pigeon") } else { String::from("Pigeon") };
        if title != self.title {
            ctx.send_viewport_cmd(ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    fn select(&mut self, peer: PeerId, modifiers: egui::Modifiers, order: &[PeerId]) {
        self.open_room = None;
        self.selection.click(peer, modifiers, order);
        if let Some(single) = self.selection.single() {
            self.open_chat(single);
        }
    }

    fn open_chat(&mut self, peer: PeerId) {
        self.focus_compose = true;
        let chat = self.model.chats.entry(peer).or_default();
        if !chat.loading && chat.messages.len() < PAGE && !chat.has_more {
            chat.loading = true;
            self.send(Command::LoadHistory { peer, before: None, after: None, limit: PAGE });
        }
        self.mark_read(peer);
    }

    fn on_peer_action(&mut self, action: PeerAction) {
        match action {
            PeerAction::Write(peer) => self.select(peer, egui::Modifiers::NONE, &[]),
            PeerAction::SendFiles(peer) => self.open_picker(Purpose::SendFiles(vec![peer])),
            PeerAction::SendFolder(peer) => self.open_picker(Purpose::SendFolder(vec![peer])),
            PeerAction::SafetyNumber(peer) => self.ask_safety_number(peer),
            PeerAction::AutoAccept(peer, on) => self.send(Command::SetAutoAcceptFrom { peer, on }),
            PeerAction::GivePin(peer) => self.pin = Some(PinDialog::new(peer, None)),
            PeerAction::Select(peers) => {
                self.open_room = None;
                self.selection.clear();
                let order = peers.clone();
                for peer in peers {
                    self.selection.click(peer, egui::Modifiers::COMMAND, &order);
                }
                self.focus_compose = true;
            }
        }
    }

    /// Up/Down in the filter box: the next or previous peer of the list, opened.
    fn step_selection(&mut self, step: isize, order: &[PeerId]) {
        let at = self.selection.single().and_then(|peer| order.iter().position(|&p| p == peer));
        let next = match at {
            Some(at) => at.checked_add_signed(step).filter(|&next| next < order.len()),
            None => (!order.is_empty()).then_some(0),
        };
        if let Some(&peer) = next.and_then(|next| order.get(next)) {
            self.select(peer, egui::Modifiers::NONE, order);
            // The keyboard stays in the list while stepping.
            self.focus_compose = false;
            self.peer_list.focus_filter = true;
        }
    }

    /// Opens "Can't see someone?" and examines the network (probing `probe`), off the
    /// window's thread.
    fn examine(&mut self, probe: Option<String>) {
        if let Err(err) = self.background.examine(self.config.settings.clone(), probe) {
            // The panel would wait for a report that never comes.
            log::warn!("cannot start the network doctor: {err}");
            self.doctor = None;
            return;
        }
        self.doctor.get_or_insert_with(DoctorPanel::default).report = None;
    }

    /// Opens "Invite with a link" with a fresh link of ours: its token's two weeks start now.
    fn open_invite_dialog(&mut self) -> &mut InviteDialog {
        self.model.invite_link = None;
        self.send(Command::MakeInvite);
        self.invite.insert(InviteDialog::default())
    }

    /// Uses an invite link opened from outside the window (a browser, a chat): the dialog
    /// shows how it goes.
    pub(super) fn use_invite_link(&mut self, link: &str) {
        let mut dialog = std::mem::take(self.open_invite_dialog());
        if let Some(link) = dialog.start_using(link, &self.model) {
            self.send(Command::UseInvite { link });
        }
        self.invite = Some(dialog);
    }

    fn ask_safety_number(&mut self, peer: PeerId) {
        self.safety_open = true;
        self.model.safety = None;
        self.send(Command::SafetyNumber { peer });
    }

    fn on_search_action(&mut self, action: SearchAction) {
        match action {
            SearchAction::Query(query, peer) => {
                self.model.start_search(query.clone(), peer);
                self.send(Command::Search { query, peer, limit: search::RESULTS });
            }
            SearchAction::Open(peer, seq) => {
                self.search.close();
                self.open_chat_at(peer, seq);
            }
        }
    }

    /// Opens the conversation with `peer` at the message `seq`, loading the pages around it
    /// when they are not held.
    fn open_chat_at(&mut self, peer: PeerId, seq: i64) {
        if !self.model.open_chat_at(peer, seq) {
            let half = PAGE / 2;
            self.send(Command::LoadHistory { peer, before: Some(seq + 1), after: None, limit: half });
            self.send(Command::LoadHistory { peer, before: None, after: Some(seq), limit: half });
        }
        self.select(peer, egui::Modifiers::NONE, &[]);
    }

    fn apply_settings(&mut self, patch: &SettingsPatch) {
        self.background.submit(Job::SaveSettings(self.config.config_file.clone(), patch.clone()));
        if patch.name.is_some() || patch.group.is_some() || patch.status.is_some() {
            self.send(Command::SetProfile {
                name: patch.name.clone(),
                group: patch.group.clone(),
                status: patch.status,
            });
        }
        if patch.download_dir.is_some() || patch.auto_accept.is_some() {
            self.send(Command::SetReceiving {
                download_dir: patch.download_dir.clone(),
                auto_accept: patch.auto_accept,
            });
        }
        if patch.speed_limit_kbps.is_some() || patch.total_speed_limit_kbps.is_some() {
            let settings = &self.config.settings;
            self.send(Command::SetSpeedLimits {
                per_transfer_kbps: patch.speed_limit_kbps.unwrap_or(settings.speed_limit_kbps),
                total_kbps: patch.total_speed_limit_kbps.unwrap_or(settings.total_speed_limit_kbps),
            });
        }
        if let Some(targets) = &patch.targets {
            self.background.submit(Job::ResolveTargets(targets.clone(), self.config.settings.port));
        }
        if let Some(secs) = patch.away_after_secs {
            self.idle.set_threshold(secs);
        }
        if patch.status.is_some() {
            // The user chose: no longer away for being idle.
            self.desktop.away_while_idle = false;
        }
        if let (Some(on), Some(entry)) = (patch.start_with_session, &self.config.autostart_entry) {
            self.background.submit(Job::Autostart {
                entry: entry.clone(),
                on,
                data_dir: self.config.data_dir.clone(),
            });
        }
        if let Some(name) = &patch.name {
            self.model.me.name.clone_from(name);
        }
        patch.apply(&mut self.config.settings);
        self.lang = Lang::choose(self.config.settings.language.as_deref());
        if patch.theme.is_some() || patch.text_size.is_some() {
            if let Some(ctx) = &self.window {
                theme::install(ctx, self.config.settings.theme, self.config.settings.text_size);
            }
            self.caret_blinks = true;
        }
        if patch.needs_restart() {
            self.model.notice(tr!(self.lang, "settings.restart_needed").into_owned());
        }
    }

    fn on_transfer_action(&mut self, action: TransferAction) {
        let command = match action {
            TransferAction::Accept(transfer_id, always) => Command::AcceptTransfer { transfer_id, always },
            TransferAction::Decline(transfer_id) => Command::DeclineTransfer { transfer_id },
            TransferAction::Cancel(transfer_id) => Command::CancelTransfer { transfer_id },
            TransferAction::Retry(transfer_id) => Command::RetryTransfer { transfer_id },
            TransferAction::AskPin(transfer_id) => {
                if let Some(view) = self.model.transfer(transfer_id) {
                    self.pin = Some(PinDialog::new(view.info.peer, Some(transfer_id)));
                }
                return;
            }
            TransferAction::Open(id) | TransferAction::OpenFolder(id) => {
                let Some(view) = self.model.transfer(id) else { return };
                let folder = view.info.saved_in.clone().unwrap_or_else(|| self.config.download_dir());
                let target = match (action, view.info.names.as_slice()) {
                    (TransferAction::Open(_), [name]) => folder.join(name),
                    _ => folder,
                };
                self.background.submit(Job::Open(target.display().to_string()));
                return;
            }
        };
        self.send(command);
    }

    fn send_files(&mut self, to: Vec<PeerId>, paths: Vec<PathBuf>) {
        if to.is_empty() {
            self.model.notice(tr!(self.lang, "files.pick_peer_first").into_owned());
        } else if !paths.is_empty() {
            // To one peer the transfer shows in the conversation; to several, in the list.
            self.show_transfers |= to.len() > 1;
            self.send(Command::SendFiles { to, paths, tag: None });
        }
    }

    fn top_bar(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        ui.horizontal(|ui| {
            let status = self.config.settings.status;
            ui.label(RichText::new("●").color(theme::status_color(ui.visuals(), true, status)));
            let me = ui.label(RichText::new(&self.model.me.name).strong());
            let mut chosen = status;
            egui::ComboBox::from_id_salt("my-status")
                .selected_text(status_name(status, lang))
                .show_ui(ui, |ui| {
                    for option in [Status::Online, Status::Away, Status::Busy] {
                        ui.selectable_value(&mut chosen, option, status_name(option, lang));
                    }
                })
                .response
                .labelled_by(me.id);
            if chosen != status {
                self.apply_settings(&SettingsPatch { status: Some(chosen), ..SettingsPatch::default() });
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                ui.label(RichText::new("⌨").strong()).on_hover_text(tr!(lang, "top.shortcuts"));
                self.search.field_ui(ui, lang);
                if ui.button(tr!(lang, "top.invite")).on_hover_text(tr!(lang, "top.invite_hint")).clicked() {
                    self.open_invite_dialog();
                }
                if ui.button(tr!(lang, "top.settings")).clicked() {
                    // One look at the disk when the dialog opens, like the download folder.
                    let autostarts = self.config.autostart_entry.as_deref().map(autostart::is_on);
                    let download_dir = self.config.download_dir();
                    self.settings =
                        Some(SettingsDialog::new(&self.config.settings, &download_dir, autostarts));
                }
                let pending = transfers::pending_count(&self.model);
                let label = if pending > 0 {
                    tr!(lang, "top.transfers_count", count = pending).into_owned()
                } else {
                    tr!(lang, "top.transfers").into_owned()
                };
                ui.toggle_value(&mut self.show_transfers, label);
                if self.model.stopped {
                    ui.label(RichText::new(tr!(lang, "top.stopped")).color(ui.visuals().error_fg_color));
                } else if !self.unsent.is_empty() {
                    let busy = tr!(lang, "top.busy", count = self.unsent.len());
                    ui.label(RichText::new(busy).color(ui.visuals().warn_fg_color));
                }
            });
        });
    }

    fn notices(&mut self, ui: &mut Ui) {
        let mut dismissed = None;
        for (index, notice) in self.model.notices.iter().enumerate() {
            egui::Frame::new().fill(ui.visuals().extreme_bg_color).inner_margin(6).corner_radius(4).show(
                ui,
                |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
                        if ui.small_button("✖").on_hover_text(tr!(self.lang, "notice.dismiss")).clicked() {
                            dismissed = Some(index);
                        }
                    });
                },
            );
        }
        if let Some(index) = dismissed {
            self.model.notices.remove(index);
        }
    }

    fn centre(&mut self, ui: &mut Ui) {
        self.notices(ui);
        if self.search.open {
            if let Some(action) = self.search.results_ui(ui, &self.model, self.lang) {
                self.on_search_action(action);
            }
            return;
        }
        if let Some(room) = self.open_room {
            let input = compose::Input {
                draft: self.room_drafts.entry(room).or_default(),
                enabled: !self.model.stopped,
                focus: std::mem::take(&mut self.focus_compose),
            };
            let actions = self.room_pane.show(ui, &mut self.model, room, input, self.lang);
            for action in actions {
                self.on_room_action(room, action);
            }
            return;
        }
        let to: Vec<PeerId> = self.selection.peers().to_vec();
        if to.is_empty() {
            self.first_run_hint(ui);
            return;
        }
        if let Some(peer) = self.selection.single() {
            self.chat_header(ui, peer);
        } else {
            let names: Vec<String> = to.iter().map(|&p| self.model.name_of(p)).collect();
            ui.heading(tr!(self.lang, "chat.to_many", count = to.len()));
            ui.label(names.join(", "));
        }
        ui.separator();
        let lang = self.lang;
        let draft = self.drafts.entry(to.clone()).or_default();
        let mut action = None;
        egui::Panel::bottom("compose").resizable(false).show(ui, |ui| {
            ui.add_space(4.0);
            let focus = std::mem::take(&mut self.focus_compose);
            action = compose::show(ui, compose::Input { draft, enabled: !self.model.stopped, focus }, lang);
            ui.add_space(4.0);
        });
        match action {
            Some(ComposeAction::Send(text)) => {
                for &peer in &to {
                    if self.model.back_to_present(peer) {
                        self.send(Command::LoadHistory { peer, before: None, after: None, limit: PAGE });
                    }
                }
                self.send(Command::SendMessage { to: to.clone(), text, tag: None });
            }
            Some(ComposeAction::AttachFiles) => self.open_picker(Purpose::SendFiles(to.clone())),
            Some(ComposeAction::AttachFolder) => self.open_picker(Purpose::SendFolder(to.clone())),
            None => {}
        }
        egui::CentralPanel::default().show(ui, |ui| match self.selection.single() {
            Some(peer) => self.messages(ui, peer),
            None => self.to_many_ui(ui, &to),
        });
    }

    fn chat_header(&mut self, ui: &mut Ui, peer: PeerId) {
        let lang = self.lang;
        let Some(entry) = self.model.peers.get(&peer) else { return };
        let mut wants_code = false;
        let mut accept = false;
        let mut place = if entry.addr.is_empty() {
            entry.host.clone()
        } else {
            format!("{} · {}", entry.host, entry.addr)
        };
        if let Some(client) = &entry.client {
            place = format!("{place} · {client}");
        }
        // The trust state and its button first, from the right; name and place take what is
        // left and are cut with "…" rather than drawn over it.
        let height = egui::TextStyle::Heading.resolve(ui.style()).size * 1.5;
        ui.allocate_ui_with_layout(
            egui::vec2(ui.available_width(), height),
            Layout::right_to_left(Align::Center),
            |ui| {
                {
                    let (key, color) = trust_label(ui.visuals(), entry);
                    if entry.has_safety_number() && ui.button(tr!(lang, "trust.safety_number")).clicked() {
                        wants_code = true;
                    }
                    ui.label(RichText::new(tr!(lang, key)).color(color));
                }
                ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                    ui.add(egui::Label::new(RichText::new(&entry.name).heading()).truncate());
                    ui.add(egui::Label::new(RichText::new(&place).weak()).truncate());
                });
            },
        );
        if let Some((_, was_verified)) = entry.key_changed_from {
            egui::Frame::new().fill(ui.visuals().extreme_bg_color).inner_margin(8).corner_radius(4).show(
                ui,
                |ui| {
                    let pigeon = entry.family == Family::Pigeon;
                    let key = match (pigeon, was_verified) {
                        (false, _) => "trust.localsend_changed_warning",
                        (true, true) => "trust.changed_verified_warning",
                        (true, false) => "trust.changed_warning",
                    };
                    ui.label(
                        RichText::new(tr!(lang, key, name = entry.name)).color(ui.visuals().error_fg_color),
                    );
                    ui.horizontal(|ui| {
                        if pigeon && ui.button(tr!(lang, "trust.safety_number")).clicked() {
                            wants_code = true;
                        }
                        let accept_key = if pigeon { "trust.accept_key" } else { "trust.accept_certificate" };
                        if ui.button(tr!(lang, accept_key)).clicked() {
                            accept = true;
                        }
                    });
                },
            );
        }
        if wants_code {
            self.ask_safety_number(peer);
        }
        if accept {
            self.send(Command::AcceptKey { peer });
        }
    }

    fn messages(&mut self, ui: &mut Ui, peer: PeerId) {
        let lang = self.lang;
        let name = self.model.name_of(peer);
        let me = self.model.me.name.clone();
        let Some(chat) = self.model.chats.get_mut(&peer) else { return };
        if chat.messages.is_empty() {
            let text = if chat.loading {
                tr!(self.lang, "chat.loading")
            } else {
                tr!(self.lang, "chat.empty", name = name)
            };
            ui.label(RichText::new(text).weak());
            return;
        }
        let view = self.views.entry(peer).or_default();
        if let Some(index) = chat.take_scroll_request() {
            view.scroll_to(index);
        }
        // The rows' heights are written while the cards read the rest of the model.
        let (mut rows, mut prepended) = (std::mem::take(&mut chat.rows), std::mem::take(&mut chat.prepended));
        let model = &self.model;
        let Some(chat) = model.chats.get(&peer) else { return };
        let bubble_at = |index: usize| {
            let message = chat.messages.get(index)?;
            let outgoing = message.direction == Direction::Outgoing;
            let card = message
                .transfer
                .and_then(|id| model.transfer(id))
                .map(|view| conversation::Card { model, view });
            Some(Bubble {
                sender: if outgoing { me.clone() } else { name.clone() },
                outgoing,
                sent_at_ms: message.sent_at_ms,
                text: &message.text,
                state: outgoing.then_some(message.state),
                unconfirmed: message.unconfirmed_sender,
                files: None,
                footer: None,
                marked: chat.focus == Some(message.seq),
                also_to: (!message.also_to.is_empty()).then(|| names_line(model, &message.also_to, lang)),
                card,
            })
        };
        let at_present = !chat.has_newer;
        let shown = conversation::show(ui, &mut rows, &mut prepended, view, at_present, bubble_at, lang);
        let Some(chat) = self.model.chats.get_mut(&peer) else { return };
        (chat.rows, chat.prepended) = (rows, prepended);
        let mut commands = Vec::new();
        if shown.near.top && chat.has_more && !chat.loading {
            chat.loading = true;
            commands.push(Command::LoadHistory { peer, before: chat.oldest_seq(), after: None, limit: PAGE });
        }
        if shown.near.bottom && chat.has_newer && !chat.loading_newer {
            chat.loading_newer = true;
            commands.push(Command::LoadHistory { peer, before: None, after: chat.newest_seq(), limit: PAGE });
        }
        commands.into_iter().for_each(|command| self.send(command));
        match shown.action {
            Some(RowAction::Transfer(action)) => self.on_transfer_action(action),
            Some(RowAction::Forward(text)) => self.forward = Some((text, String::new())),
            None => {}
        }
    }

    /// What was written this session to exactly these people: one entry per message, with
    /// where each copy stands (each also sits in its recipient's conversation).
    fn to_many_ui(&self, ui: &mut Ui, to: &[PeerId]) {
        let lang = self.lang;
        let mut key = to.to_vec();
        key.sort_unstable();
        let sent: Vec<&ToMany> = self.model.to_many.iter().filter(|entry| entry.to == key).collect();
        if sent.is_empty() {
            ui.label(RichText::new(tr!(lang, "chat.to_many_hint")).weak());
            return;
        }
        egui::ScrollArea::vertical().auto_shrink(false).stick_to_bottom(true).show(ui, |ui| {
            let palette = theme::palette(ui.visuals());
            for entry in sent {
                egui::Frame::new()
                    .fill(palette.bubble_out)
                    .corner_radius(8.0)
                    .inner_margin(egui::Margin::symmetric(10, 6))
                    .show(ui, |ui| {
                        let time = super::text::local_time(entry.sent_at_ms).format("%H:%M").to_string();
                        ui.label(RichText::new(time).small().weak());
                        ui.label(&entry.text);
                        ui.horizontal_wrapped(|ui| {
                            for (peer, _, state) in &entry.copies {
                                let state = conversation::state_name(*state, lang);
                                ui.label(
                                    RichText::new(format!("{} · {state}", self.model.name_of(*peer)))
                                        .small()
                                        .weak(),
                                );
                            }
                        });
                    });
                ui.add_space(6.0);
            }
        });
    }

    fn first_run_hint(&self, ui: &mut Ui) {
        let lang = self.lang;
        ui.add_space(40.0);
        ui.vertical_centered(|ui| {
            ui.heading(tr!(lang, "hint.title"));
            ui.add_space(8.0);
            let key = if self.model.peers.is_empty() { "hint.no_peers" } else { "hint.pick_peer" };
            ui.label(tr!(lang, key));
            ui.add_space(8.0);
            ui.label(RichText::new(tr!(lang, "hint.other_subnet")).weak());
            if self.model.peers.is_empty() {
                // Peers answer within a second or two; after this long a firewall is likely.
                let waited = self.started.elapsed();
                if waited >= FIREWALL_HINT_AFTER {
                    ui.add_space(8.0);
                    ui.label(RichText::new(tr!(lang, "hint.firewall")).color(ui.visuals().warn_fg_color));
                } else {
                    ui.ctx().request_repaint_after(FIREWALL_HINT_AFTER - waited);
                }
            }
            if !self.model.me.addr.is_empty() {
                ui.label(
                    RichText::new(tr!(lang, "hint.listening", addr = self.model.me.addr)).small().weak(),
                );
            }
        });
    }

    /// The desktop's file dialog when there may be one, else the window's own; either opens
    /// in the folder last picked from.
    fn open_picker(&mut self, purpose: Purpose) {
        let start = self.last_folder.clone().unwrap_or_else(|| {
            directories::UserDirs::new()
                .map_or_else(|| PathBuf::from("/"), |dirs| dirs.home_dir().to_path_buf())
        });
        self.open_picker_at(purpose, start);
    }

    fn open_picker_at(&mut self, purpose: Purpose, start: PathBuf) {
        if self.native_dialog_open {
            return;
        }
        if self.native_dialogs {
            let title = tr!(self.lang, "picker.title").into_owned();
            match self.background.pick(purpose.clone(), start.clone(), title) {
                Ok(()) => {
                    self.native_dialog_open = true;
                    return;
                }
                Err(err) => log::warn!("cannot start the file dialog: {err}"),
            }
        }
        self.picker = Some(Picker::open(purpose, start, self.lang));
    }

    /// Paths picked for `purpose`, by either dialog.
    fn picked(&mut self, purpose: Purpose, paths: Vec<PathBuf>) {
        if let Some(picked_from) = paths.first().and_then(|first| first.parent()) {
            self.last_folder = Some(picked_from.to_path_buf());
        }
        match purpose {
            Purpose::SendFiles(to) | Purpose::SendFolder(to) => self.send_files(to, paths),
            Purpose::RoomFiles(room) | Purpose::RoomFolder(room) => self.post_files(room, paths),
            Purpose::DownloadFolder => {
                if let (Some(dialog), Some(path)) = (&mut self.settings, paths.first()) {
                    dialog.download_dir = path.display().to_string();
                }
            }
        }
    }

    fn dialogs(&mut self, ctx: &egui::Context) {
        if let Some(picker) = &mut self.picker
            && let Some((purpose, paths)) = picker.show(ctx)
        {
            self.picker = None;
            self.picked(purpose, paths);
        }
        if self.picker.is_none()
            && let Some(dialog) = &mut self.settings
        {
            let always: Vec<(PeerId, String)> =
                self.model.auto_accept_from.iter().map(|&peer| (peer, self.model.name_of(peer))).collect();
            match dialog.show(ctx, &self.config.settings, &always, self.desktop.has_tray(), self.lang) {
                Some(SettingsOutcome::Save(patch)) => {
                    self.settings = None;
                    self.apply_settings(&patch);
                }
                Some(SettingsOutcome::Cancel) => self.settings = None,
                Some(SettingsOutcome::StopAutoAccept(peer)) => {
                    self.send(Command::SetAutoAcceptFrom { peer, on: false });
                }
                Some(SettingsOutcome::BrowseDownloadDir) => {
                    let start = dialog.current_download_dir().to_path_buf();
                    self.open_picker_at(Purpose::DownloadFolder, start);
                }
                None => {}
            }
        }
        if self.safety_open {
            self.safety_dialog(ctx);
        }
        self.closing_quits_dialog(ctx);
        if self.forward.is_some() {
            self.forward_dialog(ctx);
        }
        if let Some(dialog) = &mut self.pin {
            let name = self.model.name_of(dialog.peer);
            match dialog.show(ctx, &name, self.lang) {
                Some(PinOutcome::Give(pin)) => {
                    let (peer, retry) = (dialog.peer, dialog.retry);
                    self.pin = None;
                    self.send(Command::SetPin { peer, pin });
                    if let Some(transfer_id) = retry {
                        self.send(Command::RetryTransfer { transfer_id });
                    }
                }
                Some(PinOutcome::Cancel) => self.pin = None,
                None => {}
            }
        }
        if let Some(panel) = &mut self.doctor {
            match panel.show(ctx, self.lang) {
                Some(DoctorOutcome::Examine(probe)) => self.examine(probe),
                Some(DoctorOutcome::Copy(command)) => ctx.copy_text(command),
                Some(DoctorOutcome::Invite) => {
                    self.doctor = None;
                    self.open_invite_dialog();
                }
                Some(DoctorOutcome::Close) => self.doctor = None,
                None => {}
            }
        }
        if let Some(dialog) = &mut self.invite {
            match dialog.show(ctx, &self.model, self.lang) {
                Some(InviteOutcome::Use(link)) => self.send(Command::UseInvite { link }),
                Some(InviteOutcome::Copy(link)) => ctx.copy_text(link),
                Some(InviteOutcome::Doctor) => {
                    self.invite = None;
                    self.examine(None);
                }
                Some(InviteOutcome::Close) => self.invite = None,
                None => {}
            }
        }
        if let Some(dialog) = &mut self.create_room
            && let Some(outcome) = dialog.show(ctx, &self.model, self.lang)
        {
            self.create_room = None;
            if let Some((name, members)) = outcome {
                let tag = Some(String::from(CREATE_ROOM_TAG));
                self.send(Command::RoomCreate { name, members, tag });
            }
        }
    }

    /// "Forward to…": pick whom; their conversation opens with the text in its box, to
    /// change or send.
    fn forward_dialog(&mut self, ctx: &egui::Context) {
        let lang = self.lang;
        let Some((text, filter)) = &mut self.forward else { return };
        let mut chosen = None;
        let modal = egui::Modal::new(egui::Id::unique("forward")).show(ctx, |ui| {
            ui.set_width(360.0);
            ui.heading(tr!(lang, "message.forward_to"));
            ui.label(RichText::new(text.as_str()).weak()).on_hover_text(text.as_str());
            ui.add(egui::TextEdit::singleline(filter).hint_text(tr!(lang, "peers.filter")));
            let needle = filter.trim().to_lowercase();
            egui::ScrollArea::vertical().max_height(260.0).show(ui, |ui| {
                let mut peers: Vec<_> = self.model.peers.values().filter(|p| p.matches(&needle)).collect();
                peers.sort_by_key(|p| (!p.online, p.name.to_lowercase()));
                for peer in peers {
                    if ui.button(&peer.name).clicked() {
                        chosen = Some(peer.id);
                    }
                }
            });
        });
        if let Some(peer) = chosen {
            let (text, _) = self.forward.take().unwrap_or_default();
            self.drafts.insert(vec![peer], text);
            self.select(peer, egui::Modifiers::NONE, &[]);
        } else if modal.should_close() {
            self.forward = None;
        }
    }

    fn safety_dialog(&mut self, ctx: &egui::Context) {
        let lang = self.lang;
        let mut command = None;
        let modal = egui::Modal::new(egui::Id::unique("safety-number")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading(tr!(lang, "trust.safety_number"));
            let Some(safety) = &self.model.safety else {
                ui.label(tr!(lang, "chat.loading"));
                return;
            };
            let name = self.model.name_of(safety.peer);
            ui.label(tr!(lang, "trust.compare", name = name));
            ui.add_space(8.0);
            let digits = egui::TextStyle::Heading.resolve(ui.style()).size * 1.2;
            ui.label(RichText::new(&safety.code).monospace().size(digits));
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if safety.trust == Trust::Verified {
                    if ui.button(tr!(lang, "trust.unverify")).clicked() {
                        command = Some(Command::Verify { peer: safety.peer, verified: false });
                    }
                } else if ui.button(tr!(lang, "trust.mark_verified")).clicked() {
                    command = Some(Command::Verify { peer: safety.peer, verified: true });
                }
                if ui.button(tr!(lang, "trust.close")).clicked() {
                    self.safety_open = false;
                }
            });
        });
        // A button clicked inside a modal also asks it to close; only the verify buttons
        // should keep it open (to show the new state).
        if modal.should_close() && command.is_none() {
            self.safety_open = false;
        }
        if let Some(command) = command {
            self.send(command);
        }
    }

    /// Links clicked this frame open with the desktop's browser, off the window's thread
    /// (eframe would start it on this thread, and only with its `links` feature).
    fn open_links(&mut self, ctx: &egui::Context) {
        let mut links = Vec::new();
        ctx.output_mut(|output| {
            output.commands.retain(|command| match command {
                egui::OutputCommand::OpenUrl(open) => {
                    links.push(open.url.clone());
                    false
                }
                _ => true,
            });
        });
        for link in links {
            self.background.submit(Job::Open(link));
        }
    }

    /// Files dragged over the window: a hint while hovering, a transfer when dropped (to the
    /// peer row under the pointer, else to the selected peers).
    fn dropped_files(&mut self, ctx: &egui::Context) {
        let (hovering, dropped, pointer) = ctx.input(|i| {
            let dropped: Vec<PathBuf> = i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect();
            (!i.raw.hovered_files.is_empty(), dropped, i.pointer.latest_pos())
        });
        let row_target = pointer
            .and_then(|pos| self.drop_rows.iter().find(|(rect, _)| rect.contains(pos)).map(|(_, id)| *id));
        let targets: Vec<PeerId> = match row_target {
            Some(peer) => vec![peer],
            None => self.selection.peers().to_vec(),
        };
        let room = self.open_room.filter(|_| row_target.is_none());
        if hovering {
            let room_name = room.and_then(|room| self.model.rooms.get(&room)).map(|r| r.name.clone());
            let text = if let Some(name) = room_name {
                tr!(self.lang, "files.drop_to", names = name).into_owned()
            } else if targets.is_empty() {
                tr!(self.lang, "files.pick_peer_first").into_owned()
            } else {
                let names: Vec<String> = targets.iter().map(|&p| self.model.name_of(p)).collect();
                tr!(self.lang, "files.drop_to", names = names.join(", ")).into_owned()
            };
            let painter =
                ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop")));
            let screen = ctx.content_rect();
            painter.rect_filled(screen, 0.0, theme::SHADE);
            painter.text(
                screen.center(),
                egui::Align2::CENTER_CENTER,
                text,
                egui::TextStyle::Heading.resolve(&ctx.global_style()),
                theme::ON_SHADE,
            );
        }
        if let Some(room) = room {
            self.post_files(room, dropped);
        } else if !dropped.is_empty() {
            self.send_files(targets, dropped);
        }
    }
}

impl eframe::App for PigeonApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        let wanted = self.tick(focused);
        self.update_title(ctx);
        self.caret(ctx);
        self.window_on_desktop(ctx, wanted);
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::K)) {
            self.peer_list.focus_filter = true;
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F)) {
            let current = if self.open_room.is_none() { self.selection.single() } else { None };
            self.search.start(current);
        }
        egui::Panel::top("top").show(ui, |ui| {
            ui.add_space(4.0);
            self.top_bar(ui);
            ui.add_space(4.0);
        });
        let lang = self.lang;
        let width = ctx.content_rect().width();
        // On a narrow window the list leaves the conversation most of the width.
        let peers = egui::Panel::left("peers")
            .resizable(true)
            .default_size(250.0)
            .min_size(180.0)
            .max_size((width * 0.4).max(180.0))
            .show(ui, |ui| {
                ui.add_space(6.0);
                self.peer_list.show(ui, &self.model, &self.selection, self.open_room, lang)
            });
        let output = peers.inner;
        if let Some((peer, modifiers)) = output.clicked {
            self.select(peer, modifiers, &output.order);
        }
        if let Some(room) = output.clicked_room {
            self.open_room(room);
        }
        if let Some(action) = output.action {
            self.on_peer_action(action);
        }
        if let Some(step) = output.step {
            self.step_selection(step, &output.order);
        }
        if output.new_room {
            self.create_room = Some(CreateRoom::new(self.selection.peers()));
        }
        if output.doctor {
            self.examine(None);
        }
        self.drop_rows = output.rows;
        if self.show_transfers && width >= TRANSFERS_BESIDE_FROM {
            let action = egui::Panel::right("transfers").resizable(true).default_size(320.0).show(ui, |ui| {
                ui.add_space(6.0);
                ui.heading(tr!(lang, "top.transfers"));
                transfers::panel(ui, &self.model, lang)
            });
            if let Some(action) = action.inner {
                self.on_transfer_action(action);
            }
        } else if self.show_transfers {
            // Too narrow to share: the list floats over the conversation until closed.
            let mut open = true;
            let action = egui::Window::new(tr!(lang, "top.transfers"))
                .open(&mut open)
                .anchor(egui::Align2::RIGHT_TOP, [-8.0, 44.0])
                .collapsible(false)
                .resizable(false)
                .default_width(320.0)
                .max_height(ctx.content_rect().height() - 80.0)
                .show(&ctx, |ui| transfers::panel(ui, &self.model, lang));
            self.show_transfers = open && !ctx.input(|i| i.key_pressed(egui::Key::Escape));
            if let Some(action) = action.and_then(|shown| shown.inner).flatten() {
                self.on_transfer_action(action);
            }
        }
        egui::CentralPanel::default().show(ui, |ui| self.centre(ui));
        if let Some(action) = self.search.due(&ctx) {
            self.on_search_action(action);
        }
        self.dialogs(&ctx);
        self.dropped_files(&ctx);
        self.open_links(&ctx);
        if !self.first_frame_logged {
            self.first_frame_logged = true;
            log::info!("first frame after {} ms", self.started.elapsed().as_millis());
        }
    }
}

/// "Also to Bo, Marta and 3 others": who else a message went to.
fn names_line(model: &Model, peers: &[PeerId], lang: Lang) -> String {
    /// Names listed before the rest are counted.
    const NAMED: usize = 3;
    let names: Vec<String> = peers.iter().take(NAMED).map(|&peer| model.name_of(peer)).collect();
    let names = names.join(", ");
    match peers.len().saturating_sub(NAMED) {
        0 => tr!(lang, "message.also_to", names = names).into_owned(),
        more => tr!(lang, "message.also_to_more", names = names, count = more).into_owned(),
    }
}

/// Whether the desktop may have a file dialog of its own: a session bus (for the XDG portal)
/// or zenity. `PIGEON_FILE_DIALOG=builtin` keeps to the window's own picker (tests, and
/// desktops whose portal misbehaves).
fn native_dialogs_possible() -> bool {
    if std::env::var("PIGEON_FILE_DIALOG").is_ok_and(|choice| choice == "builtin") {
        return false;
    }
    let zenity = || {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("zenity").is_file()))
    };
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() || zenity()
}

/// What the conversation header says of how far a peer is trusted, and in which colour.
fn trust_label(visuals: &egui::Visuals, entry: &PeerEntry) -> (&'static str, egui::Color32) {
    let (weak, warn, error) = (visuals.weak_text_color(), visuals.warn_fg_color, visuals.error_fg_color);
    match (entry.family, entry.trust) {
        (_, None) => ("trust.unknown", weak),
        (Family::LocalSend, Some(Trust::Unencrypted)) => ("trust.localsend_plain", warn),
        (Family::LocalSend, Some(Trust::KeyChanged | Trust::Replaced)) => ("trust.localsend_changed", error),
        (Family::LocalSend, Some(_)) => ("trust.localsend", weak),
        (_, Some(Trust::Verified)) => ("trust.verified", theme::palette(visuals).good),
        (_, Some(Trust::KeyChanged | Trust::Replaced)) => ("trust.changed", error),
        (_, Some(Trust::Unverified)) => ("trust.unverified", weak),
        (_, Some(Trust::Unencrypted)) => ("trust.unencrypted", warn),
    }
}
