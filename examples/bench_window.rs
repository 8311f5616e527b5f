//! Frame time of the full window, measured in process: 1,000 peers in 20 groups and a
//! conversation of 100,000 rows (every 20th a transfer's card), scrolled from the bottom towards the top and back, one
//! wheel step per frame. The window is drawn by egui_kittest without a GPU, so the time is
//! the CPU cost of a frame (layout and tessellation), which is what keeps a window smooth on
//! a slow machine. Run through `scripts/bench-window.sh`.

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot set up should stop loudly")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use pigeon::node::PeerInfo;
use pigeon::node::TransferInfo;
use pigeon::protocol::announce::Status;
use pigeon::protocol::ids::{MsgId, PeerId, TransferId};
use pigeon::protocol::keys::PublicKey;
use pigeon::store::{ChatMessage, Direction, MessageState, TransferState, Trust};
use pigeon::ui::{PigeonApp, WINDOW_SIZE};
use pigeon::{Config, Event, Node};

const PEERS: u32 = 1_000;
const MESSAGES: u32 = 100_000;
const FRAMES: usize = 600;
/// Points per wheel event: enough to cross all 100,000 messages in `FRAMES / 2` frames.
const WHEEL_STEP: f32 = 25_000.0;
/// Every this many rows, a transfer's card.
const CARD_EVERY: u32 = 20;

fn id(n: u32) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[15] = 1;
    bytes
}

fn peer(n: u32) -> PeerInfo {
    PeerInfo {
        id: PeerId::from_bytes(id(n)),
        name: if n.is_multiple_of(3) { format!("同事 {n}") } else { format!("Colleague {n}") },
        group: format!("Team {}", n % 20),
        host: format!("pc-{n}"),
        addr: format!("10.0.{}.{}", n / 250, n % 250 + 1),
        port: 2426,
        status: if n.is_multiple_of(7) { Status::Away } else { Status::Online },
        key: Some(PublicKey::from_bytes([1; 32])),
        trust: Trust::Unverified,
        client: None,
        family: pigeon::node::Family::Pigeon,
    }
}

fn message(peer: PeerId, n: u32) -> ChatMessage {
    let text = match n % 4 {
        0 => format!("Message {n}: short one."),
        1 => format!("第 {n} 条消息：我们下午三点在会议室见面，讨论新版本的发布计划，请大家准时参加。"),
        2 => format!("Message {n} with a link https://example.org/item/{n} and some more words after it."),
        _ => format!("Message {n}\nspans\nseveral lines."),
    };
    ChatMessage {
        seq: i64::from(n) + 1,
        msg_id: MsgId::from_bytes(id(n)),
        peer,
        direction: if n.is_multiple_of(2) { Direction::Incoming } else { Direction::Outgoing },
        text,
        sent_at_ms: 1_790_000_000_000 + u64::from(n) * 60_000,
        state: MessageState::Read,
        unconfirmed_sender: false,
        transfer: n.is_multiple_of(CARD_EVERY).then(|| TransferId::from_bytes(id(n))),
        also_to: Vec::new(),
    }
}

fn transfer(peer: PeerId, n: u32) -> TransferInfo {
    let state = [TransferState::Completed, TransferState::Offered, TransferState::Declined]
        [(n / CARD_EVERY % 3) as usize];
    TransferInfo {
        transfer_id: TransferId::from_bytes(id(n)),
        peer,
        direction: if n.is_multiple_of(2) { Direction::Incoming } else { Direction::Outgoing },
        state,
        files: 3,
        folders: 1,
        total_bytes: 12_345_678,
        summary: format!("3 files in 1 folder, 12.3 MB: 报告 {n}, photo-{n}.jpg"),
        entries: Vec::new(),
        entries_total: 4,
        reason: String::new(),
        room: None,
        names: vec![format!("报告 {n}"), format!("photo-{n}.jpg")],
        more_names: false,
        created_ms: 1_790_000_000_000 + u64::from(n) * 60_000,
        row: Some(i64::from(n) + 1),
        saved_in: None,
    }
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() - 1) * percent / 100]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path());
    config.settings.bind = std::net::Ipv4Addr::new(127, 200, 90, 1);
    config.settings.port = 29_500;
    config.settings.broadcast = false;
    config.settings.language = Some("en".into());
    let node = Node::start(&config).unwrap();
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::from(WINDOW_SIZE))
        .build_eframe(move |cc| PigeonApp::new(&cc.egui_ctx, node, config, Arc::new(|| {})).unwrap());

    // The first row of the first group, so it is on screen without scrolling the list.
    let talker = peer(100);
    let started = Instant::now();
    for n in 1..=PEERS {
        harness.state_mut().apply(Event::PeerJoined { peer: peer(n) });
    }
    let messages: Vec<ChatMessage> = (0..MESSAGES).map(|n| message(talker.id, n)).collect();
    let transfers = (0..MESSAGES).step_by(CARD_EVERY as usize).map(|n| transfer(talker.id, n)).collect();
    harness.state_mut().apply(Event::History {
        peer: talker.id,
        messages,
        has_more: false,
        after: None,
        transfers,
    });
    println!("filled {PEERS} peers and {MESSAGES} messages in {:?}", started.elapsed());
    harness.step();
    harness.get_by_label(&talker.name).click();
    for _ in 0..5 {
        harness.step();
    }

    let centre = egui::pos2(600.0, 300.0);
    let mut times = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        // Up through the whole conversation in the first half, back down in the second.
        let delta = if frame < FRAMES / 2 { WHEEL_STEP } else { -WHEEL_STEP };
        harness.event(egui::Event::PointerMoved(centre));
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, delta),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
        let start = Instant::now();
        harness.step();
        times.push(start.elapsed());
        if frame == FRAMES / 2 - 1 {
            let shown: Vec<String> = harness
                .query_all_by(|node| {
                    node.value().is_some_and(|v| v.starts_with("Message ") || v.starts_with("第"))
                })
                .filter_map(|node| egui_kittest::kittest::NodeT::accesskit_node(&node).value())
                .map(|label| label.chars().take(14).collect())
                .collect();
            println!("on screen at the top: {shown:?}");
        }
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap();
    println!(
        "frame time over {FRAMES} scrolling frames: mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        mean.as_secs_f64() * 1e3,
        percentile(&times, 50).as_secs_f64() * 1e3,
        percentile(&times, 99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
    );
}
