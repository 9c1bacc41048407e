#!/usr/bin/env bash
# Pattern 1, L4 load-balancer hairpin RST (seed 000): builds samples/lb-hairpin/<variant>/.
#   faulty-l4          L4 listener (DNAT only, client address kept); backend1 accept_local=1
#   faulty-l4-martian  the same L4 listener; backend1 with this kernel's defaults (accept_local=0)
#   healthy-l7         a layer-7 listener (userspace proxy from 100.64.0.2) on VIP:8080
#   healthy-snat       the L4 listener plus SNAT (masquerade) towards the backends
#   faulty-l4-two-points  faulty-l4 captured at two points at once: backend1 and the lb (-i any)
# Usage: lb-hairpin.sh [VARIANT...]  (default: all). Needs root, tcpdump, tshark, nft, curl, socat.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out_root=${LAB_OUT_ROOT:-$here/..}/lb-hairpin   # LAB_OUT_ROOT: build elsewhere (a check)
VARIANTS=(faulty-l4 faulty-l4-martian healthy-l7 healthy-snat faulty-l4-two-points)

if [ "${1:-}" != "--one" ]; then
    [ $# -gt 0 ] || set -- "${VARIANTS[@]}"
    for v in "$@"; do bash "$0" --one "$v"; done
    python3 "$here/a_samples.py" check lb-hairpin "$out_root" "$@"
    exit 0
fi
variant=$2
export LAB_PREFIX=nda
[ "$variant" != faulty-l4-two-points ] || LAB_PREFIX=ndm
# shellcheck source=lib.sh
source "$here/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')

out="$out_root/$variant"
rm -rf "$out"; mkdir -p "$out/facts"

VIP=10.10.0.100; BE1=10.10.1.11; BE2=10.10.2.12; CLIENT=10.20.0.5; PROXY=100.64.0.2

# --- topology: the LB routes between the client net and one link per backend ------------------
ns_add lb; ns_add backend1; ns_add backend2; ns_add client
veth lb eth0 client eth0 02:00:0a:14:00:01 02:00:0a:14:00:05
veth lb eth1 backend1 eth0 02:00:0a:0a:01:01 02:00:0a:0a:01:0b
veth lb eth2 backend2 eth0 02:00:0a:0a:02:01 02:00:0a:0a:02:0c
nsx lb ip addr add 10.20.0.1/24 dev eth0
nsx lb ip addr add 10.10.1.1/24 dev eth1
nsx lb ip addr add 10.10.2.1/24 dev eth2
nsx lb ip addr add $VIP/32 dev lo
nsx lb ip addr add $PROXY/32 dev lo
nsx lb sysctl -qw net.ipv4.ip_forward=1
for i in all default eth0 eth1 eth2; do nsx lb sysctl -qw net.ipv4.conf.$i.send_redirects=0; done
nsx client ip addr add $CLIENT/24 dev eth0;  nsx client ip route add default via 10.20.0.1
nsx backend1 ip addr add $BE1/24 dev eth0;   nsx backend1 ip route add default via 10.10.1.1
nsx backend2 ip addr add $BE2/24 dev eth0;   nsx backend2 ip route add default via 10.10.2.1
# a distribution's usual reverse-path setting on the backends (loose, as systemd's defaults)
for h in backend1 backend2; do
    nsx $h sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2
    nsx $h sysctl -qw net.ipv4.conf.eth0.rp_filter=2
done
case $variant in
    faulty-l4|faulty-l4-two-points)
        # what a kernel that accepts its own source address on eth0 does (old kernels without the
        # local-source check, or accept_local=1 here): the seed's SYN-ACK over lo and RST
        nsx backend1 sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.eth0.accept_local=1
        ;;
esac

# --- the listener ------------------------------------------------------------------------------
case $variant in
    faulty-l4|faulty-l4-martian|healthy-snat|faulty-l4-two-points)
        rules="table ip clb {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 2 map { 0 : $BE1, 1 : $BE2 }
    }"
        if [ "$variant" = healthy-snat ]; then
            rules="$rules
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ct status dnat ip daddr { $BE1, $BE2 } tcp dport 80 masquerade
    }"
        fi
        printf '%s\n}\n' "$rules" | nsx lb nft -f -
        ;;
    healthy-l7)
        { nsx lb "$PY" "$here/a_l7proxy.py" $VIP 8080 $PROXY $BE1:80 $BE2:80; } 2>/dev/null & disown
        ;;
esac
{ nsx backend1 "$PY" "$here/a_webserver.py" backend1 80; } 2>/dev/null & disown
{ nsx backend2 "$PY" "$here/a_webserver.py" backend2 80; } 2>/dev/null & disown
{ nsx backend2 socat -T 2 UDP-LISTEN:7,fork,reuseaddr EXEC:cat; } 2>/dev/null & disown
for i in $(seq 50); do
    nsx backend1 ss -ltn | grep -q ':80 ' && nsx backend2 ss -ltn | grep -q ':80 ' && break
    sleep 0.1
done
[ "$variant" != healthy-l7 ] || for i in $(seq 50); do
    nsx lb ss -ltn | grep -q ":8080 " && break; sleep 0.1; done

# --- traffic, captured on backend1 with -i any (Linux cooked v2) -------------------------------
cap_start backend1 any "$out/backend1-any.pcap"
# the second vantage point of the same connections: the load balancer itself
[ "$variant" != faulty-l4-two-points ] || cap_start lb any "$out/lb-any.pcap"
port=80; [ "$variant" != healthy-l7 ] || port=8080
nsx backend1 ping -c 3 -i 0.2 -W 1 $BE2 >/dev/null || true                 # background
printf 'query-1\n' | nsx backend1 timeout 3 socat -T 1 - UDP:$BE2:7 >/dev/null || true
nsx client curl -s -m 3 -o /dev/null http://$VIP:$port/ || true            # other users of the VIP
nsx backend1 curl -s -m 3 -o /dev/null http://$BE2/ || true                # backend1 -> backend2 direct
for attempt in 1 2 3 4 5 6; do
    # backend1 as a client of its own load balancer (bounded: 2.5 s per attempt)
    nsx backend1 curl -s --connect-timeout 2.5 -m 4 -o /dev/null -w "attempt $attempt: %{http_code}\n" \
        http://$VIP:$port/ || echo "attempt $attempt: failed"
    nsx client ping -c 1 -W 1 $VIP >/dev/null || true                        # background
done
printf 'query-2\n' | nsx backend1 timeout 3 socat -T 1 - UDP:$BE2:7 >/dev/null || true
cap_stop_all

# --- facts -------------------------------------------------------------------------------------
facts_host backend1 backend1 "$out/facts/backend1.txt"
facts_host backend2 backend2 "$out/facts/backend2.txt"
facts_host lb lb "$out/facts/lb.txt"
facts_host client client "$out/facts/client.txt"
if [ "$variant" = faulty-l4-two-points ]; then
    facts_capture backend1 "$out/facts/backend1.txt" "$out/backend1-any.pcap"
    facts_capture lb "$out/facts/lb.txt" "$out/lb-any.pcap"
fi
# the listener as the cloud console / API describes it (written, not captured)
case $variant in
    healthy-l7) layer=L7; proto=http; lport=8080; keep=false
        note="a layer-7 listener: backends see the proxy 100.64.0.2 (100.64.0.0/10)";;
    healthy-snat) layer=L4; proto=tcp; lport=80; keep=false
        note="a layer-4 listener with SNAT: backends see the load balancer's address";;
    *) layer=L4; proto=tcp; lport=80; keep=true
        note="a layer-4 listener: backends see the client's own address";;
esac
cat >"$out/facts/lb-listener.yaml" <<YAML
# load-balancer listener as the cloud console describes it (written for the emulated
# listener, not captured), in netdiag's topology YAML (docs/facts-yaml.md); $note
version: 1
hosts:
  lb:
    services:
      - vip: $VIP
        port: $lport
        protocol: $proto
        layer: $layer
        keeps_client_address: $keep
        scheduler: rr
        kind: cloud
        name: lb-nda-hairpin-$lport
        real_servers:
          - {address: $BE1, port: 80, weight: 100}
          - {address: $BE2, port: 80, weight: 100}
YAML
python3 "$here/a_samples.py" describe lb-hairpin "$variant" "$out"
