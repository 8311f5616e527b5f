//! The window's colours and text sizes, in one place: a light and a dark palette whose text
//! colours all reach WCAG AA contrast (4.5:1) on every background they are drawn on (a unit
//! test computes it), the egui visuals made from them, and text sizes scaled by the user's
//! setting. Panes ask here for a colour by its role; no other file names a colour.

use eframe::egui::{self, Color32, FontId, Stroke, TextStyle, ThemePreference, Visuals};

use crate::config::{TextSize, Theme};

/// Every colour the window uses, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Side and top panels, the conversation's background.
    pub panel: Color32,
    /// Dialogs and menus.
    pub window: Color32,
    /// Text fields, cards, notices.
    pub field: Color32,
    /// Messages of others.
    pub bubble_in: Color32,
    /// Our messages.
    pub bubble_out: Color32,
    /// Text.
    pub text: Color32,
    /// Names, headings, the hovered row.
    pub strong: Color32,
    /// Times, hosts, hints: quieter, still readable.
    pub weak: Color32,
    /// A selected row or selected text.
    pub selection: Color32,
    /// Text on `selection`.
    pub on_selection: Color32,
    /// Links, read receipts, room marks.
    pub accent: Color32,
    /// Verified keys, finished transfers.
    pub good: Color32,
    /// Warnings: unconfirmed keys, interrupted transfers.
    pub warn: Color32,
    /// Errors: a changed key, a failed transfer.
    pub error: Color32,
    /// Unread badges (white text).
    pub badge: Color32,
    /// Status dots.
    pub online: Color32,
    /// Status dots.
    pub away: Color32,
    /// Status dots.
    pub busy: Color32,
    /// Status dots of peers offline.
    pub offline: Color32,
    /// Frames of cards and separators.
    pub line: Color32,
}

/// Dark: GitHub's dark palette as a base, bubbles a step apart from the panel.
pub const DARK: Palette = Palette {
    panel: Color32::from_rgb(0x1c, 0x1f, 0x24),
    window: Color32::from_rgb(0x22, 0x26, 0x2c),
    field: Color32::from_rgb(0x12, 0x14, 0x18),
    bubble_in: Color32::from_rgb(0x2a, 0x2f, 0x37),
    bubble_out: Color32::from_rgb(0x1d, 0x3b, 0x5e),
    text: Color32::from_rgb(0xdd, 0xe1, 0xe6),
    strong: Color32::from_rgb(0xf5, 0xf7, 0xfa),
    weak: Color32::from_rgb(0xa4, 0xad, 0xb8),
    selection: Color32::from_rgb(0x2f, 0x5f, 0x9e),
    on_selection: Color32::WHITE,
    accent: Color32::from_rgb(0x6c, 0xb6, 0xff),
    good: Color32::from_rgb(0x5c, 0xc8, 0x79),
    warn: Color32::from_rgb(0xe3, 0xb3, 0x41),
    error: Color32::from_rgb(0xff, 0x8a, 0x80),
    badge: Color32::from_rgb(0xc9, 0x2a, 0x2a),
    online: Color32::from_rgb(0x3f, 0xb9, 0x50),
    away: Color32::from_rgb(0xd2, 0x99, 0x22),
    busy: Color32::from_rgb(0xf8, 0x51, 0x49),
    offline: Color32::from_rgb(0x6e, 0x76, 0x81),
    line: Color32::from_rgb(0x3a, 0x40, 0x4a),
};

/// Light: GitHub's light palette as a base.
pub const LIGHT: Palette = Palette {
    panel: Color32::from_rgb(0xf6, 0xf7, 0xf9),
    window: Color32::from_rgb(0xff, 0xff, 0xff),
    field: Color32::from_rgb(0xff, 0xff, 0xff),
    bubble_in: Color32::from_rgb(0xe8, 0xeb, 0xef),
    bubble_out: Color32::from_rgb(0xd8, 0xe8, 0xfc),
    text: Color32::from_rgb(0x1f, 0x23, 0x28),
    strong: Color32::from_rgb(0x0b, 0x0d, 0x10),
    weak: Color32::from_rgb(0x57, 0x60, 0x6a),
    selection: Color32::from_rgb(0xb6, 0xd4, 0xfe),
    on_selection: Color32::from_rgb(0x0b, 0x1f, 0x3a),
    accent: Color32::from_rgb(0x09, 0x5a, 0xc4),
    good: Color32::from_rgb(0x1a, 0x6f, 0x30),
    warn: Color32::from_rgb(0x8a, 0x5a, 0x00),
    error: Color32::from_rgb(0xc0, 0x1c, 0x28),
    badge: Color32::from_rgb(0xc9, 0x2a, 0x2a),
    online: Color32::from_rgb(0x1f, 0x88, 0x3d),
    away: Color32::from_rgb(0xbf, 0x87, 0x00),
    busy: Color32::from_rgb(0xcf, 0x22, 0x2e),
    offline: Color32::from_rgb(0x8c, 0x95, 0x9f),
    line: Color32::from_rgb(0xd0, 0xd7, 0xde),
};

/// Darkens the window under files dragged over it.
pub const SHADE: Color32 = Color32::from_black_alpha(170);

/// Text on [`SHADE`].
pub const ON_SHADE: Color32 = Color32::WHITE;

/// Text on a palette's `badge`.
pub const ON_BADGE: Color32 = Color32::WHITE;

/// The palette of the visuals in effect.
pub fn palette(visuals: &Visuals) -> &'static Palette {
    if visuals.dark_mode { &DARK } else { &LIGHT }
}

/// Points of each text style at the normal size: message text 14, meta text (times,
/// states, hosts) 12, never below the 11 of WCAG's smallest comfortable size.
const SIZES: [(TextStyle, f32); 5] = [
    (TextStyle::Small, 12.0),
    (TextStyle::Body, 14.0),
    (TextStyle::Button, 14.0),
    (TextStyle::Monospace, 13.5),
    (TextStyle::Heading, 19.0),
];

/// How much larger than normal the text is.
pub fn scale(size: TextSize) -> f32 {
    match size {
        TextSize::Small => 0.9,
        TextSize::Normal => 1.0,
        TextSize::Large => 1.15,
        TextSize::Larger => 1.3,
    }
}

/// Applies the user's theme and text size to the window.
pub fn install(ctx: &egui::Context, theme: Theme, size: TextSize) {
    ctx.set_visuals_of(egui::Theme::Dark, visuals(&DARK, true));
    ctx.set_visuals_of(egui::Theme::Light, visuals(&LIGHT, false));
    ctx.set_theme(match theme {
        Theme::System => ThemePreference::System,
        Theme::Light => ThemePreference::Light,
        Theme::Dark => ThemePreference::Dark,
    });
    let factor = scale(size);
    ctx.all_styles_mut(|style| {
        for (text_style, points) in SIZES {
            style.text_styles.insert(text_style, FontId::proportional(points * factor));
        }
        if let Some(mono) = style.text_styles.get_mut(&TextStyle::Monospace) {
            mono.family = egui::FontFamily::Monospace;
        }
        style.spacing.interact_size.y = 22.0 * factor;
    });
}

/// egui's visuals in a palette's colours.
fn visuals(p: &Palette, dark: bool) -> Visuals {
    let mut v = if dark { Visuals::dark() } else { Visuals::light() };
    v.panel_fill = p.panel;
    v.window_fill = p.window;
    v.extreme_bg_color = p.field;
    v.text_edit_bg_color = Some(p.field);
    v.faint_bg_color = p.bubble_in;
    v.code_bg_color = p.bubble_in;
    v.override_text_color = None;
    v.weak_text_color = Some(p.weak);
    v.hyperlink_color = p.accent;
    v.warn_fg_color = p.warn;
    v.error_fg_color = p.error;
    v.selection.bg_fill = p.selection;
    v.selection.stroke = Stroke::new(1.0, p.on_selection);
    v.window_stroke = Stroke::new(1.0, p.line);
    v.widgets.noninteractive.fg_stroke.color = p.text;
    v.widgets.noninteractive.bg_stroke = Stroke::new(1.0, p.line);
    v.widgets.noninteractive.bg_fill = p.panel;
    v.widgets.inactive.fg_stroke.color = p.text;
    // Text fields and buttons keep an edge, or a white box vanishes on a light panel.
    v.widgets.inactive.bg_stroke = Stroke::new(1.0, p.line);
    v.widgets.hovered.fg_stroke.color = p.strong;
    v.widgets.active.fg_stroke.color = p.strong;
    v.widgets.open.fg_stroke.color = p.strong;
    v
}

/// The colour of a status dot.
pub fn status_color(visuals: &Visuals, online: bool, status: crate::node::Status) -> Color32 {
    use crate::node::Status;
    let p = palette(visuals);
    match (online, status) {
        (false, _) => p.offline,
        (true, Status::Away) => p.away,
        (true, Status::Busy) => p.busy,
        (true, Status::Online | Status::Unknown) => p.online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG's contrast ratio of two opaque colours (1 to 21).
    fn contrast(a: Color32, b: Color32) -> f32 {
        let luminance = |c: Color32| {
            let channel = |v: u8| {
                let v = f32::from(v) / 255.0;
                if v <= 0.039_28 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
            };
            0.2126 * channel(c.r()) + 0.7152 * channel(c.g()) + 0.0722 * channel(c.b())
        };
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// WCAG AA for normal text.
    const AA: f32 = 4.5;

    #[test]
    fn every_text_colour_is_readable_on_every_background_in_both_themes() {
        for (name, p) in [("dark", &DARK), ("light", &LIGHT)] {
            let backgrounds = [
                ("panel", p.panel),
                ("window", p.window),
                ("field", p.field),
                ("bubble_in", p.bubble_in),
                ("bubble_out", p.bubble_out),
            ];
            let texts = [
                ("text", p.text),
                ("strong", p.strong),
                ("weak", p.weak),
                ("accent", p.accent),
                ("good", p.good),
                ("warn", p.warn),
                ("error", p.error),
            ];
            for (bg_name, bg) in backgrounds {
                for (text_name, text) in texts {
                    let ratio = contrast(text, bg);
                    assert!(ratio >= AA, "{name}: {text_name} on {bg_name} is {ratio:.2}:1");
                }
            }
            for (what, text, bg) in [
                ("selected text", p.on_selection, p.selection),
                ("the name on a selected row", p.strong, p.selection),
                ("badge", Color32::WHITE, p.badge),
            ] {
                let ratio = contrast(text, bg);
                assert!(ratio >= AA, "{name}: {what} is {ratio:.2}:1");
            }
        }
    }

    #[test]
    fn the_visuals_use_the_palette() {
        for (p, dark) in [(&DARK, true), (&LIGHT, false)] {
            let v = visuals(p, dark);
            assert_eq!((v.text_color(), v.weak_text_color(), v.panel_fill), (p.text, p.weak, p.panel));
            assert_eq!(palette(&v), p);
        }
        assert!((contrast(Color32::BLACK, Color32::WHITE) - 21.0).abs() < 0.01);
    }
}
