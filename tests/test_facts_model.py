"""Query helpers of the facts model: route lookup, effective sysctls, owners, services, IPsec, NAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdiag.facts.loader import load_facts
from netdiag.facts.model import (
    Address,
    FactSet,
    Host,
    Interface,
    IpsecConn,
    NatRule,
    PolicyRule,
    Route,
    Service,
    Source,
    Sysctl,
)

FIXTURES = Path(__file__).parent / "fixtures" / "facts"


@pytest.fixture(scope="module")
def real() -> FactSet:
    facts, problems = load_facts([FIXTURES / "real"])
    assert problems == []
    return facts


def test_real_directory_is_one_host_per_subfolder(real: FactSet) -> None:
    assert sorted(real.hosts) == ["gw", "lb", "rs"]


def test_route_lookup_longest_prefix_and_connected(real: FactSet) -> None:
    lb = real.hosts["lb"]
    hit = lb.route_lookup("10.200.3.4")
    assert hit is not None and hit.destination == "10.200.0.0/20" and hit.gateway == "10.99.0.2"
    hit = lb.route_lookup("192.168.1.185")
    assert hit is not None and hit.device == "eth1" and hit.gateway == ""
    hit = lb.route_lookup("8.8.8.8")
    assert hit is not None and hit.destination == "default" and hit.gateway == "192.168.75.2"
    hit = lb.route_lookup("10.66.1.1")
    assert hit is not None and hit.type == "blackhole"
    # an address of the host itself is local
    hit = lb.route_lookup("10.0.0.3")
    assert hit is not None and hit.type == "local" and hit.device == "eth0"


def test_route_lookup_honours_policy_rules(real: FactSet) -> None:
    lb = real.hosts["lb"]
    # rule 1000: from 192.168.1.0/24 lookup 100 -> default via 192.168.1.254 in table 100
    hit = lb.route_lookup("8.8.8.8", src="192.168.1.190")
    assert hit is not None and hit.table == "100" and hit.gateway == "192.168.1.254"
    # rule 1001: to 10.70.0.0/16 lookup 100
    hit = lb.route_lookup("10.70.1.1")
    assert hit is not None and hit.table == "100" and hit.device == "eth2"


def test_docker0_route_covers_seed_peer(real: FactSet) -> None:
    # seed 002: ECS1 172.17.0.64 is covered by the connected docker0 route
    hit = real.hosts["rs"].route_lookup("172.17.0.64")
    assert hit is not None and hit.device == "docker0" and hit.protocol == "kernel"
    # the first file of the folder that has it (ip -j route) is cited
    assert hit.source is not None and "route" in hit.source.file
    assert '"dst":"172.17.0.0/16","dev":"docker0"' in hit.source.text


def test_connected_routes_from_addresses_when_no_route_pasted() -> None:
    host = Host("h")
    host.interfaces["docker0"] = Interface(
        "docker0", addresses=[Address("172.17.0.1", 16, source=Source("f", 3, "inet ..."))]
    )
    hit = host.route_lookup("172.17.0.64")
    assert hit is not None and hit.device == "docker0" and hit.destination == "172.17.0.0/16"
    assert hit.source == Source("f", 3, "inet ...")


def test_lookup_prefers_lower_metric_among_equal_prefixes() -> None:
    host = Host("h")
    host.routes = [
        Route("default", gateway="10.0.0.1", device="eth0", metric=200),
        Route("default", gateway="10.0.0.2", device="eth1", metric=100),
    ]
    hit = host.route_lookup("1.2.3.4")
    assert hit is not None and hit.gateway == "10.0.0.2"


def test_effective_sysctl_max_of_all_and_interface(real: FactSet) -> None:
    rs = real.hosts["rs"]
    # all.arp_ignore=1, eth0.arp_ignore=0 -> 1; all.arp_announce=2, lo=1 -> 2
    eff = rs.effective_sysctl("arp_ignore", "eth0")
    assert eff.value == 1 and eff.rule == "max(all, eth0)"
    assert [s.key for s in eff.used] == [
        "net.ipv4.conf.all.arp_ignore",
        "net.ipv4.conf.eth0.arp_ignore",
    ]
    assert rs.effective_sysctl("arp_announce", "lo").value == 2
    # rp_filter on the interface with a dot in its name (sysctl writes eth0/100)
    assert rs.effective_sysctl("rp_filter", "eth0.100").value == 1
    assert rs.effective_sysctl("accept_local", "eth0").value == 1  # all OR eth0
    assert real.hosts["lb"].effective_sysctl("ip_forward").value == 1
    assert rs.effective_sysctl("ip_forward").value == 0


def test_effective_sysctl_or_and_unknown() -> None:
    host = Host("h")
    host.sysctls = {
        "net.ipv4.conf.all.send_redirects": Sysctl("net.ipv4.conf.all.send_redirects", "0"),
        "net.ipv4.conf.eth1.send_redirects": Sysctl("net.ipv4.conf.eth1.send_redirects", "1"),
    }
    assert host.effective_sysctl("send_redirects", "eth1").value == 1
    assert host.effective_sysctl("arp_ignore", "eth1").value is None
    assert host.effective_sysctl("ip_forward").value is None
    lower = host.effective_sysctl("send_redirects", "eth9")
    assert lower.value == 0 and "lower bound" in lower.rule


def test_owners_and_ifindex(real: FactSet) -> None:
    owners = sorted((h.name, i.name) for h, i in real.owners("10.0.0.3"))
    assert owners == [("lb", "eth0"), ("rs", "lo")]  # the VIP: director's eth0, RS's lo
    assert real.hosts["rs"].ifname(3) == "docker0"
    assert real.hosts["rs"].ifname(99) is None


def test_services_by_vip_and_real_server_hosts() -> None:
    facts, problems = load_facts([FIXTURES / "seeds"])
    assert problems == []
    found = facts.services_by_vip("192.168.75.131", 80)
    assert len(found) == 1
    host, svc = found[0]
    assert host.name == "vip" and svc.scheduler == "wrr"
    assert [(r.address, r.method, r.weight) for r in svc.real_servers] == [
        ("192.168.1.185", "NAT", 1),
        ("192.168.1.190", "NAT", 2),
    ]
    assert facts.services_by_vip("192.168.75.131", 443) == []


def test_ipsec_covering_remote_and_local_gap() -> None:
    facts, problems = load_facts([FIXTURES / "configs" / "vpngw.ipsec.conf"])
    assert problems == []
    covering = facts.ipsec_covering_remote("10.200.1.15")
    names = sorted(c.name for _, c in covering)
    assert names == ["idc-to-othercloud", "idc-two-nets"]  # base-cloud is auto=ignore
    gap = [c for _, c in covering if not c.covers_local("10.64.3.22")]
    assert [c.name for c in gap] == ["idc-to-othercloud"]
    assert gap[0].local_subnets_source is not None
    assert gap[0].local_subnets_source.text.strip() == "leftsubnet=10.16.0.0/16"
    assert gap[0].local_subnets_source.line == 22


def test_nat_rules_covering_source(real: FactSet) -> None:
    gw = real.hosts["gw"]
    assert [r.action for r in gw.nat_rules_covering_source("192.168.1.7")] == ["SNAT"]
    assert gw.nat_rules_covering_source("192.168.2.7") == []
    rs = real.hosts["rs"]
    # docker's MASQUERADE for 172.17.0.0/16
    assert any(r.out_iface == "!docker0" for r in rs.nat_rules_covering_source("172.17.0.5"))


def test_negated_source_match() -> None:
    host = Host("h", nat_rules=[NatRule("MASQUERADE", src="!10.0.0.0/8")])
    assert host.nat_rules_covering_source("192.168.1.1") != []
    assert host.nat_rules_covering_source("10.1.1.1") == []


def test_rule_actions_in_lookup() -> None:
    host = Host("h")
    host.rules = [
        PolicyRule(100, to="10.9.0.0/16", action="unreachable"),
        PolicyRule(200, table="main"),
    ]
    host.routes = [Route("default", gateway="10.0.0.1")]
    hit = host.route_lookup("10.9.1.1")
    assert hit is not None and hit.type == "unreachable"
    hit = host.route_lookup("10.8.1.1")
    assert hit is not None and hit.gateway == "10.0.0.1"


def test_provenance_is_not_part_of_equality() -> None:
    a = IpsecConn("c", local_subnets=["10.0.0.0/8"], source=Source("a", 1, "x"))
    b = IpsecConn("c", local_subnets=["10.0.0.0/8"], source=Source("b", 9, "y"))
    assert a == b
    assert Service("1.1.1.1", 80) == Service("1.1.1.1", 80, source=Source("f", 1))


def test_egress_interface(real: FactSet) -> None:
    rs = real.hosts["rs"]
    assert rs.egress_interface("192.168.1.186") == "eth0"
    assert rs.egress_interface("172.17.0.9") == "docker0"
    assert rs.egress_interface("10.0.0.3") is None  # its own VIP: local
    assert rs.effective_sysctl("arp_ignore", rs.egress_interface("192.168.1.186") or "").value == 1
