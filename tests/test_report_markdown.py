"""The Markdown report: layout, the seed-000 reading, determinism and escaping of hostile text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from report_kit import HOSTILE, hairpin_analysis, write_hostile_case

from netdiag.engine.analysis import analyze
from netdiag.render import markdown
from netdiag.render.escape import md_cell, md_code_block, md_code_span, md_text


def to_html(text: str) -> str:
    """CommonMark + GFM tables, raw HTML allowed: what an unescaped string would become."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


@pytest.fixture(scope="module")
def hairpin_md() -> str:
    return markdown.render(hairpin_analysis(), generated="2026-01-01T00:00:00Z")


def test_layout_summary_then_findings_then_captures_and_rules(hairpin_md: str) -> None:
    heads = [line for line in hairpin_md.splitlines() if line.startswith("#")]
    assert heads[0] == "# netdiag report"
    order = [
        "## 1. LB001",
        "### Evidence",
        "### Facts used",
        "### Why",
        "### What to do",
        "### Wireshark filter",
        "## Captures analysed",
        "## Facts",
        "## Rules",
    ]
    positions = [next(i for i, h in enumerate(heads) if h.startswith(o)) for o in order]
    assert positions == sorted(positions)
    assert "| # | finding | severity | confidence | subject |" in hairpin_md
    row = next(line for line in hairpin_md.splitlines() if line.startswith("| 1 | LB001"))
    assert "| error | high |" in row and "10.10.1.11 -> 10.10.0.100:80" in row
    # captures analysed and the rules that ran
    assert re.search(r"\| `samples/lb-hairpin/faulty-l4/backend1-any.pcap` \| pcap \|", hairpin_md)
    assert "LINUX\\_SLL2" in hairpin_md and "| 117 | 107 |" in hairpin_md
    assert re.search(r"\d+ ran \(ARP001, .*LB001.*\), 0 skipped, 0 errored\.", hairpin_md)


def test_evidence_block_marks_decisive_frames(hairpin_md: str) -> None:
    block = hairpin_md.split("### Evidence", 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    marked = [line for line in block.splitlines() if line.startswith(">> #")]
    frames = [int(line.split()[1][1:]) for line in marked]
    # the first SYN to the VIP, its hairpin twin, the SYN-ACK over lo, the RST, the retry
    assert frames == [53, 54, 55, 56, 58]
    assert re.search(
        r"^   #59 +\S+ (?:\S+ +)?In  IP 10\.10\.1\.11\.48634 > 10\.10\.1\.11\.80: Flags \[S\]",
        block,
        re.M,
    )
    roles = re.findall(r"\^ ([a-z-]+)", block)
    assert roles[:4] == ["syn-to-vip", "hairpin-syn", "syn-ack-over-lo", "rst"]
    # a tcpdump line under each mark, unchanged from the evidence
    first = hairpin_analysis().result.findings[0].evidence[0]
    assert f">> #{first.frame:<6} {first.summary}" in block


def test_reads_like_the_seed_analysis(hairpin_md: str) -> None:
    """Seed 000's own analysis: the backend reached itself through the L4 listener (source kept),
    the answer came back over lo and the kernel reset it; use L7 / reach it locally / SNAT."""
    section = hairpin_md.split("## 1. LB001", 1)[1].split("## Captures analysed", 1)[0]
    verdict = section.split("### Evidence", 1)[0]
    assert re.search(r"back to itself", verdict)
    assert re.search(r"10\.10\.1\.11 to 10\.10\.0\.100:80 came back to 10\.10\.1\.11:80", verdict)
    assert re.search(r"\bRST\b.*\blo\b", verdict)
    why = section.split("### Why", 1)[1].split("###", 1)[0]
    assert "layer-4 listener that keeps the client address" in why
    assert "over lo" in why and "the kernel resets" in why  # the seed: the kernel reset it
    fix = section.split("### What to do", 1)[1].split("###", 1)[0]
    items = [line for line in fix.splitlines() if line.startswith("- ")]
    assert len(items) >= 3
    assert any("layer-7" in i for i in items)
    assert any("locally" in i for i in items)
    assert any("SNAT" in i for i in items)
    # the facts behind it, with their source lines
    assert "`samples/lb-hairpin/faulty-l4/facts/lb-listener.yaml:16`" in section
    assert "`- {address: 10.10.1.11, port: 80, weight: 100}`" in section


def test_markdown_renders_to_well_formed_html(hairpin_md: str) -> None:
    html = to_html(hairpin_md)
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert len(tables) >= 4
    for table in tables:
        width = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[-1], re.S):
            assert len(re.findall(r"<td", row)) == width
    assert html.count("<pre>") == 3  # evidence, `netdiag show` command, Wireshark filter
    assert "<li>" in html  # the remediation list


def test_deterministic_apart_from_the_time_stamp(hairpin_md: str) -> None:
    fresh = markdown.render(hairpin_analysis(), generated="2026-01-01T00:00:00Z")
    assert fresh == hairpin_md
    other_time = markdown.render(hairpin_analysis())
    differing = [
        (a, b)
        for a, b in zip(hairpin_md.splitlines(), other_time.splitlines(), strict=True)
        if a != b
    ]
    assert len(differing) == 1 and differing[0][0].startswith("Generated ")


def test_deterministic_across_runs() -> None:
    from report_kit import HAIRPIN, HAIRPIN_PCAP

    first = analyze([str(HAIRPIN_PCAP)], [str(HAIRPIN / "facts")])
    text = markdown.render(first, generated="T")
    assert text == markdown.render(hairpin_analysis(), generated="T")


def test_hostile_strings_stay_inert(tmp_path: Path) -> None:
    capture, facts = write_hostile_case(tmp_path)
    analysis = analyze([str(capture)], [str(facts)])
    assert [f.code for f in analysis.result.findings] == ["LB001"]
    text = markdown.render(analysis, generated="T")
    # the hostile interface name reaches the evidence lines, the hostile comment the facts table
    assert HOSTILE in text
    assert (
        md_code_span(f"- {{address: 10.10.1.11, port: 80, weight: 100}}  # {HOSTILE}", True) in text
    )
    html = to_html(text)
    assert "<script" not in html.lower()
    assert html.count("<pre>") == html.count("</pre>") == 3
    facts_table = html.split("Facts used</h3>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", facts_table, re.S)
    assert all(len(re.findall(r"<td", r)) == 2 for r in rows[1:])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/pre&gt;|a|b|`tick`" in facts_table


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        "1. not a list",
        "# not a heading",
        "- not an item",
        "> not a quote",
        "[link](javascript:alert(1))",
        "![img](http://x/y.png)",
        "**bold** _em_ ~~del~~ &amp; &lt;",
        "a\\`b` <b>raw</b>",
    ],
)
def test_md_text_renders_literally(text: str) -> None:
    html = to_html(md_text(text))
    inner = re.sub(r"^<p>|</p>\n$", "", html)
    import html as html_lib

    assert html_lib.unescape(inner) == text


@pytest.mark.parametrize("text", [HOSTILE, "``a```", "`", "|x|", "a\nb"])
def test_code_span_and_cell_keep_one_cell(text: str) -> None:
    table = f"| a | b |\n|---|---|\n| {md_code_span(text, True)} | {md_cell(text)} |\n"
    html = to_html(table)
    body = html.split("<tbody>")[1]
    assert len(re.findall(r"<td", body)) == 2
    assert "<script" not in html


def test_code_block_fence_outlasts_backticks() -> None:
    lines = ["```", "</pre>", "````` inside", HOSTILE]
    html = to_html(md_code_block(lines, "text"))
    assert html.count("<pre>") == 1 and html.count("<code") == 1
    import html as html_lib

    assert (
        html_lib.unescape(html.split(">", 2)[2].rsplit("</code>", 1)[0]) == "\n".join(lines) + "\n"
    )


_PIECES = [*"ab1. -+*_`[]()<>!#|&;~=:/\\\"'{}", "&amp;", "<b>", "``", "10.", "1)", "---"]
_LINE = st.lists(st.sampled_from(_PIECES), max_size=20).map(lambda p: " ".join("".join(p).split()))


@settings(max_examples=300, deadline=None)
@given(_LINE)
def test_any_line_renders_literally(text: str) -> None:
    """Whatever punctuation a capture string holds, md_text makes CommonMark show it as is."""
    rendered = to_html(md_text(text)).strip()
    if not text:
        assert rendered == ""
        return
    assert rendered.startswith("<p>") and rendered.endswith("</p>"), rendered
    import html as html_lib

    assert html_lib.unescape(rendered[3:-4]) == text


@settings(max_examples=200, deadline=None)
@given(_LINE)
def test_any_text_stays_in_its_table_cell(text: str) -> None:
    import html as html_lib

    table = f"| a | b |\n|---|---|\n| {md_code_span(text, True)} | {md_cell(text)} |\n"
    body = to_html(table).split("<tbody>")[1]
    cells = re.findall(r"<td>(.*?)</td>", body, re.S)
    assert len(cells) == 2
    code = re.fullmatch(r"<code>(.*)</code>", cells[0], re.S)
    assert code is not None
    assert html_lib.unescape(code.group(1)).strip() == text.strip()
    assert html_lib.unescape(cells[1]).strip() == text.strip()
