"""Importer of the neighbour (ARP/NDP) cache: `ip neigh`, `arp -n` and `arp -a`."""

from __future__ import annotations

import ipaddress
import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
    ip_object,
    strip_comment,
)
from netdiag.facts.model import Neighbour

MAC = re.compile(r"^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$")
STATES = {
    "REACHABLE",
    "STALE",
    "DELAY",
    "PROBE",
    "FAILED",
    "INCOMPLETE",
    "NOARP",
    "PERMANENT",
    "NONE",
}
ARP_A = re.compile(
    r"^\S+\s+\(([0-9a-fA-F:.]+)\)\s+at\s+(\S+)(?:\s+\[\w+\])?(?:\s+\w+)*\s+on\s+(\S+)"
)


def _mac(text: str) -> str:
    return ":".join(f"{int(part, 16):02x}" for part in text.split(":"))


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ip_neigh(words: list[str]) -> tuple[Neighbour | None, str]:
    """'192.168.1.190 dev eth1 lladdr 02:.. REACHABLE' -> Neighbour."""
    if not _ip_ok(words[0]):
        return None, f"bad address {words[0]!r}"
    n = Neighbour(address=words[0])
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("dev", "lladdr") and i + 1 < len(words):
            if word == "dev":
                n.device = words[i + 1]
            elif MAC.match(words[i + 1]):
                n.mac = _mac(words[i + 1])
            else:
                return None, f"bad lladdr {words[i + 1]!r}"
            i += 2
            continue
        if word.upper() in STATES:
            n.state = word.upper()
        i += 1
    return n, ""


def _arp_n(words: list[str]) -> tuple[Neighbour | None, str]:
    """'192.168.1.190  ether  02:..  C  eth1' or '192.168.75.2  (incomplete)  eth0'."""
    if not _ip_ok(words[0]):
        return None, f"bad address {words[0]!r}"
    n = Neighbour(address=words[0], device=words[-1])
    if "(incomplete)" in words:
        n.state = "INCOMPLETE"
        return n, ""
    macs = [w for w in words[1:] if MAC.match(w)]
    if not macs:
        return None, "no hardware address"
    n.mac = _mac(macs[0])
    flags = words[words.index(macs[0]) + 1] if words.index(macs[0]) + 2 < len(words) else ""
    n.state = "PERMANENT" if "M" in flags else "REACHABLE"
    return n, ""


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    for index, raw in reader.numbered():
        line = strip_comment(raw)
        if not line.strip() or line.startswith("Address ") or "no match found" in line:
            continue
        words = line.split()
        arp_a = ARP_A.match(line)
        if arp_a:
            ip, mac, dev = arp_a.groups()
            n: Neighbour | None = Neighbour(ip, "", dev, "INCOMPLETE")
            if MAC.match(mac):
                n = Neighbour(ip, _mac(mac), dev, "PERMANENT" if " PERM " in line else "REACHABLE")
            err = ""
        elif len(words) >= 2 and words[1] in ("dev", "lladdr", "FAILED", "INCOMPLETE"):
            n, err = _ip_neigh(words)
        elif len(words) >= 3:
            n, err = _arp_n(words)
        else:
            n, err = None, "not a neighbour entry"
        if n is None:
            reader.problem(index, err)
            continue
        n.source = reader.src(index)
        frag.host.neighbours.append(n)
    return frag


def looks_like_neigh(text: str) -> bool:
    lines = first_lines(text, 3)
    if not lines:
        return False
    if lines[0].startswith("Address") and "HWaddress" in lines[0]:
        return True
    return all(
        re.match(r"^[0-9a-fA-F:.]+\s+dev\s+\S+\s+(lladdr\s+\S+\s+)?(router\s+)?[A-Z]+", ln)
        or ARP_A.match(ln)
        for ln in lines
    )


IMPORTER = Importer(
    name="ip_neigh",
    parse=parse,
    command=lambda c: ip_object(c) == "neighbour" or command_regex(r"^(\S*/)?arp(\s|$)")(c),
    sniff=looks_like_neigh,
    description="ip neigh / arp -n / arp -a",
)
