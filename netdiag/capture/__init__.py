"""Capture reading and column-wise packet decoding: the packet table of the pipeline.

Usage::

    from netdiag.capture import iter_chunks, read_packets, to_dataframe
    table = read_packets("trace.pcap")  # PacketTable(df, info, book)
    for chunk in iter_chunks("trace.pcap", book): ...  # dict of numpy arrays per batch
    df = to_dataframe(chunks, book)  # schema column order, addresses as Categoricals

``tshark_fallback=True`` (off by default) lets tshark dissect link types netdiag cannot.
"""

from __future__ import annotations

from netdiag.capture.decode import decode_batch
from netdiag.capture.records import CaptureInfo
from netdiag.capture.schema import PacketChunk
from netdiag.capture.table import (
    DEFAULT_CHUNK_BYTES,
    PacketTable,
    concat_chunks,
    iter_chunks,
    iter_decoded,
    read_packets,
    to_dataframe,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "CaptureInfo",
    "PacketChunk",
    "PacketTable",
    "concat_chunks",
    "decode_batch",
    "iter_chunks",
    "iter_decoded",
    "read_packets",
    "to_dataframe",
]
