"""Bidirectional flows (Zeek conn.log vocabulary) built streaming and column-wise from packets.

``FlowBuilder(book).add(chunk)`` labels each packet of a chunk with its flow (flow_id, flow_dir,
flow_pkt_index, icmp_err_flow_id) and merges the chunk into per-flow state; ``finish()`` returns
the flow table whose columns are declared in :mod:`netdiag.flows.schema` (``finish_columns()``:
the same table as numpy columns, without pandas; ``netdiag.flows.read.read_flow_columns`` reads
a capture file straight into it).
"""

from netdiag.flows.builder import FlowBuilder, build_flows
from netdiag.flows.schema import FLOW_COLUMN_NAMES, FLOW_COLUMNS, PACKET_FLOW_COLUMNS

__all__ = ["FLOW_COLUMNS", "FLOW_COLUMN_NAMES", "PACKET_FLOW_COLUMNS", "FlowBuilder", "build_flows"]
