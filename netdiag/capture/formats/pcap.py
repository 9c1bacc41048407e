"""Classic libpcap files: micro- and nanosecond magic, either byte order, FCS bits of the link type.

The record walk is the one sequential step: each record's captured length says where the next one
starts. Most of a big chunk is walked in stretches side by side with numpy (``chain_positions``,
which proves its guesses of where stretches start); the rest, and any chunk it cannot vouch for,
by a tight loop noting each record's offset. Everything else (timestamps, lengths) is then
gathered column-wise with numpy from those offsets.
"""

from __future__ import annotations

import struct

import numpy as np

from netdiag.capture.formats.base import (
    ContainerReader,
    RecordColumns,
    WalkResult,
    gather_u32,
    lockstep_chain,
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


#: the lockstep walk (``chain_positions``): a walker per stretch of this many bytes, starting
#: at the first plausible record header within the first _SEARCH_BYTES of its stretch (more
#: than an Ethernet record, so that most stretches find one)
_STRETCH_BYTES = 32 * 1024
_SEARCH_BYTES = 1600
#: a plausible header's seconds lie this close to the chunk's first record's (a miss only
#: costs speed: the walker before covers that stretch too)
_PLAUSIBLE_SECONDS = 24 * 3600


def chain_positions(
    data: np.ndarray, stop: int, rec_len: int, endian: str, unit_ns: int, max_caplen: int
) -> tuple[np.ndarray, int] | None:
    """The record starts below ``stop`` of a chunk whose first record starts at byte 0, and
    the first start at or after ``stop``; None when this way cannot vouch for them.

    The walk from record to record is sequential; here the chunk is cut into stretches
    walked side by side, one numpy step moving every walker one record on. Walker 0 starts
    at 0, every other one at the first byte of its stretch that looks like a record header
    (seconds near the first record's, sub-second part below a second, captured length
    believable and not above the wire length, and the same for the header it leads to). A
    guess is only trusted because the walker before lands on it exactly: then, from 0 on,
    every walker's start and every record it finds lie on the one chain of records. A walker
    missing its successor's start gives None. A length over ``max_caplen`` (a lie) is left
    in the chain for the caller's check of every captured length, which stops there as the
    plain walk does. Walkers only read below ``stop``, and
    ``stop + rec_len + max_caplen <= len(data)``.
    """
    n_stretch = stop // _STRETCH_BYTES
    if n_stretch < 4:
        return None
    words = np.ndarray((len(data) - 3,), dtype=endian + "u4", buffer=data, strides=(1,))
    sec0 = int(words[0])
    frac_limit = 1_000_000_000 // unit_ns

    def plausible(at: np.ndarray) -> np.ndarray:
        ok = np.abs(words[at].astype(np.int64) - sec0) <= _PLAUSIBLE_SECONDS
        ok &= words[at + 4] < frac_limit
        caplen = words[at + 8]
        ok &= (caplen <= words[at + 12]) & (caplen <= max_caplen)
        return ok  # type: ignore[no-any-return]

    # the guesses; first the bytes that can be the top byte of such seconds, on a strided view
    # of every stretch's first bytes (a byte compare is much cheaper than an unaligned word's)
    low, high = (sec0 - _PLAUSIBLE_SECONDS) & 0xFFFFFFFF, (sec0 + _PLAUSIBLE_SECONDS) & 0xFFFFFFFF
    top_at = 3 if endian == "<" else 0
    window = np.lib.stride_tricks.as_strided(
        data[_STRETCH_BYTES + top_at :],
        shape=(n_stretch - 1, _SEARCH_BYTES),
        strides=(_STRETCH_BYTES, 1),
        writeable=False,
    )
    top = window == np.uint8(low >> 24)
    if high >> 24 != low >> 24:
        top |= window == np.uint8(high >> 24)
    hits = np.flatnonzero(top)  # faster than a 2-D nonzero
    rows = hits // _SEARCH_BYTES
    at = (rows + 1) * _STRETCH_BYTES + hits % _SEARCH_BYTES
    near = (words[at] - np.uint32(low)) <= np.uint32(2 * _PLAUSIBLE_SECONDS)  # wraps: both bounds
    rows, at = rows[near], at[near]
    fine = plausible(at)
    after = at + rec_len + words[at + 8].astype(np.int64)
    fine &= after < stop
    fine[fine] = plausible(after[fine])
    rows, at = rows[fine], at[fine]

    def step(cur: np.ndarray) -> np.ndarray:
        return cur + rec_len + words[cur + 8]  # type: ignore[no-any-return]

    # A lying length makes its walker jump far past its stretch, so that it misses its
    # successor's start (None); on the last stretch the jump ends the chain, and the caller's
    # check of every captured length reports it as the plain walk would.
    return lockstep_chain(rows, at, stop, step)


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
        self._caplen_in_header = struct.Struct(e + "8xI")
        self._max_caplen = max_record_bytes(linktype)

    def _walk(self, buf: bytearray | memoryview, data: np.ndarray, base_offset: int) -> WalkResult:
        rec_len = self._rec_len
        unpack_caplen = self._caplen_at.unpack_from
        caplen_of = self._caplen_in_header.unpack_from  # the same field, from the header start
        end = len(buf)
        pos = 0
        starts: list[int] = []
        append = starts.append
        # Most of a big chunk: walked in stretches side by side, when that can vouch for the
        # records it finds (else, and for the rest, the loops below do it record by record).
        head = np.zeros(0, dtype=np.int64)
        fast = chain_positions(
            data,
            end - rec_len - self._max_caplen,
            rec_len,
            self._endian,
            self._unit_ns,
            self._max_caplen,
        )
        if fast is not None:
            head, pos = fast
        # The hot loop: only the captured length decides where the next record starts. Up to
        # ``safe`` any 8 believable records fit in the buffer, so the loop need not check that
        # (and is unrolled 8 times: the loop test costs as much as a step); a lying length
        # jumps ahead, and is caught column-wise below. A jump past the buffer's end makes the
        # next read fail: the position appended for it is then dropped.
        safe = end - 8 * (rec_len + self._max_caplen)
        try:
            while pos < safe:
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
                append(pos)
                pos += rec_len + caplen_of(buf, pos)[0]
        except struct.error:
            starts.pop()
        safe = end - rec_len - self._max_caplen
        while pos < safe:
            append(pos)
            pos += rec_len + caplen_of(buf, pos)[0]
        while pos + rec_len <= end:
            nxt = pos + rec_len + unpack_caplen(buf, pos + 8)[0]
            if nxt > end:
                break
            append(pos)
            pos = nxt

        pos_arr = np.concatenate([head, np.array(starts, dtype=np.int64)])
        n = len(pos_arr)
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
