"""Network and transport layer decoders, one module per protocol, registered by number.

Each decoder takes the rows (an index array into the batch) whose previous layer named its
protocol, reads its fields column-wise through ``frames.Frames`` and writes them into the chunk
held by ``frames.DecodeState``, handing the next layer its offset and protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netdiag.capture.layers import arp, esp, icmp, ipv4, ipv6, tcp, tunnels, udp
from netdiag.capture.layers.frames import DecodeState, Frames

LayerDecoder = Callable[[Frames, DecodeState, np.ndarray], None]

#: ethertype -> decoder of the network layer
NETWORK_DECODERS: dict[int, LayerDecoder] = {
    0x0800: ipv4.decode,
    0x86DD: ipv6.decode,
    0x0806: arp.decode,
}

#: IP protocol number -> decoder of the transport (or tunnel) header
TRANSPORT_DECODERS: dict[int, LayerDecoder] = {
    1: icmp.decode_v4,
    4: tunnels.decode_ipip,
    6: tcp.decode,
    17: udp.decode,
    41: tunnels.decode_ipip,
    47: tunnels.decode_gre,
    50: esp.decode,
    58: icmp.decode_v6,
}
