#!/usr/bin/env bash
# The hidden app: `pigeon --hidden` in a tray (a private session bus with a stand-in panel,
# examples/tray_host.rs) on a private Xvfb display, its window never shown, beside a
# `pigeon daemon` as the anchor; CPU ticks and memory of both over IDLE_SECS (default 60).
# Loopback only (127.0.68.x, no broadcast): nothing reaches a real network or screen.
# Usage: scripts/bench-tray.sh   (IDLE_SECS=10 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${IDLE_SECS:-60}
cargo build --release --quiet --bin pigeon --example tray_host
work=$(mktemp -d)
display=:79
pids=()
cleanup() { exec 7>&- 8>&- 2>/dev/null || true; kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
Xvfb "$display" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
bus=$(dbus-daemon --session --fork --print-address=1 --print-pid=1 | head -2)
export DBUS_SESSION_BUS_ADDRESS=$(echo "$bus" | head -1)
pids+=("$(echo "$bus" | tail -1)")
mkfifo "$work/host.in" "$work/daemon.in"
target/release/examples/tray_host < "$work/host.in" > "$work/host.out" & pids+=($!)
exec 7> "$work/host.in"
for _ in $(seq 100); do [ -S /tmp/.X11-unix/X${display#:} ] && grep -q ready "$work/host.out" && break; sleep 0.05; done
flags() { echo --bind "127.0.68.$1" --port 24900 --no-broadcast --target "127.0.68.$2" --no-ipmsg --no-localsend --data-dir "$work/n$1"; }
# shellcheck disable=SC2046
DISPLAY=$display target/release/pigeon $(flags 1 2) --name "Hidden" --hidden 2> "$work/app.log" & app=$!; pids+=($app)
# shellcheck disable=SC2046
target/release/pigeon $(flags 2 1) --name "Anchor" daemon < "$work/daemon.in" > /dev/null 2>&1 & daemon=$!; pids+=($daemon)
exec 8> "$work/daemon.in"
for _ in $(seq 200); do grep -q registered "$work/host.out" && break; sleep 0.05; done
grep -q registered "$work/host.out" || { echo "the tray item never registered"; cat "$work/app.log"; exit 1; }
sleep 2   # both settled: discovery and the first heartbeats done
windows=$( (DISPLAY=$display xdotool search --name Pigeon 2>/dev/null || true) | wc -l)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
threads() { for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm")/${t##*/} $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
threads $app > "$work/threads.0"
a0=$(ticks $app); d0=$(ticks $daemon)
sleep "$idle"
a1=$(ticks $app); d1=$(ticks $daemon)
threads $app > "$work/threads.1"
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
echo "| over ${idle} s | CPU ticks | RSS |"
echo "|---|---|---|"
echo "| pigeon --hidden (windows made: $windows) | $((a1 - a0)) | $(rss $app) |"
echo "| pigeon daemon (anchor) | $((d1 - d0)) | $(rss $daemon) |"
echo "extra ticks of the hidden app: $(( (a1 - a0) - (d1 - d0) ))"
echo "threads of the hidden app with ticks in the run:"
join "$work/threads.0" "$work/threads.1" 2>/dev/null | awk '$3 > $2 {print "  " $1 ": " $3 - $2}' || true
