"""IPv4 header: addresses, lengths, fragments; hands the first fragment's payload to transport.

Fields are read in the order Wireshark trusts them: a header length under 20 stops after the
version and length, a total length shorter than the header stops after the total length, and a
total length of 0 (TCP segmentation offload on the capturing host) means "as captured".
An AH header is skipped to reach the protocol it protects; ``ip_proto`` stays 51 (the IPv4 field).
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

IPPROTO_AH = 51


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    off = st.l3_off[idx]
    base = fr.start[idx] + off
    lim = fr.limit(idx)
    vihl = fr.u8(base)
    present = (base + 1 <= lim)
    v4 = present & ((vihl >> 4) == 4)
    st.fail(idx[~present], "truncated IPv4 header")
    st.fail(idx[present & ~v4], "IPv4 ethertype with another IP version")
    idx, off, base, lim, vihl = idx[v4], off[v4], base[v4], lim[v4], vihl[v4]
    ihl = (vihl & 0x0F) * 4
    st.chunk["ip_version"][idx] = 4
    st.chunk["ip_hdr_len"][idx] = ihl
    sane_ihl = ihl >= 20
    st.fail(idx[~sane_ihl], "bad IPv4 header length")
    total = fr.u16(base + 2)
    has_total = sane_ihl & (base + 4 <= lim)
    st.put("ip_len", idx, total, has_total)
    sane_total = has_total & ((total >= ihl) | (total == 0))
    st.fail(idx[has_total & ~sane_total], "IPv4 total length shorter than its header")
    go = sane_total
    st.put("ip_id", idx, fr.u16(base + 4), go & (base + 6 <= lim))
    flags_frag = fr.u16(base + 6)
    has_ff = go & (base + 8 <= lim)
    st.put("ip_flags", idx, flags_frag >> 13, has_ff)
    frag_offset = (flags_frag & 0x1FFF) * 8
    st.put("ip_frag_offset", idx, frag_offset, has_ff)
    st.put("ip_ttl", idx, fr.u8(base + 8), go & (base + 9 <= lim))
    proto = fr.u8(base + 9)
    st.put("ip_proto", idx, proto, go & (base + 10 <= lim))
    st.put_ip4("ip_src", idx, fr.u32(base + 12), go & (base + 16 <= lim))
    st.put_ip4("ip_dst", idx, fr.u32(base + 16), go & (base + 20 <= lim))

    # The datagram ends where its total length says (Ethernet padding is not payload), or
    # with the frame if that is shorter. A total length of 0 is an offloaded (TSO / BIG TCP)
    # segment: its length is the frame's, which ip_len then reports, like Wireshark.
    wire_end = fr.wire_end[idx]
    ip_end = np.where(total == 0, wire_end, np.minimum(off + total, wire_end))
    st.put("ip_len", idx, wire_end - off, has_total & (total == 0))
    st.ip_end[idx] = np.where(go, ip_end, -1)
    fr.end[idx] = np.where(go, np.minimum(fr.end[idx], ip_end), fr.end[idx])
    lim = fr.limit(idx)
    whole = go & (base + ihl <= lim)
    st.fail(idx[go & ~whole], "truncated IPv4 header")

    payload = idx[whole]
    st.payload_off[payload] = off[whole] + ihl[whole]
    first = whole & has_ff & (frag_offset == 0)
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
