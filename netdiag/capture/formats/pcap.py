"""Classic libpcap files: micro- and nanosecond magic, either byte order, FCS bits of the link type.

The record walk is the one sequential step: a tight loop reads each record's captured length to
find where the next one starts and notes the record's offset; everything else (timestamps,
lengths) is then gathered column-wise with numpy from those offsets.
"""

from __future__ import annotations

import struct

import numpy as np

from netdiag.capture.formats.base import (
    ContainerReader,
    RecordColumns,
    WalkResult,
    gather_u32,
    lying_length_warning,
    max_record_bytes,
)
from netdiag.capture.records import InterfaceInfo
from netdiag.errors import CaptureError

FILE_HEADER_LEN = 24

# magic as read little-endian -> (byte order, sub-second unit in ns, record header length)
_MAGICS: dict[bytes, tuple[str, int, int]] = {
    b"\xd4\xc3\xb2\xa1": ("little", 1000, 16),  # 0xa1b2c3d4 written little-endian
    b"\xa1\xb2\xc3\xd4": ("big", 1000, 16),
    b"\x4d\x3c\xb2\xa1": ("little", 1, 16),  # 0xa1b23c4d: nanosecond timestamps
    b"\xa1\xb2\x3c\x4d": ("big", 1, 16),
    # Alexey Kuznetzov's patched libpcap: 8 more header bytes (ifindex, protocol, pkt_type)
    b"\x34\xcd\xb2\xa1": ("little", 1000, 24),
    b"\xa1\xb2\xcd\x34": ("big", 1000, 24),
}

# the upper bits of the link-type field (pcap spec, "LinkType and additional information")
_FCS_PRESENT_BIT = 0x04000000
_FCS_LEN_SHIFT = 28  # 4 bits, FCS length in 16-bit units


class PcapReader(ContainerReader):
    """A classic pcap file: one implicit interface, fixed-size record headers."""

    format_name = "pcap"

    @staticmethod
    def sniff(head: bytes) -> bool:
        return head[:4] in _MAGICS

    def _read_header(self) -> None:
        header = self.source.read(FILE_HEADER_LEN)
        self.stream_offset = len(header)
        if len(header) < FILE_HEADER_LEN:
            raise CaptureError(
                self.info.path,
                f"pcap file header cut short ({len(header)} of {FILE_HEADER_LEN} bytes)",
            )
        byte_order, unit_ns, rec_len = _MAGICS[header[:4]]
        e = "<" if byte_order == "little" else ">"
        major, minor, _zone, _sigfigs, snaplen, linkfield = struct.unpack(e + "HHiIII", header[4:])
        if major != 2:
            raise CaptureError(self.info.path, f"unsupported pcap version {major}.{minor}")
        fcs_len = -1
        if linkfield & _FCS_PRESENT_BIT:
            fcs_len = 2 * (linkfield >> _FCS_LEN_SHIFT)
        linktype = linkfield & 0xFFFF
        info = self.info
        info.byte_order = byte_order
        info.ts_resolution = "us" if unit_ns == 1000 else "ns"
        info.version = f"{major}.{minor}"
        info.interfaces = [
            InterfaceInfo(
                iface_id=0,
                linktype=linktype,
                snaplen=snaplen,
                tsresol_ns=float(unit_ns),
                fcs_len=fcs_len,
            )
        ]
        self._endian = e
        self._unit_ns = unit_ns
        self._rec_len = rec_len
        self._caplen_at = struct.Struct(e + "I")
        self._max_caplen = max_record_bytes(linktype)

    def _walk(self, buf: bytearray | memoryview, data: np.ndarray, base_offset: int) -> WalkResult:
        rec_len = self._rec_len
        unpack_caplen = self._caplen_at.unpack_from
        end = len(buf)
        pos = 0
        starts: list[int] = []
        append = starts.append
        # The hot loop: only the captured length decides where the next record starts. Up to
        # ``safe`` any believable record fits in the buffer, so the loop need not check that;
        # a lying length jumps past the end and is caught column-wise below.
        safe = end - rec_len - self._max_caplen
        while pos < safe:
            append(pos)
            pos += rec_len + unpack_caplen(buf, pos + 8)[0]
        while pos + rec_len <= end:
            nxt = pos + rec_len + unpack_caplen(buf, pos + 8)[0]
            if nxt > end:
                break
            append(pos)
            pos = nxt

        n = len(starts)
        pos_arr = np.array(starts, dtype=np.int64)
        fields = self._header_fields(data, pos_arr)
        caplen = fields[:, 2]
        stop = False
        lies = np.flatnonzero(caplen > self._max_caplen)
        if len(lies):
            n = int(lies[0])
            pos = int(pos_arr[n])
            stop = True
            self.info.warnings.append(
                lying_length_warning(self.next_frame + n, base_offset + pos, int(caplen[n]))
            )
            pos_arr, fields = pos_arr[:n], fields[:n]
        need = rec_len
        cut_reason = "record header incomplete"
        if not stop and pos + rec_len <= end:
            next_caplen = unpack_caplen(buf, pos + 8)[0]
            if next_caplen > self._max_caplen:
                stop = True
                self.info.warnings.append(
                    lying_length_warning(self.next_frame + n, base_offset + pos, next_caplen)
                )
            need = rec_len + next_caplen
            cut_reason = f"record of {next_caplen} captured bytes incomplete"

        sec = fields[:, 0].astype(np.int64)
        frac = fields[:, 1].astype(np.int64)
        run = RecordColumns(
            offsets=pos_arr + rec_len,
            caplen=fields[:, 2].astype(np.int64),
            wirelen=fields[:, 3].astype(np.int64),
            ts_ns=sec * 1_000_000_000 + frac * self._unit_ns,
            iface=np.zeros(len(pos_arr), dtype=np.int16),
        )
        return WalkResult([run], consumed=pos, need=need, stop=stop, cut_short_reason=cut_reason)

    def _header_fields(self, data: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The four 32-bit header words (sec, frac, caplen, wirelen) of each record, (n, 4)."""
        return gather_u32(data, starts, [0, 4, 8, 12], self._endian + "u4")
