#!/usr/bin/env bash
# Pattern 5, NAT gateway misconfiguration (seed 004): builds samples/nat-gateway/<variant>/.
#   faulty-rs-gateway    LVS-NAT director (nftables DNAT); rs2's default gateway is another router
#   faulty-ip-forward    the same director with net.ipv4.ip_forward=0
#   healthy-lvs-nat      both real servers route via the director, ip_forward=1
#   faulty-missing-snat  egress NAT gateway masquerades 10.1.0.0/24 but not 10.2.0.0/24
#   healthy-egress-snat  the same gateway masquerading both inside subnets
#   faulty-asymmetric-return  gwa port-forwards to a server whose default route is gwb: the
#                      SYN-ACK leaves through gwb untranslated (captured at client, gwa, gwb, server)
#   healthy-port-forward      the same two gateways, the server's default route via gwa
# Usage: nat-gateway.sh [VARIANT...]  (default: all). Needs root, tcpdump, dumpcap, tshark, nft.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out_root=${LAB_OUT_ROOT:-$here/..}/nat-gateway   # LAB_OUT_ROOT: build elsewhere (a check)
VARIANTS=(faulty-rs-gateway faulty-ip-forward healthy-lvs-nat faulty-missing-snat
          healthy-egress-snat faulty-asymmetric-return healthy-port-forward)

if [ "${1:-}" != "--one" ]; then
    [ $# -gt 0 ] || set -- "${VARIANTS[@]}"
    for v in "$@"; do bash "$0" --one "$v"; done
    python3 "$here/a_samples.py" check nat-gateway "$out_root" "$@"
    exit 0
fi
variant=$2
export LAB_PREFIX=nda
case $variant in faulty-asymmetric-return|healthy-port-forward) LAB_PREFIX=ndm ;; esac
# shellcheck source=lib.sh
source "$here/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')

out="$out_root/$variant"
rm -rf "$out"; mkdir -p "$out/facts"

# ---- LVS-NAT (seed 004's addresses, the outside network moved to TEST-NET-2) ------------------
VIP=198.51.100.131; CIP=198.51.100.150; RTR_OUT=198.51.100.1
DIP=192.168.1.186; RIP1=192.168.1.185; RIP2=192.168.1.190; RTR_IN=192.168.1.1

lvs_nat() {
    ns_add client; ns_add director; ns_add router; ns_add rs1; ns_add rs2
    switch_add swo br0; switch_add swi br0
    switch_port swo br0 p-client client eth0 02:00:c6:33:64:96
    switch_port swo br0 p-director director eth1 02:00:c6:33:64:83
    switch_port swo br0 p-router router eth1 02:00:c6:33:64:01
    switch_port swi br0 p-director director eth0 02:00:c0:a8:01:ba
    switch_port swi br0 p-rs1 rs1 eth0 02:00:c0:a8:01:b9
    switch_port swi br0 p-rs2 rs2 eth0 02:00:c0:a8:01:be
    switch_port swi br0 p-router router eth0 02:00:c0:a8:01:01
    nsx client ip addr add $CIP/24 dev eth0; nsx client ip route add default via $RTR_OUT
    nsx director ip addr add $VIP/24 dev eth1; nsx director ip addr add $DIP/24 dev eth0
    nsx director ip route add default via $RTR_OUT
    nsx router ip addr add $RTR_OUT/24 dev eth1; nsx router ip addr add $RTR_IN/24 dev eth0
    nsx router sysctl -qw net.ipv4.ip_forward=1
    # the director script of seed 004: forwarding on, ICMP redirects off
    if [ "$variant" = faulty-ip-forward ]; then
        nsx director sysctl -qw net.ipv4.ip_forward=0
    else
        nsx director sysctl -qw net.ipv4.ip_forward=1
    fi
    for i in all default eth0 eth1; do nsx director sysctl -qw net.ipv4.conf.$i.send_redirects=0; done
    nsx director nft -f - <<NFT
table ip lvs_nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 2 map { 0 : $RIP1, 1 : $RIP2 }
    }
}
NFT
    nsx rs1 ip addr add $RIP1/24 dev eth0; nsx rs1 ip route add default via $DIP
    nsx rs2 ip addr add $RIP2/24 dev eth0
    if [ "$variant" = faulty-rs-gateway ]; then
        nsx rs2 ip route add default via $RTR_IN       # the mistake: not the director
    else
        nsx rs2 ip route add default via $DIP
    fi
    { nsx rs1 "$PY" "$here/a_webserver.py" real_server1 80; } 2>/dev/null & disown
    { nsx rs2 "$PY" "$here/a_webserver.py" real_server2 80; } 2>/dev/null & disown
    { nsx rs1 socat -T 2 UDP-LISTEN:7,fork,reuseaddr EXEC:cat; } 2>/dev/null & disown
    for i in $(seq 50); do
        nsx rs1 ss -ltn | grep -q ':80 ' && nsx rs2 ss -ltn | grep -q ':80 ' && break; sleep 0.1
    done

    dumpcap_start director "$out/director.pcapng" eth1 eth0
    cap_start client eth0 "$out/client-eth0.pcap" --time-stamp-precision nano
    nsx client ping -c 2 -i 0.2 -W 1 $RTR_OUT >/dev/null || true                # background
    nsx client ping -c 2 -i 0.2 -W 1 $VIP >/dev/null || true
    printf 'ping\n' | nsx rs2 timeout 3 socat -T 1 - UDP:$RIP1:7 >/dev/null 2>&1 || true
    nsx rs1 ping -c 2 -i 0.2 -W 1 $RIP2 >/dev/null || true
    for n in 1 2 3 4 5 6; do
        nsx client curl -s --connect-timeout 2.5 -m 4 -o /dev/null -w "request $n: %{http_code}\n" \
            http://$VIP/ || echo "request $n: failed"
    done
    nsx client ping -c 1 -W 1 $RTR_OUT >/dev/null || true
    cap_stop_all
    dumpcap_stop_all

    facts_host director director "$out/facts/director.txt"
    facts_host rs1 real_server1 "$out/facts/real_server1.txt"
    facts_host rs2 real_server2 "$out/facts/real_server2.txt"
    facts_host router router "$out/facts/router.txt"
    facts_host client client "$out/facts/client.txt"
    cat >"$out/facts/ipvsadm.txt" <<TXT
# written, not captured: what ipvsadm on the director would print for the emulated service
# (the lab emulates IPVS-NAT with the nftables DNAT rule shown in facts/director.txt)
[root@director ~]# ipvsadm-save -n
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r $RIP1:80 -m -w 1
-a -t $VIP:80 -r $RIP2:80 -m -w 1
[root@director ~]# ipvsadm -Ln
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  $VIP:80 rr
  -> $RIP1:80            Masq    1      0          0
  -> $RIP2:80            Masq    1      0          0
TXT
    cat >"$out/facts/keepalived.conf" <<CONF
# written, not captured: the keepalived configuration that would build this director
virtual_server $VIP 80 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
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
}

# ---- egress NAT gateway for two inside subnets ---------------------------------------------------
GW_OUT=198.51.100.2; EDGE=198.51.100.1; SRV=203.0.113.10; HOSTA=10.1.0.5; HOSTB=10.2.0.5

egress_nat() {
    ns_add hosta; ns_add hostb; ns_add natgw; ns_add edge; ns_add srv
    veth natgw eth1 hosta eth0 02:00:0a:01:00:01 02:00:0a:01:00:05
    veth natgw eth2 hostb eth0 02:00:0a:02:00:01 02:00:0a:02:00:05
    veth natgw eth0 edge eth0 02:00:c6:33:64:02 02:00:c6:33:64:01
    veth edge eth1 srv eth0 02:00:cb:00:71:01 02:00:cb:00:71:0a
    nsx hosta ip addr add $HOSTA/24 dev eth0; nsx hosta ip route add default via 10.1.0.1
    nsx hostb ip addr add $HOSTB/24 dev eth0; nsx hostb ip route add default via 10.2.0.1
    nsx natgw ip addr add 10.1.0.1/24 dev eth1; nsx natgw ip addr add 10.2.0.1/24 dev eth2
    nsx natgw ip addr add $GW_OUT/24 dev eth0; nsx natgw ip route add default via $EDGE
    nsx natgw sysctl -qw net.ipv4.ip_forward=1
    nsx edge ip addr add $EDGE/24 dev eth0; nsx edge ip addr add 203.0.113.1/24 dev eth1
    nsx edge sysctl -qw net.ipv4.ip_forward=1
    nsx srv ip addr add $SRV/24 dev eth0; nsx srv ip route add default via 203.0.113.1
    local sources="10.1.0.0/24"
    [ "$variant" = faulty-missing-snat ] || sources="10.1.0.0/24, 10.2.0.0/24"
    nsx natgw nft -f - <<NFT
table ip egress_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" ip saddr { $sources } masquerade
    }
}
NFT
    { nsx srv "$PY" "$here/a_webserver.py" www 80; } 2>/dev/null & disown
    { nsx srv socat -T 2 UDP-LISTEN:7,fork,reuseaddr EXEC:cat; } 2>/dev/null & disown
    for i in $(seq 50); do nsx srv ss -ltn | grep -q ':80 ' && break; sleep 0.1; done

    cap_start natgw any "$out/natgw-any.pcap"
    cap_start srv eth0 "$out/srv-eth0.pcap"
    for h in hosta hostb; do
        nsx $h ping -c 2 -i 0.2 -W 1 ${HOSTA%.5}.1 >/dev/null || true          # background
        nsx $h ping -c 2 -i 0.2 -W 1 $SRV >/dev/null || true
        printf 'query\n' | nsx $h timeout 3 socat -T 1 - UDP:$SRV:7 >/dev/null 2>&1 || true
    done
    for n in 1 2; do
        for h in hosta hostb; do
            nsx $h curl -s --connect-timeout 2.5 -m 4 -o /dev/null \
                -w "$h request $n: %{http_code}\n" http://$SRV/ || echo "$h request $n: failed"
        done
    done
    cap_stop_all

    facts_host natgw natgw "$out/facts/natgw.txt"
    facts_host hosta hosta "$out/facts/hosta.txt"
    facts_host hostb hostb "$out/facts/hostb.txt"
    facts_host edge edge "$out/facts/edge.txt"
    facts_host srv srv "$out/facts/srv.txt"
}

# ---- port forward with two gateways: the multi-point samples of issue 8 -------------------------
PUB=203.0.113.10; GWB_OUT=203.0.113.11; CLI=203.0.113.50
SRV_LAN=10.0.2.20; WEB2=10.0.2.21; GWA_IN=10.0.2.1; GWB_IN=10.0.2.2

port_forward() {
    ns_add client; ns_add gwa; ns_add gwb; ns_add server; ns_add web2
    switch_add swc br0; switch_add swl br0
    switch_port swc br0 p-client client eth0 02:00:cb:00:71:32
    switch_port swc br0 p-gwa gwa eth0 02:00:cb:00:71:0a
    switch_port swc br0 p-gwb gwb eth0 02:00:cb:00:71:0b
    switch_port swl br0 p-gwa gwa eth1 02:00:0a:00:02:01
    switch_port swl br0 p-gwb gwb eth1 02:00:0a:00:02:02
    switch_port swl br0 p-server server eth0 02:00:0a:00:02:14
    switch_port swl br0 p-web2 web2 eth0 02:00:0a:00:02:15
    nsx client ip addr add $CLI/24 dev eth0; nsx client ip route add default via $GWB_OUT
    nsx gwa ip addr add $PUB/24 dev eth0; nsx gwa ip addr add $GWA_IN/24 dev eth1
    nsx gwb ip addr add $GWB_OUT/24 dev eth0; nsx gwb ip addr add $GWB_IN/24 dev eth1
    for g in gwa gwb; do nsx $g sysctl -qw net.ipv4.ip_forward=1; done
    # gwa: the port forwards (DNAT only, the client address is kept, as a home/edge router does)
    nsx gwa nft -f - <<NFT
table ip portfwd {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $PUB tcp dport 8080 dnat to $SRV_LAN:80
        ip daddr $PUB tcp dport 8081 dnat to $WEB2:80
    }
}
NFT
    # gwb: a plain router, no firewall and no NAT (it forwards what its routes allow)
    nsx server ip addr add $SRV_LAN/24 dev eth0
    if [ "$variant" = faulty-asymmetric-return ]; then
        nsx server ip route add default via $GWB_IN      # the mistake: not the translating gateway
    else
        nsx server ip route add default via $GWA_IN
    fi
    nsx web2 ip addr add $WEB2/24 dev eth0; nsx web2 ip route add default via $GWA_IN
    { nsx server "$PY" "$here/a_webserver.py" server 80; } 2>/dev/null & disown
    { nsx web2 "$PY" "$here/a_webserver.py" web2 80; } 2>/dev/null & disown
    { nsx gwb "$PY" "$here/a_webserver.py" gwb 80; } 2>/dev/null & disown
    { nsx gwa socat -T 2 UDP-LISTEN:7,fork,reuseaddr EXEC:cat; } 2>/dev/null & disown
    for i in $(seq 50); do
        nsx server ss -ltn | grep -q ':80 ' && nsx web2 ss -ltn | grep -q ':80 ' \
            && nsx gwb ss -ltn | grep -q ':80 ' && break; sleep 0.1
    done

    # four vantage points at once: client, both gateways, the server
    cap_start client eth0 "$out/client-eth0.pcap" --time-stamp-precision nano
    cap_start gwa any "$out/gwa-any.pcap"
    dumpcap_start gwb "$out/gwb.pcapng" eth0 eth1
    cap_start server eth0 "$out/server-eth0.pcap"
    nsx client ping -c 2 -i 0.2 -W 1 $PUB >/dev/null || true                   # background
    nsx client ping -c 2 -i 0.2 -W 1 $GWB_OUT >/dev/null || true
    nsx server ping -c 2 -i 0.2 -W 1 $GWA_IN >/dev/null || true
    nsx server ping -c 1 -W 1 $GWB_IN >/dev/null || true
    printf 'query-1\n' | nsx client timeout 3 socat -T 1 - UDP:$PUB:7 >/dev/null 2>&1 || true
    nsx client curl -s -m 3 -o /dev/null -w "gwb local: %{http_code}\n" http://$GWB_OUT/ \
        || echo "gwb local: failed"
    for n in 1 2 3; do
        for port in 8080 8081; do                   # each attempt bounded: 2.5 s connect, 4 s
            nsx client curl -s --connect-timeout 2.5 -m 4 -o /dev/null \
                -w "request $n to :$port: %{http_code}\n" http://$PUB:$port/ \
                || echo "request $n to :$port: failed"
        done
    done
    printf 'query-2\n' | nsx client timeout 3 socat -T 1 - UDP:$PUB:7 >/dev/null 2>&1 || true
    nsx client ping -c 1 -W 1 $GWB_OUT >/dev/null || true
    cap_stop_all
    dumpcap_stop_all

    facts_host gwa gwa "$out/facts/gwa.txt"
    facts_capture gwa "$out/facts/gwa.txt" "$out/gwa-any.pcap"
    facts_host gwb gwb "$out/facts/gwb.txt"
    facts_capture gwb "$out/facts/gwb.txt" "$out/gwb.pcapng"
    facts_host server server "$out/facts/server.txt"
    facts_capture server "$out/facts/server.txt" "$out/server-eth0.pcap"
    facts_host client client "$out/facts/client.txt"
    facts_capture client "$out/facts/client.txt" "$out/client-eth0.pcap"
    facts_host web2 web2 "$out/facts/web2.txt"
}

case $variant in
    faulty-rs-gateway|faulty-ip-forward|healthy-lvs-nat) lvs_nat ;;
    faulty-missing-snat|healthy-egress-snat) egress_nat ;;
    faulty-asymmetric-return|healthy-port-forward) port_forward ;;
    *) echo "nat-gateway.sh: unknown variant $variant" >&2; exit 2 ;;
esac
python3 "$here/a_samples.py" describe nat-gateway "$variant" "$out"
