"""Column-wise frame builders: a packet plan (a row per packet) becomes frame bytes in a 2-D array.

A *plan* is a dict of equal-length numpy arrays (``PLAN_COLUMNS``), one row per packet, saying what
each packet is (``kind``) and the values of its header fields; hosts are indices into a
:class:`HostTable`. :func:`build_rows` turns a plan into a uint8 array of shape ``(n, width)`` in
which row ``i`` holds, after ``lead`` reserved bytes, the link-layer frame of packet ``i``. Every
header of one kind is filled for all its rows at once from a template (no per-packet Python
objects), and every checksum (IPv4, TCP, UDP, ICMP, ICMPv6, quoted headers) is computed with
vectorised one's-complement sums. TCP payload bytes are slices of one seeded block of printable
text, whose word prefix sums give each payload's checksum contribution without touching its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- packet kinds: each fixes the layout of everything after the link-layer header ---------------
TCP4_SYN, TCP4_TS, TCP4_PLAIN = 0, 1, 2  # TCP with SYN options / timestamps only / no options
TCP6_SYN, TCP6_TS, TCP6_PLAIN = 3, 4, 5
DNS4_QUERY, DNS4_REPLY, DNS6_QUERY, DNS6_REPLY = 6, 7, 8, 9
UDP4_PROBE = 10  # traceroute probe: UDP to 33434+ with a 32-byte pattern
ICMP4_ECHO, ICMP6_ECHO = 11, 12  # request or reply, by icmp_type
ICMP4_TE_UDP, ICMP4_TE_TCP = 13, 14  # time exceeded quoting an IPv4 header + 8 bytes of UDP/TCP
ARP = 15
N_KINDS = 16

KIND_NAMES = (
    "tcp4_syn",
    "tcp4_ts",
    "tcp4_plain",
    "tcp6_syn",
    "tcp6_ts",
    "tcp6_plain",
    "dns4_query",
    "dns4_reply",
    "dns6_query",
    "dns6_reply",
    "udp4_probe",
    "icmp4_echo",
    "icmp6_echo",
    "icmp4_te_udp",
    "icmp4_te_tcp",
    "arp",
)

#: link types the builder can put in front of a packet (LINKTYPE_* numbers)
LINK_ETHERNET = 1
LINK_SLL2 = 276
LINK_HEADER_LEN = {LINK_ETHERNET: 14, LINK_SLL2: 20}

#: the plan: column name -> dtype. Absent values are 0 unless the kind uses the field.
PLAN_COLUMNS: dict[str, str] = {
    "ts_ns": "int64",  # capture timestamp, ns since the epoch
    "kind": "uint8",
    "link": "int16",  # LINKTYPE of the interface the packet is written on
    "iface": "int16",  # pcapng interface index
    "ifindex": "int32",  # SLL2 interface index
    "pkttype": "int8",  # SLL2 packet type (0 host, 1 broadcast, 4 outgoing)
    "comment": "int16",  # index into the capture's comment texts, -1 none
    "conn": "int32",  # ground truth: TCP connection id, -1 otherwise
    "eth_src": "int32",  # host index whose MAC is the link source
    "eth_dst": "int32",  # host index whose MAC is the link destination
    "src": "int32",  # host index of the IP source (ARP: sender)
    "dst": "int32",  # host index of the IP destination (ARP: target)
    "ttl": "uint8",
    "ip_id": "uint16",
    "df": "bool",
    "sport": "uint16",
    "dport": "uint16",
    "seq": "uint32",
    "ack": "uint32",
    "flags": "uint16",  # TCP flags as tshark's tcp.flags
    "win": "uint16",
    "tsval": "uint32",
    "tsecr": "uint32",
    "mss": "uint16",
    "wscale": "uint8",
    "plen": "int32",  # bytes of TCP payload taken from the payload block
    "poff": "int32",  # where in the payload block (even)
    "icmp_type": "uint8",
    "icmp_id": "uint16",
    "icmp_seq": "uint16",
    "dns_id": "uint16",
    "dns_name": "int32",  # number in the query name h<6 digits>.example.net
    "dns_addr": "int32",  # host index whose IPv4 address the reply carries
    "arp_op": "uint8",
    "q_src": "int32",  # quoted packet of an ICMP error: hosts, ports, seq, ip id, length
    "q_dst": "int32",
    "q_sport": "uint16",
    "q_dport": "uint16",
    "q_seq": "uint32",
    "q_ip_id": "uint16",
}


@dataclass
class HostTable:
    """Addresses of every host a scenario uses; plans refer to hosts by row index."""

    v4: np.ndarray  # uint32 (n,)
    v6: np.ndarray  # uint8 (n, 16)
    mac: np.ndarray  # uint8 (n, 6)
    name: list[str]  # what the host is, for ground truth tables

    def __len__(self) -> int:
        return len(self.v4)

    def v4_text(self, idx: np.ndarray) -> list[str]:
        v = self.v4[idx].astype(np.int64)
        return [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in v.tolist()]


#: plan columns whose "none" value is -1 rather than 0
_MINUS_ONE = ("comment", "conn")


def empty_plan(n: int) -> dict[str, np.ndarray]:
    plan = {name: np.zeros(n, dtype=dt) for name, dt in PLAN_COLUMNS.items()}
    for name in _MINUS_ONE:
        plan[name][:] = -1
    return plan


def take_plan(plan: dict[str, np.ndarray], idx: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in plan.items()}


def concat_plans(plans: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in plans]) for k in PLAN_COLUMNS}


# --- byte helpers ---------------------------------------------------------------------------------


def _put16(a: np.ndarray, col: int, v: np.ndarray | int) -> None:
    v = np.asarray(v, dtype=np.int64)
    a[:, col] = (v >> 8) & 0xFF
    a[:, col + 1] = v & 0xFF


def _put32(a: np.ndarray, col: int, v: np.ndarray | int) -> None:
    v = np.asarray(v, dtype=np.int64)
    a[:, col] = (v >> 24) & 0xFF
    a[:, col + 1] = (v >> 16) & 0xFF
    a[:, col + 2] = (v >> 8) & 0xFF
    a[:, col + 3] = v & 0xFF


def _words(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Sum of the big-endian 16-bit words in columns [start, stop) (stop - start even)."""
    seg = a[:, start:stop].astype(np.int64)
    return (seg[:, 0::2] << 8).sum(axis=1) + seg[:, 1::2].sum(axis=1)


def _fold(total: np.ndarray) -> np.ndarray:
    """One's-complement checksum field from a sum of 16-bit words."""
    s = total.astype(np.int64)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _addr_words_v4(v4: np.ndarray) -> np.ndarray:
    v = v4.astype(np.int64)
    return (v >> 16) + (v & 0xFFFF)


def _addr_words_v6(v6: np.ndarray) -> np.ndarray:
    b = v6.astype(np.int64)
    return (b[:, 0::2] << 8).sum(axis=1) + b[:, 1::2].sum(axis=1)


class PayloadBlock:
    """A seeded block of random printable ASCII; payloads are slices starting at even offsets.

    Printable text, not random bytes: tshark's heuristic dissectors (Thrift, ...) claim some
    random binary segments and then report them as malformed."""

    def __init__(self, seed: int, size: int = 1 << 16) -> None:
        rng = np.random.default_rng([seed, 0x5EED])
        self.data = rng.integers(0x20, 0x7F, size=size, dtype=np.uint8)
        words = (self.data[0::2].astype(np.int64) << 8) | self.data[1::2].astype(np.int64)
        self.prefix = np.concatenate(([0], np.cumsum(words)))

    def offsets(self, rng: np.random.Generator, n: int, max_len: int = 1460) -> np.ndarray:
        return rng.integers(0, (len(self.data) - max_len) // 2, size=n).astype(np.int32) * 2

    def word_sum(self, poff: np.ndarray, plen: np.ndarray) -> np.ndarray:
        """Sum of the 16-bit words of each payload (an odd last byte is padded with zero)."""
        w0 = poff.astype(np.int64) // 2
        plen = plen.astype(np.int64)
        s = self.prefix[w0 + plen // 2] - self.prefix[w0]
        odd = (plen & 1).astype(bool)
        last = self.data[np.where(odd, poff + plen - 1, 0)].astype(np.int64) << 8
        return s + np.where(odd, last, 0)


# --- network + transport layers, one builder per kind ---------------------------------------------

_PROTO_TCP, _PROTO_UDP, _PROTO_ICMP, _PROTO_ICMP6 = 6, 17, 1, 58


def _ipv4(
    a: np.ndarray,
    p: dict[str, np.ndarray],
    hosts: HostTable,
    total_len: np.ndarray,
    proto: int,
    src: np.ndarray,
    dst: np.ndarray,
) -> None:
    """IPv4 header in columns 0..19 of ``a``, with its checksum."""
    a[:, 0] = 0x45
    _put16(a, 2, total_len)
    _put16(a, 4, p["ip_id"])
    a[:, 6] = np.where(p["df"], 0x40, 0)
    a[:, 8] = p["ttl"]
    a[:, 9] = proto
    _put32(a, 12, hosts.v4[src])
    _put32(a, 16, hosts.v4[dst])
    _put16(a, 10, _fold(_words(a, 0, 20)))


def _ipv6(
    a: np.ndarray, p: dict[str, np.ndarray], hosts: HostTable, payload_len: np.ndarray, nh: int
) -> None:
    a[:, 0] = 0x60
    _put16(a, 4, payload_len)
    a[:, 6] = nh
    a[:, 7] = p["ttl"]
    a[:, 8:24] = hosts.v6[p["src"]]
    a[:, 24:40] = hosts.v6[p["dst"]]


def _pseudo(
    p: dict[str, np.ndarray], hosts: HostTable, v6: bool, proto: int, l4_len: np.ndarray
) -> np.ndarray:
    ln = l4_len.astype(np.int64)
    if v6:
        return (
            _addr_words_v6(hosts.v6[p["src"]])
            + _addr_words_v6(hosts.v6[p["dst"]])
            + (ln >> 16)
            + (ln & 0xFFFF)
            + proto
        )
    return _addr_words_v4(hosts.v4[p["src"]]) + _addr_words_v4(hosts.v4[p["dst"]]) + ln + proto


_TCP_OPT_LEN = {0: 20, 1: 12, 2: 0}  # SYN options / NOP NOP TS / none


def _tcp(
    p: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock, v6: bool, opt: int
) -> np.ndarray:
    n = len(p["kind"])
    ip_len = 40 if v6 else 20
    thl = 20 + _TCP_OPT_LEN[opt]
    a = np.zeros((n, ip_len + thl), dtype=np.uint8)
    plen = p["plen"].astype(np.int64)
    l4_len = thl + plen
    t = a[:, ip_len:]
    _put16(t, 0, p["sport"])
    _put16(t, 2, p["dport"])
    _put32(t, 4, p["seq"])
    _put32(t, 8, p["ack"])
    flags = p["flags"].astype(np.int64)
    t[:, 12] = ((thl // 4) << 4) | ((flags >> 8) & 1)
    t[:, 13] = flags & 0xFF
    _put16(t, 14, p["win"])
    if opt == 0:  # Linux SYN: MSS, SACK permitted, timestamps, NOP, window scale
        t[:, 20:22] = (2, 4)
        _put16(t, 22, p["mss"])
        t[:, 24:28] = (4, 2, 8, 10)
        _put32(t, 28, p["tsval"])
        _put32(t, 32, p["tsecr"])
        t[:, 36:39] = (1, 3, 3)
        t[:, 39] = p["wscale"]
    elif opt == 1:
        t[:, 20:24] = (1, 1, 8, 10)
        _put32(t, 24, p["tsval"])
        _put32(t, 28, p["tsecr"])
    total = _words(t, 0, thl) + _pseudo(p, hosts, v6, _PROTO_TCP, l4_len)
    total += block.word_sum(p["poff"], plen)
    _put16(t, 16, _fold(total))
    if v6:
        _ipv6(a, p, hosts, l4_len, _PROTO_TCP)
    else:
        _ipv4(a, p, hosts, 20 + l4_len, _PROTO_TCP, p["src"], p["dst"])
    return a


_DNS_QNAME_TAIL = b"\x07example\x03net\x00"
_DNS_QLEN = 12 + 1 + 7 + len(_DNS_QNAME_TAIL) + 4  # header, h<6 digits>, tail, qtype+qclass
_DNS_RLEN = _DNS_QLEN + 16  # + one A answer with a compressed name


def _udp_payload(p: dict[str, np.ndarray], hosts: HostTable, kind: int) -> np.ndarray:
    """The UDP payload of a kind that carries a templated one (DNS, traceroute probe)."""
    n = len(p["kind"])
    if kind == UDP4_PROBE:
        return np.tile(np.arange(0x40, 0x60, dtype=np.uint8), (n, 1))
    reply = kind in (DNS4_REPLY, DNS6_REPLY)
    d = np.zeros((n, _DNS_RLEN if reply else _DNS_QLEN), dtype=np.uint8)
    _put16(d, 0, p["dns_id"])
    _put16(d, 2, 0x8180 if reply else 0x0100)
    _put16(d, 4, 1)
    _put16(d, 6, 1 if reply else 0)
    d[:, 12] = 7
    d[:, 13] = ord("h")
    name = p["dns_name"].astype(np.int64)
    for k in range(6):
        d[:, 19 - k] = (name // 10**k) % 10 + ord("0")
    q_end = 20 + len(_DNS_QNAME_TAIL)
    d[:, 20:q_end] = np.frombuffer(_DNS_QNAME_TAIL, dtype=np.uint8)
    _put16(d, q_end, 1)
    _put16(d, q_end + 2, 1)
    if reply:
        r = q_end + 4
        d[:, r : r + 2] = (0xC0, 0x0C)
        _put16(d, r + 2, 1)
        _put16(d, r + 4, 1)
        _put32(d, r + 6, 300)
        _put16(d, r + 10, 4)
        _put32(d, r + 12, hosts.v4[p["dns_addr"]])
    return d


def _udp(p: dict[str, np.ndarray], hosts: HostTable, kind: int, v6: bool) -> np.ndarray:
    body = _udp_payload(p, hosts, kind)
    n = len(body)
    ip_len = 40 if v6 else 20
    a = np.zeros((n, ip_len + 8 + body.shape[1]), dtype=np.uint8)
    u = a[:, ip_len:]
    u[:, 8:] = body
    l4_len = np.full(n, 8 + body.shape[1], dtype=np.int64)
    _put16(u, 0, p["sport"])
    _put16(u, 2, p["dport"])
    _put16(u, 4, l4_len)
    padded = u if u.shape[1] % 2 == 0 else np.pad(u, ((0, 0), (0, 1)))
    csum = _fold(_words(padded, 0, padded.shape[1]) + _pseudo(p, hosts, v6, _PROTO_UDP, l4_len))
    _put16(u, 6, np.where(csum == 0, 0xFFFF, csum))
    if v6:
        _ipv6(a, p, hosts, l4_len, _PROTO_UDP)
    else:
        _ipv4(a, p, hosts, 20 + l4_len, _PROTO_UDP, p["src"], p["dst"])
    return a


def _echo_data(p: dict[str, np.ndarray]) -> np.ndarray:
    """56 bytes as Linux ping sends them: a struct timeval (little endian), then 0x10, 0x11, ..."""
    n = len(p["kind"])
    d = np.zeros((n, 56), dtype=np.uint8)
    # the sender's clock, not the capturing point's (see scenario.observe: clock offsets)
    sent = p["payload_ts_ns"] if "payload_ts_ns" in p else p["ts_ns"]
    sec = sent // 1_000_000_000
    usec = (sent // 1000) % 1_000_000
    for k in range(4):
        d[:, k] = (sec >> (8 * k)) & 0xFF
        d[:, 8 + k] = (usec >> (8 * k)) & 0xFF
    d[:, 16:] = np.arange(0x10, 0x38, dtype=np.uint8)
    return d


def _icmp_echo(p: dict[str, np.ndarray], hosts: HostTable, v6: bool) -> np.ndarray:
    n = len(p["kind"])
    ip_len = 40 if v6 else 20
    a = np.zeros((n, ip_len + 64), dtype=np.uint8)
    m = a[:, ip_len:]
    m[:, 0] = p["icmp_type"]
    _put16(m, 4, p["icmp_id"])
    _put16(m, 6, p["icmp_seq"])
    m[:, 8:] = _echo_data(p)
    total = _words(m, 0, 64)
    l4_len = np.full(n, 64, dtype=np.int64)
    if v6:
        total = total + _pseudo(p, hosts, True, _PROTO_ICMP6, l4_len)
    _put16(m, 2, _fold(total))
    if v6:
        _ipv6(a, p, hosts, l4_len, _PROTO_ICMP6)
    else:
        _ipv4(a, p, hosts, 20 + l4_len, _PROTO_ICMP, p["src"], p["dst"])
    return a


def _quoted(
    p: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock, tcp: bool
) -> np.ndarray:
    """IPv4 header + first 8 transport bytes of the packet an ICMP error refers to, as the router
    received it (TTL 1), rebuilt with the probe's own builder so its checksums are right."""
    n = len(p["kind"])
    q = {k: np.zeros(n, dtype=dt) for k, dt in PLAN_COLUMNS.items()}
    q["kind"][:] = TCP4_SYN if tcp else UDP4_PROBE
    q["src"], q["dst"] = p["q_src"], p["q_dst"]
    q["sport"], q["dport"] = p["q_sport"], p["q_dport"]
    q["seq"], q["ip_id"] = p["q_seq"], p["q_ip_id"]
    q["ttl"][:] = 1
    q["df"][:] = tcp
    q["flags"][:] = 0x002
    q["win"][:] = 64240
    q["mss"][:] = 1460
    q["wscale"][:] = 7
    full = _tcp(q, hosts, block, False, 0) if tcp else _udp(q, hosts, UDP4_PROBE, False)
    return full[:, :28]


def _icmp_time_exceeded(
    p: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock, tcp: bool
) -> np.ndarray:
    n = len(p["kind"])
    a = np.zeros((n, 20 + 8 + 28), dtype=np.uint8)
    m = a[:, 20:]
    m[:, 0] = 11
    m[:, 8:] = _quoted(p, hosts, block, tcp)
    _put16(m, 2, _fold(_words(m, 0, 36)))
    _ipv4(a, p, hosts, np.full(n, 56), _PROTO_ICMP, p["src"], p["dst"])
    return a


def _arp(p: dict[str, np.ndarray], hosts: HostTable) -> np.ndarray:
    n = len(p["kind"])
    a = np.zeros((n, 28), dtype=np.uint8)
    a[:, 0:8] = (0, 1, 8, 0, 6, 4, 0, 0)
    a[:, 7] = p["arp_op"]
    a[:, 8:14] = hosts.mac[p["src"]]
    _put32(a, 14, hosts.v4[p["src"]])
    request = p["arp_op"] == 1
    a[:, 18:24] = np.where(request[:, None], 0, hosts.mac[p["dst"]])
    _put32(a, 24, hosts.v4[p["dst"]])
    return a


def build_network(
    kind: int, p: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock
) -> tuple[np.ndarray, int]:
    """Bytes after the link header of rows all of one ``kind`` (without the block payload),
    and the ethertype they need."""
    if kind <= TCP6_PLAIN:
        v6 = kind >= TCP6_SYN
        return _tcp(p, hosts, block, v6, kind % 3), 0x86DD if v6 else 0x0800
    if kind in (DNS4_QUERY, DNS4_REPLY, UDP4_PROBE):
        return _udp(p, hosts, kind, False), 0x0800
    if kind in (DNS6_QUERY, DNS6_REPLY):
        return _udp(p, hosts, kind, True), 0x86DD
    if kind == ICMP4_ECHO:
        return _icmp_echo(p, hosts, False), 0x0800
    if kind == ICMP6_ECHO:
        return _icmp_echo(p, hosts, True), 0x86DD
    if kind in (ICMP4_TE_UDP, ICMP4_TE_TCP):
        return _icmp_time_exceeded(p, hosts, block, kind == ICMP4_TE_TCP), 0x0800
    if kind == ARP:
        return _arp(p, hosts), 0x0806
    raise ValueError(f"unknown packet kind {kind}")


def _link_header(
    link: int, p: dict[str, np.ndarray], hosts: HostTable, ethertype: int
) -> np.ndarray:
    n = len(p["kind"])
    if link == LINK_ETHERNET:
        h = np.zeros((n, 14), dtype=np.uint8)
        dst = hosts.mac[np.maximum(p["eth_dst"], 0)]
        h[:, 0:6] = np.where((p["eth_dst"] < 0)[:, None], 0xFF, dst)
        h[:, 6:12] = hosts.mac[p["eth_src"]]
        _put16(h, 12, ethertype)
        return h
    if link == LINK_SLL2:
        h = np.zeros((n, 20), dtype=np.uint8)
        _put16(h, 0, ethertype)
        _put32(h, 4, p["ifindex"])
        _put16(h, 8, 1)  # ARPHRD_ETHER
        h[:, 10] = p["pkttype"]
        h[:, 11] = 6
        h[:, 12:18] = hosts.mac[p["eth_src"]]
        return h
    raise ValueError(f"unsupported link type {link}")


def frame_lengths(p: dict[str, np.ndarray]) -> np.ndarray:
    """Length of every planned frame, computed from the layouts without building bytes."""
    kind = p["kind"].astype(np.int64)
    net = _NET_LEN[kind]
    link = np.where(p["link"] == LINK_SLL2, 20, 14)
    return link + net + p["plen"].astype(np.int64)


def _network_lengths() -> np.ndarray:
    lens = np.zeros(N_KINDS, dtype=np.int64)
    for k in range(6):
        lens[k] = (40 if k >= TCP6_SYN else 20) + 20 + _TCP_OPT_LEN[k % 3]
    lens[[DNS4_QUERY, DNS4_REPLY]] = (28 + _DNS_QLEN, 28 + _DNS_RLEN)
    lens[[DNS6_QUERY, DNS6_REPLY]] = (48 + _DNS_QLEN, 48 + _DNS_RLEN)
    lens[UDP4_PROBE] = 60
    lens[ICMP4_ECHO], lens[ICMP6_ECHO] = 84, 104
    lens[[ICMP4_TE_UDP, ICMP4_TE_TCP]] = 56
    lens[ARP] = 28
    return lens


_NET_LEN = _network_lengths()


def build_rows(
    p: dict[str, np.ndarray], hosts: HostTable, block: PayloadBlock, lead: int, tail: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a plan as rows of a 2-D uint8 array: ``lead`` free bytes, the frame, then room
    for ``tail`` bytes of record trailer. Returns ``(rows, frame_lengths)``."""
    n = len(p["kind"])
    flen = frame_lengths(p)
    width = lead + (int(flen.max()) if n else 0) + tail
    rows = np.zeros((n, width), dtype=np.uint8)
    kind = p["kind"]
    link = p["link"]
    # group rows by (kind, link) with one stable sort instead of a mask per combination
    key = kind.astype(np.int64) * 1024 + (link == LINK_SLL2)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for sel in np.split(order, bounds):
        if not len(sel):
            continue
        sub = take_plan(p, sel)
        k, lk = int(kind[sel[0]]), int(link[sel[0]])
        net, ethertype = build_network(k, sub, hosts, block)
        hdr = _link_header(lk, sub, hosts, ethertype)
        start = lead
        rows[sel, start : start + hdr.shape[1]] = hdr
        start += hdr.shape[1]
        rows[sel, start : start + net.shape[1]] = net
        start += net.shape[1]
        plen = sub["plen"]
        if k <= TCP6_PLAIN and plen.max() > 0:
            with_data = plen > 0
            idx = sel[with_data]
            room = int(plen.max())  # bytes past a row's own payload are cut off by the writer
            window = np.lib.stride_tricks.sliding_window_view(block.data, room)
            rows[idx, start : start + room] = window[sub["poff"][with_data]]
    return rows, flen
