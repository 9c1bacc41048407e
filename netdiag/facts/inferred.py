"""Facts inferred from traffic: MAC<->IP bindings, gateways, well-known proxy address ranges.

Input is the packet table as a DataFrame (netdiag/capture/schema.py: address columns are pandas
Categoricals of address text, NaN when absent). Everything is computed with group-bys over the
distinct (address, MAC) pairs, never per packet. Each fact carries an ``Inferred`` provenance with
the capture name and the first frames that show it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pandas as pd

from netdiag.facts.model import FactSet, Gateway, Inferred, MacBinding, ProxyRange

#: a MAC sending IP packets from at least this many source addresses forwards for others
GATEWAY_MIN_IPS = 3
#: frames kept as evidence per inferred fact
EVIDENCE_FRAMES = 5
#: ranges whose presence says "a proxy / health checker of a cloud load balancer talks here"
PROXY_RANGES = (
    (
        "100.64.0.0/10",
        "shared address space (RFC 6598): cloud load-balancer proxies, health checks",
    ),
    ("35.191.0.0/16", "Google Cloud load-balancer proxies and health checks"),
    ("130.211.0.0/22", "Google Cloud load-balancer proxies and health checks"),
)
UNSPECIFIED = {"0.0.0.0", "::"}


@dataclass
class InferredFacts:
    """What one capture says about addresses, before it is added to a FactSet."""

    mac_bindings: list[MacBinding] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    proxy_ranges: list[ProxyRange] = field(default_factory=list)


def _first_frames(frame: pd.Series) -> tuple[int, ...]:
    return tuple(int(f) for f in frame.head(EVIDENCE_FRAMES))


def _count(value: object) -> int:
    return int(value)  # type: ignore[call-overload]


def _frames(value: object) -> tuple[int, ...]:
    return tuple(int(f) for f in value)  # type: ignore[attr-defined]


def _pairs(df: pd.DataFrame, ip_col: str, mac_col: str) -> pd.DataFrame:
    """Distinct (ip, mac) pairs with their frame count and first frames."""
    sub = df[[ip_col, mac_col, "frame"]].dropna()
    if sub.empty:
        return pd.DataFrame(columns=["ip", "mac", "n", "frames"])
    sub = sub[~sub[ip_col].astype(str).isin(UNSPECIFIED)]
    if sub.empty:
        return pd.DataFrame(columns=["ip", "mac", "n", "frames"])
    grouped = sub.sort_values("frame").groupby([ip_col, mac_col], observed=True)["frame"]
    out = grouped.agg(n="count", first="min", frames=_first_frames).reset_index()
    out = out.sort_values("first", kind="stable").reset_index(drop=True)  # in order of appearance
    return out.rename(columns={ip_col: "ip", mac_col: "mac"})


def infer(df: pd.DataFrame, capture: str) -> InferredFacts:
    """MAC<->IP bindings (ARP and IP), gateways and proxy ranges seen in one capture."""
    result = InferredFacts()
    needed = {"frame", "eth_src", "ip_src", "arp_op", "arp_sha", "arp_spa"}
    if df.empty or not needed <= set(df.columns):
        return result
    arp = df[df["arp_op"].isin([1, 2])]
    arp_pairs = _pairs(arp, "arp_spa", "arp_sha")
    for row in arp_pairs.itertuples(index=False):
        result.mac_bindings.append(
            MacBinding(
                str(row.ip),
                str(row.mac),
                "arp",
                _count(row.n),
                Inferred(capture, _frames(row.frames), "ARP sender"),
            )
        )
    ip_rows = df[df["ip_src"].notna() & df["eth_src"].notna()]
    ip_pairs = _pairs(ip_rows, "ip_src", "eth_src")
    if not ip_pairs.empty:
        # link-local sources do not count: every host has one next to its own address
        routable = ip_pairs[~ip_pairs["ip"].astype(str).str.lower().str.startswith("fe80:")]
        per_mac = routable.groupby("mac", observed=True)["ip"].nunique()
        forwarders = set(per_mac[per_mac >= GATEWAY_MIN_IPS].index.astype(str))
        for mac in sorted(forwarders):
            rows = routable[routable["mac"].astype(str) == mac]
            frames = tuple(sorted(f for fr in rows["frames"] for f in fr)[:EVIDENCE_FRAMES])
            own = sorted({b.ip for b in result.mac_bindings if b.mac == mac})
            result.gateways.append(
                Gateway(
                    mac,
                    int(rows["ip"].nunique()),
                    own,
                    Inferred(capture, frames, f"{rows['ip'].nunique()} IP sources behind one MAC"),
                )
            )
        for row in ip_pairs.itertuples(index=False):
            if str(row.mac) in forwarders:
                continue
            result.mac_bindings.append(
                MacBinding(
                    str(row.ip),
                    str(row.mac),
                    "ip",
                    _count(row.n),
                    Inferred(capture, _frames(row.frames), "IP source (or routed for it)"),
                )
            )
    result.proxy_ranges = _proxy_ranges(df, capture)
    return result


def _proxy_ranges(df: pd.DataFrame, capture: str) -> list[ProxyRange]:
    out: list[ProxyRange] = []
    sources = df[["ip_src", "frame"]].dropna()
    if sources.empty:
        return out
    first = sources.groupby("ip_src", observed=True)["frame"].min()
    addresses = {str(a): int(f) for a, f in first.items()}
    for cidr, meaning in PROXY_RANGES:
        net = ipaddress.ip_network(cidr)
        hits = []
        for text, frame in addresses.items():
            try:
                if ipaddress.ip_address(text) in net:
                    hits.append((frame, text))
            except ValueError:
                continue
        if hits:
            hits.sort()
            out.append(
                ProxyRange(
                    cidr,
                    meaning,
                    [t for _, t in hits],
                    Inferred(
                        capture, tuple(f for f, _ in hits[:EVIDENCE_FRAMES]), "source address"
                    ),
                )
            )
    return out


def add_inferred(facts: FactSet, df: pd.DataFrame, capture: str) -> InferredFacts:
    """Infer from one capture's packet table and add the results to ``facts``."""
    got = infer(df, capture)
    facts.mac_bindings.extend(got.mac_bindings)
    facts.gateways.extend(got.gateways)
    facts.proxy_ranges.extend(got.proxy_ranges)
    return got
