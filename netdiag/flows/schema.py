"""The flow table's columns and the per-packet flow columns: the one place they are declared.

Vocabulary follows Zeek's conn.log (orig/resp, conn_state, history) so that people who know Zeek
read the table without a glossary. A flow is one bidirectional conversation keyed by protocol,
the two addresses and the two ports (ICMP: type and counterpart type or code, as Community ID
maps them), for the whole capture: a reused 5-tuple is not split into several connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: kinds of flow column: plain number, IP address categorical, text, boolean
FlowColumnKind = Literal["int", "ip", "str", "bool"]


@dataclass(frozen=True)
class FlowColumn:
    name: str
    dtype: str  # pandas dtype of the column in the finished DataFrame
    kind: FlowColumnKind
    doc: str


def _f(name: str, dtype: str, kind: FlowColumnKind, doc: str) -> FlowColumn:
    return FlowColumn(name, dtype, kind, doc)


#: columns FlowBuilder.add() puts into each packet chunk (numpy dtypes, -1 = no flow)
PACKET_FLOW_COLUMNS: tuple[FlowColumn, ...] = (
    _f("flow_id", "int64", "int", "flow of this packet; -1 for non-IP packets (ARP, ...)"),
    _f("flow_dir", "int8", "int", "0 originator -> responder, 1 responder -> originator, -1"),
    _f("flow_pkt_index", "int32", "int", "0-based index of the packet within its flow, -1"),
    _f("icmp_err_flow_id", "int64", "int", "for an ICMP/ICMPv6 error: the flow it quotes, -1"),
)

#: the flow table, in export order; timestamps are integer ns since the epoch, -1 = absent
FLOW_COLUMNS: tuple[FlowColumn, ...] = (
    _f("flow_id", "int64", "int", "flow number, increasing in first-seen order from 0"),
    _f(
        "proto",
        "str",
        "str",
        "tcp, udp, icmp, icmp6, sctp, esp, ah, gre, ... or 'other' (see ip_proto)",
    ),
    _f("ip_proto", "int16", "int", "IP protocol number (IPv6: upper-layer next header)"),
    _f("ip_version", "int8", "int", "4 or 6"),
    _f("orig_h", "category", "ip", "originator address (SYN sender; see docs of FlowBuilder)"),
    _f("orig_p", "int32", "int", "originator port; ICMP: the message type; -1 without ports"),
    _f("resp_h", "category", "ip", "responder address"),
    _f("resp_p", "int32", "int", "responder port; ICMP: counterpart type or code; -1"),
    _f("community_id", "str", "str", "Community ID v1, seed 0, base64 ('1:...')"),
    _f("first_ts_ns", "int64", "int", "earliest packet timestamp of the flow"),
    _f("last_ts_ns", "int64", "int", "latest packet timestamp of the flow"),
    _f("duration_ns", "int64", "int", "last_ts_ns - first_ts_ns"),
    _f("first_frame", "int64", "int", "frame number of the flow's first packet"),
    _f("last_frame", "int64", "int", "frame number of the flow's last packet"),
    _f("orig_pkts", "int64", "int", "packets originator -> responder"),
    _f("resp_pkts", "int64", "int", "packets responder -> originator"),
    _f("orig_ip_bytes", "int64", "int", "IP bytes (IP total length) originator -> responder"),
    _f("resp_ip_bytes", "int64", "int", "IP bytes responder -> originator"),
    _f("orig_bytes", "int64", "int", "payload bytes orig -> resp (TCP: see FlowBuilder)"),
    _f("resp_bytes", "int64", "int", "payload bytes resp -> orig (TCP: see FlowBuilder)"),
    _f("conn_state", "str", "str", "Zeek conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 ..."),
    _f("history", "str", "str", "Zeek history letters, originator upper case (see zeek.py)"),
    _f("rtt_syn_synack_ns", "int64", "int", "first SYN -> first SYN-ACK; -1"),
    _f("rtt_synack_ack_ns", "int64", "int", "first SYN-ACK -> originator's next ACK; -1"),
    _f(
        "rtt_ns", "int64", "int", "handshake RTT = sum of the two (tshark tcp.analysis.initial_rtt)"
    ),
    _f("retrans_orig", "int64", "int", "originator segments whose payload was all seen before"),
    _f("retrans_resp", "int64", "int", "responder segments whose payload was all seen before"),
    _f("syn_count", "int64", "int", "SYNs without ACK from the originator (>1: SYN retransmitted)"),
    _f("fin_by", "str", "str", "who sent a FIN: 'orig', 'resp', 'both' or ''"),
    _f("rst_by", "str", "str", "who sent a RST: 'orig', 'resp', 'both' or ''"),
    _f("syn_isn_orig", "int64", "int", "raw sequence number of the originator's first SYN; -1"),
    _f("syn_isn_resp", "int64", "int", "raw sequence number of the responder's first SYN-ACK; -1"),
    _f(
        "synack_ack",
        "int64",
        "int",
        "raw ack number of that SYN-ACK (ISN + 1 of the SYN it answers)",
    ),
    _f("icmp_errors", "int64", "int", "ICMP/ICMPv6 errors (and redirects) quoting this flow"),
    _f("first_icmp_error", "str", "str", "first such message as 'name(type/code)', or ''"),
    _f("first_icmp_error_frame", "int64", "int", "frame of that message, -1"),
    _f("vlan", "int32", "int", "outer VLAN id of the flow's first packet, -1 when untagged"),
    _f("orig_iface", "int16", "int", "interface id of the originator's first packet, -1"),
    _f("resp_iface", "int16", "int", "interface id of the responder's first packet, -1"),
    _f(
        "orig_ifindex",
        "int32",
        "int",
        "Linux cooked (SLL2) ifindex of the originator's first packet",
    ),
    _f(
        "resp_ifindex",
        "int32",
        "int",
        "Linux cooked (SLL2) ifindex of the responder's first packet",
    ),
    _f("iface_mask", "int64", "int", "bit i set when a packet was seen on interface id i (< 63)"),
)

FLOW_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in FLOW_COLUMNS)
FLOW_COLUMNS_BY_NAME: dict[str, FlowColumn] = {c.name: c for c in FLOW_COLUMNS}

#: IP protocol numbers with a name of their own in the proto column
PROTO_NAMES: dict[int, str] = {
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmp6",
    89: "ospf",
    112: "vrrp",
    132: "sctp",
}
