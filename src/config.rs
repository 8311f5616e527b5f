//! Settings of one node: what the user chose (a TOML file in the config folder, overridden by
//! command-line flags) and where its files live (folders from the `directories` crate).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::protocol::announce::Status;

/// Discovery and messaging port of the native protocol (UDP and TCP), one above IP
/// Messenger's 2425 so both can run side by side.
pub const DEFAULT_PORT: u16 = 2426;

/// Name of the settings file, in the config folder or in `--data-dir`.
pub const CONFIG_FILE: &str = "config.toml";

/// The session's autostart entry, below the user's config folder (XDG autostart).
const AUTOSTART_ENTRY: &str = "autostart/pigeon.desktop";

/// What can go wrong while reading settings.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The settings file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The settings file is not valid TOML for these settings.
    #[error("invalid settings in {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The settings file cannot be written.
    #[error("cannot save {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No home folder, so no default folders; pass `--data-dir`.
    #[error("no home folder found; pass --data-dir")]
    NoHome,
}

/// The window's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// As the desktop is (dark when it says so, else light).
    #[default]
    System,
    /// Dark text on light backgrounds.
    Light,
    /// Light text on dark backgrounds.
    Dark,
}

/// How large the window's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextSize {
    /// A notch smaller: more on screen.
    Small,
    /// Message text of 14 points.
    #[default]
    Normal,
    /// A notch larger.
    Large,
    /// Two notches larger.
    Larger,
}

/// User-chosen settings, as stored in `config.toml`. Missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Display name shown to peers.
    pub name: String,
    /// Group (department, team) shown to peers and used to group the peer list.
    pub group: String,
    /// Availability shown to peers.
    pub status: Status,
    /// IPv4 address to bind; `0.0.0.0` listens on every interface and announces on all.
    pub bind: Ipv4Addr,
    /// UDP and TCP port of the native protocol.
    pub port: u16,
    /// Extra announce targets: a host or a subnet's broadcast address, with an optional
    /// `:port` (default: [`Settings::port`]). For VPNs, other subnets and loopback tests.
    pub targets: Vec<String>,
    /// Network interfaces discovery uses, by name (`eth0`, `wlan0`); empty: every one
    /// except the virtual bridges of containers and VMs (docker0, virbr0, veth…).
    pub interfaces: Vec<String>,
    /// Announce to the broadcast address of every interface.
    pub broadcast: bool,
    /// Announce to Pigeon's multicast group (and LocalSend's) on every interface: many
    /// Wi-Fi access points and managed switches that filter broadcasts forward multicast.
    pub multicast: bool,
    /// Find Pigeons over IPv6 too (link-local multicast on every interface, connections
    /// over IPv6): networks without IPv4, or that carry only IPv6 between some hosts. Only
    /// when bound to every address.
    pub ipv6: bool,
    /// Register and browse `_pigeon._tcp.local.` over mDNS (DNS-SD), which mDNS gateways
    /// carry between network segments. Only when bound to every address.
    pub mdns: bool,
    /// Where received files go; `None` means the user's Downloads/Pigeon.
    pub download_dir: Option<PathBuf>,
    /// Accept every file offer without asking.
    pub auto_accept: bool,
    /// Closing the window hides it in the tray (when the desktop has one) instead of quitting.
    pub keep_running: bool,
    /// The most each transfer sends per second, in KB/s of 1,024 bytes (0: no limit).
    pub speed_limit_kbps: u64,
    /// The most all transfers together send per second, in KB/s (0: no limit).
    pub total_speed_limit_kbps: u64,
    /// The user was told, on a desktop without a tray, that closing the window quits Pigeon.
    pub told_no_tray: bool,
    /// Seconds without keyboard or mouse input after which the status shows away until the
    /// user is back (0: never).
    pub away_after_secs: u64,
    /// Language of the window (`en`, `zh-CN`); `None` follows the system locale.
    pub language: Option<String>,
    /// Light or dark window, or as the desktop is.
    pub theme: Theme,
    /// Size of the window's text.
    pub text_size: TextSize,
    /// Talk to IP Messenger clients (IP Messenger, FeiQ, iptux) too.
    pub ipmsg: bool,
    /// UDP port of IP Messenger (2425 for every real client; others for tests).
    pub ipmsg_port: u16,
    /// Talk to LocalSend devices (phones, Macs, PCs with the LocalSend app) too.
    pub localsend: bool,
    /// LocalSend's port, UDP and TCP (53317 for every real app; others for tests).
    pub localsend_port: u16,
    /// The PIN LocalSend devices must give to send us anything (none: no PIN).
    pub localsend_pin: Option<String>,
}

impl Settings {
    /// Whether Pigeons are found over IPv6 too: on, and bound to every address (a node
    /// bound to one IPv4 address means that address only).
    pub fn uses_ipv6(&self) -> bool {
        self.ipv6 && self.bind.is_unspecified()
    }

    /// Whether Pigeons are found over mDNS too: on, and bound to every address.
    pub fn uses_mdns(&self) -> bool {
        self.mdns && self.bind.is_unspecified()
    }

    /// Reads a settings file; a missing file gives the defaults.
    pub fn read(path: &Path) -> Result<Settings, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(source) }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Changes the settings file by `change`, writing only the keys whose values it
    /// changed: the rest stays as the file had it, and a default the file leaves out stays
    /// out (so a value in effect for one session, or a default of today, is never saved
    /// by a change to something else).
    pub fn update_file(path: &Path, change: impl FnOnce(&mut Settings)) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        let parse_err = |source| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(source) };
        let mut file: toml::Table = toml::from_str(&text).map_err(parse_err)?;
        let before: Settings = toml::from_str(&text).map_err(parse_err)?;
        let mut after = before.clone();
        change(&mut after);
        let table = |settings: &Settings| toml::Table::try_from(settings).unwrap_or_default();
        let (old, new) = (table(&before), table(&after));
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            if old.get(key) != new.get(key) {
                match new.get(key) {
                    Some(value) => file.insert(key.clone(), value.clone()),
                    None => file.remove(key),
                };
            }
        }
        write_atomically(path, &toml::to_string_pretty(&file))
    }
}

/// Writes `text` (or the reason it could not be made) to `path` whole or not at all.
fn write_atomically(path: &Path, text: &Result<String, toml::ser::Error>) -> Result<(), ConfigError> {
    let write_err = |source| ConfigError::Write { path: path.to_path_buf(), source };
    let text = text.as_ref().map_err(|err| write_err(std::io::Error::other(err.to_string())))?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(write_err)?;
    }
    // A crash mid-write leaves the old file, never half a new one.
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, text).map_err(write_err)?;
    std::fs::rename(&partial, path).map_err(write_err)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: default_name(),
            group: String::new(),
            status: Status::Online,
            bind: Ipv4Addr::UNSPECIFIED,
            port: DEFAULT_PORT,
            targets: Vec::new(),
            interfaces: Vec::new(),
            broadcast: true,
            multicast: true,
            ipv6: true,
            mdns: true,
            download_dir: None,
            auto_accept: false,
            keep_running: true,
            told_no_tray: false,
            speed_limit_kbps: 0,
            total_speed_limit_kbps: 0,
            away_after_secs: 600,
            language: None,
            theme: Theme::System,
            text_size: TextSize::Normal,
            ipmsg: true,
            ipmsg_port: crate::protocol::ipmsg::IPMSG_PORT,
            localsend: true,
            localsend_port: crate::protocol::localsend::PORT,
            localsend_pin: None,
        }
    }
}

/// Everything a node needs to start: settings plus the folder that holds its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The user's settings.
    pub settings: Settings,
    /// Holds the history database, the lock and the control socket of this node.
    pub data_dir: PathBuf,
    /// Where the settings are read from and saved to.
    pub config_file: PathBuf,
    /// Where the session's autostart entry for Pigeon goes (`None`: no home folder).
    pub autostart_entry: Option<PathBuf>,
}

impl Config {
    /// A config with default settings whose state lives in `data_dir` (tests, benchmarks).
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            settings: Settings::default(),
            config_file: data_dir.join(CONFIG_FILE),
            autostart_entry: Some(data_dir.join(AUTOSTART_ENTRY)),
            data_dir,
        }
    }

    /// Reads settings for `data_dir` (or the user's default folders when `None`): the
    /// settings file sits in the data folder when one is given, else in the config folder.
    pub fn load(data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let (data_dir, config_file) = match data_dir {
            Some(dir) => (dir.to_path_buf(), dir.join(CONFIG_FILE)),
            None => {
                let dirs = project_dirs().ok_or(ConfigError::NoHome)?;
                (dirs.data_dir().to_path_buf(), dirs.config_dir().join(CONFIG_FILE))
            }
        };
        let settings = Settings::read(&config_file)?;
        let autostart_entry =
            directories::BaseDirs::new().map(|dirs| dirs.config_dir().join(AUTOSTART_ENTRY));
        Ok(Config { settings, data_dir, config_file, autostart_entry })
    }

    /// The folder received files go to.
    pub fn download_dir(&self) -> PathBuf {
        self.settings.download_dir.clone().unwrap_or_else(|| {
            directories::UserDirs::new()
                .and_then(|dirs| dirs.download_dir().map(Path::to_path_buf))
                .unwrap_or_else(|| self.data_dir.join("downloads"))
                .join("Pigeon")
        })
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "Pigeon")
}

/// This machine's host name, or "localhost" when the system will not say.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// "user@host": recognisable to colleagues before anyone picks a name.
fn default_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| String::from("pigeon"));
    format!("{user}@{}", host_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_partial_file_keeps_other_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(Some(dir.path())).unwrap();
        assert_eq!(config.settings.port, DEFAULT_PORT);
        assert_eq!(config.data_dir, dir.path());
        std::fs::write(dir.path().join(CONFIG_FILE), "name = \"Ana\"\ntargets = [\"10.8.0.255\"]\n").unwrap();
        let config = Config::load(Some(dir.path())).unwrap();
        assert_eq!(config.settings.name, "Ana");
        assert_eq!(config.settings.targets, ["10.8.0.255"]);
        assert!(config.settings.broadcast);
    }

    #[test]
    fn saved_settings_load_back_and_only_what_changed_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(Some(dir.path())).unwrap();
        std::fs::write(&config.config_file, "group = \"R&D\"\n").unwrap();
        let change = |settings: &mut Settings| {
            settings.name = String::from("飞鸽 Ana");
            settings.targets = vec![String::from("10.8.0.255")];
            settings.language = Some(String::from("zh-CN"));
        };
        Settings::update_file(&config.config_file, change).unwrap();
        let mut expected = Settings { group: String::from("R&D"), ..Settings::default() };
        change(&mut expected);
        assert_eq!(Config::load(Some(dir.path())).unwrap().settings, expected);
        let file: toml::Table =
            toml::from_str(&std::fs::read_to_string(&config.config_file).unwrap()).unwrap();
        let keys: Vec<&str> = file.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["group", "language", "name", "targets"],
            "no default written (bind, broadcast, ipmsg…)"
        );
        // Back to "follow the system": the key goes.
        Settings::update_file(&config.config_file, |settings| settings.language = None).unwrap();
        let text = std::fs::read_to_string(&config.config_file).unwrap();
        assert!(!text.contains("language") && text.contains("name"), "{text}");
    }

    #[test]
    fn invalid_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "port = \"many\"\n").unwrap();
        let err = Config::load(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
