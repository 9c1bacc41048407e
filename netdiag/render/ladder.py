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


def _svg_start(cls: str, width: int, height: int, title: str, label: str) -> list[str]:
    """The opening tag of a ladder's SVG (and its title, when given)."""
    out = [
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html_text(title or label)}" '
        f'font-family="{FONT}" font-size="{FONT_SIZE}">'
    ]
    if title:
        out.append(f"<title>{html_text(title)}</title>")
    return out


def _lane(x: int, name: str, detail: str, height: int, fill: str) -> list[str]:
    """A lane: a header box with its name (and a detail line under it), a dashed line down."""
    box_w = _text_w(name) + 20
    out = [
        f'<rect x="{x - box_w // 2}" y="{TOP}" width="{box_w}" height="24" rx="4" '
        f'fill="{fill}" stroke="#455a64"/>',
        f'<text x="{x}" y="{TOP + 16}" text-anchor="middle" font-weight="bold" '
        f'fill="#263238">{html_text(name)}</text>',
    ]
    if detail:
        out.append(
            f'<text x="{x}" y="{TOP + 38}" text-anchor="middle" font-size="10" '
            f'fill="#546e7a">{html_text(detail)}</text>'
        )
    out.append(
        f'<line x1="{x}" y1="{TOP + 42}" x2="{x}" y2="{height - 8}" stroke="#90a4ae" '
        f'stroke-dasharray="4 4"/>'
    )
    return out


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
    out = _svg_start("ladder", width, height, title, "ladder diagram")
    # lanes: a header box with the host (and what it is / where it was captured), a dashed line
    for x, lane in zip(xs, lanes, strict=True):
        out += _lane(x, lane["host"], lane.get("detail", ""), height, "#eceff1")
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


# --- path ladder: one lane per tap, a packet drawn along its path --------------------------------
PATH_ROW_H = 64
PATH_SPACING = 170
CROSS = 6
LOST = "#c62828"


def _delay_label(ns: int | None) -> str:
    if ns is None:
        return ""
    sign = "+" if ns >= 0 else "-"
    size = abs(int(ns))
    return f"{sign}{size / 1e9:.3f} s" if size >= 1_000_000_000 else f"{sign}{size / 1e6:.3f} ms"


def render_path_svg(ladder: dict[str, Any], title: str = "") -> str:
    """The SVG of a path ladder (see ``points.path_ladder``); empty when there is nothing to draw.

    Lanes are the taps in travel order; each row is one evidence packet: a dot on every tap that
    saw it, an arrow from each tap to the next one on its path with the delay under it, and, for
    a tap it never reached, a dashed arrow ending in a red cross before that tap's lane.
    """
    lanes, rows = ladder["lanes"], ladder["rows"]
    if not lanes or not rows:
        return ""
    # the left margin holds each row's frames and its clock and roles
    left = max(
        LEFT,
        *(
            max(_text_w(r["frames"]) * 11 // 12, _text_w(f"{r['clock']} · {r['role']}") * 10 // 12)
            + 24
            for r in rows
        ),
    )
    xs: list[int] = []
    for k, lane in enumerate(lanes):
        w = max(_text_w(lane["tap"]), _text_w(lane.get("detail", "")) * 10 // 12) + 24
        if k == 0:
            xs.append(left + max(w // 2, 60))
        else:
            previous = max(_text_w(lanes[k - 1]["tap"]), 0) + 24
            xs.append(xs[-1] + max(PATH_SPACING, (previous + w) // 2 + 16))
    texts = [arrow_label(r["label"]) for r in rows]
    text_end = max(
        (
            min(xs[s["lane"]] for s in r["steps"]) + _text_w(t) + 8
            for r, t in zip(rows, texts, strict=True)
        ),
        default=0,
    )
    last_w = max(_text_w(lanes[-1]["tap"]), _text_w(lanes[-1].get("detail", "")) * 10 // 12) + 24
    width = max(xs[-1] + last_w // 2 + 8, text_end)
    height = TOP + HEADER_H + PATH_ROW_H * len(rows) + 16
    out = _svg_start("ladder path", width, height, title, "path ladder")
    for x, lane in zip(xs, lanes, strict=True):  # one lane per tap
        out += _lane(x, lane["tap"], lane.get("detail", ""), height, "#e3f2fd")
    for i, (row, text) in enumerate(zip(rows, texts, strict=True)):
        top = TOP + HEADER_H + PATH_ROW_H * i
        y = top + 32
        color = DECISIVE if row["decisive"] else SUPPORTING
        stroke = 2.5 if row["decisive"] else 1.2
        cls = "path decisive" if row["decisive"] else "path"
        out.append(f'<g class="{cls}" data-frame="{int(row["frame"])}">')
        out.append(
            f'<text x="8" y="{y - 4}" font-size="11" fill="{color}"'
            f"{' font-weight=' + chr(34) + 'bold' + chr(34) if row['decisive'] else ''}>"
            f"{html_text(row['frames'])}</text>"
        )
        out.append(
            f'<text x="8" y="{y + 10}" font-size="10" fill="#607d8b">'
            f"{html_text(row['clock'])} · {html_text(row['role'])}</text>"
        )
        start = min(xs[s["lane"]] for s in row["steps"])
        out.append(f'<text x="{start}" y="{top + 14}" fill="#212121">{html_text(text)}</text>')
        steps = row["steps"]
        for a, b in zip(steps, steps[1:], strict=False):
            x1, x2 = xs[a["lane"]], xs[b["lane"]]
            if x1 == x2:
                # seen twice at one tap (out and back in, as a hairpin): a loop on the lane
                out.append(
                    f'<path d="M {x1} {y - 6} H {x1 + LOOP_W} V {y + 6} H {x1 + 8}" fill="none" '
                    f'stroke="{color}" stroke-width="{stroke}"/>'
                )
                out.append(
                    f'<polygon points="{x1 + 1},{y + 6} {x1 + 10},{y + 2} {x1 + 10},{y + 10}" '
                    f'fill="{color}"/>'
                )
                out.append(
                    f'<text x="{x1 + LOOP_W + 4}" y="{y + 4}" font-size="10" fill="{color}">'
                    f"{html_text(_delay_label(b['delay_ns']))}</text>"
                )
                continue
            out += _path_arrow(x1, x2, y, color, stroke, dashed=False)
            out.append(
                f'<text x="{(x1 + x2) // 2}" y="{y + 16}" text-anchor="middle" font-size="10" '
                f'fill="{color}">{html_text(_delay_label(b["delay_ns"]))}</text>'
            )
        # from each tap, the cross goes before the nearest lane the packet never reached
        nearest: dict[int, dict[str, Any]] = {}
        for m in row["missing"]:
            x1, x2 = xs[m.get("from", steps[-1]["lane"])], xs[m["lane"]]
            if x1 != x2 and (x1 not in nearest or abs(x2 - x1) < abs(nearest[x1]["x2"] - x1)):
                nearest[x1] = {"x2": x2, "kind": m["kind"]}
        for x1, m in sorted(nearest.items()):
            x2 = m["x2"]
            cross = x1 + (x2 - x1) * 3 // 4
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{cross}" y2="{y}" stroke="{LOST}" '
                f'stroke-width="{stroke}" stroke-dasharray="6 4"/>'
            )
            out.append(
                f'<path d="M {cross - CROSS} {y - CROSS} L {cross + CROSS} {y + CROSS} '
                f'M {cross - CROSS} {y + CROSS} L {cross + CROSS} {y - CROSS}" stroke="{LOST}" '
                f'stroke-width="3" class="never"/>'
            )
            out.append(
                f'<text x="{cross}" y="{y + 18}" text-anchor="middle" font-size="10" '
                f'font-style="italic" fill="{LOST}">{html_text(m["kind"])}</text>'
            )
        for s in steps:
            out.append(f'<circle cx="{xs[s["lane"]]}" cy="{y}" r="4" fill="{color}"/>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _path_arrow(x1: int, x2: int, y: int, color: str, stroke: float, dashed: bool) -> list[str]:
    direction = 1 if x2 > x1 else -1
    tip = x2 - direction * 5  # stop before the dot of the next tap
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return [
        f'<line x1="{x1}" y1="{y}" x2="{tip - direction * 8}" y2="{y}" stroke="{color}" '
        f'stroke-width="{stroke}"{dash}/>',
        f'<polygon points="{tip},{y} {tip - direction * 10},{y - 5} '
        f'{tip - direction * 10},{y + 5}" fill="{color}"/>',
    ]
