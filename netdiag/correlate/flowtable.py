"""The flow tables of several capture points as one table: each flow with the points that saw it
and the tuples its connection had elsewhere (before or after a rewrite)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from netdiag.correlate.model import Correlation


def flows_with_points(corr: Correlation, flows: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Every capture's flow table, concatenated, with ``point`` (its capture point), ``conn``
    (connection id across the points, -1 when seen at one tap only), ``seen_at`` (the taps that
    saw the flow) and ``translated`` (the connection's other tuples, "tap tuple", "; "-joined;
    "" when none differs)."""
    links = corr.connections
    # per connection: its distinct tuples with the taps that saw each
    ordered = links.sort_values(["conn", "first_t_ref_ns", "capture", "flow_id"])
    per_tuple = (
        ordered.groupby(["conn", "orig"], sort=False)
        .agg(taps=("taps", lambda t: ",".join(dict.fromkeys(",".join(t).split(",")))))
        .reset_index()
    )
    per_tuple = per_tuple.assign(text=per_tuple["taps"] + " " + per_tuple["orig"].astype(str))
    parts = []
    for capture, table in enumerate(flows):
        mine = links[links["capture"] == capture]
        conn = np.full(len(table), -1, dtype=np.int64)
        seen = np.full(len(table), corr.points[capture].name, dtype=object)
        translated = np.full(len(table), "", dtype=object)
        if len(mine):
            # a flow may belong to several connections (pings of two hosts sharing an ICMP flow
            # behind a SNAT): the first is shown
            first = mine.drop_duplicates("flow_id")
            at = first["flow_id"].to_numpy(dtype=np.int64)
            conn[at] = first["conn"].to_numpy()
            seen[at] = first["taps"].to_numpy()
            others = first[["flow_id", "conn", "orig"]].merge(
                per_tuple[["conn", "orig", "text"]], on="conn", suffixes=("", "_other")
            )
            others = others[others["orig"] != others["orig_other"]]
            if len(others):
                joined = others.groupby("flow_id")["text"].agg("; ".join)
                translated[joined.index.to_numpy(dtype=np.int64)] = joined.to_numpy()
        front = pd.DataFrame(
            {
                "point": corr.points[capture].name,
                "conn": conn,
                "seen_at": seen,
                "translated": translated,
            },
            index=table.index,
        )
        parts.append(pd.concat([front, table], axis=1))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
