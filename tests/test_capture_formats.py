"""Capture container formats: classic pcap and pcapng variants, compression, exact timestamps.

Every file is crafted byte by byte (tests/fixtures/capture/capture_craft.py); where tshark is
installed the same files are also read by tshark and compared record by record.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from craft_kit import craft
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.capture.formats import READERS, sniff_format
from netdiag.capture.formats.pcapng import Timescale
from netdiag.capture.reader import open_capture
from netdiag.capture.records import CaptureInfo
from netdiag.errors import CaptureError

NS = 1_000_000_000


@dataclass
class Records:
    """Every record of a capture, joined across batches, with the packet bytes."""

    info: CaptureInfo
    ts_ns: list[int] = field(default_factory=list)
    caplen: list[int] = field(default_factory=list)
    wirelen: list[int] = field(default_factory=list)
    iface: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    comments: dict[int, str] = field(default_factory=dict)
    batches: int = 0


def read_all(path: Path, chunk_bytes: int = 16 << 20) -> Records:
    """Read a capture, checking the RecordBatch contract on every batch."""
    with open_capture(path) as cap:
        out = Records(cap.info)
        next_frame = 1
        for batch in cap.batches(chunk_bytes=chunk_bytes):
            assert batch.data.dtype == np.uint8
            for name in ("offsets", "caplen", "wirelen", "ts_ns"):
                assert getattr(batch, name).dtype == np.int64, name
            assert batch.iface.dtype == np.int16
            assert batch.first_frame == next_frame
            assert len(batch) > 0
            assert np.all(batch.offsets >= 0)
            assert np.all(batch.offsets + batch.caplen <= len(batch.data))
            assert np.all(batch.iface < len(cap.info.interfaces))
            for frame in batch.comments:
                assert batch.first_frame <= frame < batch.first_frame + len(batch)
            next_frame += len(batch)
            out.batches += 1
            out.ts_ns += batch.ts_ns.tolist()
            out.caplen += batch.caplen.tolist()
            out.wirelen += batch.wirelen.tolist()
            out.iface += batch.iface.tolist()
            out.data += [
                bytes(batch.data[o : o + c])
                for o, c in zip(batch.offsets, batch.caplen, strict=True)
            ]
            out.comments.update(batch.comments)
        assert cap.info.packets == next_frame - 1
    return out


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def tshark_records(path: Path) -> list[tuple[int, int, int, int]]:
    """(ts_ns, wirelen, caplen, section-local interface) per frame, as tshark reads the file."""
    fields = ["frame.time_epoch", "frame.len", "frame.cap_len", "frame.interface_id"]
    cmd = ["tshark", "-r", str(path), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        epoch, wire, cap, iface = line.split("\t")
        # frame.time_epoch as text "sec.nnnnnnnnn": parsed exactly, never through a float
        sec, _, frac = epoch.partition(".")
        ts = int(sec) * NS + int((frac + "000000000")[:9])
        rows.append((ts, int(wire), int(cap), int(iface or 0)))
    return rows


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

PACKETS = [
    (1_700_000_000 + i, 1000 * i + 7, craft.frame_bytes(60 + 37 * i, i), 60 + 40 * i)
    for i in range(5)
]


# --- classic pcap --------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nanos: bool) -> None:
    path = write(tmp_path, "f.cap", craft.pcap_file(PACKETS, endian, nanos))
    rec = read_all(path)
    info = rec.info
    assert info.format == "pcap"
    assert info.compression == ""
    assert info.byte_order == ("little" if endian == "<" else "big")
    assert info.ts_resolution == ("ns" if nanos else "us")
    assert info.version == "2.4"
    assert info.file_size == path.stat().st_size
    assert len(info.interfaces) == 1
    assert info.interfaces[0].linktype == 1
    assert info.interfaces[0].snaplen == 65535
    assert info.interfaces[0].tsresol_ns == (1.0 if nanos else 1000.0)
    unit = 1 if nanos else 1000
    assert rec.ts_ns == [s * NS + f * unit for s, f, _, _ in PACKETS]
    assert rec.data == [d for _, _, d, _ in PACKETS]
    assert rec.caplen == [len(d) for _, _, d, _ in PACKETS]
    assert rec.wirelen == [w for *_, w in PACKETS]
    assert rec.iface == [0] * 5
    assert info.packets == 5
    assert info.truncated_frames == sum(len(d) < w for _, _, d, w in PACKETS)
    assert info.first_ts_ns == rec.ts_ns[0]
    assert info.last_ts_ns == rec.ts_ns[-1]
    assert info.warnings == []


@pytest.mark.parametrize(
    ("linkfield", "linktype", "fcs_len"),
    [
        (1, 1, -1),
        (1 | 0x04000000 | (2 << 28), 1, 4),  # FCS length known: 2 16-bit units
        (105 | 0x04000000 | (1 << 28), 105, 2),
        (1 | 0x04000000, 1, 0),  # known to have no FCS
        (0x30000001, 1, -1),  # FCS bits without the "present" bit: unknown (seen in the wild)
    ],
)
def test_pcap_linktype_fcs_bits(
    tmp_path: Path, linkfield: int, linktype: int, fcs_len: int
) -> None:
    path = write(tmp_path, "f.pcap", craft.pcap_file(PACKETS[:1], linkfield=linkfield))
    rec = read_all(path)
    assert rec.info.interfaces[0].linktype == linktype
    assert rec.info.interfaces[0].fcs_len == fcs_len
    assert len(rec.ts_ns) == 1


def test_pcap_kuznetzov_variant(tmp_path: Path) -> None:
    extra = b"\x02\x00\x00\x00\x08\x00\x00\x00"  # ifindex, protocol, pkt_type, padding
    content = craft.pcap_header(magic=craft.PCAP_MAGIC_KUZNETZOV) + b"".join(
        craft.pcap_record(s, f, d, wirelen=w, extra=extra) for s, f, d, w in PACKETS
    )
    rec = read_all(write(tmp_path, "k.pcap", content))
    assert rec.data == [d for _, _, d, _ in PACKETS]
    assert rec.ts_ns == [s * NS + f * 1000 for s, f, _, _ in PACKETS]


def test_pcap_unsupported_version(tmp_path: Path) -> None:
    path = write(tmp_path, "v.pcap", craft.pcap_header(version=(1, 0)) + b"\x00" * 16)
    with pytest.raises(CaptureError, match=r"unsupported pcap version 1\.0") as err:
        open_capture(path)
    assert err.value.path == str(path)


def test_pcap_header_only_is_an_empty_capture(tmp_path: Path) -> None:
    rec = read_all(write(tmp_path, "h.pcap", craft.pcap_header()))
    assert rec.info.packets == 0
    assert rec.batches == 0
    assert rec.info.first_ts_ns is None
    assert rec.info.warnings == []


def test_pcap_small_chunks_carry_records_over(tmp_path: Path) -> None:
    # records of up to 3000 bytes with 4 KiB chunks: most records straddle a chunk boundary
    rng = np.random.default_rng(3)
    packets = [
        (1_600_000_000 + i, i, craft.frame_bytes(int(n), i), int(n))
        for i, n in enumerate(rng.integers(14, 3000, size=200))
    ]
    path = write(tmp_path, "s.pcap", craft.pcap_file(packets))
    whole = read_all(path)
    small = read_all(path, chunk_bytes=4096)
    assert small.batches > 20
    assert small.data == whole.data == [d for _, _, d, _ in packets]
    assert small.ts_ns == whole.ts_ns
    assert small.info.packets == 200


def test_pcap_record_bigger_than_a_chunk(tmp_path: Path) -> None:
    big = craft.frame_bytes(100_000, 1)
    packets = [
        (1, 0, craft.frame_bytes(60), 60),
        (2, 0, big, len(big)),
        (3, 0, craft.frame_bytes(80), 80),
    ]
    rec = read_all(write(tmp_path, "b.pcap", craft.pcap_file(packets)), chunk_bytes=4096)
    assert rec.data == [d for _, _, d, _ in packets]
    assert rec.info.warnings == []


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_matches_tshark(tmp_path: Path, endian: str, nanos: bool) -> None:
    path = write(tmp_path, "t.pcap", craft.pcap_file(PACKETS, endian, nanos))
    rec = read_all(path)
    mine = list(zip(rec.ts_ns, rec.wirelen, rec.caplen, rec.iface, strict=True))
    assert mine == tshark_records(path)


# --- pcapng --------------------------------------------------------------------------------------


def multi_section_pcapng() -> tuple[bytes, dict]:
    """Three sections (little, big, little endian); interfaces with different link types,
    resolutions and offsets; EPB, SPB and obsolete PB; blocks to skip; comments."""
    d = [craft.frame_bytes(60 + 10 * i, i) for i in range(9)]
    t0 = 1_700_000_000
    parts = [
        craft.shb("<", comments=("section zero", "second line")),
        craft.idb(1, 0, "<", name="eth0", description="first NIC"),  # default tsresol: us
        craft.nrb("<"),
        craft.idb(113, 96, "<", name="any", tsresol=9, fcslen=4),  # ns, SLL
        craft.epb(0, t0 * 10**6 + 1, d[0], "<", comments=("frame one",)),
        craft.epb(1, t0 * NS + 123_456_789, d[1], "<", wirelen=200, flags=1),
        craft.isb(0, "<"),
        craft.raw_block(craft.CUSTOM_COPY, b"\x00\x00\x7e\x8f" + b"opaque", "<"),
        craft.spb(d[2], "<", wirelen=90),  # interface 0 of section 0, no timestamp
        # section 1, big endian: interface ids start again at 0
        craft.shb(">", comments=("section one",)),
        craft.raw_block(craft.DSB, b"\x00" * 12, ">"),  # decryption secrets
        craft.idb(1, 0, ">", name="eth1", tsresol=0x80 | 10, tsoffset=-3600),  # 2^-10 s
        craft.idb(101, 0, ">", name="raw", tsresol=3),  # ms
        craft.epb(1, t0 * 1000 + 5, d[3], ">"),
        craft.epb(0, (t0 << 10) + 512, d[4], ">", comments=("big", "endian")),
        craft.obsolete_pb(1, t0 * 1000 + 7, d[5], ">", wirelen=1500, comments=("old",)),
        # section 2, little endian again
        craft.shb("<"),
        craft.idb(1, 0, "<", tsresol=0x80 | 32, tsoffset=86400),  # 2^-32 s
        craft.epb(0, (t0 << 32) + (1 << 31), d[6], "<"),
        craft.raw_block(0x12345678, b"unknown block type", "<"),
        craft.epb(0, (t0 << 32) + 3, d[7], "<"),
        craft.raw_block(craft.CUSTOM_NOCOPY, b"\x00\x00\x7e\x8f", "<"),
        craft.spb(d[8], "<"),
    ]
    expected = {
        "data": [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]],
        "wirelen": [
            len(d[0]),
            200,
            90,
            len(d[3]),
            len(d[4]),
            1500,
            len(d[6]),
            len(d[7]),
            len(d[8]),
        ],
        "iface": [0, 1, 0, 3, 2, 3, 4, 4, 4],
        "ts_ns": [
            t0 * NS + 1000,
            t0 * NS + 123_456_789,
            t0 * NS + 123_456_789,  # SPB: previous packet's timestamp
            t0 * NS + 5_000_000,  # ms interface, no offset
            (t0 - 3600) * NS + 500_000_000,  # 512 / 1024 s, offset -3600 s
            t0 * NS + 7_000_000,
            (t0 + 86400) * NS + 500_000_000,  # 2^31 / 2^32 s
            (t0 + 86400) * NS,  # 3 / 2^32 s = 0.698 ns, rounded down as Wireshark does
            (t0 + 86400) * NS,
        ],
        "comments": {1: "frame one", 5: "big; endian", 6: "old"},
    }
    return b"".join(parts), expected


def test_pcapng_sections_interfaces_blocks(tmp_path: Path) -> None:
    content, expected = multi_section_pcapng()
    rec = read_all(write(tmp_path, "multi.pcapng", content))
    info = rec.info
    assert info.format == "pcapng"
    assert info.byte_order == "little"
    assert info.version == "1.0"
    assert info.section_comments == ["section zero", "second line", "section one"]
    assert rec.data == expected["data"]
    assert rec.caplen == [len(x) for x in expected["data"]]
    assert rec.wirelen == expected["wirelen"]
    assert rec.iface == expected["iface"]
    assert rec.ts_ns == expected["ts_ns"]
    assert rec.comments == expected["comments"]
    ifaces = info.interfaces
    assert [i.iface_id for i in ifaces] == [0, 1, 2, 3, 4]
    assert [i.section for i in ifaces] == [0, 0, 1, 1, 2]
    assert [i.linktype for i in ifaces] == [1, 113, 1, 101, 1]
    assert [i.name for i in ifaces] == ["eth0", "any", "eth1", "raw", ""]
    assert ifaces[0].description == "first NIC"
    assert ifaces[1].snaplen == 96
    assert [i.fcs_len for i in ifaces] == [-1, 4, -1, -1, -1]
    assert [i.tsoffset_s for i in ifaces] == [0, 0, -3600, 0, 86400]
    assert ifaces[0].tsresol_ns == 1000.0
    assert ifaces[1].tsresol_ns == 1.0
    assert ifaces[2].tsresol_ns == pytest.approx(1e9 / 1024)
    assert info.ts_resolution == "us,ns,2^-10,ms,2^-32"
    assert info.packets == 9
    assert info.truncated_frames == 3
    assert len(info.warnings) == 1
    assert "simple packet blocks carry no timestamp" in info.warnings[0]
    assert "frame 3" in info.warnings[0]


def test_pcapng_same_result_in_small_chunks(tmp_path: Path) -> None:
    content, expected = multi_section_pcapng()
    # a first section of 60 EPBs, then the three sections: 4 KiB chunks end inside blocks,
    # and section headers fall inside chunks
    filler = b"".join(
        craft.epb(0, 1_700_000_000 * 10**6 + i, craft.frame_bytes(100 + 13 * i, i))
        for i in range(60)
    )
    path = write(tmp_path, "chunks.pcapng", craft.shb() + craft.idb() + filler + content)
    whole = read_all(path)
    small = read_all(path, chunk_bytes=4096)
    assert small.batches > 10
    assert small.data == whole.data
    assert small.ts_ns == whole.ts_ns
    assert small.iface == whole.iface
    assert small.comments == whole.comments
    assert small.data[60:] == expected["data"]
    assert small.ts_ns[60:] == expected["ts_ns"]
    assert small.iface[60:] == [i + 1 for i in expected["iface"]]
    assert small.comments == {60 + k: v for k, v in expected["comments"].items()}
    assert small.info.packets == 60 + 9
    assert small.info.warnings == whole.info.warnings


def test_pcapng_unsupported_major_version(tmp_path: Path) -> None:
    content = craft.shb("<", version=(2, 0)) + craft.idb() + craft.epb(0, 0, b"x" * 60)
    with pytest.raises(CaptureError, match=r"unsupported pcapng version 2\.0"):
        open_capture(write(tmp_path, "v2.pcapng", content))


def test_pcapng_later_section_with_unsupported_version_stops(tmp_path: Path) -> None:
    content = (
        craft.shb()
        + craft.idb()
        + craft.epb(0, 10**15, craft.frame_bytes(60))
        + craft.shb(version=(3, 1))
        + craft.idb()
        + craft.epb(0, 10**15, craft.frame_bytes(60))
    )
    rec = read_all(write(tmp_path, "v3.pcapng", content))
    assert len(rec.data) == 1
    assert "unsupported pcapng version 3.1" in rec.info.warnings[0]


def test_pcapng_without_interfaces_or_packets(tmp_path: Path) -> None:
    rec = read_all(write(tmp_path, "empty.pcapng", craft.shb(">")))
    assert rec.info.packets == 0
    assert rec.info.interfaces == []
    assert rec.info.byte_order == "big"


@needs_tshark
@pytest.mark.tshark
def test_pcapng_matches_tshark(tmp_path: Path) -> None:
    content, _ = multi_section_pcapng()
    # tshark gives simple packet blocks no timestamp and counts custom blocks as frames:
    # compare on the blocks both read the same way
    content = content.replace(craft.spb(craft.frame_bytes(80, 2), "<", wirelen=90), b"")
    content = content.replace(craft.spb(craft.frame_bytes(140, 8), "<"), b"")
    content = content.replace(
        craft.raw_block(craft.CUSTOM_COPY, b"\x00\x00\x7e\x8f" + b"opaque", "<"), b""
    )
    content = content.replace(craft.raw_block(craft.CUSTOM_NOCOPY, b"\x00\x00\x7e\x8f", "<"), b"")
    path = write(tmp_path, "t.pcapng", content)
    rec = read_all(path)
    section_of = [i.section for i in rec.info.interfaces]
    first_in_section = {s: section_of.index(s) for s in set(section_of)}
    local = [g - first_in_section[section_of[g]] for g in rec.iface]
    mine = list(zip(rec.ts_ns, rec.wirelen, rec.caplen, local, strict=True))
    assert len(mine) == 7
    assert mine == tshark_records(path)


# --- exact timestamps ----------------------------------------------------------------------------


def exact_ns(units: int, binary: bool, exponent: int, offset_s: int = 0) -> int:
    seconds = Fraction(units, (2 if binary else 10) ** exponent)
    scaled = seconds * NS
    return scaled.numerator // scaled.denominator + offset_s * NS  # rounded down, as Wireshark


@settings(max_examples=300, deadline=None)
@given(
    units=st.integers(0, 2**63 - 1),
    binary=st.booleans(),
    exponent=st.integers(0, 40),
    offset_s=st.integers(-(10**6), 10**6),
)
def test_timescale_is_exact(units: int, binary: bool, exponent: int, offset_s: int) -> None:
    expected = exact_ns(units, binary, exponent, offset_s)
    if not -(2**63) <= expected < 2**63:
        return  # beyond int64 nanoseconds (year 2262): not representable, nothing to compare
    got = Timescale(binary, exponent, offset_s * NS).to_ns(np.array([units], dtype=np.uint64))
    assert int(got[0]) == expected


def test_timescale_typical_values() -> None:
    units = np.array([1_700_000_000_123_456], dtype=np.uint64)
    assert Timescale(False, 6, 0).to_ns(units)[0] == 1_700_000_000_123_456_000
    assert Timescale(False, 9, 0).to_ns(units)[0] == 1_700_000_000_123_456
    assert Timescale(False, 12, 0).to_ns(np.array([1_500], dtype=np.uint64))[0] == 1  # 1.5 ns
    assert Timescale(True, 10, 0).to_ns(np.array([1], dtype=np.uint64))[0] == 976_562
    assert Timescale(False, 6, 5 * NS).to_ns(np.array([0], dtype=np.uint64))[0] == 5 * NS


# --- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", sorted(craft.COMPRESSORS))
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_compressed_captures(tmp_path: Path, compression: str, kind: str) -> None:
    if kind == "pcap":
        content = craft.pcap_file(PACKETS, ">", nanos=True)
        expected_data = [d for _, _, d, _ in PACKETS]
    else:
        content, expected = multi_section_pcapng()
        expected_data = expected["data"]
    plain = read_all(write(tmp_path, f"plain.{kind}", content))
    path = write(tmp_path, "capture.bin", craft.COMPRESSORS[compression](content))
    rec = read_all(path, chunk_bytes=4096)
    assert rec.info.compression == compression
    assert rec.info.format == kind
    assert rec.info.file_size == path.stat().st_size
    assert rec.data == expected_data
    assert rec.ts_ns == plain.ts_ns
    assert rec.comments == plain.comments
    assert rec.info.warnings == plain.info.warnings


@pytest.mark.parametrize("compression", sorted(craft.COMPRESSORS))
def test_concatenated_compressed_streams(tmp_path: Path, compression: str) -> None:
    # what `cat a.gz b.gz` or a rotating writer makes: one capture split over several streams
    content = craft.pcap_file(PACKETS)
    cut = len(craft.pcap_header()) + 30  # inside the first record
    compress = craft.COMPRESSORS[compression]
    rec = read_all(write(tmp_path, "two.bin", compress(content[:cut]) + compress(content[cut:])))
    assert rec.data == [d for _, _, d, _ in PACKETS]
    assert rec.info.warnings == []


def test_large_compressed_file_is_streamed(tmp_path: Path) -> None:
    # 8 MB of records compress to a few KB; read in 64 KiB chunks no batch holds more than that
    packet = craft.frame_bytes(1000)
    record = craft.pcap_record(1, 0, packet)
    content = craft.pcap_header() + record * 8000
    path = write(tmp_path, "big.pcap.zst", craft.COMPRESSORS["zstd"](content))
    count = 0
    with open_capture(path) as cap:
        for batch in cap.batches(chunk_bytes=64 << 10):
            assert len(batch.data) <= (64 << 10) + len(record)
            count += len(batch)
    assert count == 8000


# --- registry and sniffing -----------------------------------------------------------------------


def test_registry_and_sniffing_by_content(tmp_path: Path) -> None:
    assert set(READERS) == {"pcap", "pcapng"}
    assert sniff_format(craft.pcap_header(">")) == "pcap"
    assert sniff_format(craft.shb("<")) == "pcapng"
    assert sniff_format(b"hello world") == ""
    # the extension says nothing: a pcapng called .pcap and a pcap called .pcapng.gz
    content, _ = multi_section_pcapng()
    assert read_all(write(tmp_path, "x.pcap", content)).info.format == "pcapng"
    assert read_all(write(tmp_path, "y.pcapng.gz", craft.pcap_file(PACKETS))).info.format == "pcap"


def test_batches_is_one_pass(tmp_path: Path) -> None:
    with open_capture(write(tmp_path, "once.pcap", craft.pcap_file(PACKETS))) as cap:
        assert sum(len(b) for b in cap.batches()) == 5
        with pytest.raises(RuntimeError, match="reads the file once"):
            cap.batches()


def test_pcapng_leading_interfaces_known_at_open(tmp_path: Path) -> None:
    content, _ = multi_section_pcapng()
    with open_capture(write(tmp_path, "open.pcapng", content)) as cap:
        # the two IDBs of section 0 are separated by a name resolution block: the first is read
        # at open time, the second by the walk before the first batch that uses it
        assert [i.name for i in cap.info.interfaces] == ["eth0"]
        batches = list(cap.batches())
    assert [i.name for i in cap.info.interfaces] == ["eth0", "any", "eth1", "raw", ""]
    assert sum(len(b) for b in batches) == 9
