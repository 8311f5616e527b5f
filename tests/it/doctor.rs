//! `pigeon doctor` in a namespace lab (issue 20): it names a firewall that drops Pigeon and
//! the command that opens it, tells a wrong address from a reachable one, says what it heard
//! where, and its JSON has the documented shape.

use std::process::Output;

use serde_json::Value;

use crate::lab::{Lab, skip_unless};
use crate::util::{Daemon, pigeon_bin};

/// Runs `pigeon doctor --json ARGS…` in host `i` with its own data folder.
fn doctor(lab: &Lab, i: usize, data: &std::path::Path, args: &[&str]) -> (Output, Value) {
    let exec = lab.exec(i);
    let out = std::process::Command::new(&exec[0])
        .args(&exec[1..])
        .arg(pigeon_bin())
        .args(["--data-dir", &data.display().to_string(), "--no-localsend", "doctor", "--json"])
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!("{err}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out, report)
}

fn findings(report: &Value) -> Vec<&str> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["finding"].as_str().unwrap())
        .collect()
}

#[test]
fn the_doctor_names_the_firewall_and_its_fix_and_tells_a_wrong_address_from_a_peer() {
    let Some(lab) = skip_unless(Lab::up("dr", 3)) else { return };
    let dirs = tempfile::tempdir().unwrap();
    let nft = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.host(0), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut nft| {
            use std::io::Write;
            nft.stdin.take().unwrap().write_all(
                b"table inet filter {\n chain input {\n  type filter hook input priority 0; policy accept;\n  udp dport 2426 drop\n }\n}\n",
            )?;
            nft.wait()
        })
        .unwrap();
    assert!(nft.success());
    let _bo = Daemon::start_with(
        "bo",
        &lab.exec(1),
        &["--data-dir".to_owned(), dirs.path().join("bo").display().to_string()],
    );

    // Host 0: its own firewall drops Pigeon's port.
    let (out, report) = doctor(&lab, 0, &dirs.path().join("h0"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report["version"], 1);
    let first = &report["findings"][0];
    assert_eq!(first["finding"], "firewall_drops", "{report:#}");
    assert_eq!(first["tool"], "nftables");
    assert_eq!(first["rule"], "udp dport 2426 drop");
    let fix = first["fix"].as_str().unwrap();
    assert!(fix.contains("nft insert rule inet filter input udp dport 2426 accept"), "{fix}");
    // Every way out of eth0: the firewall drops what goes to 2426 (IPv4 and IPv6), not mDNS.
    let echoes = report["echoes"].as_array().unwrap();
    let came_back = |method: &str| {
        let echo = echoes.iter().find(|echo| echo["method"] == method && echo["interface"] == "eth0");
        echo.unwrap_or_else(|| panic!("no {method} echo: {echoes:?}"))["came_back"].as_bool().unwrap()
    };
    assert_eq!(
        ["broadcast", "multicast", "ipv6", "mdns"].map(came_back),
        [false, false, false, true],
        "{echoes:?}"
    );

    // Host 2: a wrong address gets no answer; the peer's is reached and heard on eth0.
    let (out, report) = doctor(&lab, 2, &dirs.path().join("h2"), &["--probe", "10.77.0.99"]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(findings(&report), ["probe_failed"], "{report:#}");
    assert_eq!(report["probe"]["outcome"], "no_answer");
    let heard = report["heard"].as_array().unwrap();
    assert!(
        heard.iter().any(|one| one["family"] == "pigeon" && one["interface"] == "eth0" && one["peers"] == 1),
        "{heard:?}"
    );
    let (out, report) = doctor(&lab, 2, &dirs.path().join("h2"), &["--probe", "10.77.0.2"]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["probe"]["outcome"], "reached");
    let eth0 = report["interfaces"].as_array().unwrap().iter().find(|one| one["name"] == "eth0").unwrap();
    assert_eq!(
        (&eth0["address"], &eth0["prefix"], &eth0["used"]),
        (&Value::from("10.77.0.3"), &Value::from(24), &Value::from(true))
    );
    // A computer that is there without Pigeon refuses.
    let (_, report) = doctor(&lab, 2, &dirs.path().join("h2"), &["--probe", "10.77.0.1:2427"]);
    assert_eq!(report["probe"]["outcome"], "refused");
}
