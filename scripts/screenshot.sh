#!/usr/bin/env bash
# Regenerates docs/images/window.png: a window on a private Xvfb display with three
# `pigeon daemon` peers, all on loopback (127.0.66.x), so nothing reaches a real network.
# Needs the packages of install-deps.sh (Xvfb, ImageMagick) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/pigeon
work=$(mktemp -d)
display=:77
port=24700
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
Xvfb "$display" -screen 0 1024x680x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
flags() { # flags for node $1 of 4
    local f=(--bind "127.0.66.$1" --port "$port" --no-broadcast --data-dir "$work/n$1")
    for o in 1 2 3 4; do [ "$o" = "$1" ] || f+=(--target "127.0.66.$o"); done
    echo "${f[@]}"
}
daemon() { # name group node
    mkfifo "$work/in$3"
    sleep 300 > "$work/in$3" & pids+=($!)
    # shellcheck disable=SC2046
    "$bin" $(flags "$3") --name "$1" --group "$2" daemon < "$work/in$3" > "$work/out$3" 2>/dev/null & pids+=($!)
}
daemon "李雷 Li Lei" "研发 R&D" 2
daemon "Bo Chen" "研发 R&D" 3
daemon "Marta" "Design" 4
sleep 1
# shellcheck disable=SC2046
DISPLAY=$display LANG=en_US.UTF-8 "$bin" $(flags 1) --name "安娜 Ana" --group "研发 R&D" > /dev/null 2>&1 & pids+=($!)
sleep 2
ana=$(grep -o '"id":"[0-9a-f]*","name":"安娜 Ana"' "$work/out2" | head -1 | cut -d'"' -f4)
say() { echo "{\"type\":\"send_message\",\"to\":[\"$ana\"],\"text\":\"$2\"}" > "$work/in$1"; sleep 0.3; }
say 2 "早上好！今天下午三点开会，讨论新版本的发布计划。"
say 2 "The agenda is on https://wiki.example.org/release-2.0 — please add your items."
say 3 "Lunch at 12?"
printf 'quarterly numbers\n' > "$work/report.txt"
echo "{\"type\":\"send_files\",\"to\":[\"$ana\"],\"paths\":[\"$work/report.txt\"]}" > "$work/in2"
sleep 1
export DISPLAY=$display
window=$(xdotool search --name Pigeon | head -1)
xdotool windowfocus --sync "$window"
xdotool mousemove 120 253 click 1   # 李雷 Li Lei: Design header, Marta, R&D header, Bo Chen, Li Lei
sleep 0.5
xdotool mousemove 500 640 click 1
xdotool type --delay 20 "Sounds good, see you at three."
xdotool key Return
sleep 1
import -window root docs/images/window.png
echo "wrote docs/images/window.png"
