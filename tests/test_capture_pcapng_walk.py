"""The pcapng lockstep walk (runs of Enhanced Packet Blocks walked in stretches side by side)
gives what the plain block-by-block walk gives, whatever interrupts the run.

Each test reads one crafted file twice, once as it is read normally and once with the lockstep
walk switched off, and compares everything a reader hands on: packet bytes, timestamps,
interfaces, comments, interfaces described, warnings.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from craft_kit import craft

from netdiag.capture.formats import pcapng
from netdiag.capture.reader import open_capture

BASE_S = 1_700_000_000


def read_all(path: Path, chunk_bytes: int) -> dict[str, Any]:
    packets: list[bytes] = []
    ts: list[int] = []
    iface: list[int] = []
    comments: dict[int, str] = {}
    with open_capture(path) as cap:
        for batch in cap.batches(chunk_bytes):
            packets += [
                bytes(batch.data[o : o + c])
                for o, c in zip(batch.offsets, batch.caplen, strict=True)
            ]
            ts += batch.ts_ns.tolist()
            iface += batch.iface.tolist()
            comments.update(batch.comments)
        interfaces = [(i.linktype, i.name, i.tsresol_ns, i.section) for i in cap.info.interfaces]
        return {
            "packets": packets,
            "ts": ts,
            "iface": iface,
            "comments": comments,
            "interfaces": interfaces,
            "warnings": list(cap.info.warnings),
            "sections": list(cap.info.section_comments),
        }


def both_ways(
    path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int = 16 << 20
) -> tuple[dict[str, Any], dict[str, Any], list[bool]]:
    """(read with the lockstep walk, read without it, whether each lockstep attempt vouched)."""
    calls: list[bool] = []
    lockstep = pcapng.chain_epbs

    def counted(*args):  # type: ignore[no-untyped-def]
        result = lockstep(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(pcapng, "chain_epbs", counted)
    fast = read_all(path, chunk_bytes)
    monkeypatch.setattr(pcapng, "chain_epbs", lambda *args: None)
    plain = read_all(path, chunk_bytes)
    monkeypatch.setattr(pcapng, "chain_epbs", lockstep)
    return fast, plain, calls


def epbs(rng: np.random.Generator, count: int, e: str = "<", decoys: bool = True) -> list[bytes]:
    """``count`` EPBs on interfaces 0-2 (us, ns, 2^-20 s), random sizes, some with comments;
    ``decoys`` puts fake EPB headers (type, length and trailer) in payloads."""
    blocks = []
    for i in range(count):
        size = int(rng.choice([54, 60, 66, 590, 1514, int(rng.integers(14, 1600))]))
        payload = bytearray(craft.frame_bytes(size, i % 13))
        if decoys and size >= 80:
            at = 4 * int(rng.integers(0, (size - 40) // 4))
            fake_len = 4 * int(rng.integers(8, 400))
            payload[at : at + 8] = struct.pack(e + "II", 6, fake_len)
            end = at + fake_len - 4
            if end + 4 <= size:
                payload[end : end + 4] = struct.pack(e + "I", fake_len)
        local = i % 3
        units = [(BASE_S + i) * 10**6 + i, (BASE_S + i) * 10**9 + 7 * i, (BASE_S + i) << 20][local]
        notes = (f"packet {i}",) if i % 97 == 0 else ()
        blocks.append(craft.epb(local, units, bytes(payload), e, comments=notes))
    return blocks


def header(e: str = "<") -> bytes:
    return (
        craft.shb(e, comments=("bench-like",))
        + craft.idb(1, 0, e, name="eth0")
        + craft.idb(1, 0, e, name="eth1", tsresol=9)
        + craft.idb(1, 0, e, name="eth2", tsresol=0x80 | 20, tsoffset=3)
    )


@pytest.mark.parametrize("e", ["<", ">"])
def test_a_clean_run_is_walked_in_lockstep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, e: str
) -> None:
    path = tmp_path / "run.pcapng"
    path.write_bytes(header(e) + b"".join(epbs(np.random.default_rng(1), 6000, e)))
    fast, plain, calls = both_ways(path, monkeypatch)
    assert fast == plain
    assert len(fast["packets"]) == 6000 and fast["warnings"] == []
    assert len(fast["comments"]) == len(range(0, 6000, 97))
    assert calls and calls[0]  # the first chunk's run was vouched for


def test_chunk_edges_and_short_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chunks.pcapng"
    path.write_bytes(header() + b"".join(epbs(np.random.default_rng(2), 9000)))
    for chunk_bytes in (700_000, 1_000_003, 4 << 20):
        fast, plain, calls = both_ways(path, monkeypatch, chunk_bytes)
        assert fast == plain
        assert len(fast["packets"]) == 9000 and any(calls)


def _interruption(kind: str, e: str) -> bytes:
    data = craft.frame_bytes(70, 3)
    if kind == "new interface":
        return craft.idb(113, 0, e, name="any", tsresol=3)
    if kind == "name resolution":
        return craft.nrb(e)
    if kind == "statistics":
        return craft.isb(1, e)
    if kind == "unknown block":
        return craft.raw_block(0x0BAD, b"\x01\x02\x03\x04" * 5, e)
    if kind == "simple packet":
        return craft.spb(data, e)
    if kind == "obsolete packet":
        return craft.obsolete_pb(1, (BASE_S << 20) + 5, data, e, comments=("old",))
    if kind == "new section":
        # a section of the other byte order, then one like the first, where the run goes on
        other = ">" if e == "<" else "<"
        return (
            header(other)
            + b"".join(epbs(np.random.default_rng(7), 300, other))
            + craft.shb(e, comments=("third",))
            + craft.idb(1, 0, e, name="eth0", tsoffset=-2)
            + craft.idb(1, 0, e, name="eth1", tsresol=3)
            + craft.idb(1, 0, e, name="eth2", tsresol=0x80 | 20)
        )
    block = bytearray(craft.epb(0, BASE_S * 10**6, data, e))
    if kind == "lying length":
        block[4:8] = struct.pack(e + "I", 0xFFFFFFF0)
    elif kind == "lying caplen":
        block[20:24] = struct.pack(e + "I", 400_000)
    elif kind == "bad trailer":
        block[-4:] = struct.pack(e + "I", len(block) + 4)
    elif kind == "misaligned length":
        block[4:8] = struct.pack(e + "I", len(block) - 2)
    elif kind == "too short":
        block[4:8] = struct.pack(e + "I", 20)
    elif kind == "unknown interface":
        block[8:12] = struct.pack(e + "I", 9)
    return bytes(block)


#: interruptions that end the reading with a warning (the others are read on)
STOPPING_KINDS = (
    "lying length",
    "lying caplen",
    "bad trailer",
    "misaligned length",
    "too short",
    "unknown interface",
)
KINDS = [
    "new interface",
    "name resolution",
    "statistics",
    "unknown block",
    "simple packet",
    "obsolete packet",
    "new section",
    *STOPPING_KINDS,
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", [40, 3100, 5990])
def test_whatever_interrupts_the_run_reads_as_the_plain_walk_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: int
) -> None:
    blocks = epbs(np.random.default_rng(where), 6000)
    blocks.insert(where, _interruption(kind, "<"))
    path = tmp_path / "interrupted.pcapng"
    path.write_bytes(header() + b"".join(blocks))
    fast, plain, _calls = both_ways(path, monkeypatch)
    assert fast == plain
    stops = kind in STOPPING_KINDS
    if stops:
        assert len(fast["packets"]) == where and len(fast["warnings"]) == 1
        assert f"frame {where + 1} " in fast["warnings"][0]
    else:
        assert len(fast["packets"]) >= 6000


def test_guesses_are_checked() -> None:
    """Decoy headers in payloads may make the lockstep walk give up, never answer wrong."""
    for seed in range(4):
        content = b"".join(epbs(np.random.default_rng(seed), 5000))
        words = np.frombuffer(content, dtype="<u4")
        stop = len(words) - (pcapng.MAX_RECORD_BYTES + 64 * 1024) // 4
        plain = [0]
        while plain[-1] < stop:
            plain.append(plain[-1] + int(words[plain[-1] + 1]) // 4)
        result = pcapng.chain_epbs(words, stop)
        if result is not None:
            np.testing.assert_array_equal(result[0], plain[:-1])
            assert result[1] == plain[-1]


@pytest.mark.parametrize("size", [0, 1, 4, 8])
def test_a_short_simple_packet_block_ends_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    blocks = epbs(np.random.default_rng(size), 3000)
    path = tmp_path / "spb-last.pcapng"
    path.write_bytes(header() + b"".join(blocks) + craft.spb(b"\x01" * size))
    fast, plain, _calls = both_ways(path, monkeypatch)
    assert fast == plain
    assert len(fast["packets"]) == 3001 and fast["packets"][-1] == b"\x01" * size
    assert fast["ts"][-1] == fast["ts"][-2]  # no timestamp of its own: the previous packet's
