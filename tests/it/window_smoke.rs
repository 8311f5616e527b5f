//! The real `pigeon` binary opens its window on a virtual X server (Xvfb), bound to loopback:
//! its first frame appears, the screen is not blank, and a Chinese display name is drawn with
//! glyphs — the same window with the CJK font switched off draws that name differently (as
//! boxes).

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Net, pigeon_bin};
use crate::xvfb::{SCREEN, Xvfb};

/// Where the own name is drawn: the left end of the top bar.
const NAME_AREA: (u32, u32, u32, u32) = (0, 0, 220, 32);

/// A `pigeon` window on `xvfb`, killed when dropped.
struct App(Child);

impl App {
    fn start(xvfb: &Xvfb, net: &Net, data_dir: &Path, cjk_font: bool) -> App {
        let log = data_dir.join("stderr.log");
        std::fs::create_dir_all(data_dir).unwrap();
        let mut process = Process::new(pigeon_bin());
        process
            .args(net.flags(1, 1, data_dir))
            .args(["--name", "飞鸽测试"])
            .env("DISPLAY", &xvfb.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("LANG", "en_US.UTF-8")
            .env("RUST_LOG", "pigeon=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if !cjk_font {
            process.env("PIGEON_CJK_FONT", "none");
        }
        let mut app = App(process.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("first frame after") {
                return app;
            }
            assert!(app.0.try_wait().unwrap().is_none(), "pigeon exited:\n{text}");
            assert!(Instant::now() < deadline, "no first frame within 30 s:\n{text}");
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Screenshots until the window's pixels are there (the first frame is logged just before
/// it is shown); returns the full screen and the name area.
fn wait_for_pixels(xvfb: &Xvfb) -> (Vec<u8>, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let screen = xvfb.screenshot((0, 0, SCREEN.0, SCREEN.1));
        let colours: std::collections::HashSet<&[u8]> = screen.chunks(3).collect();
        if colours.len() > 20 {
            return (screen, xvfb.screenshot(NAME_AREA));
        }
        assert!(Instant::now() < deadline, "the screen stayed blank ({} colours)", colours.len());
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn the_binary_opens_a_window_that_draws_chinese_names() {
    let Some(xvfb) = Xvfb::start() else { return };
    let net = Net::new();
    let dirs = tempfile::tempdir().unwrap();

    let with_font = App::start(&xvfb, &net, &dirs.path().join("with-font"), true);
    let (_, name_with_font) = wait_for_pixels(&xvfb);
    drop(with_font);

    let without_font = App::start(&xvfb, &net, &dirs.path().join("without-font"), false);
    let (_, name_without_font) = wait_for_pixels(&xvfb);
    drop(without_font);

    let differing = name_with_font.chunks(3).zip(name_without_font.chunks(3)).filter(|(a, b)| a != b).count();
    assert!(
        differing > 100,
        "the CJK name looks the same with and without a CJK font ({differing} pixels differ)"
    );
}
