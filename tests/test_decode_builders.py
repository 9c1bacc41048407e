"""Packet and capture builders for the decoder tests (no tests here): bytes in, batches out."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import numpy as np

from netdiag.capture.records import CaptureInfo, InterfaceInfo, RecordBatch

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def eth(
    payload: bytes,
    ethertype: int,
    vlans: tuple[tuple[int, int], ...] = (),
    dst: bytes = MAC_B,
    src: bytes = MAC_A,
) -> bytes:
    """Ethernet frame; ``vlans`` is a stack of (tag ethertype, vlan id), outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    if vlans:
        # each tag's TCI is followed by the next ethertype: rebuild as TPID, TCI pairs
        tags = b""
        for i, (tpid, vid) in enumerate(vlans):
            tags += (struct.pack("!H", tpid) if i == 0 else b"") + struct.pack("!H", vid)
            nxt = vlans[i + 1][0] if i + 1 < len(vlans) else ethertype
            tags += struct.pack("!H", nxt)
        return dst + src + tags + payload
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ident: int = 1,
    flags: int = 2,
    frag_offset: int = 0,
    options: bytes = b"",
    total_len: int | None = None,
) -> bytes:
    ihl = (20 + len(options)) // 4
    total = total_len if total_len is not None else 20 + len(options) + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        total,
        ident,
        (flags << 13) | (frag_offset // 8),
        ttl,
        proto,
        0,
        ip4(src),
        ip4(dst),
    )
    return header + options + payload


def ipv6(
    src: str,
    dst: str,
    nh: int,
    payload: bytes,
    *,
    hlim: int = 64,
    ext: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """IPv6 packet; ``ext`` is a chain of (header type, header bytes without next header)."""
    body = b""
    first = ext[0][0] if ext else nh
    for i, (_kind, raw) in enumerate(ext):
        following = ext[i + 1][0] if i + 1 < len(ext) else nh
        body += bytes([following]) + raw
    body += payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), first, hlim, ip6(src), ip6(dst)) + body


def ext_options(length_units: int = 0) -> bytes:
    """Hop-by-hop / destination options header body (after next header) of 8*(n+1) bytes."""
    return bytes([length_units]) + bytes([1, 4 + 8 * length_units]) + bytes(4 + 8 * length_units)


def ext_fragment(offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BHI", 0, offset | int(more), ident)


def tcp(
    sport: int,
    dport: int,
    *,
    seq: int = 1000,
    ack: int = 0,
    flags: int = 0x002,
    win: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    options += b"\x00" * (-len(options) % 4)
    doff = (20 + len(options)) // 4
    header = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (doff << 12) | flags, win, 0, 0)
    return header + options + payload


def tcp_syn_options(mss: int = 1460, wscale: int = 7, tsval: int = 12345, tsecr: int = 0) -> bytes:
    return (
        struct.pack("!BBH", 2, 4, mss)
        + b"\x04\x02"
        + struct.pack("!BBII", 8, 10, tsval, tsecr)
        + b"\x01"
        + struct.pack("!BBB", 3, 3, wscale)
    )


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(kind: int, code: int, rest: bytes = b"\x00" * 4, payload: bytes = b"") -> bytes:
    return struct.pack("!BBH", kind, code, 0) + rest + payload


def arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + ip4(spa) + tha + ip4(tpa)


def sll(
    payload: bytes, protocol: int, *, pkttype: int = 0, hatype: int = 1, addr: bytes = MAC_A
) -> bytes:
    return (
        struct.pack("!HHH", pkttype, hatype, len(addr))
        + addr.ljust(8, b"\0")[:8]
        + struct.pack("!H", protocol)
        + payload
    )


def sll2(
    payload: bytes,
    protocol: int,
    *,
    ifindex: int = 3,
    pkttype: int = 0,
    hatype: int = 1,
    addr: bytes = MAC_A,
) -> bytes:
    return (
        struct.pack("!HHIHBB", protocol, 0, ifindex, hatype, pkttype, len(addr))
        + addr.ljust(8, b"\0")[:8]
        + payload
    )


def pcap_bytes(
    linktype: int, frames: list[bytes], *, snaplen: int = 65535, fcs_bits: int = 0
) -> bytes:
    """A little-endian microsecond pcap; frames longer than snaplen are cut (wirelen kept)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype | fcs_bits)]
    for i, frame in enumerate(frames):
        cut = frame[:snaplen]
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 1000 * i, len(cut), len(frame)) + cut)
    return b"".join(out)


def write_pcap(path: Path, linktype: int, frames: list[bytes], **kwargs: int) -> Path:
    path.write_bytes(pcap_bytes(linktype, frames, **kwargs))
    return path


def make_batch(
    frames: list[bytes],
    linktype: int = 1,
    *,
    caplens: list[int] | None = None,
    ifaces: list[int] | None = None,
    interfaces: list[InterfaceInfo] | None = None,
    gap: int = 5,
) -> tuple[RecordBatch, CaptureInfo]:
    """Records packed into one buffer with ``gap`` filler bytes between them (like headers)."""
    caplens = caplens if caplens is not None else [len(f) for f in frames]
    chunks, offsets, pos = [], [], 0
    for frame, cap in zip(frames, caplens, strict=True):
        chunks.append(b"\xee" * gap)
        pos += gap
        offsets.append(pos)
        chunks.append(frame[:cap])
        pos += cap
    data = np.frombuffer(b"".join(chunks), dtype=np.uint8).copy()
    n = len(frames)
    batch = RecordBatch(
        data=data,
        offsets=np.array(offsets, dtype=np.int64),
        caplen=np.array(caplens, dtype=np.int64),
        wirelen=np.array([len(f) for f in frames], dtype=np.int64),
        ts_ns=np.arange(n, dtype=np.int64) * 1000 + 1_700_000_000_000_000_000,
        iface=np.array(ifaces if ifaces is not None else [0] * n, dtype=np.int16),
        first_frame=1,
    )
    info = CaptureInfo(
        path="<test>",
        format="pcap",
        interfaces=interfaces or [InterfaceInfo(iface_id=0, linktype=linktype)],
    )
    return batch, info
