//! The real window (egui_kittest drives it without a GPU) around a real node on loopback, with
//! a `pigeon daemon` as the other party: what a user clicks and types, and what the other side
//! sees.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use eframe::egui::accesskit::Role;
use eframe::egui::{self, Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use pigeon::config::Config;
use pigeon::store::{MessageState, TransferState, Trust};
use pigeon::ui::{PigeonApp, WINDOW_SIZE};
use pigeon::{Command, Event, Node};

use crate::util::{Daemon, Net, SHORT};

/// The window of node `i` of `count` on `net`, in English, with its data in `dir`.
struct Window {
    harness: Harness<'static, PigeonApp>,
    woke: Receiver<()>,
}

impl Window {
    fn open(net: &Net, i: u8, count: u8, dir: &Path, name: &str) -> Window {
        Window::open_with(net, (i, count), dir, name, egui::Vec2::from(WINDOW_SIZE), |_| {})
    }

    /// A window of `size` whose settings `tweak` changes first.
    fn open_with(
        net: &Net,
        (i, count): (u8, u8),
        dir: &Path,
        name: &str,
        size: egui::Vec2,
        tweak: impl FnOnce(&mut pigeon::config::Settings),
    ) -> Window {
        let mut config = Config::in_dir(dir);
        let settings = &mut config.settings;
        settings.name = name.into();
        settings.bind = net.ip(i);
        settings.port = net.port;
        settings.broadcast = false;
        settings.targets = (1..=count).filter(|&o| o != i).map(|o| net.ip(o).to_string()).collect();
        settings.download_dir = Some(dir.join("downloads"));
        settings.language = Some("en".into());
        tweak(settings);
        let node = Node::start(&config).unwrap();
        let (wake, woke) = crossbeam_channel::bounded(1);
        let also_wake = Arc::new(move || {
            // A pending wake-up is as good as two.
            wake.try_send(()).ok();
        });
        let harness = Harness::builder()
            .with_size(size)
            .build_eframe(move |cc| PigeonApp::new(&cc.egui_ctx, node, config, also_wake).unwrap());
        Window { harness, woke }
    }

    /// Runs frames until `done` holds, waiting for node events between frames.
    fn until(&mut self, what: &str, done: impl Fn(&Harness<'static, PigeonApp>) -> bool) {
        let deadline = Instant::now() + SHORT;
        loop {
            self.harness.step();
            if done(&self.harness) {
                self.settle();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "window: {what} not seen within {SHORT:?}; shown: {:?}",
                self.labels()
            );
            // Node events wake us at once; UI-only changes need just another frame.
            self.woke.recv_timeout(Duration::from_millis(50)).ok();
        }
    }

    /// Runs frames until nothing moves any more: a dialog's first frames measure and place
    /// its contents, and a click aimed by the first frame's layout would land on a neighbour.
    fn settle(&mut self) {
        for _ in 0..10 {
            let before = self.layout();
            self.harness.step();
            if self.layout() == before {
                return;
            }
        }
    }

    /// Every node's place on screen.
    fn layout(&self) -> Vec<Option<egui::accesskit::Rect>> {
        self.harness
            .query_all(egui_kittest::kittest::By::new().predicate(|_| true))
            .map(|node| egui_kittest::kittest::NodeT::accesskit_node(&node).bounding_box())
            .collect()
    }

    /// Every label on screen, for failure messages.
    fn labels(&self) -> Vec<String> {
        self.harness
            .query_all(egui_kittest::kittest::By::new().predicate(|_| true))
            .filter_map(|node| {
                let node = egui_kittest::kittest::NodeT::accesskit_node(&node);
                node.label().or_else(|| node.value())
            })
            .collect()
    }

    fn shows(&self, label: &str) -> bool {
        self.harness.query_by_label(label).is_some()
    }

    /// Clicks a button. One frame first, so that a dialog whose content just changed has
    /// settled where it will be clicked.
    fn click(&mut self, label: &str) {
        self.harness.step();
        self.harness.get_by_role_and_label(Role::Button, label).click();
        self.harness.step();
    }

    fn type_into_compose(&mut self, text: &str) {
        self.harness.get_by_role(Role::MultilineTextInput).focus();
        self.harness.step();
        self.harness.get_by_role(Role::MultilineTextInput).type_text(text);
        self.harness.step();
    }
}

/// Ana's window (data in `ana_dir`) and Bo's daemon (in `bo_dir`) on `net`, once the window
/// lists Bo.
fn ana_and_bo(net: &Net, ana_dir: &Path, bo_dir: &Path) -> (Window, Daemon) {
    let mut window = Window::open(net, 1, 2, ana_dir, "Ana");
    let bo = Daemon::start("Bo", &net.flags(2, 2, bo_dir));
    window.until("Bo in the peer list", |h| h.query_by_role_and_label(Role::Button, "Bo").is_some());
    (window, bo)
}

#[test]
fn clicking_a_peer_typing_and_pressing_enter_delivers_and_the_window_shows_it() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    window.click("Bo");
    window.type_into_compose("hello from the window");
    window.harness.key_press(Key::Enter);
    window.until("the message, delivered", |h| {
        h.query_by_label("hello from the window").is_some() && h.query_by_label("delivered").is_some()
    });
    bo.expect(SHORT, "the message", |event| match event {
        Event::MessageReceived { message } => (message.text == "hello from the window").then_some(()),
        _ => None,
    });
    // Shift+Enter is a new line, not a send; the Send button sends.
    window.type_into_compose("two");
    window.harness.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    window.harness.step();
    window.harness.get_by_role(Role::MultilineTextInput).type_text("lines");
    window.click("Send");
    bo.expect(SHORT, "the two-line message", |event| match event {
        Event::MessageReceived { message } => (message.text == "two\nlines").then_some(()),
        _ => None,
    });
    window.until("the two-line message in the conversation", |h| h.query_by_label("two\nlines").is_some());
    let chats = &window.harness.state().model().chats;
    let sent: Vec<&str> = chats.values().flat_map(|c| &c.messages).map(|m| m.text.as_str()).collect();
    assert_eq!(sent, ["hello from the window", "two\nlines"]);
}

#[test]
fn an_arriving_message_shows_unread_until_the_conversation_is_opened() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    let ana = window.harness.state().node().id();
    bo.send(&Command::SendMessage { to: vec![ana], text: "你好，Ana".into(), tag: None });
    window.until("the unread badge", |h| h.query_by_label("Bo, 1 unread").is_some());
    assert_eq!(window.harness.state().model().total_unread(), 1);
    window.click("Bo, 1 unread");
    window.until("the message, read", |h| {
        h.query_by_label("你好，Ana").is_some() && h.query_by_role_and_label(Role::Button, "Bo").is_some()
    });
    assert_eq!(window.harness.state().model().total_unread(), 0);
    bo.expect(SHORT, "the read receipt", |event| match event {
        Event::MessageStateChanged { state: MessageState::Read, .. } => Some(()),
        _ => None,
    });
}

#[test]
fn an_offered_file_is_accepted_in_the_conversation_and_its_card_shows_the_name_it_got() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_dir = dirs.path().join("ana");
    let (mut window, mut bo) = ana_and_bo(&net, &ana_dir, &dirs.path().join("bo"));
    let content: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    let source = dirs.path().join("report.bin");
    std::fs::write(&source, &content).unwrap();
    // A file of that name is there already: the new one gets another.
    std::fs::create_dir_all(ana_dir.join("downloads")).unwrap();
    std::fs::write(ana_dir.join("downloads/report.bin"), b"older").unwrap();
    let ana = window.harness.state().node().id();
    bo.send(&Command::SendFiles { to: vec![ana], paths: vec![source], tag: None });
    // The offer counts as unread, like a message, and waits in the conversation.
    window.until("the offer, unread", |h| h.query_by_label("Bo, 1 unread").is_some());
    window.click("Bo, 1 unread");
    window.until("the offer card", |h| h.query_by_label_contains("Files from Bo").is_some());
    window.click("Accept");
    window.until("the transfer, done", |h| h.query_by_label("done").is_some());
    window
        .until("the name it was saved as", |h| h.query_by_label("1 file, 3.0 MB: report (1).bin").is_some());
    let view = &window.harness.state().model().transfers[0];
    assert_eq!(view.info.state, TransferState::Completed);
    assert!(window.shows("Open") && window.shows("Open folder"));
    assert_eq!(std::fs::read(ana_dir.join("downloads/report (1).bin")).unwrap(), content);
    assert_eq!(std::fs::read(ana_dir.join("downloads/report.bin")).unwrap(), b"older");
    bo.expect(SHORT, "completion at the sender", |event| match event {
        Event::TransferStateChanged { state: TransferState::Completed, .. } => Some(()),
        _ => None,
    });
    // The sender's history holds the transfer at its place too.
    let (rows, _) = crate::util::history_page(&mut bo, ana, None, 10);
    let row = rows.iter().find(|m| m.transfer == Some(view.info.transfer_id)).expect("a row at the sender");
    assert_eq!(row.text, "report.bin");
}

#[test]
fn a_new_display_name_from_settings_reaches_the_other_node_and_the_settings_file() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_dir = dirs.path().join("ana");
    let (mut window, mut bo) = ana_and_bo(&net, &ana_dir, &dirs.path().join("bo"));
    window.click("Settings");
    window.until("the settings dialog", |h| h.query_by_label("Display name").is_some());
    let name_field = window.harness.get_by_label("Display name");
    name_field.focus();
    window.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
    window.harness.get_by_label("Display name").type_text("安娜 Ana");
    window.harness.step();
    window.click("Save");
    let ana = window.harness.state().node().id();
    bo.expect(SHORT, "the new name", |event| match event {
        Event::PeerUpdated { peer } | Event::PeerJoined { peer } => {
            (peer.id == ana && peer.name == "安娜 Ana").then_some(())
        }
        _ => None,
    });
    let config_file = ana_dir.join("config.toml");
    window.until("the settings file", |_| {
        std::fs::read_to_string(&config_file).is_ok_and(|text| text.contains("安娜 Ana"))
    });
    let saved = std::fs::read_to_string(&config_file).unwrap();
    assert!(!saved.contains(&net.ip(1).to_string()), "the session's address is not saved: {saved}");
    // Nor any other value the user did not touch (this window runs without broadcast).
    let keys: toml::Table = toml::from_str(&saved).unwrap();
    assert_eq!(keys.keys().collect::<Vec<_>>(), ["name"], "only the name changed: {saved}");
}

#[test]
fn starting_with_the_session_is_set_and_unset_in_settings() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_dir = dirs.path().join("ana");
    let (mut window, _bo) = ana_and_bo(&net, &ana_dir, &dirs.path().join("bo"));
    let entry = window.harness.state().config().autostart_entry.clone().unwrap();
    assert!(entry.starts_with(&ana_dir), "a test never touches the real autostart folder");
    let toggle = |window: &mut Window| {
        window.click("Settings");
        window.until("the settings dialog", |h| h.query_by_label("Display name").is_some());
        window.harness.get_by_label("Start Pigeon in the tray when I log in").click();
        window.harness.step();
        window.click("Save");
    };
    toggle(&mut window);
    window.until("the autostart entry", |_| entry.is_file());
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = text.lines().find_map(|line| line.strip_prefix("Exec=")).unwrap().to_owned();
    assert!(
        exec.contains("--hidden") && exec.contains(&format!("--data-dir \"{}\"", ana_dir.display())),
        "{exec}"
    );
    toggle(&mut window);
    window.until("the entry removed", |_| !entry.exists());
}

/// A file dropped from the desktop, as winit reports it.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|err| err.to_string())
    }
}

#[test]
fn a_folder_dropped_on_a_peer_is_offered_to_that_peer() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut window = Window::open(&net, 1, 3, &dirs.path().join("ana"), "Ana");
    let mut bo = Daemon::start("Bo", &net.flags(2, 3, &dirs.path().join("bo")));
    let mut cy = Daemon::start("Cy", &net.flags(3, 3, &dirs.path().join("cy")));
    window.until("both peers listed", |h| {
        h.query_by_role_and_label(Role::Button, "Bo").is_some()
            && h.query_by_role_and_label(Role::Button, "Cy").is_some()
    });
    // Cy is selected, but the folder is dropped on Bo's row.
    window.click("Cy");
    let folder = dirs.path().join("Photos");
    std::fs::create_dir_all(folder.join("2026")).unwrap();
    std::fs::write(folder.join("2026/beach.jpg"), b"not really a jpeg").unwrap();
    let bo_row = window.harness.get_by_role_and_label(Role::Button, "Bo").rect().center();
    window.harness.event(egui::Event::PointerMoved(bo_row));
    window.harness.step();
    window.harness.input_mut().dropped_files.push(Arc::new(Dropped(folder)));
    window.until("the outgoing offer", |h| h.state().model().transfers.len() == 1);
    let summary = bo.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.summary.clone()),
        _ => None,
    });
    assert!(summary.contains("Photos"), "{summary}");
    assert!(
        cy.drain_for(Duration::from_millis(300)).iter().all(|e| !matches!(e, Event::TransferAdded { .. }))
    );
}

#[test]
fn a_declined_offer_can_be_sent_again_from_its_card() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    let folder = dirs.path().join("Photos");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("beach.jpg"), b"not really a jpeg").unwrap();
    window.click("Bo");
    window.harness.input_mut().dropped_files.push(Arc::new(Dropped(folder)));
    window.until("the outgoing offer", |h| h.state().model().transfers.len() == 1);
    let first = bo.expect(SHORT, "the offer", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    });
    bo.send(&Command::DeclineTransfer { transfer_id: first.transfer_id });
    window.until("the decline, with a way to send again", |h| {
        h.query_by_label("Bo declined").is_some() && h.query_by_label("Send again").is_some()
    });
    window.click("Send again");
    window.until("the new offer's card", |h| h.state().model().transfers.len() == 2);
    let again = bo.expect(SHORT, "the offer, again", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    });
    assert_ne!(again.transfer_id, first.transfer_id);
    assert_eq!(again.entries, first.entries);
}

#[test]
fn choosing_chinese_in_settings_switches_the_window_at_once() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut window = Window::open(&net, 1, 1, &dirs.path().join("ana"), "Ana");
    window.until("the window", |h| h.query_by_role_and_label(Role::Button, "Settings").is_some());
    window.click("Settings");
    window.until("the settings dialog", |h| h.query_by_label("Language").is_some());
    window.harness.get_by_role_and_label(Role::ComboBox, "Language").click();
    window.until("the language list", |h| h.query_by_label("简体中文").is_some());
    window.harness.get_by_label("简体中文").click();
    window.harness.step();
    window.click("Save");
    window.until("Chinese labels", |h| {
        h.query_by_role_and_label(Role::Button, "设置").is_some()
            && h.query_by_label("欢迎使用 Pigeon").is_some()
    });
    assert_eq!(window.harness.state().lang(), pigeon::ui::i18n::Lang::ZhCn);
}

#[test]
fn verifying_a_peer_and_then_its_changed_key_shows_a_warning_until_accepted() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let bo_dir = dirs.path().join("bo");
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &bo_dir);
    window.click("Bo");
    window.click("Safety number");
    let ana = window.harness.state().node().id();
    bo.send(&Command::SafetyNumber { peer: ana });
    let code = bo.expect(SHORT, "bo's code", |event| match event {
        Event::SafetyNumber { code, .. } => Some(code.clone()),
        _ => None,
    });
    window.until("the same code in the window", |h| h.query_by_label(&code).is_some());
    window.click("They match — mark verified");
    window.until("the dialog says verified", |h| {
        h.query_by_role_and_label(Role::Button, "Mark not verified").is_some()
    });
    window.click("Close");
    window.until("verified", |h| h.query_by_label("Encrypted · verified").is_some());

    // Bo reinstalls: same name and host, new key.
    let old_bo = bo.id;
    bo.stop();
    std::fs::remove_file(bo_dir.join(pigeon::secure::identity::KEY_FILE)).unwrap();
    let mut bo = Daemon::start("Bo", &net.flags(2, 2, &bo_dir));
    assert_ne!(bo.id, old_bo);
    // Bo never connected to Ana, so nothing of her was stored: it waits until it hears her.
    bo.expect_peers(&[ana]);
    bo.send(&Command::SendMessage { to: vec![ana], text: "new laptop".into(), tag: None });
    // The new Bo is listed first (online before offline) and has the message unread.
    window.until("the new Bo", |h| h.query_by_role_and_label(Role::Button, "Bo, 1 unread").is_some());
    window.click("Bo, 1 unread");
    let warning = "has a new key, and you had verified the old one";
    window.until("the warning and the marked message", |h| {
        h.query_by_label_contains(warning).is_some()
            && h.query_by_label_contains("Sent with a key you have not accepted").is_some()
    });
    window.click("Accept the new key");
    window.until("no warning", |h| h.query_by_label_contains(warning).is_none());
    assert!(window.shows("Encrypted · not verified"));
}

#[test]
fn an_extra_target_added_in_settings_is_announced_to_at_once() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Ana's window has no targets; Cy announces to nobody, so only Ana's new target can
    // bring them together.
    let mut window = Window::open(&net, 1, 1, &dirs.path().join("ana"), "Ana");
    let mut cy = Daemon::start("Cy", &net.flags(3, 1, &dirs.path().join("cy")));
    window.click("Settings");
    window.until("the settings dialog", |h| h.query_by_label("Extra targets").is_some());
    window.harness.get_by_label("Extra targets").focus();
    window.harness.step();
    window.harness.get_by_label("Extra targets").type_text(&net.ip(3).to_string());
    window.click("Save");
    let ana = window.harness.state().node().id();
    cy.expect(SHORT, "Ana, found through the new target", |event| match event {
        Event::PeerJoined { peer } => (peer.id == ana).then_some(()),
        _ => None,
    });
    window.until("Cy in the list", |h| h.query_by_role_and_label(Role::Button, "Cy").is_some());
}

#[test]
fn a_taken_port_is_explained_and_the_window_offers_a_free_one() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Another program holds Ana's port.
    let _squatter = std::net::TcpListener::bind((net.ip(1), net.port)).unwrap();
    let mut config = Config::in_dir(dirs.path().join("ana"));
    config.settings.bind = net.ip(1);
    config.settings.port = net.port;
    config.settings.broadcast = false;
    config.settings.ipmsg = false;
    config.settings.language = Some("en".into());
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::from(WINDOW_SIZE))
        .build_eframe(move |cc| pigeon::ui::Root::start(&cc.egui_ctx, config).unwrap());
    harness.step();
    assert!(harness.query_by_label("Pigeon could not start").is_some());
    harness.get_by_label_contains("Start on port").click();
    harness.step();
    harness.step();
    let app = harness.state().app().expect("running on the free port");
    assert_ne!(app.node().local_addr().port(), net.port);
    assert!(harness.query_by_label("Welcome to Pigeon").is_some());
}

#[test]
fn a_room_made_in_the_window_gets_posts_both_ways_shows_unread_and_can_be_left() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    window.click("+ New room…");
    window.harness.step();
    window.harness.get_by_role_and_label(Role::TextInput, "Room name").type_text("Sales 销售");
    window.harness.get_by_role_and_label(Role::CheckBox, "Bo").click();
    window.click("Create");
    let room = bo.expect(SHORT, "the room", |event| match event {
        Event::RoomUpdated { room, .. } if room.name == "Sales 销售" => Some(room.room),
        _ => None,
    });
    window.until("the room, opened", |h| {
        h.query_all_by_label("Sales 销售").count() == 2 && h.query_by_label("2 members · 2 online").is_some()
    });

    // The cursor is in the room's box already.
    window.harness.get_by_role(Role::MultilineTextInput).type_text("hello room");
    window.harness.step();
    window.harness.key_press(Key::Enter);
    window.until("ana's post in the room", |h| h.query_by_label("hello room").is_some());
    bo.expect(SHORT, "ana's post", |event| match event {
        Event::RoomPosted { post, .. } if post.text == "hello room" => Some(()),
        _ => None,
    });
    bo.send(&Command::RoomSend { room, text: "hi from bo".into(), tag: None });
    window.until("bo's post in the open room", |h| h.query_by_label("hi from bo").is_some());
    let bo_id = bo.id;
    bo.expect(SHORT, "ana has read it", |event| match event {
        Event::RoomRead { reader, .. } if *reader != bo_id => Some(()),
        _ => None,
    });
    bo.send(&Command::RoomMarkRead { room });
    window.until("ana's post read by bo", |h| h.query_by_label("read by 1 of 1").is_some());

    // Away in a conversation, a post shows as unread on the room's row until it is opened.
    window.click("Bo");
    bo.send(&Command::RoomSend { room, text: "are you there?".into(), tag: None });
    window.until("the room's unread badge", |h| h.query_by_label("Sales 销售, 1 unread").is_some());
    assert_eq!(window.harness.state().model().total_unread(), 1);
    window.click("Sales 销售, 1 unread");
    window.until("the post, read", |h| {
        h.query_by_label("are you there?").is_some()
            && h.query_by_role_and_label(Role::Button, "Sales 销售").is_some()
    });
    assert_eq!(window.harness.state().model().total_unread(), 0);

    // Leaving asks first; then bo sees ana gone and the room leaves ana's list.
    window.click("Leave");
    window.harness.step();
    window
        .harness
        .query_all_by_role_and_label(Role::Button, "Leave")
        .last()
        .expect("the dialog's Leave")
        .click();
    window.harness.step();
    bo.expect(SHORT, "ana left", |event| match event {
        Event::RoomUpdated { room: info, .. } if info.room == room && info.members.len() == 1 => Some(()),
        _ => None,
    });
    window.until("the room gone from the list", |h| {
        h.query_by_role_and_label(Role::Button, "Sales 销售").is_none()
            && h.query_by_label("▼ Rooms  0").is_some()
    });
}

/// Writes `count` messages with one made-up peer straight into a fresh history file in `dir`
/// (one statement: a node would take minutes to receive them); the one numbered `needle_at`
/// says `needle`. Returns the peer's id.
fn history_of(dir: &Path, name: &str, count: u32, needle_at: u32, needle: &str) -> pigeon::node::PeerId {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(pigeon::node::HISTORY_FILE);
    drop(pigeon::store::Store::open(&path).unwrap());
    let peer = "c0ffee00c0ffee00c0ffee00c0ffee00";
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO peers (id, name, grp, host, addr, last_seen_ms) VALUES (?1, ?2, '', 'cara-pc', '', 0)",
        (peer, name),
    )
    .unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO messages (msg_id, peer, outgoing, text, sent_at_ms, state)
         SELECT printf('%032x', i), ?2, i % 2, CASE WHEN i = ?3 THEN ?4 ELSE '今天的第 ' || i || ' 条消息 number ' || i END,
                1700000000000 + i * 1000, 3 FROM n",
        (count, peer, needle_at, needle),
    )
    .unwrap();
    peer.parse().unwrap()
}

#[test]
fn search_finds_a_chinese_phrase_among_100_000_messages_and_opens_the_conversation_there() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("ana");
    let needle = "项目周报请在周五前发给我";
    let cara = history_of(&dir, "Cara", 100_000, 1_234, needle);
    // The newest match is in another conversation.
    let conn = rusqlite::Connection::open(dir.join(pigeon::node::HISTORY_FILE)).unwrap();
    conn.execute(
        "INSERT INTO messages (msg_id, peer, outgoing, text, sent_at_ms, state)
         VALUES ('0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d', 'da00da00da00da00da00da00da00da00', 0, '周报请在这里', 1800000000000, 3)",
        (),
    )
    .unwrap();
    let mut window = Window::open(&net, 1, 1, &dir, "Ana");
    window.until("Cara from history", |h| h.query_by_role_and_label(Role::Button, "Cara").is_some());
    window.harness.key_press_modifiers(Modifiers::COMMAND, Key::F);
    window.harness.step();
    // A substring from inside the message, not a word of its own.
    window.harness.event(egui::Event::Text("周报请在".into()));
    window.until("both results", |h| h.query_by_label_contains("2 found").is_some());
    assert_eq!(window.harness.query_all_by_label("Cara").count(), 2, "the peer list and the result");
    // Down to the older one, Enter opens it.
    window.harness.key_press(Key::ArrowDown);
    window.harness.step();
    window.harness.key_press(Key::Enter);
    window.until("the message in its conversation", |h| {
        h.query_by_label(needle).is_some() && h.query_by_label_contains("Messages with").is_none()
    });
    let chat = &window.harness.state().model().chats[&cara];
    let found = chat.messages.iter().find(|m| m.text == needle).expect("loaded");
    assert_eq!(chat.focus, Some(found.seq));
    assert!(chat.has_more && chat.has_newer, "the pages around it, not the whole history");
    // Searching again from Cara's conversation can keep to it.
    window.harness.key_press_modifiers(Modifiers::COMMAND, Key::F);
    window.harness.step();
    window.harness.get_by_label("Only with Cara").click();
    window.until("only Cara's message", |h| h.query_by_label_contains("1 found").is_some());
}

#[test]
fn a_message_copied_from_its_menu_reaches_the_clipboard() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    let ana = window.harness.state().node().id();
    bo.send(&Command::SendMessage { to: vec![ana], text: "复制这句话 please".into(), tag: None });
    window.until("the message", |h| h.query_by_label("Bo, 1 unread").is_some());
    window.click("Bo, 1 unread");
    window.until("the message shown", |h| h.query_by_label("复制这句话 please").is_some());
    window.harness.get_by_label("复制这句话 please").click_secondary();
    window.until("the message's menu", |h| h.query_by_role_and_label(Role::Button, "Copy text").is_some());
    window.harness.get_by_role_and_label(Role::Button, "Copy text").click();
    window.harness.step();
    let copied: Vec<&str> = window
        .harness
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|command| match command {
            egui::OutputCommand::CopyText(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(copied, ["复制这句话 please"]);
}

#[test]
fn always_accept_is_set_from_a_peers_menu_and_undone_in_settings() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let (mut window, mut bo) = ana_and_bo(&net, &dirs.path().join("ana"), &dirs.path().join("bo"));
    window.harness.get_by_role_and_label(Role::Button, "Bo").click_secondary();
    window.until("Bo's menu", |h| h.query_by_label("Always accept their files").is_some());
    window.harness.get_by_label("Always accept their files").click();
    let bo_id = bo.id;
    window.until("Bo accepted without asking", |h| h.state().model().auto_accept_from == [bo_id]);
    // It holds: an offer from Bo arrives without a question.
    let source = dirs.path().join("note.txt");
    std::fs::write(&source, b"hi").unwrap();
    let ana = window.harness.state().node().id();
    bo.send(&Command::SendFiles { to: vec![ana], paths: vec![source.clone()], tag: None });
    window.until("the file, taken at once", |h| {
        h.state().model().transfers.first().is_some_and(|t| t.info.state == TransferState::Completed)
    });
    window.click("Settings");
    window.until("the list in settings", |h| h.query_by_label("Ask again").is_some());
    window.click("Ask again");
    window.until("nobody accepted without asking", |h| h.state().model().auto_accept_from.is_empty());
    window.until("the list, empty", |h| h.query_by_label_contains("Nobody").is_some());
    bo.send(&Command::SendFiles { to: vec![ana], paths: vec![source], tag: None });
    window.until("the next offer waits", |h| {
        h.state().model().transfers.first().is_some_and(|t| t.info.state == TransferState::Offered)
    });
}

#[test]
fn a_message_to_two_people_is_one_entry_with_both_states_and_each_sees_the_other() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut window = Window::open(&net, 1, 3, &dirs.path().join("ana"), "Ana");
    let mut bo = Daemon::start("Bo", &net.flags(2, 3, &dirs.path().join("bo")));
    let mut cy = Daemon::start("Cy", &net.flags(3, 3, &dirs.path().join("cy")));
    window.until("Bo and Cy listed", |h| {
        h.query_by_role_and_label(Role::Button, "Bo").is_some()
            && h.query_by_role_and_label(Role::Button, "Cy").is_some()
    });
    window.click("Bo");
    window.harness.step();
    window.harness.get_by_role_and_label(Role::Button, "Cy").click_modifiers(Modifiers::COMMAND);
    window.until("both selected", |h| h.query_by_label_contains("Write below").is_some());
    window.type_into_compose("lunch at noon?");
    window.harness.key_press(Key::Enter);
    window.until("one entry, read by neither yet, delivered to both", |h| {
        h.query_by_label("Bo · delivered").is_some() && h.query_by_label("Cy · delivered").is_some()
    });
    assert_eq!(window.harness.query_all_by_label("lunch at noon?").count(), 1, "one entry, not two");
    let ana = window.harness.state().node().id();
    let (bo_id, cy_id) = (bo.id, cy.id);
    for (daemon, other) in [(&mut bo, cy_id), (&mut cy, bo_id)] {
        let also_to = daemon.expect(SHORT, "the message", |event| match event {
            Event::MessageReceived { message } if message.peer == ana => Some(message.also_to.clone()),
            _ => None,
        });
        assert_eq!(also_to, [other], "{} sees who else got it", daemon.name);
    }
}

#[test]
fn at_720_by_520_the_header_cuts_long_names_and_the_message_box_keeps_its_width() {
    for text_size in [pigeon::config::TextSize::Normal, pigeon::config::TextSize::Larger] {
        let net = Net::new();
        let dirs = tempfile::tempdir().unwrap();
        let size = egui::vec2(720.0, 520.0);
        let ana_dir = dirs.path().join("ana");
        let mut window = Window::open_with(&net, (1, 2), &ana_dir, "Ana", size, |s| s.text_size = text_size);
        let long = "Bartholomew 包博文 from Accounting and Finance";
        let mut bo = Daemon::start(long, &net.flags(2, 2, &dirs.path().join("bo")));
        window.until("the peer", |h| h.query_by_role_and_label(Role::Button, long).is_some());
        window.click(long);
        window.click("Transfers");
        window.harness.run_steps(3);
        let rect = |label: &str| window.harness.get_by_label(label).rect();
        let trust = rect("Encrypted · not verified");
        let heading = window
            .harness
            .query_all_by_label_contains("Bartholomew")
            .map(|node| node.rect())
            .find(|r| r.min.y < trust.max.y && r.max.y > trust.min.y)
            .expect("the name in the header");
        assert!(!heading.intersects(trust), "{text_size:?}: the name {heading:?} runs into {trust:?}");
        assert!(heading.max.x <= trust.min.x, "{text_size:?}: cut before the trust state");
        let compose = window.harness.get_by_role(Role::MultilineTextInput).rect();
        assert!(compose.width() >= 300.0, "{text_size:?}: the message box is {} wide", compose.width());
        assert!(compose.max.x <= size.x && compose.max.y <= size.y, "{text_size:?}: {compose:?} off screen");

        // A declined file's card, long name and all, stays inside the window.
        let file = dirs.path().join("quarterly report.pdf");
        std::fs::write(&file, "q").unwrap();
        window.harness.input_mut().dropped_files.push(Arc::new(Dropped(file)));
        window.until("the offer", |h| h.state().model().transfers.len() == 1);
        let offer = bo.expect(SHORT, "the offer", |event| match event {
            Event::TransferAdded { transfer, .. } => Some(transfer.transfer_id),
            _ => None,
        });
        bo.send(&Command::DeclineTransfer { transfer_id: offer });
        let state = format!("{long} declined");
        window.until("the decline", |h| h.query_all_by_label(&state).next().is_some());
        for node in window.harness.query_all_by_label(&state) {
            assert!(
                node.rect().max.x <= size.x,
                "{text_size:?}: the card's state {:?} is off screen",
                node.rect()
            );
        }
    }
}

/// The history rows on screen, by their text.
fn rows_on_screen(harness: &Harness<'static, PigeonApp>) -> std::collections::BTreeSet<String> {
    harness
        .query_all(egui_kittest::kittest::By::new().predicate(|_| true))
        .filter_map(|node| {
            let node = egui_kittest::kittest::NodeT::accesskit_node(&node);
            node.label().or_else(|| node.value())
        })
        .filter(|label| label.contains(" number "))
        .collect()
}

#[test]
fn scrolling_up_loads_older_messages_and_keeps_the_ones_being_read_in_place() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("ana");
    let cara = history_of(&dir, "Cara", 1_000, 0, "");
    let mut window = Window::open(&net, 1, 1, &dir, "Ana");
    window.until("Cara from history", |h| h.query_by_role_and_label(Role::Button, "Cara").is_some());
    window.click("Cara");
    window.until("the newest page", |h| {
        h.state().model().chats.get(&cara).is_some_and(|c| c.messages.len() == 200)
    });
    let centre = egui::pos2(600.0, 300.0);
    let held = |window: &Window| window.harness.state().model().chats[&cara].messages.len();
    let mut reading = rows_on_screen(&window.harness);
    let mut now = reading.clone();
    for _ in 0..200 {
        let before = held(&window);
        window.harness.hover_at(centre);
        // Steps under 8 points move at once (larger wheel steps glide on over later frames).
        for _ in 0..40 {
            window.harness.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, 7.0),
                modifiers: Modifiers::NONE,
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
            });
        }
        window.harness.step();
        // Node events (the page) wake us at once; scrolling needs only the next frame.
        window.woke.recv_timeout(Duration::from_millis(20)).ok();
        window.harness.step();
        now = rows_on_screen(&window.harness);
        if held(&window) > before {
            break;
        }
        reading = now.clone();
    }
    assert!(held(&window) > 200, "scrolling up loaded an older page");
    // The wheel glides on for a few frames after the page came; a lost place would be a
    // whole page (200 rows) away.
    let number = |rows: &std::collections::BTreeSet<String>| -> i64 {
        let numbers: Vec<i64> = rows.iter().filter_map(|row| row.rsplit(' ').next()?.parse().ok()).collect();
        numbers.iter().sum::<i64>() / i64::try_from(numbers.len().max(1)).unwrap()
    };
    let moved = (number(&reading) - number(&now)).abs();
    assert!(moved < 60, "what was read moved {moved} rows away: before {reading:?}, now {now:?}");
}

#[test]
fn an_invite_link_from_the_window_connects_a_stranger_and_one_pasted_there_connects_us() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // Nobody announces to anybody: only the links bring them together.
    let mut window = Window::open(&net, 1, 1, &dirs.path().join("ana"), "Ana");
    let mut bo = Daemon::start("Bo", &net.flags(2, 0, &dirs.path().join("bo")));
    window.click("Invite…");
    window.until("our link", |h| h.state().model().invite_link.is_some());
    window.until("its QR code and copy button", |h| h.query_by_label("Copy link").is_some());
    let link = window.harness.state().model().invite_link.clone().unwrap();
    bo.send(&Command::UseInvite { link });
    bo.expect(SHORT, "Ana's answer: Bo verified", |event| match event {
        Event::InviteAnswered { accepted: true, .. } => Some(()),
        _ => None,
    });
    window.until("Bo verified in Ana's list", |h| {
        h.state().model().peers.values().any(|peer| peer.name == "Bo" && peer.trust == Some(Trust::Verified))
    });

    let mut cy = Daemon::start("Cy", &net.flags(3, 0, &dirs.path().join("cy")));
    cy.send(&Command::MakeInvite);
    let cy_link = cy.expect(SHORT, "Cy's link", |event| match event {
        Event::Invite { link } => Some(link.clone()),
        _ => None,
    });
    let field = "Got a link from someone? Paste it here:";
    window.harness.get_by_label(field).focus();
    window.harness.step();
    window.harness.get_by_label(field).type_text(&cy_link);
    window.click("Connect");
    window
        .until("connected to Cy", |h| h.query_by_label("Connected to Cy. Both keys are verified.").is_some());
    cy.expect(SHORT, "Ana verified on Cy's side", |event| match event {
        Event::PeerUpdated { peer } | Event::PeerJoined { peer }
            if peer.name == "Ana" && peer.trust == pigeon::node::Trust::Verified =>
        {
            Some(())
        }
        _ => None,
    });
}

#[test]
fn cant_see_someone_examines_the_network_off_the_window_thread_and_probes_an_address() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut window = Window::open(&net, 1, 1, &dirs.path().join("ana"), "Ana");
    let bo = Daemon::start("Bo", &net.flags(2, 0, &dirs.path().join("bo")));
    window.until("the link in the empty list", |h| h.query_by_label("Can't see someone?").is_some());
    window.harness.get_by_label("Can't see someone?").click();
    // Bound to a loopback address, the window uses no interface: the doctor says so first.
    window.until("the report", |h| {
        h.query_by_label_contains("an address no network interface others can reach").is_some()
    });
    assert!(
        window.harness.query_by_label_contains("lo 127.0.0.1/8 — skipped: this computer itself").is_some()
    );
    let field = "Try to reach an address:";
    window.harness.get_by_label(field).focus();
    window.harness.step();
    window.harness.get_by_label(field).type_text(&format!("{}:{}", net.ip(2), net.port));
    window.click("Check");
    window.until("Bo reached", |h| h.query_all_by_label_contains("reached (connected)").next().is_some());
    // Bo quits: the computer is still there, nothing listens.
    assert!(bo.stop().success());
    window.click("Check");
    window.until("Bo's port refused", |h| {
        h.query_all_by_label_contains("refused: the computer is there").next().is_some()
    });
}
