"""Importer of IPVS (LVS) tables: `ipvsadm -Ln` listings and `ipvsadm-save -n` rules.

Also accepts the rules written as commands (``ipvsadm -A -t VIP:80 -s wrr``), as director setup
scripts paste them (seed 004). Forwarding methods: Route/-g = DR, Masq/-m = NAT, Tunnel/-i = TUN,
FullNat = FULLNAT (patched kernels).
"""

from __future__ import annotations

import re
import shlex

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
    strip_comment,
)
from netdiag.facts.importers.ss import split_endpoint
from netdiag.facts.model import RealServer, Service

LISTING_METHODS = {
    "Route": "DR",
    "Masq": "NAT",
    "Tunnel": "TUN",
    "FullNat": "FULLNAT",
    "Local": "LOCAL",
}
SAVE_METHODS = {"-g": "DR", "--gatewaying": "DR", "-m": "NAT", "--masquerading": "NAT"}
SAVE_METHODS |= {"-i": "TUN", "--ipip": "TUN", "-b": "FULLNAT", "--fullnat": "FULLNAT"}
SERVICE_LINE = re.compile(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(.*)$")
REAL_LINE = re.compile(r"^->\s+(\S+)\s+(\w+)\s+(-?\d+)(\s+\d+\s+\d+)?\s*$")


def _service_key(proto: str, endpoint: str) -> tuple[str, str, int | None] | None:
    if proto == "fwm":
        return ("fwm", endpoint, None) if endpoint.isdigit() else None
    got = split_endpoint(endpoint)
    if got is None:
        return None
    return proto, got[0], got[1]


def _parse_listing(reader: Reader) -> None:
    frag = reader.fragment
    current: Service | None = None
    for index, raw in reader.numbered():
        line = strip_comment(raw).strip()
        if not line or line.startswith(
            ("IP Virtual Server", "Prot LocalAddress", "-> RemoteAddress")
        ):
            continue
        service = SERVICE_LINE.match(line)
        if service:
            proto, endpoint, sched, rest = service.groups()
            key = _service_key(proto.lower(), endpoint)
            if key is None:
                reader.problem(index, f"bad virtual service address {endpoint!r}")
                current = None
                continue
            words = rest.split()
            persistence = None
            if "persistent" in words:
                i = words.index("persistent")
                nxt = words[i + 1] if i + 1 < len(words) else ""
                persistence = int(nxt) if nxt.isdigit() else 300
            current = Service(
                vip=key[1],
                port=key[2],
                protocol=key[0],
                layer="L4",
                scheduler=sched,
                persistence=persistence,
                kind="ipvs",
                source=reader.src(index),
            )
            frag.host.services.append(current)
            continue
        real = REAL_LINE.match(line)
        if real:
            if current is None:
                reader.problem(index, "real server line before any virtual service")
                continue
            endpoint, method, weight, _ = real.groups()
            got = split_endpoint(endpoint)
            if got is None:
                reader.problem(index, f"bad real server address {endpoint!r}")
                continue
            current.real_servers.append(
                RealServer(
                    got[0],
                    got[1],
                    LISTING_METHODS.get(method, method.upper()),
                    int(weight),
                    reader.src(index),
                )
            )
            _set_preservation(current)
            continue
        reader.problem(index, "not an ipvsadm -Ln line")


def _set_preservation(service: Service) -> None:
    """DR, NAT and TUN keep the client address; FULLNAT replaces it (TOA aside)."""
    methods = {rs.method for rs in service.real_servers}
    if methods and methods <= {"DR", "NAT", "TUN", "LOCAL"}:
        service.keeps_client_address = True
    elif methods == {"FULLNAT"}:
        service.keeps_client_address = False


def _parse_save(reader: Reader) -> None:
    frag = reader.fragment
    services: dict[tuple[str, str, int | None], Service] = {}
    for known in frag.host.services:
        services[(known.protocol, known.vip, known.port)] = known
    for index, raw in reader.numbered():
        line = strip_comment(raw).strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            reader.problem(index, "unbalanced quotes")
            continue
        if words and words[0].rsplit("/", 1)[-1] == "ipvsadm":
            words = words[1:]
        if not words:
            continue
        if words[0] in ("-C", "--clear", "--set", "-L", "-Ln", "-ln", "-l", "-S", "-R", "-Z"):
            continue
        op = words[0]
        if op not in ("-A", "--add-service", "-a", "--add-server", "-E", "--edit-service"):
            reader.problem(index, f"unknown ipvsadm rule {op!r}")
            continue
        opts: dict[str, str] = {}
        method = ""
        i = 1
        while i < len(words):
            word = words[i]
            if word in SAVE_METHODS:
                method = SAVE_METHODS[word]
                i += 1
            elif word in ("-p", "--persistent"):
                nxt = words[i + 1] if i + 1 < len(words) else ""
                opts["-p"] = nxt if nxt.isdigit() else "300"
                i += 2 if nxt.isdigit() else 1
            elif word.startswith("-") and i + 1 < len(words):
                opts[word] = words[i + 1]
                i += 2
            else:
                i += 1
        key = None
        for flag, proto in (("-t", "tcp"), ("--tcp-service", "tcp"), ("-u", "udp"), ("-f", "fwm")):
            if flag in opts:
                key = _service_key(proto, opts[flag])
                break
        if key is None:
            reader.problem(index, "rule without a valid -t/-u/-f virtual service")
            continue
        if op in ("-A", "--add-service", "-E", "--edit-service"):
            svc = services.get(key)
            if svc is None:
                svc = Service(key[1], key[2], key[0], layer="L4", kind="ipvs")
                services[key] = svc
                frag.host.services.append(svc)
            svc.scheduler = opts.get("-s", svc.scheduler or "wlc")
            svc.persistence = int(opts["-p"]) if "-p" in opts else svc.persistence
            svc.source = reader.src(index)
            continue
        target = services.get(key)
        if target is None:
            reader.problem(index, "real server added to a virtual service not defined before")
            continue
        server = opts.get("-r", opts.get("--real-server", ""))
        got = split_endpoint(server) if ":" in server else ((server, key[2]) if server else None)
        if got is None:
            reader.problem(index, f"bad real server {server!r}")
            continue
        weight = opts.get("-w", opts.get("--weight", "1"))
        target.real_servers.append(
            RealServer(
                got[0],
                got[1],
                method or "DR",
                int(weight) if weight.lstrip("-").isdigit() else None,
                reader.src(index),
            )
        )
        _set_preservation(target)


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    body = [ln.strip() for ln in reader.lines if ln.strip()]
    save_style = sum(1 for ln in body if re.match(r"^(\S*ipvsadm\s+)?-[AaE]\s", ln))
    listing = sum(1 for ln in body if SERVICE_LINE.match(ln) or ln.startswith("->"))
    if save_style > listing:
        _parse_save(reader)
    else:
        _parse_listing(reader)
    return reader.fragment


def looks_like_ipvsadm(text: str) -> bool:
    lines = first_lines(text, 3)
    return bool(lines) and (
        lines[0].startswith("IP Virtual Server version")
        or all(re.match(r"^(\S*ipvsadm\s+)?(-[AaE]\s+-[tuf]\s|-C\b|--set\b)", ln) for ln in lines)
    )


IMPORTER = Importer(
    name="ipvsadm",
    parse=parse,
    command=command_regex(r"^(\S*/)?ipvsadm(-save)?(\s|$)", r"ipvsadm\.rules", r"ipvsadm$"),
    sniff=looks_like_ipvsadm,
    description="ipvsadm -Ln / ipvsadm-save -n / ipvsadm -A/-a commands",
)
