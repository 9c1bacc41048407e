"""The interface every capture container reader implements, and the chunk loop they share.

A container reader turns a decompressed byte stream into :class:`RecordBatch` objects. The stream
is read ``chunk_bytes`` at a time; the reader's ``_walk`` finds the records lying wholly inside a
chunk and says how many bytes it used, the partial record at the end is carried over into the
next chunk. Memory therefore stays at about one chunk (plus what the consumer keeps), whatever
the file size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from netdiag.capture.compression import ByteSource
from netdiag.capture.records import CaptureInfo, RecordBatch

#: Largest record accepted for ordinary link types: libpcap's and Wireshark's 256 KiB maximum
#: plus slack for writers that add a little. A length field above this is taken for a lie.
MAX_RECORD_BYTES = 256 * 1024 + 64 * 1024

#: Link types whose records legitimately exceed 256 KiB (Linux USB, USBPcap, D-Bus): a record
#: up to this size is accepted for them; still bounded so that a lying length never allocates GBs.
LARGE_RECORD_BYTES = 16 * 1024 * 1024
LARGE_RECORD_LINKTYPES = frozenset({189, 220, 231, 249})

DEFAULT_CHUNK_BYTES = 16 << 20


def max_record_bytes(linktype: int) -> int:
    """The largest captured length believed for a record of this link type."""
    return LARGE_RECORD_BYTES if linktype in LARGE_RECORD_LINKTYPES else MAX_RECORD_BYTES


def gather_u32(
    data: np.ndarray, starts: np.ndarray, byte_offsets: list[int], dtype: str
) -> np.ndarray:
    """The 32-bit words at ``starts + offset`` for each offset, shape (n, len(byte_offsets)).

    ``dtype`` is "<u4" or ">u4". When every position is 4-byte aligned (pcapng blocks always
    are) one aligned word view gives each field in a single gather; otherwise (pcap records
    start anywhere) the four bytes are gathered and combined, which numpy does faster than
    reading words through an unaligned view. Positions past the end of ``data`` are clipped:
    callers only use words they know to be inside.
    """
    n = len(starts)
    out = np.empty((n, len(byte_offsets)), dtype=np.uint32)
    if n == 0:
        return out
    first, stop = min(byte_offsets), max(byte_offsets) + 4
    if stop - first <= 32 and first >= 0 and int(starts.max()) + stop <= len(data):
        # Usual case: one gather of the header's bytes for each record (a contiguous (n, width)
        # copy), then the words are views into that copy, byte order applied once.
        width = stop - first
        window = np.lib.stride_tricks.as_strided(
            data[first:], shape=(len(data) - stop + 1, width), strides=(1, 1), writeable=False
        )
        rows = window[starts]
        if list(byte_offsets) == list(range(first, stop, 4)):  # adjacent words: one view
            return rows.view(dtype).astype(np.uint32)
        for j, offset in enumerate(byte_offsets):
            col = offset - first
            out[:, j] = rows[:, col : col + 4].copy().view(dtype).reshape(n)
        return out
    last = len(data) - 1
    if not np.any(starts & 3) and len(data) >= 4:
        words = np.frombuffer(data, dtype=dtype, count=len(data) // 4)
        base = starts >> 2
        for j, offset in enumerate(byte_offsets):
            out[:, j] = words[np.minimum(base + (offset >> 2), len(words) - 1)]
        return out
    shifts = (0, 8, 16, 24) if dtype.startswith("<") else (24, 16, 8, 0)
    for j, offset in enumerate(byte_offsets):
        at = starts + offset
        value = np.zeros(n, dtype=np.uint32)
        for b, shift in enumerate(shifts):
            value |= data[np.minimum(at + b, last)].astype(np.uint32) << np.uint32(shift)
        out[:, j] = value
    return out


def lockstep_chain(
    rows: np.ndarray,
    guesses: np.ndarray,
    stop: int,
    step: Callable[[np.ndarray], np.ndarray | None],
) -> tuple[np.ndarray, int] | None:
    """The chain of record starts from 0 to ``stop``, walked in stretches side by side.

    ``guesses`` are plausible record starts, in order, with ``rows`` the stretch each lies in;
    the first guess of each stretch starts a walker there (walker 0 starts at 0). One numpy step
    (``step``: positions -> the next records' positions, or None to give up) moves every walker
    one record on, until each reaches its successor's start. A guess is only trusted because the
    walker before lands on it exactly: then, from 0 on, every walker's start and every record it
    finds lie on the one chain. Returns the sorted starts and the first position at or after
    ``stop``; None when a walker misses its successor's start or ``step`` gives up.
    """
    keep = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.zeros(0, dtype=bool)
    starts = np.r_[np.int64(0), guesses[keep]]
    limits = np.r_[starts[1:], np.int64(stop)]
    # the walkers still walking: where they are, where they must stop, which they are
    final = np.empty(len(starts), dtype=np.int64)
    cur, limit, walker = starts, limits, np.arange(len(starts))
    found: list[np.ndarray] = []
    while len(cur):
        found.append(cur)
        moved = step(cur)
        if moved is None:
            return None
        cur = moved
        done = cur >= limit
        if done.any():
            final[walker[done]] = cur[done]
            going = ~done
            cur, limit, walker = cur[going], limit[going], walker[going]
    if np.any(final[:-1] != limits[:-1]):
        return None
    return np.sort(np.concatenate(found)), int(final[-1])


def lying_length_warning(frame: int, offset: int, claimed: int) -> str:
    return f"frame {frame} at byte offset {offset}: record claims {claimed} bytes; stopped reading"


@dataclass
class RecordColumns:
    """Records found by one walk step, before they get frame numbers (parallel int arrays)."""

    offsets: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    ts_ns: np.ndarray
    iface: np.ndarray
    comments: dict[int, str] = field(default_factory=dict)  # index in this run -> comment


@dataclass
class WalkResult:
    """What ``_walk`` found in one chunk.

    ``consumed`` bytes of the chunk are done with; ``need`` is how many bytes, counted from
    ``consumed``, the next record needs to be complete (so the next chunk is big enough).
    ``stop`` ends reading (a warning saying why is already in ``info.warnings``).
    """

    runs: list[RecordColumns]
    consumed: int
    need: int
    stop: bool = False
    cut_short_reason: str = ""  # what the partial record at ``consumed`` was, for the EOF warning


class ContainerReader(ABC):
    """Reads one container format; constructed on a source positioned at the start of the file.

    The constructor reads the file header and raises :class:`CaptureError` when the file is not
    readable at all; ``batches`` then never raises for bad records, it stops with a warning.
    """

    #: the name in the format registry and in ``CaptureInfo.format``
    format_name: ClassVar[str]

    def __init__(self, source: ByteSource, info: CaptureInfo) -> None:
        self.source = source
        self.info = info
        self.next_frame = 1
        info.format = self.format_name
        #: offset in the (decompressed) stream of the first byte not yet handed to ``_walk``
        self.stream_offset = 0
        self._read_header()

    @staticmethod
    @abstractmethod
    def sniff(head: bytes) -> bool:
        """True when the first bytes of a (decompressed) file are this format's magic."""

    @abstractmethod
    def _read_header(self) -> None:
        """Read the file header from ``self.source`` (advancing ``stream_offset``), fill ``info``."""

    @abstractmethod
    def _walk(self, buf: bytearray | memoryview, data: np.ndarray, base_offset: int) -> WalkResult:
        """Find the complete records in ``buf`` (``data`` is the same bytes as uint8 array)."""

    def batches(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[RecordBatch]:
        """Yield the file's records in order, a chunk's worth at a time."""
        chunk_bytes = max(int(chunk_bytes), 4096)
        info = self.info
        carry: bytes | memoryview = b""
        need = 0
        while True:
            buf = self.source.fill(carry, max(chunk_bytes, need - len(carry)))
            at_eof = self.source.eof
            if not buf:
                return
            data = np.frombuffer(buf, dtype=np.uint8)
            result = self._walk(buf, data, self.stream_offset)
            for run in result.runs:
                batch = self._to_batch(data, run)
                if len(batch):
                    yield batch
            if result.stop:
                return
            left = len(buf) - result.consumed
            if at_eof:
                if left:
                    what = f" ({result.cut_short_reason})" if result.cut_short_reason else ""
                    info.warnings.append(
                        f"file cut short in frame {self.next_frame} at byte offset "
                        f"{self.stream_offset + result.consumed}{what}; {left} bytes left over"
                    )
                return
            if left and result.need <= left:
                # a walker that neither used bytes nor asks for more would loop for ever
                info.warnings.append(
                    f"frame {self.next_frame} at byte offset {self.stream_offset + result.consumed}:"
                    " reader made no progress; stopped reading"
                )
                return
            carry = memoryview(buf)[result.consumed :]
            need = result.need
            self.stream_offset += result.consumed

    def _to_batch(self, data: np.ndarray, run: RecordColumns) -> RecordBatch:
        first = self.next_frame
        n = len(run.offsets)
        batch = RecordBatch(
            data=data,
            offsets=run.offsets.astype(np.int64, copy=False),
            caplen=run.caplen.astype(np.int64, copy=False),
            wirelen=run.wirelen.astype(np.int64, copy=False),
            ts_ns=run.ts_ns.astype(np.int64, copy=False),
            iface=run.iface.astype(np.int16, copy=False),
            first_frame=first,
            comments={first + i: text for i, text in run.comments.items()},
        )
        if n:
            info = self.info
            info.packets += n
            info.truncated_frames += int(np.count_nonzero(batch.caplen < batch.wirelen))
            lo, hi = int(batch.ts_ns.min()), int(batch.ts_ns.max())
            info.first_ts_ns = lo if info.first_ts_ns is None else min(info.first_ts_ns, lo)
            info.last_ts_ns = hi if info.last_ts_ns is None else max(info.last_ts_ns, hi)
        self.next_frame += n
        return batch
