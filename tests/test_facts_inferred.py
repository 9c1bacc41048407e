"""Facts inferred from traffic: on a real sample capture and on a small built packet table."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from netdiag.addressbook import AddressBook
from netdiag.facts.inferred import GATEWAY_MIN_IPS, add_inferred, infer
from netdiag.facts.model import FactSet, Inferred

SAMPLE = Path(__file__).parent.parent / "samples" / "lvs-dr-arp" / "faulty-arp-ignore"


def _table(rows: list[dict[str, object]]) -> pd.DataFrame:
    book = AddressBook()
    n = len(rows)

    def ips(key: str) -> pd.Categorical:
        vals = [str(r.get(key, "")) for r in rows]
        present = np.array([bool(v) for v in vals])
        nums = np.array([int(ipaddress.ip_address(v)) if v else 0 for v in vals], dtype=np.uint32)
        return book.categorical(book.intern_ip4(nums, present), "ip")

    def macs(key: str) -> pd.Categorical:
        vals = [str(r.get(key, "")) for r in rows]
        present = np.array([bool(v) for v in vals])
        nums = np.array([int(v.replace(":", ""), 16) if v else 0 for v in vals], dtype=np.uint64)
        return book.categorical(book.intern_mac(nums, present), "mac")

    return pd.DataFrame(
        {
            "frame": np.arange(1, n + 1, dtype=np.int64),
            "eth_src": macs("eth_src"),
            "ip_src": ips("ip_src"),
            "arp_op": np.array([int(r.get("arp_op", -1)) for r in rows], dtype=np.int16),  # type: ignore[call-overload]
            "arp_sha": macs("arp_sha"),
            "arp_spa": ips("arp_spa"),
        }
    )


def test_bindings_gateway_and_proxy_range() -> None:
    router = "02:00:00:00:00:01"
    rows: list[dict[str, object]] = [
        {"eth_src": router, "ip_src": f"10.1.0.{i}"} for i in range(1, GATEWAY_MIN_IPS + 1)
    ]
    rows.append({"eth_src": router, "ip_src": "100.64.3.7"})
    rows.append(
        {
            "eth_src": "02:00:00:00:00:02",
            "arp_op": 2,
            "arp_sha": "02:00:00:00:00:02",
            "arp_spa": "10.0.0.3",
        }
    )
    rows.append(
        {
            "eth_src": "02:00:00:00:00:09",
            "arp_op": 1,
            "arp_sha": "02:00:00:00:00:09",
            "arp_spa": "0.0.0.0",
        }
    )
    rows.append({"eth_src": "02:00:00:00:00:03", "ip_src": "10.0.0.9"})
    rows.append({"eth_src": router, "arp_op": 2, "arp_sha": router, "arp_spa": "10.0.0.1"})
    got = infer(_table(rows), "x.pcap")
    assert [(b.ip, b.mac, b.via) for b in got.mac_bindings] == [
        ("10.0.0.3", "02:00:00:00:00:02", "arp"),
        ("10.0.0.1", router, "arp"),
        ("10.0.0.9", "02:00:00:00:00:03", "ip"),
    ]  # the ARP probe from 0.0.0.0 binds nothing
    (gw,) = got.gateways
    assert gw.mac == router and gw.ips == GATEWAY_MIN_IPS + 1 and gw.own_ips == ["10.0.0.1"]
    assert isinstance(gw.source, Inferred) and gw.source.frames[:3] == (1, 2, 3)
    (proxy,) = got.proxy_ranges
    assert proxy.cidr == "100.64.0.0/10" and proxy.addresses == ["100.64.3.7"]
    assert proxy.source == Inferred("x.pcap", (4,), "source address")


def test_empty_or_foreign_table() -> None:
    assert infer(pd.DataFrame(), "x").mac_bindings == []
    facts = FactSet()
    add_inferred(facts, pd.DataFrame({"frame": [1]}), "x")
    assert facts.mac_bindings == [] and facts.is_empty()


def test_vip_claimed_by_two_macs_in_the_lvs_dr_sample() -> None:
    capture = SAMPLE / "segment.pcapng"
    if not capture.exists():
        pytest.skip("lvs-dr-arp sample not built")
    from netdiag.capture.table import read_packets

    expected = yaml.safe_load((SAMPLE / "expected.yaml").read_text())
    vip = expected["addresses"]["vip"]
    director = expected["addresses"]["director_mac"]
    facts = FactSet()
    add_inferred(facts, read_packets(str(capture)).df, "segment.pcapng")
    claims = {b.mac for b in facts.mac_bindings if b.ip == vip and b.via == "arp"}
    assert director in claims and len(claims) >= 2  # a real server claims the VIP too
    for b in facts.mac_bindings:
        assert isinstance(b.source, Inferred) and b.source.capture == "segment.pcapng"
        assert 1 <= len(b.source.frames) <= 5
    # DR real servers send from the VIP and their own address: not gateways
    assert facts.gateways == []
