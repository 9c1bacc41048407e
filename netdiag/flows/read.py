"""The flow table of one capture file as numpy columns, read streaming and without pandas.

``netdiag flows`` needs neither the packet table nor pandas: this reads the capture chunk by
chunk through the decoder and the :class:`FlowBuilder` (packets are dropped once counted), and
returns :meth:`FlowBuilder.finish_columns`. ``iter_flow_chunks`` is the one
decode-and-build loop, shared with ``netdiag.pipeline.load_capture``, so the flow table is the
one ``load_capture`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.records import CaptureInfo
from netdiag.capture.schema import PacketChunk
from netdiag.flows.builder import FLOW_BUILDER_READS, FlowBuilder
from netdiag.flows.schema import PACKET_FLOW_COLUMNS

#: bytes of file per chunk when only the flow table is wanted: twice the packet table's, as
#: no packet is kept (a chunk in flight costs ~0.1 GB more), and two threads share the reading
#: with half as many numpy calls, so less time waiting for each other (read ~9 % faster on
#: 1M packets; 64 MB is slower again: the chunks no longer fit the caches)
FLOW_TABLE_CHUNK_BYTES = 32 << 20
#: chunks decoded ahead when only the flow table is wanted: one more than for the packet
#: table, as slack between the two threads (~3 % faster, ~55 MB more at 32 MB chunks)
FLOW_TABLE_READ_AHEAD = 2

#: called after each chunk with (frames so far, bytes of the file read so far)
ProgressCallback = Callable[[int, int], None]


class ChunkConsumer(Protocol):
    """What each decoded chunk is handed to: the flow builder (or a stand-in that adds nothing)."""

    def add(self, chunk: PacketChunk) -> None: ...


@dataclass
class FlowColumns:
    """A capture's flow table as columns (see ``FlowBuilder.finish_columns``) and its facts."""

    path: str
    info: CaptureInfo
    columns: dict[str, np.ndarray]
    book: AddressBook

    def __len__(self) -> int:
        return len(self.columns["flow_id"])


def empty_flow_chunk() -> PacketChunk:
    """A packet chunk of no packet, with the flow columns the builder adds."""
    from netdiag.capture.schema import empty_chunk

    chunk = empty_chunk(0)
    for column in PACKET_FLOW_COLUMNS:
        chunk[column.name] = np.zeros(0, dtype=column.dtype)
    return chunk


def iter_flow_chunks(
    path: str,
    book: AddressBook,
    builder: ChunkConsumer,
    progress: ProgressCallback | None = None,
    skip: frozenset[str] = frozenset(),
    chunk_bytes: int | None = None,
    read_ahead: int = 1,
) -> Iterator[tuple[PacketChunk, CaptureInfo]]:
    """Decoded chunks of one capture, each passed through the flow builder (flow columns added).

    A capture without packets yields one empty chunk, with the file's facts. ``skip`` names
    decoder columns nobody will read (see ``netdiag.capture.decode.SKIPPABLE_COLUMNS``);
    ``chunk_bytes``: bytes of file per chunk (default ``capture.table.DEFAULT_CHUNK_BYTES``);
    ``read_ahead``: chunks decoded ahead of the one being built (see ``iter_decoded``).
    """
    from netdiag.capture.table import DEFAULT_CHUNK_BYTES, iter_decoded

    frames = 0
    consumed = 0
    info: CaptureInfo | None = None
    chunk_bytes = chunk_bytes or DEFAULT_CHUNK_BYTES
    for chunk, info in iter_decoded(path, book, chunk_bytes, skip=skip, read_ahead=read_ahead):
        builder.add(chunk)
        n = len(chunk["frame"])
        frames += n
        consumed += int(chunk["caplen"].sum()) + 16 * n  # about the bytes read (record headers)
        if progress is not None:
            progress(frames, consumed)
        yield chunk, info
    if frames == 0:  # a capture without packets still has its facts
        from netdiag.capture.reader import open_capture

        if info is None:
            with open_capture(path) as cap:
                for _batch in cap.batches():
                    pass
                info = cap.info
        yield empty_flow_chunk(), info


def read_flow_columns(
    path: str, book: AddressBook | None = None, progress: ProgressCallback | None = None
) -> FlowColumns:
    """Read ``path`` into its flow table; raises ``CaptureError`` when it is no capture."""
    from netdiag.capture.decode import SKIPPABLE_COLUMNS

    # the builder reads none of the skippable columns (MACs, TCP options, payload hash)
    skip = frozenset(SKIPPABLE_COLUMNS - FLOW_BUILDER_READS)
    book = book or AddressBook()
    builder = FlowBuilder(book, packet_index=False)  # the packets are not kept
    info: CaptureInfo | None = None
    chunks = iter_flow_chunks(
        path, book, builder, progress, skip, FLOW_TABLE_CHUNK_BYTES, FLOW_TABLE_READ_AHEAD
    )
    for chunk, chunk_info in chunks:
        info = chunk_info
        del chunk  # counted: the packets are not kept
    assert info is not None  # iter_flow_chunks yields at least once, or raises
    return FlowColumns(path, info, builder.finish_columns(), book)
