#!/usr/bin/env bash
# Window benchmarks. Everything stays on loopback (127.0.67.1, no broadcast) and on a private
# Xvfb display, never the real network or screen.
#  1. frame time with 1,000 peers and a 100,000-message conversation (examples/bench_window.rs)
#  2. time from launch to the first frame, idle CPU over IDLE_SECS (default 60) and memory
#  3. idle CPU with a text field focused (its caret blinks for 10 s after input, then stays)
# Usage: scripts/bench-window.sh   (IDLE_SECS=10 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${IDLE_SECS:-60}
cargo build --release --quiet --bin pigeon --example bench_window
echo "== frame time (in process, no GPU)"
target/release/examples/bench_window
work=$(mktemp -d)
display=:78
Xvfb "$display" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb ${app:-} 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -S /tmp/.X11-unix/X${display#:} ] && break; sleep 0.05; done
echo "== launch to first frame (release binary, Xvfb, Mesa software OpenGL)"
start=$(date +%s%N)
DISPLAY=$display RUST_LOG=pigeon=info target/release/pigeon --bind 127.0.67.1 --port 24800 \
    --no-broadcast --data-dir "$work/data" --name "基准 Bench" 2> "$work/log" &
app=$!
for _ in $(seq 600); do grep -q "first frame" "$work/log" && break; sleep 0.01; done
end=$(date +%s%N)
echo "first frame after $(( (end - start) / 1000000 )) ms (app's own count: $(grep -o 'first frame after [0-9]* ms' "$work/log"))"
echo "== idle for ${idle}s"
ticks() { awk '{print $14 + $15}' "/proc/$app/stat"; }
before=$(ticks)
sleep "$idle"
after=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v s="$idle" \
    'BEGIN { printf "idle CPU: %.2f%% of one core (%d ticks in %d s)\n", 100 * t / hz / s, t, s }'
grep -E "VmRSS|VmHWM" "/proc/$app/status"
echo "== idle with the search field focused (Ctrl+F), from 1 s and from 11 s after the key"
window=$(DISPLAY=$display xdotool search --name Pigeon | head -1)
DISPLAY=$display xdotool windowfocus --sync "$window" key ctrl+f
idle_cpu() { # label seconds
    local before after
    before=$(ticks); sleep "$2"; after=$(ticks)
    awk -v t=$((after - before)) -v hz="$hz" -v s="$2" -v what="$1" \
        'BEGIN { printf "%s: %.2f%% of one core (%d ticks in %d s)\n", what, 100 * t / hz / s, t, s }'
}
sleep 1
idle_cpu "focused, caret blinking (1-10 s)" 9
sleep 1
idle_cpu "focused, caret steady (after 11 s)" "$idle"
