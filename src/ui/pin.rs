//! "Enter the PIN": a LocalSend device can ask senders for a PIN its user set. The dialog
//! takes it for one device, from its menu or from an offer it refused for want of one (then
//! the offer goes again with it).

use eframe::egui::{self, RichText};

use super::i18n::Lang;
use crate::node::{PeerId, TransferId};
use crate::tr;

/// The dialog, open for one device.
pub struct PinDialog {
    /// The device.
    pub peer: PeerId,
    /// The refused offer to send again once the PIN is given.
    pub retry: Option<TransferId>,
    pin: String,
}

/// What the user chose.
pub enum PinOutcome {
    /// Use this PIN (and send again).
    Give(String),
    /// Closed without one.
    Cancel,
}

impl PinDialog {
    /// The dialog for `peer`, for sending `retry` again if given.
    pub fn new(peer: PeerId, retry: Option<TransferId>) -> PinDialog {
        PinDialog { peer, retry, pin: String::new() }
    }

    /// Shows it; `name` is the device's.
    pub fn show(&mut self, ctx: &egui::Context, name: &str, lang: Lang) -> Option<PinOutcome> {
        let mut outcome = None;
        let modal = egui::Modal::new(egui::Id::unique("localsend-pin")).show(ctx, |ui| {
            ui.set_width(340.0);
            ui.heading(tr!(lang, "pin.title"));
            ui.label(tr!(lang, "pin.explain", name = name));
            ui.add_space(6.0);
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.pin)
                    .hint_text(tr!(lang, "pin.hint"))
                    .desired_width(f32::INFINITY),
            );
            field.request_focus();
            let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                let label = if self.retry.is_some() { "pin.send_again" } else { "pin.use" };
                let ready = !self.pin.trim().is_empty();
                let clicked = ui.add_enabled(ready, egui::Button::new(tr!(lang, label))).clicked();
                if ready && (clicked || entered) {
                    outcome = Some(PinOutcome::Give(self.pin.trim().to_owned()));
                }
                if ui.button(tr!(lang, "pin.cancel")).clicked() {
                    outcome = Some(PinOutcome::Cancel);
                }
            });
            ui.label(RichText::new(tr!(lang, "pin.kept")).small().weak());
        });
        if outcome.is_none() && modal.should_close() {
            outcome = Some(PinOutcome::Cancel);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::Harness;
    use egui_kittest::kittest::{NodeT, Queryable};

    use super::*;

    #[test]
    fn the_pin_typed_is_given_and_an_empty_one_cannot_be() {
        let dialog = PinDialog::new(PeerId::from_bytes([1; 16]), Some(TransferId::from_bytes([2; 16])));
        let mut harness = Harness::new_ui_state(
            |ui, (dialog, outcome): &mut (PinDialog, Option<PinOutcome>)| {
                if let Some(chosen) = dialog.show(ui.ctx(), "Lin's Phone", Lang::En) {
                    *outcome = Some(chosen);
                }
            },
            (dialog, None),
        );
        harness.run();
        assert!(harness.query_by_label_contains("Lin's Phone accepts files only with the PIN").is_some());
        assert!(harness.get_by_label("Send again with this PIN").accesskit_node().is_disabled());
        harness.get_by_role(egui::accesskit::Role::TextInput).type_text(" 4321 ");
        harness.run();
        harness.get_by_label("Send again with this PIN").click();
        harness.run();
        assert!(matches!(&harness.state().1, Some(PinOutcome::Give(pin)) if pin == "4321"));
    }
}
