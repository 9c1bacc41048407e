"""The packet table's columns, their dtypes and meaning: the one place they are declared.

Inside the pipeline a packet table travels as a *chunk*: a dict of equal-length numpy arrays keyed
by column name (see ``PacketChunk``). Numeric columns use a sentinel of -1 for "absent" so that
they stay plain numpy integers (no nullable dtypes in the hot path). Address columns hold int32
codes into a shared :class:`netdiag.addressbook.AddressBook` (-1 = absent); ``to_dataframe``
turns the codes into pandas Categoricals whose categories are the address texts, all IP columns
sharing one dictionary and all MAC columns another, so that ``df.ip_src == df.ip_dst`` works.

The column names are a user-facing export (``netdiag packets``): rename nothing without a
changelog entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: kinds of column: a plain number, an IP address code, a MAC address code, or a text code
ColumnKind = Literal["int", "ip", "mac", "text", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # numpy dtype of the chunk array (codes are int32)
    kind: ColumnKind
    doc: str
    absent: int = -1  # sentinel for "not present in this packet" (ints and codes)


def _c(name: str, dtype: str, kind: ColumnKind, doc: str, absent: int = -1) -> Column:
    return Column(name, dtype, kind, doc, absent)


#: The packet table, in export order. The first block is the contract of the foundation issue.
PACKET_COLUMNS: tuple[Column, ...] = (
    # --- record -------------------------------------------------------------------------------
    _c("frame", "int64", "int", "1-based frame number, as Wireshark numbers them", 0),
    _c("ts_ns", "int64", "int", "timestamp, integer nanoseconds since the Unix epoch (UTC)", 0),
    _c("caplen", "int64", "int", "bytes captured (after snaplen)", 0),
    _c("wirelen", "int64", "int", "bytes on the wire, as the capture file says", 0),
    _c("iface", "int16", "int", "interface id (pcapng IDB index; 0 for classic pcap)", 0),
    _c("iface_name", "int32", "text", "interface name (pcapng if_name, else SLL2 ifindex as text)"),
    _c("linktype", "int32", "int", "link-layer header type of the interface (LINKTYPE_*)", 0),
    _c("sll_ifindex", "int32", "int", "Linux cooked v2 ifindex, -1 otherwise"),
    _c(
        "sll_pkttype",
        "int8",
        "int",
        "Linux cooked packet type: 0 host, 1 broadcast, 2 multicast, 3 otherhost, 4 outgoing; -1",
    ),
    # --- link layer ---------------------------------------------------------------------------
    _c("eth_src", "int32", "mac", "link-layer source address (Ethernet, or SLL when 6 bytes)"),
    _c("eth_dst", "int32", "mac", "Ethernet destination address"),
    _c("vlan", "int32", "int", "outermost 802.1Q/802.1ad VLAN id, -1 when untagged"),
    _c("vlan_inner", "int32", "int", "second VLAN id of a QinQ stack, -1 otherwise"),
    _c("ethertype", "int32", "int", "ethertype / SLL protocol after the VLAN tags, -1 if none"),
    # --- network layer ------------------------------------------------------------------------
    _c("ip_version", "int8", "int", "4 or 6; 0 when the frame carries no IP header", 0),
    _c("ip_src", "int32", "ip", "IP source address"),
    _c("ip_dst", "int32", "ip", "IP destination address"),
    _c("ip_proto", "int16", "int", "IPv4 protocol / IPv6 upper-layer next header after extensions"),
    _c("ip_ttl", "int16", "int", "IPv4 TTL / IPv6 hop limit"),
    _c("ip_id", "int64", "int", "IPv4 identification; IPv6 fragment id if a fragment header"),
    _c("ip_len", "int32", "int", "IPv4 total length / IPv6 payload length + 40"),
    _c("ip_flags", "int8", "int", "IPv4 flags bits >> 13: 4 reserved, 2 DF, 1 MF; -1"),
    _c("ip_frag_offset", "int32", "int", "fragment offset in bytes (IPv4 or IPv6 fragment)"),
    _c("ip_hdr_len", "int16", "int", "IPv4 header length incl. options / IPv6 40 + extensions"),
    # --- transport ----------------------------------------------------------------------------
    _c("sport", "int32", "int", "TCP/UDP source port (first fragment only)"),
    _c("dport", "int32", "int", "TCP/UDP destination port"),
    _c("tcp_flags", "int16", "int", "TCP flags, 12 bits as tshark tcp.flags (FIN=1 ... AE=0x100)"),
    _c("tcp_seq", "int64", "int", "raw TCP sequence number (not relative)"),
    _c("tcp_ack", "int64", "int", "raw TCP acknowledgement number"),
    _c("tcp_len", "int32", "int", "TCP payload length from the IP lengths (tshark tcp.len)"),
    _c("tcp_win", "int32", "int", "TCP window field, unscaled"),
    _c("tcp_mss", "int32", "int", "TCP MSS option"),
    _c("tcp_wscale", "int16", "int", "TCP window-scale option shift"),
    _c("tcp_sack_perm", "int8", "int", "1 when the SACK-permitted option is present, else 0/-1"),
    _c("tcp_ts_val", "int64", "int", "TCP timestamp option TSval"),
    _c("tcp_ts_ecr", "int64", "int", "TCP timestamp option TSecr"),
    _c("udp_len", "int32", "int", "UDP length field"),
    # --- ICMP / ICMPv6 ------------------------------------------------------------------------
    _c("icmp_type", "int16", "int", "ICMP or ICMPv6 type (see ip_proto for which)"),
    _c("icmp_code", "int16", "int", "ICMP or ICMPv6 code"),
    _c("icmp_id", "int32", "int", "echo identifier"),
    _c("icmp_seq", "int32", "int", "echo sequence number"),
    _c("icmp_mtu", "int32", "int", "next-hop MTU (frag needed) / Packet Too Big MTU"),
    _c("icmp_gateway", "int32", "ip", "redirect gateway address"),
    _c("icmp_inner_src", "int32", "ip", "source of the IP header quoted in an ICMP error"),
    _c("icmp_inner_dst", "int32", "ip", "destination of the quoted IP header"),
    _c("icmp_inner_proto", "int16", "int", "protocol of the quoted IP header"),
    _c("icmp_inner_ttl", "int16", "int", "TTL / hop limit of the quoted IP header"),
    _c("icmp_inner_id", "int32", "int", "IP id of the quoted IPv4 header"),
    _c("icmp_inner_sport", "int32", "int", "quoted TCP/UDP source port"),
    _c("icmp_inner_dport", "int32", "int", "quoted TCP/UDP destination port"),
    _c("icmp_inner_seq", "int64", "int", "quoted TCP sequence number"),
    # --- ARP ----------------------------------------------------------------------------------
    _c("arp_op", "int32", "int", "ARP opcode (1 request, 2 reply)"),
    _c("arp_sha", "int32", "mac", "ARP sender hardware address"),
    _c("arp_spa", "int32", "ip", "ARP sender protocol address"),
    _c("arp_tha", "int32", "mac", "ARP target hardware address"),
    _c("arp_tpa", "int32", "ip", "ARP target protocol address"),
    # --- IPsec / tunnels ----------------------------------------------------------------------
    _c("esp_spi", "int64", "int", "ESP SPI (also ESP in UDP 4500)"),
    _c("esp_seq", "int64", "int", "ESP sequence number"),
    _c("ike_ispi", "int64", "int", "IKE initiator SPI as a signed 64-bit view of the 8 bytes"),
    _c("ike_rspi", "int64", "int", "IKE responder SPI (signed 64-bit view)"),
    _c("ike_exchange", "int16", "int", "IKE exchange type (34 IKE_SA_INIT, 35 IKE_AUTH, ...)"),
    _c("ike_natt", "int8", "int", "on UDP 4500: 1 non-ESP marker + IKE, 2 NAT-T keepalive, 0 ESP"),
    _c(
        "tunnel", "int8", "int", "0 none, 1 VXLAN, 2 GRE, 3 IP-in-IP, 4 GENEVE (recognised only)", 0
    ),
    _c("vxlan_vni", "int32", "int", "VXLAN network identifier"),
    # --- bookkeeping --------------------------------------------------------------------------
    _c("payload_hash", "int64", "int", "hash of the first 64 bytes after the transport header"),
    _c("comment", "int32", "text", "pcapng packet comment"),
    _c("decode_error", "int32", "text", "why this frame could not be decoded fully, else absent"),
)

COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in PACKET_COLUMNS}
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PACKET_COLUMNS)

#: TCP flag bits as tshark numbers them
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR, TCP_AE = (
    0x001,
    0x002,
    0x004,
    0x008,
    0x010,
    0x020,
    0x040,
    0x080,
    0x100,
)

#: Linux cooked packet types (sll_pkttype)
PKTTYPE_NAMES = {0: "in", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "out"}

#: tunnel column values
TUNNEL_NAMES = {0: "", 1: "vxlan", 2: "gre", 3: "ipip", 4: "geneve"}

PacketChunk = dict[str, np.ndarray]


def empty_chunk(n: int) -> PacketChunk:
    """A chunk of ``n`` rows with every column at its 'absent' value."""
    chunk: PacketChunk = {}
    for col in PACKET_COLUMNS:
        chunk[col.name] = np.full(n, col.absent, dtype=col.dtype)
    return chunk
