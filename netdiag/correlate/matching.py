"""Correlate capture points: clock offsets, one instance per travelling packet, connections.

Steps, all column-wise over the observation tables of the points (see observations.py):

1. Clock offsets. Per pair of points, the packets whose signature occurs once (or as one burst
   within a host's links) at each point give time differences. Per connection, the median
   difference of the originator's packets and of the responder's packets are the offset plus and
   minus the transit delay: their mean is the offset (NTP's reasoning, assuming symmetric
   delay); the median over connections is the estimate. With one direction only, the median
   difference (offset plus delay) is kept and marked "one-way". Points are tied to the reference
   (the first point) along the pairs with the most matches.
2. Instances. All observations sorted by (signature, reference time): consecutive observations
   of one signature belong to one packet unless they are further apart than the tolerance or
   seen at the same tap twice in a row (a retransmission of an identical packet).
3. Connections. Flows (capture, flow id) linked by an instance, or by a TCP handshake (a SYN-ACK
   acknowledging ISN+1 of a SYN from the same client address and port, whatever address
   answered) are one connection (connected components).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from netdiag.correlate.model import Point, Tap

#: observations of one signature at one point within this span are one packet seen on several
#: links of the host (a router's in and out interfaces), not a repeated packet
BURST_NS = 50_000_000
#: bounds of the matching tolerance (the time window of one packet's observations), which is
#: derived from the transit times seen (hosts in namespaces or VMs stall for milliseconds);
#: identical packets (retries, IPv6 retransmissions) repeat after a few ms or more
MIN_TOLERANCE_NS = 2_000_000
MAX_TOLERANCE_NS = 500_000_000
#: matched packets a pair of points needs to tie their clocks
MIN_OFFSET_MATCHES = 3


@dataclass
class PointInput:
    """What correlation needs of one capture."""

    path: str
    name: str
    named_by: str
    observations: dict[str, np.ndarray]
    flows: pd.DataFrame
    iface_name: Callable[[int], str]  # link id -> interface name ("" when unknown)
    packets: pd.DataFrame | None = None  # the kept packets (ICMP errors and what they quote)


# --- 1. clock offsets -----------------------------------------------------------------------------


def first_sightings(obs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per signature seen as one packet at this point: its first time and flow (id, direction)."""
    sig = obs["sig"]
    if len(sig) == 0:
        return pd.DataFrame({"sig": sig, "ts": sig, "flow": sig, "dir": sig})
    # hashed grouping (no sort): the earliest and latest sighting of each signature
    times = pd.Series(obs["ts_ns"], copy=False).groupby(sig, sort=False)
    spans = times.agg(["idxmin", "min", "max"])
    single = (spans["max"] - spans["min"]).to_numpy() <= BURST_NS
    first = spans["idxmin"].to_numpy()[single]
    return pd.DataFrame(
        {
            "sig": sig[first],
            "ts": obs["ts_ns"][first],
            "flow": obs["flow_id"][first],
            "dir": obs["flow_dir"][first].astype(np.int64),
        }
    )


@dataclass
class PairOffset:
    a: int
    b: int
    offset_ns: int  # clock of b minus clock of a
    basis: str  # "two-way" or "one-way"
    matches: int
    spread_ns: int  # median distance of a matched packet's time difference from the offset
    widest_ns: int  # 99.9th percentile of that distance (transit delays, stalls)


def pair_offset(first_a: pd.DataFrame, first_b: pd.DataFrame, a: int, b: int) -> PairOffset | None:
    """The clock offset of point b relative to point a from their common packets."""
    both = first_a.merge(first_b, on="sig", suffixes=("_a", "_b"))
    if len(both) < MIN_OFFSET_MATCHES:
        return None
    diff = both["ts_b"].to_numpy() - both["ts_a"].to_numpy()
    both = both.assign(diff=diff)
    # a flow seen in both directions at one of the points (at a NAT device the request and the
    # reply are first seen in two different flows: before and after the rewrite)
    two_way = pd.DataFrame()
    for side in ("a", "b"):
        rows = both[both[f"flow_{side}"] >= 0]
        per_way = rows.groupby([f"flow_{side}", f"dir_{side}"])["diff"].median().unstack()
        found = per_way.dropna() if per_way.shape[1] == 2 else per_way.iloc[0:0]
        if len(found) > len(two_way):
            two_way = found
    if len(two_way) >= 1:
        estimates = (two_way.iloc[:, 0] + two_way.iloc[:, 1]) / 2
        offset = int(round(float(np.median(estimates.to_numpy()))))
        basis = "two-way"
    else:
        offset = int(np.median(diff))
        basis = "one-way"
    residual = np.abs(diff - offset)
    spread = int(np.median(residual))
    if offset != 0 and abs(offset) <= spread:
        # not told apart from zero: one clock (namespaces of one host, or well-synced hosts);
        # a few microseconds of estimation noise would only misorder hops of a LAN
        offset = 0
        basis += ", zero within spread"
        residual = np.abs(diff)
    widest = int(np.quantile(residual, 0.999))
    return PairOffset(a, b, offset, basis, len(both), spread, widest)


def clock_offsets(
    firsts: Sequence[pd.DataFrame],
) -> tuple[list[int], list[str], list[int], list[int], list[int]]:
    """Per point: offset to the reference (point 0), basis, matches, spread; and the widest
    residual of each pair used (for the tolerance)."""
    n = len(firsts)
    pairs: dict[tuple[int, int], PairOffset] = {}
    for a in range(n):
        for b in range(a + 1, n):
            found = pair_offset(firsts[a], firsts[b], a, b)
            if found is not None:
                pairs[(a, b)] = found
    offsets = [0] * n
    basis = ["reference"] + ["none"] * (n - 1)
    matches = [0] * n
    spread = [0] * n
    placed = {0}
    widest: list[int] = []
    # tie points to the placed ones along the pair with the most matches first (Prim's order)
    while True:
        best: PairOffset | None = None
        for (a, b), pair in pairs.items():
            if (a in placed) != (b in placed) and (best is None or pair.matches > best.matches):
                best = pair
        if best is None:
            break
        if best.a in placed:
            new, offset = best.b, offsets[best.a] + best.offset_ns
        else:
            new, offset = best.a, offsets[best.b] - best.offset_ns
        offsets[new] = offset
        basis[new] = best.basis
        matches[new] = best.matches
        spread[new] = best.spread_ns
        widest.append(best.widest_ns)
        placed.add(new)
    if n > 1 and matches[0] == 0:
        matches[0] = max(matches[1:])
    return offsets, basis, matches, spread, widest


def tolerance_for(widest: Sequence[int]) -> int:
    """The matching window: twice the widest transit time seen between tied points (99.9th
    percentile) plus 1 ms, within the bounds (see the constants)."""
    wide = max(widest, default=MAX_TOLERANCE_NS // 10)
    return int(min(max(2 * wide + 1_000_000, MIN_TOLERANCE_NS), MAX_TOLERANCE_NS))


# --- 2. instances ---------------------------------------------------------------------------------


def build_instances(cols: dict[str, np.ndarray], tolerance_ns: int) -> pd.DataFrame:
    """The observation table (from its columns), sorted by signature and reference time, with
    ``instance`` (-1 when alone), ``step`` (position in its path) and ``group`` (one id per
    packet, alone or not) added.

    Observations at one reference time keep the capture order for requests and the reverse for
    replies (flow direction 1): with no measurable transit time, a reply travels back the way
    the request came. The rows are gathered once, in their final order.
    """
    capture = cols["capture"]
    tie = np.where(cols["flow_dir"] == 1, -capture, capture)
    order = np.lexsort((tie, cols["t_ref_ns"], cols["sig"]))
    sig = cols["sig"][order]
    t = cols["t_ref_ns"][order]
    tap = cols["tap"][order]
    n = len(order)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (sig[1:] != sig[:-1]) | (t[1:] - t[:-1] > tolerance_ns)
    del sig, t
    segment = np.cumsum(new) - 1
    copy = _copy_index(segment, tap, _tuple_key(cols, order))
    # inside a packet, a higher TTL was seen earlier on its way: routers only decrement it, while
    # two clocks tied by an estimate may disagree by as much as a LAN hop takes
    ttl = cols["ttl"][order].astype(np.int64)
    within = np.lexsort((np.arange(n), -ttl, copy, segment))
    segment, copy = segment[within], copy[within]
    perm = order[within]
    del order, within, ttl, tap
    # copy=False: the gathered arrays become the columns as they are (no 2-D block copy)
    obs = pd.DataFrame({name: values[perm] for name, values in cols.items()}, copy=False)
    change = np.r_[True, (segment[1:] != segment[:-1]) | (copy[1:] != copy[:-1])] if n else new
    group = np.cumsum(change) - 1
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if n else np.zeros(0, np.int64)
    size = np.diff(np.r_[starts, n])
    multi = size >= 2
    instance_of_group = np.full(len(starts), -1, dtype=np.int64)
    instance_of_group[multi] = np.arange(int(multi.sum()))
    obs["instance"] = instance_of_group[group]
    obs["step"] = (np.arange(n) - starts[group]).astype(np.int32)
    obs["group"] = group
    return obs


def _tuple_key(cols: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """One integer per observation (of ``rows``) for its addresses, ports and MACs (equal
    tuples, equal keys; int64 arithmetic wraps, which only merges keys by accident, never
    splits equal ones)."""
    key = cols["src"][rows].astype(np.int64) * 1_000_003 + cols["dst"][rows]
    key = key * 65_537 + cols["sport"][rows]
    key = key * 65_537 + cols["dport"][rows]
    key = key * 1_000_003 + cols["eth_src"][rows].astype(np.int64) * 7919
    return key + cols["eth_dst"][rows]  # type: ignore[no-any-return]


def _copy_index(segment: np.ndarray, tap: np.ndarray, tuple_key: np.ndarray) -> np.ndarray:
    """Which copy of an identical packet each observation is, inside its run of one signature
    (0 for nearly all: a packet is seen once per tap and tuple).

    An identical packet sent again within the tolerance (ARP retries, IPv6 retransmissions)
    repeats a tap. When every tap of the run saw the same number of copies, the k-th copy at one
    tap is the k-th at the others (first in, first out: copies closer together than the hop
    interleave in time). Otherwise some copies were lost between taps, and a copy is cut where
    a tap repeats, in time order. The same packet rewritten and sent back out of the link it
    came in on (a load balancer's hairpin) has another tuple: it is not a copy.
    """
    copy = np.zeros(len(segment), dtype=np.int64)
    if len(segment) < 2:
        return copy
    # only runs where a tap repeats can hold copies: runs of two at two taps (nearly all) cannot
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    sizes = np.diff(np.r_[starts, len(segment)])
    second = np.minimum(starts + 1, len(segment) - 1)
    maybe = (sizes >= 3) | ((sizes == 2) & (tap[starts] == tap[second]))
    if not maybe.any():
        return copy
    rows = np.flatnonzero(maybe[segment])
    copy[rows] = _copies_in(segment[rows], tap[rows], tuple_key[rows])
    return copy


def _copies_in(segment: np.ndarray, tap: np.ndarray, tuple_key: np.ndarray) -> np.ndarray:
    """``_copy_index`` over the runs that may hold copies (whole runs, in order)."""
    n = len(segment)
    copy = np.zeros(n, dtype=np.int64)
    segment = np.cumsum(np.r_[True, segment[1:] != segment[:-1]]) - 1  # runs numbered from 0
    # previous row of the same segment, tap and tuple (rows are in time order in a segment)
    by = np.lexsort((np.arange(n), tuple_key, tap, segment))
    same = (
        (segment[by][1:] == segment[by][:-1])
        & (tap[by][1:] == tap[by][:-1])
        & (tuple_key[by][1:] == tuple_key[by][:-1])
    )
    prev = np.full(n, -1, dtype=np.int64)
    prev[by[1:][same]] = by[:-1][same]
    rows = np.flatnonzero(prev >= 0)
    if len(rows) == 0:
        return copy
    # sequential only over the few runs with a repeat
    seg_start = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    for seg in np.unique(segment[rows]).tolist():
        lo = int(seg_start[seg])
        hi = int(seg_start[seg + 1]) if seg + 1 < len(seg_start) else n
        keys = list(zip(tap[lo:hi].tolist(), tuple_key[lo:hi].tolist(), strict=True))
        counts: dict[tuple[int, int], int] = {}
        rank = []
        for key in keys:
            rank.append(counts.get(key, 0))
            counts[key] = counts.get(key, 0) + 1
        if len(set(counts.values())) == 1:
            copy[lo:hi] = rank
            continue
        current, start = 0, lo
        for i in range(lo + 1, hi):
            if prev[i] >= start:
                current += 1
                start = i
            copy[i] = current
    return copy


# --- 3. connections -------------------------------------------------------------------------------


def components(n_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected-component label (smallest node id) of every node, edges (u, v)."""
    labels = np.arange(n_nodes, dtype=np.int64)
    if len(u) == 0:
        return labels
    while True:
        low = np.minimum(labels[u], labels[v])
        before = labels.copy()
        np.minimum.at(labels, u, low)
        np.minimum.at(labels, v, low)
        while True:  # pointer jumping: every node straight to its root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels


def handshake_edges(flows: Sequence[pd.DataFrame], node_base: np.ndarray) -> np.ndarray:
    """Node pairs of flows tied by a TCP handshake: a SYN-ACK's ack is ISN+1 of a SYN from the
    same client address and port (the answer came from another address than asked, or was seen
    at another point)."""
    syns, acks = [], []
    for capture, table in enumerate(flows):
        if table.empty or "syn_isn_orig" not in table.columns:
            continue
        tcp = table[table["ip_proto"] == 6]
        orig = tcp["orig_h"].cat.codes.to_numpy().astype(np.int64)
        node = node_base[capture] + tcp["flow_id"].to_numpy().astype(np.int64)
        port = tcp["orig_p"].to_numpy().astype(np.int64)
        has_syn = tcp["syn_isn_orig"].to_numpy() >= 0
        syns.append(
            pd.DataFrame(
                {
                    "h": orig[has_syn],
                    "p": port[has_syn],
                    "isn": tcp["syn_isn_orig"].to_numpy()[has_syn],
                    "n": node[has_syn],
                }
            )
        )
        has_ack = tcp["synack_ack"].to_numpy() >= 0
        acks.append(
            pd.DataFrame(
                {
                    "h": orig[has_ack],
                    "p": port[has_ack],
                    "isn": (tcp["synack_ack"].to_numpy()[has_ack] - 1) % (1 << 32),
                    "m": node[has_ack],
                }
            )
        )
    if not syns or not acks:
        return np.zeros((0, 2), dtype=np.int64)
    tied = pd.concat(syns).merge(pd.concat(acks), on=["h", "p", "isn"])
    tied = tied[tied["n"] != tied["m"]]
    return tied[["n", "m"]].to_numpy(dtype=np.int64)


def endpoint_text(address: str, port: int) -> str:
    if port < 0:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def make_taps(
    points: Sequence[PointInput], obs_parts: Sequence[dict[str, np.ndarray]]
) -> list[Tap]:
    taps: list[Tap] = []
    for index, (point, obs) in enumerate(zip(points, obs_parts, strict=True)):
        links = np.unique(obs["link"]) if len(obs["link"]) else np.zeros(0, dtype=np.int64)
        for link in links.tolist():
            iface = point.iface_name(int(link))
            name = point.name if len(links) == 1 else f"{point.name}:{iface or link}"
            taps.append(Tap(len(taps), index, int(link), iface, name))
    return taps


def make_points(
    points: Sequence[PointInput],
    obs_parts: Sequence[dict[str, np.ndarray]],
    offsets: Sequence[int],
    basis: Sequence[str],
    matches: Sequence[int],
    spread: Sequence[int],
) -> list[Point]:
    out = []
    for i, point in enumerate(points):
        ts = obs_parts[i]["ts_ns"]
        first = int(ts.min()) - offsets[i] if len(ts) else -1
        last = int(ts.max()) - offsets[i] if len(ts) else -1
        out.append(
            Point(
                i,
                point.name,
                point.path,
                point.named_by,
                int(offsets[i]),
                basis[i],
                int(matches[i]),
                int(spread[i]),
                first,
                last,
            )
        )
    return out
