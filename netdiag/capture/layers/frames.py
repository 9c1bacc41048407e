"""Column-wise access to the bytes of a batch's records, and the decoding state shared by layers.

Every layer decoder works on an index array of rows (records) and reads big-endian fields at
absolute positions in the batch buffer through strided views, one gather per field for all rows.
A read is never trusted blindly: ``Frames.end`` holds each record's last usable byte (caplen,
minus an FCS, narrowed to the IP datagram by the IP decoders) and a field is only stored where it
lies entirely before that end. Reads past the buffer are clipped to stay in bounds; their values
are discarded by the same check.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.schema import PacketChunk

_ABSENT = -1
_BE = {1: "u1", 2: ">u2", 4: ">u4", 8: ">u8"}
_TAIL = 16  # bytes of the buffer's end copied, zero-padded, for reads that run past it


def _strided(data: np.ndarray, dtype: str, width: int) -> np.ndarray:
    """A view of ``data`` giving the ``width``-byte value starting at every byte position."""
    count = max(len(data) - width + 1, 0)
    return np.ndarray((count,), dtype=dtype, buffer=data, offset=0, strides=(1,))


class Frames:
    """The records of one batch: buffer, absolute start and usable end of each record."""

    def __init__(
        self, data: np.ndarray, start: np.ndarray, caplen: np.ndarray, wirelen: np.ndarray
    ) -> None:
        self.data = np.ascontiguousarray(data, dtype=np.uint8)
        self.start = np.asarray(start, dtype=np.int64)
        self.end = np.asarray(caplen, dtype=np.int64).copy()  # record-relative usable end
        #: record-relative end of the frame as it was on the wire (what lengths are checked
        #: against, like Wireshark's "reported length"); narrowed by FCS and PPPoE lengths
        self.wire_end = np.asarray(wirelen, dtype=np.int64).copy()
        # Reads that run past the buffer's last byte (a wide read of a narrow field at the end
        # of the last record, or a garbage offset) are served from a zero-padded copy of the
        # buffer's tail, so every read stays in bounds and valid bytes keep their values.
        self._tail_start = max(len(self.data) - _TAIL, 0)
        tail = np.zeros(2 * _TAIL + 8, dtype=np.uint8)
        tail[: len(self.data) - self._tail_start] = self.data[self._tail_start :]
        self._views = {w: (_strided(self.data, _BE[w], w), _strided(tail, _BE[w], w)) for w in _BE}

    def __len__(self) -> int:
        return len(self.start)

    # --- reads at absolute positions (values of out-of-record positions are garbage) ---------
    def _read(self, pos: np.ndarray, width: int) -> np.ndarray:
        view, tail = self._views[width]
        last = len(view) - 1
        if len(pos) == 0 or (last >= 0 and pos.max() <= last):
            return view[pos]
        over = pos > last
        out = view[np.where(over, max(last, 0), pos)] if last >= 0 else tail[np.zeros_like(pos)]
        in_tail = np.clip(pos[over] - self._tail_start, 0, len(tail) - 1 - _TAIL)
        out[over] = tail[in_tail]
        return out

    def u8(self, pos: np.ndarray) -> np.ndarray:
        return self._read(pos, 1).astype(np.int64)

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return self._read(pos, 2).astype(np.int64)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return self._read(pos, 4).astype(np.int64)

    def u64(self, pos: np.ndarray) -> np.ndarray:
        """8 bytes big-endian as uint64; bytes past the buffer end read as zero."""
        return self._read(pos, 8).astype(np.uint64)

    def window(self, pos: np.ndarray, width: int) -> np.ndarray:
        """The ``width`` bytes from each position, one row each: an (n, width) uint8 copy.

        One gather brings a whole header (or the bytes a hash covers) close together, where
        slicing fields out of it is cheap; bytes past the buffer's end read as zero.
        """
        data = self.data
        last = len(data) - width
        if len(pos) == 0 or (last >= 0 and int(pos.max()) <= last):
            rows = np.lib.stride_tricks.as_strided(
                data, shape=(max(last + 1, 0), width), strides=(1, 1), writeable=False
            )
            return rows[pos]
        # rows running past the end: from a zero-padded copy of the buffer's last bytes
        tail_start = max(last, 0)
        padded = np.zeros(len(data) - tail_start + width, dtype=np.uint8)
        padded[: len(data) - tail_start] = data[tail_start:]
        out = np.empty((len(pos), width), dtype=np.uint8)
        over = pos > last
        near = np.flatnonzero(over)
        far = np.flatnonzero(~over)
        if len(far):
            out[far] = self.window(pos[far], width)
        at = np.clip(pos[near] - tail_start, 0, len(padded) - width)
        out[near] = padded[at[:, None] + np.arange(width)]
        return out

    def mac(self, pos: np.ndarray) -> np.ndarray:
        """6 bytes big-endian as a uint64 (the AddressBook's MAC key)."""
        hi = self.u16(pos).astype(np.uint64)
        lo = self.u32(pos + 2).astype(np.uint64)
        return (hi << np.uint64(32)) | lo

    def ip6(self, pos: np.ndarray) -> np.ndarray:
        """16 bytes as an (n, 16) uint8 array."""
        pair = np.empty((len(pos), 2), dtype=">u8")
        pair[:, 0] = self.u64(pos)
        pair[:, 1] = self.u64(pos + 8)
        return pair.view(np.uint8).reshape(len(pos), 16)

    # --- row helpers ---------------------------------------------------------------------------
    def base(self, idx: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Absolute position of record-relative offset ``off`` of rows ``idx``."""
        return self.start[idx] + off

    def limit(self, idx: np.ndarray) -> np.ndarray:
        """Absolute position one past the last usable byte of rows ``idx``."""
        return self.start[idx] + self.end[idx]


Mask = np.ndarray | None  # a per-row condition; None means "true for every row"


def both(*masks: Mask) -> Mask:
    """The conjunction of row conditions, None when all of them are None."""
    out: Mask = None
    for mask in masks:
        if mask is not None:
            out = mask if out is None else out & mask
    return out


class Room:
    """Bytes each row has from a header's start to its usable end.

    ``has(width)`` is the per-row condition "the field ending ``width`` bytes in was captured",
    or None when every row has it: the common case of complete headers then costs a scalar
    comparison per field instead of an array pass.
    """

    def __init__(self, base: np.ndarray, lim: np.ndarray) -> None:
        self.left = lim - base
        self.least = int(self.left.min()) if len(self.left) else 0

    def has(self, width: int) -> Mask:
        return None if width <= self.least else self.left >= width


class _CodeCache:
    """A direct-mapped cache from address values (uint64) to an AddressBook's codes.

    Packets of a capture repeat a few addresses many times: one hashed gather per value finds
    most of them here, and only the misses (new values, or values whose slot another value
    took) go through ``np.unique`` and the book. Codes never change, so a cached code stays
    right for every later chunk; a key is only trusted when the slot holds that exact value.
    """

    BITS = 16
    _EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)  # no address is 2**64 - 1 (IPv4 and MAC are narrower)
    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self) -> None:
        self.keys = np.full(1 << self.BITS, self._EMPTY, dtype=np.uint64)
        self.codes = np.full(1 << self.BITS, -1, dtype=np.int32)

    def lookup(self, values: np.ndarray, intern) -> np.ndarray:  # type: ignore[no-untyped-def]
        """Codes of ``values`` (uint64); ``intern`` gives the book's codes of distinct values."""
        slot = ((values * self._MULTIPLIER) >> np.uint64(64 - self.BITS)).astype(np.intp)
        codes = self.codes[slot]
        missed = np.flatnonzero(self.keys[slot] != values)
        if len(missed):
            uniques, inverse = np.unique(values[missed], return_inverse=True)
            new = np.asarray(intern(uniques), dtype=np.int32)
            codes[missed] = new[inverse.ravel()]
            at = ((uniques * self._MULTIPLIER) >> np.uint64(64 - self.BITS)).astype(np.intp)
            self.keys[at] = uniques  # a slot wanted by two new values keeps one of them
            stored = self.keys[at] == uniques
            self.codes[at[stored]] = new[stored]
        return codes


#: per address book, one cache per kind of value ("ip4", "mac") and per thread: two threads
#: decode parts of one capture (``capture.table``), and a cache's slot update (key, then code)
#: must not interleave with another thread's
_CACHES: weakref.WeakKeyDictionary[AddressBook, dict[tuple[str, int], _CodeCache]] = (
    weakref.WeakKeyDictionary()
)
_CACHES_LOCK = threading.Lock()


def _cache_of(book: AddressBook, kind: str) -> _CodeCache:
    key = (kind, threading.get_ident())
    with _CACHES_LOCK:
        caches = _CACHES.get(book)
        if caches is None:
            caches = _CACHES[book] = {}
        cache = caches.get(key)
        if cache is None:
            cache = caches[key] = _CodeCache()
    return cache


def _interned(values: np.ndarray, ok: Mask, intern, cache: _CodeCache) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Codes of ``values`` (-1 where not ok), interning each distinct value only once.

    The cache answers for values seen before; the AddressBook only sees the new distinct ones.
    """
    present = values if ok is None else values[ok]
    codes = cache.lookup(present.astype(np.uint64, copy=False), intern)
    if ok is None:
        return codes
    out = np.full(len(values), -1, dtype=np.int32)
    out[ok] = codes
    return out


class DecodeState:
    """Per-row decoding progress handed from one layer to the next, plus the chunk being filled."""

    def __init__(
        self, chunk: PacketChunk, book: AddressBook, skip: frozenset[str] = frozenset()
    ) -> None:
        n = len(chunk["frame"])
        self.chunk = chunk
        self.book = book
        #: columns the caller does not read (see ``decode.SKIPPABLE_COLUMNS``): left absent
        self.skip = skip
        #: network protocol as an ethertype (also for link types without one), -1 unknown
        self.net = np.full(n, _ABSENT, dtype=np.int64)
        #: record-relative offset of the network header, -1 none
        self.l3_off = np.full(n, _ABSENT, dtype=np.int64)
        #: record-relative offset of the transport header and its protocol, -1 none
        self.l4_off = np.full(n, _ABSENT, dtype=np.int64)
        self.l4_proto = np.full(n, _ABSENT, dtype=np.int64)
        #: record-relative end of the IP datagram by its length fields (may exceed caplen)
        self.ip_end = np.full(n, _ABSENT, dtype=np.int64)
        #: record-relative start of the payload the payload_hash covers, -1 none
        self.payload_off = np.full(n, _ABSENT, dtype=np.int64)
        self._error_codes: dict[str, int] = {}

    def put(self, column: str, idx: np.ndarray, values: np.ndarray, ok: Mask = None) -> None:
        """Store ``values`` into ``column`` for the rows of ``idx`` where ``ok``."""
        col = self.chunk[column]
        if ok is None:
            col[idx] = values
        else:
            col[idx[ok]] = values[ok]

    def put_ip4(self, column: str, idx: np.ndarray, values: np.ndarray, ok: Mask = None) -> None:
        codes = _interned(
            values.astype(np.uint32), ok, self.book.intern_ip4, _cache_of(self.book, "ip4")
        )
        self._put_codes(column, idx, codes, ok)

    def put_ip6(self, column: str, idx: np.ndarray, raw16: np.ndarray, ok: Mask = None) -> None:
        # 16-byte keys are rare enough (IPv6 rows only) for the book's own interning
        codes = self.book.intern_ip6(raw16, ok)
        self._put_codes(column, idx, codes, ok)

    def put_mac(self, column: str, idx: np.ndarray, values: np.ndarray, ok: Mask = None) -> None:
        if column in self.skip:
            return
        codes = _interned(values, ok, self.book.intern_mac, _cache_of(self.book, "mac"))
        self._put_codes(column, idx, codes, ok)

    def _put_codes(self, column: str, idx: np.ndarray, codes: np.ndarray, ok: Mask) -> None:
        col = self.chunk[column]
        if ok is None:
            col[idx] = codes
        else:
            col[idx[ok]] = codes[ok]

    def fail(self, idx: np.ndarray, reason: str) -> None:
        """Record why rows ``idx`` stop decoding; the first reason given to a row is kept."""
        if len(idx) == 0:
            return
        code = self._error_codes.get(reason)
        if code is None:
            code = self.book.text_code(reason)
            self._error_codes[reason] = code
        col = self.chunk["decode_error"]
        col[idx] = np.where(col[idx] == _ABSENT, code, col[idx])
