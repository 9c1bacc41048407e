"""Words for rules and reports: durations, and a packet's path across the capture points."""

from __future__ import annotations

from netdiag.correlate.model import Correlation


def duration(ns: int, signed: bool = False) -> str:
    """A delay or offset for people: ms with 3 decimals below a second, s above; ``signed``
    always shows the sign (``+0.071 ms``, ``-1.204 s``)."""
    sign = ("+" if ns >= 0 else "-") if signed else ("-" if ns < 0 else "")
    size = abs(int(ns))
    if size >= 1_000_000_000:
        return f"{sign}{size / 1e9:.3f} s"
    return f"{sign}{size / 1e6:.3f} ms"


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
            f"{corr.tap_name(int(steps['tap'].iloc[k]))} "
            f"{duration(times[k] - times[k - 1], signed=True)}"
        )
    return " -> ".join(parts)
