"""The library entry point of correlation: point inputs in, a Correlation out (see model.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from netdiag.correlate.matching import (
    PointInput,
    _first_sightings,
    build_instances,
    clock_offsets,
    components,
    endpoint_text,
    handshake_edges,
    make_points,
    make_taps,
    tolerance_for,
)
from netdiag.correlate.model import Correlation, Tap
from netdiag.correlate.paths import hop_delays, missing_twins, translations


def correlate(points: Sequence[PointInput], address_text: Callable[[int], str]) -> Correlation:
    """Match the packets of the points, estimate clocks, link connections, find rewrites."""
    obs_parts = [p.observations for p in points]
    taps = make_taps(points, obs_parts)
    firsts = [_first_sightings(o) for o in obs_parts]
    offsets, basis, matches, spread, widest = clock_offsets(firsts)
    del firsts
    tolerance = tolerance_for(widest)
    obs = _observation_frame(obs_parts, taps, offsets)
    obs = build_instances(obs, tolerance)
    flows = [p.flows for p in points]
    node_base = np.r_[0, np.cumsum([len(f) for f in flows])].astype(np.int64)
    conn_of_node = _connections(obs, flows, node_base)
    node = np.where(
        obs["flow_id"].to_numpy() >= 0,
        node_base[obs["capture"].to_numpy()] + obs["flow_id"].to_numpy(),
        -1,
    )
    obs["conn"] = np.where(node >= 0, conn_of_node[np.maximum(node, 0)], -1)
    obs["cdir"] = obs["flow_dir"].to_numpy()
    point_list = make_points(points, obs_parts, offsets, basis, matches, spread)
    spans = [(p.first_ts_ns - tolerance, p.last_ts_ns + tolerance) for p in point_list]
    per_conn, mappings = translations(obs, taps, address_text)
    connections = _connection_table(obs, flows, node_base, conn_of_node, taps, offsets)
    matched = obs["instance"].to_numpy() >= 0
    stats = {
        "observations": int(len(obs)),
        "observations_matched": int(matched.sum()),
        "packets_matched": int(obs.loc[matched, "instance"].nunique()),
        "connections": int(connections["conn"].nunique()) if len(connections) else 0,
        "translated_connections": int(per_conn["conn"].nunique()) if len(per_conn) else 0,
    }
    return Correlation(
        points=point_list,
        taps=taps,
        observations=obs.drop(columns=["group"]).assign(group=obs["group"]),
        connections=connections,
        translations=per_conn,
        mappings=mappings,
        hops=hop_delays(obs),
        missing=missing_twins(obs, taps, spans),
        quotes=pd.DataFrame(
            {c: pd.Series(dtype="int64") for c in ("capture", "frame", "quoted_capture")}
            | {"quoted_frame": pd.Series(dtype="int64")}
        ),
        tolerance_ns=tolerance,
        stats=stats,
        _address_text=address_text,
    )


def _observation_frame(
    parts: Sequence[dict[str, np.ndarray]], taps: Sequence[Tap], offsets: Sequence[int]
) -> pd.DataFrame:
    frames = []
    for capture, obs in enumerate(parts):
        mine = [t for t in taps if t.point == capture]
        links = np.array([t.link for t in mine], dtype=np.int64)
        ids = np.array([t.id for t in mine], dtype=np.int64)
        order = np.argsort(links)
        tap = (
            ids[order][np.searchsorted(links[order], obs["link"])]
            if len(links)
            else np.zeros(0, dtype=np.int64)
        )
        frame = pd.DataFrame({k: v for k, v in obs.items() if k != "link"})
        frame["capture"] = np.int64(capture)
        frame["tap"] = tap
        frame["t_ref_ns"] = obs["ts_ns"] - np.int64(offsets[capture])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _connections(
    obs: pd.DataFrame, flows: Sequence[pd.DataFrame], node_base: np.ndarray
) -> np.ndarray:
    """Connection id of every flow node (-1: a flow seen at one tap, linked to nothing)."""
    n_nodes = int(node_base[-1])
    flow = obs["flow_id"].to_numpy()
    capture = obs["capture"].to_numpy()
    node = np.where(flow >= 0, node_base[capture] + flow, -1)
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
    node_base: np.ndarray,
    conn_of_node: np.ndarray,
    taps: Sequence[Tap],
    offsets: Sequence[int],
) -> pd.DataFrame:
    columns = ["conn", "capture", "flow_id", "taps", "orig", "first_t_ref_ns"]
    rows = []
    seen = obs.loc[obs["conn"] >= 0, ["capture", "flow_id", "tap"]].drop_duplicates()
    tap_names = np.array([t.name for t in taps], dtype=object)
    for capture, table in enumerate(flows):
        conn = conn_of_node[node_base[capture] : node_base[capture + 1]]
        member = np.flatnonzero(conn >= 0)
        if len(member) == 0:
            continue
        sub = table.iloc[member]
        mine = seen[seen["capture"] == capture]
        # the set of taps of a flow as a bit mask: few distinct masks, each named once
        bits = np.left_shift(np.int64(1), np.minimum(mine["tap"].to_numpy(), 62))
        masks = pd.Series(bits).groupby(mine["flow_id"].to_numpy()).sum()
        names = masks.map(
            {m: ",".join(tap_names[[b for b in range(63) if m >> b & 1]]) for m in set(masks)}
        )
        orig = [
            f"{endpoint_text(str(h), int(p))} > {endpoint_text(str(r), int(q))}"
            for h, p, r, q in zip(
                sub["orig_h"].astype(str),
                sub["orig_p"],
                sub["resp_h"].astype(str),
                sub["resp_p"],
                strict=True,
            )
        ]
        rows.append(
            pd.DataFrame(
                {
                    "conn": conn[member],
                    "capture": capture,
                    "flow_id": sub["flow_id"].to_numpy(),
                    "taps": names.reindex(sub["flow_id"].to_numpy()).fillna("").to_numpy(),
                    "orig": orig,
                    "first_t_ref_ns": sub["first_ts_ns"].to_numpy() - offsets[capture],
                }
            )
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat(rows, ignore_index=True).sort_values(["conn", "capture", "flow_id"])[columns]
