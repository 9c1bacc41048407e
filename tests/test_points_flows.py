"""`netdiag flows A B`: one flow table of several capture points, connections linked across NAT."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "nat-gateway" / "faulty-rs-gateway"
CLIENT, DIRECTOR = SAMPLE / "client-eth0.pcap", SAMPLE / "director.pcapng"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netdiag", "flows", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    if not CLIENT.exists():
        pytest.skip("sample not built")
    done = _run(str(CLIENT), str(DIRECTOR), "--point", f"client={CLIENT}", "-f", "csv")
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def test_every_flow_of_both_points_with_its_point(rows: list[dict[str, str]]) -> None:
    single = [_run(str(p), "-f", "csv").stdout.count("\n") - 1 for p in (CLIENT, DIRECTOR)]
    assert len(rows) == sum(single)
    assert {r["point"] for r in rows} == {"client", "director"}


def test_a_connection_to_the_vip_is_linked_to_its_rewritten_flow(
    rows: list[dict[str, str]],
) -> None:
    # client 198.51.100.150:45834 > VIP 198.51.100.131:80, scheduled to 192.168.1.190 (no reply)
    at_client = [
        r
        for r in rows
        if r["point"] == "client" and r["orig_p"] == "45834" and r["resp_h"] == "198.51.100.131"
    ]
    assert len(at_client) == 1
    conn = at_client[0]["conn"]
    assert conn != "-1"
    linked = [r for r in rows if r["conn"] == conn]
    behind = [r for r in linked if r["point"] == "director" and r["resp_h"] == "192.168.1.190"]
    assert len(behind) == 1 and behind[0]["seen_at"] == "director:eth0"
    elsewhere = at_client[0]["translated"].split("; ")
    rewritten = [t for t in elsewhere if t.endswith(" 198.51.100.150:45834 > 192.168.1.190:80")]
    assert len(rewritten) == 1 and "director:eth0" in rewritten[0].split(" ")[0].split(",")
    # the SYN-ACK from the real server's own address reached the client: same connection
    assert any(r["point"] == "client" and r["resp_h"] == "192.168.1.190" for r in linked)


def test_one_capture_keeps_the_plain_table() -> None:
    if not CLIENT.exists():
        pytest.skip("sample not built")
    done = _run(str(CLIENT), "-f", "csv")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0].startswith("flow_id,")


def test_bad_point_option_is_one_line() -> None:
    done = _run(str(CLIENT), "--point", "nameless")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "NAME=FILE" in done.stderr
