"""UDP header, and the UDP payloads netdiag recognises by port (IKE, NAT-T, VXLAN, GENEVE).

Like Wireshark, when both ports name a protocol the lower port wins.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers import ike, tunnels
from netdiag.capture.layers.frames import DecodeState, Frames, Room

UDP_HEADER_LEN = 8

#: well-known UDP port -> decoder of the payload at a record offset
PORT_DECODERS = {
    ike.IKE_PORT: ike.decode_header,
    ike.NATT_PORT: ike.decode_natt,
    tunnels.VXLAN_PORT: tunnels.decode_vxlan,
    tunnels.GENEVE_PORT: tunnels.decode_geneve,
}


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx] + st.l4_off[idx]
    room = Room(base, fr.limit(idx))
    ports = fr.u32(base)
    sport, dport = ports >> 16, ports & 0xFFFF
    st.put("sport", idx, sport, room.has(2))
    st.put("dport", idx, dport, room.has(4))
    st.put("udp_len", idx, fr.u16(base + 4), room.has(6))
    whole = room.has(UDP_HEADER_LEN)
    payload_off = st.l4_off[idx] + UDP_HEADER_LEN
    if whole is None:
        st.payload_off[idx] = payload_off
    else:
        st.fail(idx[~whole], "truncated UDP header")
        st.payload_off[idx] = np.where(whole, payload_off, -1)
    low, high = np.minimum(sport, dport), np.maximum(sport, dport)
    known = np.array(list(PORT_DECODERS), dtype=np.int64)
    port = np.where(np.isin(low, known), low, np.where(np.isin(high, known), high, -1))
    if whole is not None:
        port = np.where(whole, port, -1)
    for number, decoder in PORT_DECODERS.items():
        hit = port == number
        if hit.any():
            decoder(fr, st, idx[hit], payload_off[hit])
