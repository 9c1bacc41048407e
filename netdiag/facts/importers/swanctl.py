"""Importer of strongSwan `swanctl.conf`: connections and their children's local_ts/remote_ts.

Each child SA becomes one IpsecConn named ``connection/child``; the gateways are the
connection's local_addrs/remote_addrs. Traffic selectors default to the gateway's own address
(``dynamic``), as swanctl does.
"""

from __future__ import annotations

import re

from netdiag.facts.importers.base import Fragment, Importer, Reader, command_regex
from netdiag.facts.importers.strongswan_ipsec_conf import subnets
from netdiag.facts.model import IpsecConn, Source

TOKEN = re.compile(r"\s*(?:([A-Za-z0-9_.\-%]+)\s*\{|\}|([A-Za-z0-9_.\-]+)\s*=\s*(.*))\s*$")


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    path: list[str] = []
    # connection name -> its settings; (connection, child) -> settings
    conn_settings: dict[str, dict[str, tuple[str, Source]]] = {}
    conn_source: dict[str, Source] = {}
    children: dict[tuple[str, str], dict[str, tuple[str, Source]]] = {}
    child_source: dict[tuple[str, str], Source] = {}
    for index, raw in reader.numbered():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith("include "):
            continue
        match = TOKEN.match(line)
        if match is None:
            reader.problem(index, "expected 'name {', '}' or 'key = value'")
            continue
        block, key, value = match.groups()
        if block:
            path.append(block)
            if len(path) == 2 and path[0] == "connections":
                conn_settings.setdefault(block, {})
                conn_source[block] = reader.src(index)
            if len(path) == 4 and path[0] == "connections" and path[2] == "children":
                children.setdefault((path[1], block), {})
                child_source[(path[1], block)] = reader.src(index)
            continue
        if line == "}":
            if not path:
                reader.problem(index, "unbalanced '}'")
                continue
            path.pop()
            continue
        if key is None:
            continue
        if len(path) == 2 and path[0] == "connections":
            conn_settings[path[1]][key] = (value.strip().strip('"'), reader.src(index))
        elif len(path) == 4 and path[0] == "connections" and path[2] == "children":
            children[(path[1], path[3])][key] = (value.strip().strip('"'), reader.src(index))
    if path:
        reader.problem(len(reader.lines) - 1, f"{len(path)} unclosed '{{' at the end")
    for (conn_name, child_name), settings in children.items():
        parent = conn_settings.get(conn_name, {})
        conn = IpsecConn(
            name=f"{conn_name}/{child_name}",
            local_gateway=parent.get("local_addrs", ("", None))[0],
            remote_gateway=parent.get("remote_addrs", ("", None))[0],
            kind="swanctl",
            auto=settings.get("start_action", ("", None))[0],
            source=child_source[(conn_name, child_name)],
        )
        for side in ("local", "remote"):
            if f"{side}_ts" in settings:
                value, src = settings[f"{side}_ts"]
                good, bad = subnets(value)
                for b in bad:
                    reader.problem(src.line - reader.first_line, f"{side}_ts: bad selector {b!r}")
                setattr(conn, f"{side}_subnets", [g for g in good if g != "dynamic"])
                setattr(conn, f"{side}_subnets_source", src)
            elif f"{side}_addrs" in parent:
                value, src = parent[f"{side}_addrs"]
                setattr(conn, f"{side}_subnets", subnets(value)[0])
                setattr(conn, f"{side}_subnets_source", src)
        frag.host.ipsec.append(conn)
    return frag


def looks_like_swanctl(text: str) -> bool:
    return bool(re.search(r"^\s*connections\s*\{", text[:20000], re.M))


IMPORTER = Importer(
    name="swanctl",
    parse=parse,
    command=command_regex(r"swanctl"),
    sniff=looks_like_swanctl,
    description="strongSwan swanctl.conf (connections, children local_ts/remote_ts)",
)
