//! Where events go: the node's owner (window or daemon), control-socket clients, and the
//! waker that tells a sleeping UI to look. Sends never block the hub.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use super::event::Event;

/// Called after the hub emitted events, so a sleeping UI can schedule a repaint.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Identifies one control-socket client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub u64);

/// Who sent a command, so that its answer goes back only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The process that started the node.
    Owner,
    /// A control-socket client.
    Client(ClientId),
}

/// Every event consumer of the node. Owned by the hub.
pub struct Sinks {
    /// The owner's channel.
    owner: Sender<Event>,
    /// Control-socket clients, removed when their channel closes.
    clients: HashMap<ClientId, Sender<Event>>,
    /// Wakes the owner after a batch of events.
    waker: Option<Waker>,
    /// Whether events were emitted since the last wake.
    pending_wake: bool,
    /// Events dropped because a consumer's queue was full.
    pub dropped: u64,
}

impl Sinks {
    /// Sinks with only the owner.
    pub fn new(owner: Sender<Event>) -> Sinks {
        Sinks { owner, clients: HashMap::new(), waker: None, pending_wake: false, dropped: 0 }
    }

    /// Installs the owner's waker.
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    /// Adds a control client.
    pub fn subscribe(&mut self, client: ClientId, events: Sender<Event>) {
        self.clients.insert(client, events);
    }

    /// Removes a control client.
    pub fn unsubscribe(&mut self, client: ClientId) {
        self.clients.remove(&client);
    }

    /// Lets every control client go (their writer threads end once their queue drains).
    pub fn drop_clients(&mut self) {
        self.clients.clear();
    }

    /// Sends an event to everyone.
    pub fn emit(&mut self, event: &Event) {
        debug_assert!(!event.is_reply(), "replies go to one origin");
        self.send_owner(event.clone());
        let mut gone = Vec::new();
        for (client, events) in &self.clients {
            if !offer(events, event.clone(), &mut self.dropped) {
                gone.push(*client);
            }
        }
        for client in gone {
            self.clients.remove(&client);
        }
    }

    /// Sends an answer to whoever asked.
    pub fn reply(&mut self, origin: Origin, event: Event) {
        match origin {
            Origin::Owner => self.send_owner(event),
            Origin::Client(client) => {
                let alive =
                    self.clients.get(&client).is_some_and(|events| offer(events, event, &mut self.dropped));
                if !alive {
                    self.clients.remove(&client);
                }
            }
        }
    }

    fn send_owner(&mut self, event: Event) {
        // The owner may have stopped listening (a CLI that got its answer); that is fine.
        offer(&self.owner, event, &mut self.dropped);
        self.pending_wake = true;
    }

    /// Calls the waker once if anything was emitted since the last call.
    pub fn wake(&mut self) {
        if std::mem::take(&mut self.pending_wake)
            && let Some(waker) = &self.waker
        {
            waker();
        }
    }
}

/// Offers an event without blocking; returns `false` when the receiver is gone. A full queue
/// drops the event and counts it: history holds the truth, a consumer can reload it.
fn offer(events: &Sender<Event>, event: Event, dropped: &mut u64) -> bool {
    match events.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            *dropped += 1;
            if dropped.is_power_of_two() {
                log::warn!("a consumer is not keeping up: {dropped} events dropped so far");
            }
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}
