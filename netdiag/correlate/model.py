"""What correlating the capture points of one incident yields: points, taps, matches, translations.

Vocabulary. A *point* is one capture of the incident (a file), named by ``--point NAME=FILE``,
by the facts' capture description, or by its file name. A *tap* is one link a point saw packets
on: a one-interface capture is one tap; a pcapng with eth1 and eth0, or a ``-i any`` capture, has
a tap per interface (so a director's capture shows the packet before and after its own rewrite).
An *instance* is one packet as it travelled: its observations at every tap that saw it, ordered
by time on the reference clock (the first point's). A *connection* is the set of flows (per
capture flow tables) that instances link: one TCP connection seen as C:p > V:x at the client and
as C:p > R:y behind the director is one connection of two flows.

Times: every point has a clock offset (its clock minus the reference clock), estimated from the
matched packets; ``t_ref_ns`` = ``ts_ns`` - offset. All tables are pandas DataFrames with the
columns documented on each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd


@dataclass(frozen=True)
class Point:
    """One capture of the incident."""

    index: int  # position of the capture in the analysis
    name: str
    path: str
    named_by: str  # "option" (--point), "facts" (capture description), "file"
    clock_offset_ns: int  # this point's clock minus the reference clock; 0 for the reference
    offset_basis: str  # "reference", "two-way", "one-way" (includes transit delay), "none"
    offset_matches: int  # matched packets the estimate rests on
    offset_spread_ns: int  # median absolute deviation of those packets around the estimate
    first_ts_ns: int  # first and last packet on the reference clock (-1 for an empty capture)
    last_ts_ns: int


@dataclass(frozen=True)
class Tap:
    """One link of one point."""

    id: int
    point: int  # Point.index
    link: int  # link id (see netdiag.engine.context.link_ids)
    iface: str  # interface name ("" when the capture does not tell)
    name: str  # "point" for a one-link point, else "point:iface"


@dataclass
class Correlation:
    """The result of correlating the points of one analysis (see the module docstring).

    observations: one row per packet observation with a signature: capture, frame, tap, ts_ns,
        t_ref_ns, sig, flow_id, flow_dir, src, dst (address codes), sport, dport, proto, ttl,
        tflags, instance (-1 when no other tap saw it), conn (-1 when not part of a connection
        seen at two taps), step (0-based position of the observation in its instance's path).
    connections: one row per (connection, capture, flow): conn, capture, flow_id, taps (names
        joined by ","), orig (the flow's "src:port > dst:port" text), first_t_ref_ns.
    translations: one row per connection and rewrite: conn, from_tap, to_tap (Tap ids), kind
        ("DNAT", "SNAT", "DNAT+SNAT"), proto (IP protocol), before, after ("src:port > dst:port"
        in the originator's direction), rule_before, rule_after (what the rewrite changed, as in
        ``mappings``), capture_before, frame_before, capture_after, frame_after (the first
        packet seen on both sides), b_src, b_sport, b_dst, b_dport, a_src, a_sport, a_dst,
        a_dport (the tuples as address codes and ports).
    mappings: translations aggregated: at (where: "at director (eth1 -> eth0)" or "between client
        and director"), from_tap, to_tap, kind, before, after (the rewritten endpoints only, e.g.
        "198.51.100.131:80" -> "192.168.1.190:80"), connections, conns (a few conn ids).
    hops: per (from_tap, to_tap) in travel order: packets, delay_median_ns, delay_p95_ns,
        delay_min_ns, delay_max_ns.
    missing: packets of a connection missing at a tap of their path: capture, frame, tap (for
        "lost": the last tap that saw it; for "bypassed": the tap that saw it after the gap),
        conn, direction ("orig" or "resp"), missing_tap (the tap that never saw it), kind
        ("lost": never seen after ``tap``; "bypassed": seen further on but not at
        ``missing_tap``). A path is what most packets of the flow direction passed; the replies
        of a translated connection must also pass the tap after the rewrite.
    quotes: ICMP errors linked to the packet they quote seen at another tap: capture, frame,
        quoted_capture, quoted_frame.
    """

    points: list[Point]
    taps: list[Tap]
    observations: pd.DataFrame
    connections: pd.DataFrame
    translations: pd.DataFrame
    mappings: pd.DataFrame
    hops: pd.DataFrame
    missing: pd.DataFrame
    quotes: pd.DataFrame
    tolerance_ns: int  # the time window within which two observations are one packet
    stats: dict[str, int] = field(default_factory=dict)

    # --- lookups -------------------------------------------------------------------------------
    def tap_name(self, tap: int) -> str:
        return self.taps[int(tap)].name

    def path(self, capture: int, frame: int) -> pd.DataFrame:
        """The observations of the packet ``capture``/``frame`` at every tap, in travel order
        (just that row when no other tap saw it; empty when the frame has no signature)."""
        obs = self.observations
        hit = obs[(obs["capture"] == capture) & (obs["frame"] == frame)]
        if hit.empty:
            return hit
        instance = int(hit["instance"].iloc[0])
        if instance < 0:
            return hit
        return obs[obs["instance"] == instance].sort_values(["step", "capture", "frame"])

    # --- for reports ---------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The JSON-ready summary every renderer shows: points, taps, translations, hops, missing.

        Keys are sorted by the JSON writer; lists are in a stable order (points and taps by id,
        mappings by where and endpoints, hops in travel order, missing per hop).
        """
        missing_by_hop: list[dict[str, Any]] = []
        if not self.missing.empty:
            grouped = self.missing.groupby(["tap", "missing_tap", "direction", "kind"], sort=True)
            for key, rows in grouped:
                tap, missing_tap, direction, kind = cast(tuple[Any, ...], key)
                rows = rows.sort_values(["capture", "frame"])
                missing_by_hop.append(
                    {
                        "after": self.tap_name(tap),
                        "not_at": self.tap_name(missing_tap),
                        "direction": str(direction),
                        "kind": str(kind),
                        "packets": int(len(rows)),
                        "connections": int(rows["conn"].nunique()),
                        "examples": [
                            {"capture": self.points[int(c)].path, "frame": int(f)}
                            for c, f in zip(rows["capture"][:5], rows["frame"][:5], strict=True)
                        ],
                    }
                )
        return {
            "points": [
                {
                    "name": p.name,
                    "capture": p.path,
                    "named_by": p.named_by,
                    "clock_offset_ns": p.clock_offset_ns,
                    "offset_basis": p.offset_basis,
                    "offset_matches": p.offset_matches,
                    "offset_spread_ns": p.offset_spread_ns,
                    "taps": [t.name for t in self.taps if t.point == p.index],
                }
                for p in self.points
            ],
            "mappings": [
                {
                    "at": str(m.at),
                    "kind": str(m.kind),
                    "before": str(m.before),
                    "after": str(m.after),
                    "from_tap": self.tap_name(m.from_tap),
                    "to_tap": self.tap_name(m.to_tap),
                    "connections": int(m.connections),
                }
                for m in cast(list[Any], list(self.mappings.itertuples()))
            ],
            "hops": [
                {
                    "from_tap": self.tap_name(h.from_tap),
                    "to_tap": self.tap_name(h.to_tap),
                    "packets": int(h.packets),
                    "delay_median_ns": int(h.delay_median_ns),
                    "delay_p95_ns": int(h.delay_p95_ns),
                }
                for h in cast(list[Any], list(self.hops.itertuples()))
            ],
            "missing": missing_by_hop,
            "matched": dict(sorted(self.stats.items())),
            "tolerance_ns": int(self.tolerance_ns),
        }
