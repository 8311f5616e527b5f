//! Proof that content never crosses the wire in plaintext: two hosts in a namespace lab
//! exchange a message and a file while tcpdump records everything on the bridge, and the
//! capture is searched for the plaintext. Needs root and tcpdump; skips loudly without.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use pigeon::store::TransferState;
use pigeon::{Command, Event};

use crate::lab::{Lab, lab_or_skip};
use crate::util::{Daemon, SHORT, wait_exit};

/// tcpdump on the lab's bridge, stopped on drop.
struct Capture(Child);

impl Capture {
    /// Starts recording and waits until tcpdump is listening.
    fn start(lab: &Lab, file: &Path) -> Result<Capture, String> {
        let mut child = Process::new("ip")
            .args([
                "netns",
                "exec",
                &lab.hub(),
                "tcpdump",
                "-i",
                "br0",
                "-B",
                "65536",
                "-U",
                "-Z",
                "root",
                "-w",
            ])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot run tcpdump: {err}"))?;
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("it-tcpdump".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        ready_tx.send(()).ok();
                    }
                }
            })
            .unwrap();
        let mut capture = Capture(child);
        if ready.recv_timeout(SHORT).is_err() {
            capture.0.kill().ok();
            return Err("tcpdump did not start listening".into());
        }
        Ok(capture)
    }
}

impl Capture {
    /// Sends a sentinel datagram across the bridge, waits until the capture file holds it
    /// (tcpdump writes packets in order, so everything before it is in the file too), and
    /// returns the file.
    fn finish(self, lab: &Lab, file: &Path) -> Vec<u8> {
        let sentinel = format!("CAPTURE-SENTINEL-{}", std::process::id());
        let send = format!("printf %s {sentinel} > /dev/udp/{}/9", lab.addr(1));
        let deadline = Instant::now() + SHORT;
        loop {
            let sent = Process::new("ip").args(["netns", "exec", &lab.host(0), "bash", "-c", &send]).status();
            assert!(sent.is_ok_and(|status| status.success()), "cannot send the sentinel");
            let wire = std::fs::read(file).unwrap_or_default();
            if contains(&wire, sentinel.as_bytes()) {
                return wire;
            }
            assert!(Instant::now() < deadline, "the capture never showed the sentinel");
            // The sentinel is resent until it shows; a bounded pause between tries.
            crossbeam_channel::after(Duration::from_millis(50)).recv().unwrap();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // SIGINT makes tcpdump drain the kernel's capture buffer into the file before it
        // exits; SIGKILL would lose the last packets. (`ip netns exec` execs tcpdump, so the
        // child's pid is tcpdump's.)
        let interrupted = Process::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        if !interrupted.is_ok_and(|status| status.success()) {
            self.0.kill().ok();
        }
        wait_exit(&mut self.0, SHORT);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn neither_messages_nor_files_appear_in_plaintext_on_the_wire() {
    let Some(lab) = lab_or_skip("c", 2) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let pcap = dirs.path().join("bridge.pcap");
    let capture = match Capture::start(&lab, &pcap) {
        Ok(capture) => capture,
        Err(reason) => {
            eprintln!("SKIPPED: packet capture unavailable (needs tcpdump): {reason}");
            return;
        }
    };
    let flags = |name: &str| {
        let downloads = dirs.path().join(format!("{name}-downloads"));
        vec![
            "--data-dir".into(),
            dirs.path().join(name).display().to_string(),
            "--download-dir".into(),
            downloads.display().to_string(),
            "--auto-accept".into(),
        ]
    };
    let mut ana = Daemon::start_with("ana", &lab.exec(0), &flags("ana"));
    let mut bo = Daemon::start_with("bo", &lab.exec(1), &flags("bo"));
    ana.expect_peers(&[bo.id]);

    let secret_text = "the launch code is CORAL-PIGEON-4471";
    let secret_file: Vec<u8> = b"FILE-CONTENT-MARKER-9913 ".repeat(40_000);
    let file = dirs.path().join("plans.txt");
    std::fs::write(&file, &secret_file).unwrap();
    ana.send(&Command::SendMessage { to: vec![bo.id], text: secret_text.into(), tag: None });
    ana.send(&Command::SendFiles { to: vec![bo.id], paths: vec![file], tag: None });
    bo.expect(SHORT, "the message", |event| match event {
        Event::MessageReceived { message } if message.text == secret_text => Some(()),
        _ => None,
    });
    bo.expect(SHORT, "the file", |event| match event {
        Event::TransferStateChanged { state: TransferState::Completed, .. } => Some(()),
        _ => None,
    });
    let received = std::fs::read(dirs.path().join("bo-downloads/plans.txt")).unwrap();
    assert!(received == secret_file, "file arrived intact");
    let wire = capture.finish(&lab, &pcap);

    // The capture works: it holds the (public) announces and at least the file's volume.
    assert!(contains(&wire, b"PIGN") && contains(&wire, b"\"name\":\"ana\""), "capture has the announces");
    assert!(wire.len() > secret_file.len(), "capture has the transfer ({} bytes)", wire.len());
    assert!(!contains(&wire, b"CORAL-PIGEON"), "message text in plaintext on the wire");
    assert!(!contains(&wire, b"FILE-CONTENT-MARKER"), "file content in plaintext on the wire");
    assert!(!contains(&wire, b"plans.txt"), "file name in plaintext on the wire");
}
