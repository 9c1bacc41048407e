"""Importer of keepalived.conf `virtual_server` blocks (LVS services and their real servers)."""

from __future__ import annotations

import re

from netdiag.facts.importers.base import Fragment, Importer, Reader, command_regex
from netdiag.facts.model import RealServer, Service

KINDS = {"DR": "DR", "NAT": "NAT", "TUN": "TUN", "FNAT": "FULLNAT", "FULLNAT": "FULLNAT"}


def _tokens(reader: Reader) -> list[tuple[int, str]]:
    """(line index, token) with comments removed and braces as tokens."""
    out = []
    for index, raw in reader.numbered():
        line = re.split(r"[#!]", raw, maxsplit=1)[0]
        for tok in re.findall(r"[{}]|[^\s{}]+", line):
            out.append((index, tok))
    return out


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    toks = _tokens(reader)
    depth = 0
    stack: list[tuple[str, int]] = []  # (block keyword, depth)
    service: Service | None = None
    server: RealServer | None = None
    lb_kind: dict[int, str] = {}  # id(service) -> forwarding method of its lb_kind
    i = 0
    while i < len(toks):
        index, tok = toks[i]
        if tok == "{":
            depth += 1
            i += 1
            continue
        if tok == "}":
            if depth == 0:
                reader.problem(index, "unbalanced '}'")
                i += 1
                continue
            depth -= 1
            while stack and stack[-1][1] > depth:
                kind, _ = stack.pop()
                if kind == "real_server":
                    server = None
                elif kind == "virtual_server":
                    service = None
            i += 1
            continue
        # the words of this statement: up to the end of its line or an opening brace
        words = [tok]
        j = i + 1
        while j < len(toks) and toks[j][0] == index and toks[j][1] not in ("{", "}"):
            words.append(toks[j][1])
            j += 1
        opens = j < len(toks) and toks[j][1] == "{"
        if tok == "virtual_server" and opens:
            service = _service(reader, index, words)
            if service is not None:
                frag.host.services.append(service)
            stack.append(("virtual_server", depth + 1))
        elif tok == "real_server" and opens:
            if service is not None:
                method = lb_kind.get(id(service), "NAT")  # keepalived's default lb_kind
                server = _server(reader, index, words, service, method)
                if server is not None:
                    service.real_servers.append(server)
            stack.append(("real_server", depth + 1))
        elif opens:
            stack.append((tok, depth + 1))
        elif service is not None and server is None and len(words) >= 2:
            _service_option(service, words, lb_kind)
        elif (
            server is not None
            and words[0] == "weight"
            and len(words) >= 2
            and words[1].lstrip("-").isdigit()
        ):
            server.weight = int(words[1])
        i = j
    if depth != 0:
        reader.problem(len(reader.lines) - 1, f"{depth} unclosed '{{' at the end")
    for svc in frag.host.services:
        methods = {rs.method for rs in svc.real_servers}
        if methods and "FULLNAT" not in methods:
            svc.keeps_client_address = True
        elif methods == {"FULLNAT"}:
            svc.keeps_client_address = False
    return frag


def _service(reader: Reader, index: int, words: list[str]) -> Service | None:
    if len(words) >= 3 and words[1] == "fwmark":
        return Service(
            words[2], None, "fwm", layer="L4", kind="keepalived", source=reader.src(index)
        )
    if len(words) >= 3 and words[1] == "group":
        return Service(
            words[2], None, "group", layer="L4", kind="keepalived", source=reader.src(index)
        )
    if len(words) < 3 or not words[2].isdigit():
        reader.problem(index, "virtual_server needs an address and a port")
        return None
    return Service(
        words[1], int(words[2]), "tcp", layer="L4", kind="keepalived", source=reader.src(index)
    )


def _server(
    reader: Reader, index: int, words: list[str], svc: Service, method: str
) -> RealServer | None:
    if len(words) < 2:
        reader.problem(index, "real_server needs an address")
        return None
    port = int(words[2]) if len(words) >= 3 and words[2].isdigit() else svc.port
    return RealServer(words[1], port, method, 1, reader.src(index))


def _service_option(service: Service, words: list[str], lb_kind: dict[int, str]) -> None:
    key, value = words[0], words[1]
    if key == "lb_algo":
        service.scheduler = value
    elif key in ("lb_kind", "lvs_method"):
        method = lb_kind[id(service)] = KINDS.get(value.upper(), value.upper())
        for rs in service.real_servers:
            rs.method = method
    elif key == "persistence_timeout" and value.isdigit():
        service.persistence = int(value)
    elif key == "protocol":
        service.protocol = value.lower()


def looks_like_keepalived(text: str) -> bool:
    head = text[:20000]
    return bool(re.search(r"^\s*(virtual_server|vrrp_instance|global_defs)\b", head, re.M))


IMPORTER = Importer(
    name="keepalived",
    parse=parse,
    command=command_regex(r"keepalived.*\.conf", r"keepalived/"),
    sniff=looks_like_keepalived,
    description="keepalived.conf virtual_server / real_server blocks",
)
