//! The headless subcommands as a user runs them: exit codes, handoff to a node already
//! running on the same data folder, and clear messages when something is wrong.

use std::process::{Command as Process, Output};

use pigeon::Event;

use crate::util::{Daemon, Net, SHORT, pigeon_bin};

fn pigeon(args: &[String]) -> Output {
    Process::new(pigeon_bin()).args(args).env("RUST_LOG", "warn").output().expect("pigeon runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn args(flags: &[String], rest: &[&str]) -> Vec<String> {
    flags.iter().cloned().chain(rest.iter().map(|s| s.to_string())).collect()
}

#[test]
fn send_exits_zero_once_delivered_and_one_when_the_peer_is_absent() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let mut bo = Daemon::start("bo", &net.flags(1, 2, &dirs.path().join("bo")));
    // A one-shot node of its own on address 2, finding Bo through its target.
    let cli_flags = net.flags(2, 2, &dirs.path().join("cli"));
    let out = pigeon(&args(&cli_flags, &["send", "bo", "hello from the shell"]));
    assert!(out.status.success(), "stdout {} stderr {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("delivered to bo"));
    bo.expect(SHORT, "the message", |event| match event {
        Event::MessageReceived { message } if message.text == "hello from the shell" => Some(()),
        _ => None,
    });

    let out = pigeon(&args(&cli_flags, &["send", "--wait", "0.5", "nobody", "hi"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no peer \"nobody\" found") && stderr.contains("bo"), "{stderr}");

    let long = "x".repeat(70_000);
    let out = pigeon(&args(&cli_flags, &["send", "bo", &long]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("limit is 65536"), "{}", text(&out.stderr));
}

#[test]
fn commands_hand_over_to_the_node_running_on_the_same_data_folder() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_flags = net.flags(1, 2, &dirs.path().join("ana"));
    let mut ana = Daemon::start("ana", &ana_flags);
    let bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);

    let out = pigeon(&args(&ana_flags, &["peers", "--json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let peers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &peers.as_array().unwrap()[0];
    for field in ["id", "name", "group", "host", "addr", "port", "status"] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert_eq!(first["name"], "bo");

    let out = pigeon(&args(&ana_flags, &["send", "bo", "through the running node"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The running daemon sent it: its own event stream shows the message.
    ana.expect(SHORT, "handed-over message", |event| match event {
        Event::MessageQueued { message, .. } if message.text == "through the running node" => Some(()),
        _ => None,
    });

    let out = pigeon(&args(&ana_flags, &["daemon"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already running"), "{}", text(&out.stderr));
}

#[test]
fn without_a_display_the_window_fails_clearly_before_the_node_starts() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let out = Process::new(pigeon_bin())
        .args(net.flags(1, 1, dir.path()))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot open the window"), "{}", text(&out.stderr));
    assert!(!dir.path().join("identity.key").exists(), "the node never started");
}

#[test]
fn send_file_exits_zero_once_verified_and_explains_failures() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let downloads = dirs.path().join("downloads");
    let mut bo_flags = net.flags(1, 2, &dirs.path().join("bo"));
    bo_flags.extend(["--auto-accept".into(), "--download-dir".into(), downloads.display().to_string()]);
    let _bo = Daemon::start("bo", &bo_flags);
    let cli_flags = net.flags(2, 2, &dirs.path().join("cli"));
    let file = dirs.path().join("报告.txt");
    std::fs::write(&file, "quarterly").unwrap();

    let out = pigeon(&args(&cli_flags, &["send-file", "bo", file.to_str().unwrap()]));
    assert!(out.status.success(), "stdout {} stderr {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("verified"), "{}", text(&out.stdout));
    assert_eq!(std::fs::read_to_string(downloads.join("报告.txt")).unwrap(), "quarterly");

    let missing = dirs.path().join("missing.txt");
    let out = pigeon(&args(&cli_flags, &["send-file", "bo", missing.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.txt"), "{}", text(&out.stderr));
}

#[test]
fn the_manual_page_is_generated_from_the_command_line_definition() {
    let out = Process::new(pigeon_bin()).arg("man").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie") && page.contains(".TH pigeon 1"), "{page}");
    assert!(page.contains("send\\-file") && page.contains("\\-\\-no\\-ipmsg"), "{page}");
    let help = Process::new(pigeon_bin()).arg("--help").output().unwrap();
    assert!(!text(&help.stdout).contains(" man "), "the man subcommand stays hidden");
}

#[test]
fn rooms_from_the_shell_create_post_list_and_read() {
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();
    let ana_flags = net.flags(1, 2, &dirs.path().join("ana"));
    let mut ana = Daemon::start("ana", &ana_flags);
    let mut bo = Daemon::start("bo", &net.flags(2, 2, &dirs.path().join("bo")));
    ana.expect_peers(&[bo.id]);

    let out = pigeon(&args(&ana_flags, &["room", "create", "Sales", "bo"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Sales"), "{}", text(&out.stdout));
    let out = pigeon(&args(&ana_flags, &["room", "send", "Sales", "quarter closed"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    bo.expect(SHORT, "the post", |event| match event {
        Event::RoomPosted { post, .. } if post.text == "quarter closed" => Some(()),
        _ => None,
    });
    let report = dirs.path().join("q3.txt");
    std::fs::write(&report, "numbers").unwrap();
    let out = pigeon(&args(&ana_flags, &["room", "files", "Sales", &report.display().to_string()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    bo.expect(SHORT, "the room's file offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.room.is_some() => Some(()),
        _ => None,
    });
    let out = pigeon(&args(&ana_flags, &["room", "list"]));
    assert!(text(&out.stdout).contains("Sales  2 members, 2 posts"), "{}", text(&out.stdout));
    let out = pigeon(&args(&ana_flags, &["room", "history", "Sales"]));
    let history = text(&out.stdout);
    assert!(history.contains("quarter closed") && history.contains("[1 file: q3.txt]"), "{history}");
    let out = pigeon(&args(&ana_flags, &["room", "send", "Nowhere", "hi"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no room \"Nowhere\""), "{}", text(&out.stderr));
    let out = pigeon(&args(&ana_flags, &["room", "remove", "Sales", "bo"]));
    assert!(out.status.success() && text(&out.stdout).contains("1 members"), "{}", text(&out.stdout));
}
