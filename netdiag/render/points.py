"""The capture points part of every report: the correlation's summary, evidence packets' paths.

When an analysis has several capture points (see :mod:`netdiag.correlate.model`), every format
shows the points with their clock offsets, the inferred translations, the per-hop delays and the
packets that never reached the next tap; each evidence frame seen at several taps gets its path
("seen at client -> director:eth1 +0.120 ms ..."), and the HTML report a path ladder. This module
turns the correlation into the plain data and short texts the renderers share; it never changes
what the correlation found.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from netdiag.correlate.narrate import duration
from netdiag.render.json import display_path

if TYPE_CHECKING:
    from netdiag.correlate.model import Correlation
    from netdiag.engine.analysis import Analysis

#: how an evidence packet's path is introduced in text and Markdown
SEEN_AT = "seen at"


def correlation_of(analysis: Analysis) -> Correlation | None:
    """The analysis' correlation, None when it has one capture point with one link (or when the
    engine computes none)."""
    return getattr(analysis.context, "correlation", None)


def correlation_report(corr: Correlation, base: str | None = None) -> dict[str, Any]:
    """:meth:`Correlation.report` with capture paths shown like every path of a report."""
    data = corr.report()
    for point in data["points"]:
        point["capture"] = display_path(point["capture"], base)
    for group in data["missing"]:
        for example in group["examples"]:
            example["capture"] = display_path(example["capture"], base)
    return data


# --- numbers as text ----------------------------------------------------------------------------
def offset_text(point: dict[str, Any]) -> str:
    """A point's clock against the reference: "reference", or the offset with what it rests on."""
    basis = str(point["offset_basis"])
    if basis.startswith("reference"):
        return "reference clock"
    if basis.startswith("none"):
        return "offset unknown (no packet seen at both points)"
    matches = int(point["offset_matches"])
    return (
        f"{duration(point['clock_offset_ns'], signed=True)} ({basis}, {matches} packet"
        f"{'s' if matches != 1 else ''}, spread {duration(point['offset_spread_ns'])})"
    )


def reference_name(data: dict[str, Any]) -> str:
    """The name of the reference point (the one whose clock the others are given against)."""
    for point in data["points"]:
        if str(point["offset_basis"]).startswith("reference"):
            return str(point["name"])
    return str(data["points"][0]["name"]) if data["points"] else ""


def mapping_text(mapping: dict[str, Any]) -> str:
    """One translation: "DNAT at director (eth1 -> eth0): to V:80 -> to R:80 (3 connections)"."""
    at = str(mapping["at"])
    where = at if at.startswith(("at ", "between ")) else f"at {at}"
    n = int(mapping["connections"])
    return (
        f"{mapping['kind']} {where}: {mapping['before']} -> {mapping['after']} "
        f"({n} connection{'s' if n != 1 else ''})"
    )


def hop_text(hop: dict[str, Any]) -> str:
    return (
        f"{hop['packets']} packets, median {duration(hop['delay_median_ns'])}, "
        f"p95 {duration(hop['delay_p95_ns'])}"
    )


def missing_text(group: dict[str, Any]) -> str:
    """One group of missing packets: what, where it was last seen and where it never arrived."""
    n, c = int(group["packets"]), int(group["connections"])
    what = "reply" if group["direction"] == "resp" else "originator"
    if group["kind"] == "bypassed":
        where = f"seen at {group['after']} without passing {group['not_at']} (bypassed)"
    else:
        where = f"seen at {group['after']}, never at {group['not_at']}"
    return (
        f"{n} {what} packet{'s' if n != 1 else ''} of {c} connection{'s' if c != 1 else ''} {where}"
    )


def examples_text(group: dict[str, Any]) -> str:
    """The example frames of a missing group: "director.pcapng#12,14"."""
    by_capture: dict[str, list[str]] = {}
    for example in group["examples"]:
        name = os.path.basename(example["capture"])
        by_capture.setdefault(name, []).append(str(int(example["frame"])))
    return "; ".join(f"{name}#{','.join(frames)}" for name, frames in by_capture.items())


# --- the path of one evidence packet ------------------------------------------------------------
def point_index(corr: Correlation, capture: str) -> int:
    """The point index of the capture ``capture`` (a path as the user gave it), -1 if none."""
    for point in corr.points:
        if point.path == capture:
            return point.index
    real = os.path.realpath(capture)
    for point in corr.points:
        if os.path.realpath(point.path) == real:
            return point.index
    return -1


def for_evidence(corr: Correlation, evidence: list[Any]) -> Correlation:
    """``corr`` cut down to the observations and missing rows that the paths of ``evidence``
    (Evidence entries of any findings) need: a report asks for a few dozen paths, and each
    :meth:`Correlation.path` would otherwise scan every observation of the analysis."""
    obs = corr.observations
    if obs.empty:
        return corr
    wanted = np.array(
        [_key(point_index(corr, e.capture), int(e.frame)) for e in evidence], dtype=np.int64
    )
    keys = _key(obs["capture"].to_numpy(dtype=np.int64), obs["frame"].to_numpy(dtype=np.int64))
    hit = np.isin(keys, wanted)
    instance = obs["instance"].to_numpy(dtype=np.int64)
    instances = np.unique(instance[hit])
    keep = hit | np.isin(instance, instances[instances >= 0])
    observations = obs[keep]
    missing = corr.missing
    if not missing.empty:
        missing_keys = _key(
            missing["capture"].to_numpy(dtype=np.int64), missing["frame"].to_numpy(dtype=np.int64)
        )
        missing = missing[np.isin(missing_keys, keys[keep])]
    return replace(corr, observations=observations, missing=missing)


def _key(capture: Any, frame: Any) -> Any:
    """One integer per (capture, frame): frames stay below 2**40 in any capture."""
    return (np.asarray(capture, dtype=np.int64) << 40) | np.asarray(frame, dtype=np.int64)


def evidence_path(corr: Correlation, capture: str, frame: int) -> dict[str, Any] | None:
    """Where the packet ``capture``#``frame`` was seen: its steps (tap, time on the reference
    clock, delay since the step before) and the taps it never reached (from ``missing``).

    None when the packet was seen at one tap only and is not missing anywhere (nothing to tell).
    """
    index = point_index(corr, capture)
    if index < 0:
        return None
    rows = corr.path(index, int(frame))
    if rows.empty:
        return None
    taps = rows["tap"].to_numpy(dtype=np.int64)
    t_ref = rows["t_ref_ns"].to_numpy(dtype=np.int64)
    steps = [
        {
            "tap": corr.tap_name(int(tap)),
            "t_ref_ns": int(t),
            "delay_ns": None if i == 0 else int(t - t_ref[i - 1]),
        }
        for i, (tap, t) in enumerate(zip(taps, t_ref, strict=True))
    ]
    missing = _missing_of(corr, rows)
    if len(steps) < 2 and not missing:
        return None
    direction = int(rows["flow_dir"].iloc[0]) if "flow_dir" in rows.columns else 0
    return {"steps": steps, "missing": missing, "resp": direction == 1}


def _missing_of(corr: Correlation, rows: Any) -> list[dict[str, str]]:
    """The missing-packet rows about any observation of this packet, as tap names."""
    miss = corr.missing
    if miss.empty:
        return []
    keys = _key(rows["capture"].to_numpy(dtype=np.int64), rows["frame"].to_numpy(dtype=np.int64))
    about = np.isin(
        _key(miss["capture"].to_numpy(dtype=np.int64), miss["frame"].to_numpy(dtype=np.int64)),
        keys,
    )
    hit = miss[about]
    found = sorted(
        {
            (int(after), int(tap), str(kind))
            for after, tap, kind in zip(hit["tap"], hit["missing_tap"], hit["kind"], strict=True)
        }
    )
    return [
        {"after": corr.tap_name(after), "tap": corr.tap_name(tap), "kind": kind}
        for after, tap, kind in found
    ]


def path_text(path: dict[str, Any]) -> str:
    """The path in one line: "seen at client -> director:eth1 +0.120 ms; never at director:eth0"
    (delays on the reference clock; taps skipped on the way are marked "(bypassed)")."""
    steps = path["steps"]
    if len(steps) == 1:
        text = f"{SEEN_AT} {steps[0]['tap']} only"
    else:
        parts = [steps[0]["tap"]]
        parts += [f"{s['tap']} {duration(s['delay_ns'], signed=True)}" for s in steps[1:]]
        text = f"{SEEN_AT} " + " -> ".join(parts)
    for kind in ("lost", "bypassed"):
        taps = [m["tap"] for m in path["missing"] if m["kind"] == kind]
        if taps:
            text += "; never at " + ", ".join(taps) + (" (bypassed)" if kind == "bypassed" else "")
    return text


def path_key(path: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two evidence frames one packet: the same steps and the same missing taps."""
    return (
        tuple((s["tap"], s["t_ref_ns"]) for s in path["steps"]),
        tuple((m["after"], m["tap"], m["kind"]) for m in path["missing"]),
    )


def evidence_path_texts(evidence: list[Any], paths: list[dict[str, Any] | None]) -> list[str]:
    """The "seen at ..." text of each evidence frame ("" when it has no path); a frame that is
    the same packet as an earlier evidence frame (seen at another tap) only points to it."""
    first: dict[tuple[Any, ...], str] = {}
    texts = []
    for e, path in zip(evidence, paths, strict=True):
        if not path:
            texts.append("")
            continue
        key = path_key(path)
        if key in first:
            texts.append(f"same packet as {first[key]}")
        else:
            first[key] = f"{os.path.basename(e.capture)}#{int(e.frame)}"
            texts.append(path_text(path))
    return texts


# --- the path ladder (HTML) ---------------------------------------------------------------------
def path_ladder(
    corr: Correlation,
    evidence: list[Any],
    paths: list[dict[str, Any] | None],
    decisive: list[bool],
    base: str | None = None,
) -> dict[str, Any] | None:
    """The data of a path ladder for a finding's evidence and their paths (see
    :func:`evidence_path`): one lane per tap the evidence packets crossed (in travel order), one
    row per packet with its steps along the lanes and, when it never reached the next tap, that
    tap. Evidence frames that are one packet seen at several taps share one row. None when no
    evidence packet has a path.

    Rows: frames (evidence frames of that packet, "file#n,m" per capture), frame (the first),
    clock, label (its tcpdump line without the clock), role (the roles, joined), decisive (any),
    steps [{lane, delay_ns}] and missing [{from, lane, kind}] (from: the lane of the last tap
    that saw it).
    """
    if not any(paths):
        return None
    order = _travel_order([p for p in paths if p])
    lane_of = {tap: i for i, tap in enumerate(order)}
    point_of_tap = {t.name: corr.points[t.point] for t in corr.taps}
    lanes = []
    for tap in order:
        point = point_of_tap.get(tap)
        detail = os.path.basename(display_path(point.path, base)) if point is not None else ""
        lanes.append({"tap": tap, "detail": detail})
    rows: list[dict[str, Any]] = []
    row_of: dict[tuple[Any, ...], dict[str, Any]] = {}
    frames_of: dict[int, dict[str, list[str]]] = {}
    drawn = 0
    for e, path, dec in zip(evidence, paths, decisive, strict=True):
        if not path:
            continue
        drawn += 1
        key = path_key(path)
        row = row_of.get(key)
        if row is None:
            body = e.summary[16:] if e.summary[:15].count(":") == 2 else e.summary
            last = lane_of[path["steps"][-1]["tap"]]
            row = {
                "frame": int(e.frame),
                "clock": e.summary[:15],
                "label": body,
                "roles": [],
                "decisive": False,
                "steps": [
                    {"lane": lane_of[s["tap"]], "delay_ns": s["delay_ns"]} for s in path["steps"]
                ],
                "missing": [
                    {
                        "from": lane_of.get(m["after"], last),
                        "lane": lane_of[m["tap"]],
                        "kind": m["kind"],
                    }
                    for m in path["missing"]
                ],
            }
            row_of[key] = row
            frames_of[id(row)] = {}
            rows.append(row)
        row["decisive"] = row["decisive"] or bool(dec)
        if e.role not in row["roles"]:
            row["roles"].append(e.role)
        frames_of[id(row)].setdefault(os.path.basename(e.capture), []).append(str(int(e.frame)))
    for row in rows:
        per_capture = frames_of[id(row)]
        row["frames"] = " ".join(f"{name}#{','.join(nums)}" for name, nums in per_capture.items())
        row["role"] = ", ".join(row.pop("roles"))
    return {"lanes": lanes, "rows": rows, "not_drawn": len(evidence) - drawn}


def _travel_order(paths: list[dict[str, Any]]) -> list[str]:
    """Taps ordered the way the originator's packets travel: each path votes for its taps' order
    (a reply's path counts reversed); taps are then taken one by one, the one with the fewest
    votes to come after a tap not yet taken first (ties by first appearance): a topological
    order when the votes agree, a close one when they do not."""
    first_seen: dict[str, int] = {}
    votes: dict[tuple[str, str], int] = {}
    for path in paths:
        taps = [s["tap"] for s in path["steps"]]
        chains = [taps]
        for m in path["missing"]:  # the tap it never reached comes right after the last one
            cut = taps.index(m["after"]) + 1 if m["after"] in taps else len(taps)
            chains.append([*taps[:cut], m["tap"], *taps[cut:]])
        for chain in chains:
            for tap in chain:
                first_seen.setdefault(tap, len(first_seen))
            ordered = chain[::-1] if path["resp"] else chain
            for a, b in zip(ordered, ordered[1:], strict=False):
                if a != b:
                    votes[(a, b)] = votes.get((a, b), 0) + 1
    remaining = sorted(first_seen, key=first_seen.__getitem__)
    order: list[str] = []
    while remaining:
        incoming = dict.fromkeys(remaining, 0)
        for (a, b), n in votes.items():
            if a in incoming and b in incoming:
                incoming[b] += n
        best = min(remaining, key=lambda t: (incoming[t], first_seen[t]))
        order.append(best)
        remaining.remove(best)
    return order
