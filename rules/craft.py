"""Hand-crafted frames for rule fixtures that a kernel in a namespace cannot produce on demand.

Each rule folder's ``fixtures/make.py`` imports this module (by path) and writes small classic
pcap files; the pcaps are committed next to the script that made them. Only what fixtures need:
Ethernet, ARP, IPv4 with TCP/ICMP; checksums are computed so that tshark shows no errors.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

BROADCAST = "ff:ff:ff:ff:ff:ff"


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def ip4(text: str) -> bytes:
    return socket.inet_aton(text)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(src: str, dst: str, ethertype: int, payload: bytes) -> bytes:
    frame = mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def arp(op: int, sha: str, spa: str, tha: str, tpa: str, eth_dst: str | None = None) -> bytes:
    """An ARP request (op 1) or reply (op 2) in an Ethernet frame from ``sha``."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac(sha) + ip4(spa) + mac(tha) + ip4(tpa)
    return ethernet(sha, eth_dst or (BROADCAST if op == 1 else tha), 0x0806, body)


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, ident: int = 1) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        0x4000,
        ttl,
        proto,
        0,
        ip4(src),
        ip4(dst),
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + payload


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int = 0,
    flags: int = 0x02,
    win: int = 64240,
) -> bytes:
    """A TCP segment without options or payload (checksum over the pseudo-header)."""
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(seg))
    return seg[:16] + struct.pack("!H", _checksum(pseudo + seg)) + seg[18:]


def icmp(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    msg = struct.pack("!BBH", icmp_type, code, 0) + rest + body
    return msg[:2] + struct.pack("!H", _checksum(msg)) + msg[4:]


def write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> None:
    """Classic pcap, Ethernet link type, microsecond timestamps."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, frame in frames:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(out))
