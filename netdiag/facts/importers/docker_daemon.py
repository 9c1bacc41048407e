"""Importer of docker's daemon.json: `bip` (docker0's address) and `default-address-pools`."""

from __future__ import annotations

import ipaddress
import json

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    json_key_lines,
)
from netdiag.facts.model import ContainerNetwork


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reader.problem(0, f"not valid JSON: {exc}")
        return frag
    if not isinstance(data, dict):
        reader.problem(0, "daemon.json must be a JSON object")
        return frag
    bridge = str(data.get("bridge", "") or "docker0")
    if "bip" in data:
        line = (json_key_lines(reader.lines, "bip") or [0])[0]
        try:
            iface = ipaddress.ip_interface(str(data["bip"]))
        except ValueError:
            reader.problem(line, f"bad bip {data['bip']!r}")
        else:
            frag.host.container_networks.append(
                ContainerNetwork(
                    "bridge",
                    "bridge",
                    bridge,
                    str(iface.network),
                    str(iface.ip),
                    kind="bip",
                    source=reader.src(line),
                )
            )
    pools = data.get("default-address-pools", [])
    base_lines = json_key_lines(reader.lines, "base")
    if not isinstance(pools, list):
        reader.problem(0, "default-address-pools must be a list")
        pools = []
    for n, pool in enumerate(pools):
        line = base_lines[n] if n < len(base_lines) else 0
        if not isinstance(pool, dict) or "base" not in pool:
            reader.problem(line, f"address pool #{n + 1} without base")
            continue
        try:
            net = ipaddress.ip_network(str(pool["base"]), strict=False)
        except ValueError:
            reader.problem(line, f"bad pool base {pool['base']!r}")
            continue
        if str(net) != str(pool["base"]):
            reader.problem(line, f"pool base {pool['base']} has host bits set: read as {net}")
        size = pool.get("size")
        frag.host.container_networks.append(
            ContainerNetwork(
                f"pool{n + 1}",
                "bridge",
                "",
                str(net),
                kind="pool",
                pool_size=size if isinstance(size, int) else None,
                source=reader.src(line),
            )
        )
    return frag


def looks_like_daemon_json(text: str) -> bool:
    head = text.lstrip()[:4000]
    return head.startswith("{") and any(
        key in head for key in ('"bip"', '"default-address-pools"', '"storage-driver"')
    )


IMPORTER = Importer(
    name="docker_daemon",
    parse=parse,
    command=command_regex(r"daemon\.json"),
    sniff=looks_like_daemon_json,
    description="docker daemon.json (bip, default-address-pools)",
)
