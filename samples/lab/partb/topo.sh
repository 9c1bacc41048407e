#!/usr/bin/env bash
# Topologies of the part-b samples (IPsec selector gap, docker0 route hijack, busy, combined): source it
# after lib.sh. Builders only create namespaces through ns_add/veth, so lib.sh's trap removes them.

PARTB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ESP_KEY=6e65746469616720455350206e756c6c2d73686132353620696e7465672e6b79   # lab-only HMAC key

# ---- IPsec: IDC clients -> VPC router -> VPN gateway ==ESP== peer gateway -> remote host -------------

# ipsec_build VARIANT: VARIANT faulty (local subnet 10.16.0.0/16) or healthy (10.16.0.0/16,10.64.0.0/16)
ipsec_build() {
    local variant=$1 local_ts=(10.16.0.0/16) t
    [ "$variant" = healthy ] && local_ts+=(10.64.0.0/16)
    for h in cl16 cl64 vpcrt vpngw peergw remote vpcecs; do ns_add "$h"; done
    veth vpcrt eth0 vpngw eth0 02:00:0a:64:01:01 02:00:0a:64:01:12
    veth vpcrt eth1 cl16 eth0 02:00:0a:10:01:01 02:00:0a:10:01:0a
    veth vpcrt eth2 cl64 eth0 02:00:0a:40:03:01 02:00:0a:40:03:16
    veth vpcrt eth3 vpcecs eth0 02:00:0a:64:02:01 02:00:0a:64:02:0a
    veth vpngw eth1 peergw eth1 02:00:c6:33:64:12 02:00:c6:33:64:14
    veth peergw eth0 remote eth0 02:00:0a:c8:01:01 02:00:0a:c8:01:0f

    # the cloud VPC router: connected subnets, the VPC route of the VPN gateway, silent to traceroute
    nsx vpcrt ip addr add 10.100.1.1/24 dev eth0
    nsx vpcrt ip addr add 10.16.1.1/24 dev eth1
    nsx vpcrt ip addr add 10.64.3.1/24 dev eth2
    nsx vpcrt ip addr add 10.100.2.1/24 dev eth3
    nsx vpcrt ip route add 10.200.0.0/20 via 10.100.1.18 dev eth0
    nsx vpcrt sysctl -qw net.ipv4.ip_forward=1
    nsx vpcrt nft -f - <<'NFT'
table inet vrouter {
	chain output {
		type filter hook output priority filter; policy accept;
		icmp type time-exceeded counter drop comment "cloud vRouter: not a traceroute hop"
	}
}
NFT

    for h in cl16:10.16.1.10/24:10.16.1.1 cl64:10.64.3.22/24:10.64.3.1 vpcecs:10.100.2.10/24:10.100.2.1; do
        IFS=: read -r name addr gw <<<"$h"
        nsx "$name" ip addr add "$addr" dev eth0
        nsx "$name" ip route add default via "$gw"
    done

    # the VPN gateway: default route back into the VPC; the SPD lookup as ip rules into table 220
    nsx vpngw ip addr add 10.100.1.18/24 dev eth0
    nsx vpngw ip addr add 198.51.100.18/24 dev eth1
    nsx vpngw ip route add default via 10.100.1.1 dev eth0
    nsx vpngw sysctl -qw net.ipv4.ip_forward=1
    nsx vpngw ip tuntap add dev ipsec0 mode tun
    nsx vpngw ip link set ipsec0 mtu 1400
    (ip netns exec "$LAB_PREFIX-vpngw" timeout 120 python3 "$PARTB/esp_gateway.py" --tun ipsec0 --local 198.51.100.18 \
        --peer 198.51.100.20 --spi-out 0xc8a1d001 --spi-in 0xc2b7e002 --key "$ESP_KEY" --duration 100 &)

    # the peer gateway (other cloud) and the remote host
    nsx peergw ip addr add 198.51.100.20/24 dev eth1
    nsx peergw ip addr add 10.200.1.1/24 dev eth0
    nsx peergw sysctl -qw net.ipv4.ip_forward=1
    nsx peergw ip tuntap add dev ipsec0 mode tun
    nsx peergw ip link set ipsec0 mtu 1400
    (ip netns exec "$LAB_PREFIX-peergw" timeout 120 python3 "$PARTB/esp_gateway.py" --tun ipsec0 --local 198.51.100.20 \
        --peer 198.51.100.18 --spi-out 0xc2b7e002 --spi-in 0xc8a1d001 --key "$ESP_KEY" --duration 100 &)
    sleep 0.5   # let both programs attach to their TUN devices
    nsx vpngw ip link set ipsec0 up
    nsx peergw ip link set ipsec0 up
    nsx vpngw ip route add 10.200.0.0/20 dev ipsec0 proto static table 220
    for t in "${local_ts[@]}"; do
        nsx vpngw ip rule add pref 220 from "$t" to 10.200.0.0/20 lookup 220
    done
    nsx peergw ip route add default dev ipsec0 proto static table 220
    for t in "${local_ts[@]}"; do
        nsx peergw ip rule add pref 220 from 10.200.0.0/20 to "$t" lookup 220
    done
    nsx remote ip addr add 10.200.1.15/24 dev eth0
    nsx remote ip route add default via 10.200.1.1

    # services for background flows, each stopping by itself
    (ip netns exec "$LAB_PREFIX-remote" timeout 100 python3 -m http.server --bind 10.200.1.15 8080 >/dev/null 2>&1 &)
    (ip netns exec "$LAB_PREFIX-vpcecs" timeout 100 python3 -m http.server --bind 10.100.2.10 80 >/dev/null 2>&1 &)
    sleep 0.8
}

# ipsec_configs DIR VARIANT: the gateway's ipsec.conf and swanctl.conf matching the emulation
ipsec_configs() {
    local dir=$1 variant=$2 left=10.16.0.0/16 ts=10.16.0.0/16
    if [ "$variant" = healthy ]; then left=10.16.0.0/16,10.64.0.0/16; ts="10.16.0.0/16,10.64.0.0/16"; fi
    cat >"$dir/vpngw.ipsec.conf" <<EOF
# /etc/strongswan/ipsec.conf - VPN gateway vpngw (VPC side 10.100.1.18, public 198.51.100.18)
config setup
	charondebug="ike 1, knl 1, cfg 0"
	uniqueids=no

conn %default
	keyexchange=ikev2
	ike=aes256-sha256-modp2048!
	esp=null-sha256!
	ikelifetime=24h
	lifetime=1h
	dpdaction=restart
	dpddelay=30s

conn idc-to-othercloud
	left=198.51.100.18
	leftid=198.51.100.18
	leftsubnet=$left
	right=198.51.100.20
	rightid=198.51.100.20
	rightsubnet=10.200.0.0/20
	authby=secret
	type=tunnel
	auto=start
EOF
    cat >"$dir/vpngw.swanctl.conf" <<EOF
# /etc/swanctl/swanctl.conf - VPN gateway vpngw (same tunnel as ipsec.conf, vici syntax)
connections {
    idc-to-othercloud {
        version = 2
        local_addrs = 198.51.100.18
        remote_addrs = 198.51.100.20
        proposals = aes256-sha256-modp2048
        dpd_delay = 30s
        local {
            auth = psk
            id = 198.51.100.18
        }
        remote {
            auth = psk
            id = 198.51.100.20
        }
        children {
            idc-net {
                local_ts = $ts
                remote_ts = 10.200.0.0/20
                esp_proposals = null-sha256
                mode = tunnel
                start_action = start
                dpd_action = restart
                life_time = 1h
            }
        }
    }
}

secrets {
    ike-othercloud {
        id-1 = 198.51.100.18
        id-2 = 198.51.100.20
        secret = "lab-only-preshared-key"
    }
}
EOF
}

# ---- docker: a host with a docker0 bridge and a container ----------------------------------------

# docker_add HOST CONTAINER BIP CONTAINER_IP FORWARD_POLICY: docker0 with BIP (e.g. 172.17.0.1/16), one
# container attached by a veth, and the iptables rules dockerd installs for the default bridge.
docker_add() {
    local host=$1 ctr=$2 bip=$3 cip=$4 policy=$5 subnet cmac
    subnet=$(python3 -c "import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)" "$bip")
    cmac=$(printf '02:42:%02x:%02x:%02x:%02x' ${cip//./ })   # docker derives the MAC from the address
    ns_add "$ctr"
    nsx "$host" ip link add docker0 type bridge
    nsx "$host" ip link set docker0 address 02:42:5e:1c:7a:01
    nsx "$host" ip addr add "$bip" dev docker0
    nsx "$host" ip link set docker0 up
    veth "$host" veth5d2c1a7 "$ctr" eth0 c2:3e:81:44:0b:19 "$cmac"
    nsx "$host" ip link set veth5d2c1a7 master docker0
    nsx "$ctr" ip addr add "$cip/${bip#*/}" dev eth0
    nsx "$ctr" ip route add default via "${bip%/*}"
    nsx "$host" sysctl -qw net.ipv4.ip_forward=1
    nsx "$host" iptables-restore <<EOF
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s $subnet ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD $policy [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
EOF
}

# docker_configs DIR HOST HOSTNAME BIP CONTAINER: daemon.json and `docker network inspect bridge` as
# dockerd would show them for this lab (container MAC and address read from the namespace).
docker_configs() {
    local dir=$1 host=$2 bip=$3 ctr=$4 mac cip
    mac=$(nsx "$ctr" cat /sys/class/net/eth0/address)
    cip=$(nsx "$ctr" ip -o -4 addr show dev eth0 | awk '{print $4}')
    python3 - "$dir" "$host" "$bip" "$mac" "$cip" <<'PY'
import ipaddress, json, sys
folder, host, bip, mac, cip = sys.argv[1:]
net = ipaddress.ip_interface(bip).network
daemon = {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "3"},
          "storage-driver": "overlay2"}
if str(net) != "172.17.0.0/16":
    daemon["bip"] = bip
with open(f"{folder}/{host}.daemon.json", "w") as f:
    json.dump(daemon, f, indent=2)
    f.write("\n")
inspect = [{
    "Name": "bridge",
    "Id": "9f1c3b7d2a4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f7",
    "Created": "2024-03-11T08:15:02.412934871+08:00",
    "Scope": "local",
    "Driver": "bridge",
    "EnableIPv6": False,
    "IPAM": {"Driver": "default", "Options": None,
             "Config": [{"Subnet": str(net), "Gateway": bip.split("/")[0]}]},
    "Internal": False,
    "Attachable": False,
    "Ingress": False,
    "ConfigFrom": {"Network": ""},
    "ConfigOnly": False,
    "Containers": {
        "4b8e2f1a9c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f": {
            "Name": "web",
            "EndpointID": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "MacAddress": mac,
            "IPv4Address": cip,
            "IPv6Address": "",
        }
    },
    "Options": {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": "docker0",
        "com.docker.network.driver.mtu": "1500",
    },
    "Labels": {},
}]
with open(f"{folder}/{host}.docker-network-inspect-bridge.json", "w") as f:
    json.dump(inspect, f, indent=4)
    f.write("\n")
PY
}

# ---- docker0 route hijack: ECS1, ECS2, ECS3 in different subnets behind a router ----------------

# docker_build VARIANT: faulty (docker0 172.17.0.1/16 covers ECS1), healthy (bip 172.30.0.1/16) or
# healthy-specific-route (docker0 unchanged, 172.17.0.64/32 via the router on eth0)
docker_build() {
    local variant=$1 bip=172.17.0.1/16 cip=172.17.0.2
    if [ "$variant" = healthy ]; then bip=172.30.0.1/16; cip=172.30.0.2; fi
    for h in router ecs1 ecs2 ecs3; do ns_add "$h"; done
    veth router eth1 ecs1 eth0 02:00:ac:11:00:fd 00:16:3e:11:00:40
    veth router eth2 ecs2 eth0 02:00:ac:12:01:fd 00:16:3e:12:01:16
    veth router eth3 ecs3 eth0 02:00:ac:1f:00:fd 00:16:3e:1f:04:12
    nsx router ip addr add 172.17.0.253/24 dev eth1
    nsx router ip addr add 172.18.1.253/24 dev eth2
    nsx router ip addr add 172.31.0.253/20 dev eth3
    nsx router sysctl -qw net.ipv4.ip_forward=1
    nsx ecs1 ip addr add 172.17.0.64/24 dev eth0
    nsx ecs1 ip route add default via 172.17.0.253
    nsx ecs2 ip addr add 172.18.1.22/24 dev eth0
    nsx ecs2 ip route add default via 172.18.1.253
    nsx ecs3 ip addr add 172.31.4.18/20 dev eth0
    nsx ecs3 ip route add default via 172.31.0.253 dev eth0
    nsx ecs3 ip route add 169.254.0.0/16 dev eth0 scope link metric 1002
    docker_add ecs3 web "$bip" "$cip" DROP
    if [ "$variant" = healthy-specific-route ]; then
        nsx ecs3 ip route add 172.17.0.64/32 via 172.31.0.253 dev eth0
    fi
    (ip netns exec "$LAB_PREFIX-ecs3" timeout 100 python3 -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1 &)
    (ip netns exec "$LAB_PREFIX-ecs2" timeout 100 python3 -m http.server --bind 172.18.1.22 80 >/dev/null 2>&1 &)
    sleep 0.8
}

# docker_facts OUT_DIR BIP: the transcripts of the four hosts and docker's product files
docker_facts() {
    local out=$1 bip=$2 h
    docker_configs "$out/facts" ecs3 "$bip" web
    facts_dump ecs3 ecs3 "$out/facts/ecs3.txt" "iptables-save"
    facts_file ecs3 "$out/facts/ecs3.txt" "cat /etc/docker/daemon.json" "$out/facts/ecs3.daemon.json"
    facts_file ecs3 "$out/facts/ecs3.txt" "docker network inspect bridge" \
        "$out/facts/ecs3.docker-network-inspect-bridge.json"
    facts_dump router router "$out/facts/router.txt" "nft list ruleset"
    for h in ecs1 ecs2; do
        facts_dump "$h" "$h" "$out/facts/$h.txt"
        [ -f "$LAB_TMP/transcripts/$h" ] && cat "$LAB_TMP/transcripts/$h" >>"$out/facts/$h.txt"
    done
    return 0
}
