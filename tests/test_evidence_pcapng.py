"""The evidence pcapng: the findings' frames (and handshakes) with comments, interfaces kept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from report_kit import HAIRPIN_PCAP, REPO, hairpin_analysis, write_hostile_case

from netdiag.capture.reader import open_capture
from netdiag.engine.analysis import analyze
from netdiag.evidence_pcapng import handshake_frames, select_frames, write_evidence

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def records(path: str | Path) -> tuple[list[tuple[int, int, bytes, int]], list]:  # type: ignore[type-arg]
    """(ts_ns, iface, bytes, wirelen) of every record, and the interfaces."""
    out = []
    with open_capture(str(path)) as cap:
        for batch in cap.batches():
            for i in range(len(batch)):
                start = int(batch.offsets[i])
                data = batch.data[start : start + int(batch.caplen[i])].tobytes()
                out.append((int(batch.ts_ns[i]), int(batch.iface[i]), data, int(batch.wirelen[i])))
        return out, list(cap.info.interfaces)


def test_frames_chosen_with_roles_and_handshake() -> None:
    chosen = select_frames(hairpin_analysis())
    frames = chosen[str(HAIRPIN_PCAP)]
    finding = hairpin_analysis().result.findings[0]
    for e in finding.evidence:
        assert frames[e.frame] == [f"LB001 {e.role}"]
    # the third attempt's hairpin SYN (63) is evidence; its SYN-ACK over lo completes the handshake
    assert frames[64] == ["LB001 handshake"]
    assert sorted(frames) == sorted({e.frame for e in finding.evidence} | {64})
    cap = hairpin_analysis().context.captures[0]
    assert handshake_frames(cap, 63) == [63, 64]
    assert handshake_frames(cap, 53) == [53]  # the SYN to the VIP was never answered


@needs_tshark
def test_tshark_shows_the_comments(tmp_path: Path) -> None:
    path = tmp_path / "evidence.pcapng"
    written = write_evidence(hairpin_analysis(), str(path))
    assert written.packets == 11
    done = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.comment"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    finding = hairpin_analysis().result.findings[0]
    expected = [f"LB001 {e.role},frame {e.frame} of backend1-any.pcap" for e in finding.evidence]
    assert lines == [*expected, "LB001 handshake,frame 64 of backend1-any.pcap"]
    # the dissection is the original one: Linux cooked v2, the hairpin SYN from the backend to itself
    done = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-Y",
            "frame.number == 2",
            "-T",
            "fields",
            "-e",
            "frame.encap_type",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "tcp.seq_raw",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["210", "10.10.1.11", "10.10.1.11", "2764857062"]


def test_packets_and_interfaces_are_the_originals(tmp_path: Path) -> None:
    path = tmp_path / "evidence.pcapng"
    write_evidence(hairpin_analysis(), str(path))
    original, _ = records(HAIRPIN_PCAP)
    copied, interfaces = records(path)
    frames = sorted(select_frames(hairpin_analysis())[str(HAIRPIN_PCAP)])
    assert copied == [original[f - 1] for f in frames]
    assert [(i.linktype, i.tsresol_ns) for i in interfaces] == [(276, 1000.0)]


@pytest.mark.parametrize("tsresol", [9, 0x80 | 20, 3])
def test_pcapng_input_keeps_names_and_time_resolution(tmp_path: Path, tsresol: int) -> None:
    capture, facts = write_hostile_case(tmp_path / "case", tsresol)
    analysis = analyze([str(capture)], [str(facts)])
    path = tmp_path / "evidence.pcapng"
    write_evidence(analysis, str(path))
    original, original_ifaces = records(capture)
    copied, interfaces = records(path)
    assert [(i.linktype, i.name, i.tsresol_ns) for i in interfaces] == [
        (i.linktype, i.name, i.tsresol_ns) for i in original_ifaces
    ]
    assert interfaces[0].tsresol_ns == original_ifaces[0].tsresol_ns  # if_tsresol kept
    frames = sorted(select_frames(analysis)[str(capture)])
    assert copied == [original[f - 1] for f in frames]


def test_several_captures_keep_their_interfaces(tmp_path: Path) -> None:
    """Interfaces of each capture in turn; packets of all captures merged by time (mergecap)."""
    folder = REPO / "samples" / "lvs-dr-arp" / "faulty-arp-ignore"
    captures = sorted(str(p) for p in folder.glob("*.pcap*"))
    assert len(captures) == 2
    analysis = analyze(captures, [str(folder / "facts")])
    path = tmp_path / "evidence.pcapng"
    written = write_evidence(analysis, str(path))
    chosen = select_frames(analysis)
    assert sorted(written.captures) == sorted(chosen) == captures
    copied, interfaces = records(path)
    expected_ifaces = []
    expected_packets = []
    for order, capture in enumerate(captures):
        original, ifaces = records(capture)
        base = len(expected_ifaces)
        expected_ifaces += [(i.linktype, i.name, i.tsresol_ns) for i in ifaces]
        expected_packets += [
            ((ts, order, f), (ts, base + iface, data, wirelen))
            for f in sorted(chosen[capture])
            for ts, iface, data, wirelen in [original[f - 1]]
        ]
    assert [(i.linktype, i.name, i.tsresol_ns) for i in interfaces] == expected_ifaces
    assert copied == [p for _, p in sorted(expected_packets)]
    assert np.all(np.diff([c[0] for c in copied]) >= 0)
    assert len({c[1] for c in copied}) >= 2  # both captures' interfaces are referenced


def test_same_input_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    write_evidence(hairpin_analysis(), str(a))
    write_evidence(hairpin_analysis(), str(b))
    assert a.read_bytes() == b.read_bytes()


def test_unwritable_path_is_one_line_error(tmp_path: Path) -> None:
    from netdiag.errors import NetdiagError

    with pytest.raises(NetdiagError, match="cannot write the evidence capture"):
        write_evidence(hairpin_analysis(), str(tmp_path / "missing" / "e.pcapng"))
