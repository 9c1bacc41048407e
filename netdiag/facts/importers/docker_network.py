"""Importer of `docker network inspect` JSON: bridge networks, their subnets and gateways."""

from __future__ import annotations

import json

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    compact_json,
    json_key_lines,
)
from netdiag.facts.model import ContainerNetwork, parse_network


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reader.problem(0, f"not valid JSON: {exc}")
        return frag
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        reader.problem(0, "expected a JSON list of networks")
        return frag
    name_lines = json_key_lines(reader.lines, "Name")
    subnet_lines = json_key_lines(reader.lines, "Subnet")
    # each network's "Name" is the first key of its object; later "Name"s belong to containers
    network_lines = _network_name_lines(reader.lines, name_lines, len(data))
    subnet_index = 0
    for n, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            reader.problem(0, f"network #{n + 1} without a Name skipped")
            continue
        options = item.get("Options") if isinstance(item.get("Options"), dict) else {}
        bridge = str(options.get("com.docker.network.bridge.name", "")) if options else ""
        driver = str(item.get("Driver", ""))
        if not bridge and driver == "bridge" and isinstance(item.get("Id"), str):
            bridge = "br-" + item["Id"][:12]
        ipam = item.get("IPAM") if isinstance(item.get("IPAM"), dict) else {}
        configs = ipam.get("Config") if ipam else None
        line = network_lines[n] if n < len(network_lines) else 0
        shown = {k: item.get(k) for k in ("Name", "Id", "Driver") if k in item}
        if not isinstance(configs, list) or not configs:
            frag.host.container_networks.append(
                ContainerNetwork(
                    item["Name"], driver, bridge, source=reader.src(line, compact_json(shown))
                )
            )
            continue
        for config in configs:
            sline = subnet_lines[subnet_index] if subnet_index < len(subnet_lines) else line
            subnet_index += 1
            if not isinstance(config, dict):
                reader.problem(line, "IPAM Config entry is not an object")
                continue
            subnet = str(config.get("Subnet", ""))
            gateway = str(config.get("Gateway", ""))
            if subnet and parse_network(subnet) is None:
                reader.problem(sline, f"bad subnet {subnet!r}")
                continue
            frag.host.container_networks.append(
                ContainerNetwork(
                    item["Name"],
                    driver,
                    bridge,
                    subnet,
                    gateway,
                    source=reader.src(sline, compact_json(dict(shown, **config))),
                )
            )
    return frag


def _network_name_lines(lines: list[str], name_lines: list[int], count: int) -> list[int]:
    """The line of each network's own "Name" (the first "Name" after each top-level '{')."""
    if len(lines) <= 1:
        return [0] * count
    starts = [i for i, ln in enumerate(lines) if ln.startswith("    {") or ln.startswith("{")]
    out = []
    for start in starts:
        later = [i for i in name_lines if i >= start]
        out.append(later[0] if later else start)
    return out or [0] * count


def looks_like_docker_network(text: str) -> bool:
    head = text.lstrip()[:4000]
    return head.startswith("[") and '"IPAM"' in text[:200000] and '"Driver"' in head


IMPORTER = Importer(
    name="docker_network",
    parse=parse,
    command=command_regex(r"^(\S*/)?docker\s+network\s+inspect"),
    sniff=looks_like_docker_network,
    description="docker network inspect (JSON)",
)
