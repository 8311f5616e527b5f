//! Transfer cards: an incoming offer with Accept / Decline, and running or finished transfers
//! with progress, speed, time left, cancel, retry, "open" and "open folder". The same card
//! shows in the conversation's timeline (at the time it was offered), in a room (offers of
//! files posted there) and in the transfers panel (all of them, with peer and time).

use eframe::egui::{self, Color32, RichText, Ui};

use super::i18n::Lang;
use super::model::{Model, TransferView};
use super::text::{self, clock_duration};
use super::theme;
use crate::node::ending::Ending;
use crate::node::human_bytes;
use crate::node::{Direction, TransferState, Trust};
use crate::node::{RoomId, TransferId, TransferInfo};
use crate::tr;

/// What the user asked for on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferAction {
    /// Accept an offer; with `always`, every later offer of that peer too.
    Accept(TransferId, bool),
    /// Decline an offer.
    Decline(TransferId),
    /// Stop a transfer.
    Cancel(TransferId),
    /// Try again: from where it stopped (receiving), as a new offer (sending).
    Retry(TransferId),
    /// Ask our user for the PIN the device wants, then offer again.
    AskPin(TransferId),
    /// Open what arrived (the one file, or the one folder) with the desktop's program.
    Open(TransferId),
    /// Show the folder it was saved in.
    OpenFolder(TransferId),
}

/// Where a card is drawn: the timeline shows it on its side, the panel says with whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the conversation or room, at its time.
    Timeline,
    /// In the list of every transfer.
    Panel,
}

/// Offers of files posted to `room` waiting for an answer, as cards.
pub fn room_offers(ui: &mut Ui, model: &Model, room: RoomId, lang: Lang) -> Option<TransferAction> {
    let mut action = None;
    for view in model.transfers.iter().filter(|v| {
        v.info.room.is_some_and(|posted| posted.room == room)
            && v.info.direction == Direction::Incoming
            && v.info.state == TransferState::Offered
    }) {
        action = action.or(card_ui(ui, model, view, Place::Panel, lang));
    }
    action
}

/// Every transfer, newest first, as cards; returns what was clicked.
pub fn panel(ui: &mut Ui, model: &Model, lang: Lang) -> Option<TransferAction> {
    let mut action = None;
    if model.transfers.is_empty() {
        ui.label(RichText::new(tr!(lang, "transfers.none")).weak());
        return None;
    }
    egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        for view in &model.transfers {
            action = action.or(card_ui(ui, model, view, Place::Panel, lang));
            ui.add_space(4.0);
        }
    });
    action
}

/// One transfer as a card; returns what was clicked.
pub fn card_ui(
    ui: &mut Ui,
    model: &Model,
    view: &TransferView,
    place: Place,
    lang: Lang,
) -> Option<TransferAction> {
    let info = &view.info;
    let id = info.transfer_id;
    let mut action = None;
    egui::Frame::group(ui.style()).fill(theme::palette(ui.visuals()).field).show(ui, |ui| {
        if place == Place::Panel {
            ui.set_width(ui.available_width());
        }
        let name = model.name_of(info.peer);
        let title = match (place, info.direction) {
            (Place::Panel, Direction::Incoming) => tr!(lang, "transfers.from", name = name),
            (Place::Panel, Direction::Outgoing) => tr!(lang, "transfers.to", name = name),
            (Place::Timeline, Direction::Incoming) => tr!(lang, "transfers.files_from", name = name),
            (Place::Timeline, Direction::Outgoing) => tr!(lang, "transfers.files_to", name = name),
        };
        let when = text::local_time(info.created_ms);
        let when = match place {
            Place::Timeline => when.format("%H:%M").to_string(),
            Place::Panel => when.format("%Y-%m-%d %H:%M").to_string(),
        };
        // Wrapped: in a narrow conversation a long name and state must not push the card
        // past the pane's edge.
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(title).strong());
            ui.label(RichText::new(when).small().weak());
            ui.label(RichText::new(state_text(model, view, lang)).small().color(state_color(ui, view)));
        });
        ui.label(summary(info, lang));
        if info.state == TransferState::Active {
            let progress = view.progress.unwrap_or_default();
            let total = progress.bytes_total.max(info.total_bytes).max(1);
            let fraction = progress.bytes_done as f32 / total as f32;
            let mut detail = format!("{:.0}%", fraction * 100.0);
            // A stalled transfer has no speed worth showing (the last one would be a lie).
            let moving = view.interrupted.is_none() && model.is_online(info.peer);
            if moving {
                detail.push_str(&format!(" · {}/s", human_bytes(progress.rate_bytes_per_sec)));
                if let Some(eta) = progress.eta_secs {
                    detail.push_str(" · ");
                    detail.push_str(&tr!(lang, "transfers.left", time = clock_duration(eta)));
                }
            }
            ui.add(egui::ProgressBar::new(fraction).text(detail));
            if let Some(reason) = &view.interrupted {
                ui.label(RichText::new(tr!(lang, "transfers.reconnecting", reason = reason)).small().weak());
            }
        } else if let Some(detail) = ending_detail(info) {
            ui.label(RichText::new(detail).small().weak());
        }
        // IP Messenger peers cannot prove who they are: no "always" for them.
        let authenticated = model.peers.get(&info.peer).is_none_or(|p| p.trust != Some(Trust::Unencrypted));
        let buttons: &[(&str, TransferAction)] = match (info.state, info.direction) {
            (TransferState::Offered, Direction::Incoming) if authenticated => &[
                ("transfers.accept", TransferAction::Accept(id, false)),
                ("transfers.always_accept", TransferAction::Accept(id, true)),
                ("transfers.decline", TransferAction::Decline(id)),
            ],
            (TransferState::Offered, Direction::Incoming) => &[
                ("transfers.accept", TransferAction::Accept(id, false)),
                ("transfers.decline", TransferAction::Decline(id)),
            ],
            (TransferState::Offered | TransferState::Active, _) => {
                &[("transfers.cancel", TransferAction::Cancel(id))]
            }
            (TransferState::Failed, Direction::Outgoing)
                if Ending::of(&info.reason) == Ending::PinRefused =>
            {
                &[("transfers.enter_pin", TransferAction::AskPin(id))]
            }
            // Files posted to a room go to all its members: not again to one.
            (TransferState::Failed | TransferState::Declined, Direction::Outgoing) if info.room.is_none() => {
                &[("transfers.send_again", TransferAction::Retry(id))]
            }
            // Only its sender can start it again.
            (TransferState::Failed, Direction::Incoming)
                if Ending::of(&info.reason) == Ending::StoppedHere =>
            {
                &[]
            }
            (TransferState::Failed, Direction::Incoming) => &[("transfers.retry", TransferAction::Retry(id))],
            // One thing arrived: it can be opened; several: their folder.
            (TransferState::Completed, Direction::Incoming) if info.names.len() == 1 && !info.more_names => {
                &[
                    ("transfers.open", TransferAction::Open(id)),
                    ("transfers.open_folder", TransferAction::OpenFolder(id)),
                ]
            }
            (TransferState::Completed, Direction::Incoming) => {
                &[("transfers.open_folder", TransferAction::OpenFolder(id))]
            }
            _ => &[],
        };
        ui.horizontal(|ui| {
            for (key, choice) in buttons {
                if ui.button(tr!(lang, *key)).clicked() {
                    action = Some(*choice);
                }
            }
        });
    });
    action
}

/// What a transfer holds, in the window's language: "2 files in 1 folder, 1.5 MB: Photos,
/// notes.txt", with the names as they are on disk.
pub fn summary(info: &TransferInfo, lang: Lang) -> String {
    let size = human_bytes(info.total_bytes);
    // An IP Messenger folder is offered as one name and a total size: until it arrives
    // nobody knows its files, and "0 files" would be wrong.
    let files = || match info.files {
        1 => tr!(lang, "transfers.one_file"),
        count => tr!(lang, "transfers.files", count = count),
    };
    let folders = || match info.folders {
        1 => tr!(lang, "transfers.one_folder"),
        count => tr!(lang, "transfers.folders", count = count),
    };
    let counts = match (info.files, info.folders) {
        (0, folders_count) if folders_count > 0 => folders(),
        (_, 0) => files(),
        _ => tr!(lang, "transfers.files_in_folders", files = files(), folders = folders()),
    };
    if info.names.is_empty() {
        return tr!(lang, "transfers.summary_unnamed", counts = counts, size = size).into_owned();
    }
    let mut names = info.names.join(", ");
    if info.more_names {
        names.push_str(", …");
    }
    tr!(lang, "transfers.summary", counts = counts, size = size, names = names).into_owned()
}

/// Where a transfer stands, in words: who ended it, or why it waits.
pub fn state_text(model: &Model, view: &TransferView, lang: Lang) -> String {
    let info = &view.info;
    let name = model.name_of(info.peer);
    let ending = Ending::of(&info.reason);
    let key = match (info.state, info.direction) {
        (TransferState::Offered, Direction::Incoming) => "transfers.state.offered_in",
        (TransferState::Offered, Direction::Outgoing) => "transfers.state.offered_out",
        (TransferState::Active, _) if view.interrupted.is_some() => "transfers.state.interrupted",
        // Both ends say it waits: the sender's side has no worker to tell it the link broke.
        (TransferState::Active, _) if !model.is_online(info.peer) => "transfers.state.waiting_for_peer",
        (TransferState::Active, _) => "transfers.state.active",
        (TransferState::Completed, _) => "transfers.state.completed",
        (TransferState::Declined, _) if ending == Ending::DeclinedHere => "transfers.state.declined_here",
        (TransferState::Declined, _) => "transfers.state.declined_there",
        (TransferState::Cancelled, _) => match ending {
            Ending::CancelledHere => "transfers.state.cancelled_here",
            Ending::NoLongerMember => "transfers.state.not_a_member",
            _ => "transfers.state.cancelled_there",
        },
        (TransferState::Failed, _) => match ending {
            Ending::FailedThere(_) => "transfers.state.failed_there",
            Ending::Refused(_) => "transfers.state.refused",
            Ending::PinRefused => "transfers.state.pin_refused",
            Ending::StoppedHere if info.direction == Direction::Incoming => "transfers.state.stopped_in",
            Ending::StoppedHere => "transfers.state.stopped_out",
            _ => "transfers.state.failed",
        },
    };
    tr!(lang, key, name = name).into_owned()
}

/// What the ending's words leave out: the other side's reason, or our error.
fn ending_detail(info: &TransferInfo) -> Option<&str> {
    if matches!(info.state, TransferState::Offered | TransferState::Active | TransferState::Completed) {
        return None;
    }
    let detail = match Ending::of(&info.reason) {
        Ending::DeclinedThere(detail)
        | Ending::CancelledThere(detail)
        | Ending::FailedThere(detail)
        | Ending::Refused(detail)
        | Ending::Other(detail) => detail,
        Ending::DeclinedHere
        | Ending::CancelledHere
        | Ending::NoLongerMember
        | Ending::PinRefused
        | Ending::StoppedHere => "",
    };
    (!detail.is_empty()).then_some(detail)
}

fn state_color(ui: &Ui, view: &TransferView) -> Color32 {
    match view.info.state {
        TransferState::Completed => theme::palette(ui.visuals()).good,
        TransferState::Failed => ui.visuals().error_fg_color,
        TransferState::Active if view.interrupted.is_some() => ui.visuals().warn_fg_color,
        _ => ui.visuals().weak_text_color(),
    }
}

/// Transfers that still need something: offers to answer and running ones.
pub fn pending_count(model: &Model) -> usize {
    model
        .transfers
        .iter()
        .filter(|v| matches!(v.info.state, TransferState::Offered | TransferState::Active))
        .count()
}
