"""`netdiag show CAPTURE --frame N[,M...]`: Wireshark's full dissection of chosen frames."""

from __future__ import annotations

import gzip
import lzma
import shutil
from pathlib import Path

import pytest
from report_kit import HAIRPIN_PCAP, HOSTILE_DNS, HOSTILE_HOST, write_hostile_case
from typer.testing import CliRunner

from netdiag.dissect import dissect, parse_frames
from netdiag.errors import NetdiagError

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def test_parse_frames() -> None:
    assert parse_frames(["56,53", "60", "53"]) == [53, 56, 60]
    for bad in (["0"], ["x"], ["-3"], [","]):
        with pytest.raises(NetdiagError):
            parse_frames(bad)


@pytest.mark.parametrize("engine", ["pyshark", "tshark"])
def test_dissects_only_the_chosen_frames(engine: str) -> None:
    if engine == "pyshark":
        pytest.importorskip("pyshark")
    text = dissect(str(HAIRPIN_PCAP), [54, 56], engine)
    # every layer, every field: the hairpin SYN's raw ISN, then the RST
    assert "10.10.1.11" in text and "2764857062" in text
    assert "Linux cooked capture v2" in text or "SLL" in text
    assert "Source Port: 48634" in text and "Destination Port: 80" in text
    assert "Time to Live" in text and "Window" in text
    frame_heads = [line for line in text.splitlines() if "Frame Number:" in line]
    assert [line.split(":")[-1].strip() for line in frame_heads] == ["54", "56"]
    assert "Reset: Set" in text.split("Frame Number: 56", 1)[1]


def test_hostile_names_are_shown_as_text(tmp_path: Path) -> None:
    capture, _ = write_hostile_case(tmp_path)
    frames = [118, 119]  # the HTTP request and the DNS query appended to the sample
    text = dissect(str(capture), frames, "tshark")
    assert HOSTILE_HOST in text  # the plain text output is the dissection as it is
    assert HOSTILE_DNS in text


def test_compressed_and_missing_frames(tmp_path: Path) -> None:
    for name, compress in (("c.pcap.gz", gzip.compress), ("c.pcap.xz", lzma.compress)):
        packed = tmp_path / name  # tshark reads gzip itself; xz is undone by netdiag first
        packed.write_bytes(compress(HAIRPIN_PCAP.read_bytes()))
        assert "Frame Number: 53" in dissect(str(packed), [53], "tshark")
    with pytest.raises(NetdiagError, match="no frame 999: the capture has 117 frames"):
        dissect(str(HAIRPIN_PCAP), [53, 999], "tshark")


def test_cli() -> None:
    from netdiag.cli.main import app

    runner = CliRunner()
    done = runner.invoke(app, ["show", str(HAIRPIN_PCAP), "--frame", "55", "--engine", "tshark"])
    assert done.exit_code == 0, done.output
    assert "Frame Number: 55" in done.output and "Frame Number: 56" not in done.output
    done = runner.invoke(app, ["show", str(HAIRPIN_PCAP), "--frame", "1000"])
    assert done.exit_code == 2
    assert "no frame 1000" in done.output
