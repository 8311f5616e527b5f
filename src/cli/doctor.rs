//! `pigeon doctor`: why someone does not show up, in plain words (or as JSON, `--json`,
//! documented in docs/PROTOCOL.md): interfaces, ports, our own echoes, the firewall, who was
//! heard where, a probe of an address, and the most likely fix first. Exits 1 when it found
//! something to fix.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pigeon::Config;
use pigeon::node::doctor::{self, Finding, PortState, ProbeOutcome, Report, Skipped, Way};

use super::peers;
use super::session::Session;

/// How long a node started for the doctor listens: long enough for every peer's heartbeat.
const LISTEN: Duration = Duration::from_millis(2500);

/// Examines, listens, and tells.
pub fn run(config: &Config, probe: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let running =
        std::os::unix::net::UnixStream::connect(pigeon::node::control_socket_path(&config.data_dir)).is_ok();
    let mut report = doctor::examine(&doctor::Ask { settings: &config.settings, running, probe });
    let mut session = Session::open(config)?;
    if session.is_local() {
        let until = Instant::now() + LISTEN;
        while session.next_event(until)?.is_some() {}
    }
    let listed = peers::list(&mut session)?;
    session.close();
    report.heard_from(listed.iter().map(|peer| (peer.family, peer.addr.as_str())));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", in_words(&report));
    }
    Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The report for a person: what to do first, then the facts.
fn in_words(report: &Report) -> String {
    let mut text = String::new();
    if report.findings.is_empty() {
        text.push_str("Nothing wrong found.\n");
    }
    for (n, finding) in report.findings.iter().enumerate() {
        let first = if n == 0 { "Most likely: " } else { "Also: " };
        text.push_str(&format!("{first}{}\n", advice(finding)));
    }
    text.push_str("\nInterfaces:\n");
    for one in &report.interfaces {
        let used = match one.skipped {
            None => String::from("used"),
            Some(why) => format!("skipped ({})", skipped_words(why)),
        };
        text.push_str(&format!(
            "  {} {}/{} broadcast {}: {used}\n",
            one.name, one.address, one.prefix, one.broadcast
        ));
    }
    if !report.ipv6.is_empty() {
        text.push_str(&format!("  IPv6 (link-local multicast) on: {}\n", report.ipv6.join(", ")));
    }
    text.push_str("Ports:\n");
    for port in &report.ports {
        let state = match port.state {
            PortState::Free => "free",
            PortState::Ours => "held by the Pigeon running on this data folder",
            PortState::InUse => "in use by another program",
        };
        text.push_str(&format!(
            "  {} {}/{}: {state}\n",
            port.family.product_name(),
            port.port,
            port.protocol
        ));
    }
    if !report.echoes.is_empty() {
        text.push_str("Our own announces:\n");
        for echo in &report.echoes {
            let back = if echo.came_back { "came back" } else { "did not come back" };
            text.push_str(&format!("  {} on {}: {back}\n", method_words(echo.method), echo.interface));
        }
    }
    let firewall = &report.firewall;
    let rules = match (&firewall.drops, &firewall.detail) {
        (Some(rule), _) => format!("drops Pigeon: {rule}"),
        (None, Some(detail)) => detail.clone(),
        (None, None) if firewall.tool == "none" => String::from("none found"),
        (None, None) => String::from("lets Pigeon through"),
    };
    let tool = if firewall.tool == "none" { String::new() } else { format!("{} ", firewall.tool) };
    text.push_str(&format!("Firewall: {tool}{rules}\n"));
    text.push_str("Heard:\n");
    if report.heard.is_empty() {
        text.push_str("  nobody\n");
    }
    for heard in &report.heard {
        text.push_str(&format!("  {} {} on {}\n", heard.peers, heard.family.product_name(), heard.interface));
    }
    if let Some(probe) = &report.probe {
        text.push_str(&format!(
            "Probe of {}: {} ({})\n",
            probe.addr,
            outcome_words(probe.outcome),
            probe.detail
        ));
    }
    text
}

fn advice(finding: &Finding) -> String {
    match finding {
        Finding::FirewallDrops { tool, rule, fix } => {
            format!("the firewall ({tool}) drops Pigeon ({rule}). To let Pigeon in: {fix}")
        }
        Finding::NoNetwork => String::from("this computer is on no network (no interface is up)."),
        Finding::AllSkipped => String::from(
            "no interface is used to find others (all skipped or not chosen): use --interface NAME or the \
             interfaces setting.",
        ),
        Finding::BoundAway { address } => format!(
            "Pigeon is bound to {address} (--bind), which no interface others can reach holds: bind to an \
             address of a network interface, or to none."
        ),
        Finding::PortInUse { protocol, port } => format!(
            "another program holds {port}/{protocol}: quit it, or choose another port with --port (every \
             Pigeon that should find you must use the same one)."
        ),
        Finding::NoEcho { interface, method } => format!(
            "our own {} on {interface} did not come back: something on this computer drops it (a firewall \
             the doctor cannot read?).",
            method_words(*method)
        ),
        Finding::ProbeFailed { addr, outcome } => format!("{addr}: {}", outcome_words(*outcome)),
        Finding::NobodyHeard => String::from(
            "nobody answered. If the others are on another subnet or a VPN, send them an invite link (pigeon \
             invite) or add their address with --target.",
        ),
    }
}

/// A way of being found, in words.
fn method_words(method: Way) -> &'static str {
    match method {
        Way::Broadcast => "broadcast",
        Way::Multicast => "multicast (group 239.255.24.26)",
        Way::Ipv6 => "IPv6 multicast",
        Way::Mdns => "mDNS query",
    }
}

fn outcome_words(outcome: ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Reached => "reached",
        ProbeOutcome::Refused => "refused (the computer is there, but no Pigeon listens on that port)",
        ProbeOutcome::NoAnswer => "no answer (firewall or wrong address?)",
        ProbeOutcome::NoRoute => {
            "no route (no network leads there: a VPN down, or another subnet without a router?)"
        }
        ProbeOutcome::BadAddress => "not an address this computer can look up",
    }
}

fn skipped_words(skipped: Skipped) -> &'static str {
    match skipped {
        Skipped::Loopback => "this computer itself",
        Skipped::Down => "down",
        Skipped::PointToPoint => "a point-to-point link",
        Skipped::NotBound => "Pigeon is bound to another address",
        Skipped::NotChosen => "not among the chosen interfaces",
        Skipped::Virtual => "a container's or VM's bridge; --interface NAME uses it",
    }
}
