"""Capture reading and column-wise packet decoding: the packet table of the pipeline.

Usage::

    from netdiag.capture import iter_chunks, read_packets, to_dataframe
    table = read_packets("trace.pcap")  # PacketTable(df, info, book)
    for chunk in iter_chunks("trace.pcap", book): ...  # dict of numpy arrays per batch
    df = to_dataframe(chunks, book)  # schema column order, addresses as Categoricals

``tshark_fallback=True`` (off by default) lets tshark dissect link types netdiag cannot.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> the module defining it; imported on first use (PEP 562), so that importing
#: a light submodule such as ``netdiag.capture.schema`` does not load pandas
_EXPORTS = {
    "decode_batch": "netdiag.capture.decode",
    "CaptureInfo": "netdiag.capture.records",
    "PacketChunk": "netdiag.capture.schema",
    "DEFAULT_CHUNK_BYTES": "netdiag.capture.table",
    "PacketTable": "netdiag.capture.table",
    "concat_chunks": "netdiag.capture.table",
    "iter_chunks": "netdiag.capture.table",
    "iter_decoded": "netdiag.capture.table",
    "read_packets": "netdiag.capture.table",
    "to_dataframe": "netdiag.capture.table",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


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
