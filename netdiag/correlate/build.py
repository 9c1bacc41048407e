"""The library entry point of correlation: point inputs in, a Correlation out (see model.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from netdiag.correlate.matching import (
    PointInput,
    build_instances,
    clock_offsets,
    components,
    first_sightings,
    handshake_edges,
    make_points,
    make_taps,
    tolerance_for,
)
from netdiag.correlate.model import Correlation, Tap
from netdiag.correlate.paths import (
    hop_delays,
    missing_twins,
    replies_around_translator,
    translations,
)


def correlate(points: Sequence[PointInput], address_text: Callable[[int], str]) -> Correlation:
    """Match the packets of the points, estimate clocks, link connections, find rewrites."""
    obs_parts = [p.observations for p in points]
    taps = make_taps(points, obs_parts)
    firsts = [first_sightings(o) for o in obs_parts]
    offsets, basis, matches, spread, widest = clock_offsets(firsts)
    del firsts
    tolerance = tolerance_for(widest)
    obs = build_instances(_observation_columns(obs_parts, taps, offsets), tolerance)
    flows = [p.flows for p in points]
    node_base = np.r_[0, np.cumsum([len(f) for f in flows])].astype(np.int64)
    node = _flow_nodes(obs, node_base)
    conn_of_node = _connections(obs, node, flows, node_base)
    obs["conn"] = (
        np.where(node >= 0, conn_of_node[np.maximum(node, 0)], -1)
        if len(conn_of_node)
        else np.full(len(obs), -1, dtype=np.int64)
    )
    obs["node"] = node
    obs["flooded"] = _flooded(obs, address_text)
    obs["cdir"] = obs["flow_dir"].to_numpy()
    point_list = make_points(points, obs_parts, offsets, basis, matches, spread)
    spans = [(p.first_ts_ns - tolerance, p.last_ts_ns + tolerance) for p in point_list]
    per_conn, mappings = translations(obs, taps, address_text)
    connections = _connection_table(obs, flows, taps, offsets)
    matched = obs["instance"].to_numpy() >= 0
    stats = {
        "observations": int(len(obs)),
        "observations_matched": int(matched.sum()),
        "packets_matched": int(obs.loc[matched, "instance"].nunique()),
        "connections": int(connections["conn"].nunique()) if len(connections) else 0,
        "translated_connections": int(per_conn["conn"].nunique()) if len(per_conn) else 0,
    }
    quotes = _quotes(points, offsets, tolerance)
    stats["icmp_errors_linked"] = int(quotes[["capture", "frame"]].drop_duplicates().shape[0])
    return Correlation(
        points=point_list,
        taps=taps,
        observations=obs.drop(columns=["group"]).assign(group=obs["group"]),
        connections=connections,
        translations=per_conn,
        mappings=mappings,
        hops=hop_delays(obs),
        missing=_missing(obs, taps, spans, per_conn),
        quotes=quotes,
        tolerance_ns=tolerance,
        stats=stats,
    )


def _missing(
    obs: pd.DataFrame, taps: Sequence[Tap], spans: Sequence[tuple[int, int]], per_conn: pd.DataFrame
) -> pd.DataFrame:
    """Missing twins on each flow direction's own path, and replies that went around a NAT."""
    found = pd.concat(
        [missing_twins(obs, taps, spans), replies_around_translator(obs, per_conn)],
        ignore_index=True,
    )
    found = found.drop_duplicates(["capture", "frame", "missing_tap"])
    return found.sort_values(["capture", "frame", "missing_tap"]).reset_index(drop=True)


#: how long before an ICMP error the packet it quotes may have been seen (routers answer at once;
#: the time covers clock offsets and slow paths)
QUOTE_WINDOW_NS = 2_000_000_000


def _quotes(points: Sequence[PointInput], offsets: Sequence[int], tolerance: int) -> pd.DataFrame:
    """ICMP errors linked to the packet they quote as another point saw it: the quoted IP id,
    protocol and TCP sequence number (a NAT rewrites the quoted addresses and ports, never
    these), the latest such packet before the error."""
    columns = ["capture", "frame", "quoted_capture", "quoted_frame"]
    errors, sent = [], []
    for capture, point in enumerate(points):
        packets = point.packets
        if packets is None or len(packets) == 0 or "icmp_inner_id" not in packets.columns:
            continue
        t_ref = packets["ts_ns"].to_numpy() - np.int64(offsets[capture])
        proto = packets["ip_proto"].to_numpy()
        itype = packets["icmp_type"].to_numpy()
        is_error = ((proto == 1) & np.isin(itype, (3, 5, 11, 12))) | (
            (proto == 58) & np.isin(itype, (1, 2, 3, 4))
        )
        is_error &= packets["icmp_inner_id"].to_numpy() >= 0
        at = np.flatnonzero(is_error)
        errors.append(
            pd.DataFrame(
                {
                    "capture": capture,
                    "frame": packets["frame"].to_numpy()[at],
                    "t": t_ref[at],
                    "proto": packets["icmp_inner_proto"].to_numpy()[at].astype(np.int64),
                    "ip_id": packets["icmp_inner_id"].to_numpy()[at].astype(np.int64),
                    "seq": packets["icmp_inner_seq"].to_numpy()[at].astype(np.int64),
                }
            )
        )
        quotable = np.flatnonzero(~is_error & (packets["ip_id"].to_numpy() >= 0))
        sent.append(
            pd.DataFrame(
                {
                    "quoted_capture": capture,
                    "quoted_frame": packets["frame"].to_numpy()[quotable],
                    "t_q": t_ref[quotable],
                    "proto": proto[quotable].astype(np.int64),
                    "ip_id": packets["ip_id"].to_numpy()[quotable].astype(np.int64),
                    "seq": packets["tcp_seq"].to_numpy()[quotable].astype(np.int64),
                }
            )
        )
    if not errors or not sent:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    linked = pd.concat(errors).merge(pd.concat(sent), on=["proto", "ip_id", "seq"])
    linked = linked[
        (linked["capture"] != linked["quoted_capture"])
        & (linked["t_q"] <= linked["t"] + tolerance)
        & (linked["t_q"] >= linked["t"] - QUOTE_WINDOW_NS)
    ]
    linked = linked.sort_values(["capture", "frame", "quoted_capture", "t_q"])
    linked = linked.drop_duplicates(["capture", "frame", "quoted_capture"], keep="last")
    return linked[columns].reset_index(drop=True)


def _flooded(obs: pd.DataFrame, address_text: Callable[[int], str]) -> np.ndarray:
    """Packets a switch floods or that every host sends alike: to a multicast or broadcast
    address, and IPv6 neighbour discovery / MLD (ICMPv6 other than echo). Where they are seen
    says nothing about a path."""
    import ipaddress

    dst = obs["dst"].to_numpy()
    codes = np.unique(dst[dst >= 0])
    group_like = np.zeros(int(codes.max()) + 1 if len(codes) else 1, dtype=bool)
    for code in codes.tolist():
        try:
            address = ipaddress.ip_address(address_text(code))
        except ValueError:
            continue
        group_like[code] = address.is_multicast or str(address).endswith(".255")
    flooded = np.where(dst >= 0, group_like[np.maximum(dst, 0)], False)
    neighbour = (obs["proto"].to_numpy() == 58) & (obs["sport"].to_numpy() < 0)
    return flooded | neighbour  # type: ignore[no-any-return]


def _tuple_texts(flows: pd.DataFrame) -> np.ndarray:
    """ "orig_h:orig_p > resp_h:resp_p" of every flow (IPv6 in brackets), column-wise."""

    def endpoint(host: pd.Series, port: pd.Series) -> pd.Series:
        text = host.astype(str)
        text = text.where(~text.str.contains(":", regex=False), "[" + text + "]")
        return text.where(port.to_numpy() < 0, text + ":" + port.astype(str))

    left = endpoint(flows["orig_h"], flows["orig_p"])
    right = endpoint(flows["resp_h"], flows["resp_p"])
    return (left + " > " + right).to_numpy(dtype=object)


def _observation_columns(
    parts: Sequence[dict[str, np.ndarray]], taps: Sequence[Tap], offsets: Sequence[int]
) -> dict[str, np.ndarray]:
    """The points' observation rows as one set of columns, with capture, tap and the time on
    the reference clock."""
    extra: dict[str, list[np.ndarray]] = {"capture": [], "tap": [], "t_ref_ns": []}
    for capture, obs in enumerate(parts):
        mine = [t for t in taps if t.point == capture]
        links = np.array([t.link for t in mine], dtype=np.int64)
        ids = np.array([t.id for t in mine], dtype=np.int32)
        order = np.argsort(links)
        tap = (
            ids[order][np.searchsorted(links[order], obs["link"])]
            if len(links)
            else np.zeros(0, dtype=np.int32)
        )
        extra["capture"].append(np.full(len(obs["sig"]), capture, dtype=np.int32))
        extra["tap"].append(tap)
        extra["t_ref_ns"].append(obs["ts_ns"] - np.int64(offsets[capture]))
    cols = {
        name: np.concatenate([obs[name] for obs in parts]) for name in parts[0] if name != "link"
    }
    cols.update({name: np.concatenate(values) for name, values in extra.items()})
    return cols


def _flow_nodes(obs: pd.DataFrame, node_base: np.ndarray) -> np.ndarray:
    """The graph node of each observation: its flow (capture, flow id), -1 without one.

    ICMP echo flows are keyed by addresses and type, as Zeek does, so pings of two hosts sent out
    through one SNAT address with the same identifier share a flow there: each echo identifier
    of an ICMP flow is a node of its own (appended after the flows), or the two pings would be
    one connection.
    """
    flow = obs["flow_id"].to_numpy()
    capture = obs["capture"].to_numpy()
    node = np.where(flow >= 0, node_base[capture] + flow, -1)
    proto = obs["proto"].to_numpy()
    echo = np.flatnonzero(
        (flow >= 0) & ((proto == 1) | (proto == 58)) & (obs["sport"].to_numpy() >= 0)
    )
    if len(echo):
        keys = pd.DataFrame({"node": node[echo], "id": obs["sport"].to_numpy()[echo]})
        codes, _uniques = pd.MultiIndex.from_frame(keys).factorize()
        node[echo] = node_base[-1] + codes
    return node  # type: ignore[no-any-return]


def _connections(
    obs: pd.DataFrame, node: np.ndarray, flows: Sequence[pd.DataFrame], node_base: np.ndarray
) -> np.ndarray:
    """Connection id of every node (-1: a flow seen at one tap, linked to nothing)."""
    n_nodes = int(max(int(node.max()) + 1 if len(node) else 0, int(node_base[-1])))
    inst = obs["instance"].to_numpy()
    same = (inst[1:] == inst[:-1]) & (inst[1:] >= 0) & (node[1:] >= 0) & (node[:-1] >= 0)
    a = np.flatnonzero(same)
    edges = np.stack([node[a], node[a + 1]], axis=1)
    edges = np.concatenate([edges, handshake_edges(flows, node_base)])
    edges = edges[edges[:, 0] != edges[:, 1]]
    labels = components(n_nodes, edges[:, 0], edges[:, 1])
    size = np.bincount(labels, minlength=n_nodes)
    # a flow seen at two taps of one capture is a connection of one flow
    has = node >= 0
    pairs = pd.DataFrame({"node": node[has], "tap": obs["tap"].to_numpy()[has]}).drop_duplicates()
    multi_tap = np.zeros(n_nodes, dtype=bool)
    counts = pairs.groupby("node").size()
    multi_tap[counts.index[counts.to_numpy() >= 2].to_numpy()] = True
    root_multi = np.zeros(n_nodes, dtype=bool)
    np.logical_or.at(root_multi, labels, multi_tap)
    is_conn = (size[labels] >= 2) | root_multi[labels]
    # dense connection ids in order of their smallest node (first capture, first flow)
    roots = np.unique(labels[is_conn])
    conn_of_root = np.full(n_nodes, -1, dtype=np.int64)
    conn_of_root[roots] = np.arange(len(roots))
    return np.where(is_conn, conn_of_root[labels], -1)


def _connection_table(
    obs: pd.DataFrame,
    flows: Sequence[pd.DataFrame],
    taps: Sequence[Tap],
    offsets: Sequence[int],
) -> pd.DataFrame:
    """One row per (connection, capture, flow) with the taps that saw it and the flow's tuple."""
    columns = ["conn", "capture", "flow_id", "taps", "orig", "first_t_ref_ns"]
    member = obs.loc[obs["conn"] >= 0, ["conn", "capture", "flow_id", "tap"]]
    if member.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    tap_names = np.array([t.name for t in taps], dtype=object)
    # the set of taps of a flow as a bit mask: few distinct masks, each named once
    bits = np.left_shift(np.int64(1), np.minimum(member["tap"].to_numpy(), 62))
    masks = member.assign(bit=bits).drop_duplicates(["conn", "capture", "flow_id", "tap"])
    table = masks.groupby(["conn", "capture", "flow_id"], sort=True)["bit"].sum().reset_index()
    names = {
        m: ",".join(tap_names[[b for b in range(63) if m >> b & 1]]) for m in set(table["bit"])
    }
    table["taps"] = table["bit"].map(names)
    orig = np.empty(len(table), dtype=object)
    first = np.zeros(len(table), dtype=np.int64)
    for capture, flow_table in enumerate(flows):
        at = np.flatnonzero(table["capture"].to_numpy() == capture)
        if len(at) == 0:
            continue
        # flow ids are the flow table's positions (dense, from 0)
        sub = flow_table.iloc[table["flow_id"].to_numpy()[at]]
        orig[at] = _tuple_texts(sub)
        first[at] = sub["first_ts_ns"].to_numpy() - offsets[capture]
    table["orig"] = orig
    table["first_t_ref_ns"] = first
    return table[columns]
