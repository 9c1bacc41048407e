"""The CLI's contract: exit codes, one-line errors naming the file, output formats."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdiag.cli.main import app

runner = CliRunner()


def _pcap(path: Path, frames: list[bytes], linktype: int = 1) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 500_000, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def _eth_ipv4_udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


@pytest.fixture
def udp_pcap(tmp_path: Path) -> Path:
    frames = [
        _eth_ipv4_udp(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 5353, 53, b"q"),
        _eth_ipv4_udp(b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01", 53, 5353, b"answer"),
    ]
    return _pcap(tmp_path / "two.pcap", frames)


def test_no_arguments_shows_usage() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code in (0, 2)
    assert "Usage" in result.output


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pcap"
    for command in ("info", "packets", "flows"):
        result = runner.invoke(app, [command, str(missing)])
        assert result.exit_code == 2, (command, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert str(missing) in lines[0]
        assert "Traceback" not in result.output


def test_not_a_capture_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    result = runner.invoke(app, ["info", str(text)])
    assert result.exit_code == 2
    assert str(text) in result.output
    assert "Traceback" not in result.output


def test_info_text_and_json(udp_pcap: Path) -> None:
    result = runner.invoke(app, ["info", str(udp_pcap)])
    assert result.exit_code == 0, result.output
    assert "Packets:            2" in result.output
    assert "2023-11-14T22:13:20.500000000Z" in result.output  # first packet, UTC, ns
    result = runner.invoke(app, ["info", "--format", "json", str(udp_pcap)])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["packets"] == 2
    assert summary["format"] == "pcap"
    assert summary["interfaces"][0]["linktype"] == 1
    assert summary["duration_ns"] == 1_000_000_000


def test_packets_csv_fields(udp_pcap: Path) -> None:
    result = runner.invoke(
        app, ["packets", str(udp_pcap), "--fields", "frame,ip_src,ip_dst,sport,dport,tcp_seq"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "frame,ip_src,ip_dst,sport,dport,tcp_seq"
    assert lines[1] == "1,10.0.0.1,10.0.0.2,5353,53,"  # absent tcp_seq is an empty cell
    assert lines[2] == "2,10.0.0.2,10.0.0.1,53,5353,"


def test_packets_json_and_parquet(udp_pcap: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["packets", str(udp_pcap), "-f", "json", "-e", "frame,ip_src"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [{"frame": 1, "ip_src": "10.0.0.1"}, {"frame": 2, "ip_src": "10.0.0.2"}]
    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["packets", str(udp_pcap), "-f", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    df = pd.read_parquet(out)
    assert df["frame"].tolist() == [1, 2]
    assert df["ip_dst"].tolist() == ["10.0.0.2", "10.0.0.1"]


def test_packets_unknown_field_is_usage_error(udp_pcap: Path) -> None:
    result = runner.invoke(app, ["packets", str(udp_pcap), "--fields", "frame,bogus"])
    assert result.exit_code == 2
    assert "bogus" in result.output


def test_flows_table_and_csv(udp_pcap: Path) -> None:
    result = runner.invoke(app, ["flows", str(udp_pcap), "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2  # header + one bidirectional flow
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(","), strict=True))
    assert row["orig_h"] == "10.0.0.1"
    assert row["resp_p"] == "53"
    assert row["orig_pkts"] == "1" and row["resp_pkts"] == "1"
    result = runner.invoke(app, ["flows", str(udp_pcap)])
    assert result.exit_code == 0, result.output
    assert "10.0.0.1" in result.output and "conn_state" in result.output
