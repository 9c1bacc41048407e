"""Importer of strongSwan `ipsec.conf`: conn sections with `also=` and `%default` inheritance.

``left`` is taken as the local side and ``right`` as the remote one (the strongSwan convention;
the daemon itself swaps them when ``right`` is the local address, which the pasted file alone
cannot show). leftsubnet/rightsubnet may list several comma-separated subnets (and libreswan's
``leftsubnets={a b}``). Conns with ``auto=ignore`` are templates and are not facts. The lines that set the effective subnets are kept, so a remediation can
name the exact line to change.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from netdiag.facts.importers.base import Fragment, Importer, Reader, command_regex, first_lines
from netdiag.facts.model import IpsecConn, Source, parse_network

SECTION = re.compile(r"^(conn|config|ca)\s+(\S+)\s*$")
SETTING = re.compile(r"^([A-Za-z0-9_\-]+)\s*=\s*(.*?)\s*$")


@dataclass
class Section:
    name: str
    source: Source
    settings: dict[str, tuple[str, Source]] = field(default_factory=dict)


def read_sections(reader: Reader) -> dict[str, Section]:
    """conn sections by name, settings with the line that set them (later lines win)."""
    conns: dict[str, Section] = {}
    current: Section | None = None
    for index, raw in reader.numbered():
        stripped = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not stripped.strip():
            continue
        if not raw[:1].isspace():
            match = SECTION.match(stripped)
            if match is None:
                if stripped.startswith("include "):
                    current = None
                    continue
                reader.problem(index, "expected 'conn NAME', 'config setup' or 'ca NAME'")
                current = None
                continue
            kind, name = match.groups()
            if kind != "conn":
                current = None
                continue
            if name in conns:
                reader.problem(index, f"conn {name} defined twice; the later one kept")
            current = conns[name] = Section(name, reader.src(index))
            continue
        if current is None:
            continue  # settings of 'config setup' / 'ca' / after a bad header
        setting = SETTING.match(stripped.strip())
        if setting is None:
            reader.problem(index, f"not a key=value setting in conn {current.name}")
            continue
        key, value = setting.groups()
        current.settings[key] = (value.strip('"'), reader.src(index))
    return conns


def resolve(conns: dict[str, Section], name: str, reader: Reader) -> dict[str, tuple[str, Source]]:
    """The settings of conn ``name`` after %default and also= (depth-first, the conn wins)."""
    out: dict[str, tuple[str, Source]] = {}
    default = conns.get("%default")
    if default is not None:
        out.update(default.settings)
    seen: set[str] = set()

    def include(section: Section) -> None:
        if section.name in seen:
            reader.problem(section.source.line - reader.first_line, f"also= loop at {section.name}")
            return
        seen.add(section.name)
        also = section.settings.get("also")
        if also is not None:
            for other in also[0].split():
                target = conns.get(other)
                if target is None:
                    reader.problem(also[1].line - reader.first_line, f"also={other}: no such conn")
                    continue
                include(target)
        out.update({k: v for k, v in section.settings.items() if k != "also"})

    include(conns[name])
    return out


def subnets(value: str) -> tuple[list[str], list[str]]:
    """'10.1.0.0/16,10.2.0.0/16' or '{10.1.0.0/16 10.2.0.0/16}' -> (valid, bad)."""
    parts = [p for p in re.split(r"[\s,{}]+", value) if p]
    good, bad = [], []
    for part in parts:
        cidr = part.split("[", 1)[0]  # strongSwan's 'net[proto/port]'
        if parse_network(cidr) is None and cidr not in ("%dynamic", "dynamic", "%any", "%any6"):
            bad.append(part)
        else:
            good.append(part)
    return good, bad


def conns_from(reader: Reader, kind: str) -> None:
    """Turn the parsed sections into IpsecConn facts on the reader's fragment."""
    conns = read_sections(reader)
    for name in conns:
        if name == "%default":
            continue
        settings = resolve(conns, name, reader)
        conn = IpsecConn(
            name=name,
            local_gateway=settings.get("left", ("", None))[0],
            remote_gateway=settings.get("right", ("", None))[0],
            kind=kind,
            auto=settings.get("auto", ("", None))[0],
            source=conns[name].source,
        )
        for side, attr in (("left", "local"), ("right", "remote")):
            key = f"{side}subnets" if f"{side}subnets" in settings else f"{side}subnet"
            if key not in settings:
                continue
            value, src = settings[key]
            good, bad = subnets(value)
            for b in bad:
                reader.problem(src.line - reader.first_line, f"{key}: bad subnet {b!r}")
            setattr(conn, f"{attr}_subnets", good)
            setattr(conn, f"{attr}_subnets_source", src)
        if conn.auto == "ignore":
            continue  # a template for also=, never loaded by the daemon
        if not conn.local_subnets and _is_address(conn.local_gateway):
            # no leftsubnet: the selector is the gateway's own address
            conn.local_subnets = [conn.local_gateway]
            conn.local_subnets_source = settings["left"][1]
        if not conn.remote_subnets and _is_address(conn.remote_gateway):
            conn.remote_subnets = [conn.remote_gateway]
            conn.remote_subnets_source = settings["right"][1]
        reader.fragment.host.ipsec.append(conn)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    conns_from(reader, "strongswan")
    return reader.fragment


def looks_like_ipsec_conf(text: str) -> bool:
    lines = [ln for ln in first_lines(text, 40) if not ln.startswith("#")]
    has_conn = any(re.match(r"^conn\s+\S+$", ln) for ln in lines)
    return has_conn and not looks_like_libreswan(text)


LIBRESWAN_ONLY = re.compile(
    r"^\s*(leftsubnets|rightsubnets|ikev2|protostack|phase2alg|phase2|pfs|salifetime|"
    r"ikelifetime|rekeymargin|leftid=@|authby=rsasig|nat-ikev1-method|encapsulation)\s*=",
    re.M,
)


def looks_like_libreswan(text: str) -> bool:
    return bool(LIBRESWAN_ONLY.search(text[:20000])) and "conn " in text[:20000]


IMPORTER = Importer(
    name="strongswan_ipsec_conf",
    parse=parse,
    command=command_regex(r"ipsec\.conf\b", r"^(\S*/)?ipsec\s+statusall"),
    sniff=looks_like_ipsec_conf,
    description="strongSwan ipsec.conf (conn, also=, %default, leftsubnet/rightsubnet lists)",
)
