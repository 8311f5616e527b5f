//! A real iptux (Debian package) on a private Xvfb display in one namespace of a lab, Pigeon
//! in another: each finds the other by broadcast, a Pigeon message reaches iptux, is
//! acknowledged and lands in iptux's chat log, and iptux's goodbye (Ctrl+Q) removes it from
//! Pigeon's list. Needs root (namespaces) and iptux; without them it says why and skips,
//! except that CI must have iptux.

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use pigeon::store::{MessageState, Trust};
use pigeon::{Command, Event};

use crate::lab::{Lab, lab_or_skip};
use crate::util::{Daemon, SHORT};
use crate::xvfb::Xvfb;

/// iptux in lab host 0, killed (if still running) when dropped.
struct Iptux {
    child: Child,
    display: String,
}

impl Iptux {
    fn start(lab: &Lab, xvfb: &Xvfb, home: &Path) -> Iptux {
        std::fs::create_dir_all(home.join(".iptux")).unwrap();
        // iptux opens its chat log before creating the folder it lives in.
        std::fs::create_dir_all(home.join(".config/iptux/log")).unwrap();
        std::fs::write(
            home.join(".iptux/config.json"),
            r#"{"nick_name":"iptux-A","belong_group":"grpA","preference_encode":"utf-8","candidacy_encode":"gb18030,utf-16"}"#,
        )
        .unwrap();
        let child = Process::new("ip")
            .args(["netns", "exec", &lab.host(0), "iptux"])
            .env("HOME", home)
            .env("DISPLAY", &xvfb.display)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        Iptux { child, display: xvfb.display.clone() }
    }

    /// Quits the way a user does (Ctrl+Q in its window), which makes it say goodbye.
    fn quit(&mut self) {
        let deadline = Instant::now() + SHORT;
        let window = loop {
            let out = Process::new("xdotool")
                .args(["search", "--onlyvisible", "--name", "iptux"])
                .env("DISPLAY", &self.display)
                .output()
                .expect("xdotool is installed");
            if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().next() {
                break id.to_owned();
            }
            assert!(Instant::now() < deadline, "iptux's window did not appear");
            std::thread::park_timeout(Duration::from_millis(100));
        };
        for args in [vec!["windowfocus", "--sync", &window], vec!["key", "ctrl+q"]] {
            let status = Process::new("xdotool").args(args).env("DISPLAY", &self.display).status().unwrap();
            assert!(status.success());
        }
    }
}

impl Drop for Iptux {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn iptux_installed() -> bool {
    let found =
        Process::new("iptux").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI must install iptux (scripts/install-deps.sh)");
        eprintln!("SKIPPED: iptux is not installed");
    }
    found
}

#[test]
fn iptux_and_pigeon_find_each_other_talk_and_say_goodbye() {
    if !iptux_installed() {
        return;
    }
    let Some(lab) = lab_or_skip("x", 2) else { return };
    let Some(xvfb) = Xvfb::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let home = dirs.path().join("iptux-home");
    let mut iptux = Iptux::start(&lab, &xvfb, &home);
    let flags = vec!["--data-dir".into(), dirs.path().join("pigeon").display().to_string()];
    let mut pigeon = Daemon::start_with("pigeon-x", &lab.exec(1), &flags);

    // Whoever started second, the entry exchange lists iptux in Pigeon.
    let peer = pigeon.expect(SHORT, "iptux", |event| match event {
        Event::PeerJoined { peer } if peer.client.is_some() => Some(peer.clone()),
        _ => None,
    });
    assert_eq!((peer.name.as_str(), peer.group.as_str()), ("iptux-A", "grpA"));
    assert!(peer.client.as_deref().is_some_and(|c| c.starts_with("iptux")), "{:?}", peer.client);
    assert_eq!((peer.trust, peer.addr.as_str()), (Trust::Unencrypted, lab.addr(0).as_str()));

    let text = "你好 iptux, from Pigeon";
    pigeon.send(&Command::SendMessage { to: vec![peer.id], text: text.into(), tag: None });
    pigeon.expect(SHORT, "iptux's acknowledgement", |event| match event {
        Event::MessageStateChanged { state: MessageState::Delivered, peer: to, .. } if *to == peer.id => {
            Some(())
        }
        _ => None,
    });
    // iptux logs what it displayed.
    let log = home.join(".config/iptux/log/communicate.log");
    let deadline = Instant::now() + SHORT;
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "iptux's chat log lacks the message: {:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }

    iptux.quit();
    pigeon.expect(SHORT, "iptux leaving", |event| match event {
        Event::PeerLeft { id, .. } if *id == peer.id => Some(()),
        _ => None,
    });
}
