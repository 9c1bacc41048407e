"""Capture file writers: classic pcap (us/ns, either byte order) and pcapng, fed plan chunks.

Each writer turns a chunk of the packet plan into frames with :func:`packets.build_rows`, fills the
record header and trailer of every row column-wise, then cuts the rows to their true lengths with
one boolean mask and writes the chunk as one buffer. Memory is bounded by the chunk, not the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from netdiag.synth.packets import HostTable, PayloadBlock, build_rows


def _ts_parts(ts_ns: np.ndarray, units_per_s: int) -> tuple[np.ndarray, np.ndarray]:
    return ts_ns // 1_000_000_000, (ts_ns % 1_000_000_000) // (1_000_000_000 // units_per_s)


def _u32_columns(values: list[np.ndarray], big_endian: bool) -> np.ndarray:
    """Rows of consecutive 32-bit fields as bytes, shape (n, 4 * len(values))."""
    arr = np.stack([np.asarray(v, dtype=np.int64) & 0xFFFFFFFF for v in values], axis=1)
    return arr.astype(">u4" if big_endian else "<u4").view(np.uint8)


def _put_at(rows: np.ndarray, pos: np.ndarray, data: np.ndarray) -> None:
    """Write ``data[i]`` (shape (n, m)) at column ``pos[i]`` of row i."""
    m = data.shape[1]
    rows[np.arange(len(rows))[:, None], pos[:, None] + np.arange(m)] = data


def _cut(rows: np.ndarray, rec_len: np.ndarray) -> np.ndarray:
    """The concatenation of each row's first ``rec_len`` bytes."""
    mask = np.arange(rows.shape[1]) < rec_len[:, None]
    return rows[mask]


class PcapWriter:
    """Classic libpcap file with one link type."""

    def __init__(
        self,
        out: BinaryIO,
        linktype: int,
        *,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = 262144,
    ) -> None:
        self.out = out
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.big_endian = big_endian
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        e = ">" if big_endian else "<"
        out.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, plan: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock) -> int:
        n = len(plan["kind"])
        if n == 0:
            return 0
        if np.any(plan["link"] != self.linktype):
            raise ValueError("a classic pcap file holds one link type; the plan has others")
        rows, flen = build_rows(plan, hosts, block, lead=16, tail=0)
        sec, frac = _ts_parts(plan["ts_ns"], 1_000_000_000 if self.nanosecond else 1_000_000)
        rows[:, :16] = _u32_columns([sec, frac, flen, flen], self.big_endian)
        data = _cut(rows, 16 + flen)
        self.out.write(data.tobytes())
        return int(data.size)


@dataclass(frozen=True)
class Interface:
    """One pcapng interface description block."""

    linktype: int
    name: str
    description: str = ""
    tsresol: int = 6  # timestamp units are 10**-tsresol seconds
    snaplen: int = 262144


def _option(code: int, value: bytes, e: str) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(btype: int, body: bytes, e: str) -> bytes:
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


class PcapngWriter:
    """pcapng file: one section, several interfaces, enhanced packet blocks with comments."""

    def __init__(
        self,
        out: BinaryIO,
        interfaces: list[Interface],
        *,
        comments: list[str],
        section_comment: str = "",
        big_endian: bool = False,
    ) -> None:
        self.out = out
        self.interfaces = interfaces
        self.comments = [c.encode() for c in comments]
        self.big_endian = big_endian
        e = self.e = ">" if big_endian else "<"
        opts = _option(4, b"netdiag synth", e)
        if section_comment:
            opts += _option(1, section_comment.encode(), e)
        opts += b"\0\0\0\0"
        out.write(_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts, e))
        for itf in interfaces:
            opts = _option(2, itf.name.encode(), e)
            if itf.description:
                opts += _option(3, itf.description.encode(), e)
            opts += _option(9, bytes([itf.tsresol]), e) + b"\0\0\0\0"
            out.write(_block(1, struct.pack(e + "HHI", itf.linktype, 0, itf.snaplen) + opts, e))
        self._links = np.array([i.linktype for i in interfaces])
        self._units = np.array([10**i.tsresol for i in interfaces], dtype=np.int64)

    def write(self, plan: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock) -> int:
        n = len(plan["kind"])
        if n == 0:
            return 0
        iface = plan["iface"].astype(np.int64)
        if np.any(self._links[iface] != plan["link"]):
            raise ValueError("plan link types do not match the pcapng interfaces")
        comment = plan["comment"].astype(np.int64)
        clen = np.array([len(c) for c in self.comments] + [0], dtype=np.int64)[comment]
        opt_len = np.where(comment >= 0, 4 + clen + (-clen % 4) + 4, 0)
        max_tail = 3 + int(opt_len.max()) + 4
        rows, flen = build_rows(plan, hosts, block, lead=28, tail=max_tail)
        pad = -flen % 4
        total = 28 + flen + pad + opt_len + 4
        units = self._units[iface]
        # integer timestamp in the interface's units, split into high and low 32 bits
        ts = (plan["ts_ns"] // 1_000_000_000) * units + (
            (plan["ts_ns"] % 1_000_000_000) * units // 1_000_000_000
        )
        rows[:, :28] = _u32_columns(
            [np.full(n, 6), total, iface, ts >> 32, ts & 0xFFFFFFFF, flen, flen], self.big_endian
        )
        end = 28 + flen
        _put_at(rows, end, np.zeros((n, 3), dtype=np.uint8))
        end = end + pad
        for c in np.unique(comment[comment >= 0]).tolist():
            sel = np.flatnonzero(comment == c)
            text = self.comments[c]
            body = _option(1, text, self.e) + b"\0\0\0\0"
            sub = rows[sel]
            _put_at(sub, end[sel], np.tile(np.frombuffer(body, dtype=np.uint8), (len(sel), 1)))
            rows[sel] = sub
        _put_at(rows, total - 4, _u32_columns([total], self.big_endian))
        data = _cut(rows, total)
        self.out.write(data.tobytes())
        return int(data.size)
