"""Importer of libreswan conns (/etc/ipsec.conf, /etc/ipsec.d/*.conf).

The syntax is strongSwan's ipsec.conf (which it shares with libreswan's ancestor); libreswan adds
``leftsubnets={a b}`` lists and has no ``%default`` section. The parsing is strongswan_ipsec_conf's.
"""

from __future__ import annotations

from netdiag.facts.importers.base import Fragment, Importer, Reader, command_regex
from netdiag.facts.importers.strongswan_ipsec_conf import conns_from, looks_like_libreswan


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    conns_from(reader, "libreswan")
    return reader.fragment


IMPORTER = Importer(
    name="libreswan",
    parse=parse,
    command=command_regex(r"ipsec\.d/.*\.conf", r"libreswan"),
    sniff=looks_like_libreswan,
    description="libreswan conns (leftsubnets={...}, ikev2=, phase2alg=)",
)
