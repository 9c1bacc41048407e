"""Importer of `ip route` (also `show table all`, `ip -6 route`, multipath) and `ip -j route`."""

from __future__ import annotations

import ipaddress
import json
import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    compact_json,
    first_lines,
    is_ip,
    json_key_lines,
    strip_comment,
)
from netdiag.facts.model import Route

ROUTE_TYPES = {
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
    "anycast",
}
#: attributes followed by one value; the mapped ones become Route fields
VALUE_KEYS = {
    "via": "gateway",
    "dev": "device",
    "table": "table",
    "proto": "protocol",
    "scope": "scope",
    "src": "prefsrc",
    "metric": "metric",
    "preference": "metric",
    "pref": "",
    "expires": "",
    "mtu": "",
    "advmss": "",
    "hoplimit": "",
    "realm": "",
    "realms": "",
    "weight": "",
    "from": "",
    "tos": "",
    "dsfield": "",
    "initcwnd": "",
    "initrwnd": "",
    "rto_min": "",
    "quickack": "",
    "features": "",
    "congctl": "",
    "nhid": "",
    "error": "",
    "cache": "",
    "rtt": "",
    "rttvar": "",
    "window": "",
    "ssthresh": "",
    "cwnd": "",
    "age": "",
    "users": "",
    "used": "",
}
FLAG_WORDS = {"onlink", "linkdown", "dead", "pervasive", "notify", "offload", "trap", "rt_offload"}


def _family(dest: str, gateway: str, prefsrc: str) -> int:
    for text in (dest, gateway, prefsrc):
        if ":" in text:
            return 6
        if text and text != "default" and re.match(r"^\d", text):
            return 4
    return 4


def _valid_dest(dest: str) -> bool:
    if dest == "default":
        return True
    try:
        ipaddress.ip_network(dest, strict=False)
    except ValueError:
        return False
    return True


def parse_words(words: list[str]) -> tuple[Route | None, str, list[str]]:
    """One route's words -> (Route, error, nexthop gateways/devices of 'nexthop' words)."""
    if not words:
        return None, "empty route", []
    i = 0
    rtype = "unicast"
    if words[0] in ROUTE_TYPES:
        rtype = words[0]
        i = 1
    if i >= len(words):
        return None, "route without destination", []
    dest = words[i]
    if not _valid_dest(dest):
        return None, f"bad destination {dest!r}", []
    fields: dict[str, str] = {}
    i += 1
    while i < len(words):
        word = words[i]
        if word in VALUE_KEYS:
            if i + 1 >= len(words):
                return None, f"{word} without a value", []
            target = VALUE_KEYS[word]
            if target:
                if word == "via" and words[i + 1] in ("inet", "inet6") and i + 2 < len(words):
                    i += 1  # 'via inet6 fe80::1'
                fields.setdefault(target, words[i + 1])
            i += 2
            continue
        if word in FLAG_WORDS or word == "nexthop":
            i += 1
            continue
        i += 1  # unknown attribute of a newer iproute2: ignored
    metric = fields.get("metric", "")
    if metric and not metric.isdigit():
        return None, f"bad metric {metric!r}", []
    if fields.get("gateway"):
        try:
            ipaddress.ip_address(fields["gateway"])
        except ValueError:
            return None, f"bad gateway {fields['gateway']!r}", []
    family = _family(dest, fields.get("gateway", ""), fields.get("prefsrc", ""))
    route = Route(
        destination=_canonical_dest(dest),
        table=fields.get("table", "main"),
        type=rtype,
        gateway=fields.get("gateway", ""),
        device=fields.get("device", ""),
        prefsrc=fields.get("prefsrc", ""),
        metric=int(metric) if metric else None,
        protocol=fields.get("protocol", ""),
        scope=fields.get("scope", ""),
        family=family,
    )
    return route, "", []


def _canonical_dest(dest: str) -> str:
    if dest == "default":
        return dest
    net = ipaddress.ip_network(dest, strict=False)
    full = net.max_prefixlen == net.prefixlen and "/" not in dest
    return str(net.network_address) if full else str(net)


def parse_plain(reader: Reader) -> None:
    frag = reader.fragment
    last: Route | None = None
    for index, raw in reader.numbered():
        line = strip_comment(raw)
        if not line.strip():
            continue
        words = line.split()
        if words[0] == "nexthop" and last is not None:
            # a multipath route: one Route per next hop, sharing the destination
            hop, err, _ = parse_words([last.destination] + words[1:])
            if hop is None:
                reader.problem(index, err)
                continue
            if not last.gateway and not last.device and last in frag.host.routes:
                frag.host.routes.remove(last)
            hop.table, hop.type, hop.metric = last.table, last.type, last.metric
            hop.protocol, hop.family = last.protocol, last.family
            hop.source = reader.src(index)
            frag.host.routes.append(hop)
            continue
        route, err, _ = parse_words(words)
        if route is None:
            reader.problem(index, err)
            last = None
            continue
        route.source = reader.src(index)
        frag.host.routes.append(route)
        last = route


def parse_json(reader: Reader, text: str) -> None:
    frag = reader.fragment
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reader.problem(0, f"not valid JSON: {exc}")
        return
    if not isinstance(data, list):
        reader.problem(0, "expected a JSON list of routes")
        return
    item_lines = json_key_lines(reader.lines, "dst")
    for n, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("dst"), str):
            reader.problem(0, f"JSON route #{n + 1} without dst skipped")
            continue
        words = [str(item.get("type", "unicast")), item["dst"]]
        for key, word in (
            ("gateway", "via"),
            ("dev", "dev"),
            ("table", "table"),
            ("protocol", "proto"),
            ("scope", "scope"),
            ("prefsrc", "src"),
            ("metric", "metric"),
        ):
            if key in item and item[key] not in (None, ""):
                words += [word, str(item[key])]
        route, err, _ = parse_words(words)
        if route is None:
            reader.problem(0, f"JSON route #{n + 1}: {err}")
            continue
        route.source = reader.src(item_lines[n] if n < len(item_lines) else 0, compact_json(item))
        frag.host.routes.append(route)


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    if text.lstrip().startswith("["):
        parse_json(reader, text)
    else:
        parse_plain(reader)
    return reader.fragment


_ROUTE_LINE = re.compile(
    r"^((unicast|local|broadcast|multicast|blackhole|unreachable|prohibit|throw|anycast)\s+)?"
    r"(default|[0-9a-fA-F:.]+(/\d+)?)\s+(via|dev|proto|table|scope|src|metric)\b"
)


def looks_like_route(text: str) -> bool:
    lines = first_lines(text, 3)
    if not lines:
        return False
    if lines[0].startswith(('[{"dst"', '[{"type"', '[ {"dst"')):
        return True
    return all(_route_like(ln) for ln in lines)


def _route_like(line: str) -> bool:
    if line.split()[0] in ("blackhole", "unreachable", "prohibit", "nexthop"):
        return True
    match = _ROUTE_LINE.match(line)
    return match is not None and _valid_dest(match.group(3))  # a MAC is not a destination


IMPORTER = Importer(
    name="ip_route",
    parse=parse,
    command=is_ip("route"),
    sniff=looks_like_route,
    description="ip route / ip route show table all / ip -6 route / ip -j route",
)
