"""Words for rules and reports: a packet's path across the capture points, and where it is missing."""

from __future__ import annotations

import pandas as pd

from netdiag.correlate.model import Correlation


def delay_text(ns: int) -> str:
    """A transit time in the unit that reads best (``+0.071 ms``, ``+1.204 s``)."""
    sign = "+" if ns >= 0 else "-"
    ns = abs(int(ns))
    if ns >= 1_000_000_000:
        return f"{sign}{ns / 1e9:.3f} s"
    return f"{sign}{ns / 1e6:.3f} ms"


def path_text(corr: Correlation, capture: int, frame: int) -> str:
    """``client -> director:eth1 +0.031 ms -> director:eth0 +0.071 ms``; "" when no other tap saw
    the packet."""
    steps = corr.path(capture, frame)
    if len(steps) < 2:
        return ""
    times = steps["t_ref_ns"].to_numpy()
    parts = [corr.tap_name(int(steps["tap"].iloc[0]))]
    for k in range(1, len(steps)):
        parts.append(
            f"{corr.tap_name(int(steps['tap'].iloc[k]))} {delay_text(times[k] - times[k - 1])}"
        )
    return " -> ".join(parts)


def missing_rows(corr: Correlation, capture: int, frames: object) -> pd.DataFrame:
    """The ``Correlation.missing`` rows of the given frames of one capture."""
    missing = corr.missing
    return missing[(missing["capture"] == capture) & missing["frame"].isin(list(frames))]  # type: ignore[call-overload]


def missing_text(corr: Correlation, capture: int, frame: int) -> str:
    """``never seen at director:eth0, director:eth1`` for a packet that skipped or did not reach
    taps of its connection's path; "" when it is missing nowhere."""
    rows = missing_rows(corr, capture, [frame])
    if rows.empty:
        return ""
    taps = ", ".join(corr.tap_name(int(t)) for t in sorted(set(rows["missing_tap"])))
    return f"never seen at {taps}"
