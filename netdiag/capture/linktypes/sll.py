"""LINKTYPE_LINUX_SLL (113): Linux cooked capture v1, 16-byte header.

Layout: packet type (2), ARPHRD type (2), address length (2), address (8, padded), protocol (2).
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.linktypes.ethernet import walk_to_network

SLL_HEADER_LEN = 16


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    lim = fr.limit(idx)
    pkttype = fr.u16(base)
    # the field is 16 bits but Linux only defines 0-7; larger values (fuzzed) stay absent
    st.put("sll_pkttype", idx, pkttype, (base + 2 <= lim) & (pkttype <= 127))
    addr_len = fr.u16(base + 4)
    st.put_mac("eth_src", idx, fr.mac(base + 6), (addr_len == 6) & (base + 12 <= lim))
    whole = base + SLL_HEADER_LEN <= lim
    st.fail(idx[~whole], "truncated Linux cooked header")
    rows = idx[whole]
    protocol = fr.u16(base[whole] + 14)
    walk_to_network(
        fr, st, rows, np.full(len(rows), SLL_HEADER_LEN, dtype=np.int64), protocol, False
    )
