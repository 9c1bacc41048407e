"""Importer of listening sockets: `ss -ltn` (with or without -u/-p and the Netid column) and
`netstat -ltn`."""

from __future__ import annotations

import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
    strip_comment,
)
from netdiag.facts.model import Socket

ENDPOINT = re.compile(r"^(\[?[^\]\s]*?\]?)(?:%\S+)?:(\d+|\*)$")
PROCESS = re.compile(r'users:\(\("([^"]+)"')


def split_endpoint(text: str) -> tuple[str, int] | None:
    """'0.0.0.0:80' / '[::]:22' / '*:22' / '10.0.0.3%eth0:53' -> (address, port)."""
    match = ENDPOINT.match(text)
    if not match or match.group(2) == "*":
        return None
    address = match.group(1).strip("[]") or "*"
    if "%" in address:
        address = address.split("%", 1)[0]
    return address, int(match.group(2))


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    has_netid = False
    for index, raw in reader.numbered():
        line = strip_comment(raw)
        if not line.strip():
            continue
        words = line.split()
        if words[0] in ("State", "Netid", "Proto", "Active"):
            has_netid = words[0] == "Netid"
            continue
        protocol = "tcp"
        if words[0] in ("tcp", "tcp6", "udp", "udp6", "sctp", "raw", "u_str"):
            protocol = words[0].rstrip("6")
            if has_netid:
                words = words[1:]
            else:  # netstat: Proto Recv-Q Send-Q Local Foreign State
                if len(words) < 4:
                    reader.problem(index, "short netstat line")
                    continue
                endpoint = split_endpoint(words[3])
                if endpoint is None:
                    reader.problem(index, f"bad local address {words[3]!r}")
                    continue
                state = words[5] if len(words) > 5 else ""
                if protocol == "tcp" and state != "LISTEN":
                    continue
                frag.host.sockets.append(
                    Socket(protocol, endpoint[0], endpoint[1], "", reader.src(index))
                )
                continue
        if len(words) < 4:
            reader.problem(index, "expected State Recv-Q Send-Q Local-Address:Port ...")
            continue
        state = words[0]
        if state not in ("LISTEN", "UNCONN", "ESTAB", "TIME-WAIT", "SYN-SENT", "SYN-RECV"):
            reader.problem(index, f"unknown socket state {state!r}")
            continue
        if state not in ("LISTEN", "UNCONN"):
            continue
        if state == "UNCONN" and protocol == "tcp":
            protocol = "udp"
        endpoint = split_endpoint(words[3])
        if endpoint is None:
            reader.problem(index, f"bad local address {words[3]!r}")
            continue
        proc = PROCESS.search(line)
        frag.host.sockets.append(
            Socket(
                protocol, endpoint[0], endpoint[1], proc.group(1) if proc else "", reader.src(index)
            )
        )
    return frag


def looks_like_ss(text: str) -> bool:
    lines = first_lines(text, 2)
    return bool(lines) and (
        (lines[0].split()[0] in ("State", "Netid") and "Local Address:Port" in lines[0])
        or (lines[0].startswith("Active Internet connections"))
    )


IMPORTER = Importer(
    name="ss",
    parse=parse,
    command=command_regex(r"^(\S*/)?(ss|netstat)\s+-\w*l"),
    sniff=looks_like_ss,
    description="ss -ltn / ss -ltnup / netstat -ltn (listening sockets)",
)
