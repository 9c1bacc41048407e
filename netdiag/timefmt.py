"""Timestamps as netdiag prints them: UTC, ISO 8601, nanoseconds, fixed width."""

from __future__ import annotations

import datetime as _dt


def iso_ns(ts_ns: int | None) -> str:
    """2026-11-23T14:25:10.552799000Z (always UTC, always 9 fraction digits)."""
    if ts_ns is None:
        return "-"
    seconds, frac = divmod(int(ts_ns), 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"


def clock_ns(ts_ns: int) -> str:
    """14:25:10.552799 as tcpdump prints it (UTC, microseconds)."""
    seconds, frac = divmod(int(ts_ns), 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%H:%M:%S")
    return f"{stamp}.{frac // 1000:06d}"


def duration_s(ns: int | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1e9:.6f} s"
