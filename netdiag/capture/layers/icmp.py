"""ICMP and ICMPv6: type, code, echo id/seq, MTU, redirect gateway, and the quoted headers.

An error message (unreachable, time exceeded, redirect, parameter problem, packet too big, source
quench) quotes the IP header and the first transport bytes of the packet that caused it; the
quoted addresses, protocol, TTL, IP id, ports and TCP sequence go to the ``icmp_inner_*`` columns.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.layers.ipv6 import walk_extensions

ICMP_HEADER_LEN = 8
#: types with an identifier: echo, timestamp, information, address mask, extended echo (RFC 8335)
ID_TYPES_V4 = (0, 8, 13, 14, 15, 16, 17, 18, 42, 43)
#: types with a 16-bit sequence number (extended echo has an 8-bit one)
SEQ_TYPES_V4 = (0, 8, 13, 14, 15, 16, 17, 18)
ERROR_TYPES_V4 = (3, 4, 5, 11, 12)
UNREACHABLE, FRAG_NEEDED, REDIRECT = 3, 4, 5
ECHO_TYPES_V6 = (128, 129)
ERROR_TYPES_V6 = (1, 2, 3, 4)
PACKET_TOO_BIG, ND_REDIRECT = 2, 137
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132


def _common(fr: Frames, st: DecodeState, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    base = fr.start[idx] + st.l4_off[idx]
    lim = fr.limit(idx)
    kind = np.where(base + 1 <= lim, fr.u8(base), -1)
    st.put("icmp_type", idx, kind, base + 1 <= lim)
    st.put("icmp_code", idx, fr.u8(base + 1), base + 2 <= lim)
    st.fail(idx[base + 4 > lim], "truncated ICMP header")
    st.payload_off[idx] = np.where(
        base + ICMP_HEADER_LEN <= lim, st.l4_off[idx] + ICMP_HEADER_LEN, -1
    )
    return base, lim, kind


def _echo(fr: Frames, st: DecodeState, idx, base, lim, with_id, with_seq) -> None:  # type: ignore[no-untyped-def]
    st.put("icmp_id", idx, fr.u16(base + 4), with_id & (base + 6 <= lim))
    st.put("icmp_seq", idx, fr.u16(base + 6), with_seq & (base + 8 <= lim))


def decode_v4(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base, lim, kind = _common(fr, st, idx)
    code = fr.u8(base + 1)
    _echo(fr, st, idx, base, lim, np.isin(kind, ID_TYPES_V4), np.isin(kind, SEQ_TYPES_V4))
    frag_needed = (kind == UNREACHABLE) & (code == FRAG_NEEDED)
    st.put("icmp_mtu", idx, fr.u16(base + 6), frag_needed & (base + 8 <= lim))
    redirect = kind == REDIRECT
    st.put_ip4("icmp_gateway", idx, fr.u32(base + 4), redirect & (base + 8 <= lim))
    error = np.isin(kind, ERROR_TYPES_V4)
    decode_quoted(fr, st, idx[error], base[error] + ICMP_HEADER_LEN, lim[error])


def decode_v6(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base, lim, kind = _common(fr, st, idx)
    echo = np.isin(kind, ECHO_TYPES_V6)
    _echo(fr, st, idx, base, lim, echo, echo)
    too_big = kind == PACKET_TOO_BIG
    st.put("icmp_mtu", idx, fr.u32(base + 4), too_big & (base + 8 <= lim))
    redirect = kind == ND_REDIRECT
    st.put_ip6("icmp_gateway", idx, fr.ip6(base + 8), redirect & (base + 24 <= lim))
    error = np.isin(kind, ERROR_TYPES_V6)
    decode_quoted(fr, st, idx[error], base[error] + ICMP_HEADER_LEN, lim[error])


def decode_quoted(fr: Frames, st: DecodeState, idx: np.ndarray, pos: np.ndarray, lim) -> None:  # type: ignore[no-untyped-def]
    """The IPv4 or IPv6 header (and transport ports) an ICMP error quotes, at ``pos``."""
    if len(idx) == 0:
        return
    version = np.where(pos + 1 <= lim, fr.u8(pos) >> 4, -1)
    l4_pos = np.full(len(idx), -1, dtype=np.int64)
    l4_proto = np.full(len(idx), -1, dtype=np.int64)

    v4 = version == 4
    if v4.any():
        rows, p, end = idx[v4], pos[v4], lim[v4]
        ihl = (fr.u8(p) & 0x0F) * 4
        st.put("icmp_inner_id", rows, fr.u16(p + 4), p + 6 <= end)
        st.put("icmp_inner_ttl", rows, fr.u8(p + 8), p + 9 <= end)
        proto = fr.u8(p + 9)
        st.put("icmp_inner_proto", rows, proto, p + 10 <= end)
        st.put_ip4("icmp_inner_src", rows, fr.u32(p + 12), p + 16 <= end)
        st.put_ip4("icmp_inner_dst", rows, fr.u32(p + 16), p + 20 <= end)
        first_fragment = (fr.u16(p + 6) & 0x1FFF) == 0
        whole = (ihl >= 20) & (p + ihl <= end) & first_fragment
        l4_pos[v4] = np.where(whole, p + ihl, -1)
        l4_proto[v4] = np.where(whole, proto, -1)

    v6 = version == 6
    if v6.any():
        rows, p, end = idx[v6], pos[v6], lim[v6]
        st.put("icmp_inner_ttl", rows, fr.u8(p + 7), p + 8 <= end)
        st.put_ip6("icmp_inner_src", rows, fr.ip6(p + 8), p + 24 <= end)
        st.put_ip6("icmp_inner_dst", rows, fr.ip6(p + 24), p + 40 <= end)
        walk = walk_extensions(fr, p + 40, end, fr.u8(p + 6))
        has_nh = p + 7 <= end
        whole = p + 40 <= end
        st.put("icmp_inner_proto", rows, np.where(whole, walk.next_header, fr.u8(p + 6)), has_nh)
        usable = whole & walk.complete
        l4_pos[v6] = np.where(usable, walk.pos, -1)
        l4_proto[v6] = np.where(usable, walk.next_header, -1)

    ported = np.isin(l4_proto, (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP))
    rows, p, end = idx[ported], l4_pos[ported], lim[ported]
    st.put("icmp_inner_sport", rows, fr.u16(p), p + 2 <= end)
    st.put("icmp_inner_dport", rows, fr.u16(p + 2), p + 4 <= end)
    tcp = l4_proto[ported] == IPPROTO_TCP
    st.put("icmp_inner_seq", rows, fr.u32(p + 4), tcp & (p + 8 <= end))
