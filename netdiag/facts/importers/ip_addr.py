"""Importer of `ip addr` in its plain, `-o` (one line) `-d` (details) and `-j` (JSON) styles.

The plain parser also understands `ip link` output (interfaces without addresses), which the
ip_link importer reuses.
"""

from __future__ import annotations

import ipaddress
import json
import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    compact_json,
    first_lines,
    is_ip,
    strip_comment,
)
from netdiag.facts.model import Address, Interface

HEADER = re.compile(r"^(\d+):\s+([^\s:@]+)(?:@([^\s:]+))?:\s+<([^>]*)>\s*(.*)$")
#: `ip -br addr` / `ip -br link`: NAME[@PEER] STATE then addresses, or a MAC and <FLAGS>
BRIEF = re.compile(
    r"^([^\s@]+)(?:@(\S+))?\s+(UP|DOWN|UNKNOWN|LOWERLAYERDOWN|DORMANT|NOTPRESENT|TESTING)\b\s*(.*)$"
)
ONELINE_ADDR = re.compile(r"^(\d+):\s+(\S+?)\s+(inet6?)\s+(.*)$")
#: words after `scope X` that are flags, not the label
ADDR_FLAGS = {
    "secondary",
    "primary",
    "dynamic",
    "noprefixroute",
    "tentative",
    "nodad",
    "deprecated",
    "dadfailed",
    "temporary",
    "mngtmpaddr",
    "home",
    "optimistic",
    "stable-privacy",
    "permanent",
    "autojoin",
}
#: first words of an `ip -d link` details line that name the interface kind
KINDS = {
    "veth",
    "bridge",
    "vlan",
    "vxlan",
    "dummy",
    "bond",
    "ipip",
    "gre",
    "gretap",
    "sit",
    "tun",
    "macvlan",
    "ipvlan",
    "vrf",
    "wireguard",
    "geneve",
    "ip6tnl",
    "xfrm",
    "team",
    "openvswitch",
    "nlmon",
    "vti",
}


def _keywords(text: str) -> dict[str, str]:
    """'mtu 1500 qdisc noqueue master docker0 state UP' -> {'mtu': '1500', ...}."""
    words = text.split()
    out: dict[str, str] = {}
    for i, word in enumerate(words[:-1]):
        if word in ("mtu", "master", "state", "qdisc", "link-netns", "link-netnsid", "alias"):
            out.setdefault(word, words[i + 1])
    return out


def _header(match: re.Match[str], reader: Reader, index: int) -> Interface:
    ifindex, name, link, flags, rest = match.groups()
    kw = _keywords(rest)
    mtu = kw.get("mtu")
    return Interface(
        name=name,
        ifindex=int(ifindex),
        mtu=int(mtu) if mtu and mtu.isdigit() else None,
        master=kw.get("master", ""),
        # `bridge link` prints the port's STP state (forwarding...) where ip prints UP/DOWN
        state=kw.get("state", "") if kw.get("state", "").isupper() else "",
        link=link or "",
        flags=[f for f in flags.split(",") if f],
        source=reader.src(index),
    )


def parse_address_words(words: list[str]) -> tuple[Address | None, str]:
    """`inet 10.0.0.3/24 brd ... scope global secondary eth0:0` -> (Address, error)."""
    if len(words) < 2 or words[0] not in ("inet", "inet6"):
        return None, "not an inet/inet6 line"
    local = words[1]
    peer = ""
    if len(words) > 3 and words[2] == "peer":
        peer = words[3]
        if "/" in peer and "/" not in local:
            local = local + "/" + peer.split("/", 1)[1]
    try:
        iface = ipaddress.ip_interface(local)
    except ValueError:
        return None, f"bad address {local!r}"
    if (iface.version == 6) != (words[0] == "inet6"):
        return None, f"{words[0]} with a version-{iface.version} address"
    scope = ""
    label = ""
    if "scope" in words:
        i = words.index("scope")
        scope = words[i + 1] if i + 1 < len(words) else ""
        tail = [w for w in words[i + 2 :] if w not in ADDR_FLAGS]
        if words[0] == "inet" and tail:
            label = tail[-1]
    return (
        Address(str(iface.ip), iface.network.prefixlen, scope=scope, label=label, peer=peer),
        "",
    )


def parse_plain(reader: Reader) -> None:
    """Plain and -d output of `ip addr` / `ip link` (also -o link once split on backslashes)."""
    frag = reader.fragment
    current: Interface | None = None
    for index, raw in _logical_lines(reader):
        line = strip_comment(raw)
        if not line.strip():
            continue
        header = HEADER.match(line)
        if header:
            current = _header(header, reader, index)
            if current.name in frag.host.interfaces:
                reader.problem(index, f"interface {current.name} listed twice; the later one kept")
            frag.host.interfaces[current.name] = current
            continue
        if ONELINE_ADDR.match(line):
            _oneline_addr(reader, index, raw)
            continue
        brief = BRIEF.match(line)
        if brief:
            _brief(reader, index, brief)
            current = None
            continue
        words = line.split()
        if current is None:
            reader.problem(index, "line outside any interface block")
            continue
        head = words[0]
        if head.startswith("link/"):
            current.kind = current.kind or ("loopback" if head == "link/loopback" else "")
            if len(words) > 1 and re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", words[1]):
                current.mac = words[1].lower()
            continue
        if head in ("inet", "inet6"):
            addr, err = parse_address_words(words)
            if addr is None:
                reader.problem(index, err)
                continue
            addr.source = reader.src(index)
            current.addresses.append(addr)
            continue
        if head in KINDS:
            current.kind = head
            continue
        if head in ("valid_lft", "altname", "alias", "bridge_slave", "bond_slave", "RX:", "TX:"):
            continue
        if re.fullmatch(r"[\d\s]+", line.strip()) or head in ("promiscuity", "openvswitch_slave"):
            continue  # -s counters, -d attributes
        reader.problem(index, f"unrecognised line in interface {current.name}")


def _logical_lines(reader: Reader) -> list[tuple[int, str]]:
    """Lines, with `ip -o link` records split at their backslashes into the plain layout."""
    out: list[tuple[int, str]] = []
    for index, raw in reader.numbered():
        if "\\" in raw and HEADER.match(raw.split("\\", 1)[0].rstrip()):
            out.extend((index, piece) for piece in raw.split("\\"))
        else:
            out.append((index, raw))
    return out


def _brief(reader: Reader, index: int, match: re.Match[str]) -> None:
    """One `ip -br addr` or `ip -br link` line."""
    name, link, state, rest = match.groups()
    iface = reader.fragment.host.interfaces.get(name)
    if iface is None:
        iface = reader.fragment.host.interfaces[name] = Interface(
            name=name, link=link or "", state=state, source=reader.src(index)
        )
    for word in rest.split():
        if word.startswith("<") and word.endswith(">"):
            iface.flags = [f for f in word[1:-1].split(",") if f]
        elif re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", word):
            iface.mac = word.lower()
            if word == "00:00:00:00:00:00" and name == "lo":
                iface.kind = "loopback"
        else:
            try:
                parsed = ipaddress.ip_interface(word)
            except ValueError:
                reader.problem(index, f"bad address {word!r}")
                continue
            iface.addresses.append(
                Address(str(parsed.ip), parsed.network.prefixlen, source=reader.src(index))
            )


def _oneline_addr(reader: Reader, index: int, raw: str) -> None:
    """One `ip -o addr` line: '4: eth0    inet 10.0.0.3/24 scope global eth0:0\\ valid_lft ...'."""
    frag = reader.fragment
    line = strip_comment(raw.split("\\", 1)[0])
    match = ONELINE_ADDR.match(line)
    if not match:
        reader.problem(index, "not an `ip -o addr` line")
        return
    ifindex, name, family, rest = match.groups()
    name = name.rstrip(":").split("@", 1)[0]
    addr, err = parse_address_words([family] + rest.split())
    if addr is None:
        reader.problem(index, err)
        return
    addr.source = reader.src(index)
    iface = frag.host.interfaces.get(name)
    if iface is None:
        iface = frag.host.interfaces[name] = Interface(
            name=name, ifindex=int(ifindex), source=reader.src(index)
        )
    iface.addresses.append(addr)


def parse_json(reader: Reader, text: str) -> None:
    """`ip -j addr` / `ip -j link` (optionally -d): a JSON list of interfaces."""
    frag = reader.fragment
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reader.problem(0, f"not valid JSON: {exc}")
        return
    if not isinstance(data, list):
        reader.problem(0, "expected a JSON list of interfaces")
        return
    # JSON is often one line: cite the line holding the interface name when there are several
    name_lines: dict[str, int] = {}
    for index, line in enumerate(reader.lines):
        for m in re.finditer(r'"ifname"\s*:\s*"([^"]+)"', line):
            name_lines.setdefault(m.group(1), index)
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("ifname"), str):
            reader.problem(0, "JSON entry without ifname skipped")
            continue
        name = item["ifname"]
        shown = {k: v for k, v in item.items() if k not in ("addr_info", "linkinfo")}
        src = reader.src(name_lines.get(name, 0), compact_json(shown))
        info = item.get("linkinfo") if isinstance(item.get("linkinfo"), dict) else {}
        kind = str(info.get("info_kind", "")) if info else ""
        if not kind and item.get("link_type") == "loopback":
            kind = "loopback"
        mtu = item.get("mtu")
        iface = Interface(
            name=name,
            ifindex=item["ifindex"] if isinstance(item.get("ifindex"), int) else None,
            mac=str(item.get("address", "")).lower() if item.get("link_type") != "none" else "",
            mtu=mtu if isinstance(mtu, int) else None,
            kind=kind,
            master=str(item.get("master", "")),
            link=str(item.get("link", "") or ""),
            state=str(item.get("operstate", "")),
            flags=[str(f) for f in item.get("flags", []) if isinstance(f, str)],
            source=src,
        )
        for ai in item.get("addr_info", []) or []:
            if not isinstance(ai, dict):
                continue
            fam = ai.get("family")
            local = ai.get("local")
            plen = ai.get("prefixlen")
            if (
                fam not in ("inet", "inet6")
                or not isinstance(local, str)
                or not isinstance(plen, int)
            ):
                reader.problem(name_lines.get(name, 0), f"bad addr_info entry on {name}")
                continue
            try:
                ip = ipaddress.ip_address(local)
            except ValueError:
                reader.problem(name_lines.get(name, 0), f"bad address {local!r} on {name}")
                continue
            iface.addresses.append(
                Address(
                    str(ip),
                    plen,
                    scope=str(ai.get("scope", "")),
                    label=str(ai.get("label", "")) if fam == "inet" else "",
                    peer=str(ai.get("address", "")) if ai.get("address") != local else "",
                    source=reader.src(name_lines.get(name, 0), compact_json(ai)),
                )
            )
        frag.host.interfaces[name] = iface


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    if text.lstrip().startswith("["):
        parse_json(reader, text)
    else:
        parse_plain(reader)
    return reader.fragment


def looks_like_addr(text: str) -> bool:
    lines = first_lines(text, 8)
    if not lines:
        return False
    if lines[0].startswith('[{"ifindex"') or lines[0].startswith('[ {"ifindex"'):
        return '"addr_info"' in text[:20000]
    if ONELINE_ADDR.match(lines[0]):
        return True
    brief = [BRIEF.match(ln) for ln in lines]
    if all(brief):
        # brief addr lines carry addresses, brief link lines a MAC and <FLAGS>
        return not any("<" in ln for ln in lines)
    return bool(HEADER.match(lines[0])) and any(
        ln.startswith(("inet ", "inet6 ")) for ln in lines[1:]
    )


IMPORTER = Importer(
    name="ip_addr",
    parse=parse,
    command=is_ip("address"),
    sniff=looks_like_addr,
    description="ip addr / ip -o addr / ip -j addr / ip -d addr",
)
