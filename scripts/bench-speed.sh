#!/usr/bin/env bash
# Transfer speed against the link, side by side in one run (issue 21): over one veth link
# between two network namespaces (10.77.0.1 -> 10.77.0.2), tmpfs to tmpfs, one file of
# SIZE_MIB (default 1024) by iperf3 (the link), nc into a file, scp (AES-GCM) and Pigeon
# (send-file between two release daemons: encrypted, BLAKE3 on both ends, verified, placed);
# then 10,000 files of 4 KiB by tar | nc and by Pigeon. Ratios are within the run; CPU
# seconds (both ends, user + system) per GiB beside each. With PROFILE=1, `perf record`
# samples both daemons during the big file and the small files and prints where their time
# went (KEEP_PROFILE=1 also leaves big.perf and small.perf in /tmp for `perf report -i`).
# Needs root.  Usage: scripts/bench-speed.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need iperf3 iperf3
need nc netcat-openbsd
need scp openssh-client
[ -x /usr/sbin/sshd ] || { apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null; }
cargo build --release --quiet --bin pigeon
bin=$PWD/target/release/pigeon

ns_a=pgbench-sp-a ns_b=pgbench-sp-b ip_a=10.77.0.1 ip_b=10.77.0.2 veth=pgbsp tmpfs_mib=$((size_mib * 4 + 1024))
# shellcheck source=scripts/lib/veth-pair.sh
. scripts/lib/veth-pair.sh

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/big.bin"
bytes=$(stat -c %s "$work/big.bin")
gib=$(awk -v b="$bytes" 'BEGIN { printf "%.4f", b / 2^30 }')
per_gib() { awk -v c="$1" -v g="$gib" 'BEGIN { printf "%.2f", c / g }'; }
mkdir -p "$work/small"
for i in $(seq -w 1 10000); do head -c 4096 /dev/urandom > "$work/small/f$i"; done

# iperf3: what the link carries, no disk, no files.
in_b iperf3 -s -1 -B "$ip_b" -p 29700 > /dev/null & iperf=$!
wait_for "iperf3" in_b sh -c "ss -ltn | grep -q :29700"
link_bps=$(in_a iperf3 -c "$ip_b" -p 29700 -n "$bytes" -J | awk -F'[:,]' '/"bits_per_second"/ { v = $2 } END { print v }')
wait "$iperf" || true
link_s=$(awk -v b="$bytes" -v bps="$link_bps" 'BEGIN { printf "%.3f", b * 8 / bps }')

# nc into a file.
in_b sh -c "nc -l $ip_b 29701 > '$work/nc.bin'" & ncpid=$!
wait_for "nc" in_b sh -c "ss -ltn | grep -q :29701"
t0=$(now); in_a nc -N "$ip_b" 29701 < "$work/big.bin"; wait "$ncpid"; t1=$(now)
nc_s=$(secs "$t0" "$t1"); rm -f "$work/nc.bin"

# scp with AES-GCM, to an sshd of this run's own (its own keys and config, port 29702).
mkdir -p "$work/ssh"; chmod 700 "$work/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/client"
cp "$work/ssh/client.pub" "$work/ssh/authorized"
cat > "$work/ssh/sshd_config" <<EOF
ListenAddress $ip_b:29702
HostKey $work/ssh/host
AuthorizedKeysFile $work/ssh/authorized
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
UsePAM no
PidFile $work/ssh/pid
Subsystem sftp internal-sftp
EOF
mkdir -p /run/sshd
in_b /usr/sbin/sshd -f "$work/ssh/sshd_config" -E "$work/ssh/log" || { cat "$work/ssh/log"; exit 1; }
wait_for "sshd" in_b sh -c "ss -ltn | grep -q :29702"
ssh_opts=(-i "$work/ssh/client" -P 29702 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o Ciphers=aes128-gcm@openssh.com -o LogLevel=ERROR)
t0=$(now); in_a scp -q "${ssh_opts[@]}" "$work/big.bin" "root@$ip_b:$work/scp.bin" || { cat "$work/ssh/log"; exit 1; }; t1=$(now)
scp_s=$(secs "$t0" "$t1"); cmp "$work/big.bin" "$work/scp.bin"; rm -f "$work/scp.bin"

# tar | nc for the small files.
mkdir -p "$work/tar-out"
in_b sh -c "nc -l $ip_b 29703 | tar -x -C '$work/tar-out'" & tarpid=$!
wait_for "nc for tar" in_b sh -c "ss -ltn | grep -q :29703"
t0=$(now); in_a sh -c "tar -c -C '$work' small | nc -N $ip_b 29703"; wait "$tarpid"; t1=$(now)
tar_s=$(secs "$t0" "$t1"); rm -rf "$work/tar-out"

# Pigeon.
start_pigeon a pa "$ip_b"
exec 7> "$work/pa.in"
start_pigeon b pb "$ip_a"
exec 8> "$work/pb.in"
wait_for "pb in pa's list" grep -q '"name":"pb"' "$work/pa.events"
procs="$(pids_of "data-dir $work/pa/") $(pids_of "data-dir $work/pb/")"
profile_start() { # name: samples both daemons until profile_stop
    [ -n "${PROFILE:-}" ] || return 0
    command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
    perf record -q -F 999 -g -o "$work/$1.perf" -p "$(echo "$procs" | tr -s ' ' ',' | sed 's/,$//')" 2>/dev/null &
    perfpid=$!
    sleep 1
}
profile_stop() { [ -z "${PROFILE:-}" ] || { kill -INT "$perfpid"; wait "$perfpid" || true; }; }
[ -z "${KEEP_PROFILE:-}" ] || trap 'cp "$work"/*.perf /tmp/ 2>/dev/null; bench_cleanup' EXIT
profile_start big
cpu0=$(cpu $procs); t0=$(now)
in_a "$bin" --data-dir "$work/pa/" send-file --timeout 600 pb "$work/big.bin" > /dev/null
t1=$(now); pigeon_s=$(secs "$t0" "$t1"); pigeon_cpu=$(cpu_since "$cpu0" $procs)
profile_stop
cmp "$work/big.bin" "$work/pb-dl/big.bin"; rm -f "$work/pb-dl/big.bin"
profile_start small
cpu0=$(cpu $procs); t0=$(now)
in_a "$bin" --data-dir "$work/pa/" send-file --timeout 600 pb "$work/small" > /dev/null
t1=$(now); small_s=$(secs "$t0" "$t1"); small_cpu=$(cpu_since "$cpu0" $procs)
profile_stop
diff -r "$work/small" "$work/pb-dl/small" > /dev/null
pigeon_peak=$(peak $procs)

echo "| ${size_mib} MiB over one veth link, tmpfs to tmpfs | time | rate | CPU s per GiB (both ends) | Pigeon's time against it |"
echo "|---|---|---|---|---|"
echo "| iperf3 (the link) | ${link_s} s | $(rate "$bytes" "$link_s") GB/s | | $(ratio "$link_s" "$pigeon_s") × |"
echo "| nc into a file | ${nc_s} s | $(rate "$bytes" "$nc_s") GB/s | | $(ratio "$nc_s" "$pigeon_s") × |"
echo "| scp (AES-GCM) | ${scp_s} s | $(rate "$bytes" "$scp_s") GB/s | | $(ratio "$scp_s" "$pigeon_s") × |"
echo "| Pigeon send-file | ${pigeon_s} s | $(rate "$bytes" "$pigeon_s") GB/s | $(per_gib "$pigeon_cpu") | 1.00 |"
echo "| 10,000 × 4 KiB, tar \| nc | ${tar_s} s | | | $(ratio "$tar_s" "$small_s") × |"
echo "| 10,000 × 4 KiB, Pigeon | ${small_s} s | | $small_cpu (for 39 MiB) | 1.00 |"
echo "| Pigeon daemon peak memory (VmHWM) | ${pigeon_peak} KiB | | | |"
echo "(a ratio above 1: Pigeon took less time)"
if [ -n "${PROFILE:-}" ]; then
    for run in big small; do
        echo
        echo "Where the daemons' time went, $run (perf, self time by thread and symbol, top 25):"
        perf report -i "$work/$run.perf" --no-children -g none --sort comm --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -8
        perf report -i "$work/$run.perf" --no-children -g none --sort comm,sym --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | head -25
    done
fi
