"""The report renderers, the evidence pcapng and redaction over real-world packets of the public
corpus: every link type it has, and ARP, ICMPv6, VLAN, tunnels, malformed and fuzzed frames.

The rules find nothing in these captures, so each test makes one finding whose evidence is ten
frames spread over the capture: what matters here is that the packets, whatever they are, render,
open in tshark afterwards and keep no original address once redacted."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netdiag.engine.analysis import Analysis, load_context
from netdiag.engine.finding import Finding
from netdiag.engine.runner import RunResult
from netdiag.errors import NetdiagError
from netdiag.evidence_pcapng import write_evidence
from netdiag.redact import Redactor
from netdiag.render import html, markdown
from netdiag.render.document import write_redacted

INDEX = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "index.tsv"
TAGS = ("arp", "icmpv6", "vlan", "ip-in-ip", "malformed", "fuzzed", "linux-cooked", "ip-frag")
MAX_BYTES = 2_000_000


def chosen_files() -> list[str]:
    """One capture per link type, two per interesting tag (small ones, in index order)."""
    if not INDEX.is_file():
        return []
    with INDEX.open() as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if int(r["size"]) <= MAX_BYTES]
    names: list[str] = []
    for key in sorted({r["linktypes"] for r in rows}):
        names.append(next(r["name"] for r in rows if r["linktypes"] == key))
    for tag in TAGS:
        names += [r["name"] for r in rows if tag in r["tags"].split(",")][:2]
    return sorted(dict.fromkeys(names))


def sample_analysis(path: str) -> Analysis | None:
    try:
        ctx, _ = load_context([path])
    except NetdiagError:
        return None  # not a capture netdiag reads: its own tests cover that
    packets = ctx.captures[0].packets
    if len(packets) == 0:
        return None
    rows = packets.iloc[:: max(1, len(packets) // 10)].iloc[:10]
    evidence = ctx.evidence(0, rows, "sample", "a frame of the corpus")
    finding = Finding(
        "TST001",
        "corpus-sample",
        "corpus sample",
        "info",
        "low",
        "ten frames",
        "sample",
        evidence=evidence,
        evidence_total=len(evidence),
        fingerprint="0" * 16,
    )
    return Analysis(ctx, RunResult(findings=[finding], ran=["TST001"]))


MAC = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")
FIELDS = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4")
FIELDS += ("eth.src", "eth.dst", "sll.src.eth")


def tshark_fields(path: Path) -> tuple[int, set[str]]:
    args = ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.comment"]
    for f in FIELDS:
        args += ["-e", f]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.splitlines()
    values = {v for line in lines for v in re.split(r"[\t,]", line)[1:] if v}
    return len(lines), values


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", chosen_files() or ["(no corpus)"])
def test_corpus_frames_render_and_redact(name: str, corpus_dir: Path, tmp_path: Path) -> None:
    analysis = sample_analysis(str(corpus_dir / name))
    if analysis is None:
        pytest.skip("no packet netdiag reads")
    rows_text = markdown.render(analysis, generated="T")
    assert rows_text.count("\n>> #") == 1  # one role, one decisive frame
    assert html.render(analysis, generated="T").count('<svg class="ladder"') <= 1
    plain, redacted = tmp_path / "e.pcapng", tmp_path / "r.pcapng"
    written = write_evidence(analysis, str(plain))
    key = Redactor(b"corpus")
    write_evidence(analysis, str(redacted), key)
    count, original = tshark_fields(plain)
    assert count == written.packets
    count, pseudonymised = tshark_fields(redacted)
    assert count == written.packets
    changed = {v for v in original if (key.mac(v) if MAC.match(v) else key.ip(v)) != v}
    assert not (changed & pseudonymised)
    for fmt in ("md", "html", "json"):
        out = io.StringIO()
        write_redacted(fmt, analysis, out, key)
        text = out.getvalue()
        assert [v for v in changed if re.search(rf"(?<![\w.:]){re.escape(v)}(?![\w:])", text)] == []
