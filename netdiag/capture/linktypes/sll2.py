"""LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2, 20-byte header.

Layout: protocol (2), reserved (2), interface index (4), ARPHRD type (2), packet type (1),
address length (1), address (8, padded). The interface name is not in the frame: the facts map
ifindex to a name later, so ``iface_name`` stays absent unless the capture file names it.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames, Room, both
from netdiag.capture.linktypes.ethernet import walk_to_network

SLL2_HEADER_LEN = 20


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    room = Room(base, fr.limit(idx))
    # one 8-byte read: interface index (4), ARPHRD type (2), packet type (1), address length (1)
    middle = fr.u64(base + 4)
    st.put("sll_ifindex", idx, (middle >> np.uint64(32)).astype(np.int64), room.has(8))
    pkttype = ((middle >> np.uint64(8)) & np.uint64(0xFF)).astype(np.int64)
    st.put("sll_pkttype", idx, pkttype, both(room.has(11), pkttype <= 127))
    if "eth_src" not in st.skip:
        has_mac = both(room.has(18), (middle & np.uint64(0xFF)) == 6)
        st.put_mac("eth_src", idx, fr.u64(base + 12) >> np.uint64(16), has_mac)
    protocol = fr.u16(base)
    whole = room.has(SLL2_HEADER_LEN)
    if whole is not None:
        st.fail(idx[~whole], "truncated Linux cooked v2 header")
        idx, protocol = idx[whole], protocol[whole]
    walk_to_network(
        fr, st, idx, np.full(len(idx), SLL2_HEADER_LEN, dtype=np.int64), protocol, False
    )
