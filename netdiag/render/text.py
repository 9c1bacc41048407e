"""The terminal report of an analysis: colour with rich on a terminal, plain fixed width otherwise.

The plain form (no colour, no wrapping that depends on the terminal) is what tests pin and what
`-o FILE` writes.
"""

from __future__ import annotations

import textwrap
from typing import IO, TYPE_CHECKING, Any

from netdiag.render.json import display_path
from netdiag.render.points import (
    correlation_of,
    correlation_report,
    evidence_path,
    evidence_path_texts,
    examples_text,
    for_evidence,
    hop_text,
    mapping_text,
    missing_text,
    offset_text,
    reference_name,
)

if TYPE_CHECKING:
    from netdiag.correlate.model import Correlation
    from netdiag.engine.analysis import Analysis
    from netdiag.engine.finding import Finding

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}
WIDTH = 100


def _indent(text: str, prefix: str) -> list[str]:
    out = []
    for para in text.splitlines() or [""]:
        if not para.strip():
            out.append("")
            continue
        lead = len(para) - len(para.lstrip())
        wrapped = textwrap.wrap(
            para.strip(),
            width=WIDTH - len(prefix) - lead,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
        out.extend(prefix + " " * lead + w for w in wrapped)
    return out


def finding_lines(
    f: Finding, base: str | None = None, correlation: Correlation | None = None
) -> list[str]:
    """The plain lines of one finding (the first line is its headline); with ``correlation``,
    each evidence frame seen at several taps says where ("seen at client -> ...")."""
    lines = [f"{f.code} {f.severity} ({f.confidence} confidence) {f.title}"]
    lines.append(f"  subject: {f.subject}")
    lines += _indent(f.message, "  ")
    if f.first_ts:
        lines.append(f"  seen: {f.first_ts} .. {f.last_ts}")
    if f.evidence:
        shown = len(f.evidence)
        lines.append(f"  evidence ({shown} of {f.evidence_total} frames):")
        paths = [
            evidence_path(correlation, e.capture, e.frame) if correlation else None
            for e in f.evidence
        ]
        for e, path in zip(f.evidence, evidence_path_texts(f.evidence, paths), strict=True):
            where = f"{display_path(e.capture, base)}#{e.frame}"
            note = f" ({e.note})" if e.note else ""
            seen = f" · {path}" if path else ""
            lines.append(f"    {where} [{e.role}]{note}{seen}")
            lines.append(f"      {e.summary}")
    if f.facts_used:
        lines.append("  facts:")
        for u in f.facts_used:
            lines.append(f"    {u.source}: {u.text}")
    if f.explanation:
        lines.append("  why:")
        lines += _indent(f.explanation, "    ")
    if f.remediation:
        lines.append("  fix:")
        lines += _indent(f.remediation, "    ")
    if f.wireshark_filter:
        lines.append(f"  wireshark: {f.wireshark_filter}")
    if f.references:
        lines.append("  references: " + "; ".join(f.references))
    lines.append(f"  fingerprint: {f.fingerprint}")
    return lines


def point_lines(data: dict[str, Any]) -> list[str]:
    """The capture points section: points and clocks, translations, hops, missing packets."""
    lines = ["", f"capture points (clocks against {reference_name(data)}):"]
    width = max((len(p["name"]) for p in data["points"]), default=0)
    for p in data["points"]:
        taps = f"; taps {', '.join(p['taps'])}" if len(p["taps"]) > 1 else ""
        lines.append(
            f"  {p['name']:<{width}}  {p['capture']} (named by {p['named_by']}): "
            f"{offset_text(p)}{taps}"
        )
    if data["mappings"]:
        lines.append("translations:")
        lines += [f"  {mapping_text(m)}" for m in data["mappings"]]
    if data["hops"]:
        lines.append("hops:")
        for hop in data["hops"]:
            lines.append(f"  {hop['from_tap']} -> {hop['to_tap']}: {hop_text(hop)}")
    if data["missing"]:
        lines.append("never reached the next tap:")
        for group in data["missing"]:
            lines.append(f"  {missing_text(group)} (e.g. {examples_text(group)})")
    return lines


def render(analysis: Analysis, base: str | None = None) -> str:
    """The whole report as plain text."""
    return "\n".join(_lines(analysis, base)[0]) + "\n"


def _lines(analysis: Analysis, base: str | None) -> tuple[list[str], list[int]]:
    """Plain lines, and the indices of the finding headlines (which get colour on a terminal)."""
    ctx, result = analysis.context, analysis.result
    lines: list[str] = []
    heads: list[int] = []
    for cap in ctx.captures:
        kept = f", {len(cap.packets):,} kept" if len(cap.packets) != cap.info.packets else ""
        lines.append(
            f"capture {display_path(cap.path, base)}: {cap.info.packets:,} packets{kept}, "
            f"{len(cap.flows):,} flows"
        )
        for warning in cap.info.warnings:
            lines.append(f"  warning: {warning}")
    if ctx.facts_sources:
        lines.append("facts: " + ", ".join(display_path(p, base) for p in ctx.facts_sources))
    for problem in analysis.facts_problems:
        lines.append(f"  facts problem: {problem}")
    correlation = correlation_of(analysis)
    if correlation is not None:
        lines += point_lines(correlation_report(correlation, base))
        evidence = [e for f in result.findings for e in f.evidence]
        correlation = for_evidence(correlation, evidence)
    lines.append("")
    for f in result.findings:
        heads.append(len(lines))
        lines += finding_lines(f, base, correlation)
        lines.append("")
    counts = {
        s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")
    }
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    n = len(result.findings)
    lines.append(f"{n} finding{'s' if n != 1 else ''}" + (f" ({detail})" if detail else ""))
    lines.append(
        f"rules: {len(result.ran)} ran, {len(result.skipped)} skipped, {len(result.errored)} errored"
    )
    for s in result.skipped:
        lines.append(f"  {s.code} skipped: {s.reason}")
    for e in result.errored:
        lines.append(f"  {e.code} errored: {e.reason}")
    return lines, heads


def write(analysis: Analysis, out: IO[str], color: bool) -> None:
    """Write the report; with ``color``, headlines are coloured by severity through rich."""
    if not color:
        out.write(render(analysis))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, force_terminal=True, highlight=False, soft_wrap=True)
    lines, heads = _lines(analysis, None)
    findings = iter(analysis.result.findings)
    head_set = set(heads)
    for i, line in enumerate(lines):
        if i in head_set:
            f = next(findings)
            console.print(Text(line, style=_STYLE.get(f.severity, "bold")))
        else:
            console.print(Text(line))
