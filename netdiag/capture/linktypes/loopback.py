"""LINKTYPE_NULL (0) and LINKTYPE_LOOP (108): BSD loopback, a 4-byte address family.

NULL stores the family in the writer's byte order, LOOP in network order; both orders are
accepted for both since a family value always fits in the low 16 bits. IPv6 has a different
AF_INET6 value per system (Linux 10, BSDs 24/28/30).
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.linktypes.raw import ETHERTYPE_IPV4, ETHERTYPE_IPV6

LOOPBACK_HEADER_LEN = 4
AF_INET = 2
AF_INET6_VALUES = (10, 24, 28, 30)


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    whole = base + LOOPBACK_HEADER_LEN <= fr.limit(idx)
    st.fail(idx[~whole], "truncated loopback header")
    value = fr.u32(base)
    swapped = ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00)
    swapped |= value >> 24
    family = np.where(value > 0xFFFF, swapped, value)
    net = np.select(
        [family == AF_INET, np.isin(family, AF_INET6_VALUES)], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], -1
    )
    net = np.where(whole, net, -1)
    st.fail(idx[whole & (net < 0)], "loopback frame of an unknown address family")
    known = net >= 0
    st.net[idx[known]] = net[known]
    st.l3_off[idx[known]] = LOOPBACK_HEADER_LEN
