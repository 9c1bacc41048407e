"""Importer of `ip link` in its plain, `-o`, `-d` and `-j` styles: interfaces without addresses.

The interface blocks are the same as `ip addr` prints them, so the parsing is ip_addr's.
"""

from __future__ import annotations

from netdiag.facts.importers import ip_addr
from netdiag.facts.importers.base import Fragment, Importer, Reader, first_lines, is_ip


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    if text.lstrip().startswith("["):
        ip_addr.parse_json(reader, text)
    else:
        ip_addr.parse_plain(reader)
    return reader.fragment


def looks_like_link(text: str) -> bool:
    lines = first_lines(text, 3)
    if not lines:
        return False
    if lines[0].startswith(('[{"ifindex"', '[ {"ifindex"')):
        return '"addr_info"' not in text[:20000]
    if all(ip_addr.BRIEF.match(ln) for ln in lines) and any("<" in ln for ln in lines):
        return True
    return bool(ip_addr.HEADER.match(lines[0].split("\\", 1)[0].rstrip())) and not (
        ip_addr.looks_like_addr(text)
    )


IMPORTER = Importer(
    name="ip_link",
    parse=parse,
    command=is_ip("link"),
    sniff=looks_like_link,
    description="ip link / ip -o link / ip -d link / ip -j link",
)
