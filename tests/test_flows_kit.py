"""Test helper for the flow tests: packet chunks from short packet descriptions (no tests here).

``make_chunk(book, [dict(...), ...])`` fills netdiag.capture.schema.empty_chunk with the given
fields; addresses are texts interned through the AddressBook, ``flags`` is a string of TCP flag
letters (S A F R P) and frame numbers and timestamps default to the packet's position.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.schema import PacketChunk, empty_chunk

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}
IP_FIELDS = ("src", "dst", "inner_src", "inner_dst")
COLUMN_OF = {
    "src": "ip_src",
    "dst": "ip_dst",
    "inner_src": "icmp_inner_src",
    "inner_dst": "icmp_inner_dst",
    "seq": "tcp_seq",
    "ack": "tcp_ack",
    "len": "tcp_len",
    "win": "tcp_win",
    "type": "icmp_type",
    "code": "icmp_code",
    "inner_proto": "icmp_inner_proto",
    "inner_sport": "icmp_inner_sport",
    "inner_dport": "icmp_inner_dport",
}


def intern_ip(book: AddressBook, texts: list[str]) -> np.ndarray:
    """Codes for address texts (IPv4 or IPv6), through the book's column-wise interning."""
    out = np.full(len(texts), -1, dtype=np.int32)
    v4 = [i for i, t in enumerate(texts) if t and ipaddress.ip_address(t).version == 4]
    v6 = [i for i, t in enumerate(texts) if t and ipaddress.ip_address(t).version == 6]
    if v4:
        vals = np.array([int(ipaddress.ip_address(texts[i])) for i in v4], dtype=np.uint32)
        out[v4] = book.intern_ip4(vals)
    if v6:
        raw = np.array([list(ipaddress.ip_address(texts[i]).packed) for i in v6], dtype=np.uint8)
        out[v6] = book.intern_ip6(raw)
    return out


def make_chunk(
    book: AddressBook, packets: list[dict[str, Any]], first_frame: int = 1
) -> PacketChunk:
    """A PacketChunk from packet dicts (keys: src dst proto sport dport flags seq ack len win
    type code inner_* frame ts ip_len iface vlan, or any packet column name)."""
    n = len(packets)
    chunk = empty_chunk(n)
    chunk["frame"][:] = np.arange(first_frame, first_frame + n)
    chunk["ts_ns"][:] = chunk["frame"] * 1_000_000
    for field in IP_FIELDS:
        texts = [p.get(field, "") for p in packets]
        if any(texts):
            chunk[COLUMN_OF[field]][:] = intern_ip(book, texts)
    for i, p in enumerate(packets):
        proto = PROTO.get(p.get("proto", "tcp"), p.get("proto"))
        version = ipaddress.ip_address(p["src"]).version if p.get("src") else 0
        chunk["ip_version"][i] = version
        chunk["ip_proto"][i] = proto if version else -1
        if version:
            chunk["ethertype"][i] = 0x0800 if version == 4 else 0x86DD
        chunk["ip_hdr_len"][i] = 20 if version == 4 else 40
        payload = int(p.get("len", 0))
        if proto == 6:
            chunk["tcp_flags"][i] = sum(FLAG_BITS[c] for c in p.get("flags", "A"))
            chunk["tcp_len"][i] = payload
            chunk["tcp_win"][i] = p.get("win", 65535)
            chunk["tcp_seq"][i] = p.get("seq", 1000)
            chunk["tcp_ack"][i] = p.get("ack", 0)
            chunk["ip_len"][i] = chunk["ip_hdr_len"][i] + 20 + payload
        elif proto == 17:
            chunk["udp_len"][i] = 8 + payload
            chunk["ip_len"][i] = chunk["ip_hdr_len"][i] + 8 + payload
        elif proto in (1, 58):
            chunk["ip_len"][i] = chunk["ip_hdr_len"][i] + 8 + payload
        else:
            chunk["ip_len"][i] = chunk["ip_hdr_len"][i] + payload
        for key, value in p.items():
            if key in IP_FIELDS or key in ("proto", "flags", "len"):
                continue
            if key == "ts":
                chunk["ts_ns"][i] = value
                continue
            chunk[COLUMN_OF.get(key, key)][i] = value
        if proto in (6, 17) and "sport" in p:
            chunk["tcp_len" if proto == 6 else "udp_len"][i] = (
                payload if proto == 6 else 8 + payload
            )
    return chunk


def split_chunk(chunk: PacketChunk, cuts: list[int]) -> list[PacketChunk]:
    """The chunk cut at the given row positions (sorted, within 1..n-1) into several chunks."""
    bounds = [0, *sorted(set(cuts)), len(chunk["frame"])]
    return [
        {k: v[a:b].copy() for k, v in chunk.items()}
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b > a
    ]


def concat_column(chunks: list[PacketChunk], name: str) -> np.ndarray:
    return np.concatenate([c[name] for c in chunks])
