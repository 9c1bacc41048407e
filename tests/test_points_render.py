"""Capture points in every report format: the correlation section, evidence paths, path ladder.

Most tests render a hand-made :class:`Correlation` over the two-point NAT sample (client and
director captures): its tables are written here with the documented columns, so the renderers
are checked against known values whatever the correlation engine finds. The end-to-end tests at
the bottom run the real engine on the same sample.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from report_kit import validate_report_json

from netdiag.correlate.model import Correlation, Point, Tap
from netdiag.engine.analysis import Analysis, load_context
from netdiag.engine.context import AnalysisContext
from netdiag.engine.finding import Finding, fingerprint
from netdiag.engine.runner import RunResult
from netdiag.redact import Redactor
from netdiag.render import RENDERERS, html, ladder, markdown, points, text
from netdiag.render import json as json_render
from netdiag.render.document import build_document, write_redacted

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "nat-gateway" / "faulty-rs-gateway"
CLIENT = str(SAMPLE / "client-eth0.pcap")
DIRECTOR = str(SAMPLE / "director.pcapng")
HOSTILE_NAME = "dir<script>alert(1)</script>|x|`y`"

#: evidence of the hand-made finding: (capture index, frame, role); instances below
EVIDENCE = [
    (0, 33, "syn-to-vip"),
    (1, 56, "syn-to-vip"),
    (1, 73, "syn-forwarded-to-rip"),
    (0, 34, "syn-ack-from-rip"),
    (0, 36, "syn-to-vip"),
    (1, 77, "syn-to-vip"),
    (0, 1, "unrelated"),
]
#: instance -> [(capture, frame, tap)] in travel order
INSTANCES = {0: [(0, 33, 0), (1, 56, 1), (1, 73, 2)], 1: [(0, 36, 0), (1, 76, 1), (1, 75, 2)]}
#: packets seen at one tap only: (capture, frame, tap, flow_dir)
ALONE = [(0, 34, 0, 1), (1, 77, 1, 0)]
DIRECTOR_OFFSET_NS = 1_234_567


def _ts(ctx: AnalysisContext, capture: int, frame: int) -> int:
    packets = ctx.captures[capture].packets
    return int(packets.loc[packets["frame"] == frame, "ts_ns"].iloc[0])


def hand_made(ctx: AnalysisContext, director_name: str = "director") -> Correlation:
    """A correlation of the two sample captures: two instances client -> eth1 -> eth0, a reply
    seen only at the client (bypassed the director) and a SYN lost after the director's eth1."""
    points_ = [
        Point(0, "client", CLIENT, "file", 0, "reference", 0, 0, 0, 1),
        Point(1, director_name, DIRECTOR, "option", DIRECTOR_OFFSET_NS, "two-way", 12, 8_000, 0, 1),
    ]
    taps = [
        Tap(0, 0, 0, "eth0", "client"),
        Tap(1, 1, 1, "eth1", f"{director_name}:eth1"),
        Tap(2, 1, 2, "eth0", f"{director_name}:eth0"),
    ]
    rows: list[dict[str, Any]] = []
    for instance, steps in INSTANCES.items():
        for step, (capture, frame, tap) in enumerate(steps):
            ts = _ts(ctx, capture, frame)
            offset = DIRECTOR_OFFSET_NS if capture == 1 else 0
            rows.append(
                {"capture": capture, "frame": frame, "tap": tap, "ts_ns": ts + offset,
                 "t_ref_ns": ts, "flow_dir": 0, "instance": instance, "conn": 0, "step": step}
            )  # fmt: skip
    for capture, frame, tap, flow_dir in ALONE:
        ts = _ts(ctx, capture, frame)
        rows.append(
            {"capture": capture, "frame": frame, "tap": tap, "ts_ns": ts, "t_ref_ns": ts,
             "flow_dir": flow_dir, "instance": -1, "conn": 0, "step": 0}
        )  # fmt: skip
    observations = pd.DataFrame(rows)
    for column in ("sig", "flow_id", "src", "dst", "sport", "dport", "proto", "ttl", "tflags"):
        observations[column] = 0
    mappings = pd.DataFrame(
        [
            {"at": f"{director_name} (eth1 -> eth0)", "from_tap": 1, "to_tap": 2, "kind": "DNAT",
             "before": "198.51.100.131:80", "after": "192.168.1.190:80", "connections": 3,
             "conns": "0,1,2"}
        ]
    )  # fmt: skip
    hops = pd.DataFrame(
        [
            {"from_tap": 0, "to_tap": 1, "packets": 40, "delay_median_ns": 34_000,
             "delay_p95_ns": 90_000, "delay_min_ns": 20_000, "delay_max_ns": 120_000},
            {"from_tap": 1, "to_tap": 2, "packets": 12, "delay_median_ns": 71_000,
             "delay_p95_ns": 1_500_000_000, "delay_min_ns": 50_000, "delay_max_ns": 2_000_000_000},
        ]
    )  # fmt: skip
    missing = pd.DataFrame(
        [
            {"capture": 0, "frame": 34, "tap": 0, "conn": 0, "direction": "resp",
             "missing_tap": 2, "kind": "bypassed"},
            {"capture": 1, "frame": 77, "tap": 1, "conn": 0, "direction": "orig",
             "missing_tap": 2, "kind": "lost"},
        ]
    )  # fmt: skip
    return Correlation(
        points=points_,
        taps=taps,
        observations=observations,
        connections=pd.DataFrame(columns=["conn", "capture", "flow_id", "taps", "orig"]),
        translations=pd.DataFrame(columns=["conn", "from_tap", "to_tap", "kind"]),
        mappings=mappings,
        hops=hops,
        missing=missing,
        quotes=pd.DataFrame(columns=["capture", "frame", "quoted_capture", "quoted_frame"]),
        tolerance_ns=50_000_000,
        stats={"instances": 2, "connections": 3},
    )


def _analysis(director_name: str = "director") -> tuple[Analysis, Correlation]:
    ctx, problems = load_context([CLIENT, DIRECTOR])
    evidence = []
    for capture, frame, role in EVIDENCE:
        packets = ctx.captures[capture].packets
        evidence += ctx.evidence(capture, packets[packets["frame"] == frame], role, "")
    subject = "192.168.1.190 replies for 198.51.100.131:80"
    finding = Finding(
        code="NAT001",
        name="reply-bypasses-nat",
        title="NAT real server replies bypass the director",
        severity="error",
        confidence="high",
        message="Replies do not go back through the director.",
        subject=subject,
        evidence=evidence,
        evidence_total=len(evidence),
        fingerprint=fingerprint("NAT001", subject, [CLIENT, DIRECTOR]),
    )
    analysis = Analysis(ctx, RunResult(findings=[finding], ran=["NAT001"]), problems)
    return analysis, hand_made(ctx, director_name)


@pytest.fixture
def with_correlation(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make ``analysis.context.correlation`` the hand-made one (whatever the engine computes)."""

    def attach(director_name: str = "director") -> tuple[Analysis, Correlation]:
        analysis, corr = _analysis(director_name)
        target = analysis.context
        monkeypatch.setattr(
            AnalysisContext,
            "correlation",
            property(lambda self: corr if self is target else None),
            raising=False,
        )
        return analysis, corr

    return attach


def _md_html(text_: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text_)


# --- the shared pieces ---------------------------------------------------------------------------
def test_durations_and_offsets() -> None:
    assert points.duration(34_000) == "0.034 ms"
    assert points.duration(-1_500_000_000, signed=True) == "-1.500 s"
    assert points.duration(0, signed=True) == "+0.000 ms"
    point = {"offset_basis": "one-way", "clock_offset_ns": -2_000_000_000, "offset_matches": 1,
             "offset_spread_ns": 0}  # fmt: skip
    assert points.offset_text(point) == "-2.000 s (one-way, 1 packet, spread 0.000 ms)"
    assert points.offset_text({**point, "offset_basis": "reference"}) == "reference clock"
    assert "unknown" in points.offset_text({**point, "offset_basis": "none"})


def test_evidence_paths(with_correlation: Any) -> None:
    analysis, corr = with_correlation()
    path = points.evidence_path(corr, CLIENT, 33)
    assert path is not None
    assert [s["tap"] for s in path["steps"]] == ["client", "director:eth1", "director:eth0"]
    ctx = analysis.context
    # delays on the reference clock: the director's offset is taken out
    assert path["steps"][1]["delay_ns"] == _ts(ctx, 1, 56) - _ts(ctx, 0, 33)
    assert path["steps"][2]["delay_ns"] == _ts(ctx, 1, 73) - _ts(ctx, 1, 56)
    assert points.path_text(path) == (
        "seen at client -> director:eth1 +0.034 ms -> director:eth0 +0.071 ms"
    )
    # any observation of the instance gives the same path
    assert points.evidence_path(corr, DIRECTOR, 73) == path
    alone = points.evidence_path(corr, CLIENT, 34)
    assert alone is not None
    assert points.path_text(alone) == "seen at client only; never at director:eth0 (bypassed)"
    lost = points.evidence_path(corr, DIRECTOR, 77)
    assert lost is not None and points.path_text(lost).endswith("never at director:eth0")
    # the correlation cut down to the evidence gives the same paths
    evidence = analysis.result.findings[0].evidence
    cut = points.for_evidence(corr, evidence)
    assert len(points.for_evidence(corr, evidence[:1]).observations) == 3  # the first SYN's
    for e in evidence:
        assert points.evidence_path(cut, e.capture, e.frame) == points.evidence_path(
            corr, e.capture, e.frame
        )
    # seen once and missing nowhere, or no signature at all: nothing to say
    assert points.evidence_path(corr, CLIENT, 1) is None
    assert points.evidence_path(corr, "/elsewhere/other.pcap", 33) is None


def test_travel_order_follows_the_originator() -> None:
    def path(taps: list[str], resp: bool, missing: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        return {
            "steps": [{"tap": t} for t in taps],
            "missing": [{"tap": m, "after": taps[-1], "kind": "lost"} for m in missing],
            "resp": resp,
        }

    # a reply seen first, in its own direction: lanes still go the originator's way
    order = points._travel_order([path(["rs", "dir:eth0", "dir:eth1"], True), path(["c"], False)])
    assert order == ["dir:eth1", "dir:eth0", "rs", "c"]
    order = points._travel_order(
        [path(["dir:eth1", "dir:eth0"], False), path(["c", "dir:eth1"], False, ["dir:eth0"])]
    )
    assert order == ["c", "dir:eth1", "dir:eth0"]


# --- each format ----------------------------------------------------------------------------------
def test_text_report(with_correlation: Any) -> None:
    analysis, corr = with_correlation()
    out = text.render(analysis)
    assert "capture points (clocks against client):" in out
    assert "samples/nat-gateway/faulty-rs-gateway/director.pcapng (named by option): " in out
    assert (
        "+1.235 ms (two-way, 12 packets, spread 0.008 ms); taps director:eth1, director:eth0" in out
    )
    assert (
        "  DNAT at director (eth1 -> eth0): 198.51.100.131:80 -> 192.168.1.190:80 (3 connections)"
        in out
    )
    assert "  client -> director:eth1: 40 packets, median 0.034 ms, p95 0.090 ms" in out
    assert "  director:eth1 -> director:eth0: 12 packets, median 0.071 ms, p95 1.500 s" in out
    assert (
        "  1 reply packet of 1 connection seen at client without passing director:eth0 "
        "(bypassed) (e.g. client-eth0.pcap#34)" in out
    )
    lines = out.splitlines()
    line_33 = next(x for x in lines if "client-eth0.pcap#33 " in x)
    assert line_33.endswith(
        points.path_text(points.evidence_path(corr, CLIENT, 33))  # type: ignore[arg-type]
    )
    assert " · seen at client -> director:eth1 +" in line_33
    line_56 = next(x for x in lines if "director.pcapng#56 " in x)
    assert line_56.endswith(" · same packet as client-eth0.pcap#33")
    line_1 = next(x for x in lines if "client-eth0.pcap#1 " in x)
    assert "seen at" not in line_1
    # the colour form shows the same section
    buffer = io.StringIO()
    text.write(analysis, buffer, True)
    assert "capture points (clocks against client):" in buffer.getvalue()


def test_json_report_and_schema(with_correlation: Any) -> None:
    analysis, corr = with_correlation()
    data = json.loads(json_render.render(analysis))
    assert data["schema_version"] == "1.1"
    validate_report_json(data)
    got = data["correlation"]
    assert got == json.loads(json.dumps(points.correlation_report(corr)))
    assert [p["name"] for p in got["points"]] == ["client", "director"]
    assert got["points"][1]["capture"] == "samples/nat-gateway/faulty-rs-gateway/director.pcapng"
    assert got["points"][1]["clock_offset_ns"] == DIRECTOR_OFFSET_NS
    assert got["points"][1]["taps"] == ["director:eth1", "director:eth0"]
    assert got["mappings"][0]["before"] == "198.51.100.131:80"
    assert got["hops"][0]["delay_median_ns"] == 34_000
    assert {(m["after"], m["not_at"], m["kind"]) for m in got["missing"]} == {
        ("client", "director:eth0", "bypassed"),
        ("director:eth1", "director:eth0", "lost"),
    }
    example = next(m for m in got["missing"] if m["kind"] == "lost")["examples"]
    assert example == [
        {"capture": "samples/nat-gateway/faulty-rs-gateway/director.pcapng", "frame": 77}
    ]
    # redacted, it still follows the schema and hides the addresses
    out = io.StringIO()
    write_redacted("json", analysis, out, Redactor(b"points"))
    redacted = json.loads(out.getvalue())
    validate_report_json(redacted)
    assert "198.51.100.131" not in json.dumps(redacted["correlation"])


def test_markdown_report(with_correlation: Any) -> None:
    analysis, _ = with_correlation()
    out = markdown.render(analysis, generated="T")
    heads = [x for x in out.splitlines() if x.startswith("#")]
    assert heads.index("## Capture points") < heads.index("## Captures analysed")
    for head in ("### Translations", "### Hops", "### Never reached the next tap"):
        assert head in heads
    assert "| `client` | `samples/nat-gateway/faulty-rs-gateway/client-eth0.pcap` | file |" in out
    assert (
        "| director (eth1 -\\> eth0) | DNAT | `198.51.100.131:80` | `192.168.1.190:80` | 3 |" in out
    )
    assert "| `client` | `director:eth1` | 40 | 0.034 ms | 0.090 ms |" in out
    assert "^ syn-ack-from-rip · seen at client only; never at director:eth0 (bypassed)" in out
    page = _md_html(out)
    section = page.split("Capture points</h2>", 1)[1].split("Captures analysed</h2>", 1)[0]
    for table in re.findall(r"<table>(.*?)</table>", section, re.S):
        widths = {len(re.findall(r"<t[dh]", r)) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)}
        assert len(widths) == 1


def test_html_report(with_correlation: Any) -> None:
    analysis, _ = with_correlation()
    page = html.render(analysis, generated="T")
    section = page.split("<h2>Capture points</h2>", 1)[1].split("</section>", 1)[0]
    assert "<td><code>client</code></td>" in section
    assert "+1.235 ms (two-way, 12 packets, spread 0.008 ms)" in section
    assert (
        "<td><code>198.51.100.131:80</code></td><td><code>192.168.1.190:80</code></td>" in section
    )
    assert "<td>0.071 ms</td><td>1.500 s</td>" in section
    assert "<h3>Path across the capture points</h3>" in page
    assert "seen at client only; never at director:eth0 (bypassed)" in page
    assert page.index("<h2>Capture points</h2>") < page.index("<h2>Captures analysed</h2>")


def test_path_ladder_data_and_svg(with_correlation: Any) -> None:
    analysis, corr = with_correlation()
    doc = build_document(analysis, generated="T")
    item = doc["findings"][0]
    lad = item["path_ladder"]
    assert [lane["tap"] for lane in lad["lanes"]] == ["client", "director:eth1", "director:eth0"]
    assert [lane["detail"] for lane in lad["lanes"]] == [
        "client-eth0.pcap", "director.pcapng", "director.pcapng"
    ]  # fmt: skip
    # one row per packet: frames 33, 56 and 73 are one SYN seen at three taps
    assert [r["frames"] for r in lad["rows"]] == [
        "client-eth0.pcap#33 director.pcapng#56,73",
        "client-eth0.pcap#34",
        "client-eth0.pcap#36",
        "director.pcapng#77",
    ]
    assert lad["not_drawn"] == 1  # frame 1: seen at one tap, missing nowhere
    first = lad["rows"][0]
    assert first["role"] == "syn-to-vip, syn-forwarded-to-rip" and first["decisive"]
    assert [s["lane"] for s in first["steps"]] == [0, 1, 2] and first["missing"] == []
    assert first["steps"][1]["delay_ns"] == _ts(analysis.context, 1, 56) - _ts(
        analysis.context, 0, 33
    )
    syn_ack = next(r for r in lad["rows"] if r["frame"] == 34)
    assert syn_ack["missing"] == [{"from": 0, "lane": 2, "kind": "bypassed"}]
    assert not lad["rows"][2]["decisive"]  # a SYN retransmission repeats a role
    svg = ladder.render_path_svg(lad, "t")
    assert svg == ladder.render_path_svg(lad, "t")  # deterministic
    assert svg.count('class="never"') == 2  # frames 34 and 77 never reached eth0
    assert svg.count("<g class=") == len(lad["rows"])
    assert f">+{points.duration(first['steps'][1]['delay_ns'])}</text>" in svg
    assert not re.search(
        r'="[^"]*\d\.\d+[^"]*"',
        svg.replace('stroke-width="2.5"', "").replace('stroke-width="1.2"', ""),
    )  # integer coordinates only
    title = "Path of the NAT001 evidence across capture points"
    assert ladder.render_path_svg(lad, title) in html.render_document(doc)
    # the same analysis renders to the same page
    assert html.render(analysis, generated="T") == html.render(analysis, generated="T")


def test_hostile_point_names_are_escaped(with_correlation: Any) -> None:
    analysis, _ = with_correlation(HOSTILE_NAME)
    page = html.render(analysis, generated="T")
    assert "<script" not in page.lower()
    assert html_lib.escape(HOSTILE_NAME, quote=True) + ":eth1" in page
    md = markdown.render(analysis, generated="T")
    rendered = _md_html(md)
    assert "<script" not in rendered.lower()
    section = rendered.split("Capture points</h2>", 1)[1].split("Captures analysed</h2>", 1)[0]
    for table in re.findall(r"<table>(.*?)</table>", section, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        assert len({len(re.findall(r"<t[dh]", r)) for r in rows}) == 1  # pipes split no cell
    assert html_lib.escape(HOSTILE_NAME) in html_lib.unescape(rendered) or HOSTILE_NAME in (
        html_lib.unescape(re.sub(r"<[^>]+>", "", rendered))
    )
    data = json.loads(json_render.render(analysis))
    assert data["correlation"]["points"][1]["name"] == HOSTILE_NAME
    validate_report_json(data)


def test_every_renderer_shows_the_mapping(with_correlation: Any) -> None:
    analysis, _ = with_correlation()
    for fmt, render in RENDERERS.items():
        buffer = io.StringIO()
        render(analysis, buffer, False)
        assert "192.168.1.190:80" in buffer.getvalue(), fmt
        assert "director:eth0" in buffer.getvalue(), fmt


@pytest.mark.parametrize("fmt", ["text", "md", "html", "json"])
def test_redacted_reports_hide_the_mapped_addresses(with_correlation: Any, fmt: str) -> None:
    analysis, _ = with_correlation()
    out = io.StringIO()
    write_redacted(fmt, analysis, out, Redactor(b"points"))
    got = out.getvalue()
    assert "director:eth0" in got  # tap names are not addresses
    for address in ("198.51.100.131", "192.168.1.190", "198.51.100.150"):
        assert address not in got, fmt


def test_no_section_without_correlation(monkeypatch: pytest.MonkeyPatch) -> None:
    """One capture of one link: no correlation, and the reports are as before."""
    ctx, _ = load_context([CLIENT])
    analysis = Analysis(ctx, RunResult(ran=["NAT001"]), [])
    assert points.correlation_of(analysis) is None
    assert "capture points" not in text.render(analysis)
    assert "correlation" not in json.loads(json_render.render(analysis))
    assert "Capture points" not in markdown.render(analysis, generated="T")
    assert "Capture points" not in html.render(analysis, generated="T")


# --- end to end: the correlation engine on the two-point NAT sample ---------------------------------
@pytest.fixture(scope="module")
def two_points() -> Analysis:
    from netdiag.engine.analysis import analyze

    return analyze([CLIENT, DIRECTOR], [str(SAMPLE / "facts")])


def test_two_point_sample_in_every_format(two_points: Analysis) -> None:
    """What the engine finds on the sample is shown in each format (whatever it finds: the
    engine's own tests check the values; these check that none is lost on the way)."""
    corr = two_points.context.correlation
    assert corr is not None
    data = points.correlation_report(corr)
    reference = data["points"][0]
    assert data["points"][1]["taps"] == ["director:eth1", "director:eth0"]
    assert any("192.168.1.190:80" in m["after"] for m in data["mappings"])

    out = text.render(two_points)
    assert f"capture points (clocks against {reference['name']}):" in out
    for m in data["mappings"]:
        assert f"  {points.mapping_text(m)}" in out
    for hop in data["hops"]:
        assert f"  {hop['from_tap']} -> {hop['to_tap']}: {points.hop_text(hop)}" in out
    for group in data["missing"]:
        assert points.missing_text(group) in out
    assert f"· seen at {reference['taps'][0]} -> director:eth1 +" in out
    assert f"· same packet as {Path(CLIENT).name}#" in out

    report = json.loads(json_render.render(two_points))
    validate_report_json(report)
    assert report["correlation"] == json.loads(json.dumps(data))

    md = markdown.render(two_points, generated="T")
    assert "## Capture points" in md and "### Translations" in md and "### Hops" in md
    for m in data["mappings"]:
        assert markdown.md_code_span(m["after"], in_table=True) in md
    assert "<script" not in _md_html(md)

    page = html.render(two_points, generated="T")
    assert "<h2>Capture points</h2>" in page
    assert page == html.render(two_points, generated="T")
    start = page.index('<svg class="ladder path"')
    svg = page[start : page.index("</svg>", start)]
    for tap in (reference["taps"][0], "director:eth1", "director:eth0"):
        assert f">{tap}</text>" in svg
    # the SYN to the VIP, seen at the client, then on both sides of the director's rewrite
    assert re.search(r"#33 director\.pcapng#\d+,\d+</text>", svg)
