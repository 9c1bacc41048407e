"""The HTML report (``--format html``): one self-contained page for a support ticket.

Inline CSS, inline SVG ladder diagrams, no script, no external reference of any kind (no font,
image, style sheet or link to fetch), so it opens the same offline. Every string that did not come
from this module is escaped with :func:`netdiag.render.escape.html_text`; rule texts get the two
kinds of markup the Markdown report knows ("- " list items, `code` spans), built from escaped
pieces.
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING, Any

from netdiag.render.document import build_document
from netdiag.render.escape import html_text as h
from netdiag.render.ladder import render_path_svg, render_svg
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

_CODE_SPAN = re.compile(r"`([^`\n]+)`")

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121;
  margin: 0; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; border-bottom: 1px solid #cfd8dc; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; color: #37474f; }
.meta { color: #607d8b; font-size: 13px; }
.verdict { font-size: 17px; margin: 14px 0; }
table { border-collapse: collapse; margin: 8px 0 12px; background: #fff; font-size: 14px; }
th, td { border: 1px solid #cfd8dc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
code { background: #eceff1; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
pre { background: #263238; color: #eceff1; padding: 10px 12px; overflow-x: auto; border-radius: 4px;
  line-height: 1.5; }
pre .decisive { color: #ffcdd2; font-weight: bold; }
pre .role { color: #90a4ae; }
.finding { background: #fff; border: 1px solid #cfd8dc; border-left: 6px solid #90a4ae;
  padding: 4px 20px 14px; margin: 22px 0; border-radius: 4px; }
.finding.error { border-left-color: #c62828; }
.finding.warning { border-left-color: #ef6c00; }
.finding.info { border-left-color: #1565c0; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff;
  font-size: 13px; font-weight: bold; background: #607d8b; }
.badge.error { background: #c62828; } .badge.warning { background: #ef6c00; }
.badge.info { background: #1565c0; }
.diagram { overflow-x: auto; background: #fff; border: 1px solid #eceff1; padding: 6px; }
.diagram svg { display: block; max-width: none; }
.legend { font-size: 13px; color: #546e7a; }
table.flows code, table.summary code { white-space: nowrap; }
table.points code, table.mappings code, table.hops code { white-space: nowrap; }
.scroll { overflow-x: auto; }
.legend .d { color: #c62828; font-weight: bold; }
.caption { margin: 12px 0 4px; font-weight: bold; color: #37474f; }
"""


def inline(text: str) -> str:
    """Escaped text with `code` spans as <code> elements."""
    parts = _CODE_SPAN.split(text)
    return "".join(f"<code>{h(p)}</code>" if i % 2 else h(p) for i, p in enumerate(parts))


def rule_html(text: str) -> str:
    """A rule's multi-line text: consecutive lines one paragraph (line breaks kept), blank
    lines between paragraphs, "- " lines a list."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + "<br>\n".join(paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append("<ul>\n" + "\n".join(f"<li>{i}</li>" for i in items) + "\n</ul>")
            items.clear()

    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("- "):
            if paragraph:
                flush()
            items.append(inline(line[2:]))
        else:
            if items:
                flush()
            paragraph.append(inline(line))
    flush()
    return "\n".join(out)


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table whose cells are already HTML (escaped by the caller)."""
    attr = f' class="{cls}"' if cls else ""
    cells = "".join(f"<th>{c}</th>" for c in head)
    lines = [f'<div class="scroll"><table{attr}><thead><tr>{cells}</tr></thead>']
    lines.append("<tbody>")
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _evidence_pre(item: dict[str, Any]) -> str:
    lines = []
    several = len({e["capture"] for e in item["evidence"]}) > 1
    paths = item.get("evidence_paths") or [""] * len(item["evidence"])
    current = None
    for e, decisive, path in zip(item["evidence"], item["decisive"], paths, strict=True):
        if several and e["capture"] != current:
            current = e["capture"]
            lines.append(f'<span class="role"># {h(current)}</span>')
        mark = "&gt;&gt;" if decisive else "  "
        line = f"{mark} #{e['frame']:<6} {h(e['summary'])}"
        lines.append(f'<span class="decisive">{line}</span>' if decisive else line)
        note = f": {e['note']}" if e["note"] else ""
        seen = f" · {path}" if path else ""
        lines.append(f'<span class="role">{" " * 11}^ {h(e["role"])}{h(note)}{h(seen)}</span>')
    return '<pre class="evidence">' + "\n".join(lines) + "</pre>"


def finding_html(number: int, item: dict[str, Any]) -> str:
    sev = h(item["severity"])
    title = f"{item['code']} {item['title']}"
    parts = [f'<section class="finding {sev}" id="finding-{number}">']
    parts.append(f"<h2>{number}. {h(title)}</h2>")
    seen = f" · seen {h(item['first_ts'])} .. {h(item['last_ts'])}" if item["first_ts"] else ""
    parts.append(
        f'<p class="meta"><span class="badge {sev}">{sev}</span> {h(item["confidence"])} '
        f"confidence · subject <code>{h(item['subject'])}</code>{seen}</p>"
    )
    parts.append(rule_html(item["message"]))
    ladders = [
        (lad, render_svg(lad, f"Ladder diagram of {item['code']} evidence in {lad['capture']}"))
        for lad in item.get("ladders", [])
    ]
    ladders = [(lad, svg) for lad, svg in ladders if svg]
    if ladders:
        parts.append("<h3>Sequence of the evidence</h3>")
        parts.append(
            '<p class="legend"><span class="d">thick red</span>: decisive frames (the first of '
            "each role); thin grey: frames repeating a role. One lane per host; a loop is a packet "
            "a host sent to itself. One diagram per capture point.</p>"
        )
        for ladder, svg in ladders:
            if len(item.get("ladders", [])) > 1:
                parts.append(f'<p class="caption">Seen in <code>{h(ladder["capture"])}</code></p>')
            parts.append(f'<div class="diagram">{svg}</div>')
            if ladder.get("not_drawn"):
                parts.append(f'<p class="legend">{int(ladder["not_drawn"])} frames not drawn.</p>')
    path_ladder: dict[str, Any] = item.get("path_ladder") or {}
    path_svg = (
        render_path_svg(path_ladder, f"Path of the {item['code']} evidence across capture points")
        if path_ladder
        else ""
    )
    if path_svg:
        parts.append("<h3>Path across the capture points</h3>")
        parts.append(
            '<p class="legend">One lane per tap (capture point, or one of its interfaces), in the '
            "order packets travel; each evidence packet is drawn from tap to tap with the delay "
            "between them (reference clock); a red cross: the packet never reached that tap.</p>"
        )
        parts.append(f'<div class="diagram">{path_svg}</div>')
        if path_ladder.get("not_drawn"):
            parts.append(
                f'<p class="legend">{int(path_ladder["not_drawn"])} evidence frames seen at one '
                "tap only are not drawn.</p>"
            )
    if item["evidence"]:
        captures = sorted({e["capture"] for e in item["evidence"]})
        where = f" in <code>{h(captures[0])}</code>" if len(captures) == 1 else ""
        parts.append(
            f"<h3>Evidence ({len(item['evidence'])} of {int(item['evidence_total'])} "
            f"frames{where})</h3>"
        )
        parts.append(_evidence_pre(item))
        if item.get("show_commands"):
            parts.append(
                '<p class="legend">Every field of the decisive frames (Wireshark\'s dissection):</p>'
            )
            parts.append("<pre>" + "\n".join(h(c) for c in item["show_commands"]) + "</pre>")
    if item["facts_used"]:
        parts.append("<h3>Facts used</h3>")
        parts.append(
            _table(
                ["source", "line"],
                [
                    [f"<code>{h(u['source'])}</code>", f"<code>{h(u['text'])}</code>"]
                    for u in item["facts_used"]
                ],
            )
        )
    if item["explanation"]:
        parts += ["<h3>Why</h3>", rule_html(item["explanation"])]
    if item["remediation"]:
        parts += ["<h3>What to do</h3>", rule_html(item["remediation"])]
    if item["wireshark_filter"]:
        parts += ["<h3>Wireshark filter</h3>", f"<pre>{h(item['wireshark_filter'])}</pre>"]
    if item.get("flows"):
        parts.append("<h3>Connections</h3>")
        rows = [
            [
                f"<code>{h(f['capture'])}</code>",
                h(f["proto"]),
                f"<code>{h(f['orig'])}</code>",
                f"<code>{h(f['resp'])}</code>",
                h(f["conn_state"]),
                f"<code>{h(f['history'] or '-')}</code>",
                f"{int(f['orig_pkts'])} / {int(f['resp_pkts'])}",
                f"{int(f['first_frame'])}..{int(f['last_frame'])}",
                f"<code>{h(f['community_id'])}</code>",
            ]
            for f in item["flows"]
        ]
        head = ["capture", "proto", "from", "to", "state", "history", "packets", "frames"]
        parts.append(_table([*head, "community id"], rows, "flows"))
    if item["references"]:
        parts.append(
            '<p class="meta">References: ' + "; ".join(h(r) for r in item["references"]) + "</p>"
        )
    parts.append(f'<p class="meta">Fingerprint <code>{h(item["fingerprint"])}</code></p>')
    parts.append("</section>")
    return "\n".join(parts)


def points_html(data: dict[str, Any]) -> str:
    """The capture points of a multi-capture analysis: points and their clocks, translations,
    per-hop delays and the packets that never reached the next tap."""
    parts = ['<section class="points">', "<h2>Capture points</h2>"]
    parts.append(
        f'<p class="legend">Clock offsets are against <code>{h(reference_name(data))}</code>; a '
        "point with several interfaces has one tap per interface.</p>"
    )
    rows = [
        [
            f"<code>{h(p['name'])}</code>",
            f"<code>{h(p['capture'])}</code>",
            h(p["named_by"]),
            "<br>".join(f"<code>{h(t)}</code>" for t in p["taps"]) or "-",
            h(offset_text(p)),
        ]
        for p in data["points"]
    ]
    parts.append(_table(["point", "capture", "named by", "taps", "clock"], rows, "points"))
    if data["mappings"]:
        parts.append("<h3>Translations</h3>")
        rows = [
            [
                h(m["at"]),
                h(m["kind"]),
                f"<code>{h(m['before'])}</code>",
                f"<code>{h(m['after'])}</code>",
                str(int(m["connections"])),
            ]
            for m in data["mappings"]
        ]
        parts.append(_table(["at", "kind", "before", "after", "connections"], rows, "mappings"))
    if data["hops"]:
        parts.append("<h3>Hops</h3>")
        rows = [
            [
                f"<code>{h(hop['from_tap'])}</code>",
                f"<code>{h(hop['to_tap'])}</code>",
                str(int(hop["packets"])),
                h(duration(hop["delay_median_ns"])),
                h(duration(hop["delay_p95_ns"])),
            ]
            for hop in data["hops"]
        ]
        head = ["from", "to", "packets", "median delay", "p95 delay"]
        parts.append(_table(head, rows, "hops"))
    if data["missing"]:
        parts.append("<h3>Never reached the next tap</h3><ul>")
        parts += [
            f"<li>{h(missing_text(g))} (e.g. <code>{h(examples_text(g))}</code>)</li>"
            for g in data["missing"]
        ]
        parts.append("</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def render_document(doc: dict[str, Any]) -> str:
    findings = doc["findings"]
    counts = doc["summary"]["by_severity"]
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    n = len(findings)
    n_caps, n_facts = len(doc["captures"]), len(doc["facts_sources"])
    body = ["<main>", "<h1>netdiag report</h1>"]
    body.append(
        f'<p class="meta">Generated {h(doc["generated"])} by netdiag {h(doc["netdiag_version"])}</p>'
    )
    body.append(
        f'<p class="verdict"><strong>{n} finding{"s" if n != 1 else ""}</strong>'
        f"{' (' + h(detail) + ')' if detail else ''} from {n_caps} capture"
        f"{'s' if n_caps != 1 else ''} and {n_facts} facts file{'s' if n_facts != 1 else ''}.</p>"
    )
    if findings:
        rows = [
            [
                str(i),
                f'<a href="#finding-{i}">{h(item["code"])}</a> {h(item["title"])}',
                f'<span class="badge {h(item["severity"])}">{h(item["severity"])}</span>',
                h(item["confidence"]),
                f"<code>{h(item['subject'])}</code>",
            ]
            for i, item in enumerate(findings, 1)
        ]
        body.append(_table(["#", "finding", "severity", "confidence", "subject"], rows, "summary"))
    for i, item in enumerate(findings, 1):
        body.append(finding_html(i, item))
    if doc.get("correlation"):
        body.append(points_html(doc["correlation"]))
    body.append("<h2>Captures analysed</h2>")
    if doc["capture_details"]:
        rows = []
        for c in doc["capture_details"]:
            ifaces = "<br>".join(
                h(f"{i['id']}: {i['linktype_name']}" + (f" {i['name']}" if i["name"] else ""))
                for i in c["interfaces"]
            )
            fmt = c["format"] + (f" ({c['compression']})" if c["compression"] else "")
            rows.append(
                [
                    f"<code>{h(c['path'])}</code>",
                    h(fmt),
                    ifaces or "-",
                    f"{int(c['packets'])} ({int(c['packets_kept'])} kept)",
                    str(int(c["flows"])),
                    h(c["first_ts"] or "-"),
                    h(c["last_ts"] or "-"),
                    "<br>".join(h(w) for w in c["warnings"]) or "-",
                ]
            )
        head = ["capture", "format", "interfaces", "packets", "flows", "first", "last", "warnings"]
        body.append(_table(head, rows, "captures"))
    else:
        body.append("<p>No capture (configuration audit only).</p>")
    if doc["facts_sources"] or doc["facts_problems"]:
        body.append("<h2>Facts</h2><ul>")
        body += [f"<li><code>{h(s)}</code></li>" for s in doc["facts_sources"]]
        body += [f"<li>problem: {h(p)}</li>" for p in doc["facts_problems"]]
        body.append("</ul>")
    rules = doc["rules"]
    body.append("<h2>Rules</h2>")
    body.append(
        f"<p>{len(rules['ran'])} ran ({h(', '.join(rules['ran']) or 'none')}), "
        f"{len(rules['skipped'])} skipped, {len(rules['errored'])} errored.</p>"
    )
    if rules["skipped"] or rules["errored"]:
        rows = [[h(s["code"]), "skipped", h(s["reason"])] for s in rules["skipped"]]
        rows += [[h(e["code"]), "errored", h(e["reason"])] for e in rules["errored"]]
        body.append(_table(["rule", "outcome", "why"], rows, "rules"))
    body.append("</main>")
    page_head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # the page loads nothing: say so to the browser too
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>netdiag report: {n} finding{'s' if n != 1 else ''}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
    )
    return page_head + "\n".join(body) + "\n</body>\n</html>\n"


def render(
    analysis: Analysis, redactor: Redactor | None = None, generated: str | None = None
) -> str:
    """The HTML report of ``analysis`` (addresses pseudonymised with ``redactor``)."""
    return render_document(build_document(analysis, redactor, generated))


def write(analysis: Analysis, out: IO[str], color: bool, redactor: Redactor | None = None) -> None:
    """Registry entry (``--format html``)."""
    out.write(render(analysis, redactor))
