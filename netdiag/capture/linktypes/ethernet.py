"""LINKTYPE_ETHERNET (1): MAC addresses, 802.1Q / 802.1ad VLAN stacks, SNAP, PPPoE, MPLS.

The FCS, when the interface says frames carry one, is cut off before any link decoder runs
(``decode.decode_batch`` narrows each record's usable end by ``InterfaceInfo.fcs_len``).
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames, Room

ETH_HEADER_LEN = 14
#: ethertypes of a VLAN tag: 802.1Q, 802.1ad, and the pre-standard QinQ value
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)
#: deepest VLAN stack walked (QinQinQ seen in the wild); the ethertype after it is reported
MAX_VLAN_TAGS = 4
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST = 0x8847, 0x8848
MAX_MPLS_LABELS = 8
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
_SNAP_LLC = 0xAAAA03  # DSAP AA, SSAP AA, control UI


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx]
    room = Room(base, fr.limit(idx))
    # two 8-byte reads give both addresses and the ethertype
    src_type = fr.u64(base + 6)
    if "eth_dst" not in st.skip:
        st.put_mac("eth_dst", idx, fr.u64(base) >> np.uint64(16), room.has(6))
    st.put_mac("eth_src", idx, src_type >> np.uint64(16), room.has(12))
    ethertype = (src_type & np.uint64(0xFFFF)).astype(np.int64)
    has_type = room.has(ETH_HEADER_LEN)
    if has_type is not None:
        st.fail(idx[~has_type], "truncated Ethernet header")
        idx, ethertype = idx[has_type], ethertype[has_type]
    walk_to_network(fr, st, idx, np.full(len(idx), ETH_HEADER_LEN, dtype=np.int64), ethertype)


def walk_to_network(
    fr: Frames,
    st: DecodeState,
    idx: np.ndarray,
    off: np.ndarray,
    ethertype: np.ndarray,
    small_is_length: bool = True,
) -> None:
    """From an ethertype at ``off - 2``, skip VLAN tags, SNAP, PPPoE and MPLS to the network layer.

    Sets the ``vlan`` / ``vlan_inner`` / ``ethertype`` columns and hands IP and ARP rows on.

    Values up to 1500 are an 802.3 length on Ethernet (``small_is_length``): reported as no
    ethertype unless SNAP follows. Linux cooked headers use small values as protocol codes
    (4 = 802.2 LLC), which are kept as they are.
    """
    tag_columns = ("vlan", "vlan_inner")
    off = off.copy()
    ethertype = ethertype.copy()
    for depth in range(MAX_VLAN_TAGS):
        tagged = ethertype == VLAN_ETHERTYPES[0]
        for tpid in VLAN_ETHERTYPES[1:]:
            tagged |= ethertype == tpid
        if not tagged.any():
            break
        rows = np.flatnonzero(tagged)
        pos = fr.start[idx[rows]] + off[rows]
        fits = pos + 4 <= fr.limit(idx[rows])
        if depth < len(tag_columns):
            st.put(tag_columns[depth], idx[rows], fr.u16(pos) & 0x0FFF, fits)
        st.fail(idx[rows[~fits]], "truncated VLAN tag")
        ethertype[rows] = np.where(fits, fr.u16(pos + 2), -1)
        off[rows] += 4
    # 802.3 length field followed by LLC/SNAP with the zero OUI: the ethertype follows
    length_field = ethertype <= 1500
    if length_field.any():
        length_field &= ethertype >= 0
        rows = np.flatnonzero(length_field)
        pos = fr.start[idx[rows]] + off[rows]
        fits = pos + 8 <= fr.limit(idx[rows])
        snap = fits & ((fr.u32(pos) >> 8) == _SNAP_LLC) & ((fr.u32(pos + 2) & 0xFFFFFF) == 0)
        ethertype[rows] = np.where(
            snap, fr.u16(pos + 6), -1 if small_is_length else ethertype[rows]
        )
        off[rows] += np.where(snap, 8, 0)
    st.chunk["ethertype"][idx] = ethertype
    net = np.where(ethertype > 1500, ethertype, -1)
    # PPPoE session (RFC 2516): 6-byte PPPoE header, then the 2-byte PPP protocol
    pppoe = ethertype == ETHERTYPE_PPPOE_SESSION
    if pppoe.any():
        rows = np.flatnonzero(pppoe)
        pos = fr.start[idx[rows]] + off[rows]
        fits = pos + 8 <= fr.limit(idx[rows])
        ppp_protocol = fr.u16(pos + 6)
        # the PPPoE length covers the PPP protocol field and the datagram
        pppoe_end = off[rows] + 6 + fr.u16(pos + 4)
        fr.wire_end[idx[rows]] = np.where(
            fits, np.minimum(fr.wire_end[idx[rows]], pppoe_end), fr.wire_end[idx[rows]]
        )
        net[rows] = np.select(
            [fits & (ppp_protocol == PPP_IPV4), fits & (ppp_protocol == PPP_IPV6)],
            [0x0800, 0x86DD],
            -1,
        )
        off[rows] += 8
    # MPLS unicast / multicast: skip the label stack (bottom-of-stack bit ends it), then the
    # first nibble says IPv4 or IPv6, as Wireshark guesses it too
    mpls = (ethertype == ETHERTYPE_MPLS) | (ethertype == ETHERTYPE_MPLS_MULTICAST)
    if mpls.any():
        rows = np.flatnonzero(mpls)
        net[rows] = -1
        for _ in range(MAX_MPLS_LABELS):
            pos = fr.start[idx[rows]] + off[rows]
            fits = pos + 4 <= fr.limit(idx[rows])
            bottom = fits & ((fr.u8(pos + 2) & 1) == 1)
            off[rows[fits]] += 4
            ended = rows[bottom]
            if len(ended):
                pos = fr.start[idx[ended]] + off[ended]
                version = np.where(pos + 1 <= fr.limit(idx[ended]), fr.u8(pos) >> 4, -1)
                net[ended] = np.select([version == 4, version == 6], [0x0800, 0x86DD], -1)
            rows = rows[fits & ~bottom]
            if len(rows) == 0:
                break
    set_network(st, idx, off, net)


def set_network(st: DecodeState, idx: np.ndarray, off: np.ndarray, ethertype: np.ndarray) -> None:
    """Hand rows whose ethertype is known to the network layer at record offset ``off``."""
    known = ethertype >= 0
    st.net[idx[known]] = ethertype[known]
    st.l3_off[idx[known]] = off[known]
