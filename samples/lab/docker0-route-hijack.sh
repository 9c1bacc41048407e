#!/usr/bin/env bash
# Sample "docker0-route-hijack" (seed 002, scenario 2): ECS3 has docker0 172.17.0.1/16; ECS1's own
# address 172.17.0.64 (another subnet behind the router) falls in it, so ECS3's replies to ECS1 go to
# docker0. Variants: faulty/, healthy/ (docker bip moved), healthy-specific-route/ (a /32 via eth0).
# Run as root: samples/lab/make.sh docker0-route-hijack
set -euo pipefail
export LAB_PREFIX=ndb
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=partb/topo.sh
source "$here/partb/topo.sh"
root=$(cd "$here/.." && pwd)/docker0-route-hijack

run_variant() {
    local variant=$1 out="$root/$1" log="$LAB_TMP/transcripts" bip=172.17.0.1/16
    [ "$variant" = healthy ] && bip=172.30.0.1/16
    rm -rf "$out/facts" "$out"/*.pcap "$out"/*.pcapng "$out/expected.yaml"   # README.md is kept
    mkdir -p "$out/facts" "$log"; rm -f "$log"/*
    echo "-- docker0-route-hijack/$variant"
    docker_build "$variant"

    cap_start ecs3 any "$out/ecs3-any.pcap" -s 1600
    cap_start ecs1 eth0 "$out/ecs1-eth0.pcap"
    [ "$variant" = faulty ] && dumpcap_start ecs3 "$out/ecs3.pcapng" eth0 docker0

    # background: ECS2 <-> ECS3, the container -> ECS2 through MASQUERADE, ECS1 -> ECS2
    facts_run ecs2 ecs2 "$log/ecs2" "ping -c 3 -i 0.3 -W 1 172.31.4.18"
    nsx ecs2 curl -s -m 3 -o /dev/null http://172.31.4.18/ || true
    nsx web curl -s -m 3 -o /dev/null http://172.18.1.22/ || true
    nsx ecs1 ping -c 2 -i 0.3 -W 1 172.18.1.22 >/dev/null || true
    # the failing (faulty) or working (healthy) ECS1 -> ECS3 attempts, bounded
    facts_run ecs1 ecs1 "$log/ecs1" "ping -c 3 -i 0.3 -W 1 172.31.4.18"
    facts_run ecs1 ecs1 "$log/ecs1" "curl -sS -m 3 -o /dev/null -w '%{http_code}\n' http://172.31.4.18/"
    nsx ecs2 curl -s -m 3 -o /dev/null http://172.31.4.18/ || true
    dumpcap_stop_all
    cap_stop_all
    chown root:root "$out"/*.pcap*; chmod 644 "$out"/*.pcap*

    docker_facts "$out" "$bip"
    lab_reset
    python3 "$here/partb/expect.py" docker0-route-hijack "$variant" "$out"
}

run_variant faulty
run_variant healthy
run_variant healthy-specific-route
