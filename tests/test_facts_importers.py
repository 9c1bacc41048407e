"""Each importer on real outputs (tests/fixtures/facts/real, made by make_outputs.sh), the seeds'
own listings and configuration in its real syntax: the values that matter, with provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdiag.facts.importers import (
    IMPORTERS,
    bridge_fdb,
    by_command,
    by_content,
    docker_daemon,
    docker_network,
    ip_addr,
    ip_link,
    ip_neigh,
    ip_route,
    ip_rule,
    iptables_save,
    ipvsadm,
    keepalived,
    libreswan,
    nft_ruleset,
    route_n,
    ss,
    strongswan_ipsec_conf,
    swanctl,
    sysctl,
    topology_yaml,
)
from netdiag.facts.model import Source

FIX = Path(__file__).parent / "fixtures" / "facts"
REAL = FIX / "real"


def text(rel: str) -> str:
    return (FIX / rel).read_text("utf-8")


def test_registry_names_match_modules() -> None:
    assert len(IMPORTERS) == 19
    for name, imp in IMPORTERS.items():
        assert imp.name == name
        assert imp.description


@pytest.mark.parametrize("style", ["ip_addr", "ip_o_addr", "ip_j_addr", "ip_d_addr", "ip_br_addr"])
def test_ip_addr_styles_agree(style: str) -> None:
    frag = ip_addr.parse(text(f"real/lb/{style}.txt"), "lb.txt")
    assert frag.problems == []
    eth0 = frag.host.interfaces["eth0"]
    got = [(a.address, a.prefixlen) for a in eth0.addresses if ":" not in a.address]
    assert got == [("192.168.75.131", 24), ("10.0.0.3", 24)]
    if style != "ip_br_addr":  # brief output has neither labels nor ifindex
        assert [a.label for a in eth0.addresses if ":" not in a.address] == ["eth0", "eth0:0"]
        assert eth0.ifindex == 4
    v6 = [a.address for a in eth0.addresses if ":" in a.address]
    assert v6 == ["2001:db8:75::131", "fe80::ff:fe00:a01"]
    if style not in ("ip_o_addr", "ip_br_addr"):
        assert eth0.mac == "02:00:00:00:0a:01" and eth0.mtu == 1500


def test_ip_addr_source_is_the_line() -> None:
    frag = ip_addr.parse(text("real/rs/ip_addr.txt"), "rs.txt", first_line=10)
    lo = frag.host.interfaces["lo"]
    vip = [a for a in lo.addresses if a.address == "10.0.0.3"][0]
    assert vip.prefixlen == 32 and vip.label == "lo:1"
    assert isinstance(vip.source, Source)
    assert vip.source.text.strip() == "inet 10.0.0.3/32 scope global lo:1"
    assert vip.source.line == 10 + text("real/rs/ip_addr.txt").splitlines().index(
        "    inet 10.0.0.3/32 scope global lo:1"
    )


@pytest.mark.parametrize("style", ["ip_link", "ip_o_link", "ip_d_link", "ip_j_addr"])
def test_ip_link_kinds_and_masters(style: str) -> None:
    frag = ip_link.parse(text(f"real/rs/{style}.txt"), "rs")
    assert frag.problems == []
    ifaces = frag.host.interfaces
    assert ifaces["veth1a2b3c4"].master == "docker0"
    assert ifaces["eth0.100"].mtu == 1400 and ifaces["eth0.100"].ifindex == 5
    assert ifaces["lo"].kind == "loopback"
    if style == "ip_d_link":
        assert ifaces["docker0"].kind == "bridge" and ifaces["veth1a2b3c4"].kind == "veth"


def test_ip_brief_link() -> None:
    frag = ip_link.parse(text("real/rs/ip_br_link.txt"), "rs")
    assert frag.problems == []
    ifaces = frag.host.interfaces
    assert ifaces["docker0"].mac == "02:42:ac:11:00:01"
    assert ifaces["eth0"].link == "if2" and ifaces["eth0"].state == "UP"
    assert ifaces["lo"].kind == "loopback" and "LOOPBACK" in ifaces["lo"].flags


def test_ip_route_table_all_types_and_tables() -> None:
    frag = ip_route.parse(text("real/lb/ip_route_all.txt"), "lb")
    assert frag.problems == []
    routes = frag.host.routes
    by = {(r.table, r.type, r.destination) for r in routes}
    assert ("100", "unicast", "default") in by
    assert ("main", "blackhole", "10.66.0.0/16") in by
    assert ("main", "prohibit", "10.68.0.0/16") in by
    assert ("local", "local", "10.0.0.3") in by
    assert ("local", "multicast", "ff00::/8") in by
    metric = [r for r in routes if r.destination == "10.200.0.0/20"][0]
    assert metric.metric == 50 and metric.gateway == "10.99.0.2" and metric.device == "eth2"
    v6 = [r for r in routes if r.destination == "2001:db8:75::/64"][0]
    assert v6.family == 6


def test_ip_route_json_equals_plain() -> None:
    plain = ip_route.parse(text("real/rs/ip_route_all.txt"), "x").host.routes
    js = ip_route.parse(text("real/rs/ip_j_route.txt"), "x").host.routes
    # ip -j omits 'metric 0' of local IPv6 routes the same way: the facts are equal
    assert plain == js


def test_ip_route_seed_002() -> None:
    frag = ip_route.parse(text("seeds/ecs3.seed002-ip-route.txt"), "seed", 1)
    assert frag.problems == []
    docker = [r for r in frag.host.routes if r.device == "docker0"][0]
    assert (docker.destination, docker.prefsrc, docker.protocol) == (
        "172.17.0.0/16",
        "172.17.0.1",
        "kernel",
    )
    assert docker.source is not None and docker.source.line == 5


def test_ip_route_multipath() -> None:
    sample = (
        "default proto static metric 100\n"
        "\tnexthop via 10.0.0.1 dev eth0 weight 1\n"
        "\tnexthop via 10.0.1.1 dev eth1 weight 1\n"
    )
    frag = ip_route.parse(sample, "mp")
    assert frag.problems == []
    assert [(r.gateway, r.device, r.metric) for r in frag.host.routes] == [
        ("10.0.0.1", "eth0", 100),
        ("10.0.1.1", "eth1", 100),
    ]


def test_ip_rule() -> None:
    frag = ip_rule.parse(text("real/lb/ip_rule.txt"), "lb")
    assert frag.problems == []
    rules = {r.priority: r for r in frag.host.rules}
    assert rules[1000].from_ == "192.168.1.0/24" and rules[1000].table == "100"
    assert rules[1001].to == "10.70.0.0/16"
    assert rules[1002].fwmark == "0x10" and rules[1003].iif == "eth2"
    assert rules[32766].table == "main"


def test_ip_neigh_and_arp_n_agree() -> None:
    a = ip_neigh.parse(text("real/lb/ip_neigh.txt"), "lb").host.neighbours
    b = ip_neigh.parse(text("real/lb/arp_n.txt"), "lb").host.neighbours
    macs_a = {(n.address, n.mac, n.device) for n in a}
    macs_b = {(n.address, n.mac, n.device) for n in b}
    assert macs_a == macs_b
    states = {n.address: n.state for n in a}
    assert states == {
        "192.168.1.185": "PERMANENT",
        "10.99.0.2": "DELAY",
        "192.168.1.190": "REACHABLE",
        "192.168.75.2": "FAILED",
    }
    assert {n.address: n.state for n in b}["192.168.1.185"] == "PERMANENT"


@pytest.mark.parametrize("style", ["bridge_fdb", "bridge_j_fdb"])
def test_bridge_fdb_keeps_unicast_port_entries(style: str) -> None:
    frag = bridge_fdb.parse(text(f"real/rs/{style}.txt"), "rs")
    assert frag.problems == []
    got = [(e.mac, e.device, e.master, e.state) for e in frag.host.fdb]
    assert ("02:42:ac:11:00:02", "veth1a2b3c4", "docker0", "") in got  # the container, learnt
    assert ("02:42:ac:11:00:01", "docker0", "docker0", "permanent") in got
    assert all(int(e.mac[:2], 16) & 1 == 0 for e in frag.host.fdb)  # no multicast, no 'self'


def test_bridge_link_is_read_as_ports() -> None:
    frag = ip_link.parse(text("real/rs/bridge_link.txt"), "rs")
    assert frag.problems == []
    port = frag.host.interfaces["veth1a2b3c4"]
    assert port.master == "docker0" and port.state == ""  # 'forwarding' is not an operstate


def test_arp_a_style() -> None:
    frag = ip_neigh.parse("? (10.0.0.1) at 52:54:00:12:34:56 [ether] on eth0\n", "a")
    assert [(n.address, n.mac, n.device) for n in frag.host.neighbours] == [
        ("10.0.0.1", "52:54:00:12:34:56", "eth0")
    ]


def test_route_n() -> None:
    frag = route_n.parse(text("real/lb/route_n.txt"), "lb")
    assert frag.problems == []
    routes = {r.destination: r for r in frag.host.routes}
    assert routes["default"].gateway == "192.168.75.2"
    assert routes["10.99.0.0/30"].device == "eth2"
    assert routes["10.67.0.0/16"].type == "reject"
    assert routes["10.200.0.0/20"].metric == 50


def test_sysctl_forms() -> None:
    frag = sysctl.parse(text("real/rs/sysctl_a.txt"), "rs")
    assert frag.problems == []
    s = frag.host.sysctls
    assert s["net.ipv4.conf.eth0/100.rp_filter"].value == "1"
    assert s["net.ipv4.conf.all.arp_ignore"].value == "1"
    proc = sysctl.parse(text("real/rs/proc_sys.txt"), "rs").host.sysctls
    for key in ("net.ipv4.conf.eth0/100.arp_ignore", "net.ipv4.conf.all.arp_announce"):
        assert proc[key].value == s[key].value
    seed = sysctl.parse(text("seeds/vip.seed004-proc-sys.txt"), "seed").host.sysctls
    assert seed["net.ipv4.ip_forward"].value == "1"
    assert seed["net.ipv4.conf.eth0.send_redirects"].value == "0"


def test_iptables_save_nat() -> None:
    frag = iptables_save.parse(text("real/rs/iptables_save.txt"), "rs")
    assert frag.problems == []
    rules = frag.host.nat_rules
    assert [r.action for r in rules] == ["MASQUERADE", "MASQUERADE", "DNAT"]
    masq = rules[0]
    assert (masq.chain, masq.src, masq.out_iface) == ("POSTROUTING", "172.17.0.0/16", "!docker0")
    dnat = rules[2]
    assert (dnat.in_iface, dnat.protocol, dnat.dports, dnat.to) == (
        "!docker0",
        "tcp",
        ["8080"],
        "172.17.0.2:80",
    )
    assert dnat.source is not None and "--to-destination 172.17.0.2:80" in dnat.source.text


def test_nft_ruleset_matches_iptables_for_docker() -> None:
    nft = nft_ruleset.parse(text("real/rs/nft_ruleset.txt"), "rs").host.nat_rules
    ipt = iptables_save.parse(text("real/rs/iptables_save.txt"), "rs").host.nat_rules

    def key(r):  # type: ignore[no-untyped-def]
        return (r.action, r.chain, r.src, r.dst, r.in_iface, r.out_iface, r.protocol, r.to)

    assert sorted(map(key, nft)) == sorted(map(key, ipt))


def test_nft_native_nat() -> None:
    frag = nft_ruleset.parse(text("real/lb/nft_ruleset.txt"), "lb")
    assert frag.problems == []
    rules = frag.host.nat_rules
    assert rules[1].dports == ["80", "443"] and rules[1].in_iface == "eth0"
    assert rules[1].to == "192.168.1.190"
    assert (rules[2].action, rules[2].src, rules[2].out_iface) == (
        "MASQUERADE",
        "192.168.1.0/24",
        "eth0",
    )
    assert (rules[3].action, rules[3].to) == ("SNAT", "192.168.75.131")


def test_nft_numgen_map_target() -> None:
    # as the nat-gateway samples' director prints it
    ruleset = (
        "table ip lvs_nat {\n\tchain prerouting {\n"
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tip daddr 198.51.100.131 tcp dport 80 dnat to numgen inc mod 2 map "
        "{ 0 : 192.168.1.185, 1 : 192.168.1.190 }\n\t}\n}\n"
    )
    frag = nft_ruleset.parse(ruleset, "d")
    assert frag.problems == []
    (rule,) = frag.host.nat_rules
    assert (rule.action, rule.dst, rule.dports) == ("DNAT", "198.51.100.131", ["80"])
    assert rule.to_addresses() == ["192.168.1.185", "192.168.1.190"]


def test_ss_listeners() -> None:
    frag = ss.parse(text("real/rs/ss_ltnp.txt"), "rs")
    assert frag.problems == []
    assert [(s.address, s.port, s.process) for s in frag.host.sockets] == [
        ("0.0.0.0", 80, "python3"),
        ("10.0.0.3", 8080, "python3"),
        ("*", 22, "python3"),
    ]
    netstat = ss.parse(
        "Active Internet connections (only servers)\n"
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State\n"
        "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN\n"
        "tcp6       0      0 :::80                   :::*                    LISTEN\n",
        "n",
    )
    assert [(s.address, s.port) for s in netstat.host.sockets] == [("0.0.0.0", 22), ("::", 80)]


def test_ipvsadm_listing_and_save_agree_on_seed_003() -> None:
    ln = ipvsadm.parse(text("seeds/lb01.seed003-ipvsadm-ln.txt"), "s").host.services
    save = ipvsadm.parse(text("seeds/lb01.seed003-ipvsadm-save.txt"), "s").host.services
    assert ln == save
    svc = ln[0]
    assert (svc.vip, svc.port, svc.scheduler, svc.persistence) == ("10.0.0.3", 80, "wrr", 20)
    assert [(r.address, r.port, r.method, r.weight) for r in svc.real_servers] == [
        ("10.0.0.7", 80, "DR", 1),
        ("10.0.0.8", 80, "DR", 1),
    ]
    assert svc.keeps_client_address is True and svc.layer == "L4"


def test_ipvsadm_fullnat_and_tunnel() -> None:
    listing = (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  [2001:db8::3]:443 rr\n"
        "  -> [2001:db8::7]:443            Tunnel  1      0          0\n"
        "UDP  10.0.0.3:53 rr persistent\n"
        "  -> 10.0.0.7:53                  FullNat 3      0          0\n"
    )
    frag = ipvsadm.parse(listing, "l")
    assert frag.problems == []
    v6, udp = frag.host.services
    assert v6.vip == "2001:db8::3" and v6.real_servers[0].method == "TUN"
    assert udp.protocol == "udp" and udp.persistence == 300
    assert udp.keeps_client_address is False


def test_keepalived_virtual_servers() -> None:
    frag = keepalived.parse(text("configs/director.keepalived.conf"), "k")
    assert frag.problems == []
    dr, nat = frag.host.services
    assert (dr.vip, dr.port, dr.scheduler, dr.persistence) == ("10.0.0.3", 80, "wrr", 20)
    assert [(r.address, r.method, r.weight) for r in dr.real_servers] == [
        ("10.0.0.7", "DR", 1),
        ("10.0.0.8", "DR", 2),
    ]
    assert nat.real_servers[0].method == "NAT" and nat.real_servers[0].port == 8443


def test_strongswan_inheritance_and_lists() -> None:
    frag = strongswan_ipsec_conf.parse(text("configs/vpngw.ipsec.conf"), "v")
    assert frag.problems == []
    conns = {c.name: c for c in frag.host.ipsec}
    assert "base-cloud" not in conns  # auto=ignore
    c = conns["idc-to-othercloud"]
    assert (c.local_gateway, c.remote_gateway) == ("198.51.100.18", "203.0.113.7")
    assert c.local_subnets == ["10.16.0.0/16"] and c.remote_subnets == ["10.200.0.0/20"]
    two = conns["idc-two-nets"]
    assert two.local_subnets == ["10.16.0.0/16", "10.64.0.0/16"]
    assert two.remote_subnets == ["10.200.0.0/20", "10.201.0.0/20"]
    assert two.covers_local("10.64.3.22") and not c.covers_local("10.64.3.22")
    # %default's leftsubnet applies where the conn sets none
    assert conns["defaults-only"].local_subnets == ["10.0.0.0/8"]
    assert conns["defaults-only"].remote_subnets == []  # right=%any is not a selector


def test_libreswan_subnets_list() -> None:
    frag = libreswan.parse(text("configs/vpngw.libreswan.conf"), "v")
    assert frag.problems == []
    (c,) = frag.host.ipsec
    assert c.kind == "libreswan" and c.local_subnets == ["10.16.0.0/16", "10.17.0.0/16"]


def test_swanctl_children() -> None:
    frag = swanctl.parse(text("configs/vpngw.swanctl.conf"), "v")
    assert frag.problems == []
    conns = {c.name: c for c in frag.host.ipsec}
    net = conns["idc-to-othercloud/idc-net"]
    assert net.local_subnets == ["10.16.0.0/16"] and net.remote_gateway == "203.0.113.7"
    dyn = conns["idc-to-othercloud/idc-dynamic"]
    assert dyn.local_subnets == ["198.51.100.18"]  # dynamic: the gateway's own address
    assert dyn.covers_remote("10.201.3.3") and dyn.covers_remote("10.202.0.9")


def test_docker_network_inspect() -> None:
    frag = docker_network.parse(text("configs/ecs3.docker-network-inspect.json"), "d")
    assert frag.problems == []
    nets = [(n.name, n.bridge, n.subnet, n.gateway) for n in frag.host.container_networks]
    assert nets == [
        ("bridge", "docker0", "172.17.0.0/16", "172.17.0.1"),
        ("app_default", "br-c0ffee123456", "172.18.0.0/16", "172.18.0.1"),
    ]
    src = frag.host.container_networks[0].source
    assert src is not None and src.line == 14  # the "Subnet" line


def test_docker_daemon_json() -> None:
    frag = docker_daemon.parse(text("configs/ecs3.daemon.json"), "d")
    assert frag.problems == []
    bip, p1, p2 = frag.host.container_networks
    assert (bip.kind, bip.bridge, bip.subnet, bip.gateway) == (
        "bip",
        "docker0",
        "192.168.200.0/24",
        "192.168.200.1",
    )
    assert (p1.kind, p1.subnet, p1.pool_size) == ("pool", "192.168.208.0/20", 24)
    assert bip.source is not None and bip.source.line == 3


def test_topology_yaml() -> None:
    frag = topology_yaml.parse(text("configs/cloud.topology.yaml"), "t.yaml")
    assert frag.problems == []
    hosts = {h.name: h for h in frag.other_hosts}
    l4, l7 = hosts["slb"].services
    assert (l4.layer, l4.keeps_client_address, l4.port) == ("L4", True, 80)
    assert (l7.layer, l7.keeps_client_address) == ("L7", False)
    assert l4.source == Source("t.yaml", 6, "      - vip: 192.168.11.175")
    (vpn,) = hosts["vpc-vpn-gateway"].ipsec
    assert vpn.remote_subnets == ["10.16.0.0/16"]
    assert hosts["ecs3"].sysctls["net.ipv4.tcp_rmem"].value == "4096 87380 6291456"
    assert [(c.capture, c.host, c.interface) for c in frag.captures] == [
        ("backend181-any.pcap", "backend181", "any"),
        ("ecs3-eth0.pcapng", "ecs3", "eth0"),
    ]


def test_topology_yaml_errors_have_lines() -> None:
    frag = topology_yaml.parse(text("configs/broken/bad.topology.yaml"), "bad.yaml")
    got = {(p.line, p.message.split(":")[0]) for p in frag.problems}
    assert (18, "captures.0") in got
    assert (7, "hosts.h1.routes.2.metric") in got
    assert (10, "hosts.h1.services.0.port") in got
    assert (11, "hosts.h1.services.1") in got
    assert any(p.line == 16 and "10.0.0.300" in p.message for p in frag.problems)
    assert any(p.line == 6 and "not-a-prefix" in p.message for p in frag.problems)
    (h1,) = frag.other_hosts
    assert [r.destination for r in h1.routes] == ["10.0.0.0/8"]  # the bad ones skipped
    assert h1.services == [] and frag.captures == []


def test_topology_yaml_syntax_error() -> None:
    frag = topology_yaml.parse("version: 1\nhosts:\n  a: [\n", "x.yaml")
    assert len(frag.problems) == 1 and "not valid YAML" in frag.problems[0].message


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("ip -o addr", "ip_addr"),
        ("ip a s lo", "ip_addr"),
        ("ip -4 -br address show", "ip_addr"),
        ("ip -d link show", "ip_link"),
        ("ip r", "ip_route"),
        ("ip route show table all", "ip_route"),
        ("ip -6 ru", "ip_rule"),
        ("ip n", "ip_neigh"),
        ("arp -n", "ip_neigh"),
        ("bridge fdb show br docker0", "bridge_fdb"),
        ("route -n", "route_n"),
        ("sysctl -a | grep arp", "sysctl"),
        ("grep . /proc/sys/net/ipv4/conf/*/rp_filter", "sysctl"),
        ("ipvsadm -Ln", "ipvsadm"),
        ("ipvsadm-save -n", "ipvsadm"),
        ("cat /etc/keepalived/keepalived.conf", "keepalived"),
        ("cat /etc/strongswan/ipsec.conf", "strongswan_ipsec_conf"),
        ("cat /etc/ipsec.d/aws.conf", "libreswan"),
        ("cat /etc/swanctl/swanctl.conf", "swanctl"),
        ("iptables-save -t nat", "iptables_save"),
        ("iptables -t nat -S", "iptables_save"),
        ("nft list ruleset", "nft_ruleset"),
        ("ss -ltnp", "ss"),
        ("docker network inspect bridge", "docker_network"),
        ("cat /etc/docker/daemon.json", "docker_daemon"),
        ("cat listener.yaml", "topology_yaml"),
    ],
)
def test_commands_name_their_importer(command: str, name: str) -> None:
    imp = by_command(command)
    assert imp is not None and imp.name == name


@pytest.mark.parametrize(
    ("rel", "name"),
    [
        ("real/lb/ip_addr.txt", "ip_addr"),
        ("real/lb/ip_o_addr.txt", "ip_addr"),
        ("real/lb/ip_j_addr.txt", "ip_addr"),
        ("real/lb/ip_link.txt", "ip_link"),
        ("real/lb/ip_o_link.txt", "ip_link"),
        ("real/lb/ip_br_addr.txt", "ip_addr"),
        ("real/lb/ip_br_link.txt", "ip_link"),
        ("real/lb/ip_route.txt", "ip_route"),
        ("real/lb/ip_j_route.txt", "ip_route"),
        ("real/lb/ip_rule.txt", "ip_rule"),
        ("real/lb/ip_neigh.txt", "ip_neigh"),
        ("real/lb/arp_n.txt", "ip_neigh"),
        ("real/lb/route_n.txt", "route_n"),
        ("real/lb/sysctl_a.txt", "sysctl"),
        ("real/rs/proc_sys.txt", "sysctl"),
        ("real/rs/iptables_save.txt", "iptables_save"),
        ("real/rs/nft_ruleset.txt", "nft_ruleset"),
        ("real/rs/ss_ltn.txt", "ss"),
        ("real/rs/bridge_fdb.txt", "bridge_fdb"),
        ("real/rs/bridge_j_fdb.txt", "bridge_fdb"),
        ("real/rs/bridge_link.txt", "ip_link"),
        ("seeds/lb01.seed003-ipvsadm-save.txt", "ipvsadm"),
        ("configs/director.keepalived.conf", "keepalived"),
        ("configs/vpngw.ipsec.conf", "strongswan_ipsec_conf"),
        ("configs/vpngw.libreswan.conf", "libreswan"),
        ("configs/vpngw.swanctl.conf", "swanctl"),
        ("configs/ecs3.docker-network-inspect.json", "docker_network"),
        ("configs/ecs3.daemon.json", "docker_daemon"),
        ("configs/cloud.topology.yaml", "topology_yaml"),
    ],
)
def test_content_names_its_importer(rel: str, name: str) -> None:
    body = text(rel)
    if rel.startswith("seeds/"):
        body = "\n".join(body.splitlines()[2:])  # the listing without provenance and prompt
    imp = by_content(body)
    assert imp is not None and imp.name == name
