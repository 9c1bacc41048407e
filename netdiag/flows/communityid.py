"""Community ID v1 flow hashes, computed for many flows at once, and ICMP type/code port mapping.

Community ID (https://github.com/corelight/community-id-spec) hashes a flow's 5-tuple into a text
that other tools (Zeek, Suricata, Arkime) print too, so a flow found here can be looked up there.
The hash input is ``seed | src | dst | proto | 0 | sport | dport`` in network byte order, ordered
so that both directions hash alike; ICMP and ICMPv6 map (type, code) to port equivalents, pairing
a request type with its reply type, while the other types are "one-way" and never reordered.

Packing the inputs into SHA-1 message words and the SHA-1 itself (netdiag.flows.sha1: every
input fits one block) are numpy column operations over all flows, and the base64 text is one
binascii call over all digests: no Python call per flow.
"""

from __future__ import annotations

import binascii

import numpy as np

from netdiag.flows.sha1 import sha1_of_words

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132

#: protocols whose hash input includes the two port fields
PORT_PROTOS = (PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6, PROTO_SCTP)

#: the SHA-1 padding word that follows a hash input ending on a word boundary (0x80 byte, zeros)
_PAD_WORD = 0x80000000

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
    # a zero byte after each digest makes rows of 21 bytes = 7 whole base64 groups, so encoding
    # the rows back to back in one call gives each row's 28 characters in place; the last one
    # (sextet of the zero byte, 'A') becomes the '=' that pads a 20-byte input
    padded = np.zeros((n, 21), dtype=np.uint8)
    padded[:, :20] = digests
    encoded = binascii.b2a_base64(padded.tobytes(), newline=False)
    text = np.empty((n, 30), dtype=np.uint8)
    text.view(np.uint16)[:, 0] = np.frombuffer(b"1:", dtype=np.uint16)[0]  # one 2-byte store
    text[:, 2:] = np.frombuffer(encoded, dtype=np.uint8).reshape(n, 28)
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
    src = np.ascontiguousarray(src)
    dst = np.ascontiguousarray(dst)
    s_void = src.view("S16").ravel()
    d_void = dst.view("S16").ravel()
    ordered = one_way | (s_void < d_void) | ((s_void == d_void) & (sport < dport))
    # addresses as native uint32 words of their big-endian bytes: one for IPv4, four for IPv6
    src_words, dst_words = src.view(">u4"), dst.view(">u4")
    p1 = np.where(ordered, sport, dport).astype(np.uint32) & 0xFFFF
    p2 = np.where(ordered, dport, sport).astype(np.uint32) & 0xFFFF
    proto_half = (proto.astype(np.uint32) & 0xFF) << 8  # proto byte, then the zero pad byte
    has_ports = np.isin(proto, PORT_PROTOS)

    # every row first as IPv4 (most flows), then the IPv6 rows replaced
    words = _message_words(
        seed & 0xFFFF,
        *_ordered_words(ordered, src_words[:, :1], dst_words[:, :1]),
        proto_half,
        p1,
        p2,
        has_ports,
    )
    v6 = np.flatnonzero(addr_len == 16)
    if len(v6):
        words[:, v6] = _message_words(
            seed & 0xFFFF,
            *_ordered_words(ordered[v6], src_words[v6], dst_words[v6]),
            proto_half[v6],
            p1[v6],
            p2[v6],
            has_ports[v6],
        )
    digests = sha1_of_words(words)
    # an address that is neither IPv4 nor IPv6 has no Community ID: all-zero digest as before
    digests[(addr_len != 4) & (addr_len != 16)] = 0
    return _base64_of_sha1(digests)


def _ordered_words(
    ordered: np.ndarray, src_words: np.ndarray, dst_words: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) addresses as (k, m) native uint32 words, from (m, k) big-endian words."""
    keep = ordered[:, None]
    first = np.where(keep, src_words, dst_words).astype(np.uint32).T
    second = np.where(keep, dst_words, src_words).astype(np.uint32).T
    return first, second


def _message_words(
    seed: int,
    first: np.ndarray,
    second: np.ndarray,
    proto_half: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    has_ports: np.ndarray,
) -> np.ndarray:
    """(16, m) uint32 SHA-1 message words of m Community ID inputs, padding included.

    ``first``/``second`` are the ordered addresses as (k, m) uint32 words, k = 1 for IPv4 and 4
    for IPv6. The input ``seed(16 bits), first, second, proto|0 (16 bits)`` is 2k + 1 words, its
    addresses shifted by the 16-bit seed; the ports (or the padding) follow on word 2k + 1.
    """
    m = len(proto_half)
    addresses = [*first, *second]
    words = np.zeros((16, m), dtype=np.uint32)
    np.right_shift(addresses[0], 16, out=words[0])
    words[0] |= seed << 16
    for i in range(1, len(addresses)):
        np.left_shift(addresses[i - 1], 16, out=words[i])
        words[i] |= addresses[i] >> 16
    last = len(addresses)
    np.left_shift(addresses[-1], 16, out=words[last])
    words[last] |= proto_half
    input_bits = 32 * (last + 1)
    words[last + 1] = np.where(has_ports, (p1 << 16) | p2, _PAD_WORD)
    words[last + 2] = np.where(has_ports, _PAD_WORD, 0)
    words[15] = np.where(has_ports, input_bits + 32, input_bits)
    return words
