"""pcapng files: every section and interface, Enhanced, Simple and obsolete Packet Blocks.

Each Section Header Block starts a new section with its own byte order and its own interface
numbering; interfaces are kept in one global list (``CaptureInfo.interfaces``, each with its
``section``) and a section's local interface ids are mapped onto it. Blocks that carry no packet
(name resolution, statistics, decryption secrets, custom blocks...) are skipped.

As for classic pcap, the sequential walk only notes where each block starts; the fields of
Enhanced Packet Blocks, by far the most common, are then gathered column-wise with numpy. Long
runs of Enhanced Packet Blocks are walked in stretches side by side (``chain_epbs``, which proves
its guesses of where stretches start); anything else (other blocks, odd lengths) by a loop that
notes each block. The rare Simple and obsolete Packet Blocks are decoded one by one while walking.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from netdiag.capture.formats.base import (
    LARGE_RECORD_BYTES,
    MAX_RECORD_BYTES,
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

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 0x00000001
PB_TYPE = 0x00000002  # obsolete Packet Block
SPB_TYPE = 0x00000003
EPB_TYPE = 0x00000006

_SHB_MAGIC = b"\n\r\r\n"
_BYTE_ORDER_MAGIC = {b"\x4d\x3c\x2b\x1a": "little", b"\x1a\x2b\x3c\x4d": "big"}
SUPPORTED_MAJOR = 1

EPB_FIXED = 32  # block header and trailer (12) + iface, ts high, ts low, caplen, origlen (20)
SPB_FIXED = 16
PB_FIXED = 32

#: no block is believed beyond this length: a bigger length field is a lie or garbage
MAX_BLOCK_BYTES = LARGE_RECORD_BYTES + 64 * 1024

_MAX_IDB_BYTES = 64 * 1024  # interface descriptions read at open time; bigger ones by the walk

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_FCSLEN = 13
IF_TSOFFSET = 14

_NS_PER_S = 1_000_000_000
_DECIMAL_NAMES = {0: "s", 3: "ms", 6: "us", 9: "ns", 12: "ps"}


@dataclass(frozen=True)
class Timescale:
    """How an interface's timestamp units become epoch nanoseconds, exactly."""

    binary: bool  # units of 2**-exponent seconds, else 10**-exponent
    exponent: int
    offset_ns: int  # if_tsoffset in nanoseconds

    @property
    def name(self) -> str:
        if self.binary:
            return f"2^-{self.exponent}"
        return _DECIMAL_NAMES.get(self.exponent, f"10^-{self.exponent}")

    @property
    def ns_per_unit(self) -> float:
        base = 2.0 if self.binary else 10.0
        return _NS_PER_S * base ** (-self.exponent)

    def to_ns(self, units: np.ndarray) -> np.ndarray:
        """Timestamp units (uint64) -> int64 ns, exactly, no float math.

        Finer-than-nanosecond units are rounded down, as Wireshark does, so that timestamps
        equal tshark's to the nanosecond.
        """
        units = units.astype(np.uint64, copy=False)
        e = self.exponent
        if not self.binary:
            if e <= 9:
                ns = units.astype(np.int64) * np.int64(10 ** (9 - e))
            elif e - 9 <= 19:
                ns = (units // np.uint64(10 ** (e - 9))).astype(np.int64)
            else:  # a unit below 1e-28 s: every 64-bit count is under a nanosecond
                ns = np.zeros(len(units), dtype=np.int64)
        elif e == 0:
            ns = units.astype(np.int64) * np.int64(_NS_PER_S)
        elif e <= 34:  # frac * 1e9 stays below 2**64
            sec = (units >> np.uint64(e)).astype(np.int64)
            frac = units & np.uint64((1 << e) - 1)
            below_s = (frac * np.uint64(_NS_PER_S)) >> np.uint64(e)
            ns = sec * np.int64(_NS_PER_S) + below_s.astype(np.int64)
        else:  # very fine binary units are rare: exact Python integers
            exact = [(int(u) * _NS_PER_S) >> e for u in units.tolist()]
            ns = np.array([v & 0xFFFFFFFFFFFFFFFF for v in exact], dtype=np.uint64).astype(np.int64)
        if self.offset_ns:
            ns = ns + np.int64(self.offset_ns)
        return ns


#: the lockstep walk (``chain_epbs``), in 32-bit words: a walker per stretch of this many words,
#: starting at the first plausible Enhanced Packet Block within the first _SEARCH_WORDS of its
#: stretch (more than a full-size Ethernet block, so that most stretches find one)
_STRETCH_WORDS = 4 * 1024
_SEARCH_WORDS = 512
#: the longest block the lockstep walk steps over; a longer one (a lie, or a huge record of a
#: USB capture) is left to the plain walk, which reports or reads it
_FAST_MAX_BLOCK = MAX_RECORD_BYTES + 64 * 1024


def chain_epbs(words: np.ndarray, stop: int) -> tuple[np.ndarray, int] | None:
    """The starts (in words) below ``stop`` of a run of Enhanced Packet Blocks that starts at
    word 0, and the first block start at or after ``stop``; None when this way cannot vouch
    for them.

    ``words`` is the chunk from a block start on, as 32-bit words in the section's byte order
    (pcapng blocks are 4-byte aligned), with ``stop + _FAST_MAX_BLOCK // 4 <= len(words)``.
    As ``pcap.chain_positions`` does for records, the run is cut into stretches walked side by
    side, one numpy step moving every walker one block on. Walker 0 starts at word 0, every
    other one at the first word of its stretch that looks like an Enhanced Packet Block (type,
    a believable length, a trailer repeating it, and so does the block it leads to). A guess is
    only trusted because the walker before lands on it exactly. Any block that is not an
    Enhanced Packet Block of a believable, aligned length gives None: sections, interfaces,
    other blocks and lies are the plain walk's business.
    """
    n_stretch = stop // _STRETCH_WORDS
    if n_stretch < 4:
        return None

    def plausible(at: np.ndarray) -> np.ndarray:
        length = words[at + 1].astype(np.int64)
        ok = (words[at] == EPB_TYPE) & (length >= EPB_FIXED) & (length <= _FAST_MAX_BLOCK)
        ok &= (length & 3) == 0
        ok[ok] = words[at[ok] + (length[ok] >> 2) - 1] == length[ok]
        return ok  # type: ignore[no-any-return]

    # the guesses: EPB type words in every stretch's first words (a strided view, no copy)
    first = np.arange(1, n_stretch, dtype=np.int64) * _STRETCH_WORDS
    window = np.lib.stride_tricks.as_strided(
        words[_STRETCH_WORDS:],
        shape=(n_stretch - 1, _SEARCH_WORDS),
        strides=(_STRETCH_WORDS * words.itemsize, words.itemsize),
        writeable=False,
    )
    hits = np.flatnonzero(window == EPB_TYPE)  # faster than a 2-D nonzero
    rows, cols = hits // _SEARCH_WORDS, hits % _SEARCH_WORDS
    at = first[rows] + cols
    fine = plausible(at)
    after = at + (words[at + 1].astype(np.int64) >> 2)
    fine &= after < stop
    fine[fine] = plausible(after[fine])
    rows, at = rows[fine], at[fine]

    def step(cur: np.ndarray) -> np.ndarray | None:
        # only lengths that would not move on are refused here; the rest is checked once after
        length = words[cur + 1]
        if length.min() < EPB_FIXED:
            return None
        return cur + (length >> 2)  # type: ignore[no-any-return]

    chain = lockstep_chain(rows, at, stop, step)
    if chain is None:
        return None
    blocks, final = chain
    length = words[blocks + 1]
    if np.any(words[blocks] != EPB_TYPE) or np.any((length > _FAST_MAX_BLOCK) | (length & 3 != 0)):
        return None
    return blocks, final


def parse_options(
    block: bytes | bytearray | memoryview, start: int, end: int, e: str
) -> list[tuple[int, bytes]]:
    """The (code, value) options between ``start`` and ``end``; stops quietly at malformed ones."""
    options: list[tuple[int, bytes]] = []
    pos = start
    while pos + 4 <= end:
        code, length = struct.unpack_from(e + "HH", block, pos)
        if code == OPT_ENDOFOPT:
            break
        value_end = pos + 4 + length
        if value_end > end:
            break
        options.append((code, bytes(block[pos + 4 : value_end])))
        pos += 4 + ((length + 3) & ~3)
    return options


def _misaligned_warning(frame: int, offset: int, length: int) -> str:
    return (
        f"frame {frame} at byte offset {offset}: block length {length} is not a multiple of 4;"
        " stopped reading"
    )


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace").rstrip("\x00")


def _comments(options: list[tuple[int, bytes]]) -> list[str]:
    return [_text(v) for code, v in options if code == OPT_COMMENT and v.strip(b"\x00")]


def _u16_at(data: np.ndarray, at: np.ndarray, e: str) -> np.ndarray:
    first, second = data[at].astype(np.int64), data[at + 1].astype(np.int64)
    return (first | second << 8) if e == "<" else (first << 8 | second)  # type: ignore[no-any-return]


def _option_comments(
    data: np.ndarray, start: np.ndarray, end: np.ndarray, e: str
) -> tuple[np.ndarray, list[str]]:
    """The comments of blocks whose options lie in ``[start, end)`` (``end - start >= 4``):
    which blocks (indices into ``start``) have any, and their text, as ``parse_options`` and
    ``_comments`` give it.

    The usual case, one comment and nothing more, is recognised column-wise and its text cut
    out directly; other option lists are parsed one by one.
    """
    code, size = _u16_at(data, start, e), _u16_at(data, start + 2, e)
    value_end = start + 4 + size
    following = start + 4 + ((size + 3) & ~3)
    more = following + 4 <= end
    more[more] = _u16_at(data, following[more], e) != OPT_ENDOFOPT
    lone = (code == OPT_COMMENT) & (value_end <= end) & ~more
    general = ~lone & (code != OPT_ENDOFOPT)
    rows: list[int] = []
    texts: list[str] = []
    raw = data.data
    for row, (at, stop) in enumerate(zip(start.tolist(), value_end.tolist(), strict=True)):
        if lone[row]:
            value = bytes(raw[at + 4 : stop])
            if value.strip(b"\x00"):
                rows.append(row)
                texts.append(_text(value))
        elif general[row]:
            found = _comments(parse_options(raw, at, int(end[row]), e))
            if found:
                rows.append(row)
                texts.append("; ".join(found))
    return np.array(rows, dtype=np.int64), texts


class PcapngReader(ContainerReader):
    """A pcapng file: sections, interfaces and packet blocks."""

    format_name = "pcapng"

    @staticmethod
    def sniff(head: bytes) -> bool:
        return head[:4] == _SHB_MAGIC

    # --- file header: the first section header block -------------------------------------------

    def _read_header(self) -> None:
        path = self.info.path
        self._section = -1
        self._local_ifaces: list[int] = []  # this section's interface id -> global index
        self._timescales: list[Timescale] = []  # per global interface
        self._max_caplen: list[int] = []  # per global interface
        self._last_ts = 0
        self._warned_spb = False
        start = self.source.read(12)
        if len(start) < 12:
            raise CaptureError(path, "pcapng file cut short in its section header block")
        byte_order = _BYTE_ORDER_MAGIC.get(bytes(start[8:12]))
        if byte_order is None:
            raise CaptureError(path, "pcapng section header has no valid byte-order magic")
        e = "<" if byte_order == "little" else ">"
        (length,) = struct.unpack_from(e + "I", start, 4)
        if length < 28 or length % 4 or length > MAX_BLOCK_BYTES:
            raise CaptureError(path, f"pcapng section header block claims {length} bytes")
        block = start + self.source.read(length - 12)
        self.stream_offset = len(block)
        if len(block) < length:
            raise CaptureError(path, "pcapng file cut short in its section header block")
        major, minor = struct.unpack_from(e + "HH", block, 12)
        if major != SUPPORTED_MAJOR:
            raise CaptureError(path, f"unsupported pcapng version {major}.{minor}")
        self.info.byte_order = byte_order
        self.info.version = f"{major}.{minor}"
        self._begin_section(block, 0, length, e)
        self._read_leading_interfaces()

    def _read_leading_interfaces(self) -> None:
        """Describe the interfaces declared right after the first section header already at open
        time (the usual layout), so that callers know the link types before the first batch."""
        while True:
            head = self.source.peek(8)
            if len(head) < 8:
                return
            btype, length = self._block_head.unpack(head)
            if btype != IDB_TYPE or length < 20 or length % 4 or length > _MAX_IDB_BYTES:
                return  # anything unusual is left to the walk, which reports it
            block = self.source.peek(length)
            if len(block) < length or self._u32.unpack_from(block, length - 4)[0] != length:
                return
            self.source.read(length)
            self.stream_offset += length
            self._add_interface(block, 0, length)

    def _begin_section(
        self, buf: bytes | bytearray | memoryview, pos: int, length: int, e: str
    ) -> None:
        self._section += 1
        self._local_ifaces = []
        self._set_byte_order(e)
        options = parse_options(buf, pos + 24, pos + length - 4, e)
        self.info.section_comments.extend(_comments(options))

    def _set_byte_order(self, e: str) -> None:
        self._e = e
        self._block_head = struct.Struct(e + "II")
        self._u32 = struct.Struct(e + "I")

    # --- the walk ------------------------------------------------------------------------------

    def _walk(self, buf: bytearray | memoryview, data: np.ndarray, base_offset: int) -> WalkResult:
        runs: list[RecordColumns] = []
        end = len(buf)
        pos = 0
        frames_done = 0  # records of this chunk in finished runs
        # the packet blocks of the current run: ``walked`` (arrays from the lockstep walk and
        # lists from the loop, in order) then ``starts``; ``noted`` blocks are in ``walked``
        walked: list[np.ndarray] = []
        noted = 0
        starts: list[int] = []
        specials: dict[int, tuple[int, int, int, int | None, int, str]] = {}
        need = 8
        cut_reason = "block header incomplete"
        stop = False
        lockstep = True  # until the lockstep walk fails once in this chunk
        warnings = self.info.warnings
        stop_note = len(warnings)  # where the walk's own reason to stop (if any) is noted
        while pos + 8 <= end:
            if lockstep:
                fast = self._lockstep(data, pos, end)
                if fast is None:
                    lockstep = False
                else:
                    walked += [np.array(starts, dtype=np.int64), fast[0]]
                    noted += len(starts) + len(fast[0])
                    starts = []
                    pos = fast[1]
            append = starts.append
            unpack_head = self._block_head.unpack_from
            # The hot loop: Enhanced Packet Blocks are only noted; checked column-wise later.
            while pos + 8 <= end:
                btype, length = unpack_head(buf, pos)
                nxt = pos + length
                if btype != EPB_TYPE or nxt > end or length < EPB_FIXED:
                    break
                append(pos)
                pos = nxt
            if pos + 8 > end:
                break
            stop_note = len(warnings)
            frame = self.next_frame + frames_done + noted + len(starts)
            btype, length = unpack_head(buf, pos)
            if btype == SHB_TYPE:
                if pos + 12 > end:
                    need = 12
                    break
                byte_order = _BYTE_ORDER_MAGIC.get(bytes(buf[pos + 8 : pos + 12]))
                if byte_order is None:
                    self.info.warnings.append(
                        f"frame {frame} at byte offset {base_offset + pos}: section header block"
                        " without a valid byte-order magic; stopped reading"
                    )
                    stop = True
                    break
                e = "<" if byte_order == "little" else ">"
                (length,) = struct.unpack_from(e + "I", buf, pos + 4)
            if length < 12 or length > MAX_BLOCK_BYTES:
                self.info.warnings.append(lying_length_warning(frame, base_offset + pos, length))
                stop = True
                break
            if length % 4:
                self.info.warnings.append(_misaligned_warning(frame, base_offset + pos, length))
                stop = True
                break
            if pos + length > end:
                need = length
                cut_reason = f"block of {length} bytes incomplete"
                break
            if btype == SHB_TYPE:
                run, ok = self._finish_run(
                    data, walked + [starts], specials, base_offset, frame - noted - len(starts)
                )
                runs.append(run)
                frames_done += len(run.offsets)
                walked, noted, starts, specials = [], 0, [], {}
                if not ok:
                    return WalkResult(runs, consumed=pos, need=0, stop=True)
                if not self._next_section(buf, pos, length, e, frame, base_offset):
                    return WalkResult(runs, consumed=pos, need=0, stop=True)
            elif btype == IDB_TYPE:
                self._add_interface(buf, pos, length)
            elif btype == EPB_TYPE:  # shorter than its fixed fields
                self.info.warnings.append(
                    f"frame {frame} at byte offset {base_offset + pos}: enhanced packet block of"
                    f" {length} bytes is too short; stopped reading"
                )
                stop = True
                break
            elif btype in (SPB_TYPE, PB_TYPE):
                record = self._small_packet_block(buf, pos, length, btype, frame, base_offset)
                if record is None:
                    stop = True
                    break
                specials[noted + len(starts)] = record
                starts.append(pos)
            pos += length
        run, ok = self._finish_run(
            data, walked + [starts], specials, base_offset, self.next_frame + frames_done
        )
        runs.append(run)
        if not ok:
            if stop:
                # a bad packet block earlier in the run is where reading really stopped: what
                # the walk found after it (garbage read as a block header) is no news
                del warnings[stop_note:-1]
            stop = True
        return WalkResult(runs, consumed=pos, need=need, stop=stop, cut_short_reason=cut_reason)

    def _lockstep(self, data: np.ndarray, pos: int, end: int) -> tuple[np.ndarray, int] | None:
        """The Enhanced Packet Blocks from ``pos`` on found by ``chain_epbs`` (byte positions)
        and where the walk goes on; None when it cannot vouch for them."""
        count = (end - pos) // 4
        stop = count - _FAST_MAX_BLOCK // 4
        if stop < 4 * _STRETCH_WORDS or pos & 3:
            return None
        words = data[pos : pos + 4 * count].view(self._e + "u4")
        found = chain_epbs(words, stop)
        if found is None:
            return None
        return found[0] * 4 + pos, found[1] * 4 + pos

    def _next_section(
        self,
        buf: bytearray | memoryview,
        pos: int,
        length: int,
        e: str,
        frame: int,
        base_offset: int,
    ) -> bool:
        if length < 28:
            self.info.warnings.append(lying_length_warning(frame, base_offset + pos, length))
            return False
        major, minor = struct.unpack_from(e + "HH", buf, pos + 12)
        if major != SUPPORTED_MAJOR:
            self.info.warnings.append(
                f"section {self._section + 1} at byte offset {base_offset + pos} has unsupported"
                f" pcapng version {major}.{minor}; stopped reading before frame {frame}"
            )
            return False
        self._begin_section(buf, pos, length, e)
        return True

    def _add_interface(self, buf: bytes | bytearray | memoryview, pos: int, length: int) -> None:
        e = self._e
        if length >= 20:
            linktype, _reserved, snaplen = struct.unpack_from(e + "HHI", buf, pos + 8)
        else:  # too short for its fields: keep the interface numbering right anyway
            linktype, snaplen = 0xFFFF, 0
        name = description = ""
        binary, exponent, offset_s, fcs_len = False, 6, 0, -1
        for code, value in parse_options(buf, pos + 16, pos + length - 4, e):
            if code == IF_NAME:
                name = _text(value)
            elif code == IF_DESCRIPTION:
                description = _text(value)
            elif code == IF_TSRESOL and value:
                binary, exponent = bool(value[0] & 0x80), value[0] & 0x7F
            elif code == IF_TSOFFSET and len(value) >= 8:
                (offset_s,) = struct.unpack_from(e + "q", value)
            elif code == IF_FCSLEN and value:
                fcs_len = value[0]
        timescale = Timescale(binary, exponent, offset_s * _NS_PER_S)
        iface = InterfaceInfo(
            iface_id=len(self.info.interfaces),
            linktype=linktype,
            name=name,
            description=description,
            snaplen=snaplen,
            tsresol_ns=timescale.ns_per_unit,
            tsoffset_s=offset_s,
            section=self._section,
            fcs_len=fcs_len,
        )
        self._local_ifaces.append(iface.iface_id)
        self.info.interfaces.append(iface)
        self._timescales.append(timescale)
        self._max_caplen.append(max_record_bytes(linktype))
        names = list(dict.fromkeys(t.name for t in self._timescales))
        self.info.ts_resolution = ",".join(names)

    def _small_packet_block(
        self,
        buf: bytearray | memoryview,
        pos: int,
        length: int,
        btype: int,
        frame: int,
        base_offset: int,
    ) -> tuple[int, int, int, int | None, int, str] | None:
        """A Simple or obsolete Packet Block as (data offset, caplen, wirelen, ts units or None,
        global interface, comment); None (with a warning) when it cannot be a packet."""
        e = self._e
        where = f"frame {frame} at byte offset {base_offset + pos}"
        if btype == SPB_TYPE:
            if length < SPB_FIXED:
                self.info.warnings.append(
                    f"{where}: simple packet block too short; stopped reading"
                )
                return None
            if not self._local_ifaces:
                self.info.warnings.append(
                    f"{where}: simple packet block before any interface description; stopped"
                    " reading"
                )
                return None
            (wirelen,) = self._u32.unpack_from(buf, pos + 8)
            iface = self._local_ifaces[0]
            caplen = min(wirelen, length - SPB_FIXED)
            snaplen = self.info.interfaces[iface].snaplen
            if snaplen:
                caplen = min(caplen, snaplen)
            if not self._warned_spb:
                self._warned_spb = True
                self.info.warnings.append(
                    f"frame {frame} and other simple packet blocks carry no timestamp: they are"
                    " given the previous packet's timestamp (0, i.e. 1970, when none precedes)"
                )
            return pos + 12, caplen, wirelen, None, iface, ""
        if length < PB_FIXED:
            self.info.warnings.append(f"{where}: packet block too short; stopped reading")
            return None
        local, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(
            e + "HHIIII", buf, pos + 8
        )
        if local >= len(self._local_ifaces):
            self.info.warnings.append(
                f"{where}: interface id {local} has no interface description block in section"
                f" {self._section}; stopped reading"
            )
            return None
        iface = self._local_ifaces[local]
        if caplen > self._max_caplen[iface]:
            self.info.warnings.append(lying_length_warning(frame, base_offset + pos, caplen))
            return None
        if caplen + PB_FIXED > length:
            self.info.warnings.append(
                f"{where}: packet claims {caplen} bytes in a {length}-byte block; stopped reading"
            )
            return None
        opt_start = pos + 28 + ((caplen + 3) & ~3)
        comment = "; ".join(_comments(parse_options(buf, opt_start, pos + length - 4, e)))
        return pos + 28, caplen, wirelen, (ts_hi << 32) | ts_lo, iface, comment

    def _finish_run(
        self,
        data: np.ndarray,
        starts: list[np.ndarray | list[int]],
        specials: dict[int, tuple[int, int, int, int | None, int, str]],
        base_offset: int,
        first_frame: int,
    ) -> tuple[RecordColumns, bool]:
        """Column-wise fields and checks of the packet blocks found in one section's run
        (``starts``: their positions, in pieces).

        Returns the records up to the first bad one and False when there was a bad one (its
        warning is in ``info.warnings``).
        """
        pos = np.concatenate([np.asarray(part, dtype=np.int64) for part in starts])
        n = len(pos)
        e = self._e
        # block length, interface, ts high, ts low, caplen, origlen of every block as if an EPB
        # (a short simple packet block at the very end of the chunk has fewer: clipped garbage)
        # Blocks are 4-byte aligned up to the first misaligned length (reported below, before
        # any trailer), so one word view serves, unless a short block ends the buffer.
        count = len(data) // 4
        if n and int(pos.max()) + 28 <= 4 * count:
            all_words = data[: 4 * count].view(e + "u4")
            fields = np.lib.stride_tricks.as_strided(
                all_words[1:], shape=(count - 6, 6), strides=(4, 4), writeable=False
            )
            words = fields[pos >> 2].astype(np.int64)
            length, local, caplen = words[:, 0], words[:, 1], words[:, 4]
            trailer = all_words[np.clip((pos + length - 4) >> 2, 0, count - 1)]
        else:
            words = gather_u32(data, pos, [4, 8, 12, 16, 20, 24], e + "u4").astype(np.int64)
            length, local, caplen = words[:, 0], words[:, 1], words[:, 4]
            trailer = gather_u32(data, pos + length - 4, [0], e + "u4").reshape(n)
        is_epb = np.ones(n, dtype=bool)
        if specials:
            is_epb[list(specials)] = False
        local_map = np.array(self._local_ifaces + [0], dtype=np.int64)
        bad_iface = is_epb & (local >= len(self._local_ifaces))
        iface = local_map[np.where(bad_iface | ~is_epb, len(self._local_ifaces), local)]
        max_caplen = np.array(self._max_caplen + [0], dtype=np.int64)[iface]
        padded = (caplen + 3) & ~3
        lie = is_epb & ~bad_iface & (caplen > max_caplen)
        too_long = is_epb & (padded + EPB_FIXED > length)
        misaligned = length % 4 != 0
        bad_trailer = trailer != length
        bad = bad_iface | lie | too_long | misaligned | bad_trailer
        ok = True
        if bad.any():
            k = int(np.argmax(bad))
            frame, offset = first_frame + k, base_offset + int(pos[k])
            where = f"frame {frame} at byte offset {offset}"
            if bad_iface[k]:
                why = (
                    f"{where}: interface id {int(local[k])} has no interface description block"
                    f" in section {self._section}; stopped reading"
                )
            elif lie[k]:
                why = lying_length_warning(frame, offset, int(caplen[k]))
            elif misaligned[k]:
                why = _misaligned_warning(frame, offset, int(length[k]))
            elif too_long[k]:
                why = (
                    f"{where}: packet claims {int(caplen[k])} bytes in a {int(length[k])}-byte"
                    " block; stopped reading"
                )
            else:
                why = (
                    f"{where}: block length {int(length[k])} does not match its trailer"
                    f" {int(trailer[k])}; stopped reading"
                )
            self.info.warnings.append(why)
            ok = False
            n = k
            pos, words, iface, is_epb = pos[:n], words[:n], iface[:n], is_epb[:n]
            length, caplen = length[:n], caplen[:n]

        offsets = pos + 28
        wirelen = words[:, 5].copy()
        caplen = caplen.copy()
        units = (words[:, 2].astype(np.uint64) << np.uint64(32)) | words[:, 3].astype(np.uint64)
        ts_ns = np.zeros(n, dtype=np.int64)
        comments: dict[int, str] = {}
        spb_rows: list[int] = []
        for row, (data_off, cap, wire, ts_units, glob, comment) in specials.items():
            if row >= n:
                continue
            offsets[row], caplen[row], wirelen[row], iface[row] = data_off, cap, wire, glob
            if ts_units is None:
                spb_rows.append(row)
            else:
                units[row] = ts_units
            if comment:
                comments[row] = comment
        has_ts = np.ones(n, dtype=bool)
        has_ts[spb_rows] = False
        present = np.bincount(iface[has_ts], minlength=len(self._timescales))
        for glob in np.flatnonzero(present).tolist():
            rows = has_ts & (iface == glob)
            ts_ns[rows] = self._timescales[glob].to_ns(units[rows])
        for row in sorted(spb_rows):  # no timestamp of its own: the previous packet's
            ts_ns[row] = ts_ns[row - 1] if row else self._last_ts
        if n:
            self._last_ts = int(ts_ns[-1])

        # EPB options: only blocks longer than their packet data have any; comments are rare
        opt_start = pos + 28 + ((caplen + 3) & ~3)
        with_options = np.flatnonzero(is_epb & (pos + length - 4 - opt_start >= 4))
        if len(with_options):
            found = _option_comments(
                data, opt_start[with_options], (pos + length - 4)[with_options], e
            )
            comments.update(zip(with_options[found[0]].tolist(), found[1], strict=True))
        run = RecordColumns(
            offsets=offsets,
            caplen=caplen,
            wirelen=wirelen,
            ts_ns=ts_ns,
            iface=iface.astype(np.int16),
            comments=comments,
        )
        return run, ok
