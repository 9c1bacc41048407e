"""Ladder (sequence) diagrams of a finding's evidence as inline SVG, for the HTML report.

One vertical lane per host, one arrow per evidence frame from top to bottom in evidence order
(the report draws one ladder per capture point, see ``document.build_document``), labelled like its
tcpdump line (ports, flags, seq/ack, ARP who-has/is-at, ICMP type) with the frame number and
clock on the left. Decisive arrows are drawn thick and red, the others thin and grey. A packet a
host sends to itself (the L4 hairpin) is a loop on its lane.

The SVG is a pure function of the ladder data (see ``document.ladder_data``): integer coordinates,
no ids, no external reference, every text escaped, so the same evidence gives the same bytes.
"""

from __future__ import annotations

import re
from typing import Any

from netdiag.render.escape import html_text

FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
FONT_SIZE = 12
CHAR_W = 7.3  # advance of one monospace character at FONT_SIZE, generously
LEFT = 170  # room for "#frame clock" on the left
TOP = 20
HEADER_H = 46
ROW_H = 54
LOOP_W = 36
MIN_SPACING = 200
DECISIVE = "#c62828"
SUPPORTING = "#78909c"
_ROOM = re.compile(r", (?:win|length) \d+")


def arrow_label(label: str) -> str:
    """The label drawn over an arrow: the tcpdump text without window and length (room)."""
    return _ROOM.sub("", label)


def _header_w(lane: dict[str, Any]) -> int:
    return max(_text_w(lane["host"]), _text_w(lane.get("detail", "")) * 10 // 12) + 24


def lane_positions(
    lanes: list[dict[str, Any]], arrows: list[dict[str, Any]], labels: list[str]
) -> list[int]:
    """x of each lane: far enough from the lanes before it for the headers and for the label of
    every arrow that ends there (lanes are placed left to right, each as close as allowed)."""
    xs: list[int] = []
    for k, lane in enumerate(lanes):
        if k == 0:
            xs.append(LEFT + max(_header_w(lane) // 2, 60))
            continue
        x = xs[k - 1] + max(MIN_SPACING, (_header_w(lanes[k - 1]) + _header_w(lane)) // 2 + 16)
        for arrow, label in zip(arrows, labels, strict=True):
            a, b = sorted((arrow["src"], arrow["dst"]))
            if b == k and a < k:
                x = max(x, xs[a] + _text_w(label) + 24)
        xs.append(x)
    return xs


def _text_w(text: str) -> int:
    return int(len(text) * CHAR_W) + 1


def render_svg(ladder: dict[str, Any], title: str = "") -> str:
    """The SVG of one ladder; empty string when there is nothing to draw."""
    lanes, arrows = ladder["lanes"], ladder["arrows"]
    if not lanes or not arrows:
        return ""
    labels = [arrow_label(a["label"]) for a in arrows]
    xs = lane_positions(lanes, arrows, labels)
    widest_self = max(
        (
            xs[a["src"]] + _text_w(lb) + LOOP_W + 16
            for lb, a in zip(labels, arrows, strict=True)
            if a["src"] == a["dst"]
        ),
        default=0,
    )
    width = max(xs[-1] + _header_w(lanes[-1]) // 2 + 8, widest_self + 8)
    height = TOP + HEADER_H + ROW_H * len(arrows) + 16
    top_rows = TOP + HEADER_H
    out = [
        f'<svg class="ladder" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html_text(title or "ladder diagram")}" '
        f'font-family="{FONT}" font-size="{FONT_SIZE}">'
    ]
    if title:
        out.append(f"<title>{html_text(title)}</title>")
    # lanes: a header box with the host (and what it is / where it was captured), a dashed line
    for x, lane in zip(xs, lanes, strict=True):
        box_w = _text_w(lane["host"]) + 20
        out.append(
            f'<rect x="{x - box_w // 2}" y="{TOP}" width="{box_w}" height="24" rx="4" '
            f'fill="#eceff1" stroke="#455a64"/>'
        )
        out.append(
            f'<text x="{x}" y="{TOP + 16}" text-anchor="middle" font-weight="bold" '
            f'fill="#263238">{html_text(lane["host"])}</text>'
        )
        sub = lane.get("detail", "")
        if sub:
            out.append(
                f'<text x="{x}" y="{TOP + 38}" text-anchor="middle" font-size="10" '
                f'fill="#546e7a">{html_text(sub)}</text>'
            )
        out.append(
            f'<line x1="{x}" y1="{TOP + 42}" x2="{x}" y2="{height - 8}" stroke="#90a4ae" '
            f'stroke-dasharray="4 4"/>'
        )
    for i, (arrow, label) in enumerate(zip(arrows, labels, strict=True)):
        y = top_rows + ROW_H * i + 30
        color = DECISIVE if arrow["decisive"] else SUPPORTING
        stroke = 2.5 if arrow["decisive"] else 1.2
        cls = "arrow decisive" if arrow["decisive"] else "arrow"
        frame = f"{arrow['capture']}#{arrow['frame']}"
        out.append(f'<g class="{cls}" data-frame="{int(arrow["frame"])}">')
        out.append(
            f'<text x="8" y="{y - 4}" font-size="11" fill="{color}"'
            f"{' font-weight=' + chr(34) + 'bold' + chr(34) if arrow['decisive'] else ''}>"
            f"{html_text(frame)}</text>"
        )
        out.append(
            f'<text x="8" y="{y + 10}" font-size="10" fill="#607d8b">'
            f"{html_text(arrow['clock'])}</text>"
        )
        below = " · ".join(s for s in (arrow["where"], arrow["role"]) if s)
        x1, x2 = xs[arrow["src"]], xs[arrow["dst"]]
        if x1 == x2:
            # a loop on the lane: out to the right, down, back with the head on the lane
            out.append(
                f'<path d="M {x1} {y - 8} H {x1 + LOOP_W} V {y + 8} H {x1 + 8}" fill="none" '
                f'stroke="{color}" stroke-width="{stroke}"/>'
            )
            out.append(
                f'<polygon points="{x1},{y + 8} {x1 + 9},{y + 4} {x1 + 9},{y + 12}" '
                f'fill="{color}"/>'
            )
            tx, anchor = x1 + LOOP_W + 8, "start"
            out.append(
                f'<text x="{tx}" y="{y - 2}" text-anchor="{anchor}" fill="#212121">'
                f"{html_text(label)}</text>"
            )
            out.append(
                f'<text x="{tx}" y="{y + 12}" text-anchor="{anchor}" font-size="10" '
                f'font-style="italic" fill="{color}">{html_text(below)}</text>'
            )
        else:
            direction = 1 if x2 > x1 else -1
            tip = x2 - direction * 2
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{tip - direction * 8}" y2="{y}" stroke="{color}" '
                f'stroke-width="{stroke}"/>'
            )
            out.append(
                f'<polygon points="{tip},{y} {tip - direction * 10},{y - 5} '
                f'{tip - direction * 10},{y + 5}" fill="{color}"/>'
            )
            mid = (x1 + x2) // 2
            out.append(
                f'<text x="{mid}" y="{y - 6}" text-anchor="middle" fill="#212121">'
                f"{html_text(label)}</text>"
            )
            out.append(
                f'<text x="{mid}" y="{y + 14}" text-anchor="middle" font-size="10" '
                f'font-style="italic" fill="{color}">{html_text(below)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
