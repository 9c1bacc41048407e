#!/usr/bin/env bash
# Pattern 2, LVS-DR ARP leakage (seeds 001, 003): builds samples/lvs-dr-arp/<variant>/.
#   faulty-arp-ignore  rs1 keeps arp_ignore=0 / arp_announce=0: it answers who-has VIP and uses
#                      the VIP as ARP sender address, so the router learns VIP -> rs1's MAC
#   healthy            arp_ignore=1, arp_announce=2 on all and lo of both real servers
#   faulty-arp-ignore-rs  faulty-arp-ignore plus a capture on rs1 itself; the router's entry for
#                      the VIP is deleted before the last requests (it expires), so it asks
#                      who-has VIP again and rs1's reply is seen at rs1, the mirror and the router
# Usage: lvs-dr-arp.sh [VARIANT...]  (default: all). Needs root, tcpdump, dumpcap, tshark, nft.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out_root=${LAB_OUT_ROOT:-$here/..}/lvs-dr-arp   # LAB_OUT_ROOT: build elsewhere (a check)
VARIANTS=(faulty-arp-ignore healthy faulty-arp-ignore-rs)

if [ "${1:-}" != "--one" ]; then
    [ $# -gt 0 ] || set -- "${VARIANTS[@]}"
    for v in "$@"; do bash "$0" --one "$v"; done
    python3 "$here/a_samples.py" check lvs-dr-arp "$out_root" "$@"
    exit 0
fi
variant=$2
export LAB_PREFIX=nda
[ "$variant" != faulty-arp-ignore-rs ] || LAB_PREFIX=ndm
# shellcheck source=lib.sh
source "$here/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')

out="$out_root/$variant"
rm -rf "$out"; mkdir -p "$out/facts"

VIP=10.30.0.100; DIP=10.30.0.2; RIP1=10.30.0.11; RIP2=10.30.0.12; GW=10.30.0.1; CIP=10.40.0.10
MAC_GW=02:00:0a:1e:00:01; MAC_DIR=02:00:0a:1e:00:02; MAC_RS1=02:00:0a:1e:00:0b
MAC_RS2=02:00:0a:1e:00:0c

# --- topology: client -- router -- one switched segment (director, rs1, rs2) -------------------
ns_add client; ns_add router; ns_add director; ns_add rs1; ns_add rs2
switch_add sw br0
veth client eth0 router eth0 02:00:0a:28:00:0a 02:00:0a:28:00:01
switch_port sw br0 p-router router eth1 $MAC_GW
switch_port sw br0 p-director director eth0 $MAC_DIR
switch_port sw br0 p-rs1 rs1 eth0 $MAC_RS1
switch_port sw br0 p-rs2 rs2 eth0 $MAC_RS2
nsx client ip addr add $CIP/24 dev eth0; nsx client ip route add default via 10.40.0.1
nsx router ip addr add 10.40.0.1/24 dev eth0
nsx router ip addr add $GW/24 dev eth1
nsx router sysctl -qw net.ipv4.ip_forward=1
nsx director ip addr add $DIP/24 dev eth0
nsx director ip addr add $VIP/32 dev eth0 label eth0:0
nsx director ip route add default via $GW
for h in rs1 rs2; do
    rip=$RIP1; [ $h = rs1 ] || rip=$RIP2
    nsx $h ip addr add $rip/24 dev eth0
    nsx $h ip addr add $VIP/32 dev lo label lo:0
    nsx $h ip route add default via $GW
done
# the DR director: frames for VIP:80 get the chosen real server's MAC and go back out eth0;
# IPVS-DR does exactly this (the IP packet is untouched). Per-connection choice: hash of the
# client address and port, like ipvsadm's sh scheduler with sh-port.
nsx director nft -f - <<NFT
table netdev lvs_dr {
    chain eth0_ingress {
        type filter hook ingress device "eth0" priority filter; policy accept;
        ether daddr $MAC_DIR ip daddr $VIP tcp dport 80 ether saddr set $MAC_DIR ether daddr set jhash ip saddr . tcp sport mod 2 map { 0 : $MAC_RS1, 1 : $MAC_RS2 } fwd to "eth0"
    }
}
NFT
# ARP suppression on the real servers (seed 003, section 5), set at first on both
for h in rs1 rs2; do
    for i in all lo; do
        nsx $h sysctl -qw net.ipv4.conf.$i.arp_ignore=1 net.ipv4.conf.$i.arp_announce=2
    done
done
for h in rs1 rs2; do
    { nsx $h "$PY" "$here/a_webserver.py" $h 80; } 2>/dev/null & disown   # lab cleanup kills it
done
{ nsx rs2 socat -T 2 UDP-LISTEN:7,fork,reuseaddr EXEC:cat; } 2>/dev/null & disown
for i in $(seq 50); do
    nsx rs1 ss -ltn | grep -q ':80 ' && nsx rs2 ss -ltn | grep -q ':80 ' && break; sleep 0.1
done

# --- traffic: captured on every switch port (one pcapng) and on the router's segment side ------
dumpcap_start sw "$out/segment.pcapng" p-router p-director p-rs1 p-rs2
cap_start router eth1 "$out/router-eth1.pcap" --time-stamp-precision nano
[ "$variant" != faulty-arp-ignore-rs ] || cap_start rs1 eth0 "$out/rs1-eth0.pcap"
nsx client ping -c 2 -i 0.2 -W 1 $RIP2 >/dev/null || true                       # background
printf 'query-1\n' | nsx client timeout 3 socat -T 1 - UDP:$RIP2:7 >/dev/null || true
for n in 1 2 3 4; do                                  # phase 1: everything through the director
    nsx client curl -s -m 3 http://$VIP/ || echo "request $n: failed"
done
# phase 2: rs1 is rebooted. Faulty: its ARP sysctls were set at run time only (not in
# /etc/sysctl.d), so they are back to the kernel defaults 0/0. A reboot also empties its
# neighbour table; the lab flushes it instead of restarting the namespace.
if [ "$variant" = faulty-arp-ignore ] || [ "$variant" = faulty-arp-ignore-rs ]; then
    for i in all lo; do
        nsx rs1 sysctl -qw net.ipv4.conf.$i.arp_ignore=0 net.ipv4.conf.$i.arp_announce=0
    done
fi
nsx rs1 ip neigh flush dev eth0
for n in 5 6 7 8 9 10 11 12; do
    nsx client curl -s -m 3 http://$VIP/ || echo "request $n: failed"
    nsx client ping -c 1 -W 1 $GW >/dev/null || true                              # background
done
if [ "$variant" = faulty-arp-ignore-rs ]; then
    # the router's neighbour entry for the VIP expires (the lab deletes it instead of waiting):
    # its next frame for the VIP needs a broadcast who-has, which rs1 now answers too
    nsx router ip neigh del $VIP dev eth1 || true
fi
for n in 13 14; do nsx client curl -s -m 3 http://$VIP/ || echo "request $n: failed"; done
printf 'query-2\n' | nsx client timeout 3 socat -T 1 - UDP:$RIP2:7 >/dev/null || true
cap_stop_all
dumpcap_stop_all

# --- facts -------------------------------------------------------------------------------------
facts_host director director "$out/facts/director.txt"
facts_host rs1 rs1 "$out/facts/rs1.txt"
facts_host rs2 rs2 "$out/facts/rs2.txt"
facts_host router router "$out/facts/router.txt"
facts_host client client "$out/facts/client.txt"
facts_host sw sw "$out/facts/sw.txt" "bridge link show" "bridge fdb show br br0 dynamic"
if [ "$variant" = faulty-arp-ignore-rs ]; then
    facts_capture sw "$out/facts/sw.txt" "$out/segment.pcapng"
    facts_capture router "$out/facts/router.txt" "$out/router-eth1.pcap"
    facts_capture rs1 "$out/facts/rs1.txt" "$out/rs1-eth0.pcap"
fi
cat >"$out/facts/ipvsadm.txt" <<TXT
# written, not captured: what ipvsadm on the director would print for the emulated service
# (the lab emulates IPVS-DR with the nftables netdev rule in facts/director.txt)
[root@director ~]# ipvsadm-save -n
-A -t $VIP:80 -s sh -b sh-port
-a -t $VIP:80 -r $RIP1:80 -g -w 1
-a -t $VIP:80 -r $RIP2:80 -g -w 1
[root@director ~]# ipvsadm -Ln
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  $VIP:80 sh (sh-port)
  -> $RIP1:80                Route   1      0          0
  -> $RIP2:80                Route   1      0          0
TXT
cat >"$out/facts/keepalived.conf" <<CONF
# written, not captured: the keepalived configuration that would build this director
virtual_server $VIP 80 {
    delay_loop 6
    lb_algo sh
    lb_kind DR
    protocol TCP

    real_server $RIP1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server $RIP2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
CONF
python3 "$here/a_samples.py" describe lvs-dr-arp "$variant" "$out"
