#!/usr/bin/env bash
# Shared helpers of the sample lab: namespaces that are always removed, veth links, captures
# whose kernel drop count is checked. Source it from a pattern script; never run it alone.
#
# Safety: every host is a network namespace created here and registered for deletion, by name,
# on any exit (trap). Nothing is attached to or configured in the root namespace.

set -euo pipefail

LAB_PREFIX=${LAB_PREFIX:-nd}          # every namespace name starts with this
LAB_NAMESPACES=()                     # created by ns_add, deleted by lab_cleanup
LAB_CAPTURES=()                       # "pid:stderrfile:outfile" of running tcpdumps
LAB_TMP=$(mktemp -d)

lab_cleanup() {
    local entry pid
    for entry in "${LAB_CAPTURES[@]:-}"; do
        [ -n "$entry" ] || continue
        pid=${entry%%:*}
        kill -INT "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for ns in "${LAB_NAMESPACES[@]:-}"; do
        [ -n "$ns" ] || continue
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$LAB_TMP"
}
trap lab_cleanup EXIT INT TERM

# ns_add NAME: create namespace $LAB_PREFIX-NAME with lo up; prints nothing. Use `nsx NAME cmd...`.
ns_add() {
    local ns="$LAB_PREFIX-$1"
    ip netns del "$ns" 2>/dev/null || true   # idempotent: a leftover of an aborted run
    ip netns add "$ns"
    LAB_NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
}

# nsx NAME CMD...: run CMD inside namespace NAME
nsx() { local ns="$LAB_PREFIX-$1"; shift; ip netns exec "$ns" "$@"; }

# veth NAME1 IF1 NAME2 IF2 [MAC1 MAC2]: a veth pair between two lab namespaces, both ends up.
# Fixed MACs keep captures reproducible.
veth() {
    local a="$LAB_PREFIX-$1" ia=$2 b="$LAB_PREFIX-$3" ib=$4
    ip -n "$a" link add "$ia" type veth peer name "$ib" netns "$b"
    if [ -n "${5:-}" ]; then ip -n "$a" link set "$ia" address "$5"; fi
    if [ -n "${6:-}" ]; then ip -n "$b" link set "$ib" address "$6"; fi
    ip -n "$a" link set "$ia" up
    ip -n "$b" link set "$ib" up
}

# cap_start NAME IFACE FILE [tcpdump args...]: start tcpdump in a namespace with a large buffer.
cap_start() {
    local name=$1 iface=$2 out=$3; shift 3
    local err="$LAB_TMP/cap.$RANDOM.err"
    ip netns exec "$LAB_PREFIX-$name" tcpdump --immediate-mode -B 16384 -U -s 0 -i "$iface" -w "$out" "$@" 2>"$err" &
    LAB_CAPTURES+=("$!:$err:$out")
    # wait until tcpdump says it listens, at most 5 s
    local i
    for i in $(seq 50); do grep -q "listening on" "$err" 2>/dev/null && return 0; sleep 0.1; done
    echo "cap_start: tcpdump did not start on $name/$iface: $(cat "$err")" >&2
    return 1
}

# cap_stop_all: stop every capture and fail if the kernel dropped any packet.
cap_stop_all() {
    local entry pid err out dropped
    sleep 0.5   # let the last packets reach the capture
    for entry in "${LAB_CAPTURES[@]:-}"; do
        [ -n "$entry" ] || continue
        pid=${entry%%:*}; err=${entry#*:}; out=${err#*:}; err=${err%%:*}
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$err")
        if [ "${dropped:-0}" != "0" ]; then
            echo "cap_stop_all: $out: $dropped packets dropped by kernel" >&2
            return 1
        fi
    done
    LAB_CAPTURES=()
}
