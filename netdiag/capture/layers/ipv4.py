"""IPv4 header: addresses, lengths, fragments; hands the first fragment's payload to transport.

Fields are trusted in the order Wireshark trusts them: a header length under 20 stops after the
version and length, a total length shorter than the header stops after the total length, and a
total length of 0 (segmentation offload on the capturing host) means "as long as the frame".
An AH header is skipped to reach the protocol it protects; ``ip_proto`` stays 51 (the IPv4 field).
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames, Room, both

IPPROTO_AH = 51


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    off = st.l3_off[idx]
    base = fr.start[idx] + off
    room = Room(base, fr.limit(idx))
    # two 8-byte reads hold everything but the destination address
    low = np.uint64(0xFFFFFFFF)
    words01 = fr.u64(base)
    word0 = (words01 >> np.uint64(32)).astype(np.int64)  # version, header length, DSCP, length
    word1 = (words01 & low).astype(np.int64)  # identification, flags, fragment offset
    words2s = fr.u64(base + 8)
    word2 = (words2s >> np.uint64(32)).astype(np.int64)  # TTL, protocol, checksum
    src = (words2s & low).astype(np.int64)
    present = room.has(1)
    v4 = (word0 >> 28) == 4
    if present is not None:
        st.fail(idx[~present], "truncated IPv4 header")
        v4 &= present
    if not v4.all():
        st.fail(
            idx[~v4 & (present if present is not None else True)],
            "IPv4 ethertype with another IP version",
        )
        idx, off, base, word0, word1, word2, src = (
            idx[v4],
            off[v4],
            base[v4],
            word0[v4],
            word1[v4],
            word2[v4],
            src[v4],
        )
        room = Room(base, fr.limit(idx))
    ihl = ((word0 >> 24) & 0x0F) * 4
    total = word0 & 0xFFFF
    st.chunk["ip_version"][idx] = 4
    st.chunk["ip_hdr_len"][idx] = ihl
    sane_ihl = ihl >= 20
    has_total = both(sane_ihl, room.has(4))
    st.fail(idx[~sane_ihl], "bad IPv4 header length")
    st.put("ip_len", idx, total, has_total)
    go = both(has_total, (total >= ihl) | (total == 0))
    if go is not None and has_total is not None:
        st.fail(idx[has_total & ~go], "IPv4 total length shorter than its header")
    elif go is not None:
        st.fail(idx[~go], "IPv4 total length shorter than its header")
    st.put("ip_id", idx, word1 >> 16, both(go, room.has(6)))
    has_ff = both(go, room.has(8))
    st.put("ip_flags", idx, (word1 >> 13) & 0x7, has_ff)
    frag_offset = (word1 & 0x1FFF) * 8
    st.put("ip_frag_offset", idx, frag_offset, has_ff)
    st.put("ip_ttl", idx, word2 >> 24, both(go, room.has(9)))
    proto = (word2 >> 16) & 0xFF
    st.put("ip_proto", idx, proto, both(go, room.has(10)))
    st.put_ip4("ip_src", idx, src, both(go, room.has(16)))
    st.put_ip4("ip_dst", idx, fr.u32(base + 16), both(go, room.has(20)))

    # The datagram ends where its total length says (Ethernet padding is not payload), or
    # with the frame if that is shorter. A total length of 0 is an offloaded (TSO / BIG TCP)
    # segment: its length is the frame's, which ip_len then reports, like Wireshark.
    wire_end = fr.wire_end[idx]
    offloaded = total == 0
    ip_end = np.minimum(off + total, wire_end)
    if offloaded.any():
        ip_end = np.where(offloaded, wire_end, ip_end)
        st.put("ip_len", idx, wire_end - off, both(has_total, offloaded))
    if go is not None:
        idx, off, base, ihl, ip_end = idx[go], off[go], base[go], ihl[go], ip_end[go]
        proto, frag_offset = proto[go], frag_offset[go]
        has_ff = has_ff[go] if has_ff is not None else None
    st.ip_end[idx] = ip_end
    fr.end[idx] = np.minimum(fr.end[idx], ip_end)
    whole = base + ihl <= fr.limit(idx)
    st.fail(idx[~whole], "truncated IPv4 header")

    st.payload_off[idx[whole]] = off[whole] + ihl[whole]
    first = both(whole, has_ff, frag_offset == 0)
    assert first is not None
    rows = idx[first]
    l4_off = off[first] + ihl[first]
    l4_proto = proto[first]
    # AH (RFC 4302): length in 32-bit words minus 2; the protected protocol follows it.
    ah = l4_proto == IPPROTO_AH
    if ah.any():
        pos = fr.start[rows[ah]] + l4_off[ah]
        fits = pos + 2 <= fr.limit(rows[ah])
        ah_len = (fr.u8(pos + 1) + 2) * 4
        l4_proto[ah] = np.where(fits, fr.u8(pos), -1)
        l4_off[ah] = np.where(fits, l4_off[ah] + ah_len, -1)
        st.fail(rows[ah][~fits], "truncated AH header")
    st.l4_off[rows] = l4_off
    st.l4_proto[rows] = np.where(l4_off >= 0, l4_proto, -1)
