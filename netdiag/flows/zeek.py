"""Zeek's conn.log vocabulary for a flow: history letters and conn_state, from first-event frames.

Zeek runs a per-packet state machine per TCP endpoint (INACTIVE, SYN_SENT, SYN_ACK_SENT,
PARTIAL, ESTABLISHED, CLOSED, RESET) and, at the end, maps the two endpoint states to conn_state.
A streaming column-wise builder cannot replay that machine packet by packet; instead it keeps,
per flow and direction, the frame number of the *first* packet of each kind (first packet, SYN,
SYN-ACK, FIN, RST, data, ...), which merges across chunks by taking the minimum. This module
derives the endpoint states from those frames by the same transitions Zeek makes
(zeek/src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc, Update*State), and conn_state by
the rules of Zeek's base/protocols/conn/main.zeek. Rare sequences that depend on more than the
first occurrences (SYN after a partial start, a SYN/SYN-ACK reversal) are not replayed.

History letters (Zeek's meaning; upper case for the originator, lower case for the responder):
S SYN without ACK, H SYN+ACK, A pure ACK, D payload, F FIN, R RST, I FIN+RST, Q SYN with FIN or
RST, T retransmitted payload, W zero window, ^ roles flipped (the first packet's sender is the
responder). Each letter appears at its first occurrence; T and W appear again at the 10th, 100th
and 1000th occurrence, as Zeek scales them; S/H, F and R appear again when a later one of the same
endpoint carries another sequence number (a new SYN, not a retransmission), as Zeek writes them.
T follows Zeek's rule: a segment with payload that ends at or below the highest sequence number
seen (keep-alives excepted). W: zero window, not with or after the sender's RST, nor after the
peer's FIN. Not produced: C (bad checksum, not decoded), G (content gap), X.
"""

from __future__ import annotations

import re

import numpy as np

#: int32 frame sentinel for "never happened"
NEVER = np.iinfo(np.int32).max

#: raw events used for the state machine, then history letters in tie-break order (a packet can
#: carry one of S H A F R I Q D plus W and T, which Zeek records after the packet's own letter)
RAW_EVENTS: tuple[str, ...] = ("first", "syn", "synack", "fin", "rst", "data")
HISTORY_LETTERS = "SHAFRIQDWT"
EVENTS: tuple[str, ...] = RAW_EVENTS + tuple("h_" + c for c in HISTORY_LETTERS) + ("ack_sa",)
N_EVENTS = len(EVENTS)
#: number of columns of the per-flow event matrix: one per (event, direction)
N_SLOTS = 2 * N_EVENTS
#: occurrences at which T and W are written again
SCALED_AT = (10, 100, 1000, 10000)


def slot(event: str, direction: int) -> int:
    """Column of the event matrix for an event seen in a direction (0 orig, 1 resp)."""
    return EVENTS.index(event) * 2 + direction


HISTORY_SLOTS = np.array(
    [slot("h_" + c, d) for c in HISTORY_LETTERS for d in (0, 1)], dtype=np.int64
)
HISTORY_CHARS = np.array(
    [ord(c if d == 0 else c.lower()) for c in HISTORY_LETTERS for d in (0, 1)], dtype=np.uint8
)
HISTORY_RANK = np.array([i for i, _ in enumerate(HISTORY_LETTERS) for _d in (0, 1)])

# TCP endpoint states, as Zeek names them
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
ENDPOINT_STATE_NAMES = (
    "INACTIVE",
    "SYN_SENT",
    "SYN_ACK_SENT",
    "PARTIAL",
    "ESTABLISHED",
    "CLOSED",
    "RESET",
)

#: ports that Zeek-like heuristics treat as a server's (Zeek: likely_server_ports, filled by its
#: analyzers); below 1024 counts too
LIKELY_SERVER_PORTS = np.zeros(65536, dtype=bool)
LIKELY_SERVER_PORTS[:1024] = True
LIKELY_SERVER_PORTS[
    [1080, 1194, 1433, 1521, 1723, 1812, 1813, 2049, 2181, 2375, 2376, 3128, 3306, 3389, 4500]
    + [5060, 5061, 5222, 5432, 5672, 5900, 6379, 6443, 8000, 8008, 8080, 8443, 8888, 9000]
    + [9092, 9200, 9418, 10250, 11211, 27017]
] = True
LIKELY_SERVER_PORTS[0] = False


def likely_server_port(port: np.ndarray) -> np.ndarray:
    port = np.asarray(port, dtype=np.int64)
    ok = (port >= 0) & (port < 65536)
    return ok & LIKELY_SERVER_PORTS[np.where(ok, port, 0)]


def flip_by_ports(sport: np.ndarray, dport: np.ndarray, is_syn: np.ndarray) -> np.ndarray:
    """Zeek's guess for a connection first seen mid-stream: the sender is the server if its port
    looks like a server's and the other does not; when both do, flip only if not a SYN and the
    source port is the smaller."""
    s_likely = likely_server_port(sport)
    d_likely = likely_server_port(dport)
    both = s_likely & d_likely
    return s_likely & (~d_likely | (both & ~np.asarray(is_syn, bool) & (sport < dport)))


def endpoint_states(
    ev: np.ndarray, first_flags: np.ndarray, first_len: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Final Zeek endpoint states (orig, resp) of TCP flows.

    ``ev`` is the (n, N_SLOTS) int32 event matrix (frame numbers, NEVER when absent);
    ``first_flags``/``first_len`` are (n, 2): TCP flags and payload length of each direction's
    first packet.
    """

    def e(name: str, d: int) -> np.ndarray:
        return ev[:, slot(name, d)]

    f0, f1 = e("first", 0), e("first", 1)
    syn0, sa0, syn1, sa1 = e("syn", 0), e("synack", 0), e("syn", 1), e("synack", 1)
    any_syn0, any_syn1 = np.minimum(syn0, sa0), np.minimum(syn1, sa1)
    fin0, fin1, rst0, rst1 = e("fin", 0), e("fin", 1), e("rst", 0), e("rst", 1)
    data1 = e("data", 1)
    ack_first0 = (first_flags[:, 0] & 0x10) != 0

    # originator, before FIN/RST: SYN_SENT -> ESTABLISHED when the responder answers with a SYN
    o_open = np.full(len(ev), PARTIAL, dtype=np.int8)
    o_open[f0 == NEVER] = INACTIVE
    starts_syn0 = (f0 < NEVER) & (any_syn0 == f0)
    o_open[starts_syn0 & (sa0 == f0)] = SYN_ACK_SENT
    syn_sent = starts_syn0 & (syn0 == f0)
    answered = (any_syn1 > f0) & (any_syn1 < NEVER)
    o_open[syn_sent] = np.where(answered[syn_sent], ESTABLISHED, SYN_SENT)
    # a first non-SYN packet carrying an ACK after the responder's SYN-ACK: a missed SYN
    o_open[~starts_syn0 & (f0 < NEVER) & (any_syn1 < f0) & ack_first0] = ESTABLISHED

    # responder: any SYN from INACTIVE establishes it; a bare ACK while the originator is in
    # SYN_SENT leaves it INACTIVE (eccentric stacks ack the SYN before answering it)
    r_open = np.full(len(ev), PARTIAL, dtype=np.int8)
    r_open[f1 == NEVER] = INACTIVE
    r_open[(f1 < NEVER) & (any_syn1 == f1)] = ESTABLISHED
    orig_in_syn_sent = syn_sent & (f0 < f1) & (any_syn1 >= f1) & (fin0 > f1) & (rst0 > f1)
    early_ack = (f1 < NEVER) & (any_syn1 != f1) & (first_len[:, 1] == 0) & orig_in_syn_sent
    r_open[early_ack] = np.where(
        any_syn1[early_ack] < data1[early_ack],
        ESTABLISHED,
        np.where(data1[early_ack] < NEVER, PARTIAL, INACTIVE),
    )

    def terminal(opening: np.ndarray, fin: np.ndarray, rst: np.ndarray, peer_fin: np.ndarray):  # type: ignore[no-untyped-def]
        # a RST after our FIN is forgotten once the peer has sent its FIN too (before: the RST
        # is ignored in CLOSED; after: Zeek turns RESET back into CLOSED)
        reset = (rst < NEVER) & ~((fin < rst) & (peer_fin < NEVER))
        closed = ~reset & (fin < NEVER)
        return np.where(reset, RESET, np.where(closed, CLOSED, opening)).astype(np.int8)

    return terminal(o_open, fin0, rst0, fin1), terminal(r_open, fin1, rst1, fin0)


_RSTOS0_HISTORY = re.compile(rb"\^?S[^HAFGIQ]*R.*")


def _history_matches_rstos0(history: np.ndarray) -> np.ndarray:
    """Zeek's /\\^?S[^HAFGIQ]*R.*/ (whole-string match) on an array of histories."""
    return np.array(
        [_RSTOS0_HISTORY.fullmatch(h) is not None for h in history.tolist()], dtype=bool
    )


def conn_states(
    ip_proto: np.ndarray,
    orig_state: np.ndarray,
    resp_state: np.ndarray,
    orig_bytes: np.ndarray,
    resp_bytes: np.ndarray,
    orig_pkts: np.ndarray,
    resp_pkts: np.ndarray,
    history: np.ndarray,
) -> np.ndarray:
    """Zeek conn_state per flow (TCP from the endpoint states, UDP from who sent, else OTH), as
    ASCII bytes (numpy S6)."""
    n = len(ip_proto)
    out = np.full(n, b"OTH", dtype="S6")
    os_, rs = orig_state, resp_state
    o_inactive = (os_ == INACTIVE) | (os_ == PARTIAL)
    r_inactive = (rs == INACTIVE) | (rs == PARTIAL)
    tcp = ip_proto == 6

    decided = np.zeros(n, dtype=bool)

    def put(mask: np.ndarray, state: str) -> None:
        sel = tcp & ~decided & mask
        out[sel] = state
        decided[sel] = True

    r_reset = rs == RESET
    no_bytes = (orig_bytes == 0) & (resp_bytes == 0)
    put(
        r_reset & ((os_ == SYN_SENT) | (os_ == SYN_ACK_SENT) | ((os_ == RESET) & no_bytes)),
        "REJ",
    )
    put(r_reset & o_inactive, "RSTRH")
    put(r_reset, "RSTR")
    o_reset = os_ == RESET
    candidates = tcp & ~decided & o_reset & r_inactive
    rstos0 = np.zeros(n, dtype=bool)
    if candidates.any():
        rstos0[candidates] = _history_matches_rstos0(history[candidates])
    put(o_reset & r_inactive & rstos0, "RSTOS0")
    put(o_reset & r_inactive, "OTH")
    put(o_reset, "RSTO")
    put((rs == CLOSED) & (os_ == CLOSED), "SF")
    put((os_ == CLOSED) & r_inactive, "SH")
    put(os_ == CLOSED, "S2")
    put((rs == CLOSED) & o_inactive, "SHR")
    put(rs == CLOSED, "S3")
    put((os_ == SYN_SENT) & (rs == INACTIVE), "S0")
    put((os_ == ESTABLISHED) & (rs == ESTABLISHED), "S1")

    udp = ip_proto == 17
    o_active, r_active = orig_pkts > 0, resp_pkts > 0
    out[udp & o_active & r_active] = "SF"
    out[udp & o_active & ~r_active] = "S0"
    out[udp & ~o_active & r_active] = "SHR"
    return out


def history_strings(
    ev: np.ndarray,
    flipped: np.ndarray,
    extra_flow: np.ndarray,
    extra_frame: np.ndarray,
    extra_char: np.ndarray,
    block: int = 1 << 16,
) -> np.ndarray:
    """History per flow (ASCII bytes, numpy S<width>) from the event matrix plus extra
    letters (flow, frame, char).

    Flows are handled ``block`` at a time so that the temporaries stay small for big tables.
    """
    n = len(ev)
    parts = []
    extra_flow = np.asarray(extra_flow, np.int64)
    order = np.argsort(extra_flow, kind="stable")
    extra_flow = extra_flow[order]
    extra_frame = np.asarray(extra_frame, np.int64)[order]
    extra_char = np.asarray(extra_char, np.uint8)[order]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        a, b = np.searchsorted(extra_flow, [lo, hi])
        parts.append(
            _history_block(
                ev[lo:hi], flipped[lo:hi], extra_flow[a:b] - lo, extra_frame[a:b], extra_char[a:b]
            )
        )
    return np.concatenate(parts) if parts else np.zeros(0, dtype="S1")


def _history_block(
    ev: np.ndarray,
    flipped: np.ndarray,
    extra_flow: np.ndarray,
    extra_frame: np.ndarray,
    extra_char: np.ndarray,
) -> np.ndarray:
    n = len(ev)
    letters = ev[:, HISTORY_SLOTS]
    rows, cols = np.nonzero(letters < NEVER)
    n_flipped = int(np.count_nonzero(flipped))
    flow = np.concatenate([rows, extra_flow, np.flatnonzero(flipped)])
    if len(flow) == 0:
        return np.zeros(n, dtype="S1")
    frame = np.concatenate(
        [letters[rows, cols].astype(np.int64), extra_frame, np.full(n_flipped, -1, np.int64)]
    )
    char = np.concatenate([HISTORY_CHARS[cols], extra_char, np.full(n_flipped, ord("^"), np.uint8)])
    # ties (letters of one packet) in HISTORY_LETTERS order; repeats after them; '^' first
    rank = np.concatenate(
        [
            HISTORY_RANK[cols],
            np.full(len(extra_flow), len(HISTORY_LETTERS)),
            np.zeros(n_flipped, np.int64),
        ]
    )
    order = _lexical_order(flow, frame, rank)
    flow, char = flow[order], char[order]
    starts = np.r_[0, np.flatnonzero(np.diff(flow)) + 1]
    counts = np.diff(np.r_[starts, len(flow)])
    pos = np.arange(len(flow)) - np.repeat(starts, counts)
    width = int(counts.max())
    grid = np.zeros((n, width), dtype=np.uint8)
    grid[flow, pos] = char
    return grid.view(f"S{width}").ravel()


def _lexical_order(flow: np.ndarray, frame: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``np.lexsort((rank, frame, flow))`` (non-negative flow and rank, frame >= -1), faster:
    the three keys packed into one int64 when they fit, sorted with numpy's vectorised
    quicksort; only when some packed keys are equal is a stable sort needed for their order."""
    if len(flow) == 0:
        return np.zeros(0, dtype=np.intp)
    frames = int(frame.max()) + 2
    ranks = int(rank.max()) + 1
    if int(flow.max()) + 1 > (1 << 62) // (frames * ranks):
        return np.lexsort((rank, frame, flow))
    key = (flow.astype(np.int64) * frames + (frame + 1)) * ranks + rank
    order = np.argsort(key)
    ordered = key[order]
    if np.any(ordered[1:] == ordered[:-1]):  # ties keep their input order, as lexsort does
        return np.argsort(key, kind="stable")
    return order


#: names of ICMP messages that quote a packet, for first_icmp_error
ICMP4_ERROR_NAMES = {
    3: "unreachable",
    4: "source-quench",
    5: "redirect",
    11: "time-exceeded",
    12: "parameter-problem",
}
ICMP6_ERROR_NAMES = {
    1: "unreachable",
    2: "packet-too-big",
    3: "time-exceeded",
    4: "parameter-problem",
}
ICMP4_UNREACH_CODES = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "protocol-unreachable",
    3: "port-unreachable",
    4: "frag-needed",
    9: "net-prohibited",
    10: "host-prohibited",
    13: "admin-prohibited",
}


def icmp_error_text(is_v6: bool, mtype: int, mcode: int) -> str:
    """'time-exceeded(11/0)', 'port-unreachable(3/3)', 'icmp6 packet-too-big(2/0)'."""
    if is_v6:
        name = ICMP6_ERROR_NAMES.get(mtype, "icmp6")
        return f"icmp6 {name}({mtype}/{mcode})"
    name = ICMP4_ERROR_NAMES.get(mtype, "icmp")
    if mtype == 3:
        name = ICMP4_UNREACH_CODES.get(mcode, name)
    return f"{name}({mtype}/{mcode})"
