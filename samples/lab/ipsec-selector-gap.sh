#!/usr/bin/env bash
# Sample "ipsec-selector-gap" (seed 002, scenario 1): a VPN gateway whose IPsec local subnet covers
# 10.16.0.0/16 but not the client 10.64.3.22; that client's packets to 10.200.0.0/20 are not
# encapsulated, fall back to the VPC route pointing at the gateway itself and loop until TTL expiry.
# Variants: faulty/ and healthy/ (local subnet widened). Run as root: samples/lab/make.sh ipsec-selector-gap
set -euo pipefail
export LAB_PREFIX=ndb
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=partb/topo.sh
source "$here/partb/topo.sh"
root=$(cd "$here/.." && pwd)/ipsec-selector-gap

run_variant() {
    local variant=$1 out="$root/$1" log="$LAB_TMP/transcripts"
    rm -rf "$out/facts" "$out"/*.pcap "$out"/*.pcapng "$out/expected.yaml"   # README.md is kept
    mkdir -p "$out/facts" "$log"; rm -f "$log"/*
    echo "-- ipsec-selector-gap/$variant"
    ipsec_build "$variant"

    dumpcap_start vpngw "$out/vpngw.pcapng" eth0 eth1 ipsec0
    cap_start vpcrt any "$out/vpcrt-any.pcap" -s 1600 --time-stamp-precision nano

    # background: HTTP through the tunnel (covered client) and to a VPC host (uncovered client)
    nsx cl16 curl -s -m 3 -o /dev/null http://10.200.1.15:8080/ || true
    nsx cl64 curl -s -m 3 -o /dev/null http://10.100.2.10/ || true
    nsx cl16 curl -s -m 3 -o /dev/null http://10.100.2.10/ || true
    # what the engineers ran (bounded: count, per-probe wait, max hops)
    facts_run cl16 idc-client16 "$log/cl16" "ping -c 3 -i 0.3 -W 1 10.200.1.15"
    facts_run cl64 idc-client64 "$log/cl64" "ping -c 3 -i 0.3 -W 1 10.200.1.15"
    facts_run cl64 idc-client64 "$log/cl64" "traceroute -n -m 10 -q 1 -w 1 10.200.1.15"
    facts_run cl16 idc-client16 "$log/cl16" "traceroute -n -m 10 -q 1 -w 1 10.200.1.15"
    nsx cl64 curl -s -m 2 -o /dev/null http://10.200.1.15:8080/ || true
    nsx cl16 curl -s -m 3 -o /dev/null http://10.200.1.15:8080/ || true
    dumpcap_stop_all
    cap_stop_all
    chown root:root "$out"/*.pcap*; chmod 644 "$out"/*.pcap*

    ipsec_configs "$out/facts" "$variant"
    facts_dump vpngw vpngw "$out/facts/vpngw.txt" "ip route show table 220" "nft list ruleset"
    facts_file vpngw "$out/facts/vpngw.txt" "cat /etc/strongswan/ipsec.conf" "$out/facts/vpngw.ipsec.conf"
    facts_file vpngw "$out/facts/vpngw.txt" "cat /etc/swanctl/swanctl.conf" "$out/facts/vpngw.swanctl.conf"
    facts_dump vpcrt vpcrt "$out/facts/vpcrt.txt" "nft list ruleset"
    for h in cl16:idc-client16 cl64:idc-client64; do
        facts_dump "${h%%:*}" "${h#*:}" "$out/facts/${h%%:*}.txt"
        cat "$log/${h%%:*}" >>"$out/facts/${h%%:*}.txt"
    done
    lab_reset
    python3 "$here/partb/expect.py" ipsec-selector-gap "$variant" "$out"
}

run_variant faulty
run_variant healthy
