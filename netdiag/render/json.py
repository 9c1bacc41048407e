"""The JSON report of an analysis: a versioned schema (docs/findings-schema.json, docs/findings.md).

Keys are sorted, times are ISO 8601 UTC, paths are relative to the working directory when they
lie under it, so that a report is reproducible and diffable.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from netdiag import __version__
from netdiag.timefmt import iso_ns

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis

#: bump the major number when a field changes meaning or disappears, the minor when one is added
#: (1.1: ``correlation``, the capture points of a multi-capture analysis)
SCHEMA_VERSION = "1.1"


def display_path(path: str, base: str | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when under it, else as given."""
    base = os.path.abspath(base or os.getcwd())
    full = os.path.abspath(path)
    if full == base or full.startswith(base.rstrip(os.sep) + os.sep):
        return os.path.relpath(full, base).replace(os.sep, "/")
    return path.replace(os.sep, "/")


def report(analysis: Analysis, base: str | None = None, correlation: bool = True) -> dict[str, Any]:
    """The report as plain data (what `--format json` prints); ``correlation=False`` leaves the
    capture points out (and does not compute them when no rule did)."""
    ctx, result = analysis.context, analysis.result
    captures = []
    for cap in ctx.captures:
        info = cap.info
        captures.append(
            {
                "path": display_path(cap.path, base),
                "format": info.format,
                "packets": int(info.packets),
                "packets_kept": int(len(cap.packets)),
                "flows": int(len(cap.flows)),
                "first_ts": iso_ns(info.first_ts_ns) if info.first_ts_ns is not None else None,
                "last_ts": iso_ns(info.last_ts_ns) if info.last_ts_ns is not None else None,
                "warnings": list(info.warnings),
            }
        )
    findings = []
    for f in result.findings:
        item = f.to_dict()
        item["evidence"] = [
            {**e, "capture": display_path(e["capture"], base)} for e in item["evidence"]
        ]
        item["facts_used"] = [
            {**u, "source": _relative_ref(u["source"], base)} for u in item["facts_used"]
        ]
        findings.append(item)
    by_severity = {s: 0 for s in ("error", "warning", "info")}
    for f in result.findings:
        by_severity[f.severity] += 1
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "netdiag_version": __version__,
        "captures": captures,
        "facts_sources": [display_path(p, base) for p in ctx.facts_sources],
        "facts_problems": list(analysis.facts_problems),
        "rules": {
            "ran": list(result.ran),
            "skipped": [{"code": s.code, "reason": s.reason} for s in result.skipped],
            "errored": [{"code": e.code, "reason": e.reason} for e in result.errored],
        },
        "summary": {"findings": len(result.findings), "by_severity": by_severity},
        "findings": findings,
    }
    from netdiag.render.points import correlation_of, correlation_report

    points = correlation_of(analysis) if correlation else None
    if points is not None:  # several capture points (1.1); absent for one capture of one link
        data["correlation"] = correlation_report(points, base)
    return data


def _relative_ref(ref: str, base: str | None) -> str:
    """'path:line' with the path made relative like every other path of the report."""
    path, sep, line = ref.rpartition(":")
    if sep and line.isdigit():
        return f"{display_path(path, base)}:{line}"
    return ref


def render(analysis: Analysis, base: str | None = None) -> str:
    return json.dumps(report(analysis, base), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
