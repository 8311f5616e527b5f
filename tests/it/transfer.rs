//! File transfer between real daemons on loopback: trees arrive byte-identical with their
//! structure, names from the wire cannot escape the download folder, existing files are never
//! overwritten, each side can decline or cancel, and a transfer cut off by a killed sender
//! resumes where it stopped and verifies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pigeon::node::TransferInfo;
use pigeon::protocol::ids::{PeerId, TransferId};
use pigeon::protocol::transfer::{Entry, EntryKind};
use pigeon::store::TransferState;
use pigeon::{Command, Event};

use crate::raw::RawPeer;
use crate::util::{Daemon, Net, SHORT};

/// Long enough for hundreds of megabytes in a debug build on a busy 2-core machine.
const LONG: Duration = Duration::from_secs(60);

struct Pair {
    ana: Daemon,
    bo: Daemon,
    bo_downloads: PathBuf,
    ana_flags: Vec<String>,
}

fn pair(net: &Net, dirs: &Path, bo_extra: &[&str]) -> Pair {
    let ana_flags = net.flags(1, 2, &dirs.join("ana"));
    let bo_downloads = dirs.join("bo-downloads");
    let mut bo_flags = net.flags(2, 2, &dirs.join("bo"));
    bo_flags.extend(["--download-dir".into(), bo_downloads.display().to_string()]);
    bo_flags.extend(bo_extra.iter().map(|s| s.to_string()));
    let mut ana = Daemon::start("ana", &ana_flags);
    let bo = Daemon::start("bo", &bo_flags);
    ana.expect_peers(&[bo.id]);
    Pair { ana, bo, bo_downloads, ana_flags }
}

fn offer(daemon: &mut Daemon, to: PeerId, paths: &[PathBuf]) -> TransferInfo {
    daemon.send(&Command::SendFiles { to: vec![to], paths: paths.to_vec(), tag: Some("f".into()) });
    daemon.expect(SHORT, "transfer added", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    })
}

fn incoming(daemon: &mut Daemon) -> TransferInfo {
    daemon.expect(SHORT, "incoming offer", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    })
}

fn accept_next(daemon: &mut Daemon) {
    let offered = incoming(daemon);
    daemon.send(&Command::AcceptTransfer { transfer_id: offered.transfer_id, always: false });
}

fn expect_end(daemon: &mut Daemon, id: TransferId, within: Duration) -> (TransferState, String) {
    daemon.expect(within, "transfer end", |event| match event {
        Event::TransferStateChanged { transfer_id, state, reason }
            if *transfer_id == id && !state.is_live() =>
        {
            Some((*state, reason.clone()))
        }
        _ => None,
    })
}

/// Every file and folder below `root` with its contents (None for folders), sorted.
fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for entry in walk(root) {
        let rel = entry.strip_prefix(root).unwrap().display().to_string();
        let data = entry.is_file().then(|| std::fs::read(&entry).unwrap());
        out.push((rel, data));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

/// Bytes that do not repeat in short cycles, so a misplaced chunk cannot go unnoticed.
fn pattern(len: u32) -> Vec<u8> {
    (0..len).map(|n| n.wrapping_mul(2_654_435_761).to_be_bytes()[1]).collect()
}

fn sample_tree(root: &Path) -> PathBuf {
    let top = root.join("项目 tree");
    std::fs::create_dir_all(top.join("empty")).unwrap();
    std::fs::create_dir_all(top.join("a/b/c")).unwrap();
    std::fs::write(top.join("中文 文件名.txt"), "你好").unwrap();
    std::fs::write(top.join("zero"), "").unwrap();
    let noise = pattern(3_000_000);
    std::fs::write(top.join("a/b/c/noise.bin"), noise).unwrap();
    top
}

#[test]
fn a_tree_arrives_identical_and_existing_names_are_kept() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut p = pair(&net, dirs.path(), &[]);
    let top = sample_tree(dirs.path());

    let sent = offer(&mut p.ana, p.bo.id, std::slice::from_ref(&top));
    let offered = incoming(&mut p.bo);
    assert_eq!(offered.transfer_id, sent.transfer_id);
    assert_eq!((offered.files, offered.folders, offered.total_bytes), (3, 5, 3_000_006));
    assert!(offered.summary.contains("项目 tree"), "{}", offered.summary);
    p.bo.send(&Command::AcceptTransfer { transfer_id: offered.transfer_id, always: false });
    assert_eq!(expect_end(&mut p.bo, sent.transfer_id, LONG).0, TransferState::Completed);
    assert_eq!(expect_end(&mut p.ana, sent.transfer_id, LONG).0, TransferState::Completed);
    assert_eq!(tree(&p.bo_downloads.join("项目 tree")), tree(&top));
    assert!(!p.bo_downloads.join(".pigeon-partial").exists(), "partial files left behind");

    // The same folder again, and a single file twice: nothing is overwritten.
    let file = top.join("中文 文件名.txt");
    for paths in [vec![top.clone()], vec![file.clone()], vec![file]] {
        let sent = offer(&mut p.ana, p.bo.id, &paths);
        accept_next(&mut p.bo);
        assert_eq!(expect_end(&mut p.bo, sent.transfer_id, LONG).0, TransferState::Completed);
    }
    assert_eq!(tree(&p.bo_downloads.join("项目 tree (1)")), tree(&top));
    assert_eq!(std::fs::read_to_string(p.bo_downloads.join("中文 文件名.txt")).unwrap(), "你好");
    assert_eq!(std::fs::read_to_string(p.bo_downloads.join("中文 文件名 (1).txt")).unwrap(), "你好");
}

#[test]
fn decline_and_cancel_from_either_side_are_seen_by_both() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut p = pair(&net, dirs.path(), &[]);
    let file = dirs.path().join("note.txt");
    std::fs::write(&file, "n").unwrap();

    let sent = offer(&mut p.ana, p.bo.id, std::slice::from_ref(&file));
    let offered = incoming(&mut p.bo);
    p.bo.send(&Command::DeclineTransfer { transfer_id: offered.transfer_id });
    assert_eq!(expect_end(&mut p.bo, sent.transfer_id, SHORT).0, TransferState::Declined);
    assert_eq!(expect_end(&mut p.ana, sent.transfer_id, SHORT).0, TransferState::Declined);

    // Sent again after a decline: a new offer of what was picked (a folder stays a folder),
    // which arrives whole once accepted.
    let album = dirs.path().join("Album");
    std::fs::create_dir_all(album.join("2026")).unwrap();
    std::fs::write(album.join("2026/a.jpg"), "a").unwrap();
    let sent = offer(&mut p.ana, p.bo.id, &[album.clone(), file.clone()]);
    let offered = incoming(&mut p.bo);
    p.bo.send(&Command::DeclineTransfer { transfer_id: offered.transfer_id });
    assert_eq!(expect_end(&mut p.ana, sent.transfer_id, SHORT).0, TransferState::Declined);
    p.ana.send(&Command::RetryTransfer { transfer_id: sent.transfer_id });
    let again = incoming(&mut p.bo);
    assert_eq!(incoming(&mut p.ana).transfer_id, again.transfer_id);
    assert_ne!(again.transfer_id, sent.transfer_id);
    assert_eq!(again.entries, offered.entries);
    p.bo.send(&Command::AcceptTransfer { transfer_id: again.transfer_id, always: false });
    assert_eq!(expect_end(&mut p.bo, again.transfer_id, SHORT).0, TransferState::Completed);
    assert_eq!(std::fs::read_to_string(p.bo_downloads.join("Album/2026/a.jpg")).unwrap(), "a");
    assert_eq!(std::fs::read_to_string(p.bo_downloads.join("note.txt")).unwrap(), "n");

    let sent = offer(&mut p.ana, p.bo.id, std::slice::from_ref(&file));
    incoming(&mut p.bo);
    p.ana.send(&Command::CancelTransfer { transfer_id: sent.transfer_id });
    assert_eq!(expect_end(&mut p.ana, sent.transfer_id, SHORT).0, TransferState::Cancelled);
    let (state, reason) = expect_end(&mut p.bo, sent.transfer_id, SHORT);
    assert_eq!(state, TransferState::Cancelled);
    assert!(reason.contains("other side"), "{reason}");

    // The receiver cancels a running transfer: both ends stop, nothing partial is left.
    let big = dirs.path().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(2_000_000_000).unwrap();
    let sent = offer(&mut p.ana, p.bo.id, std::slice::from_ref(&big));
    accept_next(&mut p.bo);
    p.bo.expect(LONG, "some progress", |event| matches!(event, Event::TransferProgress { .. }).then_some(()));
    p.bo.send(&Command::CancelTransfer { transfer_id: sent.transfer_id });
    assert_eq!(expect_end(&mut p.bo, sent.transfer_id, SHORT).0, TransferState::Cancelled);
    assert_eq!(expect_end(&mut p.ana, sent.transfer_id, SHORT).0, TransferState::Cancelled);
    assert!(!p.bo_downloads.join("big.bin").exists());
    assert!(!p.bo_downloads.join(".pigeon-partial").join(sent.transfer_id.to_string()).exists());
}

#[test]
fn a_killed_sender_restarts_and_the_transfer_resumes_where_it_stopped() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let Pair { ana, mut bo, bo_downloads, ana_flags } = pair(&net, dirs.path(), &["--auto-accept"]);
    let mut ana = ana;
    let big = dirs.path().join("big.bin");
    let data = pattern(400_000_000);
    std::fs::write(&big, &data).unwrap();
    let sent = offer(&mut ana, bo.id, std::slice::from_ref(&big));
    // Killed as soon as the first data arrived (the first report comes after the first chunk),
    // so that even a fast machine cannot finish the 400 MB first.
    let received_before_kill = bo.expect(LONG, "first data", |event| match event {
        Event::TransferProgress { progress, .. } if progress.bytes_done > 0 => Some(progress.bytes_done),
        _ => None,
    });
    ana.kill();
    bo.expect(LONG, "interruption", |event| matches!(event, Event::TransferInterrupted { .. }).then_some(()));

    let mut ana = Daemon::start("ana", &ana_flags);
    // The restarted sender serves the rest: its first report starts at the receiver's offset.
    let resumed_from = ana.expect(LONG, "resumed progress", |event| match event {
        Event::TransferProgress { transfer_id, progress } if *transfer_id == sent.transfer_id => {
            Some(progress.bytes_done)
        }
        _ => None,
    });
    assert!(
        resumed_from >= received_before_kill && resumed_from > 0,
        "resumed at {resumed_from}, had {received_before_kill}"
    );
    assert_eq!(expect_end(&mut bo, sent.transfer_id, LONG).0, TransferState::Completed);
    assert_eq!(expect_end(&mut ana, sent.transfer_id, LONG).0, TransferState::Completed);
    assert!(std::fs::read(bo_downloads.join("big.bin")).unwrap() == data, "resumed file differs");
}

fn file(path: &str, size: usize) -> Entry {
    Entry { path: path.into(), kind: EntryKind::File, size: size as u64 }
}

#[test]
fn hostile_names_never_leave_the_download_folder() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let downloads = dirs.path().join("downloads");
    let outside = dirs.path().join("outside");
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, downloads.join("evil")).unwrap();
    let mut flags = net.flags(1, 1, &dirs.path().join("bo"));
    flags.extend(["--download-dir".into(), downloads.display().to_string(), "--auto-accept".into()]);
    let mut bo = Daemon::start("bo", &flags);
    let mut mallory = RawPeer::connect(&net, (net.ip(1), net.port).into(), "mallory");

    // Climbing out is refused outright.
    let id = mallory.offer(vec![file("../../x", 1)]);
    let (state, reason) = expect_end_or_added(&mut bo, id);
    assert_eq!(state, TransferState::Failed);
    assert!(reason.contains("climbs out"), "{reason}");

    // Absolute and drive paths are made relative to the download folder.
    let entries = vec![file("/etc/x", 2), file("C:\\y", 2), file("con", 2)];
    let id = mallory.offer(entries.clone());
    mallory.serve(&entries, b"ok");
    assert_eq!(expect_end(&mut bo, id, SHORT).0, TransferState::Completed);
    assert_eq!(std::fs::read(downloads.join("etc/x")).unwrap(), b"ok");
    assert_eq!(std::fs::read(downloads.join("y")).unwrap(), b"ok");
    assert_eq!(std::fs::read(downloads.join("_con")).unwrap(), b"ok");

    // A symlink planted in the download folder is not followed.
    let entries = vec![file("evil/z", 2)];
    let id = mallory.offer(entries);
    let (state, reason) = expect_end(&mut bo, id, SHORT);
    assert_eq!(state, TransferState::Failed, "{reason}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "wrote through a symlink");

    // 100,000 entries are declined before anything is created (and not even listed).
    let huge: Vec<Entry> = (0..100_000).map(|n| file(&format!("f{n}"), 0)).collect();
    mallory.offer(huge);
    bo.wait_for_stats("oversized offer refused", |stats| stats.offers_refused >= 1);
    assert!(!downloads.join("f0").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// The end of a transfer that may be reported when it is added (refused offers).
fn expect_end_or_added(daemon: &mut Daemon, id: TransferId) -> (TransferState, String) {
    daemon.expect(SHORT, "refused offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.transfer_id == id && !transfer.state.is_live() => {
            Some((transfer.state, transfer.reason.clone()))
        }
        _ => None,
    })
}

/// A small tmpfs mounted for one test and unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|err| err.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk { path: path.to_path_buf() })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the daemon may still hold a file open while the test unwinds.
        std::process::Command::new("umount").arg("-l").arg(&self.path).status().ok();
    }
}

#[test]
fn a_full_disk_fails_the_transfer_on_both_sides_and_the_node_keeps_working() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let disk = match SmallDisk::mount(&dirs.path().join("bo-downloads"), "1m") {
        Ok(disk) => disk,
        Err(reason) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs (needs root): {reason}");
            return;
        }
    };
    let mut p = pair(&net, dirs.path(), &["--auto-accept"]);
    assert_eq!(p.bo_downloads, disk.path);
    let big = dirs.path().join("big.bin");
    std::fs::write(&big, pattern(4_000_000)).unwrap();
    let sent = offer(&mut p.ana, p.bo.id, std::slice::from_ref(&big));
    let (state, reason) = expect_end(&mut p.bo, sent.transfer_id, LONG);
    assert_eq!(state, TransferState::Failed);
    assert!(reason.contains("No space left"), "{reason}");
    let (state, reason) = expect_end(&mut p.ana, sent.transfer_id, LONG);
    assert_eq!(state, TransferState::Failed);
    assert!(reason.contains("No space left"), "{reason}");
    assert!(!p.bo_downloads.join("big.bin").exists(), "a partial file looks complete");
    assert!(!p.bo_downloads.join(".pigeon-partial").join(sent.transfer_id.to_string()).exists());

    p.ana.send(&Command::SendMessage { to: vec![p.bo.id], text: "still there?".into(), tag: None });
    p.bo.expect(SHORT, "a message after the failure", |event| match event {
        Event::MessageReceived { message } if message.text == "still there?" => Some(()),
        _ => None,
    });
}

#[test]
fn a_speed_limit_paces_what_is_sent_by_sleeping_not_spinning() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut pair = pair(&net, dirs.path(), &["--auto-accept"]);
    let sources = dirs.path().join("to send");
    std::fs::create_dir_all(&sources).unwrap();
    let names = ["one.bin", "two.bin"];
    for name in names {
        std::fs::write(sources.join(name), pattern(1 << 20)).unwrap();
    }
    // Each transfer alone may go at 256 KB/s, both together at 384 KB/s: the total binds.
    pair.ana.send(&Command::SetSpeedLimits { per_transfer_kbps: 256, total_kbps: 384 });
    let (cpu_before, started) = (crate::util::cpu_time(pair.ana.pid()), Instant::now());
    let ids: Vec<TransferId> = names
        .iter()
        .map(|name| offer(&mut pair.ana, pair.bo.id, &[sources.join(name)]).transfer_id)
        .collect();
    for _ in &ids {
        let (state, reason) = pair.ana.expect(LONG, "a transfer's end", |event| match event {
            Event::TransferStateChanged { transfer_id, state, reason }
                if ids.contains(transfer_id) && !state.is_live() =>
            {
                Some((*state, reason.clone()))
            }
            _ => None,
        });
        assert_eq!(state, TransferState::Completed, "{reason}");
    }
    let (took, cpu) = (started.elapsed(), crate::util::cpu_time(pair.ana.pid()) - cpu_before);
    // 2 MiB at 384 KB/s is 5.3 s, less the 0.2 s a sender may run ahead.
    assert!(took >= Duration::from_millis(4_800), "2 MiB at 384 KB/s took only {took:?}");
    // Waiting is sleeping: spinning for those seconds would cost as many seconds of CPU.
    assert!(cpu < Duration::from_millis(2_500), "the limited sender used {cpu:?} of CPU in {took:?}");
    for name in names {
        assert_eq!(std::fs::read(pair.bo_downloads.join(name)).unwrap(), pattern(1 << 20), "{name}");
    }
}
