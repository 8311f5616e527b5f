//! Pigeon and LocalSend devices. The device is `localsendd` from PyPI (a LocalSend v2.2
//! daemon someone else wrote, with a control socket; installed by scripts/install-deps.sh)
//! in one namespace of a lab, Pigeon in another, on a bridge that carries multicast: each
//! finds the other, and files, a folder and a text go both ways, declined and cancelled as
//! the users choose. What no implementation on PyPI sends — a text message, folders,
//! hostile names, wrong PINs — comes from `localsend_sender.py`, a sender written to the
//! protocol on Python's own TLS. Needs root (namespaces); CI must have localsendd.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use pigeon::node::PeerInfo;
use pigeon::node::ending::Ending;
use pigeon::protocol::Family;
use pigeon::store::{MessageState, TransferState};
use pigeon::{Command, Event};
use serde_json::{Value, json};

use crate::lab::{Lab, lab_or_skip};
use crate::util::{Daemon, SHORT};

/// localsendd as installed by scripts/install-deps.sh.
fn localsendd_bin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".test-peers/bin/localsendd");
    if bin.exists() {
        return Some(bin);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must install localsendd (scripts/install-deps.sh)");
    eprintln!("SKIPPED: localsendd is not installed (bash scripts/install-deps.sh)");
    None
}

/// A lab whose hosts route multicast onto the bridge (they have no default route).
fn lab(tag: &str) -> Option<Lab> {
    let lab = lab_or_skip(tag, 2)?;
    for i in 0..2 {
        lab.ip_in(i, &["route", "add", "224.0.0.0/4", "dev", "eth0"]);
    }
    Some(lab)
}

/// localsendd in lab host 0 with its control socket; killed when dropped.
struct Localsendd {
    child: Child,
    control: UnixStream,
    states: Receiver<Value>,
    last_id: u64,
    downloads: PathBuf,
    /// The last offer and result taken, so that states repeating them are not taken again.
    last_session: Option<String>,
    last_result: Option<String>,
}

impl Localsendd {
    fn start(bin: &Path, lab: &Lab, home: &Path) -> Localsendd {
        Localsendd::start_with(bin, lab, home, &[])
    }

    /// With more of localsendd's flags (`--pin`, say).
    fn start_with(bin: &Path, lab: &Lab, home: &Path, extra: &[&str]) -> Localsendd {
        let downloads = home.join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let socket = home.join("ctl.sock");
        let child = Process::new("ip")
            .args(["netns", "exec", &lab.host(0)])
            .arg(bin)
            .args([
                "--alias",
                "Lin's Phone",
                "--device-type",
                "mobile",
                "--no-log-time",
                "--log-level",
                "debug",
            ])
            .args(extra)
            .arg("--download-dir")
            .arg(&downloads)
            .arg("--socket")
            .arg(&socket)
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", home)
            .stdout(std::fs::File::create(home.join("localsendd.log")).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("localsendd starts");
        let deadline = Instant::now() + SHORT;
        let control = loop {
            if let Ok(control) = UnixStream::connect(&socket) {
                break control;
            }
            assert!(Instant::now() < deadline, "localsendd's control socket did not appear");
            std::thread::park_timeout(Duration::from_millis(50));
        };
        // Its frames arrive on their own; the test takes the states it waits for.
        #[expect(clippy::disallowed_methods, reason = "a test buffer that must never push back")]
        let (tx, states) = crossbeam_channel::unbounded();
        let reader = control.try_clone().unwrap();
        let spawned = std::thread::Builder::new().name("it-localsendd-control".into()).spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let frame: Value = serde_json::from_str(&line).unwrap();
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        spawned.unwrap();
        Localsendd { child, control, states, last_id: 0, downloads, last_session: None, last_result: None }
    }

    /// Calls a control method (its answer arrives among the frames; the tests wait on states).
    fn call(&mut self, method: &str, params: &Value) {
        self.last_id += 1;
        let line = json!({"id": self.last_id, "method": method, "params": params}).to_string();
        writeln!(self.control, "{line}").unwrap();
    }

    /// Waits for a state frame (or an answer) that `pick` takes something from.
    fn expect<T>(&mut self, what: &str, pick: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + SHORT * 3;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame =
                self.states.recv_timeout(left).unwrap_or_else(|_| panic!("localsendd: {what} not seen"));
            let data = if frame["type"] == "state" { &frame["data"] } else { &frame };
            if let Some(found) = pick(data) {
                return found;
            }
        }
    }

    /// Waits for the next transfer to end with the result `kind` ("received", "sent"…).
    fn expect_result(&mut self, kind: &str) -> Value {
        let last = self.last_result.clone();
        let result = self.expect(&format!("result {kind}"), |state| {
            let fresh = state["result"]["id"].as_str().is_some_and(|id| Some(id) != last.as_deref());
            (fresh && state["result"]["kind"] == kind).then(|| state["result"].clone())
        });
        self.last_result = result["id"].as_str().map(str::to_owned);
        result
    }

    /// Waits for the next offer to the phone; answers it (`accept` or not).
    fn answer_offer(&mut self, accept: bool) {
        let last = self.last_session.clone();
        let session = self.expect("an offer", |state| {
            state["incoming"]["sessionId"]
                .as_str()
                .filter(|id| Some(*id) != last.as_deref())
                .map(str::to_owned)
        });
        self.call("confirm_receive", &json!({"sessionId": session, "confirmed": accept}));
        self.last_session = Some(session);
    }
}

impl Drop for Localsendd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn pigeon_in(lab: &Lab, dir: &Path, extra: &[&str]) -> Daemon {
    let mut flags = vec![
        "--data-dir".to_owned(),
        dir.join("data").display().to_string(),
        "--download-dir".to_owned(),
        dir.join("downloads").display().to_string(),
        "--no-ipmsg".to_owned(),
    ];
    flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    Daemon::start_with("pigeon-ls", &lab.exec(1), &flags)
}

fn expect_device(pigeon: &mut Daemon) -> PeerInfo {
    pigeon.expect(SHORT * 2, "the LocalSend device", |event| match event {
        Event::PeerJoined { peer } if peer.family == Family::LocalSend => Some(peer.clone()),
        _ => None,
    })
}

fn offer_from(pigeon: &mut Daemon, peer: &PeerInfo) -> pigeon::node::TransferInfo {
    pigeon.expect(SHORT * 3, "an offer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.peer == peer.id => Some(transfer.clone()),
        _ => None,
    })
}

fn ends(pigeon: &mut Daemon, id: pigeon::protocol::ids::TransferId) -> (TransferState, String) {
    pigeon.expect(SHORT * 3, "the transfer's end", |event| match event {
        Event::TransferStateChanged { transfer_id, state, reason }
            if *transfer_id == id && !state.is_live() =>
        {
            Some((*state, reason.clone()))
        }
        _ => None,
    })
}

#[test]
fn a_localsend_device_and_pigeon_find_each_other_and_trade_files_a_folder_and_a_text() {
    let Some(bin) = localsendd_bin() else { return };
    let Some(lab) = lab("ls") else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut phone = Localsendd::start(&bin, &lab, &dirs.path().join("phone"));
    let mut pigeon = pigeon_in(&lab, &dirs.path().join("pigeon"), &[]);

    // Found both ways: Pigeon lists the phone, marked as LocalSend, its certificate pinned.
    let device = expect_device(&mut pigeon);
    assert_eq!(device.name, "Lin's Phone");
    assert_eq!(device.client.as_deref(), Some("LocalSend · phone"));
    assert_eq!(
        (device.trust, device.addr.as_str()),
        (pigeon::store::Trust::Unverified, lab.addr(0).as_str())
    );
    assert!(device.key.is_some());
    phone.call("list_devices", &json!({}));
    phone.expect("Pigeon among its devices", |state| {
        let devices = state["devices"].as_array().or_else(|| state["result"]["devices"].as_array())?;
        devices.iter().any(|d| d["alias"] == "pigeon-ls" && d["deviceModel"] == "Pigeon").then_some(())
    });

    // Pigeon → phone: a file and a folder; the phone's user accepts.
    let files = dirs.path().join("to-phone");
    std::fs::create_dir_all(files.join("Album/2026")).unwrap();
    let report: Vec<u8> = (0..300_000u32).flat_map(|n| n.to_le_bytes()).collect();
    std::fs::write(files.join("report.pdf"), &report).unwrap();
    std::fs::write(files.join("Album/a.jpg"), b"first picture").unwrap();
    std::fs::write(files.join("Album/2026/b.jpg"), b"second picture").unwrap();
    pigeon.send(&Command::SendFiles {
        to: vec![device.id],
        paths: vec![files.join("report.pdf"), files.join("Album")],
        tag: None,
    });
    phone.answer_offer(true);
    let outgoing = pigeon.expect(SHORT, "our transfer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.peer == device.id => Some(transfer.transfer_id),
        _ => None,
    });
    assert_eq!(ends(&mut pigeon, outgoing).0, TransferState::Completed);
    phone.expect_result("received");
    // localsendd keeps only the last part of each name (its choice): every byte arrived.
    assert_eq!(std::fs::read(phone.downloads.join("report.pdf")).unwrap(), report);
    assert_eq!(std::fs::read(phone.downloads.join("a.jpg")).unwrap(), b"first picture");
    assert_eq!(std::fs::read(phone.downloads.join("b.jpg")).unwrap(), b"second picture");

    // A text to the phone is a LocalSend text (localsendd stores it as a file).
    pigeon.send(&Command::SendMessage {
        to: vec![device.id],
        text: "你好, phone".into(),
        tag: Some("t".into()),
    });
    phone.answer_offer(true);
    pigeon.expect(SHORT * 2, "the text delivered", |event| match event {
        Event::MessageStateChanged { peer, state: MessageState::Delivered, .. } if *peer == device.id => {
            Some(())
        }
        _ => None,
    });
    phone.expect_result("received");
    let texts: Vec<String> = std::fs::read_dir(&phone.downloads)
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .collect();
    assert!(texts.iter().any(|text| text == "你好, phone"), "{texts:?}");

    // Phone → Pigeon: an offer waits for the user, is accepted, arrives whole (localsendd
    // gives a SHA-256, which Pigeon checks).
    let photo = dirs.path().join("photo.jpg");
    let photo_bytes: Vec<u8> = (0..2_000_000u32).map(|n| (n % 251) as u8).collect();
    std::fs::write(&photo, &photo_bytes).unwrap();
    phone.call("send", &json!({"files": [photo], "to": lab.addr(1)}));
    let offer = offer_from(&mut pigeon, &device);
    assert_eq!(offer.state, TransferState::Offered);
    pigeon.send(&Command::AcceptTransfer { transfer_id: offer.transfer_id, always: false });
    assert_eq!(ends(&mut pigeon, offer.transfer_id).0, TransferState::Completed);
    phone.expect_result("sent");
    let received = dirs.path().join("pigeon/downloads/photo.jpg");
    assert_eq!(std::fs::read(received).unwrap(), photo_bytes);

    // Declined here: the phone hears no.
    phone.call("send", &json!({"files": [photo], "to": lab.addr(1)}));
    let offer = offer_from(&mut pigeon, &device);
    pigeon.send(&Command::DeclineTransfer { transfer_id: offer.transfer_id });
    assert_eq!(ends(&mut pigeon, offer.transfer_id).0, TransferState::Declined);
    phone.expect_result("declined");

    // Declined there: Pigeon says so.
    pigeon.send(&Command::SendFiles {
        to: vec![device.id],
        paths: vec![files.join("report.pdf")],
        tag: None,
    });
    phone.answer_offer(false);
    let outgoing = pigeon.expect(SHORT, "our transfer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.peer == device.id => Some(transfer.transfer_id),
        _ => None,
    });
    let (state, reason) = ends(&mut pigeon, outgoing);
    assert_eq!((state, reason.as_str()), (TransferState::Declined, "declined by the other side"));

    // The phone stops: it leaves Pigeon's list once it no longer answers.
    drop(phone);
    pigeon.expect(SHORT * 8, "the device gone", |event| match event {
        Event::PeerLeft { id, .. } if *id == device.id => Some(()),
        _ => None,
    });
}

/// A certificate for the scripted sender, made by openssl.
#[test]
fn an_offer_to_a_device_that_asks_for_a_pin_goes_again_once_the_user_gives_it() {
    let Some(bin) = localsendd_bin() else { return };
    let Some(lab) = lab("lspin") else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut phone = Localsendd::start_with(&bin, &lab, &dirs.path().join("phone"), &["--pin", "4321"]);
    let mut pigeon = pigeon_in(&lab, &dirs.path().join("pigeon"), &[]);
    let device = expect_device(&mut pigeon);
    let notes = dirs.path().join("notes.txt");
    std::fs::write(&notes, "只给你看").unwrap();
    let offered = |pigeon: &mut Daemon| {
        pigeon.expect(SHORT, "our transfer", |event| match event {
            Event::TransferAdded { transfer, .. } if transfer.peer == device.id => Some(transfer.transfer_id),
            _ => None,
        })
    };

    // Without a PIN, and with a wrong one, the device refuses, and Pigeon says why.
    pigeon.send(&Command::SendFiles { to: vec![device.id], paths: vec![notes.clone()], tag: None });
    let first = offered(&mut pigeon);
    let (state, reason) = ends(&mut pigeon, first);
    assert_eq!((state, Ending::of(&reason)), (TransferState::Failed, Ending::PinRefused), "{reason}");
    pigeon.send(&Command::SetPin { peer: device.id, pin: "1111".into() });
    pigeon.send(&Command::RetryTransfer { transfer_id: first });
    let second = offered(&mut pigeon);
    assert_ne!(second, first, "sent again as a new offer");
    let (state, reason) = ends(&mut pigeon, second);
    assert_eq!((state, Ending::of(&reason)), (TransferState::Failed, Ending::PinRefused), "{reason}");

    // With the right one it goes through: the phone's user is asked, and the file arrives.
    pigeon.send(&Command::SetPin { peer: device.id, pin: "4321".into() });
    pigeon.send(&Command::RetryTransfer { transfer_id: second });
    let third = offered(&mut pigeon);
    phone.answer_offer(true);
    assert_eq!(ends(&mut pigeon, third).0, TransferState::Completed);
    phone.expect_result("received");
    assert_eq!(std::fs::read_to_string(phone.downloads.join("notes.txt")).unwrap(), "只给你看");
}

fn sender_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("sender-cert.pem"), dir.join("sender-key.pem"));
    let status = Process::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", "/CN=LocalSend User", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    (cert, key)
}

/// Runs the scripted sender in lab host 0 with `spec`; its answers come as lines.
fn scripted_sender(lab: &Lab, dir: &Path, spec: &Value) -> (Child, Receiver<Value>) {
    let (cert, key) = sender_certificate(dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/localsend_sender.py");
    let mut child = Process::new("ip")
        .args(["netns", "exec", &lab.host(0), "python3", script, &lab.addr(1), "53317"])
        .arg(&cert)
        .arg(&key)
        .arg(spec.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    #[expect(clippy::disallowed_methods, reason = "a test buffer that must never push back")]
    let (tx, answers) = crossbeam_channel::unbounded();
    let spawned = std::thread::Builder::new().name("it-localsend-sender".into()).spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            tx.send(serde_json::from_str::<Value>(&line).unwrap()).ok();
        }
    });
    spawned.unwrap();
    (child, answers)
}

fn answer(answers: &Receiver<Value>) -> Value {
    answers.recv_timeout(SHORT * 3).expect("the sender's answer")
}

#[test]
fn texts_folders_hostile_names_and_pins_from_a_localsend_sender_follow_the_rules() {
    let Some(lab) = lab("lt") else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut pigeon = pigeon_in(&lab, &dirs.path().join("pigeon"), &["--localsend-pin", "4711"]);
    let downloads = dirs.path().join("pigeon/downloads");
    let file = |name: &str, data: &str| json!({"name": name, "data": data, "sha256": "right"});
    let spec = json!({"offers": [
        // Wrong PINs: 401 twice, the third makes the address wait (429 from then on).
        {"pin": "0000", "files": [file("a.txt", "a")]},
        {"files": [file("a.txt", "a")]},
        {"pin": "1111", "files": [file("a.txt", "a")]},
        {"pin": "4711", "files": [file("a.txt", "a")]},
    ]});
    let (mut sender, answers) = scripted_sender(&lab, dirs.path(), &spec);
    let statuses: Vec<Value> = (0..4).map(|_| answer(&answers)["prepare"].clone()).collect();
    assert_eq!(statuses, [json!(401), json!(401), json!(401), json!(429)]);
    sender.wait().unwrap();
    assert!(
        pigeon
            .drain_for(Duration::from_millis(200))
            .iter()
            .all(|event| !matches!(event, Event::TransferAdded { .. }))
    );

    // The right PIN (from another address would be the same; the lock is per address, so a
    // new Pigeon on a fresh lab address is not needed: the lock lasts a minute, the test
    // restarts Pigeon instead, which forgets it).
    pigeon.stop();
    let mut pigeon = pigeon_in(&lab, &dirs.path().join("pigeon"), &["--localsend-pin", "4711"]);
    let spec = json!({"offers": [
        // A text: a chat message at once, answered 204.
        {"pin": "4711", "files": [{"name": "note.txt", "data": "", "type": "text/plain", "preview": "Dinner at 7? 七点吃饭"}]},
        // A folder with hostile names: every file lands inside the download folder.
        {"pin": "4711", "files": [
            file("Trip/day1/photo.jpg", "photo"),
            file("/etc/passwd", "not root's"),
            file("C:\\Windows\\evil.dll", "dll"),
            file("bidi-\u{202e}gpj.exe", "exe"),
            {"name": "Trip/broken.bin", "data": "tampered", "sha256": "wrong"},
        ]},
        // A parent folder in a name refuses the whole offer.
        {"pin": "4711", "files": [file("ok.txt", "ok"), file("../escape.txt", "out")]},
    ]});
    let (mut sender, answers) = scripted_sender(&lab, dirs.path(), &spec);
    let message = pigeon.expect(SHORT * 2, "the text", |event| match event {
        Event::MessageReceived { message } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(message.text, "Dinner at 7? 七点吃饭");
    assert_eq!(answer(&answers)["prepare"], 204);

    let offer = pigeon.expect(SHORT * 2, "the folder", |event| match event {
        Event::TransferAdded { transfer, .. } => Some(transfer.clone()),
        _ => None,
    });
    assert_eq!(offer.peer, message.peer, "the same sender, proven by its client certificate");
    pigeon.send(&Command::AcceptTransfer { transfer_id: offer.transfer_id, always: false });
    let answered = answer(&answers);
    assert_eq!(answered["prepare"], 200);
    assert_eq!(answered["uploads"]["Trip/day1/photo.jpg"], 200);
    assert_eq!(answered["uploads"]["Trip/broken.bin"], 400, "{answered}");
    let (state, reason) = ends(&mut pigeon, offer.transfer_id);
    assert_eq!(state, TransferState::Failed, "a file that is not what it was offered as fails the transfer");
    assert!(reason.contains("SHA-256"), "{reason}");
    assert_eq!(std::fs::read(downloads.join("Trip/day1/photo.jpg")).unwrap(), b"photo");
    assert_eq!(std::fs::read(downloads.join("etc/passwd")).unwrap(), b"not root's");
    assert_eq!(std::fs::read(downloads.join("Windows/evil.dll")).unwrap(), b"dll");
    assert!(!downloads.join("Trip/broken.bin").exists(), "a wrong file never appears");
    let mut names = Vec::new();
    for entry in walk(&downloads) {
        let shown = entry.strip_prefix(&downloads).unwrap().display().to_string();
        assert!(!shown.contains('\u{202e}'), "{shown}");
        names.push(shown);
    }
    assert!(names.iter().all(|name| !name.contains(".pigeon-partial")), "staging is cleaned: {names:?}");

    let refused = answer(&answers);
    assert_eq!(refused["prepare"], 403);
    assert!(!dirs.path().join("pigeon/escape.txt").exists() && !downloads.join("ok.txt").exists());
    sender.wait().unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn moving(pigeon: &mut Daemon, id: pigeon::protocol::ids::TransferId) {
    pigeon.expect(SHORT * 2, "bytes moving", |event| match event {
        Event::TransferProgress { transfer_id, progress }
            if *transfer_id == id && progress.bytes_done > 0 =>
        {
            Some(())
        }
        _ => None,
    });
}

#[test]
fn a_cancel_from_either_side_stops_the_transfer_and_leaves_no_partial_file() {
    let Some(bin) = localsendd_bin() else { return };
    let Some(lab) = lab("lc") else { return };
    let dirs = tempfile::tempdir().unwrap();
    let mut phone = Localsendd::start(&bin, &lab, &dirs.path().join("phone"));
    let mut pigeon = pigeon_in(&lab, &dirs.path().join("pigeon"), &[]);
    let device = expect_device(&mut pigeon);
    let big = dirs.path().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(512 << 20).unwrap();

    // Pigeon sends and its user cancels once bytes move: the phone hears of it.
    pigeon.send(&Command::SendFiles { to: vec![device.id], paths: vec![big.clone()], tag: None });
    let outgoing = pigeon.expect(SHORT, "our transfer", |event| match event {
        Event::TransferAdded { transfer, .. } if transfer.peer == device.id => Some(transfer.transfer_id),
        _ => None,
    });
    phone.answer_offer(true);
    moving(&mut pigeon, outgoing);
    pigeon.send(&Command::CancelTransfer { transfer_id: outgoing });
    assert_eq!(ends(&mut pigeon, outgoing), (TransferState::Cancelled, "cancelled".into()));
    phone.expect_result("recv_cancelled");

    // The phone sends and its user cancels once bytes move: Pigeon says who cancelled and
    // keeps nothing of the file.
    phone.call("send", &json!({"files": [big], "to": lab.addr(1)}));
    let offer = offer_from(&mut pigeon, &device);
    pigeon.send(&Command::AcceptTransfer { transfer_id: offer.transfer_id, always: false });
    moving(&mut pigeon, offer.transfer_id);
    phone.call("cancel", &json!({}));
    let (state, reason) = ends(&mut pigeon, offer.transfer_id);
    assert_eq!((state, reason.as_str()), (TransferState::Cancelled, "cancelled by the other side"));
    let downloads = dirs.path().join("pigeon/downloads");
    let left: Vec<PathBuf> = if downloads.exists() { walk(&downloads) } else { Vec::new() };
    assert!(left.is_empty(), "nothing partial stays: {left:?}");
}

#[test]
fn a_taken_localsend_port_is_reported_and_pigeon_peers_still_work() {
    let net = crate::util::Net::new();
    let dirs = tempfile::tempdir().unwrap();
    // The LocalSend app already holds Ana's port.
    let _app = std::net::TcpListener::bind((net.ip(1), pigeon::protocol::localsend::PORT)).unwrap();
    let reason = crate::util::family_unavailable_yet_pigeons_talk(&net, dirs.path(), Family::LocalSend);
    assert!(reason.contains("53317") && reason.contains("LocalSend app"), "{reason}");
}
