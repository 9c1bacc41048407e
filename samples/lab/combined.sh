#!/usr/bin/env bash
# Sample "combined": two faults seen in one capture on the VPN gateway (-i any). The gateway's IPsec
# local subnet misses 10.64.3.22 (ipsec-selector-gap: the loop between VPC router and gateway), and
# the gateway, a self-managed strongSwan VM, also runs docker with docker0 172.17.0.1/16 while the VPC
# host ECS1 172.17.0.64 talks to it (docker0-route-hijack). Run as root: samples/lab/make.sh combined
set -euo pipefail
export LAB_PREFIX=ndb
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=partb/topo.sh
source "$here/partb/topo.sh"
out=$(cd "$here/.." && pwd)/combined/faulty
log="$LAB_TMP/transcripts"

rm -rf "$out/facts" "$out"/*.pcap "$out"/*.pcapng "$out/expected.yaml"   # README.md is kept
mkdir -p "$out/facts" "$log"
echo "-- combined/faulty"
ipsec_build faulty
# ECS1, a VPC host in 172.17.0.0/24 behind the VPC router
ns_add ecs1
veth vpcrt eth4 ecs1 eth0 02:00:ac:11:00:fd 00:16:3e:11:00:40
nsx vpcrt ip addr add 172.17.0.253/24 dev eth4
nsx ecs1 ip addr add 172.17.0.64/24 dev eth0
nsx ecs1 ip route add default via 172.17.0.253
# docker on the gateway; ip_forward was already 1, so dockerd leaves the FORWARD policy at ACCEPT
docker_add vpngw web 172.17.0.1/16 172.17.0.2 ACCEPT
(ip netns exec "$LAB_PREFIX-vpngw" timeout 60 nc -lk 22 >/dev/null 2>&1 &)
sleep 0.5

cap_start vpngw any "$out/vpngw-any.pcap" -s 1600

nsx cl16 curl -s -m 3 -o /dev/null http://10.200.1.15:8080/ || true
nsx cl64 curl -s -m 3 -o /dev/null http://10.100.2.10/ || true
nsx web ping -c 2 -i 0.3 -W 1 172.17.0.1 >/dev/null || true
facts_run cl16 idc-client16 "$log/cl16" "ping -c 3 -i 0.3 -W 1 10.200.1.15"
facts_run cl64 idc-client64 "$log/cl64" "ping -c 3 -i 0.3 -W 1 10.200.1.15"
facts_run ecs1 ecs1 "$log/ecs1" "ping -c 3 -i 0.3 -W 1 10.100.1.18"
facts_run ecs1 ecs1 "$log/ecs1" "nc -vz -w 3 10.100.1.18 22"
facts_run cl64 idc-client64 "$log/cl64" "traceroute -n -m 10 -q 1 -w 1 10.200.1.15"
nsx cl16 curl -s -m 3 -o /dev/null http://10.200.1.15:8080/ || true
cap_stop_all
chown root:root "$out"/*.pcap; chmod 644 "$out"/*.pcap

ipsec_configs "$out/facts" faulty
docker_configs "$out/facts" vpngw 172.17.0.1/16 web
facts_dump vpngw vpngw "$out/facts/vpngw.txt" "ip route show table 220" "iptables-save"
facts_file vpngw "$out/facts/vpngw.txt" "cat /etc/strongswan/ipsec.conf" "$out/facts/vpngw.ipsec.conf"
facts_file vpngw "$out/facts/vpngw.txt" "cat /etc/swanctl/swanctl.conf" "$out/facts/vpngw.swanctl.conf"
facts_file vpngw "$out/facts/vpngw.txt" "cat /etc/docker/daemon.json" "$out/facts/vpngw.daemon.json"
facts_file vpngw "$out/facts/vpngw.txt" "docker network inspect bridge" \
    "$out/facts/vpngw.docker-network-inspect-bridge.json"
facts_dump vpcrt vpcrt "$out/facts/vpcrt.txt" "nft list ruleset"
for h in cl16:idc-client16 cl64:idc-client64 ecs1:ecs1; do
    facts_dump "${h%%:*}" "${h#*:}" "$out/facts/${h%%:*}.txt"
    cat "$log/${h%%:*}" >>"$out/facts/${h%%:*}.txt"
done
lab_reset
python3 "$here/partb/expect.py" combined faulty "$out"
