"""ARP: opcode; the addresses when they are Ethernet-style MACs and IPv4 addresses.

Addresses sit at offsets given by the hardware and protocol lengths in the header, so a packet
with a MAC but no IPv4 address (or the other way round) still yields what it has, as in Wireshark.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

ARP_HEADER_LEN = 8
HARDWARE_ETHERNET, HARDWARE_IEEE802 = 1, 6
PROTOCOL_IPV4, PROTOCOL_AX25_IP = 0x0800, 0xCC


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx] + st.l3_off[idx]
    lim = fr.limit(idx)
    header = base + ARP_HEADER_LEN <= lim
    st.fail(idx[~header], "truncated ARP packet")
    st.put("arp_op", idx, fr.u16(base + 6), header)
    hw_len, proto_len = fr.u8(base + 4), fr.u8(base + 5)
    hw_type, proto_type = fr.u16(base), fr.u16(base + 2)
    is_mac = header & np.isin(hw_type, (HARDWARE_ETHERNET, HARDWARE_IEEE802)) & (hw_len == 6)
    is_ip4 = header & np.isin(proto_type, (PROTOCOL_IPV4, PROTOCOL_AX25_IP)) & (proto_len == 4)
    sha = base + ARP_HEADER_LEN
    spa = sha + hw_len
    tha = spa + proto_len
    tpa = tha + hw_len
    # like Wireshark, no address is trusted unless the whole address block was captured
    whole = header & (tpa + proto_len <= lim)
    st.fail(idx[header & ~whole], "truncated ARP packet")
    st.put_mac("arp_sha", idx, fr.mac(sha), whole & is_mac)
    st.put_ip4("arp_spa", idx, fr.u32(spa), whole & is_ip4)
    st.put_mac("arp_tha", idx, fr.mac(tha), whole & is_mac)
    st.put_ip4("arp_tpa", idx, fr.u32(tpa), whole & is_ip4)
