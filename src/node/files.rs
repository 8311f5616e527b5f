//! Files on disk for transfers: listing what a user offers (sender side) and placing what
//! arrives (receiver side) without following symlinks and without overwriting anything.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::protocol::ids::TransferId;
use crate::protocol::names::numbered;
use crate::protocol::transfer::{Entry, EntryKind, MAX_OFFER_ENTRIES};

/// Folder inside the download folder holding partial files, one subfolder per transfer.
/// Partial data never sits where a finished file would, so it cannot pass for one.
pub const STAGING_DIR: &str = ".pigeon-partial";

/// Folder of a transfer's partial files.
pub fn staging_dir(download_dir: &Path, id: TransferId) -> PathBuf {
    download_dir.join(STAGING_DIR).join(id.to_string())
}

/// Removes a transfer's staging folder, and the folder of all staging folders unless other
/// transfers still use it.
pub fn remove_staging(staging: &Path) {
    fs::remove_dir_all(staging).ok();
    if let Some(parent) = staging.parent() {
        fs::remove_dir(parent).ok();
    }
}

/// Attempts at finding a free "name (n).ext" before giving up.
const MAX_NUMBERED: u32 = 10_000;

/// What a user offers: wire entries and the local file behind each.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Entries in the order their data is sent; a folder precedes its contents.
    pub entries: Vec<Entry>,
    /// Local path of each entry.
    pub sources: Vec<PathBuf>,
}

/// Lists files and folders (recursively, sorted by name) for an offer. Symlinks and special
/// files are skipped: following them could send files the user did not pick.
pub fn scan(paths: &[PathBuf]) -> io::Result<Scanned> {
    let mut scanned = Scanned::default();
    for path in paths {
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no file name", path.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(path)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
        add(&mut scanned, path, name, &meta)?;
    }
    Ok(scanned)
}

fn add(scanned: &mut Scanned, path: &Path, wire: String, meta: &fs::Metadata) -> io::Result<()> {
    if scanned.entries.len() >= MAX_OFFER_ENTRIES {
        return Err(io::Error::other(format!(
            "more than {MAX_OFFER_ENTRIES} files and folders in one offer"
        )));
    }
    if meta.is_file() {
        scanned.entries.push(Entry { path: wire, kind: EntryKind::File, size: meta.len() });
        scanned.sources.push(path.to_path_buf());
    } else if meta.is_dir() {
        scanned.entries.push(Entry { path: wire.clone(), kind: EntryKind::Dir, size: 0 });
        scanned.sources.push(path.to_path_buf());
        let mut children: Vec<fs::DirEntry> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
        children.sort_by_key(fs::DirEntry::file_name);
        for child in children {
            let child_wire = format!("{wire}/{}", child.file_name().to_string_lossy());
            add(scanned, &child.path(), child_wire, &child.metadata()?)?;
        }
    } else {
        log::info!("not offering {}: not a regular file or folder", path.display());
    }
    Ok(())
}

/// Walks `components` below `root`, creating missing folders and refusing anything on the
/// way that is not a real folder (a symlink planted there could lead outside `root`). The
/// download folder `root` itself is created if missing (first use of the default, or a new
/// folder chosen in the settings).
pub fn ensure_dir(root: &Path, components: &[String]) -> io::Result<PathBuf> {
    fs::create_dir_all(root)?;
    let mut current = root.to_path_buf();
    for component in components {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a folder", current.display()),
                ));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => match fs::create_dir(&current) {
                Ok(()) => {}
                // Created by someone else meanwhile: check it on the next pass.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    return ensure_dir(root, components);
                }
                Err(err) => return Err(err),
            },
            Err(err) => return Err(err),
        }
    }
    Ok(current)
}

/// Reserves a fresh top-level folder for an incoming folder: `name`, else `name (1)`, ...
pub fn reserve_folder(root: &Path, name: &str) -> io::Result<String> {
    fs::create_dir_all(root)?;
    for n in 0..MAX_NUMBERED {
        let candidate = if n == 0 { name.to_owned() } else { numbered(name, n) };
        match fs::create_dir(root.join(&candidate)) {
            Ok(()) => return Ok(candidate),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(format!("no free name for folder {name:?}")))
}

/// Maps an entry's sanitized components to its local place, applying the folder names chosen
/// at accept time.
pub fn local_components(components: &[String], root_names: &BTreeMap<String, String>) -> Vec<String> {
    let mut local = components.to_vec();
    if let Some(first) = local.first_mut()
        && let Some(renamed) = root_names.get(first.as_str())
    {
        first.clone_from(renamed);
    }
    local
}

/// For a top-level file (`place` of one component) that `place_file` put at `placed` under
/// another name: the name offered and the one it got.
pub fn renamed_top(place: &[String], placed: &Path) -> Option<(String, String)> {
    let [offered] = place else { return None };
    let local = placed.file_name()?.to_string_lossy().into_owned();
    (local != *offered).then(|| (offered.clone(), local))
}

/// Moves a verified partial file into place under `root`, never overwriting: an existing
/// name gets " (n)" added. Returns where the file went.
pub fn place_file(root: &Path, components: &[String], part: &Path) -> io::Result<PathBuf> {
    let (name, folders) = components.split_last().ok_or_else(|| io::Error::other("empty path"))?;
    let parent = ensure_dir(root, folders)?;
    for n in 0..MAX_NUMBERED {
        let candidate = parent.join(if n == 0 { name.clone() } else { numbered(name, n) });
        // A hard link fails when the name exists (even as a dangling symlink): no clobbering.
        match fs::hard_link(part, &candidate) {
            Ok(()) => {
                fs::remove_file(part)?;
                return Ok(candidate);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            // File systems without hard links (FAT): check, then rename.
            Err(_) if fs::symlink_metadata(&candidate).is_err() => {
                fs::rename(part, &candidate)?;
                return Ok(candidate);
            }
            Err(_) => {}
        }
    }
    Err(io::Error::other(format!("no free name for {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_file_lands_in_a_download_folder_that_did_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not yet").join("Downloads");
        let part = dir.path().join("x.part");
        fs::write(&part, b"x").unwrap();
        let placed = place_file(&root, &names(&["sub", "x.txt"]), &part).unwrap();
        assert_eq!(placed, root.join("sub").join("x.txt"));
        assert_eq!(fs::read(placed).unwrap(), b"x");
    }

    fn names(components: &[&str]) -> Vec<String> {
        components.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn scan_lists_folders_before_their_sorted_contents_and_keeps_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        fs::create_dir_all(top.join("empty")).unwrap();
        fs::create_dir_all(top.join("b")).unwrap();
        fs::write(top.join("b/2.txt"), "22").unwrap();
        fs::write(top.join("a.txt"), "1").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", top.join("link")).unwrap();
        let scanned = scan(&[top]).unwrap();
        let listed: Vec<(&str, u64)> = scanned.entries.iter().map(|e| (e.path.as_str(), e.size)).collect();
        assert_eq!(
            listed,
            [("top", 0), ("top/a.txt", 1), ("top/b", 0), ("top/b/2.txt", 2), ("top/empty", 0)]
        );
    }

    #[test]
    fn placing_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..3 {
            let part = dir.path().join(format!("part{n}"));
            fs::write(&part, format!("v{n}")).unwrap();
            place_file(dir.path(), &names(&["docs", "a.txt"]), &part).unwrap();
        }
        assert_eq!(fs::read_to_string(dir.path().join("docs/a.txt")).unwrap(), "v0");
        assert_eq!(fs::read_to_string(dir.path().join("docs/a (2).txt")).unwrap(), "v2");
    }

    #[test]
    fn symlinked_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        let part = dir.path().join("part");
        fs::write(&part, "x").unwrap();
        assert!(place_file(dir.path(), &names(&["evil", "x"]), &part).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn reserved_folders_get_fresh_names() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(reserve_folder(dir.path(), "Photos").unwrap(), "Photos");
        assert_eq!(reserve_folder(dir.path(), "Photos").unwrap(), "Photos (1)");
        let renamed = BTreeMap::from([("Photos".to_string(), "Photos (1)".to_string())]);
        assert_eq!(local_components(&names(&["Photos", "a.jpg"]), &renamed), ["Photos (1)", "a.jpg"]);
    }
}
