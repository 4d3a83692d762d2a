#!/usr/bin/env bash
# Idle CPU of a devnet: starts `allium-node devnet --nodes N` from each
# binary given, waits for "ready" and 10 s more, then sums the user+system
# CPU of every process of that devnet over 30 s (/proc/PID/stat).
#
#   scripts/idle-cpu.sh 50 OLD/allium-node target/release/allium-node
set -euo pipefail
NODES="$1"; shift
ticks() {
    local t=0 s
    for p in $(pgrep -f -- "--data-dir $1/" || true); do
        s=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null || true)
        [ -n "$s" ] && t=$((t + ${s% *} + ${s#* }))
    done
    echo "$t"
}
for bin in "$@"; do
    dir="$(mktemp -d)/net"
    "$bin" devnet --nodes "$NODES" --dir "$dir" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do grep -q '^ready' "$dir.log" && break; sleep 0.5; done
    grep '^ready' "$dir.log"
    sleep 10
    a=$(ticks "$dir"); n=$(pgrep -f -- "--data-dir $dir/" | wc -l)
    sleep 30
    b=$(ticks "$dir")
    printf "%s: %s processes, %d.%02d CPU-s in 30 s\n" "$bin" "$n" $(( (b - a) / 100 )) $(( (b - a) % 100 ))
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$(dirname "$dir")"
done
