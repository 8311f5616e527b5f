//! A private virtual X server (Xvfb) per test, for the window and for iptux.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Screen of the virtual X server.
pub const SCREEN: (u32, u32) = (1024, 768);

static NEXT_DISPLAY: AtomicU16 = AtomicU16::new(0);

/// A private Xvfb, killed when dropped.
pub struct Xvfb {
    child: Child,
    /// The DISPLAY value, `:N`.
    pub display: String,
}

impl Xvfb {
    /// Starts a server, or returns `None` (loudly) when Xvfb is not installed outside CI.
    pub fn start() -> Option<Xvfb> {
        if Process::new("Xvfb").arg("-help").stderr(Stdio::null()).status().is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI must install Xvfb (scripts/install-deps.sh)");
            eprintln!("SKIPPED: Xvfb is not installed");
            return None;
        }
        // Display numbers per process and test, far from a desktop's :0 and :1.
        for _ in 0..20 {
            let n =
                300 + (std::process::id() % 500) as u16 * 4 + NEXT_DISPLAY.fetch_add(1, Ordering::Relaxed);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            if socket.exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let screen = format!("{}x{}x24", SCREEN.0, SCREEN.1);
            let child = Process::new("Xvfb")
                .args([format!(":{n}").as_str(), "-screen", "0", &screen, "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut xvfb = Xvfb { child, display: format!(":{n}") };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if socket.exists() {
                    return Some(xvfb);
                }
                if xvfb.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
        panic!("no Xvfb display could be started");
    }

    /// The screen's pixels as RGB bytes, cropped to `(x, y, width, height)`.
    pub fn screenshot(&self, (x, y, width, height): (u32, u32, u32, u32)) -> Vec<u8> {
        let out = Process::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .args(["-crop", &format!("{width}x{height}+{x}+{y}"), "-depth", "8", "rgb:-"])
            .output()
            .expect("imagemagick's import is installed");
        assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
