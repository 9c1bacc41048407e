"""IPv6 header and its extension header chain, walked column-wise with a bounded depth.

Hop-by-hop, routing, fragment, destination options and AH headers are skipped; ``ip_proto`` is
the upper-layer protocol after them and ``ip_hdr_len`` counts 40 plus the extensions. A fragment
header gives ``ip_id`` and ``ip_frag_offset``; only the first fragment's transport is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

IPV6_HEADER_LEN = 40
HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTIONS, AH = 0, 43, 44, 60, 51
EXTENSION_HEADERS = (HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTIONS, AH)
#: deepest chain walked; more than this is reported (RFC 8200 chains are short in practice)
MAX_EXTENSION_HEADERS = 8


@dataclass
class ExtensionWalk:
    """Where an extension chain ended, per row of the walk."""

    next_header: np.ndarray  # upper-layer protocol (or the last header seen)
    pos: np.ndarray  # absolute position of the upper-layer header
    complete: np.ndarray  # the whole chain was captured and the upper layer may be decoded
    frag_offset: np.ndarray  # fragment offset in bytes, -1 when no fragment header
    frag_id: np.ndarray  # fragment identification, -1 when no fragment header
    too_deep: np.ndarray  # the chain was longer than MAX_EXTENSION_HEADERS


def walk_extensions(
    fr: Frames, pos: np.ndarray, lim: np.ndarray, next_header: np.ndarray
) -> ExtensionWalk:
    """Skip extension headers from ``pos`` on, up to ``MAX_EXTENSION_HEADERS`` of them."""
    n = len(pos)
    nh = next_header.copy()
    pos = pos.copy()
    complete = np.ones(n, dtype=bool)
    frag_offset = np.full(n, -1, dtype=np.int64)
    frag_id = np.full(n, -1, dtype=np.int64)
    walking = np.isin(nh, EXTENSION_HEADERS)
    for _ in range(MAX_EXTENSION_HEADERS):
        rows = np.flatnonzero(walking)
        if len(rows) == 0:
            break
        p, kind = pos[rows], nh[rows]
        is_frag = kind == FRAGMENT
        need = np.where(is_frag, 8, 2)
        fits = p + need <= lim[rows]
        nxt = fr.u8(p)
        length = np.select(
            [is_frag, kind == AH], [8, (fr.u8(p + 1) + 2) * 4], (fr.u8(p + 1) + 1) * 8
        )
        frag_field = fr.u16(p + 2)
        offset = frag_field & 0xFFF8
        frag_rows = rows[is_frag & fits]
        frag_offset[frag_rows] = offset[is_frag & fits]
        frag_id[frag_rows] = fr.u32(p[is_frag & fits] + 4)
        nh[rows[fits]] = nxt[fits]
        whole = fits & (p + length <= lim[rows])
        pos[rows] = np.where(whole, p + length, p)
        # a later fragment carries no upper-layer header; a cut header ends the walk
        stop = ~whole | (is_frag & (offset > 0))
        complete[rows[stop]] = False
        walking[rows[stop]] = False
        walking[rows[~stop]] = np.isin(nxt[~stop], EXTENSION_HEADERS)
    too_deep = walking.copy()
    complete &= ~too_deep
    return ExtensionWalk(nh, pos, complete, frag_offset, frag_id, too_deep)


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    off = st.l3_off[idx]
    base = fr.start[idx] + off
    lim = fr.limit(idx)
    present = base + 1 <= lim
    v6 = present & ((fr.u8(base) >> 4) == 6)
    st.fail(idx[~present], "truncated IPv6 header")
    st.fail(idx[present & ~v6], "IPv6 ethertype with another IP version")
    idx, off, base, lim = idx[v6], off[v6], base[v6], lim[v6]
    st.chunk["ip_version"][idx] = 6
    payload_len = fr.u16(base + 4)
    st.put("ip_len", idx, payload_len + IPV6_HEADER_LEN, base + 6 <= lim)
    first_nh = fr.u8(base + 6)
    st.put("ip_ttl", idx, fr.u8(base + 7), base + 8 <= lim)
    st.put_ip6("ip_src", idx, fr.ip6(base + 8), base + 24 <= lim)
    st.put_ip6("ip_dst", idx, fr.ip6(base + 24), base + 40 <= lim)
    whole = base + IPV6_HEADER_LEN <= lim
    st.fail(idx[~whole], "truncated IPv6 header")
    st.put("ip_proto", idx, first_nh, base + 7 <= lim)

    # A payload length of 0 is a jumbogram or an offloaded segment: take what was captured.
    wire_end = fr.wire_end[idx]
    ip_end = np.minimum(off + IPV6_HEADER_LEN + payload_len, wire_end)
    ip_end = np.where(payload_len == 0, wire_end, ip_end)
    st.ip_end[idx[whole]] = ip_end[whole]
    fr.end[idx[whole]] = np.minimum(fr.end[idx[whole]], ip_end[whole])

    idx, off, base = idx[whole], off[whole], base[whole]
    walk = walk_extensions(fr, base + IPV6_HEADER_LEN, fr.limit(idx), first_nh[whole])
    st.chunk["ip_proto"][idx] = walk.next_header
    st.chunk["ip_hdr_len"][idx] = walk.pos - base
    fragment = walk.frag_id >= 0
    st.put("ip_id", idx, walk.frag_id, fragment)
    st.put("ip_frag_offset", idx, walk.frag_offset, fragment)
    st.fail(idx[walk.too_deep], "too many IPv6 extension headers")
    later_fragment = walk.frag_offset > 0
    st.fail(
        idx[~walk.complete & ~walk.too_deep & ~later_fragment], "truncated IPv6 extension header"
    )
    st.payload_off[idx] = np.where(walk.complete | later_fragment, walk.pos - fr.start[idx], -1)
    rows = idx[walk.complete]
    st.l4_off[rows] = walk.pos[walk.complete] - fr.start[rows]
    st.l4_proto[rows] = walk.next_header[walk.complete]
