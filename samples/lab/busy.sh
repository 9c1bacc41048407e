#!/usr/bin/env bash
# Sample "busy": the docker0 route hijack (as docker0-route-hijack/faulty) inside more than 50,000 packets
# of healthy background traffic captured on ECS3 with -i any, snaplen 128 (bulk payload truncated).
# Run as root: samples/lab/make.sh busy
set -euo pipefail
export LAB_PREFIX=ndb
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=partb/topo.sh
source "$here/partb/topo.sh"
out=$(cd "$here/.." && pwd)/busy/faulty
log="$LAB_TMP/transcripts"
loadgen="$here/partb/loadgen.py"

rm -rf "$out/facts" "$out"/*.pcap "$out"/*.pcapng "$out/expected.yaml"   # README.md is kept
mkdir -p "$out/facts" "$log"
echo "-- busy/faulty"
docker_build faulty
# servers: ECS3 (TCP 6379 echo + DNS on 53 for ECS2 and the container), ECS2 (TCP 6379 echo)
(ip netns exec "$LAB_PREFIX-ecs3" timeout 90 python3 "$loadgen" server --tcp 0.0.0.0:6379 --udp 0.0.0.0:53 --duration 80 &)
(ip netns exec "$LAB_PREFIX-ecs2" timeout 90 python3 "$loadgen" server --tcp 172.18.1.22:6379 --duration 80 &)
sleep 1

cap_start ecs3 any "$out/ecs3-any.pcap" -s 128
cap_start ecs1 eth0 "$out/ecs1-eth0.pcap"

# healthy background, bounded in count and time
nsx ecs2 timeout 60 python3 "$loadgen" client --tcp 172.31.4.18:6379 --udp 172.31.4.18:53 \
    --conns 220 --rounds 100 --size 120 --queries 2000 --pause 0.01 --duration 50 &
bg1=$!
nsx web timeout 60 python3 "$loadgen" client --tcp 172.18.1.22:6379 --udp 172.17.0.1:53 \
    --conns 40 --rounds 40 --size 300 --queries 800 --pause 0.05 --duration 50 --domain svc.cluster.local &
bg2=$!
nsx ecs2 timeout 60 ping -q -c 400 -i 0.02 172.31.4.18 >/dev/null &
bg3=$!
sleep 3
# the failure, in the middle of it
facts_run ecs1 ecs1 "$log/ecs1" "ping -c 3 -i 0.3 -W 1 172.31.4.18"
facts_run ecs1 ecs1 "$log/ecs1" "curl -sS -m 3 -o /dev/null -w '%{http_code}\n' http://172.31.4.18/"
wait "$bg1" "$bg2" "$bg3" || true
cap_stop_all
chown root:root "$out"/*.pcap; chmod 644 "$out"/*.pcap

docker_facts "$out" 172.17.0.1/16
lab_reset
packets=$(capinfos -M -c "$out/ecs3-any.pcap" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
bytes=$(stat -c %s "$out/ecs3-any.pcap")
echo "busy: ecs3-any.pcap has $packets packets, $bytes bytes"
if [ "$packets" -lt 50000 ] || [ "$bytes" -ge 20000000 ]; then
    echo "busy: need >= 50000 packets and < 20 MB" >&2
    exit 1
fi
python3 "$here/partb/expect.py" busy faulty "$out"
