//! Fonts that draw Chinese, Japanese and Korean: egui's built-in fonts have no CJK glyphs, so
//! a system CJK font is added as a fallback behind them.
//!
//! Looked up in this order: the file named by `PIGEON_CJK_FONT` (`none` turns the lookup
//! off), then the usual places of Noto Sans CJK, WenQuanYi and Droid Sans Fallback on Linux
//! distributions, Microsoft YaHei on Windows and PingFang on macOS. Without any of them CJK
//! text shows as boxes; README says which package to install.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui::{self, FontData, FontDefinitions, FontFamily};

/// Environment variable naming a font file to use for CJK text, or `none`.
pub const CJK_FONT_VAR: &str = "PIGEON_CJK_FONT";

/// Known CJK fonts with the index of the Simplified Chinese face inside collections.
const CANDIDATES: &[(&str, u32)] = &[
    // Debian/Ubuntu fonts-noto-cjk: the collection holds JP, KR, SC, TC, HK in this order.
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf", 0),
    ("C:\\Windows\\Fonts\\msyh.ttc", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
];

/// Name of the CJK font inside egui's font definitions.
const CJK: &str = "cjk-fallback";

/// The CJK font file that will be used, if any.
pub fn find_cjk_font() -> Option<(PathBuf, u32)> {
    match std::env::var_os(CJK_FONT_VAR) {
        Some(value) if value == "none" => None,
        Some(value) if !value.is_empty() => Some((PathBuf::from(value), 0)),
        _ => CANDIDATES
            .iter()
            .map(|(path, index)| (Path::new(path), *index))
            .find(|(path, _)| path.is_file())
            .map(|(path, index)| (path.to_path_buf(), index)),
    }
}

/// Adds the system's CJK font (if there is one) behind egui's fonts; returns its path.
pub fn install(ctx: &egui::Context) -> Option<PathBuf> {
    let (path, index) = find_cjk_font()?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => {
            log::warn!("cannot read CJK font {}: {err}; CJK text will show as boxes", path.display());
            return None;
        }
    };
    let mut fonts = FontDefinitions::default();
    let mut data = FontData::from_owned(bytes);
    data.index = index;
    fonts.font_data.insert(CJK.to_owned(), Arc::new(data));
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts.families.entry(family).or_default().push(CJK.to_owned());
    }
    ctx.set_fonts(fonts);
    log::info!("CJK font: {}", path.display());
    Some(path)
}
