//! What the local firewall does to Pigeon's port, as its own tools tell: ufw and firewalld
//! (the front ends desktops ship), else nftables' and iptables' rules read directly. A rule
//! that drops the port, or an input policy of drop with nothing letting it through, is named
//! with the command that lets Pigeon in. Reading the rules often needs root; then the
//! doctor says so rather than guess.

use std::process::{Command, Stdio};

use serde::Serialize;

/// The firewall as found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Firewall {
    /// `ufw`, `firewalld`, `nftables`, `iptables`, or `none` (no tool found, or no rules).
    pub tool: String,
    /// Its rules could be read.
    pub readable: bool,
    /// The rule or policy that drops our port, as the tool shows it.
    pub drops: Option<String>,
    /// The command that lets Pigeon through.
    pub fix: Option<String>,
    /// What kept the rules from being read.
    pub detail: Option<String>,
}

/// Looks at the firewall for `port` (UDP and TCP).
pub fn examine(port: u16) -> Firewall {
    if let Some(found) =
        ufw(port).or_else(|| firewalld(port)).or_else(|| nftables(port)).or_else(|| iptables(port))
    {
        return found;
    }
    Firewall { tool: "none".into(), readable: true, ..Firewall::default() }
}

/// A tool's output, or why not; none when the tool is not installed.
fn run(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    let output = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    Some(if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    })
}

fn unreadable(tool: &str, why: &str) -> Firewall {
    let detail = format!("{why} (run the doctor as root to read the rules: sudo pigeon doctor)");
    Firewall { tool: tool.into(), readable: false, detail: Some(detail), ..Firewall::default() }
}

fn ufw(port: u16) -> Option<Firewall> {
    let status = match run("ufw", &["status"])? {
        Ok(status) => status,
        Err(why) => return Some(unreadable("ufw", &why)),
    };
    if !status.contains("Status: active") {
        return None;
    }
    let allowed = status.lines().any(|line| mentions_port(line, port) && line.contains("ALLOW"));
    Some(Firewall {
        tool: "ufw".into(),
        readable: true,
        drops: (!allowed).then(|| format!("ufw is active and does not allow {port}")),
        fix: (!allowed).then(|| format!("sudo ufw allow {port}")),
        detail: None,
    })
}

fn firewalld(port: u16) -> Option<Firewall> {
    match run("firewall-cmd", &["--state"])? {
        Ok(state) if state.trim() == "running" => {}
        Ok(_) => return None,
        // Not running prints to stderr with a non-zero exit.
        Err(why) if why.contains("not running") => return None,
        Err(why) => return Some(unreadable("firewalld", &why)),
    }
    let ports = match run("firewall-cmd", &["--list-ports"])? {
        Ok(ports) => ports,
        Err(why) => return Some(unreadable("firewalld", &why)),
    };
    let allowed = ports.split_whitespace().any(|open| open == format!("{port}/udp"));
    Some(Firewall {
        tool: "firewalld".into(),
        readable: true,
        drops: (!allowed).then(|| format!("firewalld is running and {port}/udp is not among its open ports")),
        fix: (!allowed).then(|| {
            format!(
                "sudo firewall-cmd --permanent --add-port={port}/udp --add-port={port}/tcp && sudo firewall-cmd --reload"
            )
        }),
        detail: None,
    })
}

fn nftables(port: u16) -> Option<Firewall> {
    let ruleset = match run("nft", &["list", "ruleset"])? {
        Ok(ruleset) => ruleset,
        Err(why) => return Some(unreadable("nftables", &why)),
    };
    if ruleset.trim().is_empty() {
        return None;
    }
    let verdict = read_nft(&ruleset, port);
    Some(Firewall {
        tool: "nftables".into(),
        readable: true,
        fix: verdict.as_ref().map(|(_, chain)| {
            format!("sudo nft insert rule {chain} udp dport {port} accept && sudo nft insert rule {chain} tcp dport {port} accept")
        }),
        drops: verdict.map(|(rule, _)| rule),
        detail: None,
    })
}

/// The rule or policy of an input chain that drops `port`, and the chain (`family table
/// chain`), reading `nft list ruleset` in order: a rule that accepts the port first wins.
fn read_nft(ruleset: &str, port: u16) -> Option<(String, String)> {
    let (mut table, mut chain) = (String::new(), String::new());
    let (mut input, mut accepted, mut policy_drop) = (false, false, false);
    let mut found = None;
    // A chain read to its end: its policy counts only if no rule decided first.
    fn finish_chain(
        input: bool,
        accepted: bool,
        policy_drop: bool,
        chain: &str,
        found: &mut Option<(String, String)>,
    ) {
        if input && policy_drop && !accepted && found.is_none() {
            *found = Some((format!("policy drop of chain {chain}"), chain.to_owned()));
        }
    }
    for line in ruleset.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("table ") {
            table = rest.trim_end_matches('{').trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("chain ") {
            finish_chain(input, accepted, policy_drop, &chain, &mut found);
            chain = format!("{table} {}", rest.trim_end_matches('{').trim());
            (input, accepted, policy_drop) = (false, false, false);
        } else if line.starts_with("type filter hook input") {
            input = true;
            policy_drop = line.contains("policy drop");
        } else if input && mentions_port(line, port) {
            if line.contains("accept") {
                accepted = true;
            } else if (line.contains("drop") || line.contains("reject")) && !accepted && found.is_none() {
                found = Some((line.to_owned(), chain.clone()));
            }
        }
    }
    finish_chain(input, accepted, policy_drop, &chain, &mut found);
    found
}

fn iptables(port: u16) -> Option<Firewall> {
    let rules = match run("iptables", &["-S", "INPUT"])? {
        Ok(rules) => rules,
        Err(why) => return Some(unreadable("iptables", &why)),
    };
    let accepted = rules.lines().any(|rule| mentions_port(rule, port) && rule.contains("-j ACCEPT"));
    let dropping = rules
        .lines()
        .find(|rule| mentions_port(rule, port) && (rule.contains("-j DROP") || rule.contains("-j REJECT")))
        .or_else(|| rules.lines().find(|rule| rule.trim() == "-P INPUT DROP"))
        .filter(|_| !accepted);
    if dropping.is_none() && rules.lines().count() <= 1 {
        return None;
    }
    Some(Firewall {
        tool: "iptables".into(),
        readable: true,
        drops: dropping.map(str::to_owned),
        fix: dropping.map(|_| {
            format!(
                "sudo iptables -I INPUT -p udp --dport {port} -j ACCEPT && sudo iptables -I INPUT -p tcp --dport {port} -j ACCEPT"
            )
        }),
        detail: None,
    })
}

/// Whether a rule names `port` as a whole number (not 24260, not 12426).
fn mentions_port(rule: &str, port: u16) -> bool {
    let port = port.to_string();
    rule.split(|c: char| !c.is_ascii_digit()).any(|number| number == port)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DROPPING: &str = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established accept\n\t\tudp dport 2426 drop\n\t}\n}\n";

    #[test]
    fn an_input_rule_dropping_the_port_is_named_with_its_chain() {
        let (rule, chain) = read_nft(DROPPING, 2426).unwrap();
        assert_eq!((rule.as_str(), chain.as_str()), ("udp dport 2426 drop", "inet filter input"));
        assert_eq!(read_nft(DROPPING, 24260), None, "another port");
    }

    #[test]
    fn a_drop_policy_drops_unless_a_rule_lets_the_port_in_first() {
        let policy = "table inet f {\n chain in {\n  type filter hook input priority 0; policy drop;\n  tcp dport 22 accept\n }\n chain out {\n  type filter hook output priority 0; policy accept;\n }\n}\n";
        assert_eq!(
            read_nft(policy, 2426),
            Some(("policy drop of chain inet f in".into(), "inet f in".into()))
        );
        let open = policy.replace("tcp dport 22 accept", "udp dport { 2425, 2426 } accept");
        assert_eq!(read_nft(&open, 2426), None);
        let forward_only = DROPPING.replace("hook input", "hook forward");
        assert_eq!(read_nft(&forward_only, 2426), None, "not our traffic");
    }
}
