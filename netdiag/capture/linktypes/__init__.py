"""Link-layer decoders, one module per link type, registered by LINKTYPE_ number.

A link decoder takes the rows of a batch captured on interfaces of its link type and, column-wise,
fills the link-layer columns and hands each row's network protocol (as an ethertype) and network
header offset to the next layer through ``DecodeState``. Link types without a decoder are named
from ``LINKTYPE_NAMES`` (the tcpdump.org / IANA registry) when reported as unsupported, or, when
the caller opts in, dissected by tshark (``linktypes.tshark``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames
from netdiag.capture.linktypes import ethernet, loopback, raw, sll, sll2

LinkDecoder = Callable[[Frames, DecodeState, np.ndarray], None]

#: LINKTYPE_ number -> decoder of that link layer
LINKTYPE_DECODERS: dict[int, LinkDecoder] = {
    0: loopback.decode,  # NULL
    1: ethernet.decode,  # ETHERNET
    12: raw.decode_by_version,  # DLT_RAW as most systems write it
    14: raw.decode_by_version,  # DLT_RAW as OpenBSD writes it
    101: raw.decode_by_version,  # RAW
    108: loopback.decode,  # LOOP
    113: sll.decode,  # LINUX_SLL
    228: raw.decode_ipv4,  # IPV4
    229: raw.decode_ipv6,  # IPV6
    276: sll2.decode,  # LINUX_SLL2
}

#: LINKTYPE_ number -> registry name (without the LINKTYPE_ prefix)
LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL", 1: "ETHERNET", 2: "EXP_ETHERNET", 3: "AX25", 4: "PRONET", 5: "CHAOS",
    6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 9: "PPP", 10: "FDDI", 12: "RAW (DLT_12)",
    14: "RAW (DLT_14)", 50: "PPP_HDLC", 51: "PPP_ETHER", 99: "SYMANTEC_FIREWALL",
    100: "ATM_RFC1483", 101: "RAW", 104: "C_HDLC", 105: "IEEE802_11", 106: "ATM_CLIP",
    107: "FRELAY", 108: "LOOP", 113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG",
    119: "IEEE802_11_PRISM", 122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP",
    129: "ARCNET_LINUX", 130: "JUNIPER_MLPPP", 131: "JUNIPER_MLFR", 132: "JUNIPER_ES",
    133: "JUNIPER_GGSN", 134: "JUNIPER_MFR", 135: "JUNIPER_ATM2", 136: "JUNIPER_SERVICES",
    137: "JUNIPER_ATM1", 138: "APPLE_IP_OVER_IEEE1394", 139: "MTP2_WITH_PHDR", 140: "MTP2",
    141: "MTP3", 142: "SCCP", 143: "DOCSIS", 144: "LINUX_IRDA",
    **{147 + i: f"USER{i}" for i in range(16)},
    163: "IEEE802_11_AVS", 164: "JUNIPER_MONITOR", 165: "BACNET_MS_TP", 166: "PPP_PPPD", 169: "GPRS_LLC",
    170: "GPF_T", 171: "GPF_F", 177: "LINUX_LAPD", 178: "JUNIPER_ETHER",
    179: "JUNIPER_PPP", 180: "JUNIPER_FRELAY", 181: "JUNIPER_CHDLC", 183: "JUNIPER_VP", 182: "MFR", 187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4_WITHFCS", 196: "SITA", 197: "ERF",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR", 202: "AX25_KISS", 203: "LAPD", 204: "PPP_WITH_DIR",
    205: "C_HDLC_WITH_DIR", 206: "FRELAY_WITH_DIR", 207: "LAPB_WITH_DIR", 209: "IPMB_LINUX",
    210: "FLEXRAY", 212: "LIN", 215: "IEEE802_15_4_NONASK_PHY", 220: "USB_LINUX_MMAPPED",
    224: "FC_2", 225: "FC_2_WITH_FRAME_DELIMS", 226: "IPNET", 227: "CAN_SOCKETCAN",
    228: "IPV4", 229: "IPV6", 230: "IEEE802_15_4_NOFCS", 231: "DBUS", 235: "DVB_CI",
    236: "MUX27010", 237: "STANAG_5066_D_PDU", 239: "NFLOG", 240: "NETANALYZER",
    241: "NETANALYZER_TRANSPARENT", 242: "IPOIB", 243: "MPEG_2_TS", 244: "NG40",
    245: "NFC_LLCP", 247: "INFINIBAND", 248: "SCTP", 249: "USBPCAP", 250: "RTAC_SERIAL",
    251: "BLUETOOTH_LE_LL", 253: "NETLINK", 254: "BLUETOOTH_LINUX_MONITOR",
    255: "BLUETOOTH_BREDR_BB", 256: "BLUETOOTH_LE_LL_WITH_PHDR", 257: "PROFIBUS_DL",
    258: "PKTAP", 259: "EPON", 260: "IPMI_HPM_2", 261: "ZWAVE_R1_R2", 262: "ZWAVE_R3",
    263: "WATTSTOPPER_DLM", 264: "ISO_14443", 265: "RDS", 266: "USB_DARWIN", 268: "SDLC",
    270: "LORATAP", 271: "VSOCK", 272: "NORDIC_BLE", 273: "DOCSIS31_XRA31",
    274: "ETHERNET_MPACKET", 275: "DISPLAYPORT_AUX", 276: "LINUX_SLL2", 278: "OPENVIZSLA",
    279: "EBHSCR", 280: "VPP_DISPATCH", 281: "DSA_TAG_BRCM", 282: "DSA_TAG_BRCM_PREPEND",
    283: "IEEE802_15_4_TAP", 284: "DSA_TAG_DSA", 285: "DSA_TAG_EDSA", 286: "ELEE",
    287: "Z_WAVE_SERIAL", 288: "USB_2_0", 289: "ATSC_ALP", 290: "ETW", 292: "ZBOSS_NCP",
    293: "USB_2_0_LOW_SPEED", 294: "USB_2_0_FULL_SPEED", 295: "USB_2_0_HIGH_SPEED",
    296: "AUERSWALD_LOG", 297: "ZWAVE_TAP", 298: "SILABS_DEBUG_CHANNEL", 299: "FIRA_UCI",
    300: "MDB", 301: "DECT_NR",
}  # fmt: skip


def linktype_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype, "unknown")


def is_supported(linktype: int) -> bool:
    return linktype in LINKTYPE_DECODERS


def unsupported_reason(linktype: int) -> str:
    """The user-facing text for a link type netdiag cannot decode."""
    return f"link type {linktype} ({linktype_name(linktype)}) is not supported"
