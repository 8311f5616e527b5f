//! Starting the node from the window, and what the window shows when it cannot start: the
//! reason in plain words, and for a port another program holds, a button that starts Pigeon on
//! the next free port instead (for this session; Settings can make it permanent).

use std::sync::Arc;

use eframe::egui::{self, RichText, Ui};

use super::app::PigeonApp;
use super::i18n::Lang;
use crate::config::Config;
use crate::node::{Node, StartError, free_port_after};
use crate::tr;

/// Ports tried after a taken one.
const PORTS_TO_TRY: u16 = 20;

/// The window: running, or explaining why the node did not start.
pub enum Root {
    /// The node runs.
    Running(Box<PigeonApp>),
    /// The node could not start.
    Stopped(Box<Problem>),
}

/// Why the node did not start, and what can be done.
pub struct Problem {
    config: Config,
    error: String,
    /// A port that is free now, when the configured one was taken.
    free_port: Option<u16>,
    lang: Lang,
}

impl Root {
    /// Starts the node for `config` and wraps the window around it, or the explanation.
    pub fn start(ctx: &egui::Context, config: Config) -> std::io::Result<Root> {
        match Node::start(&config) {
            Ok(node) => {
                let app = PigeonApp::new(ctx, node, config, Arc::new(|| {}))?.on_desktop(None);
                Ok(Root::Running(Box::new(app)))
            }
            Err(err) => {
                log::warn!("{err}");
                let free_port = match &err {
                    StartError::Bind { .. } => free_port_after(&config.settings, PORTS_TO_TRY),
                    _ => None,
                };
                let lang = Lang::choose(config.settings.language.as_deref());
                super::fonts::install(ctx);
                Ok(Root::Stopped(Box::new(Problem { config, error: err.to_string(), free_port, lang })))
            }
        }
    }

    /// The running window, if the node started.
    pub fn app(&self) -> Option<&PigeonApp> {
        match self {
            Root::Running(app) => Some(app),
            Root::Stopped(_) => None,
        }
    }
}

impl Problem {
    /// Draws the explanation; returns the running window once the user chose another port
    /// and the node started there.
    fn show(&mut self, ui: &mut Ui) -> Option<PigeonApp> {
        let lang = self.lang;
        let mut retry = None;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.add_space(60.0);
            ui.vertical_centered(|ui| {
                ui.heading(tr!(lang, "startup.title"));
                ui.add_space(8.0);
                ui.label(RichText::new(&self.error).color(ui.visuals().error_fg_color));
                ui.add_space(12.0);
                if let Some(port) = self.free_port {
                    ui.label(tr!(lang, "startup.port_taken"));
                    if ui.button(tr!(lang, "startup.use_port", port = port)).clicked() {
                        retry = Some(port);
                    }
                }
                if ui.button(tr!(lang, "startup.quit")).clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
        });
        let port = retry?;
        let mut config = self.config.clone();
        config.settings.port = port;
        match Node::start(&config) {
            Ok(node) => match PigeonApp::new(ui.ctx(), node, config, Arc::new(|| {})) {
                Ok(app) => Some(app.on_desktop(None)),
                Err(err) => {
                    self.error = err.to_string();
                    None
                }
            },
            Err(err) => {
                self.error = err.to_string();
                self.free_port = free_port_after(&config.settings, PORTS_TO_TRY);
                None
            }
        }
    }
}

impl eframe::App for Root {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        if let Root::Running(app) = self {
            app.logic(ctx, frame);
        }
    }

    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        match self {
            Root::Running(app) => app.ui(ui, frame),
            Root::Stopped(problem) => {
                if let Some(app) = problem.show(ui) {
                    *self = Root::Running(Box::new(app));
                }
            }
        }
    }
}
