"""Importer of `route -n` (net-tools): the main routing table in its old layout."""

from __future__ import annotations

import ipaddress

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
    strip_comment,
)
from netdiag.facts.model import Route


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    for index, raw in reader.numbered():
        line = strip_comment(raw)
        if not line.strip() or line.startswith(("Kernel IP routing", "Destination")):
            continue
        words = line.split()
        if len(words) < 8:
            reader.problem(index, "expected 8 columns: Destination Gateway Genmask Flags ...")
            continue
        dest, gateway, mask, flags, metric = words[0], words[1], words[2], words[3], words[4]
        iface = words[7]
        try:
            net = ipaddress.ip_network(f"{dest}/{mask}")
        except ValueError:
            reader.problem(index, f"bad destination {dest}/{mask}")
            continue
        if gateway not in ("0.0.0.0", "-", "*"):
            try:
                ipaddress.ip_address(gateway)
            except ValueError:
                reader.problem(index, f"bad gateway {gateway!r}")
                continue
        if not metric.isdigit():
            reader.problem(index, f"bad metric {metric!r}")
            continue
        route = Route(
            destination="default" if net.prefixlen == 0 else str(net),
            type="reject" if "!" in flags else "unicast",
            gateway=gateway if "G" in flags else "",
            device=iface if iface not in ("*", "-") else "",
            metric=int(metric),
            source=reader.src(index),
        )
        if route.destination != "default" and net.prefixlen == 32:
            route.destination = str(net.network_address)
        frag.host.routes.append(route)
    return frag


def looks_like_route_n(text: str) -> bool:
    lines = first_lines(text, 2)
    return any(ln.startswith("Destination") and "Genmask" in ln for ln in lines)


IMPORTER = Importer(
    name="route_n",
    parse=parse,
    command=command_regex(r"^(\S*/)?(route|netstat\s+-\w*r)(\s|$)"),
    sniff=looks_like_route_n,
    description="route -n / netstat -rn (IPv4 routing table, net-tools layout)",
)
