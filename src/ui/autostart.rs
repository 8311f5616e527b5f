//! Starting with the session: an XDG autostart entry (`~/.config/autostart/pigeon.desktop`,
//! which every freedesktop session reads at login) that starts Pigeon hidden in the tray.
//! The entry's presence is the setting: a user who deletes the file has turned it off. Where
//! it goes is `Config::autostart_entry`.

use std::io;
use std::path::Path;

/// Whether the entry at `path` starts Pigeon at login.
pub fn is_on(path: &Path) -> bool {
    path.is_file()
}

/// Writes the entry at `path` (its folder made if need be) to start this program, hidden,
/// on `data_dir`; or removes it.
pub fn set(path: &Path, on: bool, data_dir: &Path) -> io::Result<()> {
    if !on {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        };
    }
    let program = std::env::current_exe()?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, entry(&program, data_dir))
}

/// The entry's text.
fn entry(program: &Path, data_dir: &Path) -> String {
    let exec = [
        quote(&program.to_string_lossy()),
        "--hidden".to_owned(),
        "--data-dir".to_owned(),
        quote(&data_dir.to_string_lossy()),
    ]
    .join(" ");
    format!(
        "[Desktop Entry]\nType=Application\nName=Pigeon\nComment=LAN messenger, started at login\n\
         Exec={exec}\nIcon=pigeon\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

/// An argument of `Exec=` as the Desktop Entry specification wants it: in double quotes,
/// with `"`, `` ` ``, `$` and `\` escaped, and `%` doubled (field codes start with it).
fn quote(arg: &str) -> String {
    let mut quoted = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            // A line break would end the key; no real path holds one.
            '\n' | '\r' => quoted.push(' '),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_pigeon_hidden_on_its_data_folder_and_quotes_odd_paths() {
        let text = entry(Path::new("/opt/my apps/pigeon"), Path::new("/home/ana/100% \"data\"/$x"));
        assert!(text.starts_with("[Desktop Entry]\n"), "{text}");
        let exec = text.lines().find_map(|line| line.strip_prefix("Exec=")).unwrap();
        assert_eq!(exec, r#""/opt/my apps/pigeon" --hidden --data-dir "/home/ana/100%% \"data\"/\$x""#);
    }

    #[test]
    fn the_setting_writes_and_removes_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autostart/pigeon.desktop");
        assert!(!is_on(&path));
        set(&path, true, dir.path()).unwrap();
        assert!(is_on(&path));
        assert!(std::fs::read_to_string(&path).unwrap().contains("--hidden"));
        set(&path, false, dir.path()).unwrap();
        assert!(!is_on(&path));
        set(&path, false, dir.path()).unwrap();
    }
}
