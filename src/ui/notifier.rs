//! Desktop notifications that act (org.freedesktop.Notifications on the session bus, by
//! zbus): one notification per conversation, replaced as more arrives ("Bo · 3 new") rather
//! than one per message of a burst; clicking it opens that conversation; an offer's has
//! Accept and Decline buttons where the notification server shows actions. Two threads of
//! its own talk to the bus, so the window never waits for it: one shows what the window
//! hands over, one listens for the user's clicks and hands them back (waking the window).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::wake::Wake;
use crossbeam_channel::{Receiver, Sender};

use crate::node::{PeerId, RoomId, TransferId};

/// Where a notification leads: a conversation with a peer, or a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A conversation.
    Peer(PeerId),
    /// A room.
    Room(RoomId),
}

/// Something to tell the user.
#[derive(Debug, Clone)]
pub struct Note {
    /// Its conversation: one notification each.
    pub topic: Topic,
    /// Who (and where).
    pub title: String,
    /// What.
    pub body: String,
    /// For an offer: the transfer to accept or decline from the notification.
    pub offer: Option<TransferId>,
    /// The buttons' words, in the window's language: open, accept, decline.
    pub buttons: [String; 3],
}

/// What the user clicked in a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicked {
    /// The notification itself: open its conversation.
    Open(Topic),
    /// Accept the offer.
    Accept(TransferId),
    /// Decline the offer.
    Decline(TransferId),
}

/// Notes and clicks waiting; more are dropped (a burst is one notification anyway).
const QUEUE: usize = 64;

/// The notifications of one window.
pub struct Notifier {
    notes: Sender<Message>,
    clicked: Receiver<Clicked>,
}

enum Message {
    Show(Note),
    /// The conversation was read: its notification goes.
    Seen(Topic),
}

/// What is on screen, by the server's id; shared by the two threads.
#[derive(Default)]
struct Shown {
    by_id: HashMap<u32, (Topic, Option<TransferId>)>,
    by_topic: HashMap<Topic, (u32, usize)>,
}

impl Notifier {
    /// Connects to the session bus on threads of its own; without one, notes are dropped
    /// (and said so in the log once).
    pub fn start(wake: &Wake) -> Notifier {
        let (notes, incoming) = crossbeam_channel::bounded(QUEUE);
        let (clicks, clicked) = crossbeam_channel::bounded(QUEUE);
        let wake = wake.clone();
        let spawned = std::thread::Builder::new().name("pigeon-notify".into()).spawn(move || {
            let bus = match zbus::blocking::Connection::session() {
                Ok(bus) => bus,
                Err(err) => return log::info!("no desktop notifications (no session bus: {err})"),
            };
            let shown = Arc::new(Mutex::new(Shown::default()));
            let listening = (bus.clone(), shown.clone());
            let listener = std::thread::Builder::new()
                .name("pigeon-notify-clicks".into())
                .spawn(move || listen(&listening.0, &listening.1, &clicks, &wake));
            if let Err(err) = listener {
                log::warn!("notifications will not act: {err}");
            }
            for message in incoming {
                match message {
                    Message::Show(note) => show(&bus, &shown, &note),
                    Message::Seen(topic) => close(&bus, &shown, topic),
                }
            }
        });
        if let Err(err) = spawned {
            log::warn!("no desktop notifications: {err}");
        }
        Notifier { notes, clicked }
    }

    /// Shows `note`, replacing its conversation's notification.
    pub fn notify(&self, note: Note) {
        self.notes.try_send(Message::Show(note)).ok();
    }

    /// The conversation was read: its notification goes.
    pub fn seen(&self, topic: Topic) {
        self.notes.try_send(Message::Seen(topic)).ok();
    }

    /// What the user clicked since the last call.
    pub fn clicked(&self) -> Vec<Clicked> {
        self.clicked.try_iter().collect()
    }
}

fn lock(shown: &Mutex<Shown>) -> std::sync::MutexGuard<'_, Shown> {
    shown.lock().unwrap_or_else(PoisonError::into_inner)
}

const INTERFACE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

fn show(bus: &zbus::blocking::Connection, shown: &Mutex<Shown>, note: &Note) {
    // Held until the id is recorded: a click may come back before the answer is read, and
    // the listener must find whose it is.
    let mut shown = lock(shown);
    let (replaces, count) = shown.by_topic.get(&note.topic).map_or((0, 0), |&(id, count)| (id, count));
    let count = count + 1;
    let summary = if count > 1 { format!("{} · {count}", note.title) } else { note.title.clone() };
    let [open, accept, decline] = &note.buttons;
    let mut actions = vec!["default", open.as_str()];
    if note.offer.is_some() {
        actions.extend(["accept", accept.as_str(), "decline", decline.as_str()]);
    }
    let hints: HashMap<&str, zbus::zvariant::Value<'_>> =
        HashMap::from([("category", zbus::zvariant::Value::from("im.received"))]);
    let reply = bus.call_method(
        Some(INTERFACE),
        PATH,
        Some(INTERFACE),
        "Notify",
        &("Pigeon", replaces, "pigeon", summary.as_str(), note.body.as_str(), actions, hints, -1i32),
    );
    match reply.and_then(|reply| reply.body().deserialize::<u32>()) {
        Ok(id) => {
            shown.by_id.retain(|_, (topic, _)| *topic != note.topic);
            shown.by_id.insert(id, (note.topic, note.offer));
            shown.by_topic.insert(note.topic, (id, count));
        }
        Err(err) => log::debug!("no desktop notification: {err}"),
    }
}

fn close(bus: &zbus::blocking::Connection, shown: &Mutex<Shown>, topic: Topic) {
    let id = {
        let mut shown = lock(shown);
        let Some((id, _)) = shown.by_topic.remove(&topic) else { return };
        shown.by_id.remove(&id);
        id
    };
    if let Err(err) = bus.call_method(Some(INTERFACE), PATH, Some(INTERFACE), "CloseNotification", &(id,)) {
        log::debug!("closing notification {id}: {err}");
    }
}

/// Takes the server's signals: a click (`ActionInvoked`) becomes a [`Clicked`]; a closed
/// notification is forgotten, so that the next arrival starts a fresh one.
fn listen(bus: &zbus::blocking::Connection, shown: &Mutex<Shown>, clicks: &Sender<Clicked>, wake: &Wake) {
    let rule = zbus::MatchRule::builder().msg_type(zbus::message::Type::Signal).interface(INTERFACE);
    let signals = match rule.and_then(|rule| Ok(rule.path(PATH)?.build())) {
        Ok(rule) => zbus::blocking::MessageIterator::for_match_rule(rule, bus, Some(QUEUE)),
        Err(err) => return log::warn!("notifications will not act: {err}"),
    };
    let signals = match signals {
        Ok(signals) => signals,
        Err(err) => return log::warn!("notifications will not act: {err}"),
    };
    for signal in signals {
        let Ok(signal) = signal else { continue };
        let member = signal.header().member().map(|member| member.to_string()).unwrap_or_default();
        match member.as_str() {
            "ActionInvoked" => {
                let Ok((id, action)) = signal.body().deserialize::<(u32, String)>() else { continue };
                let Some(&(topic, offer)) = lock(shown).by_id.get(&id) else { continue };
                let click = match (action.as_str(), offer) {
                    ("accept", Some(offer)) => Clicked::Accept(offer),
                    ("decline", Some(offer)) => Clicked::Decline(offer),
                    _ => Clicked::Open(topic),
                };
                if clicks.try_send(click).is_ok() {
                    wake.now();
                }
            }
            "NotificationClosed" => {
                let Ok((id, _reason)) = signal.body().deserialize::<(u32, u32)>() else { continue };
                let mut shown = lock(shown);
                if let Some((topic, _)) = shown.by_id.remove(&id) {
                    shown.by_topic.remove(&topic);
                }
            }
            _ => {}
        }
    }
}
