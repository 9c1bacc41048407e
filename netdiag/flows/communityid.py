"""Community ID v1 flow hashes, computed for many flows at once, and ICMP type/code port mapping.

Community ID (https://github.com/corelight/community-id-spec) hashes a flow's 5-tuple into a text
that other tools (Zeek, Suricata, Arkime) print too, so a flow found here can be looked up there.
The hash input is ``seed | src | dst | proto | 0 | sport | dport`` in network byte order, ordered
so that both directions hash alike; ICMP and ICMPv6 map (type, code) to port equivalents, pairing
a request type with its reply type, while the other types are "one-way" and never reordered.

SHA-1 itself has no vector form in the standard library, so it runs once per flow (never per
packet); packing the inputs and the base64 encoding are numpy column operations.
"""

from __future__ import annotations

import hashlib

import numpy as np

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132

#: protocols whose hash input includes the two port fields
PORT_PROTOS = (PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6, PROTO_SCTP)

#: ICMP request/reply type pairs (echo, router solicitation/advert, timestamp, info, mask)
ICMP4_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
#: ICMPv6 pairs (echo, MLD query/report, router and neighbour discovery, who-are-you, HAAD)
ICMP6_COUNTERPART = {
    128: 129,
    129: 128,
    130: 131,
    131: 130,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def _counterpart_table(pairs: dict[int, int]) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int32)
    for mtype, other in pairs.items():
        table[mtype] = other
    return table


_ICMP4_TABLE = _counterpart_table(ICMP4_COUNTERPART)
_ICMP6_TABLE = _counterpart_table(ICMP6_COUNTERPART)

_B64_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
)


def icmp_port_equivalents(
    is_icmp6: np.ndarray, mtype: np.ndarray, mcode: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sport, dport, one_way) for ICMP messages: type, then counterpart type or else the code."""
    mtype = np.asarray(mtype, dtype=np.int32)
    mcode = np.asarray(mcode, dtype=np.int32)
    in_range = (mtype >= 0) & (mtype < 256)
    safe = np.where(in_range, mtype, 0)
    other = np.where(np.asarray(is_icmp6, dtype=bool), _ICMP6_TABLE[safe], _ICMP4_TABLE[safe])
    other = np.where(in_range, other, -1)
    one_way = other < 0
    dport = np.where(one_way, mcode, other)
    return mtype.copy(), dport.astype(np.int32), one_way


def _base64_of_sha1(digests: np.ndarray) -> np.ndarray:
    """(n, 20) uint8 digests -> (n,) "1:" + base64 (28 characters, one '=' of padding), as
    fixed-width ASCII bytes (numpy S30)."""
    n = len(digests)
    padded = np.zeros((n, 21), dtype=np.uint8)
    padded[:, :20] = digests
    groups = padded.reshape(n, 7, 3).astype(np.uint32)
    word = (groups[:, :, 0] << 16) | (groups[:, :, 1] << 8) | groups[:, :, 2]
    sextets = np.stack(
        [(word >> 18) & 63, (word >> 12) & 63, (word >> 6) & 63, word & 63], axis=2
    ).reshape(n, 28)
    text = np.empty((n, 30), dtype=np.uint8)
    text[:, 0], text[:, 1] = ord("1"), ord(":")
    text[:, 2:] = _B64_ALPHABET[sextets]
    text[:, 29] = ord("=")
    return text.view("S30").ravel()


def community_ids(*args, **kwargs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Community ID v1 texts ("1:<base64>") for n flows; see community_id_bytes."""
    return community_id_bytes(*args, **kwargs).astype(str)


def community_id_bytes(
    proto: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    addr_len: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    one_way: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """Community ID v1 of n flows as 30-byte ASCII strings (numpy S30, b"1:<base64>").

    ``src``/``dst`` are (n, 16) uint8 address bytes, left-aligned (an IPv4 address uses the first
    4 bytes, the rest zero); ``addr_len`` is 4 or 16 per flow. ``sport``/``dport`` are the port or
    ICMP port equivalents as sent (ignored for protocols without ports); ``one_way`` marks ICMP
    types without a counterpart, which keep their order. The tuple is ordered here as the spec
    says: smaller address first, or smaller port first when the addresses are equal.
    """
    proto = np.asarray(proto, dtype=np.int64)
    n = len(proto)
    if n == 0:
        return np.zeros(0, dtype="S30")
    src = np.asarray(src, dtype=np.uint8).reshape(n, 16)
    dst = np.asarray(dst, dtype=np.uint8).reshape(n, 16)
    addr_len = np.asarray(addr_len, dtype=np.int64)
    sport = np.asarray(sport, dtype=np.int64)
    dport = np.asarray(dport, dtype=np.int64)
    one_way = np.asarray(one_way, dtype=bool)

    # order: compare addresses as big-endian byte strings (same family within one flow)
    s_void = np.ascontiguousarray(src).view("S16").ravel()
    d_void = np.ascontiguousarray(dst).view("S16").ravel()
    ordered = one_way | (s_void < d_void) | ((s_void == d_void) & (sport < dport))
    keep = ordered[:, None]
    first = np.where(keep, src, dst)
    second = np.where(keep, dst, src)
    p1 = np.where(ordered, sport, dport)
    p2 = np.where(ordered, dport, sport)
    has_ports = np.isin(proto, PORT_PROTOS)

    digests = np.zeros((n, 20), dtype=np.uint8)
    for alen in (4, 16):
        for with_ports in (True, False):
            sel = np.flatnonzero((addr_len == alen) & (has_ports == with_ports))
            if len(sel) == 0:
                continue
            width = 2 + 2 * alen + 2 + (4 if with_ports else 0)
            buf = np.zeros((len(sel), width), dtype=np.uint8)
            buf[:, 0] = (seed >> 8) & 0xFF
            buf[:, 1] = seed & 0xFF
            buf[:, 2 : 2 + alen] = first[sel, :alen]
            buf[:, 2 + alen : 2 + 2 * alen] = second[sel, :alen]
            at = 2 + 2 * alen
            buf[:, at] = proto[sel] & 0xFF
            if with_ports:
                a, b = p1[sel] & 0xFFFF, p2[sel] & 0xFFFF
                buf[:, at + 2] = a >> 8
                buf[:, at + 3] = a & 0xFF
                buf[:, at + 4] = b >> 8
                buf[:, at + 5] = b & 0xFF
            raw = buf.tobytes()
            sha1 = hashlib.sha1
            joined = b"".join(sha1(raw[i : i + width]).digest() for i in range(0, len(raw), width))
            digests[sel] = np.frombuffer(joined, dtype=np.uint8).reshape(len(sel), 20)
    return _base64_of_sha1(digests)
