"""TCP header and the options netdiag uses (MSS, window scale, SACK permitted, timestamps).

The option list is walked column-wise: each round reads one option of every row still walking, so
the number of rounds is bounded by the 40 bytes of option space, not by the number of packets.
"""

from __future__ import annotations

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames, Room, both

TCP_HEADER_LEN = 20
OPT_END, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_PERM, OPT_TIMESTAMP = 0, 1, 2, 3, 4, 8
_NOP_NOP_TIMESTAMP = 0x0101080A
#: the most options 40 bytes can hold (all one-byte NOPs)
MAX_OPTION_ROUNDS = 40
#: the columns the option walk fills (it is skipped when the caller reads none of them)
TCP_OPTION_COLUMNS = ("tcp_mss", "tcp_wscale", "tcp_sack_perm", "tcp_ts_val", "tcp_ts_ecr")


def decode(fr: Frames, st: DecodeState, idx: np.ndarray) -> None:
    base = fr.start[idx] + st.l4_off[idx]
    room = Room(base, fr.limit(idx))
    # two 8-byte reads hold the ports, sequence and acknowledgement numbers, offset and flags
    low = np.uint64(0xFFFFFFFF)
    ports_seq = fr.u64(base)
    ack_word3 = fr.u64(base + 8)
    ports = (ports_seq >> np.uint64(32)).astype(np.int64)
    st.put("sport", idx, ports >> 16, room.has(2))
    st.put("dport", idx, ports & 0xFFFF, room.has(4))
    # 0 = "a TCP header without the option", for every segment that has any TCP bytes
    if "tcp_sack_perm" not in st.skip:
        st.chunk["tcp_sack_perm"][idx[st.ip_end[idx] > st.l4_off[idx]]] = 0
    # Like Wireshark, nothing after the ports is trusted unless everything up to the window
    # (the fields it reads before showing any) was captured.
    fixed = room.has(TCP_HEADER_LEN)
    if fixed is not None:
        st.fail(idx[~fixed], "truncated TCP header")
    through_window = room.has(16)
    st.put("tcp_seq", idx, (ports_seq & low).astype(np.int64), through_window)
    st.put("tcp_ack", idx, (ack_word3 >> np.uint64(32)).astype(np.int64), through_window)
    word3 = (ack_word3 & low).astype(np.int64)  # data offset, flags, window
    header_len = (word3 >> 28) * 4
    sane = both(through_window, header_len >= TCP_HEADER_LEN)
    assert sane is not None
    st.fail(
        idx[both(through_window, ~sane) if through_window is not None else ~sane],
        "bad TCP header length",
    )
    st.put("tcp_flags", idx, (word3 >> 16) & 0x0FFF, sane)
    st.put("tcp_win", idx, word3 & 0xFFFF, sane)
    payload_len = fr.start[idx] + st.ip_end[idx] - base - header_len
    st.put("tcp_len", idx, payload_len, sane & (st.ip_end[idx] >= 0) & (payload_len >= 0))
    usable = sane if fixed is None else fixed & sane
    whole = usable & (header_len <= room.left)
    st.fail(idx[usable & ~whole], "truncated TCP options")
    st.payload_off[idx] = np.where(whole, st.l4_off[idx] + header_len, -1)
    if st.skip.issuperset(TCP_OPTION_COLUMNS):
        return
    has_options = usable & (header_len > TCP_HEADER_LEN)
    _walk_options(
        fr,
        st,
        idx[has_options],
        base[has_options] + TCP_HEADER_LEN,
        base[has_options] + np.minimum(header_len[has_options], room.left[has_options]),
    )


def _walk_options(
    fr: Frames, st: DecodeState, rows: np.ndarray, pos: np.ndarray, stop: np.ndarray
) -> None:
    # Fast path for the layout of nearly every established Linux segment: NOP, NOP, timestamps
    # filling the 12 bytes of option space.
    common = (stop - pos == 12) & (fr.u32(pos) == _NOP_NOP_TIMESTAMP)
    if common.any():
        stamps = fr.u64(pos[common] + 4)
        st.chunk["tcp_ts_val"][rows[common]] = (stamps >> np.uint64(32)).astype(np.int64)
        st.chunk["tcp_ts_ecr"][rows[common]] = (stamps & np.uint64(0xFFFFFFFF)).astype(np.int64)
        rows, pos, stop = rows[~common], pos[~common], stop[~common]
    for _ in range(MAX_OPTION_ROUNDS):
        walking = pos < stop
        if not walking.all():
            rows, pos, stop = rows[walking], pos[walking], stop[walking]
        if len(rows) == 0:
            return
        kind_length = fr.u16(pos)  # the length byte is garbage for NOP and END
        kind = kind_length >> 8
        length = np.where(kind == OPT_NOP, 1, kind_length & 0xFF)
        # an option must have a length of at least 2 and fit in the option space
        sane = (kind == OPT_NOP) | ((pos + 2 <= stop) & (length >= 2) & (pos + length <= stop))
        for option, size in (
            (OPT_MSS, 4),
            (OPT_WSCALE, 3),
            (OPT_SACK_PERM, 2),
            (OPT_TIMESTAMP, 10),
        ):
            hit = sane & (kind == option) & (length == size)
            if not hit.any():
                continue
            p = pos[hit]
            if option == OPT_MSS:
                st.chunk["tcp_mss"][rows[hit]] = fr.u16(p + 2)
            elif option == OPT_WSCALE:
                st.chunk["tcp_wscale"][rows[hit]] = fr.u8(p + 2)
            elif option == OPT_SACK_PERM:
                st.chunk["tcp_sack_perm"][rows[hit]] = 1
            else:
                st.chunk["tcp_ts_val"][rows[hit]] = fr.u32(p + 2)
                st.chunk["tcp_ts_ecr"][rows[hit]] = fr.u32(p + 6)
        # END of option list and malformed options stop the walk of that row
        pos = np.where(sane & (kind != OPT_END), pos + length, stop)
