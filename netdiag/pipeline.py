"""One library entry point per use: read a capture into the packet and flow tables.

capture -> packet chunks (decoder) -> flow builder (adds flow columns per chunk) -> retained
packets + flow table. The CLI subcommands and the rule engine call these functions; nothing here
prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from netdiag.addressbook import AddressBook
from netdiag.capture.records import CaptureInfo
from netdiag.capture.schema import TCP_FIN, TCP_RST, TCP_SYN, PacketChunk
from netdiag.flows.read import ProgressCallback, empty_flow_chunk, iter_flow_chunks
from netdiag.flows.schema import PACKET_FLOW_COLUMNS

#: "all" keeps every packet; "control" keeps what rules need and drops bulk data packets;
#: "none" keeps no packet (only the flow table is wanted)
Retention = Literal["all", "control", "none"]

#: packets kept per flow from its start in "control" retention (handshake, first requests)
FIRST_PACKETS_PER_FLOW = 8

#: the columns the flow builder adds to each packet, with their dtypes (see netdiag.flows.schema)
FLOW_PACKET_DTYPES = {c.name: c.dtype for c in PACKET_FLOW_COLUMNS}
FLOW_PACKET_COLUMNS = tuple(FLOW_PACKET_DTYPES)


@dataclass
class LoadedCapture:
    """A capture read into tables: what the file says, the packets kept, the flows."""

    path: str
    info: CaptureInfo
    packets: pd.DataFrame
    flows: pd.DataFrame
    book: AddressBook
    retention: Retention = "all"
    dropped_packets: int = 0  # bulk data packets not kept under "control" retention
    extra: dict[str, object] = field(default_factory=dict)


def control_mask(chunk: PacketChunk) -> np.ndarray:
    """Packets rules may need: everything but the bulk TCP/UDP data of established flows."""
    flags = chunk["tcp_flags"]
    is_tcp_udp = (chunk["ip_proto"] == 6) | (chunk["ip_proto"] == 17)
    keep = ~is_tcp_udp | (chunk["ip_version"] == 0)
    keep |= (flags >= 0) & ((flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0)
    keep |= chunk["decode_error"] >= 0
    keep |= chunk["esp_spi"] >= 0
    keep |= chunk["ike_exchange"] >= 0
    keep |= chunk["tunnel"] > 0
    if "flow_pkt_index" in chunk:
        keep |= chunk["flow_pkt_index"] < FIRST_PACKETS_PER_FLOW
    return keep


def _take(chunk: PacketChunk, mask: np.ndarray) -> PacketChunk:
    return {name: values[mask] for name, values in chunk.items()}


def load_capture(
    path: str,
    book: AddressBook | None = None,
    retention: Retention = "all",
    progress: ProgressCallback | None = None,
    observe: bool = False,
) -> LoadedCapture:
    """Read one capture into its packet table (all or control packets) and flow table.

    Under "control" retention the kept chunks wait in less memory (``compact_chunk``), and a
    column holding one value on every kept packet is a read-only zero-stride view in the table.
    ``observe`` also collects every packet's observation row for correlating several capture
    points (``extra["observations"]``, see netdiag.correlate.observations).
    """
    from netdiag.capture import to_dataframe
    from netdiag.capture.table import compact_chunk, join_column, release_freed_memory
    from netdiag.flows import FlowBuilder

    book = book or AddressBook()
    builder = FlowBuilder(book)
    kept: list[PacketChunk] = []
    dropped = 0
    info: CaptureInfo | None = None
    observations: list[dict[str, np.ndarray]] = []
    for chunk, chunk_info in iter_flow_chunks(path, book, builder, progress):
        info = chunk_info
        if observe:
            from netdiag.correlate.observations import observation_chunk

            observations.append(observation_chunk(chunk))
        if retention == "none":
            dropped += len(chunk["frame"])
        elif retention == "control":
            mask = control_mask(chunk)
            dropped += int(len(mask) - mask.sum())
            # kept a while: in less memory (constant columns stored once, integers narrowed)
            kept.append(compact_chunk(_take(chunk, mask)))
        else:
            kept.append(chunk)
    assert info is not None  # iter_flow_chunks yields at least once, or raises
    flows = builder.finish()
    del builder  # its per-flow state is done with: make room for the packet table
    release_freed_memory()
    kept = kept or [empty_flow_chunk()]
    # the decoder's table knows only the schema's columns; each column leaves the chunks as it
    # is joined, so that the packets are not held twice
    flow_columns = {
        c: join_column([chunk.pop(c) for chunk in kept], dtype)
        for c, dtype in FLOW_PACKET_DTYPES.items()
    }
    packets = to_dataframe(kept, book, consume=True)
    del kept
    for column in FLOW_PACKET_COLUMNS:
        packets[column] = flow_columns.pop(column)  # pandas copies: free each original at once
    release_freed_memory()
    loaded = LoadedCapture(path, info, packets, flows, book, retention, dropped)
    if observe:
        from netdiag.correlate.observations import join_observations

        loaded.extra["observations"] = join_observations(observations)
    return loaded
