#!/usr/bin/env bash
# LocalSend benchmark: one file (1 GiB by default) to and from localsendd (the LocalSend
# implementation the tests meet, .test-peers/ from scripts/install-deps.sh), beside
# localsendd -> localsendd, Pigeon -> Pigeon and nc -> nc, in one run, with ratios.
# Two network namespaces joined by one veth pair (10.78.0.1, 10.78.0.2), nothing else:
# no packet reaches a real interface. Files live on a tmpfs, so the disk is out of the
# picture. Needs root.  Usage: scripts/bench-localsend.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
localsendd=$PWD/.test-peers/bin/localsendd
[ -x "$localsendd" ] || { echo "localsendd missing: run scripts/install-deps.sh" >&2; exit 1; }
command -v nc >/dev/null || { apt-get update -qq && apt-get install -y -qq netcat-openbsd; }
cargo build --release --quiet
bin=$PWD/target/release/pigeon
py=$PWD/.test-peers/bin/python3

ns_a=pgbench-ls-a ns_b=pgbench-ls-b ip_a=10.78.0.1 ip_b=10.78.0.2 veth=pgbls tmpfs_mib=$((size_mib * 4 + 512))
# shellcheck source=scripts/lib/veth-pair.sh
. scripts/lib/veth-pair.sh

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/big.bin"
bytes=$(stat -c %s "$work/big.bin")

# Reference: the raw link.
nc_port=29601
in_b sh -c "nc -l $ip_b $nc_port > '$work/nc.bin'" & ncpid=$!
wait_for "nc listening" in_b sh -c "ss -ltn | grep -q :$nc_port"
t0=$(now); in_a nc -N "$ip_b" "$nc_port" < "$work/big.bin"; wait "$ncpid"; t1=$(now)
nc_s=$(secs "$t0" "$t1"); rm -f "$work/nc.bin"

# localsendd's control socket, from the outside: send a file and wait for its end.
ls_send() { # socket file address
    "$py" - "$@" <<'EOF'
import json, socket, sys
path, file, to = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall((json.dumps({"id": 1, "method": "send", "params": {"files": [file], "to": to}}) + "\n").encode())
old = None  # the last result before our send: a state frame repeats it until the next
answered = False
for line in s.makefile():
    frame = json.loads(line)
    if frame.get("id") == 1:
        if frame.get("error"):
            sys.exit(f"localsendd: {frame['error']}")
        answered = True
        continue
    result = (frame.get("data") or {}).get("result") or {}
    if not answered:
        old = result.get("id")
    elif result.get("id") not in (None, old):
        if result.get("kind") != "sent":
            sys.exit(f"localsendd: {result}")
        break
EOF
}
start_localsendd() { # side name
    local home=$work/$2
    mkdir -p "$home/dl"
    "in_$1" env HOME="$home" XDG_STATE_HOME="$home/state" XDG_CONFIG_HOME="$home/config" \
        XDG_RUNTIME_DIR="$home" "$localsendd" --alias "$2" --device-type desktop --unattended \
        --download-dir "$home/dl" --socket "$home/ctl.sock" --log-level warning > "$home/log" 2>&1 &
    wait_for "localsendd $2" test -S "$home/ctl.sock"
}

# localsendd -> localsendd (the anchor: that implementation with itself).
start_localsendd a ls-a
start_localsendd b ls-b
procs=$(pids_of "alias ls-")
cpu0=$(cpu $procs); t0=$(now)
ls_send "$work/ls-a/ctl.sock" "$work/big.bin" "$ip_b"
t1=$(now); ls_ls_s=$(secs "$t0" "$t1"); ls_ls_cpu=$(awk -v a="$cpu0" -v b="$(cpu $procs)" 'BEGIN { printf "%.2f", b - a }')
cmp "$work/big.bin" "$work/ls-b/dl/big.bin"; rm -f "$work/ls-b/dl/big.bin"
kill $(pids_of "alias ls-b"); sleep 0.5

# Pigeon in b beside localsendd in a.
start_pigeon b pb "$ip_a"
exec 8> "$work/pb.in"
wait_for "localsendd in Pigeon's list" grep -q '"family":"localsend"' "$work/pb.events"
procs=$(pids_of "alias ls-a") ; procs="$procs $(pids_of "data-dir $work/pb/")"
cpu0=$(cpu $procs); t0=$(now)
ls_send "$work/ls-a/ctl.sock" "$work/big.bin" "$ip_b"
t1=$(now); ls_pigeon_s=$(secs "$t0" "$t1"); ls_pigeon_cpu=$(awk -v a="$cpu0" -v b="$(cpu $procs)" 'BEGIN { printf "%.2f", b - a }')
cmp "$work/big.bin" "$work/pb-dl/big.bin"; rm -f "$work/pb-dl/big.bin"

cpu0=$(cpu $procs); t0=$(now)
in_b "$bin" --data-dir "$work/pb/" send-file --timeout 600 ls-a "$work/big.bin" > /dev/null
wait_for "ls-a's file" test -s "$work/ls-a/dl/big.bin"
t1=$(now); pigeon_ls_s=$(secs "$t0" "$t1"); pigeon_ls_cpu=$(awk -v a="$cpu0" -v b="$(cpu $procs)" 'BEGIN { printf "%.2f", b - a }')
cmp "$work/big.bin" "$work/ls-a/dl/big.bin"; rm -f "$work/ls-a/dl/big.bin"
kill $(pids_of "alias ls-a"); sleep 0.5

# Pigeon -> Pigeon over the same link.
start_pigeon a pa "$ip_b"
exec 7> "$work/pa.in"
wait_for "pb in pa's list" grep -q '"name":"pb"' "$work/pa.events"
procs="$(pids_of "data-dir $work/pa/") $(pids_of "data-dir $work/pb/")"
cpu0=$(cpu $procs); t0=$(now)
in_a "$bin" --data-dir "$work/pa/" send-file --timeout 600 pb "$work/big.bin" > /dev/null
t1=$(now); pigeon_pigeon_s=$(secs "$t0" "$t1"); pigeon_pigeon_cpu=$(awk -v a="$cpu0" -v b="$(cpu $procs)" 'BEGIN { printf "%.2f", b - a }')
cmp "$work/big.bin" "$work/pb-dl/big.bin"
pigeon_peak=$(peak $procs)

echo "| ${size_mib} MiB over one veth link | time | rate | CPU s (both ends) | ratio |"
echo "|---|---|---|---|---|"
echo "| nc -> nc (plain bytes) | ${nc_s} s | $(rate "$bytes" "$nc_s") GB/s | | |"
echo "| localsendd -> localsendd (anchor) | ${ls_ls_s} s | $(rate "$bytes" "$ls_ls_s") GB/s | $ls_ls_cpu | 1.00 |"
echo "| localsendd -> Pigeon | ${ls_pigeon_s} s | $(rate "$bytes" "$ls_pigeon_s") GB/s | $ls_pigeon_cpu | $(ratio "$ls_ls_s" "$ls_pigeon_s") × anchor |"
echo "| Pigeon -> localsendd | ${pigeon_ls_s} s | $(rate "$bytes" "$pigeon_ls_s") GB/s | $pigeon_ls_cpu | $(ratio "$ls_ls_s" "$pigeon_ls_s") × anchor |"
echo "| Pigeon -> Pigeon | ${pigeon_pigeon_s} s | $(rate "$bytes" "$pigeon_pigeon_s") GB/s | $pigeon_pigeon_cpu | $(ratio "$ls_ls_s" "$pigeon_pigeon_s") × anchor |"
echo "| Pigeon daemon peak memory (VmHWM) | ${pigeon_peak} KiB | | | |"
