"""IKE (ISAKMP) header on UDP 500 and 4500, and the UDP 4500 demultiplexing of RFC 3948.

On UDP 4500 a payload starting with four zero bytes (the non-ESP marker) is IKE (``ike_natt`` 1),
a single 0xff byte is a NAT-keepalive (2), anything else is ESP (0) with its SPI and sequence.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers import esp
from netdiag.capture.layers.frames import DecodeState, Frames

IKE_PORT, NATT_PORT = 500, 4500
IKE_HEADER_LEN = 28
NON_ESP_MARKER_LEN = 4
NATT_IKE, NATT_KEEPALIVE, NATT_ESP = 1, 2, 0


def _signed64(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint64).view(np.int64)


def decode_header(fr: Frames, st: DecodeState, idx: np.ndarray, off: np.ndarray) -> None:
    """IKE header at record offset ``off``: SPIs as signed 64-bit views, exchange type."""
    base = fr.start[idx] + off
    lim = fr.limit(idx)
    st.put("ike_ispi", idx, _signed64(fr.u64(base)), base + 8 <= lim)
    st.put("ike_rspi", idx, _signed64(fr.u64(base + 8)), base + 16 <= lim)
    major_version = fr.u8(base + 17) >> 4
    known_version = (major_version == 1) | (major_version == 2)
    st.put("ike_exchange", idx, fr.u8(base + 18), known_version & (base + 19 <= lim))
    st.fail(idx[base + IKE_HEADER_LEN > lim], "truncated IKE header")


def decode_natt(fr: Frames, st: DecodeState, idx: np.ndarray, off: np.ndarray) -> None:
    """UDP 4500 payload at record offset ``off``: IKE after a marker, keepalive, or ESP."""
    base = fr.start[idx] + off
    lim = fr.limit(idx)
    ip_end = fr.start[idx] + st.ip_end[idx]
    keepalive = (ip_end - base == 1) & (base + 1 <= lim) & (fr.u8(base) == 0xFF)
    marker = ~keepalive & (base + 4 <= lim) & (fr.u32(base) == 0)
    encapsulated = ~keepalive & ~marker & (base + 1 <= lim)
    st.chunk["ike_natt"][idx] = np.select(
        [keepalive, marker, encapsulated], [NATT_KEEPALIVE, NATT_IKE, NATT_ESP], -1
    )
    decode_header(fr, st, idx[marker], off[marker] + NON_ESP_MARKER_LEN)
    esp.decode_at(fr, st, idx[encapsulated], off[encapsulated])
