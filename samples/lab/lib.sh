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
LAB_CAPLOG=()                         # "outfile|stderrfile|command" of every capture started
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
    LAB_CAPLOG+=("$out|$err|tcpdump --immediate-mode -B 16384 -U -s 0 -i $iface -w ${out##*/}${*:+ $*}")
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

# ---- additions (helper A): switches, multi-interface dumpcap captures, facts transcripts ----

# switch_add NAME BR: a namespace $LAB_PREFIX-NAME holding a Linux bridge BR (a lab "switch").
switch_add() {
    ns_add "$1"
    ip -n "$LAB_PREFIX-$1" link add "$2" type bridge
    ip -n "$LAB_PREFIX-$1" link set "$2" type bridge stp_state 0 forward_delay 0
    ip -n "$LAB_PREFIX-$1" link set "$2" up
}

# switch_port SWNAME BR PORT HOST IF [MAC]: veth from lab host HOST (its IF, optional MAC) to a new
# port PORT of bridge BR in switch namespace SWNAME.
switch_port() {
    local sw=$1 br=$2 port=$3 host=$4 hif=$5
    veth "$sw" "$port" "$host" "$hif" "" "${6:-}"
    ip -n "$LAB_PREFIX-$sw" link set "$port" master "$br"
}

LAB_DUMPCAPS=()                       # "pid:stderrfile:outfile" of running dumpcaps
# dumpcap_start NAME FILE IFACE... [-- dumpcap args]: one pcapng with several interfaces.
dumpcap_start() {
    local name=$1 out=$2; shift 2
    local args=() extra=() seen=0 a
    for a in "$@"; do
        if [ "$a" = "--" ]; then seen=1; continue; fi
        if [ $seen = 0 ]; then args+=(-i "$a"); else extra+=("$a"); fi
    done
    local err="$LAB_TMP/dumpcap.$RANDOM.err"
    ip netns exec "$LAB_PREFIX-$name" dumpcap -q -B 16 -s 0 "${args[@]}" "${extra[@]}" -w "$out" \
        2>"$err" &
    LAB_DUMPCAPS+=("$!:$err:$out")
    LAB_CAPLOG+=("$out|$err|dumpcap -q -B 16 -s 0 ${args[*]}${extra[*]:+ ${extra[*]}} -w ${out##*/}")
    local i
    for i in $(seq 50); do
        [ -s "$out" ] && [ "$(stat -c %s "$out")" -gt 200 ] && { sleep 0.3; return 0; }
        sleep 0.1
    done
    echo "dumpcap_start: dumpcap did not start in $name: $(cat "$err")" >&2
    return 1
}

# dumpcap_stop_all: stop every dumpcap and fail if any interface reports a drop.
dumpcap_stop_all() {
    local entry pid err out
    sleep 0.5
    for entry in "${LAB_DUMPCAPS[@]:-}"; do
        [ -n "$entry" ] || continue
        pid=${entry%%:*}; err=${entry#*:}; out=${err#*:}; err=${err%%:*}
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        chmod a+r "$out" 2>/dev/null || true
        # "Packets received/dropped on interface 'x': 12/0 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0)"
        if grep -E "dropped on interface" "$err" | grep -vqE ": [0-9]+/0 \(pcap:0/dumpcap:0/flushed:0"; then
            echo "dumpcap_stop_all: $out: drops reported: $(cat "$err")" >&2
            return 1
        fi
    done
    LAB_DUMPCAPS=()
}

# facts_cmd NAME HOST CMD...: print "root@HOST:~# CMD" and CMD's real output run in NAME's namespace.
facts_cmd() {
    local name=$1 host=$2; shift 2
    echo "root@$host:~# $*"
    ip netns exec "$LAB_PREFIX-$name" bash -c "$*" 2>&1 || true
}

# facts_host NAME HOST OUT [EXTRA-CMD...]: the terminal transcript an engineer pastes for a host:
# addresses, links, routes, rules, neighbours, the forwarding/ARP/rp_filter sysctls for all, lo
# and every interface, the firewall ruleset and the listening sockets; then EXTRA-CMDs.
facts_host() {
    local name=$1 host=$2 out=$3; shift 3
    local k
    {
        facts_cmd "$name" "$host" ip -o addr
        facts_cmd "$name" "$host" ip addr
        facts_cmd "$name" "$host" ip link
        facts_cmd "$name" "$host" ip route
        facts_cmd "$name" "$host" ip rule
        facts_cmd "$name" "$host" ip neigh
        facts_cmd "$name" "$host" "sysctl -a 2>/dev/null | grep -E '^net\.ipv4\.(ip_forward|conf\.[^.]+\.(rp_filter|accept_local|arp_ignore|arp_announce)) '"
        facts_cmd "$name" "$host" nft list ruleset
        facts_cmd "$name" "$host" ss -ltn
        for k in "$@"; do facts_cmd "$name" "$host" "$k"; done
        echo "root@$host:~# "
    } >"$out"
}

# ---- added for the part-b samples (ipsec-selector-gap, docker0-route-hijack, busy, combined) ----

# Multi-interface pcapng captures use helper A's dumpcap_start / dumpcap_stop_all above.

# facts_dump NAME HOST OUT [CMD...]: write what an engineer pastes about a host: a terminal transcript
# "[root@HOST ~]# cmd" + the real output of each command run in namespace NAME. The standard
# commands come first, then the extra CMDs (e.g. "iptables-save", "cat /etc/docker/daemon.json").
facts_dump() {
    local name=$1 host=$2 out=$3; shift 3
    local cmds=(
        "ip -o addr"
        "ip addr"
        "ip route"
        "ip rule"
        "ip link"
        "ip -o link"
        "ip neigh"
        "sysctl -a 2>/dev/null | grep -E '\\.(ip_forward|rp_filter|accept_local|arp_ignore|arp_announce) '"
        "$@"
        "ss -ltn"
    )
    local cmd
    : >"$out"
    for cmd in "${cmds[@]}"; do
        printf '[root@%s ~]# %s\n' "$host" "$cmd" >>"$out"
        ip netns exec "$LAB_PREFIX-$name" bash -c "$cmd" >>"$out" 2>&1 || true
    done
}

# facts_file HOST OUT SHOWN_CMD FILE: append "[root@HOST ~]# SHOWN_CMD" and FILE's content to the
# transcript OUT: product state written by the lab script (a config file shown with "cat /etc/...",
# or the output of a product command that does not run in the lab, e.g. "docker network inspect").
facts_file() {
    printf '[root@%s ~]# %s\n' "$1" "$3" >>"$2"
    cat "$4" >>"$2"
}

# facts_run NAME HOST OUT CMD: run CMD in namespace NAME now and append it, with its prompt and real
# output, to the transcript OUT (e.g. the ping and traceroute an engineer pastes with the facts).
facts_run() {
    local name=$1 host=$2 out=$3 cmd=$4
    printf '[root@%s ~]# %s\n' "$host" "$cmd" >>"$out"
    ip netns exec "$LAB_PREFIX-$name" bash -c "$cmd" >>"$out" 2>&1 || true
}

# lab_reset: stop the captures and remove the namespaces created so far (by name), so that one script
# can build several variants one after the other; the trap still covers what is created afterwards.
lab_reset() {
    local entry ns
    for entry in "${LAB_CAPTURES[@]:-}" "${LAB_DUMPCAPS[@]:-}"; do
        [ -n "$entry" ] || continue
        kill -INT "${entry%%:*}" 2>/dev/null || true
    done
    LAB_CAPTURES=(); LAB_DUMPCAPS=()
    for ns in "${LAB_NAMESPACES[@]:-}"; do
        [ -n "$ns" ] || continue
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    LAB_NAMESPACES=()
}

# ---- added for the multi-point samples (issue 8) ----

# facts_capture HOST OUT CAPFILE: append to the transcript OUT the capture command that wrote
# CAPFILE (as cap_start / dumpcap_start ran it, the output folder left out) with its real stderr
# (tcpdump's "listening on" and packet/drop counts; for dumpcap the command only), so that the
# facts say which host and interface took each capture. Call after cap_stop_all/dumpcap_stop_all.
facts_capture() {
    local host=$1 out=$2 cap=$3 entry
    for entry in "${LAB_CAPLOG[@]:-}"; do
        [ "${entry%%|*}" = "$cap" ] || continue
        local rest=${entry#*|}
        printf 'root@%s:~# %s\n' "$host" "${rest#*|}" >>"$out"
        # dumpcap's report names the absolute output path and is not a format netdiag's facts
        # loader knows: its drop counts are checked by dumpcap_stop_all, the command alone is kept
        case ${rest#*|} in dumpcap*) ;; *) cat "${rest%%|*}" >>"$out" ;; esac
        return 0
    done
    echo "facts_capture: no capture wrote $cap" >&2
    return 1
}
