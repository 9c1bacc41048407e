"""The HTML report: self-contained, ladder diagrams, escaping, and a real browser's view of it."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from report_kit import (
    HOSTILE,
    artifacts_dir,
    chromium,
    console_messages,
    hairpin_analysis,
    run_chromium,
    write_hostile_case,
)

from netdiag.engine.analysis import analyze
from netdiag.render import html
from netdiag.render.document import build_document, ladder_data
from netdiag.render.ladder import render_svg


@pytest.fixture(scope="module")
def hairpin_html() -> str:
    return html.render(hairpin_analysis(), generated="2026-01-01T00:00:00Z")


def test_self_contained_no_external_reference(hairpin_html: str) -> None:
    lowered = hairpin_html.lower()
    for needle in ("http://", "https://", "//cdn", "url(", "@import", "<link", "<script", "<img"):
        assert needle not in lowered, needle
    # the only links are to anchors of the page itself
    targets = re.findall(r'\b(?:href|src|xlink:href)\s*=\s*"([^"]*)"', hairpin_html)
    assert targets and all(t.startswith("#") for t in targets)
    assert "<style>" in hairpin_html and "Content-Security-Policy" in hairpin_html


def test_same_content_as_markdown(hairpin_html: str) -> None:
    finding = hairpin_analysis().result.findings[0]
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", hairpin_html))
    assert finding.title in text and finding.subject in text
    for e in finding.evidence:
        assert e.summary in text
    for u in finding.facts_used:
        assert u.text in text
    assert finding.wireshark_filter in text
    for heading in ("Why", "What to do", "Wireshark filter", "Connections", "Captures analysed"):
        assert f">{heading}</h" in hairpin_html


def test_ladder_has_one_arrow_per_evidence_frame(hairpin_html: str) -> None:
    finding = hairpin_analysis().result.findings[0]
    svgs = re.findall(r'<svg class="ladder".*?</svg>', hairpin_html, re.S)
    assert len(svgs) == 1
    svg = svgs[0]
    frames = [int(f) for f in re.findall(r'<g class="arrow[^"]*" data-frame="(\d+)"', svg)]
    assert frames == [e.frame for e in finding.evidence]
    decisive = [int(f) for f in re.findall(r'<g class="arrow decisive" data-frame="(\d+)"', svg)]
    assert decisive == [53, 54, 55, 56, 58]
    # lanes: the backend and the VIP; the hairpin SYN is a loop on the backend's lane
    lanes = re.findall(r'font-weight="bold" fill="#263238">([^<]+)</text>', svg)
    assert lanes == ["10.10.1.11", "10.10.0.100"]
    hairpin = svg.split('data-frame="54"', 1)[1].split("</g>", 1)[0]
    assert "<path" in hairpin and "48634 &gt; 80: Flags [S], seq 2764857062" in hairpin
    synack = svg.split('data-frame="55"', 1)[1].split("</g>", 1)[0]
    assert "80 &gt; 48634: Flags [S.], seq 2521611654, ack 2764857063" in synack
    assert "lo In · syn-ack-over-lo" in synack
    to_vip = svg.split('data-frame="53"', 1)[1].split("</g>", 1)[0]
    assert "<line" in to_vip and "Out · syn-to-vip" in to_vip


def test_ladder_arp_lanes_and_capture_points() -> None:
    """With ARP in the evidence frames go between link addresses (a request towards broadcast,
    drawn last); with evidence from two captures arrows and lanes say which capture saw them."""
    import pandas as pd

    def ev(capture: str, frame: int, summary: str, role: str) -> SimpleNamespace:
        return SimpleNamespace(capture=capture, frame=frame, summary=summary, role=role, note="")

    mac1, mac2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
    rows = [
        {
            "arp_op": 1,
            "arp_sha": mac1,
            "eth_src": mac1,
            "eth_dst": "ff:ff:ff:ff:ff:ff",
            "arp_spa": "10.0.0.1",
            "arp_tpa": "10.0.0.100",
        },
        {
            "arp_op": 2,
            "arp_sha": mac2,
            "eth_src": mac2,
            "eth_dst": mac1,
            "arp_spa": "10.0.0.100",
            "arp_tpa": "10.0.0.1",
        },
        {
            "arp_op": -1,
            "eth_src": mac1,
            "eth_dst": mac2,
            "ip_src": "10.0.0.1",
            "ip_dst": "10.0.0.100",
            "sport": 1234,
            "dport": 80,
        },
    ]
    evidence = [
        ev(
            "a.pcap",
            1,
            "10:00:00.000001 ARP, Request who-has 10.0.0.100 tell 10.0.0.1, length 28",
            "q",
        ),
        ev(
            "a.pcap",
            2,
            "10:00:00.000002 ARP, Reply 10.0.0.100 is-at 02:00:00:00:00:02, length 28",
            "r",
        ),
        ev(
            "b.pcap",
            7,
            "10:00:00.000003 IP 10.0.0.1.1234 > 10.0.0.100.80: Flags [S], seq 1, win 5, length 0",
            "s",
        ),
    ]
    data = ladder_data(evidence, [pd.Series(r) for r in rows], [True, True, False], several=True)
    assert [lane["host"] for lane in data["lanes"]] == [mac1, mac2, "broadcast"]
    assert data["lanes"][0]["detail"] == "ARP sender 10.0.0.1 · IP 10.0.0.1 · a.pcap · b.pcap"
    assert [(a["src"], a["dst"]) for a in data["arrows"]] == [(0, 2), (1, 0), (0, 1)]
    labels = [a["label"] for a in data["arrows"]]
    assert labels == [
        "who-has 10.0.0.100 tell 10.0.0.1",
        "10.0.0.100 is-at 02:00:00:00:00:02",
        "10.0.0.1.1234 > 10.0.0.100.80: Flags [S], seq 1, win 5",
    ]
    svg = render_svg(data, "t")
    assert svg == render_svg(data, "t")  # deterministic
    assert svg.count("<g class=") == 3 and svg.count('class="arrow decisive"') == 2
    assert "a.pcap#1" in svg and "b.pcap#7" in svg


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    capture, facts = write_hostile_case(tmp_path)
    page = html.render(analyze([str(capture)], [str(facts)]), generated="T")
    assert "<script" not in page.lower()
    assert page.count("<pre") == page.count("</pre>")
    escaped = html_lib.escape(HOSTILE, quote=True)
    assert escaped in page  # in the evidence lines, the facts table and the interface list
    svg = re.findall(r'<svg class="ladder".*?</svg>', page, re.S)[0]
    assert escaped in svg  # the interface name is part of each arrow's "where"


def test_document_is_what_json_says(hairpin_html: str) -> None:
    from netdiag.render.json import report

    doc = build_document(hairpin_analysis(), generated="T")
    plain = report(hairpin_analysis())
    extras = ("decisive", "ladders", "flows", "show_commands", "evidence_paths", "path_ladder")
    doc["findings"] = [{k: v for k, v in f.items() if k not in extras} for f in doc["findings"]]
    assert {k: doc[k] for k in plain} == plain


# --- the real browser --------------------------------------------------------------------------
needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed")


@needs_chromium
def test_console_capture_is_not_vacuous(tmp_path: Path) -> None:
    page = tmp_path / "noisy.html"
    page.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom-42')</script></body></html>"
    )
    done = run_chromium(page, "--dump-dom")
    assert any("boom-42" in line for line in console_messages(done.stderr)), done.stderr[-2000:]


@needs_chromium
def test_browser_renders_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, facts = write_hostile_case(tmp_path / "hostile")
    pages = {
        "lb-hairpin": html.render(hairpin_analysis()),
        "hostile": html.render(analyze([str(capture)], [str(facts)])),
    }
    shots = artifacts_dir()
    for name, content in pages.items():
        page = tmp_path / f"report-{name}.html"
        page.write_text(content, encoding="utf-8")
        done = run_chromium(page, "--dump-dom", "--virtual-time-budget=2000")
        assert done.returncode == 0, done.stderr[-2000:]
        dom = done.stdout
        assert console_messages(done.stderr) == []
        assert dom.count('<svg class="ladder"') == 1
        assert dom.count('class="arrow decisive"') == 5
        assert "LB001" in dom and "What to do" in dom
        assert "<script" not in dom.lower()  # hostile text stayed text
        if name == "hostile":
            assert html_lib.escape(HOSTILE, quote=False) in dom
        shot = shots / f"report-{name}.png"
        done = run_chromium(page, f"--screenshot={shot}", "--window-size=1280,2600")
        assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]
        assert console_messages(done.stderr) == []
        with capsys.disabled():
            print(f"\nHTML report screenshot: {shot}")


def test_deterministic_apart_from_the_time_stamp(hairpin_html: str) -> None:
    assert html.render(hairpin_analysis(), generated="2026-01-01T00:00:00Z") == hairpin_html
    other = html.render(hairpin_analysis(), generated="2027-02-02T00:00:00Z")
    differing = [
        (a, b) for a, b in zip(hairpin_html.splitlines(), other.splitlines(), strict=True) if a != b
    ]
    assert len(differing) == 1 and "Generated 2026-01-01T00:00:00Z" in differing[0][0]


def test_one_ladder_per_capture_point() -> None:
    from report_kit import REPO

    from netdiag.render.json import display_path

    folder = REPO / "samples" / "lvs-dr-arp" / "faulty-arp-ignore"
    captures = sorted(str(p) for p in folder.glob("*.pcap*"))
    analysis = analyze(captures, [str(folder / "facts")])
    page = html.render(analysis, generated="T")
    finding = analysis.result.findings[0]
    seen = list(dict.fromkeys(e.capture for e in finding.evidence))
    assert len(seen) == 2
    svgs = re.findall(r'<svg class="ladder".*?</svg>', page, re.S)
    assert len(svgs) == 2
    for capture, svg in zip(seen, svgs, strict=True):
        shown = display_path(capture)
        assert f"Seen in <code>{html_lib.escape(shown)}</code>" in page
        frames = [int(f) for f in re.findall(r'data-frame="(\d+)"', svg)]
        assert frames == [e.frame for e in finding.evidence if e.capture == capture]
    # ARP in the evidence: lanes are link addresses, broadcast last
    lanes = re.findall(r'font-weight="bold" fill="#263238">([^<]+)</text>', svgs[0])
    assert all(re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}|broadcast", lane) for lane in lanes)
    assert "broadcast" not in lanes[:-1]
