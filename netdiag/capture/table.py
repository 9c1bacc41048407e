"""The packet table of a capture: chunks decoded batch by batch, and their pandas form."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from netdiag.addressbook import AddressBook
from netdiag.capture.decode import decode_batch
from netdiag.capture.linktypes import is_supported, unsupported_reason
from netdiag.capture.records import CaptureInfo
from netdiag.capture.schema import PACKET_COLUMNS, PacketChunk, empty_chunk
from netdiag.errors import CaptureError

if TYPE_CHECKING:
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


def _decoded_batches(
    path: str, capture: Capture, book: AddressBook, chunk_bytes: int, tshark_fallback: bool
) -> Iterator[PacketChunk]:
    info = capture.info
    _check_linktypes(path, info, tshark_fallback)
    for batch in capture.batches(chunk_bytes):
        _check_linktypes(path, info, tshark_fallback)  # pcapng declares interfaces as it goes
        chunk = decode_batch(batch, info, book, tshark_fallback)
        info.decode_errors += int(np.count_nonzero(chunk["decode_error"] >= 0))
        yield chunk
    _check_linktypes(path, info, tshark_fallback)


def iter_decoded(
    path: str,
    book: AddressBook,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    tshark_fallback: bool = False,
) -> Iterator[tuple[PacketChunk, CaptureInfo]]:
    """Decode ``path`` batch by batch, yielding each chunk with the capture facts so far."""
    from netdiag.capture.reader import open_capture  # the container readers' entry point

    with open_capture(path) as capture:
        for chunk in _decoded_batches(path, capture, book, chunk_bytes, tshark_fallback):
            yield chunk, capture.info


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


def _repeated(value: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows of ``value[0]`` as a read-only zero-stride view: no memory per row."""
    return np.broadcast_to(value[:1].copy().reshape(()), (n,))


def _is_repeated(values: np.ndarray) -> bool:
    """Is ``values`` one value stored once for all its rows (see ``compact_chunk``)?"""
    return values.ndim == 1 and values.strides == (0,)


def compact_chunk(chunk: PacketChunk) -> PacketChunk:
    """Store each column of ``chunk`` that holds one value on every row as that value repeated.

    The repeated column is a read-only zero-stride view: same dtype, same values, no memory per
    row. Most columns of a capture's retained packets are absent on all of them (ESP, IKE, VXLAN,
    VLAN or SLL fields...): about 70 of the 270 bytes of a row on a plain TCP/UDP capture.
    ``concat_chunks`` keeps a column repeated when it is one value across all chunks. In place;
    returns ``chunk``.
    """
    for name, values in chunk.items():
        n = len(values)
        if n < 2 or _is_repeated(values):
            continue
        first = values[0]
        if values[-1] == first and bool((values == first).all()):
            chunk[name] = _repeated(values, n)
    return chunk


def join_column(parts: list[np.ndarray]) -> np.ndarray:
    """One column's parts end to end; a value repeated through every part stays repeated."""
    filled = [p for p in parts if len(p)]
    if filled and all(_is_repeated(p) and p[0] == filled[0][0] for p in filled):
        return _repeated(filled[0], sum(len(p) for p in filled))
    return np.concatenate(parts)


def concat_chunks(chunks: Iterable[PacketChunk], consume: bool = False) -> PacketChunk:
    """One chunk holding the rows of ``chunks`` in order.

    ``consume``: take each column out of the chunks as soon as it is joined, so that the
    chunks and the joined table are never both whole in memory (the chunks are left empty).
    """
    chunks = list(chunks)
    if not chunks:
        return empty_chunk(0)
    if len(chunks) == 1:
        return chunks[0]
    if consume:
        joined: PacketChunk = {}
        freed = 0
        for c in PACKET_COLUMNS:
            parts = [ch.pop(c.name) for ch in chunks]
            joined[c.name] = join_column(parts)
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
        chunks = list(_decoded_batches(path, capture, book, chunk_bytes, tshark_fallback))
        info = capture.info
    return PacketTable(to_dataframe(chunks, book), info, book)
