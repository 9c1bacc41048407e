"""Wireshark display filters for findings: small builders that quote addresses and join terms.

A finding's filter is meant to be pasted into Wireshark or ``tshark -Y``; it selects at least the
finding's evidence frames. ``frames`` pins exact frames; the others describe the pattern so that
the user also sees the frames around it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def _family(address: str) -> str:
    try:
        return "ipv6" if ipaddress.ip_address(address).version == 6 else "ip"
    except ValueError:
        return "ip"


def addr(address: str, field: str = "addr") -> str:
    """``ip.addr == 10.0.0.1`` (or ``ipv6.src == ...``); field is addr, src or dst."""
    return f"{_family(address)}.{field} == {address}"


def addr_in(addresses: Iterable[str], field: str = "addr") -> str:
    """``ip.addr in {a, b}``: one term per address family."""
    by_family: dict[str, list[str]] = {}
    for a in sorted(set(addresses)):
        by_family.setdefault(_family(a), []).append(a)
    terms = [
        f"{fam}.{field} == {v[0]}" if len(v) == 1 else in_set(f"{fam}.{field}", v)
        for fam, v in by_family.items()
    ]
    return any_of(terms)


def frames(numbers: Iterable[int]) -> str:
    """``frame.number in {1, 5, 9}``: exactly these frames."""
    nums = sorted({int(n) for n in numbers})
    if not nums:
        return ""
    if len(nums) == 1:
        return f"frame.number == {nums[0]}"
    return in_set("frame.number", nums)


def in_set(field: str, values: Iterable[object]) -> str:
    """``field in {a, b}``: set membership, comma-separated as tshark 4 wants it."""
    return f"{field} in {{" + ", ".join(str(v) for v in values) + "}"


def all_of(terms: Iterable[str]) -> str:
    parts = [t for t in terms if t]
    if len(parts) == 1:
        return parts[0]
    return " && ".join(f"({t})" if (" || " in t) else t for t in parts)


def any_of(terms: Iterable[str]) -> str:
    parts = [t for t in terms if t]
    if len(parts) == 1:
        return parts[0]
    return " || ".join(f"({t})" if (" && " in t or " || " in t) else t for t in parts)


def arp_claims(address: str) -> str:
    """ARP frames whose sender protocol address is ``address``."""
    return f"arp.src.proto_ipv4 == {address}"


def tcp_port(port: int, field: str = "port") -> str:
    return f"tcp.{field} == {int(port)}"
