"""Tunnels recognised (not decapsulated): GRE, IP-in-IP, and VXLAN / GENEVE over UDP."""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

TUNNEL_VXLAN, TUNNEL_GRE, TUNNEL_IPIP, TUNNEL_GENEVE = 1, 2, 3, 4
VXLAN_PORT, GENEVE_PORT = 4789, 6081
IPPROTO_IPV6 = 41


def decode_gre(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    st.chunk["tunnel"][idx] = TUNNEL_GRE
    st.payload_off[idx] = st.l4_off[idx]


def decode_ipip(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    """IPv4 (protocol 4) or IPv6 (41) inside IP: recognised when the inner version agrees."""
    base = fr.start[idx] + st.l4_off[idx]
    inner_version = np.where(base + 1 <= fr.limit(idx), fr.u8(base) >> 4, -1)
    expected = np.where(st.l4_proto[idx] == IPPROTO_IPV6, 6, 4)
    st.chunk["tunnel"][idx[inner_version == expected]] = TUNNEL_IPIP
    st.payload_off[idx] = st.l4_off[idx]


def decode_vxlan(fr: Frames, st: DecodeState, idx: np.ndarray, off: np.ndarray) -> None:
    """VXLAN header at record offset ``off``: flags (1), reserved (3), VNI (3), reserved (1)."""
    base = fr.start[idx] + off
    st.chunk["tunnel"][idx] = TUNNEL_VXLAN
    st.put("vxlan_vni", idx, fr.u32(base + 4) >> 8, base + 7 <= fr.limit(idx))


def decode_geneve(fr: Frames, st: DecodeState, idx: np.ndarray, off: np.ndarray) -> None:
    st.chunk["tunnel"][idx] = TUNNEL_GENEVE
