//! "Can't see someone?": the network doctor (`node::doctor`) in the window. The examination
//! runs on the window's background thread; the panel shows the most likely fix first (with
//! the firewall's command to copy), then the facts — interfaces, ports, our own echoes, the
//! firewall, who was heard where — and probes an address the user types.

use eframe::egui::{self, RichText};

use super::i18n::Lang;
use crate::node::doctor::{Finding, ProbeOutcome, Report, Skipped, Way};
use crate::tr;

/// The panel.
#[derive(Default)]
pub struct DoctorPanel {
    /// The latest report; none while the examination runs.
    pub report: Option<Report>,
    /// The address typed to probe.
    probe: String,
}

/// What the user asked for.
pub enum DoctorOutcome {
    /// Examine again, probing this address if any.
    Examine(Option<String>),
    /// Copy a command.
    Copy(String),
    /// Open "Invite with a link".
    Invite,
    /// Closed.
    Close,
}

impl DoctorPanel {
    /// Shows it.
    pub fn show(&mut self, ctx: &egui::Context, lang: Lang) -> Option<DoctorOutcome> {
        let mut outcome = None;
        let modal = egui::Modal::new(egui::Id::unique("doctor")).show(ctx, |ui| {
            ui.set_width(520.0);
            ui.heading(tr!(lang, "doctor.title"));
            match &self.report {
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(tr!(lang, "doctor.examining"));
                    });
                }
                Some(report) => {
                    egui::ScrollArea::vertical().max_height(ui.ctx().content_rect().height() * 0.6).show(
                        ui,
                        |ui| {
                            findings(ui, report, lang, &mut outcome);
                            ui.separator();
                            facts(ui, report, lang);
                        },
                    );
                }
            }
            ui.separator();
            ui.horizontal(|ui| {
                let label = ui.label(tr!(lang, "doctor.probe_label"));
                ui.add(
                    egui::TextEdit::singleline(&mut self.probe)
                        .hint_text("192.168.1.20")
                        .desired_width(180.0),
                )
                .labelled_by(label.id);
                let ready = self.report.is_some();
                if ui.add_enabled(ready, egui::Button::new(tr!(lang, "doctor.check"))).clicked() {
                    let probe = Some(self.probe.trim().to_owned()).filter(|probe| !probe.is_empty());
                    outcome = Some(DoctorOutcome::Examine(probe));
                }
            });
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.button(tr!(lang, "doctor.invite")).clicked() {
                    outcome = Some(DoctorOutcome::Invite);
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button(tr!(lang, "invite.close")).clicked() {
                        outcome = Some(DoctorOutcome::Close);
                    }
                });
            });
        });
        if outcome.is_none() && modal.should_close() {
            outcome = Some(DoctorOutcome::Close);
        }
        if matches!(outcome, Some(DoctorOutcome::Examine(_))) {
            self.report = None;
        }
        outcome
    }
}

fn findings(ui: &mut egui::Ui, report: &Report, lang: Lang, outcome: &mut Option<DoctorOutcome>) {
    if report.findings.is_empty() {
        ui.label(RichText::new(tr!(lang, "doctor.all_well")).strong());
    }
    for (n, finding) in report.findings.iter().enumerate() {
        let text = advice(finding, lang);
        let text = if n == 0 { RichText::new(text).strong() } else { RichText::new(text) };
        ui.label(text.color(ui.visuals().warn_fg_color));
        if let Finding::FirewallDrops { fix, .. } = finding {
            ui.horizontal(|ui| {
                ui.label(RichText::new(fix).monospace().small());
                if ui.small_button(tr!(lang, "doctor.copy_command")).clicked() {
                    *outcome = Some(DoctorOutcome::Copy(fix.clone()));
                }
            });
        }
        ui.add_space(4.0);
    }
}

fn advice(finding: &Finding, lang: Lang) -> String {
    match finding {
        Finding::FirewallDrops { tool, rule, .. } => {
            tr!(lang, "doctor.firewall_drops", tool = tool, rule = rule).into()
        }
        Finding::NoNetwork => tr!(lang, "doctor.no_network").into(),
        Finding::AllSkipped => tr!(lang, "doctor.all_skipped").into(),
        Finding::BoundAway { address } => tr!(lang, "doctor.bound_away", address = address).into(),
        Finding::PortInUse { protocol, port } => {
            tr!(lang, "doctor.port_in_use", port = port, protocol = protocol).into()
        }
        Finding::NoEcho { interface, method } => {
            tr!(lang, "doctor.no_echo", method = method_words(lang, *method), interface = interface).into()
        }
        Finding::ProbeFailed { addr, outcome } => format!("{addr}: {}", outcome_words(*outcome, lang)),
        Finding::NobodyHeard => tr!(lang, "doctor.nobody_heard").into(),
    }
}

fn outcome_words(outcome: ProbeOutcome, lang: Lang) -> String {
    let key = match outcome {
        ProbeOutcome::Reached => "doctor.reached",
        ProbeOutcome::Refused => "doctor.refused",
        ProbeOutcome::NoAnswer => "doctor.no_answer",
        ProbeOutcome::NoRoute => "doctor.no_route",
        ProbeOutcome::BadAddress => "doctor.bad_address",
    };
    tr!(lang, key).into()
}

/// A section's heading, set apart from the one before.
fn heading(ui: &mut egui::Ui, text: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(text).strong());
}

/// A way of being found, in the UI language.
fn method_words(lang: Lang, method: Way) -> String {
    match method {
        Way::Broadcast => tr!(lang, "doctor.method_broadcast"),
        Way::Multicast => tr!(lang, "doctor.method_multicast"),
        Way::Ipv6 => tr!(lang, "doctor.method_ipv6"),
        Way::Mdns => tr!(lang, "doctor.method_mdns"),
    }
    .into_owned()
}

fn facts(ui: &mut egui::Ui, report: &Report, lang: Lang) {
    heading(ui, &tr!(lang, "doctor.interfaces"));
    for one in &report.interfaces {
        let state = match one.skipped {
            None => tr!(lang, "doctor.used"),
            Some(Skipped::Loopback) => tr!(lang, "doctor.skipped_loopback"),
            Some(Skipped::Down) => tr!(lang, "doctor.skipped_down"),
            Some(Skipped::PointToPoint) => tr!(lang, "doctor.skipped_point_to_point"),
            Some(Skipped::NotBound) => tr!(lang, "doctor.skipped_not_bound"),
            Some(Skipped::NotChosen) => tr!(lang, "doctor.skipped_not_chosen"),
            Some(Skipped::Virtual) => tr!(lang, "doctor.skipped_virtual"),
        };
        ui.label(format!("{} {}/{} — {state}", one.name, one.address, one.prefix));
    }
    if !report.ipv6.is_empty() {
        ui.label(tr!(lang, "doctor.ipv6_on", interfaces = report.ipv6.join(", ")));
    }
    let echoes: Vec<String> = report
        .echoes
        .iter()
        .map(|echo| {
            let key = if echo.came_back { "doctor.echo_back" } else { "doctor.echo_lost" };
            tr!(lang, key, method = method_words(lang, echo.method), interface = echo.interface).into_owned()
        })
        .collect();
    if !echoes.is_empty() {
        heading(ui, &tr!(lang, "doctor.echoes"));
        for echo in echoes {
            ui.label(echo);
        }
    }
    heading(ui, &tr!(lang, "doctor.firewall"));
    let firewall = &report.firewall;
    let text = match (&firewall.drops, &firewall.detail, firewall.readable) {
        (Some(rule), _, _) => format!("{}: {rule}", firewall.tool),
        (None, Some(detail), _) => format!("{}: {detail}", firewall.tool),
        (None, None, _) if firewall.tool == "none" => tr!(lang, "doctor.no_firewall").into_owned(),
        (None, None, _) => tr!(lang, "doctor.firewall_lets_through", tool = firewall.tool).into_owned(),
    };
    ui.label(text);
    heading(ui, &tr!(lang, "doctor.heard"));
    if report.heard.is_empty() {
        ui.label(tr!(lang, "doctor.heard_nobody"));
    }
    for heard in &report.heard {
        let family = heard.family.product_name();
        ui.label(tr!(
            lang,
            "doctor.heard_count",
            count = heard.peers,
            family = family,
            interface = heard.interface
        ));
    }
    if let Some(probe) = &report.probe {
        heading(ui, &tr!(lang, "doctor.probe"));
        ui.label(format!("{}: {} ({})", probe.addr, outcome_words(probe.outcome, lang), probe.detail));
    }
}
