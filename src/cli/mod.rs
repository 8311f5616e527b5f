//! Headless subcommands and the flags shared by every subcommand (and by the window).
//!
//! Raw arguments become a validated [`Config`] once, here; subcommands never look at flags.

mod daemon;
mod doctor;
mod invite;
mod peers;
mod room;
mod send;
mod send_file;
mod session;
mod trust;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use pigeon::Config;
use pigeon::node::Status;

/// Exit code when the requested operation did not succeed (not delivered, peer not found).
pub const EXIT_FAILED: u8 = 1;

/// Exit code for usage errors and nodes that cannot start.
pub const EXIT_ERROR: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  pigeon daemon                                   run a node, JSON lines on stdin/stdout
  pigeon peers --wait 2                           list who is on the subnet
  pigeon send Ana 'lunch at 12?'                  send and wait until delivered
  pigeon send 10.8.0.7:2426 hi                    reach a peer on another subnet
  pigeon send-file Ana report.pdf Photos/         send files and folders, with progress
  pigeon room create Sales Ana Bo                 a group room; `pigeon room send Sales hi`
  pigeon --bind 127.0.0.2 --no-broadcast --target 127.0.0.3 --data-dir /tmp/b daemon
                                                  a loopback-only node, for trials";

/// Pigeon: a LAN messenger with no server and no account.
#[derive(Parser, Debug)]
#[command(name = "pigeon", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    shared: SharedArgs,
    /// Start the window hidden in the tray (as the session's autostart does); shown when
    /// the desktop has no tray.
    #[arg(long)]
    hidden: bool,
    /// An invite link to use in the window (`pigeon://invite?…`, as a browser or a chat opens
    /// it): connects to its maker with both keys verified.
    #[arg(value_name = "LINK", value_parser = invite_link)]
    link: Option<String>,
    #[command(subcommand)]
    command: Option<Sub>,
}

/// A LINK argument that is an invite link (so that a mistyped subcommand is told so).
fn invite_link(text: &str) -> Result<String, String> {
    pigeon::node::Invite::parse(text).map(|_| text.to_owned()).map_err(|err| err.to_string())
}

/// Flags accepted before or after any subcommand; each overrides the settings file.
#[derive(Args, Debug, Default)]
pub struct SharedArgs {
    /// Display name shown to peers.
    #[arg(long, global = true)]
    name: Option<String>,
    /// Group (team, department) shown to peers.
    #[arg(long, global = true)]
    group: Option<String>,
    /// Availability shown to peers.
    #[arg(long, global = true, value_enum)]
    status: Option<StatusArg>,
    /// IPv4 address to bind (default 0.0.0.0: every interface).
    #[arg(long, global = true, value_name = "ADDR")]
    bind: Option<Ipv4Addr>,
    /// UDP and TCP port of the native protocol (default 2426).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// Extra announce target: a host or a subnet's broadcast address, optionally with
    /// :PORT. Repeatable; added to the targets in the settings file.
    #[arg(long = "target", global = true, value_name = "ADDR")]
    targets: Vec<String>,
    /// A network interface to find peers on (`eth0`, `wlan0`). Repeatable; given, only these
    /// are used (default: all but the virtual bridges of containers and VMs).
    #[arg(long = "interface", global = true, value_name = "NAME")]
    interfaces: Vec<String>,
    /// Do not announce to interface broadcast addresses.
    #[arg(long, global = true)]
    no_broadcast: bool,
    /// Do not announce to the multicast groups (Pigeon's and LocalSend's).
    #[arg(long, global = true)]
    no_multicast: bool,
    /// Do not find Pigeons over IPv6 (link-local multicast, connections over IPv6).
    #[arg(long, global = true)]
    no_ipv6: bool,
    /// Do not register or look for Pigeons over mDNS (DNS-SD `_pigeon._tcp.local.`).
    #[arg(long, global = true)]
    no_mdns: bool,
    /// Keep all state of this node (history, identity, settings) in DIR.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where received files go (default: Downloads/Pigeon).
    #[arg(long, global = true, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// Accept every file offer without asking.
    #[arg(long, global = true)]
    auto_accept: bool,
    /// Do not talk to IP Messenger clients (IP Messenger, FeiQ, iptux).
    #[arg(long, global = true)]
    no_ipmsg: bool,
    /// UDP port of IP Messenger (default 2425).
    #[arg(long, global = true, value_name = "PORT")]
    ipmsg_port: Option<u16>,
    /// Do not talk to LocalSend devices.
    #[arg(long, global = true)]
    no_localsend: bool,
    /// UDP and TCP port of LocalSend (default 53317).
    #[arg(long, global = true, value_name = "PORT")]
    localsend_port: Option<u16>,
    /// The PIN LocalSend devices must give to send us anything (visible to other users of
    /// this computer in the process list: prefer `localsend_pin` in the settings file).
    #[arg(long, global = true, value_name = "PIN")]
    localsend_pin: Option<String>,
    /// The most each transfer sends per second, in KB/s (0: no limit).
    #[arg(long, global = true, value_name = "KB/S")]
    speed_limit: Option<u64>,
    /// The most all transfers together send per second, in KB/s (0: no limit).
    #[arg(long, global = true, value_name = "KB/S")]
    total_speed_limit: Option<u64>,
}

/// `--status` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatusArg {
    Online,
    Away,
    Busy,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Run a node that reads commands and writes events as JSON lines (stdin/stdout).
    Daemon,
    /// List the peers on the network.
    Peers {
        /// Seconds to listen before listing (default: 1.5, or 0 when a Pigeon already runs
        /// on this data folder).
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a text and wait until the peer has it.
    Send {
        /// A display name, a peer id (or a unique prefix of one), or HOST:PORT.
        peer: String,
        /// The message (UTF-8, at most 64 KiB).
        text: String,
        /// Seconds to look for the peer before giving up.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        wait: f64,
        /// Seconds to wait for delivery after sending. Generous because on a lossy link a
        /// connection whose first packets were lost retransmits only every 3 s or more (the
        /// kernel's fallback), and the node retries on a new connection after 10 s.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        timeout: f64,
        /// The PIN a LocalSend device asks of senders.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Send files and folders and wait until they arrived and verified.
    SendFile {
        /// A display name, a peer id (or a unique prefix of one), or HOST:PORT.
        peer: String,
        /// Files and folders (folders are sent whole, empty folders included).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Seconds to look for the peer before giving up.
        #[arg(long, value_name = "SECS", default_value_t = 3.0)]
        wait: f64,
        /// Seconds to wait for the whole transfer (default: until it ends).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// The PIN a LocalSend device asks of senders.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Group rooms: create, list, post, read, change members or the name.
    Room {
        #[command(subcommand)]
        action: room::Action,
        /// Seconds to look for peers named on the command line.
        #[arg(long, value_name = "SECS", default_value_t = 3.0, global = true)]
        wait: f64,
    },
    /// Print the manual page (roff) for packaging: `pigeon man > pigeon.1`.
    #[command(hide = true)]
    Man,
    /// Why someone does not show up: interfaces, ports, firewall, who was heard, and the
    /// most likely fix first (exits 1 when it found something to fix).
    Doctor {
        /// Also try to reach this address (`host` or `host:port`).
        #[arg(long, value_name = "ADDR")]
        probe: Option<String>,
        /// Print the report as JSON (stable; docs/PROTOCOL.md).
        #[arg(long)]
        json: bool,
    },
    /// Print an invite link to this Pigeon, for someone on another subnet or across a VPN.
    Invite,
    /// Use an invite link: connect to its maker and verify each other's keys.
    Connect {
        /// The link (`pigeon://invite?…`).
        link: String,
        /// Seconds to wait for the maker to answer.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        timeout: f64,
    },
    /// Show the safety number to compare with a peer; mark it verified or accept a new key.
    Trust {
        /// A display name, a peer id (or a unique prefix of one), or HOST:PORT.
        peer: String,
        /// The numbers matched: mark the peer verified.
        #[arg(long, conflicts_with_all = ["unverify", "accept_key"])]
        verify: bool,
        /// Mark the peer not verified again.
        #[arg(long, conflicts_with = "accept_key")]
        unverify: bool,
        /// Accept the peer's changed key (after checking with them that they reinstalled).
        #[arg(long)]
        accept_key: bool,
        /// Seconds to look for the peer before giving up.
        #[arg(long, value_name = "SECS", default_value_t = 3.0)]
        wait: f64,
    },
}

impl SharedArgs {
    /// Loads the settings file for the chosen data folder and applies the flags on top.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.data_dir.as_deref())?;
        let settings = &mut config.settings;
        if let Some(name) = self.name {
            settings.name = name;
        }
        if let Some(group) = self.group {
            settings.group = group;
        }
        if let Some(status) = self.status {
            settings.status = match status {
                StatusArg::Online => Status::Online,
                StatusArg::Away => Status::Away,
                StatusArg::Busy => Status::Busy,
            };
        }
        if let Some(bind) = self.bind {
            settings.bind = bind;
        }
        if let Some(port) = self.port {
            settings.port = port;
        }
        settings.targets.extend(self.targets);
        if !self.interfaces.is_empty() {
            settings.interfaces = self.interfaces;
        }
        if self.no_broadcast {
            settings.broadcast = false;
        }
        if self.no_multicast {
            settings.multicast = false;
        }
        if self.no_ipv6 {
            settings.ipv6 = false;
        }
        if self.no_mdns {
            settings.mdns = false;
        }
        if let Some(dir) = self.download_dir {
            settings.download_dir = Some(dir);
        }
        if self.auto_accept {
            settings.auto_accept = true;
        }
        if self.no_ipmsg {
            settings.ipmsg = false;
        }
        if let Some(port) = self.ipmsg_port {
            settings.ipmsg_port = port;
        }
        if self.no_localsend {
            settings.localsend = false;
        }
        if let Some(port) = self.localsend_port {
            settings.localsend_port = port;
        }
        if let Some(pin) = self.localsend_pin {
            settings.localsend_pin = Some(pin);
        }
        if let Some(kbps) = self.speed_limit {
            settings.speed_limit_kbps = kbps;
        }
        if let Some(kbps) = self.total_speed_limit {
            settings.total_speed_limit_kbps = kbps;
        }
        Ok(config)
    }
}

/// Parses the command line and runs what it asks for.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(Sub::Man) = cli.command {
        clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .context("cannot write the manual")?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = cli.shared.into_config().context("invalid settings")?;
    let Some(command) = cli.command else {
        // Started again (a menu entry, the command line, a link opened): the open window
        // shows, and uses the link; the session's autostart (`--hidden`) leaves it as it is.
        let ask = match (&cli.link, cli.hidden) {
            (Some(link), _) => pigeon::ui::Ask::UseInvite(link),
            (None, true) => pigeon::ui::Ask::Ping,
            (None, false) => pigeon::ui::Ask::Show,
        };
        if pigeon::ui::hand_over(&config.data_dir, ask) {
            println!("Pigeon is running already on {}", config.data_dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        // A link opened wants the window.
        let hidden = cli.hidden && cli.link.is_none();
        pigeon::ui::run(config, hidden, cli.link)?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Sub::Man => Ok(ExitCode::SUCCESS),
        Sub::Daemon => daemon::run(&config),
        Sub::Peers { wait, json } => peers::run(&config, wait.map(seconds).transpose()?, json),
        Sub::Send { peer, text, wait, timeout, pin } => {
            send::run(&config, &peer, &text, seconds(wait)?, seconds(timeout)?, pin.as_deref())
        }
        Sub::SendFile { peer, paths, wait, timeout, pin } => {
            let timeout = timeout.map(seconds).transpose()?;
            send_file::run(&config, &peer, &paths, seconds(wait)?, timeout, pin.as_deref())
        }
        Sub::Room { action, wait } => room::run(&config, action, seconds(wait)?),
        Sub::Invite => invite::run_invite(&config),
        Sub::Doctor { probe, json } => doctor::run(&config, probe.as_deref(), json),
        Sub::Connect { link, timeout } => invite::run_connect(&config, &link, seconds(timeout)?),
        Sub::Trust { peer, verify, unverify, accept_key, wait } => {
            let decision = match (verify, unverify, accept_key) {
                (true, _, _) => trust::Decision::Verify,
                (_, true, _) => trust::Decision::Unverify,
                (_, _, true) => trust::Decision::AcceptKey,
                _ => trust::Decision::Show,
            };
            trust::run(&config, &peer, decision, seconds(wait)?)
        }
    }
}

fn seconds(value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|err| anyhow::anyhow!("invalid number of seconds {value}: {err}"))
}
