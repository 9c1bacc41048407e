"""What the matched packets tell: rewrites between taps, per-hop delays, twins that never appear.

Input: the observation table after ``matching.build_instances`` with ``conn`` and ``cdir``
(direction within the connection: 0 originator -> responder, 1 back) filled. Column-wise
throughout; the only loops are over the few taps of a connection's route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from netdiag.correlate.model import Tap

_TUPLE = ("src", "sport", "dst", "dport")
#: packets of a flow direction below which its path is not judged (missing_twins)
MIN_PACKETS_PER_WAY = 3


def _steps(obs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i, i+1) of consecutive observations of one instance (obs sorted by group)."""
    inst = obs["instance"].to_numpy()
    same = (inst[1:] == inst[:-1]) & (inst[1:] >= 0)
    first = np.flatnonzero(same)
    return first, first + 1


def hop_delays(obs: pd.DataFrame) -> pd.DataFrame:
    """Per (from_tap, to_tap): packets and transit delay statistics on the reference clock."""
    a, b = _steps(obs)
    columns = ["from_tap", "to_tap", "packets", "delay_median_ns", "delay_p95_ns"]
    columns += ["delay_min_ns", "delay_max_ns"]
    if len(a) == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    t = obs["t_ref_ns"].to_numpy()
    tap = obs["tap"].to_numpy()
    steps = pd.DataFrame({"from_tap": tap[a], "to_tap": tap[b], "delay": t[b] - t[a]})
    by = steps.groupby(["from_tap", "to_tap"])["delay"]
    out = pd.DataFrame(
        {
            "packets": by.size(),
            "delay_median_ns": by.median().round().astype(np.int64),
            "delay_p95_ns": by.quantile(0.95).round().astype(np.int64),
            "delay_min_ns": by.min(),
            "delay_max_ns": by.max(),
        }
    ).reset_index()
    return out.sort_values(["from_tap", "to_tap"]).reset_index(drop=True)[columns]


def translations(
    obs: pd.DataFrame, taps: Sequence[Tap], text: Callable[[int], str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rewrites seen between consecutive taps of a packet's path: per connection, and aggregated.

    A reply's rewrite (R > C becoming V > C on its way back) is the same translation seen from
    the other side: it is turned into the originator's direction (C > V before, C > R after).
    A rewrite seen inside one capture (a device's in and out interfaces, one clock) is preferred
    to one inferred between two captures, whose order depends on the clock offset's accuracy.
    """
    vals = {c: obs[c].to_numpy() for c in _TUPLE}
    conn = obs["conn"].to_numpy()
    capture = obs["capture"].to_numpy()
    proto = obs["proto"].to_numpy()

    def changed(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = (conn[a] >= 0) & (proto[a] != -2)  # ARP is never translated
        differs = np.zeros(len(a), dtype=bool)
        for c in _TUPLE:
            differs |= vals[c][a] != vals[c][b]
        keep &= differs
        return a[keep], b[keep]

    # inside one capture: consecutive sightings of the packet at that point
    inst = obs["instance"].to_numpy()
    by_point = np.lexsort((obs["step"].to_numpy(), capture, inst))
    same = (inst[by_point][1:] == inst[by_point][:-1]) & (inst[by_point][1:] >= 0)
    same &= capture[by_point][1:] == capture[by_point][:-1]
    pa, pb = by_point[:-1][same], by_point[1:][same]
    # one tap seeing the packet twice is a rewrite at that point only when the point received
    # it and sent it out rewritten (a balancer's hairpin on one link: in, then outgoing); a host
    # that sent it and got it back rewritten (a backend's own SYN) saw a rewrite elsewhere
    tap = obs["tap"].to_numpy()
    pkttype = obs["pkttype"].to_numpy()
    local = (tap[pa] != tap[pb]) | ((pkttype[pa] != 4) & (pkttype[pa] >= 0) & (pkttype[pb] == 4))
    local_a, local_b = changed(pa[local], pb[local])
    # between captures: consecutive steps of the path, for packets with no local rewrite
    a, b = _steps(obs)
    cross = capture[a] != capture[b]
    cross &= ~np.isin(inst[a], inst[local_a])
    cross_a, cross_b = changed(a[cross], b[cross])
    a = np.concatenate([local_a, cross_a])
    b = np.concatenate([local_b, cross_b])
    reply = obs["cdir"].to_numpy()[a] == 1
    # in the originator's direction: before = upstream side; a reply's sides swap and reverse
    up = np.where(reply, b, a)
    down = np.where(reply, a, b)

    def side(pos: np.ndarray, rev: np.ndarray) -> dict[str, np.ndarray]:
        src, dst = vals["src"][pos], vals["dst"][pos]
        sp, dp = vals["sport"][pos], vals["dport"][pos]
        return {
            "src": np.where(rev, dst, src),
            "sport": np.where(rev, dp, sp),
            "dst": np.where(rev, src, dst),
            "dport": np.where(rev, sp, dp),
        }

    before = side(up, reply)
    after = side(down, reply)
    tap = obs["tap"].to_numpy()
    table = pd.DataFrame(
        {
            "conn": conn[a],
            "from_tap": tap[up],
            "to_tap": tap[down],
            **{f"b_{k}": v for k, v in before.items()},
            **{f"a_{k}": v for k, v in after.items()},
            "capture_before": obs["capture"].to_numpy()[up],
            "frame_before": obs["frame"].to_numpy()[up],
            "capture_after": obs["capture"].to_numpy()[down],
            "frame_after": obs["frame"].to_numpy()[down],
            "t": obs["t_ref_ns"].to_numpy()[a],
            "proto": obs["proto"].to_numpy()[a],
        }
    )
    keys = ["conn", "from_tap", "to_tap"] + [f"b_{k}" for k in _TUPLE] + [f"a_{k}" for k in _TUPLE]
    table = table.sort_values(["conn", "t"], kind="stable").drop_duplicates(keys)
    dnat = (table["b_dst"] != table["a_dst"]) | (table["b_dport"] != table["a_dport"])
    snat = (table["b_src"] != table["a_src"]) | (table["b_sport"] != table["a_sport"])
    table["kind"] = np.select([dnat & snat, dnat], ["DNAT+SNAT", "DNAT"], "SNAT")
    per_conn = _per_conn_table(table, text)
    return per_conn, _mappings(per_conn, taps)


def _tuple_text(table: pd.DataFrame, prefix: str, text: Callable[[int], str]) -> list[str]:
    from netdiag.correlate.matching import endpoint_text

    return [
        f"{endpoint_text(text(s), int(sp))} > {endpoint_text(text(d), int(dp))}"
        for s, sp, d, dp in zip(
            table[f"{prefix}src"],
            table[f"{prefix}sport"],
            table[f"{prefix}dst"],
            table[f"{prefix}dport"],
            strict=True,
        )
    ]


def _rule_texts(table: pd.DataFrame, text: Callable[[int], str]) -> tuple[list[str], list[str]]:
    """What the rewrite rule of each row changed, before and after: the destination endpoint
    (DNAT: "to V:x"), the source address (SNAT: "from S"; its ports are per connection), or
    both; an ICMP echo's identifier is per ping, not a service port."""
    from netdiag.correlate.matching import endpoint_text

    kind = table["kind"].to_numpy()
    no_port = np.isin(table["proto"].to_numpy(), (1, 58))
    before, after = [], []
    for k, icmp, bs, bd, bdp, as_, ad, adp in zip(
        kind,
        no_port,
        table["b_src"],
        table["b_dst"],
        table["b_dport"],
        table["a_src"],
        table["a_dst"],
        table["a_dport"],
        strict=True,
    ):
        parts_b, parts_a = [], []
        if k != "DNAT":
            parts_b.append(f"from {text(int(bs))}")
            parts_a.append(f"from {text(int(as_))}")
        if k != "SNAT":
            parts_b.append(f"to {endpoint_text(text(int(bd)), -1 if icmp else int(bdp))}")
            parts_a.append(f"to {endpoint_text(text(int(ad)), -1 if icmp else int(adp))}")
        before.append(" ".join(parts_b))
        after.append(" ".join(parts_a))
    return before, after


def _per_conn_table(table: pd.DataFrame, text: Callable[[int], str]) -> pd.DataFrame:
    columns = ["conn", "from_tap", "to_tap", "kind", "proto", "before", "after", "rule_before"]
    columns += ["rule_after", "capture_before", "frame_before", "capture_after", "frame_after"]
    columns += [f"b_{k}" for k in _TUPLE] + [f"a_{k}" for k in _TUPLE]
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    rule_before, rule_after = _rule_texts(table, text)
    out = table.assign(
        before=_tuple_text(table, "b_", text),
        after=_tuple_text(table, "a_", text),
        rule_before=rule_before,
        rule_after=rule_after,
    )
    return out[columns].reset_index(drop=True)


def _mappings(per_conn: pd.DataFrame, taps: Sequence[Tap]) -> pd.DataFrame:
    """One row per rewrite rule: where, kind, the rewritten endpoints before and after."""
    columns = ["at", "from_tap", "to_tap", "kind", "before", "after", "connections", "conns"]
    if per_conn.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    rows = []
    keys = ["from_tap", "to_tap", "kind", "rule_before", "rule_after"]
    for key, group in per_conn.groupby(keys, sort=True):
        from_tap, to_tap, kind, before, after = cast(tuple[Any, ...], key)
        conns = sorted(set(group["conn"].astype(int)))
        rows.append(
            {
                "at": where(taps[int(from_tap)], taps[int(to_tap)]),
                "from_tap": int(from_tap),
                "to_tap": int(to_tap),
                "kind": str(kind),
                "before": str(before),
                "after": str(after),
                "connections": len(conns),
                "conns": conns[:10],
            }
        )
    return pd.DataFrame(rows, columns=columns)


def where(a: Tap, b: Tap) -> str:
    """Where a rewrite between taps ``a`` and ``b`` happened, in words."""
    if a.point == b.point:
        point = a.name.split(":", 1)[0] if ":" in a.name else a.name
        return f"at {point} ({a.iface or a.link} -> {b.iface or b.link})"
    return f"between {a.name} and {b.name}"


def missing_twins(
    obs: pd.DataFrame, taps: Sequence[Tap], spans: Sequence[tuple[int, int]]
) -> pd.DataFrame:
    """Packets of a connection missing at a tap of the connection's path in their direction.

    The path of a connection in one direction is the taps that saw most (at least half) of its
    packets in that direction, in the order they saw them (median step). Each direction has its
    own path: replies may take another way by design (LVS-DR, direct server return), and a
    switch floods only some packets to every port. A packet whose last tap on the path is
    followed by taps that never saw it is "lost" after that tap; a packet seen further on but
    not at an earlier tap of the path "bypassed" that tap. A tap counts only while its capture
    was running. Rules that expect replies to retrace the requests (NAT) check that themselves.
    """
    columns = ["capture", "frame", "tap", "conn", "direction", "missing_tap", "kind"]
    empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    conn = obs["conn"].to_numpy()
    group = obs["group"].to_numpy()
    cdir = obs["cdir"].to_numpy().astype(np.int64)
    judged = (conn >= 0) & (cdir >= 0) & ~obs["flooded"].to_numpy()
    member = np.flatnonzero(judged)
    if len(member) == 0:
        return empty
    n_taps = max(len(taps), 1)
    # a packet's way: the flow and direction it was first seen in (the client's SYNs to a VIP
    # and its resets to the server's own address are two ways of one connection)
    starts = np.flatnonzero(obs["step"].to_numpy() == 0)
    node = obs["node"].to_numpy()
    way_of_group = np.full(int(group.max()) + 1, -1, dtype=np.int64)
    way_of_group[group[starts]] = np.where(
        node[starts] >= 0, node[starts] * 2 + np.clip(cdir[starts], 0, 1), -1
    )
    way_all = np.where(judged, way_of_group[group], -1)
    member = member[way_all[member] >= 0]
    way = way_all[member]
    sight = pd.DataFrame(
        {
            "way": way,
            "tap": obs["tap"].to_numpy()[member],
            "group": group[member],
            "step": obs["step"].to_numpy()[member],
        }
    ).drop_duplicates(["group", "tap"])
    packets_per_way = sight.groupby("way")["group"].nunique()
    per_tap = sight.groupby(["way", "tap"]).agg(n=("group", "size"), at=("step", "median"))
    per_tap = per_tap.reset_index()
    # a path needs a few packets to be told from chance (a flooded first packet, one multicast)
    enough = per_tap["way"].map(packets_per_way)
    per_tap = per_tap[(per_tap["n"] * 2 >= enough) & (enough >= MIN_PACKETS_PER_WAY)]
    route_len = per_tap.groupby("way")["tap"].transform("size")
    per_tap = per_tap[route_len >= 2]
    if per_tap.empty:
        return empty
    per_tap = per_tap.sort_values(["way", "at", "tap"])
    per_tap["pos"] = per_tap.groupby("way").cumcount()
    expected = pd.DataFrame(
        {
            "way": per_tap["way"].to_numpy(),
            "tap": per_tap["tap"].to_numpy(),
            "pos": per_tap["pos"].to_numpy(),
        }
    )
    # only packets seen at fewer taps of their route than it has can miss one: find them with
    # one integer key per (way, tap) before any table is joined
    exp_way = expected["way"].to_numpy()
    exp_key = exp_way * n_taps + expected["tap"].to_numpy()
    key = way_all * n_taps + obs["tap"].to_numpy()
    on_route = (way_all >= 0) & np.isin(key, exp_key)
    gsize = np.bincount(group)
    ways = np.unique(exp_way)
    lengths = np.bincount(np.searchsorted(ways, exp_way), minlength=len(ways))
    seen_on_route = np.bincount(group[on_route], minlength=len(gsize))
    group_way = way_of_group
    at = np.searchsorted(ways, group_way)
    has_route = (group_way >= 0) & (at < len(ways))
    has_route[has_route] &= ways[at[has_route]] == group_way[has_route]
    group_len = np.zeros(len(gsize), dtype=np.int64)
    group_len[has_route] = lengths[at[has_route]]
    short = has_route & (seen_on_route < group_len)
    keep = (way_all >= 0) & short[group]
    in_conn = obs[keep].assign(way=way_all[keep])
    if in_conn.empty:
        return empty
    # every packet (group) of those connections with the taps that saw it
    seen = in_conn[["group", "way", "conn", "cdir", "tap", "capture", "frame", "t_ref_ns"]]
    seen = seen.merge(expected, on=["way", "tap"], how="left")
    seen["pos"] = seen["pos"].fillna(-1).astype(np.int64)
    per_group = seen.groupby("group").agg(
        way=("way", "first"),
        conn=("conn", "first"),
        cdir=("cdir", "first"),
        last_pos=("pos", "max"),
        t=("t_ref_ns", "first"),
    )
    candidates = per_group.reset_index().merge(expected, on="way")
    saw = seen[["group", "tap"]].drop_duplicates().assign(saw=True)
    candidates = candidates.merge(saw, on=["group", "tap"], how="left")
    candidates = candidates[candidates["saw"].isna()]
    # only while the missing tap's capture was running
    start = np.array([spans[t.point][0] for t in taps], dtype=np.int64)
    stop = np.array([spans[t.point][1] for t in taps], dtype=np.int64)
    tap_idx = candidates["tap"].to_numpy(dtype=np.int64)
    t = candidates["t"].to_numpy(dtype=np.int64)
    candidates = candidates[(t >= start[tap_idx]) & (t <= stop[tap_idx])]
    if candidates.empty:
        return empty
    lost = candidates["pos"] > candidates["last_pos"]
    # a lost packet is reported once, at the first tap after its last; a bypass at each tap
    first_lost = candidates[lost].sort_values("pos").drop_duplicates("group")
    bypassed = candidates[~lost]
    where_seen = seen.sort_values(["group", "t_ref_ns"])
    last_seen = where_seen.drop_duplicates("group", keep="last").set_index("group")
    # a bypass names the tap that saw the packet after the gap
    after_gap = seen[seen["pos"] >= 0][["group", "pos", "tap", "capture", "frame"]]
    rows = []
    if not first_lost.empty:
        info = last_seen.loc[first_lost["group"].to_numpy()]
        rows.append(_missing_rows(info, info["tap"], first_lost, first_lost["tap"], "lost"))
    if not bypassed.empty:
        nxt = bypassed[["group", "conn", "cdir", "tap", "pos"]].merge(
            after_gap.rename(columns={"pos": "seen_pos", "tap": "seen_tap"}), on="group"
        )
        nxt = nxt[nxt["seen_pos"] > nxt["pos"]].sort_values(["group", "pos", "seen_pos"])
        nxt = nxt.drop_duplicates(["group", "tap"])
        # a packet seen at no tap of the route (another path entirely) has no "after gap"
        offroute = bypassed[~bypassed["group"].isin(nxt["group"])]
        offroute = offroute.sort_values("pos").drop_duplicates("group")
        if not offroute.empty:
            info = last_seen.loc[offroute["group"].to_numpy()]
            rows.append(_missing_rows(info, info["tap"], offroute, offroute["tap"], "bypassed"))
        if not nxt.empty:
            rows.append(_missing_rows(nxt, nxt["seen_tap"], nxt, nxt["tap"], "bypassed"))
    if not rows:
        return empty
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["capture", "frame", "missing_tap"]).reset_index(drop=True)[columns]


def _missing_rows(
    seen: pd.DataFrame, tap: pd.Series, packet: pd.DataFrame, missing_tap: pd.Series, kind: str
) -> pd.DataFrame:
    """Rows of the missing table: where the packet was seen (capture, frame, tap), its
    connection and direction (from ``packet``), the tap that never saw it."""
    return pd.DataFrame(
        {
            "capture": seen["capture"].to_numpy(),
            "frame": seen["frame"].to_numpy(),
            "tap": tap.to_numpy(),
            "conn": packet["conn"].to_numpy(),
            "direction": np.where(packet["cdir"].to_numpy() == 0, "orig", "resp"),
            "missing_tap": missing_tap.to_numpy(),
            "kind": kind,
        }
    )


def replies_around_translator(obs: pd.DataFrame, per_conn: pd.DataFrame) -> pd.DataFrame:
    """Replies of translated connections that never passed the taps of the rewrite.

    A NAT must see the replies of what it rewrote (only it can rewrite them back), so for these
    connections the reply's path is the request's reversed, whatever other paths do: one row per
    such reply, at the first tap that saw it, missing at the tap after the rewrite ("bypassed").
    """
    columns = ["capture", "frame", "tap", "conn", "direction", "missing_tap", "kind"]
    empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    if per_conn.empty:
        return empty
    rewrite = per_conn.drop_duplicates("conn")[["conn", "from_tap", "to_tap"]]
    replies = obs.loc[
        (obs["conn"] >= 0) & (obs["cdir"] == 1) & ~obs["flooded"],
        ["group", "conn", "tap", "capture", "frame", "t_ref_ns"],
    ].merge(rewrite, on="conn")
    if replies.empty:
        return empty
    through = replies[
        (replies["tap"] == replies["to_tap"]) | (replies["tap"] == replies["from_tap"])
    ]
    around = replies[~replies["group"].isin(through["group"])]
    first = around.sort_values(["group", "t_ref_ns"]).drop_duplicates("group")
    return pd.DataFrame(
        {
            "capture": first["capture"].to_numpy(),
            "frame": first["frame"].to_numpy(),
            "tap": first["tap"].to_numpy(),
            "conn": first["conn"].to_numpy(),
            "direction": "resp",
            "missing_tap": first["to_tap"].to_numpy(),
            "kind": "bypassed",
        }
    )[columns]
