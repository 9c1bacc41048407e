"""Per-packet observation columns for correlating captures: a NAT-proof packet signature and where.

A packet crossing a NAT keeps its IP id, IP length, TCP sequence/acknowledgement numbers, flags and
payload; its addresses and ports change and its TTL falls. The signature hashes the first kind
only, so one packet has one signature at every capture point, before and after a rewrite. An
ICMP error hashes the quoted header's IP id and TCP sequence instead of its payload: a NAT
rewrites the quoted addresses too. ARP packets hash their five fields (ARP is never translated).

Observations are built column-wise per decoded chunk while the capture streams past (all packets,
not only the ones the packet table keeps), so their memory is ~60 bytes a packet.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.schema import PacketChunk

#: the observation columns and their dtypes (one row per packet that has a signature)
OBSERVATION_DTYPES: dict[str, str] = {
    "sig": "int64",  # the NAT-proof signature (never 0)
    "frame": "int32",
    "ts_ns": "int64",  # the capture's own clock
    "link": "int32",  # SLL2 ifindex, else interface id + LINK_ID_IFACE_OFFSET
    "flow_id": "int32",  # -1 for ARP
    "flow_dir": "int8",
    "src": "int32",  # IP (ARP: sender protocol address) code of the shared address book
    "dst": "int32",
    "sport": "int32",
    "dport": "int32",
    "proto": "int16",  # IP protocol; -2 for ARP
    "ttl": "int16",
    "tflags": "int16",
    "eth_src": "int32",  # MAC codes: a packet forwarded by a MAC rewrite (LVS-DR) out of the
    "eth_dst": "int32",  # port it came in on is still one packet, a resend is not
    "pkttype": "int8",  # Linux cooked packet type (0 to us, 4 outgoing, ...), -1 otherwise
}

#: ICMP types that quote a packet (v4 unreachable, redirect, time exceeded, parameter problem;
#: v6 unreachable, too big, time exceeded, parameter problem)
_ICMP4_ERRORS = np.array([3, 5, 11, 12])
_ICMP6_ERRORS = np.array([1, 2, 3, 4])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fold one column into the running hash (splitmix64 finaliser over h xor value)."""
    x = h ^ (values.astype(np.int64, copy=False).view(np.uint64) + _GOLDEN)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))  # type: ignore[no-any-return]


#: columns hashed for every IP packet (invariant under address and port translation)
_IP_FIELDS = ("ip_version", "ip_proto", "ip_id", "ip_len", "ip_frag_offset")
_TRANSPORT_FIELDS: tuple[str, ...] = (
    "tcp_seq",
    "tcp_ack",
    "tcp_flags",
    "udp_len",
    "icmp_type",
    "icmp_code",
)
_TRANSPORT_FIELDS += ("icmp_id", "icmp_seq", "esp_spi", "esp_seq")
_QUOTE_FIELDS = ("icmp_inner_proto", "icmp_inner_id", "icmp_inner_seq")
_ARP_FIELDS = ("arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa")


def signatures(chunk: PacketChunk) -> np.ndarray:
    """The signature of every packet of a decoded chunk as int64; 0 = none (not IP, not ARP,
    or a fragment/error frame whose fields are partial)."""
    n = len(chunk["frame"])
    with np.errstate(over="ignore"):
        h = np.full(n, 0x6E6574646961, dtype=np.uint64)  # "netdia"
        for name in _IP_FIELDS + _TRANSPORT_FIELDS:
            h = _mix(h, chunk[name])
        proto = chunk["ip_proto"]
        itype = chunk["icmp_type"]
        is_error = ((proto == 1) & np.isin(itype, _ICMP4_ERRORS)) | (
            (proto == 58) & np.isin(itype, _ICMP6_ERRORS)
        )
        # the quoted header's addresses are rewritten by a NAT: an error hashes what is not
        payload = np.where(is_error, -1, chunk["payload_hash"])
        h = _mix(h, payload)
        for name in _QUOTE_FIELDS:
            h = _mix(h, chunk[name])
        # packets with nothing random in them (IPv6 neighbour discovery and MLD, IPv4 with IP id
        # 0, no TCP sequence and no UDP payload) would be "the same packet" from every host that sends them: they
        # keep their addresses in the signature and match only where they are not translated
        echo = ((proto == 1) & np.isin(itype, (0, 8))) | (
            (proto == 58) & np.isin(itype, (128, 129))
        )
        plain = (proto != 6) & ~echo & ((chunk["ip_version"] == 6) | (chunk["ip_id"] <= 0))
        plain &= chunk["esp_spi"] < 0
        # a UDP payload (DNS id and name, NTP times, QUIC connection ids) is random enough
        plain &= ~((proto == 17) & (chunk["udp_len"] > 8) & (chunk["payload_hash"] != -1))
        h = np.where(plain, _mix(_mix(h, chunk["ip_src"]), chunk["ip_dst"]), h)
        arp = np.full(n, 0x617270, dtype=np.uint64)
        for name in _ARP_FIELDS:
            arp = _mix(arp, chunk[name])
    sig = np.where(chunk["ip_version"] > 0, h, np.where(chunk["arp_op"] >= 0, arp, 0))
    sig = sig.view(np.int64)
    sig[sig == 0] = 1  # 0 means "none"
    sig[(chunk["ip_version"] == 0) & (chunk["arp_op"] < 0)] = 0
    return sig


def observation_chunk(chunk: PacketChunk) -> dict[str, np.ndarray]:
    """The observation rows of one decoded chunk (flow columns already added by the builder)."""
    from netdiag.engine.context import LINK_ID_IFACE_OFFSET

    sig = signatures(chunk)
    keep = np.flatnonzero(sig != 0)
    ifindex = chunk["sll_ifindex"][keep].astype(np.int64)
    iface = chunk["iface"][keep].astype(np.int64)
    is_arp = chunk["ip_version"][keep] == 0
    proto = chunk["ip_proto"][keep]
    itype = chunk["icmp_type"][keep]
    echo = ((proto == 1) & np.isin(itype, (0, 8))) | ((proto == 58) & np.isin(itype, (128, 129)))
    out = {
        "sig": sig[keep],
        "frame": chunk["frame"][keep],
        "ts_ns": chunk["ts_ns"][keep],
        "link": np.where(ifindex >= 0, ifindex, iface + LINK_ID_IFACE_OFFSET),
        "flow_id": chunk["flow_id"][keep],
        "flow_dir": chunk["flow_dir"][keep],
        "src": np.where(is_arp, chunk["arp_spa"][keep], chunk["ip_src"][keep]),
        "dst": np.where(is_arp, chunk["arp_tpa"][keep], chunk["ip_dst"][keep]),
        # an ICMP echo's identifier is its "port": SNAT rewrites it, and it tells pings apart
        "sport": np.where(echo, chunk["icmp_id"][keep], chunk["sport"][keep]),
        "dport": chunk["dport"][keep],
        "proto": np.where(is_arp, -2, chunk["ip_proto"][keep]),
        "ttl": chunk["ip_ttl"][keep],
        "tflags": chunk["tcp_flags"][keep],
        "eth_src": chunk["eth_src"][keep],
        "eth_dst": chunk["eth_dst"][keep],
        "pkttype": chunk["sll_pkttype"][keep],
    }
    return {k: np.ascontiguousarray(v, dtype=OBSERVATION_DTYPES[k]) for k, v in out.items()}


def join_observations(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One observation table from the chunks' parts (empty columns when there are none)."""
    if not parts:
        return {k: np.zeros(0, dtype=d) for k, d in OBSERVATION_DTYPES.items()}
    return {k: np.concatenate([p[k] for p in parts]) for k in OBSERVATION_DTYPES}


def observations_from_packets(packets: object) -> dict[str, np.ndarray]:
    """Observation rows of a packet table (for a capture read without them: its kept packets)."""
    import pandas as pd

    assert isinstance(packets, pd.DataFrame)
    needed = set(_IP_FIELDS + _TRANSPORT_FIELDS + _QUOTE_FIELDS + _ARP_FIELDS)
    needed |= {"frame", "ts_ns", "sll_ifindex", "iface", "flow_id", "flow_dir", "ip_src", "ip_dst"}
    needed |= {
        "sport",
        "dport",
        "ip_ttl",
        "payload_hash",
        "icmp_type",
        "eth_src",
        "eth_dst",
        "sll_pkttype",
    }
    chunk: dict[str, np.ndarray] = {}
    for name in needed:
        column = packets[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            chunk[name] = column.cat.codes.to_numpy().astype(np.int32)
        else:
            chunk[name] = column.to_numpy()
    return observation_chunk(chunk)
