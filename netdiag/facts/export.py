"""Writing a FactSet out: the topology YAML (reads back to equal facts), JSON, and a text tree.

YAML and JSON share one plain-data form (``to_data``): defaults are left out, field names are
the topology YAML's (docs/facts-yaml.md). The tree is for reading: one fact per line with the
file:line it came from.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import yaml

from netdiag.facts.model import (
    Address,
    FactSet,
    Host,
    Inferred,
    Interface,
    Provenance,
    Service,
    Source,
)

#: model field name -> YAML key, where they differ
YAML_NAMES = {"from_": "from"}
#: Host attribute -> YAML key of the host's lists (same order as the schema)
HOST_LISTS = (
    ("routes", "routes"),
    ("rules", "rules"),
    ("neighbours", "neighbours"),
    ("fdb", "fdb"),
    ("nat_rules", "nat"),
    ("sockets", "sockets"),
    ("services", "services"),
    ("ipsec", "ipsec"),
    ("container_networks", "container_networks"),
)
FORMATS = ("tree", "yaml", "json")


def provenance_text(prov: Provenance | None) -> str:
    return str(prov) if prov is not None else ""


def provenance_data(prov: Provenance | None) -> Any:
    if isinstance(prov, Source):
        return {"file": prov.file, "line": prov.line, "text": prov.text}
    if isinstance(prov, Inferred):
        return {"capture": prov.capture, "frames": list(prov.frames), "note": prov.note}
    return None


def _fact(obj: Any, sources: str) -> dict[str, Any]:
    """A dataclass fact as a dict without defaults, sources or nested lists handled elsewhere."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name.endswith("source") or f.name in ("addresses", "real_servers"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        if value == default and f.name not in _REQUIRED.get(type(obj).__name__, ()):
            continue
        out[YAML_NAMES.get(f.name, f.name)] = list(value) if isinstance(value, list) else value
    _add_source(out, getattr(obj, "source", None), sources)
    return out


#: fields always written even when equal to their default (required by the schema)
_REQUIRED = {
    "Route": ("destination",),
    "PolicyRule": ("priority",),
    "Socket": ("address", "port"),
    "Service": ("vip",),
    "RealServer": ("address",),
    "CaptureBinding": ("capture", "host"),
    "FdbEntry": ("mac", "device"),
}


def _add_source(out: dict[str, Any], prov: Provenance | None, sources: str) -> None:
    if prov is None or sources == "none":
        return
    out["source"] = provenance_data(prov) if sources == "structured" else provenance_text(prov)


def _address(addr: Address, sources: str) -> Any:
    text = f"{addr.address}/{addr.prefixlen}"
    extra = {
        k: v for k, v in (("scope", addr.scope), ("label", addr.label), ("peer", addr.peer)) if v
    }
    if not extra and sources == "none":
        return text
    out: dict[str, Any] = {"address": text, **extra}
    _add_source(out, addr.source, sources)
    return out


def _interface(iface: Interface, sources: str) -> dict[str, Any]:
    out = _fact(iface, sources)
    if iface.addresses:
        out["addresses"] = [_address(a, sources) for a in iface.addresses]
    return out


def _sysctl_value(value: str) -> Any:
    return int(value) if value.lstrip("-").isdigit() and str(int(value)) == value else value


def host_data(host: Host, sources: str = "text") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if host.interfaces:
        out["interfaces"] = [_interface(i, sources) for i in host.interfaces.values()]
    for attr, key in HOST_LISTS:
        items = getattr(host, attr)
        if not items:
            continue
        rendered = []
        for item in items:
            data = _fact(item, sources)
            if isinstance(item, Service) and item.real_servers:
                data["real_servers"] = [_fact(rs, sources) for rs in item.real_servers]
            rendered.append(data)
        out[key] = rendered
    if host.sysctls:
        out["sysctls"] = {k: _sysctl_value(s.value) for k, s in sorted(host.sysctls.items())}
    return out


def to_data(facts: FactSet, sources: str = "text", inferred: bool = False) -> dict[str, Any]:
    """The plain-data form; ``sources``: 'text' (file:line: text), 'structured' or 'none'."""
    out: dict[str, Any] = {"version": 1}
    out["hosts"] = {name: host_data(h, sources) for name, h in sorted(facts.hosts.items())}
    if facts.captures:
        out["captures"] = [_fact(c, sources) for c in facts.captures]
    if inferred:
        inf: dict[str, Any] = {}
        for key in ("mac_bindings", "gateways", "proxy_ranges"):
            items = getattr(facts, key)
            if items:
                inf[key] = [_fact(i, sources) for i in items]
        if inf:
            out["inferred"] = inf
    return out


def to_yaml(facts: FactSet, sources: bool = True) -> str:
    """The topology YAML of ``facts`` (readable back by the topology_yaml importer)."""
    data = to_data(facts, "text" if sources else "none")
    head = "# netdiag topology (docs/facts-yaml.md); `source:` says where each fact was read\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def to_json(facts: FactSet) -> str:
    """Every fact, inferred ones included, with structured provenance."""
    return json.dumps(to_data(facts, "structured", inferred=True), indent=2, ensure_ascii=False)


def to_tree(facts: FactSet) -> str:
    """What was understood, one fact per line, each with its file:line."""
    lines: list[str] = []

    def add(indent: int, text: str, prov: Provenance | None = None) -> None:
        ref = f"  <- {prov.ref}" if prov is not None else ""
        lines.append("  " * indent + text + ref)

    for name, host in sorted(facts.hosts.items()):
        add(0, f"host {name}")
        if host.interfaces:
            add(1, "interfaces")
            for iface in host.interfaces.values():
                bits = [
                    f"ifindex {iface.ifindex}" if iface.ifindex is not None else "",
                    iface.mac,
                    f"mtu {iface.mtu}" if iface.mtu else "",
                    iface.kind,
                    f"master {iface.master}" if iface.master else "",
                    iface.state,
                ]
                add(2, f"{iface.name} ({', '.join(b for b in bits if b)})", iface.source)
                for a in iface.addresses:
                    label = f" label {a.label}" if a.label and a.label != iface.name else ""
                    add(3, f"{a.address}/{a.prefixlen}{label}", a.source)
        if host.routes:
            add(1, "routes")
            for r in host.routes:
                text = " ".join(
                    x
                    for x in (
                        r.type if r.type != "unicast" else "",
                        r.destination,
                        f"via {r.gateway}" if r.gateway else "",
                        f"dev {r.device}" if r.device else "",
                        f"src {r.prefsrc}" if r.prefsrc else "",
                        f"metric {r.metric}" if r.metric is not None else "",
                        f"table {r.table}" if r.table != "main" else "",
                    )
                    if x
                )
                add(2, text, r.source)
        if host.rules:
            add(1, "policy rules")
            for rule in host.rules:
                sel = " ".join(
                    x
                    for x in (
                        "not" if rule.invert else "",
                        f"from {rule.from_}",
                        f"to {rule.to}" if rule.to != "all" else "",
                        f"iif {rule.iif}" if rule.iif else "",
                        f"oif {rule.oif}" if rule.oif else "",
                        f"fwmark {rule.fwmark}" if rule.fwmark else "",
                    )
                    if x
                )
                action = f"lookup {rule.table}" if rule.action == "lookup" else rule.action
                add(2, f"{rule.priority}: {sel} {action}", rule.source)
        if host.neighbours:
            add(1, "neighbours")
            for n in host.neighbours:
                add(2, f"{n.address} {n.mac or '(no mac)'} dev {n.device} {n.state}", n.source)
        if host.fdb:
            add(1, "bridge fdb")
            for e in host.fdb:
                add(2, f"{e.mac} behind {e.device} {e.master} {e.state}".rstrip(), e.source)
        if host.sysctls:
            add(1, f"sysctls ({len(host.sysctls)}; the ones rules use)")
            for key in sorted(host.sysctls):
                if _interesting_sysctl(key):
                    s = host.sysctls[key]
                    add(2, f"{key} = {s.value}", s.source)
        if host.nat_rules:
            add(1, "nat rules")
            for nat in host.nat_rules:
                match = " ".join(
                    x
                    for x in (
                        f"src {nat.src}" if nat.src else "",
                        f"dst {nat.dst}" if nat.dst else "",
                        f"in {nat.in_iface}" if nat.in_iface else "",
                        f"out {nat.out_iface}" if nat.out_iface else "",
                        nat.protocol,
                        f"dport {','.join(nat.dports)}" if nat.dports else "",
                    )
                    if x
                )
                to = f" to {nat.to}" if nat.to else ""
                add(2, f"{nat.chain}: {match or 'any'} -> {nat.action}{to}", nat.source)
        if host.sockets:
            add(1, "listening sockets")
            for sock in host.sockets:
                proc = f" ({sock.process})" if sock.process else ""
                add(2, f"{sock.protocol} {sock.address}:{sock.port}{proc}", sock.source)
        if host.services:
            add(1, "load-balancer services")
            for svc in host.services:
                keeps = {True: "keeps client address", False: "replaces client address"}.get(
                    svc.keeps_client_address,  # type: ignore[arg-type]
                    "",
                )
                bits = [svc.layer, svc.scheduler, keeps]
                if svc.persistence:
                    bits.append(f"persistent {svc.persistence}s")
                add(
                    2,
                    f"{svc.protocol} {svc.vip}:{svc.port} ({', '.join(b for b in bits if b)})",
                    svc.source,
                )
                for rs in svc.real_servers:
                    weight = f" weight {rs.weight}" if rs.weight is not None else ""
                    method = f" {rs.method}" if rs.method else ""
                    add(3, f"-> {rs.address}:{rs.port}{method}{weight}", rs.source)
        if host.ipsec:
            add(1, "ipsec connections")
            for c in host.ipsec:
                add(
                    2, f"{c.name}: {c.local_gateway or '?'} <-> {c.remote_gateway or '?'}", c.source
                )
                add(3, f"local  {', '.join(c.local_subnets) or '-'}", c.local_subnets_source)
                add(3, f"remote {', '.join(c.remote_subnets) or '-'}", c.remote_subnets_source)
        if host.container_networks:
            add(1, "container networks")
            for net in host.container_networks:
                bits = [net.bridge, net.subnet, f"gw {net.gateway}" if net.gateway else ""]
                if net.pool_size:
                    bits.append(f"/{net.pool_size} each")
                add(2, f"{net.name} [{net.kind}] {' '.join(b for b in bits if b)}", net.source)
    if facts.captures:
        add(0, "captures")
        for cap in facts.captures:
            add(1, f"{cap.capture} taken on {cap.host} {cap.interface}".rstrip(), cap.source)
    if facts.mac_bindings or facts.gateways or facts.proxy_ranges:
        add(0, "inferred from traffic")
        for b in facts.mac_bindings:
            add(1, f"{b.ip} is at {b.mac} ({b.via}, {b.frames} frames)", b.source)
        for g in facts.gateways:
            add(1, f"gateway {g.mac} carries {g.ips} IP sources", g.source)
        for p in facts.proxy_ranges:
            add(1, f"{p.cidr} ({p.meaning}): {', '.join(p.addresses[:5])}", p.source)
    return "\n".join(lines) + "\n"


def _interesting_sysctl(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in TREE_SYSCTLS


#: the sysctls the tree shows (all of them are in the YAML and JSON)
TREE_SYSCTLS = (
    "arp_ignore",
    "arp_announce",
    "rp_filter",
    "accept_local",
    "send_redirects",
    "forwarding",
    "ip_forward",
    "route_localnet",
    "proxy_arp",
    "arp_filter",
)


def render(facts: FactSet, fmt: str) -> str:
    if fmt == "yaml":
        return to_yaml(facts)
    if fmt == "json":
        return to_json(facts) + "\n"
    return to_tree(facts)
