"""ESP (RFC 4303) header: SPI and sequence number, directly on IP or in UDP (RFC 3948)."""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    decode_at(fr, st, idx, st.l4_off[idx])


def decode_at(fr: Frames, st: DecodeState, idx: np.ndarray, off: np.ndarray) -> None:
    """ESP header at record offset ``off`` of rows ``idx``."""
    base = fr.start[idx] + off
    lim = fr.limit(idx)
    st.put("esp_spi", idx, fr.u32(base), base + 4 <= lim)
    st.put("esp_seq", idx, fr.u32(base + 4), base + 8 <= lim)
    st.fail(idx[base + 8 > lim], "truncated ESP header")
    st.payload_off[idx] = off
