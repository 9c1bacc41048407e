"""The Markdown report (``--format md``): verdict, proof and fix on one page for a support ticket.

GitHub/GitLab-flavoured Markdown (pipe tables, fenced code), which Jira's Markdown import and most
ticket systems read too. Every string that comes from a capture or a facts file is escaped for
the place it lands in (see :mod:`netdiag.render.escape`); rule texts get the same treatment, with
two kinds of markup recognised in them: lines starting with "- " (list items) and `code` spans.
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING, Any

from netdiag.render.document import build_document
from netdiag.render.escape import md_cell, md_code_block, md_code_span, md_text
from netdiag.render.points import (
    duration,
    examples_text,
    missing_text,
    offset_text,
    reference_name,
)

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis
    from netdiag.redact import Redactor

#: the mark in front of a decisive evidence frame in the tcpdump block (and its legend)
DECISIVE_MARK = ">>"
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def inline(text: str) -> str:
    """Escaped running text, with `code` spans kept as (inert) code spans."""
    parts = _CODE_SPAN.split(text)
    return "".join(md_code_span(part) if i % 2 else md_text(part) for i, part in enumerate(parts))


def rule_text(text: str) -> list[str]:
    """A rule's multi-line text (message, explanation, remediation) as Markdown lines.

    Consecutive lines form one paragraph (their line breaks are soft), blank lines separate
    paragraphs, and lines starting with "- " are list items, set off by blank lines as
    CommonMark wants.
    """
    lines: list[str] = []
    previous = ""  # "text", "item" or "" (start, or after a blank line)
    for raw in text.strip().splitlines():
        stripped = raw.strip()
        if not stripped:
            previous = ""
            continue
        kind = "item" if stripped.startswith("- ") else "text"
        if lines and kind != previous:
            lines.append("")
        lines.append("- " + inline(stripped[2:]) if kind == "item" else inline(stripped))
        previous = kind
    return lines


def evidence_lines(item: dict[str, Any]) -> list[str]:
    """The evidence as tcpdump lines, decisive frames marked, each with its role and note."""
    lines = []
    captures = {e["capture"] for e in item["evidence"]}
    paths = item.get("evidence_paths") or [""] * len(item["evidence"])
    current = None
    for e, decisive, path in zip(item["evidence"], item["decisive"], paths, strict=True):
        if len(captures) > 1 and e["capture"] != current:
            current = e["capture"]
            lines.append(f"# {current}")
        mark = DECISIVE_MARK if decisive else " " * len(DECISIVE_MARK)
        lines.append(f"{mark} #{e['frame']:<6} {e['summary']}")
        note = f": {e['note']}" if e["note"] else ""
        seen = f" · {path}" if path else ""
        lines.append(f"{' ' * (len(DECISIVE_MARK) + 9)}^ {e['role']}{note}{seen}")
    return lines


def finding_section(number: int, item: dict[str, Any]) -> list[str]:
    out = [f"## {number}. {item['code']} {md_text(item['title'])}", ""]
    seen = ""
    if item["first_ts"]:
        seen = f" · seen {item['first_ts']} .. {item['last_ts']}"
    out.append(
        f"**{item['severity']}**, {item['confidence']} confidence · subject "
        f"{md_code_span(item['subject'])}{seen}"
    )
    out.append("")
    out += rule_text(item["message"])
    out.append("")
    if item["evidence"]:
        shown, total = len(item["evidence"]), item["evidence_total"]
        if len({e["capture"] for e in item["evidence"]}) == 1:
            where = f" in {md_code_span(item['evidence'][0]['capture'])}"
        else:
            where = ""
        out.append(f"### Evidence ({shown} of {total} frames{where})")
        out.append("")
        out.append(
            f"`{DECISIVE_MARK}` marks a decisive frame (the first of each role); the others "
            "repeat a role already shown. Frame numbers are Wireshark's."
        )
        out.append("")
        out.append(md_code_block(evidence_lines(item), "text"))
        out.append("")
        if item.get("show_commands"):
            out.append("Every field of the decisive frames (Wireshark's dissection):")
            out.append("")
            out.append(md_code_block(item["show_commands"], "sh"))
            out.append("")
    if item["facts_used"]:
        out += ["### Facts used", "", "| source | line |", "|---|---|"]
        for u in item["facts_used"]:
            out.append(
                f"| {md_code_span(u['source'], in_table=True)} | "
                f"{md_code_span(u['text'], in_table=True)} |"
            )
        out.append("")
    if item["explanation"]:
        out += ["### Why", "", *rule_text(item["explanation"]), ""]
    if item["remediation"]:
        out += ["### What to do", "", *rule_text(item["remediation"]), ""]
    if item["wireshark_filter"]:
        out += ["### Wireshark filter", "", md_code_block([item["wireshark_filter"]], "text"), ""]
    if item.get("flows"):
        out += [
            "### Connections",
            "",
            "| capture | proto | from | to | state | history | packets | frames |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in item["flows"]:
            cells = [
                md_code_span(f["capture"], in_table=True),
                md_cell(f["proto"]),
                md_code_span(f["orig"], in_table=True),
                md_code_span(f["resp"], in_table=True),
                md_cell(f["conn_state"]),
                md_code_span(f["history"] or "-", in_table=True),
                f"{f['orig_pkts']} / {f['resp_pkts']}",
                f"{f['first_frame']}..{f['last_frame']}",
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if item["references"]:
        out.append("References: " + "; ".join(md_text(r) for r in item["references"]))
        out.append("")
    out.append(f"Fingerprint: {md_code_span(item['fingerprint'])}")
    out.append("")
    return out


def points_section(data: dict[str, Any]) -> list[str]:
    """The capture points of a multi-capture analysis: points and their clocks, translations,
    per-hop delays and the packets that never reached the next tap."""
    out = ["## Capture points", ""]
    out.append(
        f"Clock offsets are against {md_code_span(reference_name(data))}; a point with several "
        "interfaces has one tap per interface."
    )
    out.append("")
    out += ["| point | capture | named by | taps | clock |", "|---|---|---|---|---|"]
    for p in data["points"]:
        cells = [
            md_code_span(p["name"], in_table=True),
            md_code_span(p["capture"], in_table=True),
            md_cell(p["named_by"]),
            ", ".join(md_code_span(t, in_table=True) for t in p["taps"]) or "-",
            md_cell(offset_text(p)),
        ]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if data["mappings"]:
        out += ["### Translations", ""]
        out += ["| at | kind | before | after | connections |", "|---|---|---|---|---|"]
        for m in data["mappings"]:
            cells = [
                md_cell(m["at"]),
                md_cell(m["kind"]),
                md_code_span(m["before"], in_table=True),
                md_code_span(m["after"], in_table=True),
                str(int(m["connections"])),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if data["hops"]:
        out += ["### Hops", ""]
        out += ["| from | to | packets | median delay | p95 delay |", "|---|---|---|---|---|"]
        for hop in data["hops"]:
            cells = [
                md_code_span(hop["from_tap"], in_table=True),
                md_code_span(hop["to_tap"], in_table=True),
                str(int(hop["packets"])),
                duration(hop["delay_median_ns"]),
                duration(hop["delay_p95_ns"]),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if data["missing"]:
        out += ["### Never reached the next tap", ""]
        for group in data["missing"]:
            out.append(
                f"- {md_text(missing_text(group))} (e.g. {md_code_span(examples_text(group))})"
            )
        out.append("")
    return out


def render_document(doc: dict[str, Any]) -> str:
    """The Markdown text of a report document (see :mod:`netdiag.render.document`)."""
    findings = doc["findings"]
    counts = doc["summary"]["by_severity"]
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    n = len(findings)
    out = ["# netdiag report", ""]
    out.append(f"Generated {doc['generated']} by netdiag {doc['netdiag_version']}.")
    out.append("")
    n_caps, n_facts = len(doc["captures"]), len(doc["facts_sources"])
    verdict = f"**{n} finding{'s' if n != 1 else ''}**" + (f" ({detail})" if detail else "")
    out.append(
        f"{verdict} from {n_caps} capture{'s' if n_caps != 1 else ''} and "
        f"{n_facts} facts file{'s' if n_facts != 1 else ''}."
    )
    out.append("")
    if findings:
        out += ["| # | finding | severity | confidence | subject |", "|---|---|---|---|---|"]
        for i, item in enumerate(findings, 1):
            out.append(
                f"| {i} | {item['code']} {md_cell(item['title'])} | {item['severity']} | "
                f"{item['confidence']} | {md_code_span(item['subject'], in_table=True)} |"
            )
        out.append("")
    for i, item in enumerate(findings, 1):
        out += finding_section(i, item)
    if doc.get("correlation"):
        out += points_section(doc["correlation"])
    out += ["## Captures analysed", ""]
    if doc["capture_details"]:
        out += [
            "| capture | format | link types | packets | kept | flows | first | last |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in doc["capture_details"]:
            links = ", ".join(sorted({i["linktype_name"] for i in c["interfaces"]})) or "-"
            fmt = c["format"] + (f" ({c['compression']})" if c["compression"] else "")
            out.append(
                f"| {md_code_span(c['path'], in_table=True)} | {md_cell(fmt)} | {md_cell(links)} | "
                f"{c['packets']} | {c['packets_kept']} | {c['flows']} | "
                f"{c['first_ts'] or '-'} | {c['last_ts'] or '-'} |"
            )
        out.append("")
        for c in doc["capture_details"]:
            for w in c["warnings"]:
                out.append(f"- {md_code_span(c['path'])}: {md_text(w)}")
        if any(c["warnings"] for c in doc["capture_details"]):
            out.append("")
    else:
        out += ["No capture (configuration audit only).", ""]
    if doc["facts_sources"] or doc["facts_problems"]:
        out += ["## Facts", ""]
        for src in doc["facts_sources"]:
            out.append(f"- {md_code_span(src)}")
        for problem in doc["facts_problems"]:
            out.append(f"- problem: {md_text(problem)}")
        out.append("")
    rules = doc["rules"]
    out += ["## Rules", ""]
    out.append(
        f"{len(rules['ran'])} ran ({', '.join(rules['ran']) or 'none'}), "
        f"{len(rules['skipped'])} skipped, {len(rules['errored'])} errored."
    )
    out.append("")
    if rules["skipped"] or rules["errored"]:
        out += ["| rule | outcome | why |", "|---|---|---|"]
        for s in rules["skipped"]:
            out.append(f"| {s['code']} | skipped | {md_cell(s['reason'])} |")
        for e in rules["errored"]:
            out.append(f"| {e['code']} | errored | {md_cell(e['reason'])} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render(
    analysis: Analysis, redactor: Redactor | None = None, generated: str | None = None
) -> str:
    """The Markdown report of ``analysis`` (addresses pseudonymised with ``redactor``)."""
    return render_document(build_document(analysis, redactor, generated))


def write(analysis: Analysis, out: IO[str], color: bool, redactor: Redactor | None = None) -> None:
    """Registry entry (``--format md``); ``color`` does not apply to Markdown."""
    out.write(render(analysis, redactor))
