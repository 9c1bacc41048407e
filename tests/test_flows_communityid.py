"""Community ID v1 of flows equals the reference `communityid` package's output."""

from __future__ import annotations

import ipaddress

import communityid
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_flows_kit import make_chunk

from netdiag.addressbook import AddressBook
from netdiag.flows import build_flows
from netdiag.flows.communityid import community_ids, icmp_port_equivalents

CID = communityid.CommunityID(seed=0)


def reference(p: dict) -> str:
    """The package's Community ID for a packet dict of the test kit."""
    proto = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}.get(p["proto"], p["proto"])
    src, dst = p["src"], p["dst"]
    if proto == 1:
        tpl = communityid.FlowTuple.make_icmp(src, dst, p["type"], p["code"])
    elif proto == 58:
        tpl = communityid.FlowTuple.make_icmp6(src, dst, p["type"], p["code"])
    elif proto in (6, 17, 132):
        tpl = communityid.FlowTuple(proto, src, dst, p["sport"], p["dport"])
    else:
        tpl = communityid.FlowTuple.make_ip(src, dst, proto)
    return str(CID.calc(tpl))


CASES = {
    "tcp4": dict(proto="tcp", src="10.1.2.3", dst="10.1.2.1", sport=50000, dport=443, flags="S"),
    "tcp4-reverse-order": dict(proto="tcp", src="10.9.0.1", dst="10.1.0.1", sport=1, dport=2),
    "udp4": dict(proto="udp", src="192.168.1.5", dst="8.8.8.8", sport=53123, dport=53),
    "udp4-same-address": dict(proto="udp", src="127.0.0.1", dst="127.0.0.1", sport=9000, dport=53),
    "tcp6": dict(proto="tcp", src="2001:db8::2", dst="2001:db8::1", sport=443, dport=51000),
    "udp6": dict(proto="udp", src="fe80::1", dst="ff02::fb", sport=5353, dport=5353),
    "icmp-echo": dict(proto="icmp", src="10.0.0.1", dst="10.0.0.2", type=8, code=0),
    "icmp-echo-reply": dict(proto="icmp", src="10.0.0.2", dst="10.0.0.1", type=0, code=0),
    "icmp-time-exceeded": dict(proto="icmp", src="172.16.0.1", dst="10.0.0.1", type=11, code=0),
    "icmp-port-unreachable": dict(proto="icmp", src="10.0.0.2", dst="10.0.0.1", type=3, code=3),
    "icmp6-echo": dict(proto="icmp6", src="2001:db8::1", dst="2001:db8::2", type=128, code=0),
    "icmp6-neighbor-advert": dict(proto="icmp6", src="fe80::2", dst="fe80::1", type=136, code=0),
    "icmp6-packet-too-big": dict(
        proto="icmp6", src="2001:db8::9", dst="2001:db8::1", type=2, code=0
    ),
    "esp": dict(proto=50, src="203.0.113.1", dst="198.51.100.1"),
    "gre6": dict(proto=47, src="2001:db8::1", dst="2001:db8::2"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_flow_community_id_matches_package(name: str) -> None:
    packet = CASES[name]
    book = AddressBook()
    flows = build_flows([make_chunk(book, [packet])], book)
    assert flows.community_id.tolist() == [reference(packet)]


def test_both_directions_share_one_flow_and_id() -> None:
    req = CASES["icmp6-echo"]
    rep = dict(req, src=req["dst"], dst=req["src"], type=129)
    book = AddressBook()
    flows = build_flows([make_chunk(book, [req, rep])], book)
    assert len(flows) == 1
    assert flows.community_id.iloc[0] == reference(req) == reference(rep)


def test_icmp_port_equivalents() -> None:
    sport, dport, one_way = icmp_port_equivalents(
        np.array([False, False, False, True, True]),
        np.array([8, 0, 11, 135, 1]),
        np.array([0, 0, 1, 0, 4]),
    )
    assert sport.tolist() == [8, 0, 11, 135, 1]
    assert dport.tolist() == [0, 8, 1, 136, 4]
    assert one_way.tolist() == [False, False, True, False, True]


def _packed(text: str) -> np.ndarray:
    raw = np.zeros(16, dtype=np.uint8)
    packed = ipaddress.ip_address(text).packed
    raw[: len(packed)] = np.frombuffer(packed, dtype=np.uint8)
    return raw


@settings(max_examples=60, deadline=None)
@given(
    v6=st.booleans(),
    a=st.integers(0, 2**32 - 1),
    b=st.integers(0, 2**32 - 1),
    proto=st.sampled_from([6, 17, 132, 50, 47]),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    seed=st.integers(0, 65535),
)
def test_vectorised_hash_matches_package(v6, a, b, proto, sport, dport, seed) -> None:  # type: ignore[no-untyped-def]
    if v6:
        src = str(ipaddress.IPv6Address((0x20010DB8 << 96) | a))
        dst = str(ipaddress.IPv6Address((0x20010DB8 << 96) | b))
    else:
        src, dst = str(ipaddress.IPv4Address(a)), str(ipaddress.IPv4Address(b))
    if proto in (6, 17, 132):
        tpl = communityid.FlowTuple(proto, src, dst, sport, dport)
    else:
        tpl = communityid.FlowTuple.make_ip(src, dst, proto)
    expected = communityid.CommunityID(seed=seed).calc(tpl)
    got = community_ids(
        np.array([proto]),
        _packed(src)[None, :],
        _packed(dst)[None, :],
        np.array([16 if v6 else 4]),
        np.array([sport]),
        np.array([dport]),
        np.array([False]),
        seed=seed,
    )
    assert got.tolist() == [expected]
