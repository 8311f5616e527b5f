//! "Invite with a link": our invite link and its QR code, to hand to someone discovery cannot
//! reach (another subnet, a VPN, a network that filters broadcasts), and a field for the link
//! someone handed us. Using one connects to its maker with both keys verified; the dialog
//! stays open and says how it went.

use eframe::egui::{self, Color32, ColorImage, RichText, TextureHandle, TextureOptions};

use super::i18n::Lang;
use super::model::Model;
use crate::node::{Invite, PeerId, Trust};
use crate::tr;

/// Pixels per module of the QR code: a code of about 200 px, which a phone camera reads from
/// a screen at arm's length.
const QR_MODULE_PX: usize = 3;

/// Light modules around the code, as scanners need.
const QR_QUIET_MODULES: usize = 4;

/// The dialog.
#[derive(Default)]
pub struct InviteDialog {
    /// The link being typed or pasted.
    pasted: String,
    /// The QR code of our link, made once per link.
    qr: Option<(String, TextureHandle)>,
    /// The invite being used, and how many notices there were when it started (a new one is
    /// its failure).
    using: Option<(Invite, usize)>,
    /// Why the pasted text is not a link.
    problem: Option<String>,
}

/// What the user chose.
pub enum InviteOutcome {
    /// Use this link (read already).
    Use(String),
    /// Copy our link.
    Copy(String),
    /// Open "Can't see someone?".
    Doctor,
    /// Closed.
    Close,
}

impl InviteDialog {
    /// Shows it; `link` is ours once the node made it.
    pub fn show(&mut self, ctx: &egui::Context, model: &Model, lang: Lang) -> Option<InviteOutcome> {
        let mut outcome = None;
        let modal = egui::Modal::new(egui::Id::unique("invite")).show(ctx, |ui| {
            ui.set_width(440.0);
            ui.heading(tr!(lang, "invite.title"));
            ui.label(tr!(lang, "invite.explain"));
            ui.add_space(6.0);
            match model.invite_link.as_deref() {
                Some(link) => self.our_link(ui, link, lang, &mut outcome),
                None => {
                    ui.spinner();
                }
            }
            ui.separator();
            self.their_link(ui, model, lang, &mut outcome);
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.link(tr!(lang, "doctor.title")).clicked() {
                    outcome = Some(InviteOutcome::Doctor);
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button(tr!(lang, "invite.close")).clicked() {
                        outcome = Some(InviteOutcome::Close);
                    }
                });
            });
        });
        if outcome.is_none() && modal.should_close() {
            outcome = Some(InviteOutcome::Close);
        }
        outcome
    }

    fn our_link(&mut self, ui: &mut egui::Ui, link: &str, lang: Lang, outcome: &mut Option<InviteOutcome>) {
        if self.qr.as_ref().is_none_or(|(made_for, _)| made_for != link)
            && let Some(image) = qr_image(link)
        {
            let texture = ui.ctx().load_texture("invite-qr", image, TextureOptions::NEAREST);
            self.qr = Some((link.to_owned(), texture));
        }
        ui.horizontal(|ui| {
            if let Some((_, texture)) = &self.qr {
                ui.image((texture.id(), texture.size_vec2()));
            }
            ui.vertical(|ui| {
                ui.add_space(8.0);
                if ui.button(RichText::new(tr!(lang, "invite.copy")).strong()).clicked() {
                    *outcome = Some(InviteOutcome::Copy(link.to_owned()));
                }
                ui.add_space(4.0);
                ui.label(RichText::new(tr!(lang, "invite.private")).small().weak());
            });
        });
        let mut shown = link.to_owned();
        ui.add(
            egui::TextEdit::multiline(&mut shown)
                .desired_rows(3)
                .desired_width(f32::INFINITY)
                .font(egui::TextStyle::Small),
        );
    }

    fn their_link(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        lang: Lang,
        outcome: &mut Option<InviteOutcome>,
    ) {
        if let Some((invite, notices_before)) = &self.using {
            let name = &invite.name;
            if is_verified(model, invite.id) {
                ui.label(RichText::new(tr!(lang, "invite.connected", name = name)).strong());
                return;
            }
            match model.notices.get(*notices_before..).and_then(|new| new.last()) {
                Some(failure) => {
                    ui.label(RichText::new(failure).color(ui.visuals().warn_fg_color));
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(tr!(lang, "invite.connecting", name = name));
                    });
                    return;
                }
            }
        }
        let label = ui.label(tr!(lang, "invite.use_label"));
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut self.pasted)
                    .hint_text("pigeon://invite?…")
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
        if let Some(problem) = &self.problem {
            ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
        }
        let ready = !self.pasted.trim().is_empty();
        let clicked = ui.add_enabled(ready, egui::Button::new(tr!(lang, "invite.connect"))).clicked();
        if ready && (clicked || entered) {
            let pasted = self.pasted.clone();
            if let Some(link) = self.start_using(&pasted, model) {
                *outcome = Some(InviteOutcome::Use(link));
            }
        }
    }

    /// Starts using the link in `text` (pasted here, or opened from outside the window): the
    /// link to hand to the node, or none when it is not one (the dialog says why).
    pub fn start_using(&mut self, text: &str, model: &Model) -> Option<String> {
        self.pasted = text.trim().to_owned();
        match Invite::parse(text) {
            Ok(invite) => {
                self.problem = None;
                self.using = Some((invite, model.notices.len()));
                Some(self.pasted.clone())
            }
            Err(err) => {
                self.problem = Some(err.to_string());
                None
            }
        }
    }
}

fn is_verified(model: &Model, peer: PeerId) -> bool {
    model.peers.get(&peer).is_some_and(|entry| entry.trust == Some(Trust::Verified))
}

/// The QR code of `link` as an image: dark modules on white, with the quiet zone.
fn qr_image(link: &str) -> Option<ColorImage> {
    let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QR_QUIET_MODULES) * QR_MODULE_PX;
    let mut pixels = vec![Color32::WHITE; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (x, y) = (index % modules + QR_QUIET_MODULES, index / modules + QR_QUIET_MODULES);
        for dy in 0..QR_MODULE_PX {
            let row = (y * QR_MODULE_PX + dy) * side;
            let start = row + x * QR_MODULE_PX;
            pixels.get_mut(start..start + QR_MODULE_PX)?.fill(Color32::BLACK);
        }
    }
    Some(ColorImage::new([side, side], pixels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_qr_code_is_square_with_its_quiet_zone_and_dark_modules() {
        let link =
            "pigeon://invite?v=1&id=00112233445566778899aabbccddeeff&name=Ana&addr=10.0.0.5:2426&t=1.00";
        let image = qr_image(link).unwrap();
        let [width, height] = image.size;
        assert_eq!(width, height);
        let quiet = QR_QUIET_MODULES * QR_MODULE_PX;
        assert!(
            image.pixels[..width * quiet].iter().all(|pixel| *pixel == Color32::WHITE),
            "quiet zone on top"
        );
        // The finder pattern's corner module, just inside the quiet zone, is dark.
        assert_eq!(image.pixels[quiet * width + quiet], Color32::BLACK);
    }
}
