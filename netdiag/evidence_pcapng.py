"""The evidence pcapng (``--evidence FILE``): only the findings' frames, each with a comment.

The file holds every evidence frame of every finding plus the TCP handshake packets of their
connections (SYN, SYN-ACK, first ACK), merged by time stamp, one interface block per original
interface (link type, name, description, snaplen, time resolution and offset, FCS length kept), so
that Wireshark and tshark dissect it as they did the original. Each packet carries one
``opt_comment`` per finding it serves, "CODE role" (e.g. "LB001 hairpin-syn"), and the frame
number it had in its capture.

With a :class:`~netdiag.redact.Redactor` the packets are rewritten: link, ARP and IP addresses
(also in the IP header an ICMP error quotes, and the NDP target) are pseudonymised like the
report, and everything after the headers is cut off (caplen shrinks, the wire length stays), since
payloads may carry addresses and names. Checksums are adjusted incrementally (RFC 1624) for the
bytes changed: a checksum that was right stays right (for the packet as it was sent), and a
checksum left to the NIC (offload) stays as wrong as it was.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from netdiag.capture.records import InterfaceInfo
from netdiag.capture.schema import TCP_ACK, TCP_SYN
from netdiag.errors import NetdiagError

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis
    from netdiag.pipeline import LoadedCapture
    from netdiag.redact import Redactor

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_COMMENT, SHB_USERAPPL = 1, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET = 2, 3, 9, 13, 14
HANDSHAKE_ROLE = "handshake"


@dataclass
class EvidencePacket:
    capture: str
    frame: int
    comments: list[str] = field(default_factory=list)


@dataclass
class EvidenceFile:
    """What was written: packets per capture and their comments (for the CLI's message)."""

    path: str
    packets: int
    captures: list[str]


# --- which frames -------------------------------------------------------------------------------
def select_frames(analysis: Analysis) -> dict[str, dict[int, list[str]]]:
    """capture path -> frame -> comments ("CODE role"), evidence and handshake frames."""
    by_path = {cap.path: cap for cap in analysis.context.captures}
    chosen: dict[str, dict[int, list[str]]] = {}

    def add(capture: str, frame: int, comment: str) -> None:
        comments = chosen.setdefault(capture, {}).setdefault(int(frame), [])
        if comment not in comments:
            comments.append(comment)

    for finding in analysis.result.findings:
        own = {(e.capture, e.frame) for e in finding.evidence}
        for e in finding.evidence:
            add(e.capture, e.frame, f"{finding.code} {e.role}")
        for e in finding.evidence:
            cap = by_path.get(e.capture)
            if cap is None:
                continue
            for frame in handshake_frames(cap, e.frame):
                if (e.capture, frame) not in own:
                    add(e.capture, frame, f"{finding.code} {HANDSHAKE_ROLE}")
    return chosen


def handshake_frames(cap: LoadedCapture, frame: int) -> list[int]:
    """SYN, SYN-ACK and first ACK of the TCP connection of ``frame`` (as far as captured): the
    last SYN of its 4-tuple at or before it, and what answered that SYN."""
    p = cap.packets
    if len(p) == 0:
        return []
    frames = p["frame"].to_numpy(dtype=np.int64)
    hit = np.flatnonzero(frames == frame)
    if len(hit) == 0 or int(p["ip_proto"].iloc[int(hit[0])]) != 6:
        return []
    row = int(hit[0])
    src = p["ip_src"].cat.codes.to_numpy()
    dst = p["ip_dst"].cat.codes.to_numpy()
    sport = p["sport"].to_numpy(dtype=np.int64)
    dport = p["dport"].to_numpy(dtype=np.int64)
    flags = p["tcp_flags"].to_numpy(dtype=np.int64)
    a, b, pa, pb = src[row], dst[row], sport[row], dport[row]
    tcp = p["ip_proto"].to_numpy() == 6
    fwd = tcp & (src == a) & (dst == b) & (sport == pa) & (dport == pb)
    rev = tcp & (src == b) & (dst == a) & (sport == pb) & (dport == pa)
    syn = (flags >= 0) & ((flags & TCP_SYN) != 0) & ((flags & TCP_ACK) == 0)
    synack = (flags >= 0) & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    pure_ack = (flags >= 0) & ((flags & (TCP_SYN | TCP_ACK)) == TCP_ACK)
    syns = np.flatnonzero((fwd | rev) & syn & (frames <= frame))
    if len(syns) == 0:
        return []
    first = int(syns[-1])
    client_fwd = bool(fwd[first])
    to_client = rev if client_fwd else fwd
    from_client = fwd if client_fwd else rev
    out = [int(frames[first])]
    answers = np.flatnonzero(to_client & synack & (np.arange(len(p)) > first))
    if len(answers):
        out.append(int(frames[answers[0]]))
        acks = np.flatnonzero(from_client & pure_ack & (np.arange(len(p)) > answers[0]))
        if len(acks):
            out.append(int(frames[acks[0]]))
    return out


# --- writing ------------------------------------------------------------------------------------
def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _tsresol(iface: InterfaceInfo) -> tuple[bool, int]:
    """(binary, exponent) of an interface's time resolution."""
    per_s = 1e9 / iface.tsresol_ns
    decimal = round(math.log10(per_s))
    if abs(10.0**decimal - per_s) <= 1e-6 * per_s:
        return False, decimal
    return True, round(math.log2(per_s))


def _idb(iface: InterfaceInfo, redactor: Redactor | None) -> bytes:
    opts = b""
    name, description = iface.name, iface.description
    if redactor is not None:
        name, description = redactor.text(name), redactor.text(description)
    if name:
        opts += _option(IF_NAME, name.encode())
    if description:
        opts += _option(IF_DESCRIPTION, description.encode())
    binary, exponent = _tsresol(iface)
    opts += _option(IF_TSRESOL, bytes([(0x80 if binary else 0) | exponent]))
    if iface.tsoffset_s:
        opts += _option(IF_TSOFFSET, struct.pack("<q", iface.tsoffset_s))
    if iface.fcs_len >= 0:
        opts += _option(IF_FCSLEN, bytes([iface.fcs_len]))
    opts += b"\0\0\0\0"
    return _block(IDB, struct.pack("<HHI", iface.linktype & 0xFFFF, 0, iface.snaplen) + opts)


def _units(ts_ns: int, iface: InterfaceInfo) -> int:
    """An epoch-ns timestamp in the interface's units (its offset taken off again)."""
    binary, exponent = _tsresol(iface)
    # pcapng time stamps are unsigned 64-bit: a time before the epoch (seen in damaged files)
    # is written as the epoch itself
    ns = max(ts_ns - iface.tsoffset_s * 1_000_000_000, 0)
    if binary:
        units = (ns * (1 << exponent) + 999_999_999) // 1_000_000_000
    elif exponent <= 9:
        units = ns // 10 ** (9 - exponent)
    else:
        units = ns * 10 ** (exponent - 9)
    return min(units, (1 << 64) - 1)


def write_evidence(analysis: Analysis, path: str, redactor: Redactor | None = None) -> EvidenceFile:
    """Write the evidence pcapng of ``analysis`` to ``path``."""
    from netdiag import __version__
    from netdiag.capture.reader import open_capture

    chosen = select_frames(analysis)
    idbs: list[bytes] = []
    # (time stamp, capture order, frame, block): packets of all captures merged by time, like
    # mergecap, so that two capture points of one exchange read in order
    epbs: list[tuple[int, int, int, bytes]] = []
    codes = sorted({f.code for f in analysis.result.findings})
    shb_opts = _option(SHB_USERAPPL, f"netdiag {__version__} evidence".encode())
    note = "evidence of " + (", ".join(codes) if codes else "no finding")
    shb_opts += _option(OPT_COMMENT, note.encode()) + b"\0\0\0\0"
    header = _block(SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    iface_base = 0
    captures = []
    for order, cap in enumerate(analysis.context.captures):
        wanted = chosen.get(cap.path)
        if not wanted:
            continue
        captures.append(cap.path)
        records: list[tuple[int, int, int, bytes, int]] = []  # frame, iface, ts, bytes, wirelen
        with open_capture(cap.path) as capture:
            numbers = np.array(sorted(wanted), dtype=np.int64)
            for batch in capture.batches():
                frames = batch.first_frame + np.arange(len(batch), dtype=np.int64)
                for i in np.flatnonzero(np.isin(frames, numbers)):
                    start = int(batch.offsets[i])
                    data = batch.data[start : start + int(batch.caplen[i])].tobytes()
                    records.append(
                        (
                            int(frames[i]),
                            int(batch.iface[i]),
                            int(batch.ts_ns[i]),
                            data,
                            int(batch.wirelen[i]),
                        )
                    )
            interfaces = list(capture.info.interfaces)
        for iface in interfaces:
            idbs.append(_idb(iface, redactor))
        name = os.path.basename(cap.path)
        for frame, iface_id, ts, data, wirelen in records:
            iface = interfaces[iface_id]
            if redactor is not None:
                data = redact_frame(data, iface.linktype, redactor)
            units = _units(ts, iface)
            opts = b"".join(_option(OPT_COMMENT, c.encode()) for c in wanted[frame])
            opts += _option(OPT_COMMENT, f"frame {frame} of {name}".encode()) + b"\0\0\0\0"
            body = struct.pack(
                "<IIIII", iface_base + iface_id, units >> 32, units & 0xFFFFFFFF, len(data), wirelen
            )
            epbs.append(
                (ts, order, frame, _block(EPB, body + data + b"\0" * (-len(data) % 4) + opts))
            )
        iface_base += len(interfaces)
    try:
        with open(path, "wb") as out:
            out.write(header)
            for block in idbs:
                out.write(block)
            for *_, block in sorted(epbs, key=lambda p: p[:3]):
                out.write(block)
    except OSError as exc:
        raise NetdiagError(
            path, f"cannot write the evidence capture: {exc.strerror or exc}"
        ) from None
    return EvidenceFile(path, len(epbs), captures)


# --- redaction of packet bytes ------------------------------------------------------------------
def _csum_adjust(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: the checksum after 16-bit-aligned ``old`` bytes became ``new``."""
    acc = ~checksum & 0xFFFF
    for i in range(0, len(old), 2):
        o = int.from_bytes(old[i : i + 2].ljust(2, b"\0"), "big")
        n = int.from_bytes(new[i : i + 2].ljust(2, b"\0"), "big")
        acc += (~o & 0xFFFF) + n
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return ~acc & 0xFFFF


class _Packet:
    """A packet being rewritten: a bytearray and the changes each checksum must absorb."""

    def __init__(self, data: bytes) -> None:
        self.buf = bytearray(data)

    def swap(self, at: int, size: int, mapper: Callable[[bytes], bytes]) -> tuple[bytes, bytes]:
        """Replace the ``size`` bytes at ``at`` through ``mapper``; (old, new) for checksums."""
        if at + size > len(self.buf):
            return b"", b""
        old = bytes(self.buf[at : at + size])
        new = mapper(old)
        self.buf[at : at + size] = new
        return old, new

    def fix(self, at: int, changes: list[tuple[bytes, bytes]], udp: bool = False) -> None:
        """Adjust the 16-bit checksum at ``at`` for ``changes`` (UDP's 0 means 'none')."""
        if at + 2 > len(self.buf):
            return
        value = int.from_bytes(self.buf[at : at + 2], "big")
        if udp and value == 0:
            return
        for old, new in changes:
            if old:
                value = _csum_adjust(value, old, new)
        if udp and value == 0:
            value = 0xFFFF
        self.buf[at : at + 2] = value.to_bytes(2, "big")


def redact_frame(data: bytes, linktype: int, redactor: Redactor) -> bytes:
    """The frame with pseudonymised addresses and no payload (see the module docstring).

    A link type the redactor does not know is cut to nothing rather than leak.
    """
    pkt = _Packet(data)
    mac = redactor.mac_bytes
    if linktype == 1:  # Ethernet
        pkt.swap(0, 6, mac)
        pkt.swap(6, 6, mac)
        at = 12
        ethertype = int.from_bytes(data[12:14], "big") if len(data) >= 14 else -1
        while ethertype in (0x8100, 0x88A8, 0x9100) and len(data) >= at + 6:
            at += 4
            ethertype = int.from_bytes(data[at : at + 2], "big")
        end = _network(pkt, at + 2, ethertype, redactor)
    elif linktype == 113:  # Linux cooked v1
        if len(data) >= 16 and int.from_bytes(data[4:6], "big") == 6:
            pkt.swap(6, 6, mac)
        ethertype = int.from_bytes(data[14:16], "big") if len(data) >= 16 else -1
        end = _network(pkt, 16, ethertype, redactor)
    elif linktype == 276:  # Linux cooked v2
        if len(data) >= 20 and data[11] == 6:
            pkt.swap(12, 6, mac)
        ethertype = int.from_bytes(data[0:2], "big") if len(data) >= 20 else -1
        end = _network(pkt, 20, ethertype, redactor)
    elif linktype in (0, 108):  # BSD loopback: address family in host or network byte order
        family = int.from_bytes(data[0:4], "little") if len(data) >= 4 else -1
        if family > 0xFFFF:
            family = int.from_bytes(data[0:4], "big")
        ethertype = 0x0800 if family == 2 else (0x86DD if family in (10, 24, 28, 30) else -1)
        end = _network(pkt, 4, ethertype, redactor)
    elif linktype in (12, 101, 228, 229):  # raw IP
        version = data[0] >> 4 if data else 0
        end = _network(pkt, 0, {4: 0x0800, 6: 0x86DD}.get(version, -1), redactor)
    else:
        end = 0
    return bytes(pkt.buf[: min(end, len(pkt.buf))])


def _network(pkt: _Packet, at: int, ethertype: int, redactor: Redactor) -> int:
    """Rewrite the network layer at ``at``; returns where the kept bytes end."""
    ip = redactor.ip_bytes
    data = pkt.buf
    if ethertype == 0x0806:  # ARP for IPv4 over Ethernet
        if len(data) >= at + 28 and data[at + 4] == 6 and data[at + 5] == 4:
            pkt.swap(at + 8, 6, redactor.mac_bytes)
            pkt.swap(at + 14, 4, ip)
            pkt.swap(at + 18, 6, redactor.mac_bytes)
            pkt.swap(at + 24, 4, ip)
            return at + 28
        return at
    if ethertype == 0x0800:
        return _ipv4(pkt, at, redactor)
    if ethertype == 0x86DD:
        return _ipv6(pkt, at, redactor)
    return at


def _ipv4(pkt: _Packet, at: int, redactor: Redactor, quoted: bool = False) -> int:
    data = pkt.buf
    if len(data) < at + 20 or data[at] >> 4 != 4:
        return at
    ihl = (data[at] & 0x0F) * 4
    changes = [pkt.swap(at + 12, 4, redactor.ip_bytes), pkt.swap(at + 16, 4, redactor.ip_bytes)]
    pkt.fix(at + 10, changes)
    proto = data[at + 9]
    first_fragment = (int.from_bytes(data[at + 6 : at + 8], "big") & 0x1FFF) == 0
    l4 = at + ihl
    if not first_fragment:
        return l4
    return _transport(pkt, l4, proto, changes, redactor, quoted, v6=False)


def _ipv6(pkt: _Packet, at: int, redactor: Redactor, quoted: bool = False) -> int:
    data = pkt.buf
    if len(data) < at + 40 or data[at] >> 4 != 6:
        return at
    changes = [pkt.swap(at + 8, 16, redactor.ip_bytes), pkt.swap(at + 24, 16, redactor.ip_bytes)]
    nh, pos = data[at + 6], at + 40
    while nh in (0, 43, 60, 44) and len(data) >= pos + 8:  # extension headers
        if nh == 44:
            if int.from_bytes(data[pos + 2 : pos + 4], "big") & 0xFFF8:
                return pos + 8  # not the first fragment: no transport header
            nh, pos = data[pos], pos + 8
        else:
            nh, pos = data[pos], pos + (data[pos + 1] + 1) * 8
    return _transport(pkt, pos, nh, changes, redactor, quoted, v6=True)


def _transport(
    pkt: _Packet,
    at: int,
    proto: int,
    pseudo: list[tuple[bytes, bytes]],
    redactor: Redactor,
    quoted: bool,
    v6: bool,
) -> int:
    """Rewrite and cut after the transport header; the pseudo-header changes go into its checksum."""
    data = pkt.buf
    if proto == 6:
        if len(data) >= at + 20:
            pkt.fix(at + 16, pseudo)
            return at + (data[at + 12] >> 4) * 4
        return min(len(data), at + 8) if quoted else at
    if proto == 17:
        pkt.fix(at + 6, pseudo, udp=True)
        return at + 8
    if proto == 50:  # ESP: SPI and sequence number
        return at + 8
    if proto == 1 and len(data) >= at + 8:
        kind = data[at]
        changes: list[tuple[bytes, bytes]] = []
        end = at + 8
        if kind == 5:  # redirect: the gateway address
            changes.append(pkt.swap(at + 4, 4, redactor.ip_bytes))
        if kind in (3, 5, 11, 12) and not quoted:
            before = bytes(data[at + 8 :])
            end = _ipv4(pkt, at + 8, redactor, quoted=True)
            changes.append((before, bytes(data[at + 8 : at + 8 + len(before)])))
        pkt.fix(at + 2, changes)
        return end
    if proto == 58 and len(data) >= at + 8:
        kind = data[at]
        changes = list(pseudo)
        end = at + 8
        if kind in (1, 2, 3, 4) and not quoted:
            before = bytes(data[at + 8 :])
            end = _ipv6(pkt, at + 8, redactor, quoted=True)
            changes.append((before, bytes(data[at + 8 : at + 8 + len(before)])))
        elif kind in (135, 136, 137) and len(data) >= at + 24:  # NDP target (options dropped)
            changes.append(pkt.swap(at + 8, 16, redactor.ip_bytes))
            end = at + 24
        pkt.fix(at + 2, changes)
        return end
    return at
