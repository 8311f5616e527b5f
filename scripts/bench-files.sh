#!/usr/bin/env bash
# File-transfer benchmark on loopback (127.201.0.x), never the real network: one 1 GiB file
# and 10,000 files of 4 KiB, Pigeon beside cp, nc -> nc and tar | nc, in one run, with ratios.
# Usage: scripts/bench-files.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
command -v nc >/dev/null || { apt-get update -qq && apt-get install -y -qq netcat-openbsd; }
cargo build --release --quiet
bin=$PWD/target/release/pigeon
work=$(mktemp -d /var/tmp/pigeon-bench.XXXXXX)
cleanup() { pkill -f -- "--data-dir $work/" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.2f", bytes / s / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

mkdir -p "$work/src/small"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/src/big.bin"
head -c $((10000 * 4096)) /dev/urandom | split -b 4096 -a 5 - "$work/src/small/f"
cat "$work/src/big.bin" > /dev/null   # into the page cache
# Every measurement starts with no dirty pages: otherwise whichever runs after a big write
# waits for that write to reach the disk.
settle() { sync; }
big_bytes=$(stat -c %s "$work/src/big.bin")
small_bytes=$((10000 * 4096))

# References.
settle; t0=$(now); cp "$work/src/big.bin" "$work/cp.bin"; t1=$(now); rm -f "$work/cp.bin"
cp_s=$(secs "$t0" "$t1")
port=29501
nc -l 127.201.0.2 "$port" > "$work/nc.bin" & ncpid=$!
settle; t0=$(now); nc -N 127.201.0.2 "$port" < "$work/src/big.bin"; wait "$ncpid"; t1=$(now); rm -f "$work/nc.bin"
nc_s=$(secs "$t0" "$t1")
mkdir -p "$work/tar-out"
nc -l 127.201.0.2 "$((port + 1))" | tar -x -C "$work/tar-out" & ncpid=$!
settle; t0=$(now); tar -c -C "$work/src" small | nc -N 127.201.0.2 "$((port + 1))"; wait "$ncpid"; t1=$(now)
tar_s=$(secs "$t0" "$t1")

# Pigeon: two daemons, the receiver accepts automatically; send-file hands over to the sender.
# Each daemon reads a FIFO this script holds open: when the script ends, stdin ends and the
# daemon stops cleanly.
mkfifo "$work/ana.in" "$work/bo.in"
start_daemon() { # name ip other download
    "$bin" --bind "$2" --port 29426 --no-broadcast --target "$3" --data-dir "$work/$1/" \
        --name "$1" --auto-accept --download-dir "$4" daemon < "$work/$1.in" > "$work/$1.events" 2>/dev/null &
}
start_daemon ana 127.201.0.1 127.201.0.2 "$work/ana-dl"
start_daemon bo 127.201.0.2 127.201.0.1 "$work/bo-dl"
exec 7> "$work/ana.in" 8> "$work/bo.in"
for _ in $(seq 1 100); do grep -q peer_joined "$work/ana.events" 2>/dev/null && break; sleep 0.05; done
settle; t0=$(now); "$bin" --data-dir "$work/ana/" send-file --timeout 600 bo "$work/src/big.bin" > /dev/null; t1=$(now)
pigeon_big_s=$(secs "$t0" "$t1")
cmp "$work/src/big.bin" "$work/bo-dl/big.bin"
settle; t0=$(now); "$bin" --data-dir "$work/ana/" send-file --timeout 600 bo "$work/src/small" > /dev/null; t1=$(now)
pigeon_small_s=$(secs "$t0" "$t1")
diff -r "$work/src/small" "$work/bo-dl/small"
peak_kib() { # highest VmHWM of the pigeon daemons
    for p in $(pgrep -f -- "--data-dir $work/"); do awk '/VmHWM/ {print $2}' "/proc/$p/status"; done | sort -n | tail -1
}
peak=$(peak_kib)

echo "| measure | time | rate | Pigeon ratio |"
echo "|---|---|---|---|"
echo "| cp, ${size_mib} MiB (same disk) | ${cp_s} s | $(rate "$big_bytes" "$cp_s") GB/s | $(ratio "$cp_s" "$pigeon_big_s") × cp |"
echo "| nc -> nc, ${size_mib} MiB | ${nc_s} s | $(rate "$big_bytes" "$nc_s") GB/s | $(ratio "$nc_s" "$pigeon_big_s") × nc |"
echo "| Pigeon send-file, ${size_mib} MiB, encrypted, hashed and verified | ${pigeon_big_s} s | $(rate "$big_bytes" "$pigeon_big_s") GB/s | |"
echo "| tar \| nc, 10,000 × 4 KiB | ${tar_s} s | $(rate "$small_bytes" "$tar_s") GB/s | $(ratio "$tar_s" "$pigeon_small_s") × tar\|nc |"
echo "| Pigeon send-file, 10,000 × 4 KiB | ${pigeon_small_s} s | $(rate "$small_bytes" "$pigeon_small_s") GB/s | |"
echo "| Pigeon daemon peak memory (VmHWM) | ${peak} KiB | | |"
