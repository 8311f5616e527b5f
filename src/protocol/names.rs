//! Turning hostile path names from the wire into safe relative paths, the same for native and
//! IP Messenger peers. Pure string work: the node still refuses to follow symlinks when it
//! creates the result on disk.

use thiserror::Error;

/// Longest file or folder name we create, in bytes: the limit of ext4, NTFS and APFS.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Deepest folder nesting accepted in an offer.
pub const MAX_DEPTH: usize = 64;

/// Names Windows reserves for devices, in any case and with any extension.
const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Why a path from the wire is refused outright (rather than cleaned).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// A `..` component: an attempt to leave the target folder.
    #[error("path {0:?} climbs out of its folder")]
    ParentComponent(String),
    /// Nothing is left of the name after cleaning.
    #[error("path {0:?} has no usable name")]
    Empty(String),
    /// More folder levels than [`MAX_DEPTH`].
    #[error("path {0:?} is nested deeper than {MAX_DEPTH} levels")]
    TooDeep(String),
}

/// Splits a wire path into safe components: no root, drive letter, `.` or empty components,
/// no control or Windows-reserved characters, no reserved device names, no trailing dots or
/// spaces, each at most [`MAX_COMPONENT_BYTES`]. A `..` anywhere refuses the whole path.
pub fn sanitize_path(wire: &str) -> Result<Vec<String>, NameError> {
    let mut components = Vec::new();
    for (position, raw) in wire.split(['/', '\\']).enumerate() {
        let is_drive = position == 0
            && raw.len() == 2
            && raw.ends_with(':')
            && raw.starts_with(|c: char| c.is_ascii_alphabetic());
        if raw.is_empty() || raw == "." || is_drive {
            continue;
        }
        if raw == ".." {
            return Err(NameError::ParentComponent(wire.to_owned()));
        }
        components.push(sanitize_component(raw));
    }
    if components.is_empty() {
        return Err(NameError::Empty(wire.to_owned()));
    }
    if components.len() > MAX_DEPTH {
        return Err(NameError::TooDeep(wire.to_owned()));
    }
    Ok(components)
}

/// Characters that change how text around them is displayed without being seen: bidi
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, marks U+200E, U+200F,
/// U+061C) and zero-width ones (U+200B–U+200D, U+2060–U+2064, U+FEFF). In a file name they
/// make `bidi-\u{202e}txt.exe` display as `bidi-exe.txt`.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

/// A wire path as consumers are shown it: its sanitized components joined by `/`, exactly
/// the place it gets below the download folder; a path refused outright is shown escaped
/// (`\u{1b}`, `\u{202e}`), so that no terminal or window interprets what a peer sent.
pub fn display_path(wire: &str) -> String {
    match sanitize_path(wire) {
        Ok(components) => components.join("/"),
        Err(_) => wire.chars().flat_map(char::escape_debug).collect(),
    }
}

/// Cleans one file or folder name; never empty, never `.` or `..`. Control characters (C0,
/// DEL, C1) and [invisible format characters](is_invisible_format) are removed; characters
/// Windows forbids become `_`.
pub fn sanitize_component(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '/' | '\\') { '_' } else { c })
        .collect();
    let mut name = cleaned.trim_end_matches(['.', ' ']).to_owned();
    if name.is_empty() || name == "." || name == ".." {
        name = String::from("_");
    }
    let stem = name.split('.').next().unwrap_or_default();
    if WINDOWS_RESERVED.iter().any(|reserved| stem.eq_ignore_ascii_case(reserved)) {
        name.insert(0, '_');
    }
    truncate_keeping_extension(&name, MAX_COMPONENT_BYTES)
}

/// `name` with " (n)" before its extension: how a second file of the same name is saved.
pub fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = split_extension(name);
    truncate_keeping_extension(&format!("{stem} ({n}){ext}"), MAX_COMPONENT_BYTES)
}

/// Splits "photo.jpg" into ("photo", ".jpg"); a leading dot is not an extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = max.saturating_sub(ext.len()).min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", stem.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bidi_zero_width_and_escape_sequences_never_reach_a_name() {
        assert_eq!(sanitize_component("bidi-\u{202e}txt.exe"), "bidi-txt.exe");
        assert_eq!(sanitize_component("a\u{200b}b\u{feff}c\u{2066}d\u{2069}"), "abcd");
        assert_eq!(sanitize_component("\u{1b}[2Jx\u{0}y\u{9b}z"), "[2Jxyz");
        assert_eq!(sanitize_component("\u{202e}\u{200b}"), "_", "nothing left: a placeholder");
        assert_eq!(display_path("dir/\u{1b}[2Jevil\u{202e}txt.exe"), "dir/[2Jeviltxt.exe");
        assert_eq!(display_path("../\u{1b}[2J"), "../\\u{1b}[2J", "refused: shown escaped");
        assert_eq!(display_path("C:x.txt"), "C_x.txt");
        assert_eq!(display_path("/x.txt"), "x.txt");
    }

    #[test]
    fn keeps_ordinary_and_non_ascii_names() {
        assert_eq!(sanitize_path("中文 文件名.txt").unwrap(), ["中文 文件名.txt"]);
        assert_eq!(sanitize_path("Photos/2026/.hidden").unwrap(), ["Photos", "2026", ".hidden"]);
    }

    #[test]
    fn strips_roots_drives_and_dots() {
        assert_eq!(sanitize_path("/etc/x").unwrap(), ["etc", "x"]);
        assert_eq!(sanitize_path("C:\\x").unwrap(), ["x"]);
        assert_eq!(sanitize_path("a/./b//c").unwrap(), ["a", "b", "c"]);
        assert_eq!(sanitize_path("\\\\server\\share\\f").unwrap(), ["server", "share", "f"]);
    }

    #[test]
    fn refuses_parent_components_and_empty_names() {
        assert!(matches!(sanitize_path("../../x"), Err(NameError::ParentComponent(_))));
        assert!(matches!(sanitize_path("a/../../x"), Err(NameError::ParentComponent(_))));
        assert!(matches!(sanitize_path("a\\..\\x"), Err(NameError::ParentComponent(_))));
        assert!(matches!(sanitize_path("/"), Err(NameError::Empty(_))));
        assert!(matches!(sanitize_path(""), Err(NameError::Empty(_))));
        assert!(matches!(sanitize_path(&"d/".repeat(MAX_DEPTH + 1)), Err(NameError::TooDeep(_))));
    }

    #[test]
    fn cleans_control_reserved_and_trailing_characters() {
        assert_eq!(sanitize_component("a\u{0}b\nc"), "abc");
        assert_eq!(sanitize_component("what?<now>"), "what__now_");
        assert_eq!(sanitize_component("name. . "), "name");
        assert_eq!(sanitize_component("..."), "_");
        assert_eq!(sanitize_component("con"), "_con");
        assert_eq!(sanitize_component("LPT1.txt"), "_LPT1.txt");
        assert_eq!(sanitize_component("console"), "console");
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.jpg", "照".repeat(200));
        let cut = sanitize_component(&long);
        assert!(cut.len() <= MAX_COMPONENT_BYTES);
        assert!(cut.ends_with(".jpg"));
    }

    #[test]
    fn numbered_names() {
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered(".bashrc", 2), ".bashrc (2)");
        assert_eq!(numbered("Photos", 3), "Photos (3)");
    }

    proptest! {
        #[test]
        fn sanitized_components_are_always_safe(wire in "\\PC{0,80}") {
            if let Ok(components) = sanitize_path(&wire) {
                for component in components {
                    prop_assert!(!component.is_empty() && component != "." && component != "..");
                    prop_assert!(!component.contains(['/', '\\', '\0']));
                    prop_assert!(component.len() <= MAX_COMPONENT_BYTES);
                }
            }
        }
    }
}
