"""Raw IP link types: no link header, the IP version nibble (or the link type) says v4 or v6.

LINKTYPE_RAW (101) and the DLT_RAW values 12 and 14 that some systems write: version nibble.
LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229): fixed. The ``ethertype`` column stays absent
(the frame has none); the network layer gets the implied ethertype.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD


def _hand_over(st: DecodeState, idx: np.ndarray, net: np.ndarray) -> None:
    known = net >= 0
    st.net[idx[known]] = net[known]
    st.l3_off[idx[known]] = 0


def decode_by_version(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    present = base + 1 <= fr.limit(idx)
    version = np.where(present, fr.u8(base) >> 4, -1)
    net = np.select([version == 4, version == 6], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], -1)
    st.fail(idx[~present], "empty raw IP frame")
    st.fail(idx[present & (net < 0)], "raw IP frame with unknown IP version")
    _hand_over(st, idx, net)


def decode_ipv4(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    _hand_over(st, idx, np.full(len(idx), ETHERTYPE_IPV4, dtype=np.int64))


def decode_ipv6(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    _hand_over(st, idx, np.full(len(idx), ETHERTYPE_IPV6, dtype=np.int64))
