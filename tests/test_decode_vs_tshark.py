"""Differential test of the header decoder against tshark, the oracle, frame by frame.

For every corpus capture tshark reads and netdiag decodes (supported link types), and for a set of
crafted captures, every compared column must equal what tshark decodes for the same frame, with
tshark run packet by packet (no reassembly, no defragmentation, raw sequence numbers). One tshark
call per file prints every field with all its occurrences; ``COLUMN_ORACLE`` maps each schema
column to its tshark field(s) in one table. A mismatch is only accepted when ``QUIRKS`` lists it
with the reason, and every quirk must still explain at least one mismatch (no stale excuses).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import ipaddress
import subprocess
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from netdiag.addressbook import AddressBook
from netdiag.capture.linktypes import is_supported
from netdiag.capture.schema import COLUMN_NAMES, COLUMNS_BY_NAME, PacketChunk
from netdiag.capture.table import concat_chunks, iter_decoded
from netdiag.errors import NetdiagError

AGGREGATOR = "\x1f"
TSHARK_PREFS = (
    "tcp.desegment_tcp_streams:FALSE",
    "tcp.relative_sequence_numbers:FALSE",
    "tcp.analyze_sequence_numbers:FALSE",
    "ip.defragment:FALSE",
    "ipv6.defragment:FALSE",
    "udp.try_heuristic_first:FALSE",
)
ICMP_ERROR_TYPES = {"icmp": (3, 4, 5, 11, 12), "icmpv6": (1, 2, 3, 4)}
IPV6_EXTENSIONS = (0, 43, 44, 51, 60)
#: protocols after which tshark's fields belong to an inner packet (tunnel or quoted header)
INNER_BOUNDARY = ("vxlan", "geneve", "gre", "icmp", "icmpv6", "teredo", "erspan")

SKIP = object()  # "this column has no tshark counterpart for this frame"


@dataclass
class TsharkFrame:
    """One frame of tshark -T fields output: every occurrence of every field."""

    values: dict[str, list[str]]
    protocols: list[str]
    outer: list[str] = field(default_factory=list)  # protocols of the outer packet
    after_outer: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen_ip = False
        for i, proto in enumerate(self.protocols):
            if proto in ("ip", "ipv6"):
                if seen_ip:
                    self.outer, self.after_outer = self.protocols[:i], self.protocols[i:]
                    return
                seen_ip = True
            if proto in INNER_BOUNDARY:
                self.outer, self.after_outer = self.protocols[: i + 1], self.protocols[i + 1 :]
                return
        self.outer, self.after_outer = self.protocols, []

    def get(self, name: str, occurrence: int = 0) -> str | None:
        found = self.values.get(name, [])
        return found[occurrence] if len(found) > occurrence else None

    def num(self, name: str, occurrence: int = 0) -> int | None:
        text = self.get(name, occurrence)
        return None if text is None or text == "" else int(text, 0)

    def has(self, proto: str) -> bool:
        return proto in self.outer

    def first_of(self, *protos: str) -> str | None:
        for proto in self.outer:
            if proto in protos:
                return proto
        return None

    # --- layers as netdiag sees them ----------------------------------------------------------
    @property
    def ip(self) -> str | None:
        return self.first_of("ip", "ipv6")

    @property
    def transport(self) -> str | None:
        return self.first_of("tcp", "udp", "icmp", "icmpv6")

    @property
    def icmp_error(self) -> bool:
        kind = self.transport
        if kind not in ("icmp", "icmpv6"):
            return False
        return self.num(f"{kind}.type") in ICMP_ERROR_TYPES[kind]

    @property
    def quoted_ip(self) -> tuple[str, int] | None:
        """Field prefix and occurrence of the IP header an ICMP error quotes."""
        if not self.icmp_error:
            return None
        for proto in self.after_outer:
            if proto in ("ip", "ipv6"):
                return proto, self.outer.count(proto)
        return None

    @property
    def quoted_transport(self) -> str | None:
        if not self.icmp_error:
            return None
        for proto in self.after_outer:
            if proto in ("tcp", "udp"):
                return proto
        return None


def _ts_ns(tf: TsharkFrame) -> int | None:
    text = tf.get("frame.time_epoch")
    return None if text is None else int(Decimal(text) * 1_000_000_000)


def _ethertype(tf: TsharkFrame) -> int | None:
    tags = tf.outer.count("vlan")
    if tags:
        return tf.num("vlan.etype", tags - 1)
    if tf.has("ieee8021ad"):
        return tf.num("ieee8021ad.etype") if "ieee8021ad.etype" in tf.values else None
    if tf.has("llc") and tf.num("llc.type") is not None:
        return tf.num("llc.type")
    if tf.has("eth"):
        return tf.num("eth.type")
    if tf.has("sll"):
        etype = tf.num("sll.etype")
        return etype if etype is not None else tf.num("sll.ltype")
    return None


def _ip(v4: str, v6: str | None = None) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        if tf.ip is None:
            return 0 if v4 == "ip.version" else None
        if tf.ip == "ip":
            return tf.num(v4) if not v4.endswith(("src", "dst")) else tf.get(v4)
        if tf.ip == "ipv6":
            if v6 is None:
                return None
            if v6 == SKIP:
                return SKIP
            return tf.get(v6) if v6.endswith(("src", "dst")) else tf.num(v6)
        return None

    return extract


def _ipv6_upper(tf: TsharkFrame) -> int | None:
    """IPv6 upper-layer protocol: the one next-header value that is not an extension."""
    values = [tf.num("ipv6.nxt")]
    for name in (
        "ipv6.hopopts.nxt",
        "ipv6.routing.nxt",
        "ipv6.fraghdr.nxt",
        "ipv6.dstopts.nxt",
        "ah.next_header",
    ):
        values += [int(v, 0) for v in tf.values.get(name, []) if v]
    upper = {v for v in values if v is not None and v not in IPV6_EXTENSIONS}
    if len(upper) == 1:
        return upper.pop()
    return SKIP if upper else values[-1]  # type: ignore[return-value]


def _ip_proto(tf: TsharkFrame) -> object:
    if tf.ip == "ip":
        return tf.num("ip.proto")
    if tf.ip == "ipv6":
        return _ipv6_upper(tf)
    return None


def _frag_offset(tf: TsharkFrame) -> object:
    """tshark 4.0 prints fragment offsets in 8-byte units."""
    units = _ip("ip.frag_offset", "ipv6.fraghdr.offset")(tf)
    return units * 8 if isinstance(units, int) else units


def _tcp(name: str) -> Callable[[TsharkFrame], object]:
    return lambda tf: tf.num(name) if tf.transport == "tcp" else None


def _port(which: str) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        kind = tf.transport
        return tf.num(f"{kind}.{which}") if kind in ("tcp", "udp") else None

    return extract


def _sack_perm(tf: TsharkFrame) -> object:
    if tf.transport != "tcp":
        return None
    return 1 if "4" in tf.values.get("tcp.option_kind", []) else 0


def _icmp(v4: str, v6: str, outer_only: bool = False) -> Callable[[TsharkFrame], object]:
    """An ICMP field; ``outer_only`` for fields an error's quoted ICMP header also has."""

    def extract(tf: TsharkFrame) -> object:
        kind = tf.transport
        if outer_only and tf.icmp_error:
            return None
        if kind == "icmp":
            return tf.get(v4) if v4.endswith("_gw") else tf.num(v4)
        if kind == "icmpv6":
            return tf.get(v6) if v6.endswith("address") else tf.num(v6)
        return None

    return extract


def _quoted(v4: str, v6: str | None) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        quoted = tf.quoted_ip
        if quoted is None:
            return None
        proto, occurrence = quoted
        name = v4 if proto == "ip" else v6
        if name is None:
            return None
        if name.endswith(("src", "dst")):
            return tf.get(name, occurrence)
        if proto == "ipv6" and name == "ipv6.nxt":
            return _ipv6_upper_quoted(tf, occurrence)
        return tf.num(name, occurrence)

    return extract


def _ipv6_upper_quoted(tf: TsharkFrame, occurrence: int) -> object:
    nxt = tf.num("ipv6.nxt", occurrence)
    return SKIP if nxt in IPV6_EXTENSIONS else nxt


def _quoted_port(which: str) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        kind = tf.quoted_transport
        if kind is None:
            return None
        if which == "seq":
            return tf.num("tcp.seq") if kind == "tcp" else None
        return tf.num(f"{kind}.{which}")

    return extract


def _outer_num(proto: str, name: str) -> Callable[[TsharkFrame], object]:
    return lambda tf: tf.num(name) if tf.has(proto) else None


def _outer_text(proto: str, name: str) -> Callable[[TsharkFrame], object]:
    return lambda tf: tf.get(name) if tf.has(proto) else None


def _ike_spi(name: str) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        text = tf.get(name) if tf.has("isakmp") else None
        if not text:
            return None
        return int(np.array([int(text, 16)], dtype=np.uint64).view(np.int64)[0])

    return extract


def _ike_natt(tf: TsharkFrame) -> object:
    if not tf.has("udpencap"):
        return None
    if "esp" in tf.protocols:
        return 0
    return 1 if "isakmp" in tf.protocols else 2


def _tunnel(tf: TsharkFrame) -> int:
    for proto, code in (("vxlan", 1), ("gre", 2), ("geneve", 4)):
        if tf.has(proto):
            return code
    inner = tf.after_outer[0] if tf.after_outer else None
    if (
        inner in ("ip", "ipv6")
        and tf.outer
        and tf.outer[-1] in ("ip", "ipv6", "ah", "ipv6.hopopts", "ipv6.routing", "ipv6.dstopts")
    ):
        # IP-in-IP counts when the inner header has the version its protocol number promises
        # (tshark's IPv6 header also carries an ip.version field)
        before = tf.outer.count("ipv6") + (tf.outer.count("ip") if inner == "ip" else 0)
        version = tf.num(f"{inner}.version", before)
        return 3 if version == (4 if inner == "ip" else 6) else 0
    return 0


def _eth_src(tf: TsharkFrame) -> object:
    if tf.has("eth"):
        return tf.get("eth.src")
    if tf.has("sll"):
        return tf.get("sll.src.eth")
    return None


def _vlan_tags(tf: TsharkFrame) -> list[int | None]:
    """VLAN ids of the outer packet, outermost first (802.1ad S-tags have their own fields)."""
    tags: list[int | None] = []
    seen = Counter[str]()
    for proto in tf.outer:
        if proto in ("vlan", "ieee8021ad"):
            tags.append(tf.num(f"{proto}.id", seen[proto]))
            seen[proto] += 1
    return tags


def _vlan(occurrence: int) -> Callable[[TsharkFrame], object]:
    def extract(tf: TsharkFrame) -> object:
        tags = _vlan_tags(tf)
        return tags[occurrence] if len(tags) > occurrence else None

    return extract


#: schema column -> how tshark's fields give its value (None: absent; SKIP: not comparable)
COLUMN_ORACLE: dict[str, Callable[[TsharkFrame], object]] = {
    "frame": lambda tf: tf.num("frame.number"),
    "ts_ns": _ts_ns,
    "caplen": lambda tf: tf.num("frame.cap_len"),
    "wirelen": lambda tf: tf.num("frame.len"),
    "iface": lambda tf: tf.num("frame.interface_id") or 0,
    # tshark names an interface without if_name "unknown"
    "iface_name": lambda tf: (
        None
        if tf.get("frame.interface_name") in (None, "unknown")
        else tf.get("frame.interface_name")
    ),
    "sll_ifindex": _outer_num("sll", "sll.ifindex"),
    "sll_pkttype": _outer_num("sll", "sll.pkttype"),
    "eth_src": _eth_src,
    "eth_dst": _outer_text("eth", "eth.dst"),
    "vlan": _vlan(0),
    "vlan_inner": _vlan(1),
    "ethertype": _ethertype,
    "ip_version": _ip("ip.version", "ipv6.version"),
    "ip_src": _ip("ip.src", "ipv6.src"),
    "ip_dst": _ip("ip.dst", "ipv6.dst"),
    "ip_proto": _ip_proto,
    "ip_ttl": _ip("ip.ttl", "ipv6.hlim"),
    "ip_id": _ip("ip.id", "ipv6.fraghdr.ident"),
    "ip_len": lambda tf: (
        (tf.num("ipv6.plen") + 40 if tf.num("ipv6.plen") is not None else None)
        if tf.ip == "ipv6"
        else _ip("ip.len")(tf)
    ),
    "ip_flags": _ip("ip.flags"),
    "ip_frag_offset": _frag_offset,
    "ip_hdr_len": _ip("ip.hdr_len", SKIP),  # type: ignore[arg-type]
    "sport": _port("srcport"),
    "dport": _port("dstport"),
    "tcp_flags": _tcp("tcp.flags"),
    "tcp_seq": _tcp("tcp.seq"),  # raw: relative sequence numbers are off
    "tcp_ack": _tcp("tcp.ack"),
    "tcp_len": _tcp("tcp.len"),
    "tcp_win": _tcp("tcp.window_size_value"),
    "tcp_mss": _tcp("tcp.options.mss_val"),
    "tcp_wscale": _tcp("tcp.options.wscale.shift"),
    "tcp_sack_perm": _sack_perm,
    "tcp_ts_val": _tcp("tcp.options.timestamp.tsval"),
    "tcp_ts_ecr": _tcp("tcp.options.timestamp.tsecr"),
    "udp_len": lambda tf: tf.num("udp.length") if tf.transport == "udp" else None,
    "icmp_type": _icmp("icmp.type", "icmpv6.type"),
    "icmp_code": _icmp("icmp.code", "icmpv6.code"),
    "icmp_id": _icmp("icmp.ident", "icmpv6.echo.identifier", outer_only=True),
    "icmp_seq": _icmp("icmp.seq", "icmpv6.echo.sequence_number", outer_only=True),
    "icmp_mtu": _icmp("icmp.mtu", "icmpv6.mtu"),
    "icmp_gateway": _icmp("icmp.redir_gw", "icmpv6.nd.rd.target_address"),
    "icmp_inner_src": _quoted("ip.src", "ipv6.src"),
    "icmp_inner_dst": _quoted("ip.dst", "ipv6.dst"),
    "icmp_inner_proto": _quoted("ip.proto", "ipv6.nxt"),
    "icmp_inner_ttl": _quoted("ip.ttl", "ipv6.hlim"),
    "icmp_inner_id": _quoted("ip.id", None),
    "icmp_inner_sport": _quoted_port("srcport"),
    "icmp_inner_dport": _quoted_port("dstport"),
    "icmp_inner_seq": _quoted_port("seq"),
    "arp_op": _outer_num("arp", "arp.opcode"),
    "arp_sha": _outer_text("arp", "arp.src.hw_mac"),
    "arp_spa": _outer_text("arp", "arp.src.proto_ipv4"),
    "arp_tha": _outer_text("arp", "arp.dst.hw_mac"),
    "arp_tpa": _outer_text("arp", "arp.dst.proto_ipv4"),
    "esp_spi": _outer_num("esp", "esp.spi"),
    "esp_seq": _outer_num("esp", "esp.sequence"),
    "ike_ispi": _ike_spi("isakmp.ispi"),
    "ike_rspi": _ike_spi("isakmp.rspi"),
    "ike_exchange": _outer_num("isakmp", "isakmp.exchangetype"),
    "ike_natt": _ike_natt,
    "tunnel": _tunnel,
    "vxlan_vni": _outer_num("vxlan", "vxlan.vni"),
    "comment": lambda tf: tf.get("frame.comment") or None,
}

#: columns without a tshark counterpart, and why
NOT_COMPARED = {
    "linktype": "tshark prints its own encapsulation numbers, not LINKTYPE_ values",
    "payload_hash": "netdiag's own hash; tested by properties in test_decode_layers.py",
    "decode_error": "netdiag's own wording; truncation cases are unit-tested",
}

TSHARK_FIELDS = sorted(
    {
        "frame.number",
        "frame.time_epoch",
        "frame.cap_len",
        "frame.len",
        "frame.interface_id",
        "frame.interface_name",
        "frame.comment",
        "frame.protocols",
        "sll.ifindex",
        "sll.pkttype",
        "sll.src.eth",
        "sll.etype",
        "sll.ltype",
        "eth.src",
        "eth.dst",
        "eth.type",
        "vlan.id",
        "vlan.etype",
        "llc.type",
        "ieee8021ad.id",
        "ip.version",
        "ipv6.version",
        "ip.src",
        "ip.dst",
        "ip.proto",
        "ip.ttl",
        "ip.id",
        "ip.len",
        "ip.flags",
        "ip.frag_offset",
        "ip.hdr_len",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.nxt",
        "ipv6.hlim",
        "ipv6.plen",
        "ipv6.fraghdr.ident",
        "ipv6.fraghdr.offset",
        "ipv6.hopopts.nxt",
        "ipv6.routing.nxt",
        "ipv6.fraghdr.nxt",
        "ipv6.dstopts.nxt",
        "ah.next_header",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags",
        "tcp.seq",
        "tcp.ack",
        "tcp.len",
        "tcp.window_size_value",
        "tcp.options.mss_val",
        "tcp.options.wscale.shift",
        "tcp.option_kind",
        "tcp.options.timestamp.tsval",
        "tcp.options.timestamp.tsecr",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
        "icmp.type",
        "icmp.code",
        "icmp.ident",
        "icmp.seq",
        "icmp.mtu",
        "icmp.redir_gw",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.echo.identifier",
        "icmpv6.echo.sequence_number",
        "icmpv6.mtu",
        "icmpv6.nd.rd.target_address",
        "arp.opcode",
        "arp.src.hw_mac",
        "arp.src.proto_ipv4",
        "arp.dst.hw_mac",
        "arp.dst.proto_ipv4",
        "esp.spi",
        "esp.sequence",
        "isakmp.ispi",
        "isakmp.rspi",
        "isakmp.exchangetype",
        "vxlan.vni",
    }
)


@dataclass(frozen=True)
class Quirk:
    """A known, explained difference between netdiag and tshark."""

    files: str  # fnmatch patterns on the capture's file name, separated by "|"
    columns: tuple[str, ...]
    reason: str
    when: Callable[[TsharkFrame, dict[str, object]], bool] | None = None


ALL_COLUMNS = tuple(COLUMN_NAMES)

#: tshark behaviours met in any capture (the crafted ones included)
GENERIC_QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        "*",
        ("icmp_inner_seq",),
        "tshark 4.0 shows the ports but not the sequence number of a TCP header quoted in an "
        "ICMPv6 error (it does for ICMPv4); netdiag reports it for both",
        lambda tf, ours: tf.transport == "icmpv6",
    ),
)
IP_COLUMNS = (
    "ip_version",
    "ip_src",
    "ip_dst",
    "ip_proto",
    "ip_ttl",
    "ip_id",
    "ip_len",
    "ip_flags",
    "ip_frag_offset",
    "ip_hdr_len",
    "tunnel",
)
TRANSPORT_COLUMNS = (
    "sport",
    "dport",
    "udp_len",
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_len",
    "tcp_win",
    "tcp_sack_perm",
    "tcp_mss",
    "tcp_wscale",
    "tcp_ts_val",
    "tcp_ts_ecr",
)


def _tshark_version_not_4(tf: TsharkFrame, ours: dict[str, object]) -> bool:
    return tf.ip == "ip" and tf.num("ip.version") != 4


QUIRKS: tuple[Quirk, ...] = GENERIC_QUIRKS + (
    # --- how the two read the container (frame accounting, timestamps, comments) -----------
    Quirk(
        "gp__le__test018.pcapng|gp__le__test202.pcapng",
        ALL_COLUMNS,
        "tshark 4.0 lists pcapng Custom Blocks as frames, so from the first one on its frame "
        "numbers run ahead of netdiag's, which only numbers packets",
    ),
    Quirk(
        "*",
        ("ts_ns",),
        "a pcapng Simple Packet Block has no timestamp: tshark prints none",
        lambda tf, ours: tf.get("frame.time_epoch") is None,
    ),
    Quirk(
        "pp__pcapng-example.pcapng",
        ("ts_ns",),
        "timestamps before 1970: tshark prints them as unsigned 64-bit nanoseconds",
        lambda tf, ours: isinstance(ours["ts_ns"], int) and ours["ts_ns"] < 0,
    ),
    Quirk(
        "pp__pcapng-example.pcapng",
        ("comment",),
        "packet comments with bytes after a NUL: tshark stops at the NUL, the pcapng reader "
        "keeps the whole option value (reported to the reader's owner)",
    ),
    Quirk(
        "td__timestamp_invalid_*.pcap",
        ("ts_ns",),
        "sub-second field out of range (>= 1e6 us / 1e9 ns): tshark and the reader carry it "
        "into seconds differently (tshark even prints a negative time)",
    ),
    Quirk(
        "sv__bug-6875-01__fuzz.pcap",
        ALL_COLUMNS,
        "fuzzed pcap: wiretap guesses one of its non-standard pcap variants (longer record "
        "headers) and reads the record 6 bytes later; netdiag reads standard pcap records",
    ),
    # --- protocols netdiag does not decode -----------------------------------------------------
    Quirk(
        "zk__pbb-recursive-frames.pcapng",
        IP_COLUMNS + TRANSPORT_COLUMNS,
        "802.1ah provider backbone bridging (MAC-in-MAC) is not decoded",
    ),
    Quirk(
        "td__arp-oobr.pcap",
        ("arp_op", "arp_spa", "arp_tpa"),
        "ATM ARP (hardware type 19): tshark decodes it as ATMARP with other field names",
        lambda tf, ours: "atmarp" in tf.protocols,
    ),
    # --- malformed input: where each stops trusting a header ----------------------------------
    Quirk(
        "*",
        ("ip_version", "tunnel"),
        "IP version nibble other than 4 under an IPv4 ethertype or link type: tshark prints "
        "the nibble (and hands version 6 to IPv6), netdiag says no IP header (decode_error)",
        _tshark_version_not_4,
    ),
    Quirk(
        "sv__*malformed-ipv4*",
        TRANSPORT_COLUMNS,
        "IPv4 security option of length 2 (must be 11): tshark throws and stops at the IP "
        "layer; netdiag does not validate option contents and decodes the transport",
    ),
    Quirk(
        "sv__bug-7414-decoder-event-01__ip_secopt.pcap",
        TRANSPORT_COLUMNS,
        "IPv4 security option of length 2 (must be 11): tshark throws and stops at the IP "
        "layer; netdiag does not validate option contents and decodes the transport",
    ),
    Quirk(
        "zk__trunc__ipv4-internally-truncated-header.pcap",
        ("ip_dst",),
        "header length 60 with 20 bytes captured: tshark stops before the destination "
        "address; netdiag keeps every field that was captured",
    ),
    Quirk(
        "td__icmp-icmp_print-oobr-1.pcap",
        ("icmp_type", "icmp_code"),
        "an ICMP message of 3 bytes: tshark shows no ICMP field, netdiag keeps type and code",
    ),
    Quirk(
        "td__ipv6_frag6_negative_len.pcap",
        ("ip_proto", "ip_id", "ip_frag_offset"),
        "IPv6 payload length 0 with a fragment header: tshark throws inside the fragment "
        "header; netdiag reads the captured fragment header",
    ),
    Quirk(
        "td__isakmp-pointer-loop.pcap",
        ("ike_ispi", "ike_rspi", "ike_exchange"),
        "all-zero IKE initiator SPI on UDP 500: tshark's ISAKMP dissector refuses it (data)",
    ),
    Quirk(
        "td__bigtcp-ipv4-vxlan-ipv4.pcap",
        ("tunnel", "vxlan_vni"),
        "BIG TCP: UDP length 0 over an IPv4 total length 0; tshark does not hand the payload "
        "to VXLAN, netdiag recognises VXLAN by port",
    ),
    Quirk(
        "sv__decode-too-small__test.pcap",
        ("tcp_sack_perm",),
        "IPv6 payload length 0 and no TCP byte: tshark still calls TCP (and throws), netdiag "
        "has no TCP header to describe",
        lambda tf, ours: ours["ip_len"] == 40,
    ),
    Quirk(
        "zk__trunc__mpls-6in6-broken.pcap.gz",
        IP_COLUMNS,
        "fuzzed MPLS label stack with no bottom-of-stack bit in 8 labels: tshark keeps reading "
        "labels into the payload and finds an IPv4 header there; netdiag gives up",
    ),
    Quirk(
        "td__bigtcp-ipv6.pcap",
        TRANSPORT_COLUMNS,
        "BIG TCP IPv6 jumbogram (payload length 0, hop-by-hop jumbo option): tshark 4.0 "
        "shows no TCP field",
    ),
)


# --- running both sides ----------------------------------------------------------------------
def run_tshark(tshark: str, path: Path, cache: Path | None = None) -> list[TsharkFrame] | None:
    """tshark's view of every frame of ``path``, or None when tshark cannot read it.

    With ``cache``, tshark's output is kept under a key of the file's content, the tshark
    version, fields and preferences, so a rerun of the suite does not start tshark again.
    """
    output = _tshark_output(tshark, path, cache)
    lines = output.splitlines()
    if not lines:
        return None
    frames = []
    for line in lines:
        cells = line.split("\t")
        if len(cells) != len(TSHARK_FIELDS):
            continue
        values = {
            name: cell.split(AGGREGATOR)
            for name, cell in zip(TSHARK_FIELDS, cells, strict=True)
            if cell != ""
        }
        protocols = values.get("frame.protocols", [""])[0].split(":")
        frames.append(TsharkFrame(values, protocols))
    return frames


def _tshark_output(tshark: str, path: Path, cache: Path | None) -> str:
    cmd = [
        tshark,
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        "header=n",
        "-E",
        "quote=n",
        "-E",
        "occurrence=a",
        "-E",
        f"aggregator={AGGREGATOR}",
    ]
    for pref in TSHARK_PREFS:
        cmd += ["-o", pref]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    entry = None
    if cache is not None:
        key = hashlib.sha256(path.read_bytes())
        key.update(repr((_tshark_version(tshark), cmd[3:])).encode())
        entry = cache / f"{path.name}.{key.hexdigest()[:20]}.txt"
        if entry.exists():
            return entry.read_text(encoding="utf-8")
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    output = proc.stdout.decode("utf-8", "replace")
    if entry is not None:
        entry.write_text(output, encoding="utf-8")
    return output


@functools.cache
def _tshark_version(tshark: str) -> str:
    proc = subprocess.run([tshark, "--version"], capture_output=True, timeout=60, check=False)
    return proc.stdout.decode("utf-8", "replace").split("\n")[0]


def decode_file(path: Path) -> tuple[PacketChunk, AddressBook] | str:
    """netdiag's chunk of ``path`` or the one-line reason it refuses the file."""
    book = AddressBook()
    try:
        chunks = [chunk for chunk, _info in iter_decoded(str(path), book)]
    except NetdiagError as exc:
        return exc.reason
    return concat_chunks(chunks), book


def _ours(chunk: PacketChunk, book: AddressBook, row: int, column: str) -> object:
    col = COLUMNS_BY_NAME[column]
    value = int(chunk[column][row])
    if col.kind in ("ip", "mac", "text"):
        if value < 0:
            return None
        texts = {"ip": book.ip_texts, "mac": book.mac_texts, "text": book.texts}[col.kind]
        return texts[value]
    if value == col.absent and col.absent == -1:
        return None
    return value


def _same(column: str, ours: object, theirs: object) -> bool:
    if ours == theirs:
        return True
    if ours is None or theirs is None:
        return False
    kind = COLUMNS_BY_NAME[column].kind
    if kind == "ip":
        try:
            return ipaddress.ip_address(str(ours)) == ipaddress.ip_address(str(theirs))
        except ValueError:
            return False
    if kind == "mac":
        return str(ours).lower() == str(theirs).lower()
    return False


@dataclass
class Comparison:
    """The outcome of one file: mismatches per column, explained ones per quirk."""

    name: str
    frames: int = 0
    unexplained: list[str] = field(default_factory=list)
    per_column: Counter[str] = field(default_factory=Counter)
    quirk_hits: Counter[int] = field(default_factory=Counter)
    skipped: str = ""


def compare(
    name: str,
    path: Path,
    tshark: str,
    quirks: tuple[Quirk, ...] = QUIRKS,
    cache: Path | None = None,
) -> Comparison:
    result = Comparison(name)
    theirs = run_tshark(tshark, path, cache)
    if theirs is None:
        result.skipped = "tshark cannot read it"
        return result
    decoded = decode_file(path)
    if isinstance(decoded, str):
        result.skipped = f"netdiag refuses it: {decoded}"
        return result
    chunk, book = decoded
    row_of_frame = {int(f): i for i, f in enumerate(chunk["frame"])}
    file_quirks = [
        (i, q)
        for i, q in enumerate(quirks)
        if any(fnmatch.fnmatch(name, pattern) for pattern in q.files.split("|"))
    ]
    for tf in theirs:
        number = tf.num("frame.number")
        row = row_of_frame.get(number) if number is not None else None
        if row is None or not is_supported(int(chunk["linktype"][row])):
            continue
        result.frames += 1
        ours_row = {c: _ours(chunk, book, row, c) for c in COLUMN_ORACLE}
        for column, oracle in COLUMN_ORACLE.items():
            expected = oracle(tf)
            if expected is SKIP or _same(column, ours_row[column], expected):
                continue
            result.per_column[column] += 1
            for i, quirk in file_quirks:
                if column in quirk.columns and (quirk.when is None or quirk.when(tf, ours_row)):
                    result.quirk_hits[i] += 1
                    break
            else:
                result.unexplained.append(
                    f"{name} frame {number} {column}: netdiag {ours_row[column]!r}, "
                    f"tshark {expected!r} ({':'.join(tf.protocols)})"
                )
    return result


def test_oracle_table_covers_the_schema() -> None:
    assert set(COLUMN_ORACLE) | set(NOT_COMPARED) == set(COLUMN_NAMES)
    assert not set(COLUMN_ORACLE) & set(NOT_COMPARED)


# --- the corpus ------------------------------------------------------------------------------
def _corpus_files() -> list[Path]:
    from conftest import CORPUS

    return sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []


@pytest.fixture(scope="session")
def corpus_comparisons(
    corpus_dir: Path, tshark: str, request: pytest.FixtureRequest
) -> dict[str, Comparison]:
    files = _corpus_files()
    config_cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache = config_cache.mkdir("tshark-fields") if config_cache is not None else None
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda p: compare(p.name, p, tshark, cache=cache), files)
        return {r.name: r for r in results}


@pytest.mark.parametrize("name", [p.name for p in _corpus_files()])
def test_corpus_file_matches_tshark(name: str, corpus_comparisons: dict[str, Comparison]) -> None:
    result = corpus_comparisons[name]
    if result.skipped:
        pytest.skip(result.skipped)
    assert not result.unexplained, "\n".join(result.unexplained[:20])


def test_corpus_summary_and_no_stale_quirks(corpus_comparisons: dict[str, Comparison]) -> None:
    per_column: Counter[str] = Counter()
    hits: Counter[int] = Counter()
    frames = 0
    for result in corpus_comparisons.values():
        per_column.update(result.per_column)
        hits.update(result.quirk_hits)
        frames += result.frames
    compared = sum(1 for r in corpus_comparisons.values() if not r.skipped)
    print(f"\ncompared {frames} frames of {compared} corpus files with tshark")
    for column in COLUMN_ORACLE:
        print(f"  {column:18s} mismatches {per_column[column]}")
    for i, quirk in enumerate(QUIRKS):
        columns = "all columns" if quirk.columns == ALL_COLUMNS else ",".join(quirk.columns)
        print(f"  quirk {i} ({quirk.files}: {columns}): {hits[i]} frames")
    assert frames > 5000
    # generic quirks may only show up in the crafted captures; the others are about corpus files
    stale = [
        f"{q.files} {q.columns}: {q.reason}"
        for i, q in enumerate(QUIRKS)
        if hits[i] == 0 and q.files != "*"
    ]
    assert not stale, "quirks that explain nothing any more:\n" + "\n".join(stale)


# --- crafted captures: every decoder path, compared with no quirk allowed --------------------
def _crafted_captures() -> dict[str, tuple[int, list[bytes], dict[str, int]]]:
    """name -> (link type field, frames, pcap options) covering every layer netdiag decodes."""
    from test_decode_builders import (
        MAC_A,
        MAC_B,
        arp,
        eth,
        ext_fragment,
        ext_options,
        icmp,
        ip4,
        ipv4,
        ipv6,
        sll,
        sll2,
        tcp,
        tcp_syn_options,
        udp,
    )

    a4, b4, r4 = "10.0.0.1", "10.0.0.2", "192.0.2.254"
    a6, b6, r6 = "2001:db8::1", "2001:db8::2", "2001:db8:ff::fe"
    data = bytes(range(200))
    syn = tcp(40000, 443, seq=0xDEADBEEF, flags=0x0C2, options=tcp_syn_options(), win=64240)
    push = tcp(
        443,
        40000,
        seq=7,
        ack=0xFFFFFFF0,
        flags=0x018,
        payload=data[:100],
        options=b"\x01\x01" + b"\x08\x0a" + bytes.fromhex("0000000100000002"),
    )
    quoted_tcp = ipv4(a4, b4, 6, syn[:8], ttl=1, ident=0x4242, total_len=1500)
    quoted_udp = ipv4(a4, b4, 17, udp(33434, 33435, b"x" * 12)[:8], ttl=1, ident=7)
    ike_header = (
        bytes.fromhex("0102030405060708")
        + bytes(8)
        + bytes([33, 0x20, 34, 0x08])
        + bytes(4)
        + (28).to_bytes(4, "big")
    )
    ike_auth = (
        bytes.fromhex("0102030405060708")
        + bytes.fromhex("f1f2f3f4f5f6f7f8")
        + bytes([46, 0x20, 35, 0x20])
        + (1).to_bytes(4, "big")
        + (28).to_bytes(4, "big")
    )
    esp = (0xC0FFEE01).to_bytes(4, "big") + (42).to_bytes(4, "big") + data[:32]
    inner_frame = eth(ipv4("172.16.0.1", "172.16.0.2", 17, udp(1000, 53, b"q" * 20)), 0x0800)
    vxlan = bytes([0x08, 0, 0, 0]) + (5001 << 8).to_bytes(4, "big") + inner_frame
    geneve = bytes([0, 0, 0x65, 0x58]) + (77 << 8).to_bytes(4, "big") + inner_frame
    gre = bytes([0, 0, 0x08, 0x00]) + ipv4("172.16.1.1", "172.16.1.2", 1, icmp(8, 0, b"\0\1\0\2"))
    ipip = ipv4("172.16.2.1", "172.16.2.2", 6, tcp(1, 2))
    v6_tcp = ipv6(a6, b6, 6, push, hlim=63)
    v6_quoted = ipv6(
        a6,
        b6,
        17,
        udp(5000, 6000, b"y" * 16),
        hlim=1,
        ext=((0, ext_options()), (60, ext_options(1))),
    )
    eth_frames = [
        eth(ipv4(a4, b4, 6, syn), 0x0800, vlans=((0x8100, 10),)),
        eth(
            ipv4(a4, b4, 17, udp(5353, 5353, data[:40]), ttl=255),
            0x0800,
            vlans=((0x88A8, 100), (0x8100, 200)),
        ),
        eth(ipv4(b4, a4, 6, push, options=bytes([1, 1, 1, 0]), flags=0), 0x0800),
        eth(ipv4(a4, b4, 17, udp(1234, 53, data[:64]), flags=1, ident=99), 0x0800),
        eth(ipv4(a4, b4, 17, data[:64], flags=0, ident=99, frag_offset=72), 0x0800),
        eth(ipv4(a4, b4, 1, icmp(8, 0, b"\x12\x34\x00\x07", data[:56])), 0x0800),
        eth(ipv4(b4, a4, 1, icmp(0, 0, b"\x12\x34\x00\x07", data[:56])), 0x0800),
        eth(ipv4(r4, a4, 1, icmp(3, 4, b"\x00\x00\x05\x78", quoted_tcp)), 0x0800),
        eth(ipv4(r4, a4, 1, icmp(11, 0, b"\0\0\0\0", quoted_udp)), 0x0800),
        eth(ipv4(r4, a4, 1, icmp(5, 1, ip4("10.0.0.254"), quoted_tcp)), 0x0800),
        eth(ipv4(r4, a4, 1, icmp(3, 3, b"\0\0\0\0", quoted_udp)), 0x0800),
        eth(arp(1, MAC_A, a4, bytes(6), b4), 0x0806, dst=b"\xff" * 6),
        eth(arp(2, MAC_B, b4, MAC_A, a4), 0x0806),
        eth(ipv4(a4, b4, 50, esp), 0x0800),
        eth(ipv4(a4, b4, 17, udp(500, 500, ike_header)), 0x0800),
        eth(ipv4(a4, b4, 17, udp(4500, 4500, bytes(4) + ike_auth)), 0x0800),
        eth(ipv4(a4, b4, 17, udp(4500, 4500, b"\xff")), 0x0800),
        eth(ipv4(a4, b4, 17, udp(4500, 4500, esp)), 0x0800),
        eth(ipv4(a4, b4, 17, udp(51000, 4789, vxlan)), 0x0800),
        eth(ipv4(a4, b4, 17, udp(51000, 6081, geneve)), 0x0800),
        eth(ipv4(a4, b4, 47, gre), 0x0800),
        eth(ipv4(a4, b4, 4, ipip), 0x0800),
        eth(v6_tcp, 0x86DD),
        eth(
            ipv6(
                a6,
                b6,
                17,
                udp(1, 2, data[:30]),
                ext=((0, ext_options()), (43, bytes([0, 0, 0]) + bytes(4)), (60, ext_options())),
            ),
            0x86DD,
        ),
        eth(
            ipv6(a6, b6, 17, udp(7, 8, data[:40]), ext=((44, ext_fragment(0, True, 0x9ABCDEF0)),)),
            0x86DD,
        ),
        eth(
            ipv6(a6, b6, 17, data[:40], ext=((44, ext_fragment(1448, False, 0x9ABCDEF0)),)), 0x86DD
        ),
        eth(ipv6(a6, b6, 58, icmp(128, 0, b"\x00\x2a\x00\x01", data[:32])), 0x86DD),
        eth(ipv6(r6, a6, 58, icmp(2, 0, (1280).to_bytes(4, "big"), v6_tcp[:48])), 0x86DD),
        eth(ipv6(r6, a6, 58, icmp(3, 0, bytes(4), v6_quoted)), 0x86DD),
        eth(
            b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ipv4(a4, b4, 17, udp(9, 9, data[:20])),
            8 + 20 + 8 + 20,
        ),
        eth(
            bytes.fromhex("1100000a")
            + (len(ipv4(a4, b4, 6, push)) + 2).to_bytes(2, "big")
            + b"\x00\x21"
            + ipv4(a4, b4, 6, push),
            0x8864,
        ),
        eth(bytes.fromhex("00064140") + ipv4(a4, b4, 17, udp(3, 4, data[:24])), 0x8847),
        eth(data[:46], 0x88CC),
    ]
    truncated = [
        eth(ipv4(a4, b4, 6, syn), 0x0800),  # options cut
        eth(v6_tcp, 0x86DD),  # IPv6 header cut
        eth(ipv4(a4, b4, 6, push), 0x0800, vlans=((0x8100, 5),)),  # TCP fixed header cut
        eth(arp(1, MAC_A, a4, bytes(6), b4), 0x0806),
    ]
    sll_frames = [
        sll(ipv4(a4, b4, 6, push), 0x0800, pkttype=4),
        sll(ipv4(b4, a4, 6, syn), 0x0800, pkttype=0),
        sll(arp(1, MAC_A, a4, bytes(6), b4), 0x0806, pkttype=1),
        sll(v6_tcp, 0x86DD, pkttype=3),
    ]
    sll2_frames = [
        sll2(ipv4(a4, b4, 17, udp(53, 53, data[:20])), 0x0800, ifindex=7, pkttype=0),
        sll2(ipv4(b4, a4, 6, push), 0x0800, ifindex=2, pkttype=4),
        sll2(v6_tcp, 0x86DD, ifindex=0x01020304, pkttype=2),
    ]
    v4_udp = ipv4(a4, b4, 17, udp(1, 2, data[:10]))
    return {
        "ethernet": (1, eth_frames, {}),
        "ethernet-snaplen": (1, truncated, {"snaplen": 54}),
        "ethernet-fcs": (
            1 | 0x04000000 | (2 << 28),
            [f + b"\xde\xad\xbe\xef" for f in eth_frames[:8]],
            {},
        ),
        "linux-sll": (113, sll_frames, {}),
        "linux-sll2": (276, sll2_frames, {}),
        "null-little-endian": (
            0,
            [(2).to_bytes(4, "little") + v4_udp, (30).to_bytes(4, "little") + v6_tcp],
            {},
        ),
        "null-big-endian": (
            0,
            [(2).to_bytes(4, "big") + v4_udp, (24).to_bytes(4, "big") + v6_tcp],
            {},
        ),
        "loop": (108, [(2).to_bytes(4, "big") + v4_udp], {}),
        "raw": (101, [v4_udp, v6_tcp], {}),
        "raw-ipv4": (228, [v4_udp, ipv4(a4, b4, 6, syn)], {}),
        "raw-ipv6": (229, [v6_tcp], {}),
    }


CRAFTED = _crafted_captures()


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_capture_matches_tshark(name: str, tshark: str, tmp_path: Path) -> None:
    from test_decode_builders import write_pcap

    linkfield, frames, options = CRAFTED[name]
    path = write_pcap(tmp_path / f"{name}.pcap", linkfield, frames, **options)
    result = compare(path.name, path, tshark, quirks=GENERIC_QUIRKS)
    assert not result.skipped
    assert result.frames == len(frames)
    assert not result.unexplained, "\n".join(result.unexplained[:30])
