"""The terminal report of an analysis: colour with rich on a terminal, plain fixed width otherwise.

The plain form (no colour, no wrapping that depends on the terminal) is what tests pin and what
`-o FILE` writes.
"""

from __future__ import annotations

import textwrap
from typing import IO, TYPE_CHECKING

from netdiag.render.json import display_path

if TYPE_CHECKING:
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


def finding_lines(f: Finding, base: str | None = None) -> list[str]:
    """The plain lines of one finding (the first line is its headline)."""
    lines = [f"{f.code} {f.severity} ({f.confidence} confidence) {f.title}"]
    lines.append(f"  subject: {f.subject}")
    lines += _indent(f.message, "  ")
    if f.first_ts:
        lines.append(f"  seen: {f.first_ts} .. {f.last_ts}")
    if f.evidence:
        shown = len(f.evidence)
        lines.append(f"  evidence ({shown} of {f.evidence_total} frames):")
        for e in f.evidence:
            where = f"{display_path(e.capture, base)}#{e.frame}"
            note = f" ({e.note})" if e.note else ""
            lines.append(f"    {where} [{e.role}]{note}")
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
    lines.append("")
    for f in result.findings:
        heads.append(len(lines))
        lines += finding_lines(f, base)
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
