"""LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2, 20-byte header.

Layout: protocol (2), reserved (2), interface index (4), ARPHRD type (2), packet type (1),
address length (1), address (8, padded). The interface name is not in the frame: the facts map
ifindex to a name later, so ``iface_name`` stays absent unless the capture file names it.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.linktypes.ethernet import walk_to_network

SLL2_HEADER_LEN = 20


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    lim = fr.limit(idx)
    st.put("sll_ifindex", idx, fr.u32(base + 4), base + 8 <= lim)
    pkttype = fr.u8(base + 10)
    st.put("sll_pkttype", idx, pkttype, (base + 11 <= lim) & (pkttype <= 127))
    addr_len = fr.u8(base + 11)
    st.put_mac("eth_src", idx, fr.mac(base + 12), (addr_len == 6) & (base + 18 <= lim))
    whole = base + SLL2_HEADER_LEN <= lim
    st.fail(idx[~whole], "truncated Linux cooked v2 header")
    rows = idx[whole]
    protocol = fr.u16(base[whole])
    walk_to_network(
        fr, st, rows, np.full(len(rows), SLL2_HEADER_LEN, dtype=np.int64), protocol, False
    )
