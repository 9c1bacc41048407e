"""Importer of the netdiag topology YAML (docs/facts-yaml.md), validated by topology.schema.json.

The YAML holds what no command prints (which listener is L4 or L7 and keeps the client address, a
cloud VPN connection's subnets, which capture was taken where) and everything `netdiag facts
--format yaml` exports. Schema errors and bad values are reported with the file:line of the
offending node and that node is skipped.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from netdiag.facts.importers.base import Fragment, Importer, Reader, command_regex
from netdiag.facts.model import (
    Address,
    CaptureBinding,
    ContainerNetwork,
    FdbEntry,
    Host,
    Interface,
    IpsecConn,
    NatRule,
    Neighbour,
    PolicyRule,
    RealServer,
    Route,
    Service,
    Socket,
    Sysctl,
    parse_network,
)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "topology.schema.json"

#: YAML key of a host's list -> (model class, Host attribute)
HOST_LISTS: dict[str, tuple[type, str]] = {
    "routes": (Route, "routes"),
    "rules": (PolicyRule, "rules"),
    "neighbours": (Neighbour, "neighbours"),
    "fdb": (FdbEntry, "fdb"),
    "nat": (NatRule, "nat_rules"),
    "sockets": (Socket, "sockets"),
    "services": (Service, "services"),
    "ipsec": (IpsecConn, "ipsec"),
    "container_networks": (ContainerNetwork, "container_networks"),
}
#: a topology larger than this (aliases expanded) is refused: a "billion laughs" guard
MAX_NODES = 200_000
#: YAML keys that differ from the model's field names
RENAMED = {"from": "from_"}

Path_ = tuple[str, ...]


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """The YAML document and the 1-based line of every node, keyed by its path of str keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}

    def walk(n: yaml.Node, path: Path_, line: int) -> None:
        # a mapping entry is cited at its key's line, a list item at its own first line
        lines[path] = line
        if len(lines) > MAX_NODES:
            raise yaml.YAMLError(f"more than {MAX_NODES} entries once aliases are expanded")
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                walk(value, path + (str(key.value),), key.start_mark.line + 1)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (str(i),), item.start_mark.line + 1)

    walk(node, (), node.start_mark.line + 1)
    return data, lines


def line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of ``path`` or of its nearest ancestor."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    try:
        data, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        index = mark.line if mark is not None else 0
        reader.problem(index, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return frag
    except RecursionError:
        reader.problem(0, "not valid YAML: nested too deeply")
        return frag
    if data is None:
        return frag
    bad_paths = _validate(reader, data, lines)
    if not isinstance(data, dict):
        return frag

    def src(path: Path_) -> Any:
        return reader.src(line_of(lines, path) - 1)

    hosts: dict[Any, Any] = data["hosts"] if isinstance(data.get("hosts"), dict) else {}
    for host_name, body in hosts.items():
        host = Host(str(host_name))
        frag.other_hosts.append(host)
        hpath: Path_ = ("hosts", str(host_name))
        if hpath in bad_paths or not isinstance(body, dict):
            continue
        for i, item in enumerate(body.get("interfaces") or []):
            path = hpath + ("interfaces", str(i))
            if _is_bad(path, bad_paths):
                continue
            iface = _interface(item, path, src, reader, lines, bad_paths)
            if iface is not None:
                host.interfaces[iface.name] = iface
        for key, (cls, attr) in HOST_LISTS.items():
            for i, item in enumerate(body.get(key) or []):
                path = hpath + (key, str(i))
                if _is_bad(path, bad_paths):
                    continue
                fact, err = _build(cls, item, src(path))
                if fact is None:
                    reader.problem(line_of(lines, path) - 1, f"{key}[{i}]: {err}")
                    continue
                if isinstance(fact, Service):
                    fact.real_servers = [
                        rs
                        for j, rs in enumerate(fact.real_servers)
                        if not _is_bad(path + ("real_servers", str(j)), bad_paths)
                    ]
                    for j, rs in enumerate(fact.real_servers):
                        rs.source = src(path + ("real_servers", str(j)))
                getattr(host, attr).append(fact)
        for key, value in (body.get("sysctls") or {}).items():
            path = hpath + ("sysctls", str(key))
            if _is_bad(path, bad_paths):
                continue
            host.sysctls[str(key)] = Sysctl(str(key), str(value), src(path))
    for i, item in enumerate(data.get("captures") or []):
        path = ("captures", str(i))
        if _is_bad(path, bad_paths):
            continue
        fact, err = _build(CaptureBinding, item, src(path))
        if isinstance(fact, CaptureBinding):
            frag.captures.append(fact)
        else:
            reader.problem(line_of(lines, path) - 1, f"captures[{i}]: {err}")
    return frag


def _is_bad(path: Path_, bad_paths: set[Path_]) -> bool:
    return any(path[: len(p)] == p for p in bad_paths)


def _validate(reader: Reader, data: Any, lines: dict[Path_, int]) -> set[Path_]:
    """Schema problems as file:line problems; returns the paths of the facts to skip."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is a declared dependency
        reader.problem(0, "jsonschema is not installed: the topology was not validated")
        return set()
    validator = jsonschema.Draft202012Validator(schema())
    bad: set[Path_] = set()
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    except (TypeError, RecursionError) as exc:  # e.g. a mapping whose keys are not text
        reader.problem(0, f"topology cannot be validated: {exc}")
        return {()}
    for error in errors:
        path = tuple(str(p) for p in error.absolute_path)
        where = ".".join(path) or "(top level)"
        reader.problem(line_of(lines, path) - 1, f"{where}: {_short(error)}")
        # skip the whole fact (a list item or a host/sysctl entry) holding the error
        fact = _fact_path(path)
        if not fact:
            return {()}  # the document itself is unusable
        bad.add(fact)
    return bad


def _short(error: Any) -> str:
    message = str(error.message)
    return message if len(message) < 160 else message[:157] + "..."


def _fact_path(path: Path_) -> Path_:
    """('hosts','h','routes','2','metric') -> ('hosts','h','routes','2')."""
    if not path:
        return ()
    if path[0] == "captures":
        return path[:2]
    if path[0] == "hosts" and len(path) >= 4:
        return path[:4]
    if path[0] == "hosts":
        return path[:2]
    return ()


def _build(cls: type, item: Any, source: Any) -> tuple[Any, str]:
    """A model object from one YAML mapping; (None, reason) when a value is wrong."""
    if not isinstance(item, dict):
        return None, "expected a mapping"
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        name = RENAMED.get(str(key), str(key))
        if name == "source" or name not in names:
            continue
        if name == "real_servers":
            servers = []
            for rs in value or []:
                built, err = _build(RealServer, rs, source)
                if built is None:
                    return None, f"real server: {err}"
                servers.append(built)
            value = servers
        elif name in ("table",) and isinstance(value, int):
            value = str(value)
        elif name == "dports":
            value = [str(v) for v in value]
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        return None, str(exc)
    err = _check_values(obj)
    if err:
        return None, err
    obj.source = source
    return obj, ""


def _check_values(obj: Any) -> str:
    """Address-valued fields must hold addresses (the schema only checks they are strings)."""
    if isinstance(obj, Route):
        if obj.destination != "default" and parse_network(obj.destination) is None:
            return f"bad destination {obj.destination!r}"
        if obj.destination != "default":
            net = ipaddress.ip_network(obj.destination, strict=False)
            obj.family = net.version
    for name in ("gateway", "address", "vip", "local_gateway", "remote_gateway"):
        value = getattr(obj, name, None)
        if not value or not isinstance(value, str) or value.startswith("%") or value == "*":
            continue
        if isinstance(obj, (IpsecConn,)) and not value[0].isdigit() and ":" not in value:
            continue  # a gateway given by DNS name
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"bad {name} {value!r}"
    for name in ("local_subnets", "remote_subnets"):
        for cidr in getattr(obj, name, None) or []:
            if parse_network(cidr.split("[", 1)[0]) is None:
                return f"bad {name} entry {cidr!r}"
    if isinstance(obj, ContainerNetwork) and obj.subnet and parse_network(obj.subnet) is None:
        return f"bad subnet {obj.subnet!r}"
    return ""


def _interface(
    item: Any,
    path: Path_,
    src: Any,
    reader: Reader,
    lines: dict[Path_, int],
    bad_paths: set[Path_],
) -> Interface | None:
    raw = dict(item)
    addresses = raw.pop("addresses", None) or []
    iface, err = _build(Interface, raw, src(path))
    if iface is None:
        reader.problem(line_of(lines, path) - 1, err)
        return None
    for j, entry in enumerate(addresses):
        apath = path + ("addresses", str(j))
        spec = entry if isinstance(entry, dict) else {"address": entry}
        try:
            parsed = ipaddress.ip_interface(str(spec["address"]))
        except ValueError:
            reader.problem(line_of(lines, apath) - 1, f"bad address {spec['address']!r}")
            continue
        iface.addresses.append(
            Address(
                str(parsed.ip),
                parsed.network.prefixlen,
                scope=str(spec.get("scope", "")),
                label=str(spec.get("label", "")),
                peer=str(spec.get("peer", "")),
                source=src(apath),
            )
        )
    return iface


def looks_like_topology(text: str) -> bool:
    head = text.lstrip()[:2000]
    return head.startswith(("version: 1", "---\nversion: 1", "# netdiag topology")) or (
        "\nhosts:" in "\n" + head and "version:" in head
    )


IMPORTER = Importer(
    name="topology_yaml",
    parse=parse,
    command=command_regex(r"\.ya?ml\b"),
    sniff=looks_like_topology,
    description="netdiag topology YAML (docs/facts-yaml.md)",
)
