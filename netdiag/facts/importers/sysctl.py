"""Importer of kernel parameters: `sysctl -a`, single `sysctl` lines, sysctl.conf, /proc/sys dumps.

Accepted lines: ``net.ipv4.ip_forward = 1`` (sysctl, sysctl.conf, ``sysctl -w`` echo),
``/proc/sys/net/ipv4/ip_forward:1`` (``grep . /proc/sys/...``), ``/proc/sys/... = 1`` and the setup
command ``echo 1 > /proc/sys/net/ipv4/ip_forward`` (seed 004 pastes its director script).
Keys are stored dotted as sysctl prints them: an interface name's dots become '/' (eth0/100).
"""

from __future__ import annotations

import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
)
from netdiag.facts.model import Sysctl

KEY = re.compile(r"^[a-z0-9_][A-Za-z0-9_.\-/:]*$")
ECHO = re.compile(r"^echo\s+(?:-n\s+)?[\"']?([^\"'>]*?)[\"']?\s*>>?\s*(/proc/sys/\S+)\s*$")
PROC = re.compile(r"^(/proc/sys/\S+?)\s*(?::|=)\s*(.*)$")
DOTTED = re.compile(r"^(?:sysctl\s+(?:-w\s+|-q\s+)*)?([^\s=]+)\s*=\s*(.*)$")
#: per-interface trees: the component after these is an interface name
IFACE_TREES = (
    ("net", "ipv4", "conf"),
    ("net", "ipv6", "conf"),
    ("net", "ipv4", "neigh"),
    ("net", "ipv6", "neigh"),
)


def key_from_path(path: str) -> str:
    """/proc/sys/net/ipv4/conf/eth0.100/rp_filter -> net.ipv4.conf.eth0/100.rp_filter."""
    parts = path[len("/proc/sys/") :].strip("/").split("/")
    if tuple(parts[:3]) in IFACE_TREES and len(parts) > 4:
        parts[3] = parts[3].replace(".", "/")
    return ".".join(parts)


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    for index, raw in reader.numbered():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or line.startswith("sysctl: "):
            continue  # comments; "sysctl: permission denied on key ..." notes
        line = re.sub(r"\s+#.*$", "", line)
        echo = ECHO.match(line)
        proc = PROC.match(line)
        if echo:
            value, key = echo.group(1).strip(), key_from_path(echo.group(2))
        elif proc:
            key, value = key_from_path(proc.group(1)), proc.group(2).strip()
        else:
            dotted = DOTTED.match(line)
            if not dotted:
                if re.match(r"^(sysctl|echo|cat|grep)\b", line):
                    continue  # a command line pasted along (sysctl -p, cat ...)
                reader.problem(index, "not a `key = value` sysctl line")
                continue
            key, value = dotted.group(1), dotted.group(2).strip()
            key = key.replace("/", ".") if key.startswith("net/") else key
        if not KEY.match(key):
            reader.problem(index, f"bad sysctl key {key!r}")
            continue
        frag.host.sysctls[key] = Sysctl(key, " ".join(value.split()), reader.src(index))
    return frag


def looks_like_sysctl(text: str) -> bool:
    lines = [ln for ln in first_lines(text, 5) if not ln.startswith("#")]
    return bool(lines) and all(
        re.match(r"^(net|kernel|vm|fs|dev|user|abi|debug|crypto)\.[\w./-]+\s*=", ln)
        or re.match(r"^/proc/sys/\S+\s*(:|=)", ln)
        or ECHO.match(ln)
        for ln in lines
    )


IMPORTER = Importer(
    name="sysctl",
    parse=parse,
    command=command_regex(
        r"^(\S*/)?sysctl(\s|$)",
        r"/proc/sys/",
        r"sysctl\.conf",
        r"sysctl\.d/",
    ),
    sniff=looks_like_sysctl,
    description="sysctl -a / sysctl KEY / sysctl.conf / /proc/sys path=value / echo V > /proc/sys",
)
