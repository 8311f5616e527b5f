# Sourced by the benchmarks that need two hosts: two network namespaces joined by one veth
# pair and nothing else (no packet reaches a real interface), a tmpfs for the files (the disk
# out of the picture), helpers to time, rate and measure processes, and Pigeon daemons that
# read a FIFO the script holds open. Set before sourcing: ns_a ns_b ip_a ip_b (the two
# namespaces and their addresses), veth (a short prefix for the link's ends), tmpfs_mib.
# Needs root. Leaves $work (the tmpfs), in_a / in_b, and removes everything on exit.
work=$(mktemp -d /tmp/pigeon-bench.XXXXXX)
bench_cleanup() {
    exec 7>&- 8>&- 2>/dev/null || true
    for ns in "$ns_a" "$ns_b"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns_a" 2>/dev/null)$(ip netns pids "$ns_b" 2>/dev/null)" ] && break; sleep 0.1; done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    umount "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap bench_cleanup EXIT
mount -t tmpfs -o size="${tmpfs_mib}m" pigeon-bench "$work"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth-a" netns "$ns_a" type veth peer name "$veth-b" netns "$ns_b"
for side in a b; do
    ns=ns_$side addr=ip_$side
    ip -n "${!ns}" link set lo up
    ip -n "${!ns}" addr add "${!addr}/24" dev "$veth-$side"
    ip -n "${!ns}" link set "$veth-$side" up
    ip -n "${!ns}" route add 224.0.0.0/4 dev "$veth-$side"
done
in_a() { ip netns exec "$ns_a" "$@"; }
in_b() { ip netns exec "$ns_b" "$@"; }

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.2f", bytes / s / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# User + system CPU seconds the given processes have used so far.
cpu() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done |
    awk -v hz="$(getconf CLK_TCK)" '{ t += $1 } END { printf "%.2f", t / hz }'; }
# CPU seconds used since the value $1 of cpu() for the processes after it.
cpu_since() { local before=$1; shift; awk -v a="$before" -v b="$(cpu "$@")" 'BEGIN { printf "%.2f", b - a }'; }
# Peak resident memory (VmHWM, KiB) of the given processes.
peak() { for p in "$@"; do awk '/VmHWM/ { print $2 }' "/proc/$p/status"; done | sort -n | tail -1; }
wait_for() { # what, command...: polls for up to 20 s
    local what=$1; shift
    for _ in $(seq 1 200); do "$@" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for $what" >&2; exit 1
}
pids_of() { pgrep -f -- "$1" | tr '\n' ' '; }

# A Pigeon daemon in namespace `side`, called `name`, announcing to `target`, accepting
# every offer into $work/NAME-dl; it reads $work/NAME.in (open it for writing after this).
start_pigeon() { # side name target [flags...]
    local side=$1 name=$2 target=$3; shift 3
    mkfifo "$work/$name.in"
    "in_$side" "$bin" --no-broadcast --target "$target" --data-dir "$work/$name/" --name "$name" \
        --auto-accept --download-dir "$work/$name-dl" --no-ipmsg "$@" daemon \
        < "$work/$name.in" > "$work/$name.events" 2>/dev/null &
}
