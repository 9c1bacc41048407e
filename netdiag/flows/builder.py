"""Streaming, column-wise construction of the bidirectional flow table from packet chunks.

Memory grows with the number of flows, never with packets: each chunk is reduced to per-flow
aggregates with numpy (factorize, bincount, ufunc.at) and merged into per-flow state arrays that
grow geometrically (about 0.5 kB per flow). Only the distinct flow keys of a chunk touch a
Python dict (key -> flow id), so the Python work per chunk is proportional to its flows. Everything that depends on packet order
is carried across chunk boundaries: first occurrences merge by minimum frame number, TCP sequence
tracking keeps per direction the last raw sequence number, its unwrapped value and the highest
sequence end seen. Results are the same however the packets are split into chunks, as long as
the chunks arrive in frame order.

Who is the originator (decided on the flow's first packet, so a packet's flow_dir never changes
later): the sender of a SYN without ACK; for a flow first seen with a SYN-ACK, its receiver;
otherwise the first packet's sender, unless Zeek's port heuristic says the sender is the server
(its port looks like a server's and the other does not); for ICMP, the receiver of a first echo
/ timestamp / info / mask reply. A 5-tuple reused for several connections stays one flow.
The key holds neither VLAN nor interface (as Zeek's default): one conversation seen on several
interfaces of an "-i any" capture is one flow, and the per-direction first interface, SLL
ifindex and the set of interfaces say where it was seen.

Retransmissions are judged among the packets captured at the same point (interface, SLL
ifindex) as the direction's first packet. TCP payload bytes (orig_bytes, resp_bytes) leave out retransmissions, keep-alives and copies of
a segment captured at another point (interface, SLL ifindex) than the direction's first packet,
so they approach Zeek's sequence-space sizes; packet and IP byte counts include every packet.

Non-first IP fragments join the flow of their datagram's first fragment when that came earlier
(ports taken from it); other TCP/UDP packets without ports (truncated headers) get no flow (-1).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.background import Background
from netdiag.capture.schema import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, PacketChunk
from netdiag.flows import zeek
from netdiag.flows.communityid import community_id_bytes, icmp_port_equivalents
from netdiag.flows.schema import FLOW_COLUMNS, PROTO_NAMES

if TYPE_CHECKING:  # pandas only for the DataFrame form of the table (``finish``)
    import pandas as pd

_NEVER = zeek.NEVER
_NO_ROW = np.iinfo(np.int64).max
_NO_SEQ = np.iinfo(np.int64).min // 4
_PORTED = (6, 17, 132)
#: ICMP messages that quote the packet that caused them
_ICMP4_QUOTING = (3, 4, 5, 11, 12)
_ICMP6_QUOTING = (1, 2, 3, 4)
#: ICMP reply types: a flow first seen with one of these was started by its receiver
_ICMP4_REPLIES = (0, 14, 16, 18)
_ICMP6_REPLIES = (129,)
# the exclusive running maximum over sequence ends uses one accumulate over all groups at once:
# each group's values are shifted into a band of its own
_SEQ_CLIP = (1 << 40) - 1
_SEQ_BAND = 1 << 42
_MAX_GROUPS_IN_BANDS = 1 << 20
#: distinct address pairs per chunk up to which a pair code and lo pack into one int64
_PAIR_CODE_LIMIT = 1 << 21
#: the packet columns ``FlowBuilder.add`` reads (a reader may leave the others undecoded)
FLOW_BUILDER_READS = frozenset(
    {
        "frame",
        "ts_ns",
        "iface",
        "sll_ifindex",
        "vlan",
        "ip_version",
        "ip_src",
        "ip_dst",
        "ip_proto",
        "ip_id",
        "ip_len",
        "ip_flags",
        "ip_frag_offset",
        "ip_hdr_len",
        "sport",
        "dport",
        "tcp_flags",
        "tcp_seq",
        "tcp_ack",
        "tcp_len",
        "tcp_win",
        "udp_len",
        "icmp_type",
        "icmp_code",
        "icmp_inner_src",
        "icmp_inner_dst",
        "icmp_inner_proto",
        "icmp_inner_sport",
        "icmp_inner_dport",
    }
)
#: first fragments remembered for their ports; the table is emptied when it grows past this
_MAX_FRAGMENTED_DATAGRAMS = 200_000


def _flow_keys(
    src: np.ndarray,
    dst: np.ndarray,
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    one_way: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direction-free flow keys (hi, lo) and whether the packet's sender is the key's side B.

    hi packs the two address codes, lo the protocol, the one-way bit and the two ports; side A is
    the smaller (address code, port), except for one-way ICMP whose key keeps the sent order.
    """
    src = src.astype(np.int64, copy=False)
    dst = dst.astype(np.int64, copy=False)
    swap = ~one_way & ((src > dst) | ((src == dst) & (sport > dport)))
    a = np.where(swap, dst, src)
    b = np.where(swap, src, dst)
    pa = np.where(swap, dport, sport) & 0xFFFF
    pb = np.where(swap, sport, dport) & 0xFFFF
    hi = (a << 32) | b
    lo = ((proto & 0xFF) << 33) | (one_way.astype(np.int64) << 32) | (pa << 16) | pb
    return hi, lo, swap


def _key_bytes(hi: np.ndarray, lo: np.ndarray) -> list[bytes]:
    """Flow keys as 16-byte strings: cheap to make from numpy and to hash in a dict."""
    pair = np.empty((len(hi), 2), dtype=np.int64)
    pair[:, 0] = hi
    pair[:, 1] = lo
    return pair.view(np.dtype((np.void, 16))).ravel().tolist()  # type: ignore[return-value]


def _factorize(values: np.ndarray) -> np.ndarray:
    """Dense codes of ``values`` (int64), numbered in order of first appearance."""
    n = len(values)
    order = np.argsort(values)
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    first_row = np.minimum.reduceat(order, starts)  # each value's first position
    rank = np.empty(len(starts), dtype=np.int64)
    rank[np.argsort(first_row)] = np.arange(len(starts), dtype=np.int64)
    group = np.zeros(n, dtype=np.int64)
    group[starts[1:]] = 1
    codes = np.empty(n, dtype=np.int64)
    codes[order] = rank[np.cumsum(group)]
    return codes


def _local_flow_codes(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Dense codes of the distinct (hi, lo) keys of a chunk, numbered in order of appearance."""
    pair_code = _factorize(hi)
    if int(pair_code.max()) + 1 < _PAIR_CODE_LIMIT:  # pair code and lo (41 bits) fit in one int64
        return _factorize((pair_code << 42) | lo)
    both = np.empty(len(hi), dtype=[("hi", "<i8"), ("lo", "<i8")])
    both["hi"], both["lo"] = hi, lo
    _, first_index, inverse = np.unique(both, return_index=True, return_inverse=True)
    rank = np.empty(len(first_index), dtype=np.int64)
    rank[np.argsort(first_index)] = np.arange(len(first_index))
    return rank[inverse.ravel()]


def _port_columns(
    proto: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    icmp_type: np.ndarray,
    icmp_code: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ports of the flow key (ICMP: Community ID port equivalents), one-way flag, ports-needed."""
    ported = (proto == 6) | (proto == 17) | (proto == 132)
    is_icmp = (proto == 1) | (proto == 58)
    sp = np.where(ported, sport, 0).astype(np.int64)
    dp = np.where(ported, dport, 0).astype(np.int64)
    one_way = np.zeros(len(proto), dtype=bool)
    if is_icmp.any():
        it, ic, ow = icmp_port_equivalents(proto == 58, icmp_type, icmp_code)
        known = is_icmp & (icmp_type >= 0)
        sp = np.where(known, it, sp)
        dp = np.where(known, np.maximum(ic, 0), dp)
        one_way = known & ow
    return sp, dp, one_way, ported


def _first_positions(codes: np.ndarray, n_codes: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Smallest position i (row order) with codes[i] == c, per code c; _NO_ROW when none."""
    out = np.full(n_codes, _NO_ROW, dtype=np.int64)
    pos = np.arange(len(codes), dtype=np.int64)
    if mask is None:
        np.minimum.at(out, codes, pos)
    elif mask.any():
        np.minimum.at(out, codes[mask], pos[mask])
    return out


def _stable_order(codes: np.ndarray) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for non-negative codes, about 3x faster: the
    row number joined below the code makes every key distinct, so that numpy's (vectorised,
    unstable) quicksort gives the stable order."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= (1 << 62) // max(n, 1):
        return np.argsort(codes, kind="stable")
    return np.argsort(codes.astype(np.int64) * n + np.arange(n, dtype=np.int64))


def _rank_within(codes: np.ndarray) -> np.ndarray:
    """0-based rank of each element among the elements with the same code, in row order."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = _stable_order(codes)
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(codes)])
    rank_sorted = np.arange(len(codes)) - np.repeat(starts, counts)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = rank_sorted
    return rank


#: protocol number -> its flow-table name, ASCII bytes
_PROTO_NAME_BYTES = np.array(
    [PROTO_NAMES.get(p, "other").encode("ascii") for p in range(256)], dtype="S"
)
#: flow slots up to which the per-flow arrays double when they grow (~80 MB), half after
_DOUBLE_UP_TO = 1 << 18


class _State:
    """Per-flow arrays that grow geometrically; 2-D arrays hold one column per direction."""

    SPEC: dict[str, tuple[str, int, int]] = {
        # name: (dtype, columns (0 = 1-D), fill)
        "a": ("int32", 0, -1),
        "b": ("int32", 0, -1),
        "pa": ("int32", 0, 0),
        "pb": ("int32", 0, 0),
        "ip_proto": ("int16", 0, -1),
        "ip_version": ("int8", 0, 0),
        "one_way": ("bool", 0, 0),
        "has_ports": ("bool", 0, 0),
        "orig_side": ("int8", 0, 0),
        "flipped": ("bool", 0, 0),
        "first_frame": ("int64", 0, -1),
        "last_frame": ("int64", 0, -1),
        "min_ts": ("int64", 0, np.iinfo(np.int64).max),
        "max_ts": ("int64", 0, np.iinfo(np.int64).min),
        "vlan": ("int32", 0, -1),
        "iface_mask": ("int64", 0, 0),
        "pkts": ("int64", 2, 0),
        "ip_bytes": ("int64", 2, 0),
        "payload": ("int64", 2, 0),
        "ev": ("int32", zeek.N_SLOTS, _NEVER),
        "first_flags": ("int16", 2, 0),
        "first_len": ("int32", 2, 0),
        "first_iface": ("int16", 2, -1),
        "first_ifindex": ("int32", 2, -1),
        "syn_count": ("int64", 0, 0),
        "isn": ("int64", 2, -1),
        "synack_ack": ("int64", 0, -1),
        # sequence number of the last SYN / FIN (end) / RST per direction, for repeated letters
        "last_syn_seq": ("int64", 2, -1),
        "last_fin_seq": ("int64", 2, -1),
        "last_rst_seq": ("int64", 2, -1),
        "ts_syn": ("int64", 0, -1),
        "ts_synack": ("int64", 0, -1),
        "ts_ack_sa": ("int64", 0, -1),
        "retrans": ("int64", 2, 0),
        "zero_win": ("int64", 2, 0),
        "seq_has": ("bool", 2, 0),
        "seq_last_raw": ("int64", 2, 0),
        "seq_last_unw": ("int64", 2, 0),
        "seq_max_end": ("int64", 2, _NO_SEQ),
        "icmp_errors": ("int64", 0, 0),
        "icmp_err_frame": ("int64", 0, np.iinfo(np.int64).max),
        "icmp_err_type": ("int16", 0, -1),
        "icmp_err_code": ("int16", 0, -1),
        "icmp_err_v6": ("bool", 0, 0),
    }

    def __init__(self) -> None:
        self.n = 0
        self.cap = 0
        self.arrays: dict[str, np.ndarray] = {}
        self._grow(1024)

    def _grow(self, cap: int) -> None:
        for name, (dtype, cols, fill) in self.SPEC.items():
            shape: tuple[int, ...] = (cap,) if cols == 0 else (cap, cols)
            new = np.full(shape, fill, dtype=dtype)
            old = self.arrays.get(name)
            if old is not None:
                new[: self.n] = old[: self.n]
            self.arrays[name] = new
        self.cap = cap

    def reserve(self, n_total: int) -> None:
        if n_total > self.cap:
            # amortised constant cost; every growth copies all ~45 arrays, so double while
            # that is cheap in memory, then grow by half (at most a third of the slots unused)
            step = self.cap if self.cap < _DOUBLE_UP_TO else self.cap // 2
            self._grow(max(n_total, self.cap + step))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


class FlowBuilder:
    """Builds the flow table chunk by chunk; ``add`` also labels each packet with its flow."""

    def __init__(self, book: AddressBook, packet_index: bool = True) -> None:
        self.book = book
        #: number each packet within its flow (``flow_pkt_index``); off when nobody keeps the
        #: packets (``netdiag flows``): the column then stays -1
        self.packet_index = packet_index
        self._ids: dict[bytes, int] = {}
        self._st = _State()
        # scaled history repeats (T and W at the 10th, 100th ... occurrence): (flow, frame, char)
        self._extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # (addresses, protocol, IP id) of a first fragment -> (sport, dport, frame)
        self._frags: dict[bytes, tuple[int, int, int]] = {}

    @property
    def n_flows(self) -> int:
        return self._st.n

    # --- per chunk ------------------------------------------------------------------------------
    def add(self, chunk: PacketChunk) -> None:
        """Assign flows to the chunk's packets (adds flow columns in place) and merge its stats."""
        n = len(chunk["frame"])
        flow_id = np.full(n, -1, dtype=np.int64)
        flow_dir = np.full(n, -1, dtype=np.int8)
        pkt_index = np.full(n, -1, dtype=np.int32)
        err_flow = np.full(n, -1, dtype=np.int64)
        chunk["flow_id"] = flow_id
        chunk["flow_dir"] = flow_dir
        chunk["flow_pkt_index"] = pkt_index
        chunk["icmp_err_flow_id"] = err_flow
        if n == 0:
            return

        proto_all = chunk["ip_proto"].astype(np.int64)
        src_all, dst_all = chunk["ip_src"], chunk["ip_dst"]
        valid = (chunk["ip_version"] > 0) & (src_all >= 0) & (dst_all >= 0) & (proto_all >= 0)
        sp_all, dp_all, one_way_all, ported_all = _port_columns(
            proto_all,
            chunk["sport"].astype(np.int64),
            chunk["dport"].astype(np.int64),
            chunk["icmp_type"].astype(np.int64),
            chunk["icmp_code"].astype(np.int64),
        )
        has_ports = (chunk["sport"] >= 0) & (chunk["dport"] >= 0)
        if "ip_frag_offset" in chunk:
            has_ports |= self._fragment_ports(chunk, valid & ported_all, sp_all, dp_all)
        valid &= ~ported_all | has_ports
        vi = np.flatnonzero(valid)
        if len(vi) == 0:
            return

        all_valid = len(vi) == n

        # the columns of the valid packets only, from here on ("v" space)
        def col(name: str) -> np.ndarray:
            return chunk[name] if all_valid else chunk[name][vi]

        if all_valid:
            proto = proto_all
            hi, lo, swap = _flow_keys(src_all, dst_all, proto, sp_all, dp_all, one_way_all)
        else:
            proto = proto_all[vi]
            hi, lo, swap = _flow_keys(
                src_all[vi], dst_all[vi], proto, sp_all[vi], dp_all[vi], one_way_all[vi]
            )
        local = _local_flow_codes(hi, lo)
        n_local = int(local.max()) + 1
        # factorize numbers codes in order of appearance: first occurrences are where the
        # running maximum grows
        running = np.maximum.accumulate(local)
        first_pos = np.flatnonzero(np.r_[True, running[1:] > running[:-1]])

        keys = _key_bytes(hi[first_pos], lo[first_pos])
        get = self._ids.get
        l2g = np.fromiter(map(get, keys, repeat(-1, n_local)), dtype=np.int64, count=n_local)
        new_local = np.flatnonzero(l2g < 0)
        st = self._st
        if len(new_local):
            base = st.n
            new_ids = np.arange(base, base + len(new_local), dtype=np.int64)
            l2g[new_local] = new_ids
            self._ids.update(
                zip([keys[i] for i in new_local.tolist()], new_ids.tolist(), strict=True)
            )
            st.reserve(base + len(new_local))
            st.n = base + len(new_local)
            self._init_flows(chunk, vi, first_pos[new_local], new_ids, hi, lo, swap, sp_all, dp_all)

        g = l2g[local]
        direction = (swap.astype(np.int8) ^ st["orig_side"][g]).astype(np.int64)
        flow_id[vi] = g
        flow_dir[vi] = direction
        if self.packet_index:
            before = st["pkts"][l2g].sum(axis=1)[local]  # per flow, then per packet
            pkt_index[vi] = (before + _rank_within(local)).astype(np.int32)

        code = local * 2 + direction  # (local flow, direction)
        n_codes = 2 * n_local
        g_of_code = np.repeat(l2g, 2)
        d_of_code = np.tile(np.array([0, 1], dtype=np.int64), n_local)

        frame = col("frame")
        ts = col("ts_ns")
        flags = np.maximum(col("tcp_flags"), 0)
        is_tcp = proto == 6
        syn = is_tcp & ((flags & TCP_SYN) != 0)
        ack = is_tcp & ((flags & TCP_ACK) != 0)
        fin = is_tcp & ((flags & TCP_FIN) != 0)
        rst = is_tcp & ((flags & TCP_RST) != 0)
        tcp_len = np.maximum(col("tcp_len"), 0)
        ip_len = np.maximum(col("ip_len"), 0)
        hdr_len = np.maximum(col("ip_hdr_len"), 0)
        payload = np.maximum(ip_len - hdr_len, 0)
        payload = np.where(is_tcp, tcp_len, payload)
        is_udp = proto == 17
        payload = np.where(is_udp, np.maximum(col("udp_len") - 8, 0), payload)
        is_icmp = (proto == 1) | (proto == 58)
        payload = np.where(is_icmp, np.maximum(ip_len - hdr_len - 8, 0), payload)

        # --- TCP sequence tracking: retransmissions, carried over chunk boundaries -----------
        # Only packets captured where the direction's first packet was (same interface and SLL
        # ifindex) take part: in an "-i any" capture one packet seen on veth, bridge and eth is
        # not three transmissions.
        iface = col("iface").astype(np.int64)  # shifted below: needs 64 bits
        point = (iface << 32) | (col("sll_ifindex").astype(np.int64) & 0xFFFFFFFF)
        first = _first_positions(code, n_codes)
        known = st["ev"][g_of_code, zeek.slot("first", 0) + d_of_code] < _NEVER
        known_point = (st["first_iface"][g_of_code, d_of_code].astype(np.int64) << 32) | (
            st["first_ifindex"][g_of_code, d_of_code].astype(np.int64) & 0xFFFFFFFF
        )
        first_point = np.where(known, known_point, point[np.minimum(first, len(point) - 1)])
        same_point = point == first_point[code]
        retrans, keepalive = self._retransmissions(
            code, g_of_code, d_of_code, col, is_tcp & same_point, tcp_len, syn, fin
        )
        payload = np.where(retrans | keepalive | (is_tcp & ~same_point), 0, payload)
        self._scaled_repeats(code, g_of_code, frame, retrans, "retrans", "T")

        # --- sums per flow and direction -----------------------------------------------------
        def per_code(weights: np.ndarray | None = None) -> np.ndarray:
            out = np.bincount(code, weights=weights, minlength=n_codes)
            return out.reshape(n_local, 2).astype(np.int64)  # exact: sums stay below 2**53

        st["pkts"][l2g] += per_code()
        st["ip_bytes"][l2g] += per_code(ip_len)
        st["payload"][l2g] += per_code(payload)
        st["retrans"][l2g] += per_code(retrans.astype(np.float64))
        syn_only = syn & ~ack
        st["syn_count"][l2g] += per_code((syn_only & (direction == 0)).astype(np.float64))[:, 0]

        lo_ts = np.full(n_local, np.iinfo(np.int64).max, dtype=np.int64)
        hi_ts = np.full(n_local, np.iinfo(np.int64).min, dtype=np.int64)
        last = np.full(n_local, -1, dtype=np.int64)
        np.minimum.at(lo_ts, local, ts)
        np.maximum.at(hi_ts, local, ts)
        np.maximum.at(last, local, frame)
        st["min_ts"][l2g] = np.minimum(st["min_ts"][l2g], lo_ts)
        st["max_ts"][l2g] = np.maximum(st["max_ts"][l2g], hi_ts)
        st["last_frame"][l2g] = np.maximum(st["last_frame"][l2g], last)
        bits = np.where((iface >= 0) & (iface < 63), np.left_shift(1, np.clip(iface, 0, 62)), 0)
        mask = np.zeros(n_local, dtype=np.int64)
        np.bitwise_or.at(mask, local, bits)
        st["iface_mask"][l2g] |= mask

        # --- first occurrences per (flow, direction) -----------------------------------------
        def merge_events(masks: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            """Merge the first frame of several events at once (one bit each per packet);
            returns per event the (codes, rows) where this chunk holds a new first occurrence."""
            names = list(masks)
            n_ev = len(names)
            # the (row, event) pairs where an event happens (any order: only minima are kept),
            # laid out event by event so that each event's results are one slice at the end
            event_rows = [np.flatnonzero(masks[m]) for m in names]
            rows = np.concatenate(event_rows)
            ks = np.repeat(np.arange(n_ev, dtype=np.int64) * n_codes, [len(r) for r in event_rows])
            first = np.full(n_ev * n_codes, _NO_ROW, dtype=np.int64)
            np.minimum.at(first, ks + code[rows], rows)
            has = np.flatnonzero(first != _NO_ROW)
            rows = first[has]
            k, c = has // n_codes, has % n_codes  # k ascending: events in order
            gg, dd = g_of_code[c], d_of_code[c]
            event_slot = np.array([zeek.slot(m, 0) for m in names], dtype=np.int64)[k] + dd
            old = st["ev"][gg, event_slot]
            fr = np.minimum(frame[rows], _NEVER - 1).astype(np.int32)
            better = fr < old
            st["ev"][gg[better], event_slot[better]] = fr[better]
            c, k, rows = c[better], k[better], rows[better]
            at = np.searchsorted(k, np.arange(n_ev + 1)).tolist()
            return {m: (c[at[i] : at[i + 1]], rows[at[i] : at[i + 1]]) for i, m in enumerate(names)}

        has = np.flatnonzero(first != _NO_ROW)
        first_col = zeek.slot("first", 0) + d_of_code[has]
        gg, dd, rows = g_of_code[has], d_of_code[has], first[has]
        new_first = np.minimum(frame[rows], _NEVER - 1) < st["ev"][gg, first_col]
        gg, dd, rows = gg[new_first], dd[new_first], rows[new_first]
        st["ev"][gg, zeek.slot("first", 0) + dd] = np.minimum(frame[rows], _NEVER - 1)
        st["first_flags"][gg, dd] = flags[rows]
        st["first_len"][gg, dd] = tcp_len[rows]
        st["first_iface"][gg, dd] = iface[rows]
        st["first_ifindex"][gg, dd] = col("sll_ifindex")[rows]

        # history letters follow Zeek's rule for packets carrying several of SYN/FIN/RST
        n_ctl = syn.astype(np.int8) + fin + rst
        one_ctl, no_ctl, multi_ctl = n_ctl == 1, n_ctl == 0, n_ctl > 1
        new = merge_events(
            {
                "syn": syn_only,
                "synack": syn & ack,
                "fin": fin,
                "rst": rst,
                "data": is_tcp & ~syn & (tcp_len > 0),
                "h_S": one_ctl & syn & ~ack,
                "h_H": one_ctl & syn & ack,
                "h_F": one_ctl & fin,
                "h_R": one_ctl & rst,
                "h_I": multi_ctl & fin & rst,
                "h_Q": multi_ctl & ~(fin & rst),
                "h_D": (no_ctl & is_tcp & (tcp_len > 0)) | (is_udp & (payload > 0)),
                "h_A": no_ctl & is_tcp & (tcp_len == 0) & ack,
                "h_T": retrans,
            }
        )
        # a zero window is news unless it comes with or after the sender's RST or after the
        # peer's FIN (Zeek: update_window)
        own_rst = st["ev"][g, zeek.EVENTS.index("rst") * 2 + direction]
        peer_fin = st["ev"][g, zeek.EVENTS.index("fin") * 2 + 1 - direction]
        zero_win = is_tcp & (col("tcp_win") == 0) & ~rst & (frame < own_rst) & (frame <= peer_fin)
        merge_events({"h_W": zero_win})
        seq = col("tcp_seq")
        codes_new, rows_new = new["syn"]
        orig_new = d_of_code[codes_new] == 0
        st["isn"][g_of_code[codes_new[orig_new]], 0] = seq[rows_new[orig_new]]
        st["ts_syn"][g_of_code[codes_new[orig_new]]] = ts[rows_new[orig_new]]
        codes_new, rows_new = new["synack"]
        resp_new = d_of_code[codes_new] == 1
        st["isn"][g_of_code[codes_new[resp_new]], 1] = seq[rows_new[resp_new]]
        st["synack_ack"][g_of_code[codes_new[resp_new]]] = col("tcp_ack")[rows_new[resp_new]]
        st["ts_synack"][g_of_code[codes_new[resp_new]]] = ts[rows_new[resp_new]]
        self._scaled_repeats(code, g_of_code, frame, zero_win, "zero_win", "W")
        seq_ok = seq >= 0
        self._repeated_letters(code, g_of_code, frame, one_ctl & syn & seq_ok, seq, ack, "syn")
        self._repeated_letters(
            code, g_of_code, frame, one_ctl & fin & seq_ok, seq + tcp_len, ack, "fin"
        )
        self._repeated_letters(code, g_of_code, frame, one_ctl & rst & seq_ok, seq, ack, "rst")
        st["zero_win"][l2g] += per_code(zero_win.astype(np.float64))

        # the originator's first ACK after the responder's first SYN-ACK completes the handshake
        sa_frame = st["ev"][g, zeek.slot("synack", 1)]
        codes_new, rows_new = merge_events(
            {"ack_sa": is_tcp & ack & ~syn & (direction == 0) & (frame > sa_frame)}
        )["ack_sa"]
        orig_new = d_of_code[codes_new] == 0
        st["ts_ack_sa"][g_of_code[codes_new[orig_new]]] = ts[rows_new[orig_new]]

        self._link_icmp_errors(chunk, vi, proto, frame, err_flow)

    def _fragment_ports(
        self, chunk: PacketChunk, ported: np.ndarray, sp_all: np.ndarray, dp_all: np.ndarray
    ) -> np.ndarray:
        """Ports for non-first IP fragments, from the first fragment of the same datagram
        (same addresses, protocol and IP id, seen in an earlier frame); fills sp_all/dp_all
        in place and returns which rows got them."""
        found = np.zeros(len(ported), dtype=bool)
        offset = chunk["ip_frag_offset"]
        rest = ported & (offset > 0)
        first = ported & (offset <= 0) & (chunk["sport"] >= 0) & (chunk["dport"] >= 0)
        is_v6 = chunk["ip_version"] == 6
        more = (chunk["ip_flags"] >= 0) & ((chunk["ip_flags"] & 1) != 0)
        first &= np.where(is_v6, chunk["ip_id"] >= 0, more)
        if not first.any() and not rest.any():
            return found

        def keys(rows: np.ndarray) -> list[bytes]:
            src = chunk["ip_src"][rows].astype(np.int64)
            dst = chunk["ip_dst"][rows].astype(np.int64)
            proto = chunk["ip_proto"][rows].astype(np.int64)
            ip_id = chunk["ip_id"][rows].astype(np.int64) & 0xFFFFFFFF
            return _key_bytes((src << 32) | dst, (proto << 32) | ip_id)

        import pandas as pd  # fragmented datagrams are rare: pandas only when there are some

        if len(self._frags) > _MAX_FRAGMENTED_DATAGRAMS:
            self._frags.clear()  # bounded memory: forget datagrams long gone
        # each non-first fragment takes the ports of the latest first fragment before it with the
        # same key: from this chunk if there is one, else from the table of earlier chunks
        rows = np.flatnonzero(first | rest)
        key_list = keys(rows)
        key_code, _ = pd.factorize(np.array(key_list, dtype=object))
        is_first = first[rows]
        latest = pd.Series(np.where(is_first, np.arange(len(rows)), -1)).groupby(key_code).cummax()
        latest_first = latest.to_numpy()
        sp, dp = chunk["sport"][rows].astype(np.int64), chunk["dport"][rows].astype(np.int64)
        here = ~is_first & (latest_first >= 0)
        take = rows[here]
        sp_all[take], dp_all[take] = sp[latest_first[here]], dp[latest_first[here]]
        found[take] = True
        earlier = np.flatnonzero(~is_first & (latest_first < 0))
        if len(earlier):
            get = self._frags.get
            unknown = (-1, -1, np.iinfo(np.int64).max)
            hits = np.array([get(key_list[i], unknown) for i in earlier.tolist()], dtype=np.int64)
            hits = hits.reshape(-1, 3)
            ok = hits[:, 2] < chunk["frame"][rows[earlier]]
            take = rows[earlier[ok]]
            sp_all[take], dp_all[take] = hits[ok, 0], hits[ok, 1]
            found[take] = True
        firsts = np.flatnonzero(is_first)  # in row order: the latest of a key is written last
        frames = chunk["frame"][rows]
        self._frags.update(
            (key_list[i], (int(sp[i]), int(dp[i]), int(frames[i]))) for i in firsts.tolist()
        )
        return found

    def _init_flows(
        self,
        chunk: PacketChunk,
        vi: np.ndarray,
        first_pos: np.ndarray,
        ids: np.ndarray,
        hi: np.ndarray,
        lo: np.ndarray,
        swap: np.ndarray,
        sp_all: np.ndarray,
        dp_all: np.ndarray,
    ) -> None:
        """Fill the static columns of new flows from their first packet; decide the originator."""
        st = self._st
        rows = vi[first_pos]
        st["a"][ids] = (hi[first_pos] >> 32).astype(np.int32)
        st["b"][ids] = (hi[first_pos] & 0xFFFFFFFF).astype(np.int32)
        st["pa"][ids] = ((lo[first_pos] >> 16) & 0xFFFF).astype(np.int32)
        st["pb"][ids] = (lo[first_pos] & 0xFFFF).astype(np.int32)
        proto = chunk["ip_proto"][rows].astype(np.int64)
        st["ip_proto"][ids] = proto
        st["ip_version"][ids] = chunk["ip_version"][rows]
        st["one_way"][ids] = ((lo[first_pos] >> 32) & 1).astype(bool)
        is_icmp = (proto == 1) | (proto == 58)
        st["has_ports"][ids] = np.isin(proto, _PORTED) | (is_icmp & (chunk["icmp_type"][rows] >= 0))
        st["first_frame"][ids] = chunk["frame"][rows]
        st["vlan"][ids] = chunk["vlan"][rows]

        flags = chunk["tcp_flags"][rows].astype(np.int64)
        is_syn = (flags >= 0) & ((flags & TCP_SYN) != 0)
        is_ack = (flags >= 0) & ((flags & TCP_ACK) != 0)
        sport, dport = chunk["sport"][rows].astype(np.int64), chunk["dport"][rows].astype(np.int64)
        tcp, udp = proto == 6, np.isin(proto, (17, 132))
        flip = np.zeros(len(rows), dtype=bool)
        flip[tcp] = np.where(
            is_syn[tcp], is_ack[tcp], zeek.flip_by_ports(sport[tcp], dport[tcp], is_syn[tcp])
        )
        flip[udp] = zeek.flip_by_ports(sport[udp], dport[udp], np.ones(int(udp.sum()), bool))
        mtype = chunk["icmp_type"][rows]
        flip |= (proto == 1) & np.isin(mtype, _ICMP4_REPLIES)
        flip |= (proto == 58) & np.isin(mtype, _ICMP6_REPLIES)
        st["flipped"][ids] = flip
        st["orig_side"][ids] = (swap[first_pos] ^ flip).astype(np.int8)

    def _retransmissions(  # type: ignore[no-untyped-def]
        self, code, g_of_code, d_of_code, col, is_tcp, tcp_len, syn, fin
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per packet: (retransmission, keep-alive). A retransmission is a TCP segment with
        payload whose whole sequence range was already covered, i.e. it ends at or below the
        highest sequence end seen in its direction (Zeek's rule); a keep-alive (at most one byte,
        starting one below that end) is not one.
        Sequence numbers are unwrapped (mod 2^32) against the previous segment of the same
        direction, carried across chunks."""
        st = self._st
        n = len(code)
        retrans = np.zeros(n, dtype=bool)
        keepalive_out = np.zeros(n, dtype=bool)
        raw_all = col("tcp_seq")
        # only segments that occupy sequence space matter (pure ACKs neither advance nor repeat)
        sel = np.flatnonzero(is_tcp & (raw_all >= 0) & ((tcp_len > 0) | syn | fin))
        if len(sel) == 0:
            return retrans, keepalive_out
        order = _stable_order(code[sel])
        s = sel[order]
        cs = code[s]
        starts = np.r_[0, np.flatnonzero(cs[1:] != cs[:-1]) + 1]
        counts = np.diff(np.r_[starts, len(s)])
        n_groups = len(starts)
        gidx = np.repeat(np.arange(n_groups, dtype=np.int64), counts)
        is_start = np.zeros(len(s), dtype=bool)
        is_start[starts] = True
        gg, dd = g_of_code[cs[starts]], d_of_code[cs[starts]]
        has = st["seq_has"][gg, dd]
        last_raw = st["seq_last_raw"][gg, dd]
        last_unw = np.where(has, st["seq_last_unw"][gg, dd], 0)
        carried_max = st["seq_max_end"][gg, dd]

        raw = raw_all[s]
        prev_raw = np.empty_like(raw)
        prev_raw[1:] = raw[:-1]
        prev_raw[starts] = np.where(has, last_raw, raw[starts])
        delta = (raw - prev_raw) & 0xFFFFFFFF
        delta = np.where(delta >= (1 << 31), delta - (1 << 32), delta)
        csum = np.cumsum(delta)
        offset = csum[starts] - delta[starts]
        unw = np.repeat(last_unw, counts) + csum - np.repeat(offset, counts)
        seg = tcp_len[s]
        end = unw + seg + syn[s] + fin[s]

        base = np.repeat(last_unw, counts)
        rel = np.clip(end - base, -_SEQ_CLIP, _SEQ_CLIP)
        if n_groups <= _MAX_GROUPS_IN_BANDS:
            banded = rel + _SEQ_CLIP + 1 + gidx * _SEQ_BAND
            running = np.maximum.accumulate(banded) - _SEQ_CLIP - 1 - gidx * _SEQ_BAND
        else:
            import pandas as pd  # more groups than the bands hold: rare, huge chunks only

            running = pd.Series(rel).groupby(gidx).cummax().to_numpy()
        excl = np.empty_like(running)
        excl[1:] = running[:-1] + base[1:]
        prev_max = np.where(
            is_start,
            np.repeat(carried_max, counts),
            np.maximum(excl, np.repeat(carried_max, counts)),
        )
        seen = prev_max > _NO_SEQ
        keepalive = (seg <= 1) & (unw == prev_max - 1)
        retrans[s] = seen & (seg > 0) & (end <= prev_max) & ~keepalive
        keepalive_out[s] = seen & keepalive

        ends = starts + counts - 1
        group_max = np.maximum.reduceat(end, starts)
        st["seq_has"][gg, dd] = True
        st["seq_last_raw"][gg, dd] = raw[ends]
        st["seq_last_unw"][gg, dd] = unw[ends]
        st["seq_max_end"][gg, dd] = np.maximum(carried_max, group_max)
        return retrans, keepalive_out

    def _scaled_repeats(  # type: ignore[no-untyped-def]
        self, code, g_of_code, frame, mask, counter: str, letter: str
    ) -> None:
        """Record the 10th, 100th ... occurrence of a scaled history letter (T, W)."""
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        st = self._st
        c = code[idx]
        g, d = g_of_code[c], c % 2
        nth = st[counter][g, d] + _rank_within(c) + 1
        hit = np.isin(nth, zeek.SCALED_AT)
        if hit.any():
            chars = np.where(d[hit] == 0, ord(letter), ord(letter.lower())).astype(np.uint8)
            self._extra.append((g[hit], frame[idx[hit]], chars))

    def _repeated_letters(  # type: ignore[no-untyped-def]
        self, code, g_of_code, frame, mask, value, ack, kind: str
    ) -> None:
        """Zeek writes S/H, F or R again when a later such packet of the same endpoint carries
        another sequence number than the previous one (a new SYN, not a retransmission)."""
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        st = self._st
        order = _stable_order(code[idx])
        rows = idx[order]
        c = code[rows]
        g, d = g_of_code[c], c % 2
        v = value[rows].astype(np.int64)
        starts = np.r_[True, c[1:] != c[:-1]]
        carried = st["last_" + kind + "_seq"][g, d]
        prev = np.empty_like(v)
        prev[1:] = v[:-1]
        prev[starts] = carried[starts]
        repeat = (prev >= 0) & (v != prev)
        ends = np.r_[c[1:] != c[:-1], True]
        st["last_" + kind + "_seq"][g[ends], d[ends]] = v[ends]
        if repeat.any():
            r = rows[repeat]
            if kind == "syn":
                letter = np.where(ack[r], ord("H"), ord("S"))
            else:
                letter = np.full(len(r), ord("F" if kind == "fin" else "R"))
            letter = np.where(d[repeat] == 0, letter, letter + 32).astype(np.uint8)  # lower case
            self._extra.append((g[repeat], frame[r], letter))

    def _link_icmp_errors(
        self,
        chunk: PacketChunk,
        vi: np.ndarray,
        proto: np.ndarray,
        frame: np.ndarray,
        err_flow: np.ndarray,
    ) -> None:
        """Link ICMP errors to the flow of the packet they quote (seen before the error)."""
        icmp = np.flatnonzero((proto == 1) | (proto == 58))
        if len(icmp) == 0:
            return
        mtype = chunk["icmp_type"][vi[icmp]]
        quoting = ((proto[icmp] == 1) & np.isin(mtype, _ICMP4_QUOTING)) | (
            (proto[icmp] == 58) & np.isin(mtype, _ICMP6_QUOTING)
        )
        e = icmp[quoting]
        if len(e) == 0:
            return
        rows = vi[e]
        isrc, idst = chunk["icmp_inner_src"][rows], chunk["icmp_inner_dst"][rows]
        iproto = chunk["icmp_inner_proto"][rows].astype(np.int64)
        isport = chunk["icmp_inner_sport"][rows].astype(np.int64)
        idport = chunk["icmp_inner_dport"][rows].astype(np.int64)
        ported = np.isin(iproto, _PORTED)
        ok = (isrc >= 0) & (idst >= 0) & (iproto >= 0) & ~np.isin(iproto, (1, 58))
        ok &= ~ported | ((isport >= 0) & (idport >= 0))
        if not ok.any():
            return
        e, rows = e[ok], rows[ok]
        sp = np.where(ported[ok], isport[ok], 0)
        dp = np.where(ported[ok], idport[ok], 0)
        hi, lo, _ = _flow_keys(isrc[ok], idst[ok], iproto[ok], sp, dp, np.zeros(len(e), dtype=bool))
        get = self._ids.get
        quoted = np.fromiter(
            map(get, _key_bytes(hi, lo), repeat(-1, len(e))), dtype=np.int64, count=len(e)
        )
        st = self._st
        fr = frame[e]
        linked = quoted >= 0
        linked[linked] = st["first_frame"][quoted[linked]] < fr[linked]
        if not linked.any():
            return
        q, fr, rows = quoted[linked], fr[linked], rows[linked]
        err_flow[rows] = q
        np.add.at(st["icmp_errors"], q, 1)
        _, first = np.unique(q, return_index=True)
        qf, frf, rf = q[first], fr[first], rows[first]
        better = frf < st["icmp_err_frame"][qf]
        qf, frf, rf = qf[better], frf[better], rf[better]
        st["icmp_err_frame"][qf] = frf
        st["icmp_err_type"][qf] = chunk["icmp_type"][rf]
        st["icmp_err_code"][qf] = chunk["icmp_code"][rf]
        st["icmp_err_v6"][qf] = chunk["ip_proto"][rf] == 58

    # --- the table --------------------------------------------------------------------------
    def _address_bytes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 16) left-aligned address bytes and their lengths for IP address codes."""
        texts = self.book.ip_texts
        uniq, inverse = np.unique(codes, return_inverse=True)
        packed = [
            socket.inet_pton(socket.AF_INET6 if ":" in t else socket.AF_INET, t)
            for t in (texts[c] for c in uniq.tolist())
        ]
        lengths = np.array([len(p) for p in packed], dtype=np.int64)
        raw = np.zeros((len(uniq), 16), dtype=np.uint8)
        for width in (4, 16):
            sel = np.flatnonzero(lengths == width)
            if len(sel):
                joined = b"".join(packed[i] for i in sel.tolist())
                raw[sel, :width] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, width)
        return raw[inverse.ravel()], lengths[inverse.ravel()]

    def _community_ids(
        self,
        orig_h: np.ndarray,
        resp_h: np.ndarray,
        orig_p: np.ndarray,
        resp_p: np.ndarray,
        proto: np.ndarray,
    ) -> np.ndarray:
        """Community ID v1 of every flow (numpy S30), from its originator's side."""
        n = len(orig_h)
        if n == 0:
            return np.zeros(0, dtype="S30")
        both, both_len = self._address_bytes(np.concatenate([orig_h, resp_h]))
        obytes, olen, rbytes = both[:n], both_len[:n], both[n:]
        one_way = self._st["one_way"][:n]
        block = 1 << 16  # bounded temporaries for big tables
        return np.concatenate(
            [
                community_id_bytes(
                    proto[i : i + block],
                    obytes[i : i + block],
                    rbytes[i : i + block],
                    olen[i : i + block],
                    orig_p[i : i + block],
                    resp_p[i : i + block],
                    one_way[i : i + block],
                )
                for i in range(0, n, block)
            ]
        )

    def finish(self) -> pd.DataFrame:
        """The flow table (one row per flow, columns of netdiag.flows.schema.FLOW_COLUMNS)."""
        return flow_dataframe(self.finish_columns(), self.book)

    def finish_columns(self) -> dict[str, np.ndarray]:
        """The flow table as numpy columns, in FLOW_COLUMNS order, without pandas.

        Integer columns have their schema dtypes; ``orig_h`` / ``resp_h`` are int32 address
        codes of the book; the text columns (``proto``, ``community_id``, ``conn_state``,
        ``history``, ``fin_by``, ``rst_by``, ``first_icmp_error``) are ASCII bytes (numpy
        ``S``). ``finish`` is the same table as a DataFrame (text as pandas 'str').
        """
        st = self._st
        n = st.n

        def a(name: str) -> np.ndarray:
            return st[name][:n]

        orig_is_a = a("orig_side") == 0
        orig_h = np.where(orig_is_a, a("a"), a("b"))
        resp_h = np.where(orig_is_a, a("b"), a("a"))
        has_ports = a("has_ports")
        orig_p = np.where(has_ports, np.where(orig_is_a, a("pa"), a("pb")), -1)
        resp_p = np.where(has_ports, np.where(orig_is_a, a("pb"), a("pa")), -1)
        proto = a("ip_proto").astype(np.int64)

        # the Community IDs (numpy work) are computed beside the history and states below
        cids = Background(lambda: self._community_ids(orig_h, resp_h, orig_p, resp_p, proto))

        ev = a("ev")
        if self._extra:
            ex_flow = np.concatenate([x[0] for x in self._extra])
            ex_frame = np.concatenate([x[1] for x in self._extra])
            ex_char = np.concatenate([x[2] for x in self._extra])
        else:
            ex_flow = ex_frame = np.zeros(0, dtype=np.int64)
            ex_char = np.zeros(0, dtype=np.uint8)
        history = zeek.history_strings(ev, a("flipped"), ex_flow, ex_frame, ex_char)
        o_state, r_state = zeek.endpoint_states(ev, a("first_flags"), a("first_len"))
        pkts, payload = a("pkts"), a("payload")
        conn_state = zeek.conn_states(
            proto, o_state, r_state, payload[:, 0], payload[:, 1], pkts[:, 0], pkts[:, 1], history
        )
        cid = cids.result()

        ts_syn, ts_sa, ts_ack = a("ts_syn"), a("ts_synack"), a("ts_ack_sa")
        syn_f = ev[:, zeek.slot("syn", 0)]
        sa_f = ev[:, zeek.slot("synack", 1)]
        ok1 = (ts_syn >= 0) & (ts_sa >= 0) & (sa_f > syn_f)
        ok2 = (ts_sa >= 0) & (ts_ack >= 0)
        rtt1 = np.where(ok1, ts_sa - ts_syn, -1)
        rtt2 = np.where(ok2, ts_ack - ts_sa, -1)
        rtt = np.where(ok1 & ok2, rtt1 + rtt2, -1)

        def who(event: str) -> np.ndarray:
            o = ev[:, zeek.slot(event, 0)] < _NEVER
            r = ev[:, zeek.slot(event, 1)] < _NEVER
            out = np.full(n, b"", dtype="S4")
            out[o] = b"orig"
            out[r] = b"resp"
            out[o & r] = b"both"
            return out

        with_err = np.flatnonzero(a("icmp_errors") > 0)
        types, codes_, v6 = a("icmp_err_type"), a("icmp_err_code"), a("icmp_err_v6")
        # the few flows an ICMP error quotes get a text; the others stay empty
        err_texts = [
            zeek.icmp_error_text(bool(v6[i]), int(types[i]), int(codes_[i])).encode("ascii")
            for i in with_err.tolist()
        ]
        err_text = np.full(n, b"", dtype=f"S{max(map(len, err_texts), default=1)}")
        err_text[with_err] = err_texts
        err_frame = np.where(a("icmp_errors") > 0, a("icmp_err_frame"), -1)

        proto_name = _PROTO_NAME_BYTES[np.clip(proto, 0, 255)]
        first_ts = np.where(pkts.sum(axis=1) > 0, a("min_ts"), -1)
        last_ts = np.where(pkts.sum(axis=1) > 0, a("max_ts"), -1)
        columns: dict[str, np.ndarray] = {
            "flow_id": np.arange(n, dtype=np.int64),
            "proto": proto_name,
            "ip_proto": proto.astype(np.int16),
            "ip_version": a("ip_version"),
            "orig_h": orig_h.astype(np.int32),
            "orig_p": orig_p.astype(np.int32),
            "resp_h": resp_h.astype(np.int32),
            "resp_p": resp_p.astype(np.int32),
            "community_id": cid,
            "first_ts_ns": first_ts,
            "last_ts_ns": last_ts,
            "duration_ns": last_ts - first_ts,
            "first_frame": a("first_frame"),
            "last_frame": a("last_frame"),
            "orig_pkts": pkts[:, 0],
            "resp_pkts": pkts[:, 1],
            "orig_ip_bytes": a("ip_bytes")[:, 0],
            "resp_ip_bytes": a("ip_bytes")[:, 1],
            "orig_bytes": payload[:, 0],
            "resp_bytes": payload[:, 1],
            "conn_state": conn_state,
            "history": history,
            "rtt_syn_synack_ns": rtt1,
            "rtt_synack_ack_ns": rtt2,
            "rtt_ns": rtt,
            "retrans_orig": a("retrans")[:, 0],
            "retrans_resp": a("retrans")[:, 1],
            "syn_count": a("syn_count"),
            "fin_by": who("fin"),
            "rst_by": who("rst"),
            "syn_isn_orig": a("isn")[:, 0],
            "syn_isn_resp": a("isn")[:, 1],
            "synack_ack": a("synack_ack"),
            "icmp_errors": a("icmp_errors"),
            "first_icmp_error": err_text,
            "first_icmp_error_frame": err_frame,
            "vlan": a("vlan"),
            "orig_iface": a("first_iface")[:, 0],
            "resp_iface": a("first_iface")[:, 1],
            "orig_ifindex": a("first_ifindex")[:, 0],
            "resp_ifindex": a("first_ifindex")[:, 1],
            "iface_mask": a("iface_mask"),
        }
        out: dict[str, np.ndarray] = {}
        for c in FLOW_COLUMNS:
            values = columns[c.name]
            if c.kind == "int" and values.dtype != np.dtype(c.dtype):
                values = values.astype(np.dtype(c.dtype))
            out[c.name] = values
        return out


def flow_dataframe(columns: dict[str, np.ndarray], book: AddressBook) -> pd.DataFrame:
    """The flow table's numpy columns (``FlowBuilder.finish_columns``) as a DataFrame:
    addresses as the book's Categoricals, text as pandas 'str' columns."""
    import pandas as pd

    frame: dict[str, object] = {}
    for name, values in columns.items():
        if name in ("orig_h", "resp_h"):
            frame[name] = book.categorical(values, "ip")
        elif values.dtype.kind == "S":
            frame[name] = _text_column(values)
        else:
            frame[name] = values
    df = pd.DataFrame(frame)  # copies the arrays: the table shares nothing with the state
    for c in FLOW_COLUMNS:
        if c.kind == "int" and str(df[c.name].dtype) != c.dtype:
            df[c.name] = df[c.name].astype(np.dtype(c.dtype))
    return df


def _text_column(values: np.ndarray) -> object:
    """ASCII bytes (numpy S<width>) as a pandas 'str' column, without a Python object per row."""
    import pandas as pd

    try:
        import pyarrow as pa
    except ImportError:  # pandas then stores str columns as objects anyway
        return values.astype(str).astype(object)
    arrow = pa.array(values, type=pa.binary()).cast(pa.string())
    return pd.array(arrow, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def build_flows(chunks: Iterable[PacketChunk], book: AddressBook) -> pd.DataFrame:
    """The flow table of a stream of packet chunks (each chunk gets its flow columns too)."""
    builder = FlowBuilder(book)
    for chunk in chunks:
        builder.add(chunk)
    return builder.finish()
