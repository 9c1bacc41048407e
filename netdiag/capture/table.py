"""The packet table of a capture: chunks decoded batch by batch, and their pandas form."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.decode import PartlyDecoded, finish_decode, start_decode
from netdiag.capture.linktypes import is_supported, unsupported_reason
from netdiag.capture.records import CaptureInfo
from netdiag.capture.schema import PACKET_COLUMNS, PacketChunk, empty_chunk
from netdiag.errors import CaptureError

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: streaming needs none
    import pandas as pd

    from netdiag.capture.reader import Capture

#: bytes of capture file read per batch: bounds the memory of one chunk (tens of MB)
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024


#: bytes of chunk columns freed between two returns of free heap memory to the system
_TRIM_EVERY_BYTES = 128 << 20


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc), so that peak RSS stays honest.

    The arrays of a chunk (under glibc's 32 MB mmap threshold) live in the heap; when they are
    freed after being joined into the table's big (mmapped) columns, glibc keeps their pages
    unless told otherwise, and the process would hold the packets twice.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class PacketTable:
    """A whole capture decoded: one row per frame, what the file says, and the address book."""

    df: pd.DataFrame
    info: CaptureInfo
    book: AddressBook


def _check_linktypes(path: str, info: CaptureInfo, tshark_fallback: bool = False) -> None:
    """Refuse a capture none of whose interfaces netdiag can decode."""
    if tshark_fallback and shutil.which("tshark"):
        return
    if info.interfaces and not any(is_supported(i.linktype) for i in info.interfaces):
        raise CaptureError(path, unsupported_reason(info.interfaces[0].linktype))


def _partly_decoded_batches(
    path: str,
    capture: Capture,
    book: AddressBook,
    chunk_bytes: int,
    tshark_fallback: bool,
    skip: frozenset[str] = frozenset(),
) -> Generator[PartlyDecoded, None, None]:
    info = capture.info
    _check_linktypes(path, info, tshark_fallback)
    for batch in capture.batches(chunk_bytes):
        _check_linktypes(path, info, tshark_fallback)  # pcapng declares interfaces as it goes
        yield start_decode(batch, info, book, tshark_fallback, skip)
    _check_linktypes(path, info, tshark_fallback)


def _finished(part: PartlyDecoded, info: CaptureInfo) -> PacketChunk:
    chunk = finish_decode(part)
    info.decode_errors += int(np.count_nonzero(chunk["decode_error"] >= 0))
    return chunk


def iter_decoded(
    path: str,
    book: AddressBook,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    tshark_fallback: bool = False,
    skip: frozenset[str] = frozenset(),
    read_ahead: int = 1,
) -> Iterator[tuple[PacketChunk, CaptureInfo]]:
    """Decode ``path`` batch by batch, yielding each chunk with the capture facts so far.

    ``skip``: columns the caller does not read (see ``decode.SKIPPABLE_COLUMNS``).
    ``read_ahead``: walk the next chunks (at most this many beyond the caller's; 0: none) and
    decode their link and network layers in a background thread while this one's transport
    layers are decoded and the caller works on it (see ``capture.readahead``); the chunks are
    the same either way. The facts yielded with a chunk may already count a later chunk's
    packets and interfaces.
    """
    from netdiag.capture.readahead import read_ahead as ahead
    from netdiag.capture.reader import open_capture  # the container readers' entry point

    with open_capture(path) as capture:
        parts = _partly_decoded_batches(path, capture, book, chunk_bytes, tshark_fallback, skip)
        # the tshark fallback stays in the caller's thread: it is slow, run by a subprocess
        # per batch, and a Ctrl-C should not have to wait for it
        ordered = ahead(parts, read_ahead) if read_ahead > 0 and not tshark_fallback else parts
        try:
            for part in ordered:
                yield _finished(part, capture.info), capture.info
        finally:  # the producer thread ends before the capture file is closed
            ordered.close()


def iter_chunks(
    path: str,
    book: AddressBook,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    tshark_fallback: bool = False,
) -> Iterator[PacketChunk]:
    """Decoded chunks of ``path``, one per batch of the container reader.

    ``tshark_fallback``: let tshark dissect link types without a native decoder (slow).
    """
    for chunk, _info in iter_decoded(path, book, chunk_bytes, tshark_fallback):
        yield chunk


def _repeated(value: object, n: int, dtype: np.dtype) -> np.ndarray:
    """``n`` rows of one value as a read-only zero-stride view: no memory per row."""
    return np.broadcast_to(np.array(value, dtype=dtype), (n,))


def _is_repeated(values: np.ndarray) -> bool:
    """Is ``values`` one value stored once for all its rows (see ``compact_chunk``)?"""
    return values.ndim == 1 and values.strides == (0,)


#: the narrowest integer dtypes, tried in order when a kept chunk's column is stored
_NARROW_INTS = tuple(np.dtype(t) for t in ("int8", "int16", "int32"))


def compact_chunk(chunk: PacketChunk) -> PacketChunk:
    """Store a chunk that will be kept a while (retained packets) in less memory.

    A column holding one value on every row becomes that value repeated (a read-only zero-stride
    view, no memory per row): most columns of a capture's retained packets are absent on all of
    them (ESP, IKE, VXLAN, VLAN or SLL fields...). Another integer column is stored in the
    narrowest integer type its values fit (ports and lengths in 2 bytes, flow ids and IP ids in
    4...). The values never change; ``concat_chunks(consume=True)`` joins the columns back into
    the schema's dtypes (a column repeated through every chunk stays one value). In place;
    returns ``chunk``.
    """
    for name, values in chunk.items():
        if len(values) == 0 or _is_repeated(values) or values.dtype.kind != "i":
            continue
        low, high = values.min(), values.max()
        if low == high:
            chunk[name] = _repeated(low, len(values), values.dtype)
            continue
        for narrow in _NARROW_INTS:
            if narrow.itemsize >= values.dtype.itemsize:
                break
            info = np.iinfo(narrow)
            if info.min <= low and high <= info.max:
                chunk[name] = values.astype(narrow)
                break
    return chunk


def join_column(parts: list[np.ndarray], dtype: np.dtype | str) -> np.ndarray:
    """One column's parts end to end, as ``dtype``; a value repeated in every part stays one."""
    dtype = np.dtype(dtype)
    filled = [p for p in parts if len(p)]
    if filled and all(_is_repeated(p) and p[0] == filled[0][0] for p in filled):
        return _repeated(filled[0][0], sum(len(p) for p in filled), dtype)
    if len(parts) == 1 and parts[0].dtype == dtype:
        return parts[0]
    return np.concatenate(parts, dtype=dtype)


def concat_chunks(chunks: Iterable[PacketChunk], consume: bool = False) -> PacketChunk:
    """One chunk holding the rows of ``chunks`` in order.

    ``consume``: take each column out of the chunks as soon as it is joined, so that the
    chunks and the joined table are never both whole in memory (the chunks are left empty);
    chunks stored compactly (``compact_chunk``) are joined back into the schema's dtypes.
    """
    chunks = list(chunks)
    if not chunks:
        return empty_chunk(0)
    if len(chunks) == 1 and not consume:
        return chunks[0]
    if consume:
        joined: PacketChunk = {}
        freed = 0
        for c in PACKET_COLUMNS:
            parts = [ch.pop(c.name) for ch in chunks]
            joined[c.name] = join_column(parts, c.dtype)
            freed += sum(part.nbytes for part in parts if not _is_repeated(part))
            del parts
            if freed >= _TRIM_EVERY_BYTES:
                release_freed_memory()
                freed = 0
        return joined
    return {c.name: np.concatenate([ch[c.name] for ch in chunks]) for c in PACKET_COLUMNS}


def to_dataframe(
    chunks: PacketChunk | Iterable[PacketChunk], book: AddressBook, consume: bool = False
) -> pd.DataFrame:
    """A DataFrame in schema column order; address and text codes become shared Categoricals.

    ``consume`` empties the chunks while joining them (see ``concat_chunks``).
    """
    import pandas as pd

    chunk = concat_chunks([chunks] if isinstance(chunks, dict) else chunks, consume)
    columns: dict[str, object] = {}
    for col in PACKET_COLUMNS:
        values = chunk[col.name]
        if col.kind in ("ip", "mac", "text"):
            columns[col.name] = book.categorical(values, col.kind)
        else:
            columns[col.name] = values
    return pd.DataFrame(columns, copy=False)


def read_packets(
    path: str,
    book: AddressBook | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    tshark_fallback: bool = False,
) -> PacketTable:
    """Read and decode a whole capture into a ``PacketTable`` (see ``iter_chunks``)."""
    from netdiag.capture.reader import open_capture

    book = book if book is not None else AddressBook()
    with open_capture(path) as capture:
        parts = _partly_decoded_batches(path, capture, book, chunk_bytes, tshark_fallback)
        chunks = [_finished(part, capture.info) for part in parts]
        info = capture.info
    return PacketTable(to_dataframe(chunks, book), info, book)
