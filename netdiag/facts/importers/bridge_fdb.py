"""Importer of `bridge fdb show` (plain and -j): which MAC was learnt behind which bridge port.

Entries with ``self`` (the port's own multicast filters) and multicast MACs are skipped: only
unicast MACs a bridge forwards to say where a host sits.
"""

from __future__ import annotations

import json
import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    compact_json,
    first_lines,
    json_key_lines,
    strip_comment,
)
from netdiag.facts.model import FdbEntry

MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
LINE = re.compile(r"^([0-9a-fA-F:]{17})\s+dev\s+(\S+)(.*)$")


def _multicast(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 1)


def _entry(mac: str, device: str, words: list[str]) -> FdbEntry | None:
    if "self" in words or _multicast(mac):
        return None
    entry = FdbEntry(mac.lower(), device)
    for i, word in enumerate(words):
        if word in ("master", "vlan", "dst") and i + 1 < len(words):
            setattr(entry, {"master": "master", "vlan": "vlan", "dst": "dst"}[word], words[i + 1])
        elif word in ("permanent", "static", "dynamic"):
            entry.state = word
    return entry


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reader.problem(0, f"not valid JSON: {exc}")
            return frag
        lines = json_key_lines(reader.lines, "mac")
        for n, item in enumerate(data if isinstance(data, list) else []):
            if not isinstance(item, dict) or not MAC.match(str(item.get("mac", ""))):
                reader.problem(0, f"fdb entry #{n + 1} without a MAC skipped")
                continue
            words = [str(f) for f in item.get("flags", []) or []]
            for key in ("master", "vlan", "dst", "state"):
                if item.get(key) is not None:
                    words += [key, str(item[key])] if key != "state" else [str(item[key])]
            entry = _entry(str(item["mac"]), str(item.get("ifname", "")), words)
            if entry is not None:
                entry.source = reader.src(lines[n] if n < len(lines) else 0, compact_json(item))
                frag.host.fdb.append(entry)
        return frag
    for index, raw in reader.numbered():
        line = strip_comment(raw).strip()
        if not line:
            continue
        match = LINE.match(line)
        if not match or not MAC.match(match.group(1)):
            reader.problem(index, "not a `bridge fdb` line (MAC dev PORT ...)")
            continue
        entry = _entry(match.group(1), match.group(2), match.group(3).split())
        if entry is not None:
            entry.source = reader.src(index)
            frag.host.fdb.append(entry)
    return frag


def looks_like_fdb(text: str) -> bool:
    lines = first_lines(text, 3)
    if lines and lines[0].startswith('[{"mac"'):
        return True
    return bool(lines) and all(LINE.match(ln) for ln in lines)


IMPORTER = Importer(
    name="bridge_fdb",
    parse=parse,
    command=command_regex(r"^(\S*/)?bridge\s+(-\S+\s+)*fdb\b"),
    sniff=looks_like_fdb,
    description="bridge fdb show (learnt MACs per bridge port)",
)
