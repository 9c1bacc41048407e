"""Evidence summaries match tcpdump's own one-line output (tcpdump -nn -S is the oracle)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from netdiag.pipeline import load_capture
from netdiag.render.tcpdump_line import summarize, tcp_flag_text
from netdiag.render.wireshark_filter import addr_in, all_of, any_of, frames, in_set

REPO = Path(__file__).resolve().parent.parent
CAPTURES = [
    REPO / "samples" / "lvs-dr-arp" / "faulty-arp-ignore" / "router-eth1.pcap",
    REPO / "samples" / "nat-gateway" / "faulty-rs-gateway" / "client-eth0.pcap",
    REPO / "samples" / "ipsec-selector-gap" / "faulty" / "vpcrt-any.pcap",  # SLL2, time exceeded
]


def _normalise_tcpdump(line: str) -> str:
    """tcpdump's line without what netdiag leaves out: TCP options and application decodes."""
    line = re.sub(r", options \[[^\]]*\]", "", line)
    # -i any: tcpdump names the interface from the reading host's ifindex table; netdiag prints
    # the name only when the capture or the facts give it
    line = re.sub(r"^(\S+) \S+\s+(In |Out|B  |M  |P  ) ", r"\1 \2 ", line)
    line = re.sub(r"(, length \d+):? .*$", r"\1", line)  # ": HTTP: GET / ..." after the length
    return line


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_summaries_match_tcpdump(capture: Path) -> None:
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    if not capture.is_file():
        pytest.skip(f"sample not built: {capture}")
    out = subprocess.run(
        ["tcpdump", "-nn", "-S", "-r", str(capture)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    packets = load_capture(str(capture)).packets
    ours = summarize(packets)
    assert len(ours) == len(out) == len(packets)
    proto = packets["ip_proto"].to_numpy()
    icmp_type = packets["icmp_type"].to_numpy()
    comparable = (
        (proto == 6)
        | (packets["arp_op"].to_numpy() >= 0)
        | ((proto == 1) & pd.Series(icmp_type).isin([0, 8, 11]).to_numpy())
    )
    checked = 0
    for i in range(len(out)):
        if comparable[i] and packets["ip_version"].iloc[i] in (0, 4):
            assert ours[i] == _normalise_tcpdump(out[i]), f"frame {i + 1}"
            checked += 1
    assert checked >= 10


def test_tcp_flag_letters_in_tcpdump_order() -> None:
    import numpy as np

    assert tcp_flag_text(np.array([0x002, 0x012, 0x018, 0x011, 0x004, 0x014, 0x0C2, 0])) == [
        "S",
        "S.",
        "P.",
        "F.",
        "R",
        "R.",
        "SEW",
        "none",
    ]


def test_wireshark_filter_builders() -> None:
    assert frames([5, 1, 5]) == "frame.number in {1, 5}"
    assert frames([3]) == "frame.number == 3"
    assert in_set("tcp.port", [80, 443]) == "tcp.port in {80, 443}"
    assert addr_in(["10.0.0.2", "10.0.0.1", "fe80::1"], "src") == (
        "ip.src in {10.0.0.1, 10.0.0.2} || ipv6.src == fe80::1"
    )
    assert all_of(["a == 1", "b == 2 || c == 3"]) == "a == 1 && (b == 2 || c == 3)"
    assert any_of(["a == 1 && b == 2", "c == 3", ""]) == "(a == 1 && b == 2) || c == 3"
