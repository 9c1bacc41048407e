"""Flows of real capture files read by netdiag.capture: Zeek baselines, Community ID, tshark streams.

Expected Zeek values were read from the conn.log / out baselines of zeek/zeek's btest suite for
the same traces (paths given per case); the traces are in the shared corpus under the zk__ prefix.
"""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import communityid
import numpy as np
import pandas as pd
import pytest

from netdiag.addressbook import AddressBook
from netdiag.errors import NetdiagError
from netdiag.flows import build_flows

capture = pytest.importorskip("netdiag.capture")

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "files"
CID = communityid.CommunityID(seed=0)


def read(path: Path, chunk_bytes: int | None = None) -> tuple[list[dict], pd.DataFrame]:
    book = AddressBook()
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    chunks = list(capture.iter_chunks(str(path), book, **kwargs))
    return chunks, build_flows(chunks, book)


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not found")
    return path


# (file, conn_state, history without Zeek's 'g' (content gap, not produced here),
#  orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes, orig_bytes or None)
ZEEK_BASELINES = [
    # testing/btest/Baseline/core.tcp.missing-syn/conn.log
    ("zk__tcp__missing-syn.pcap", "SF", "^hADdFaf", 11, 670, 10, 9945, 98),
    # testing/btest/Baseline/core.tcp.miss-end-data/conn.log (history ShADafgF)
    ("zk__tcp__miss_end_data.pcap", "SF", "ShADafF", 5, 750, 4, 172, 538),
    # testing/btest/Baseline/scripts.base.protocols.conn.conn_state-RST-behavior/out
    ("zk__tcp__single-rst.pcap", "OTH", "R", None, None, None, None, None),
    ("zk__tcp__syn-then-ack-then-rst.pcap", "RSTOS0", "SaR", None, None, None, None, None),
    ("zk__tcp__syn-then-stuff-then-rst.pcap", "OTH", "SaFR", None, None, None, None, None),
    # testing/btest/Baseline/core.tcp.fin-retransmit/out: orig CLOSED, resp RESET -> RSTR
    ("zk__tcp__fin_retransmission.pcap", "RSTR", None, 3, 156, 2, 92, 0),
]


@pytest.mark.parametrize("case", ZEEK_BASELINES, ids=[c[0] for c in ZEEK_BASELINES])
def test_matches_zeek_baseline(case: tuple) -> None:
    name, state, history, opk, oipb, rpk, ripb, obytes = case
    _, flows = read(corpus_file(name))
    assert len(flows) == 1
    row = flows.iloc[0]
    assert row.conn_state == state
    if history is not None:
        assert row.history == history
    if opk is not None:
        assert (row.orig_pkts, row.orig_ip_bytes, row.resp_pkts, row.resp_ip_bytes) == (
            opk,
            oipb,
            rpk,
            ripb,
        )
    if obytes is not None:
        assert row.orig_bytes == obytes


def _reference_id(chunk: dict, i: int, book_texts: list[str]) -> str | None:
    """The package's Community ID for packet i; None for an ICMP header too short to read."""
    proto = int(chunk["ip_proto"][i])
    if proto in (1, 58) and chunk["icmp_type"][i] < 0:
        return None
    src = book_texts[chunk["ip_src"][i]]
    dst = book_texts[chunk["ip_dst"][i]]
    if proto == 1:
        tpl = communityid.FlowTuple.make_icmp(
            src, dst, chunk["icmp_type"][i], chunk["icmp_code"][i]
        )
    elif proto == 58:
        tpl = communityid.FlowTuple.make_icmp6(
            src, dst, chunk["icmp_type"][i], chunk["icmp_code"][i]
        )
    elif proto in (6, 17, 132):
        tpl = communityid.FlowTuple(proto, src, dst, int(chunk["sport"][i]), int(chunk["dport"][i]))
    else:
        tpl = communityid.FlowTuple.make_ip(src, dst, proto)
    return str(CID.calc(tpl))


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []


@pytest.mark.slow
def test_corpus_flows_consistent_with_packets_and_community_id() -> None:
    files = _corpus_files()
    if not files:
        pytest.skip("shared corpus not found")
    n_flows = checked = 0
    for path in files:
        book = AddressBook()
        try:
            chunks = list(capture.iter_chunks(str(path), book))
        except NetdiagError:
            continue
        flows = build_flows(chunks, book)
        if not chunks:
            continue
        n_flows += len(flows)
        fid = np.concatenate([c["flow_id"] for c in chunks])
        fdir = np.concatenate([c["flow_dir"] for c in chunks])
        idx = np.concatenate([c["flow_pkt_index"] for c in chunks])
        src = np.concatenate([c["ip_src"] for c in chunks])
        has = fid >= 0
        total = (flows.orig_pkts + flows.resp_pkts).to_numpy()
        assert np.array_equal(np.bincount(fid[has], minlength=len(flows)), total), path.name
        orig_codes = flows.orig_h.cat.codes.to_numpy()
        resp_codes = flows.resp_h.cat.codes.to_numpy()
        expected_src = np.where(fdir[has] == 0, orig_codes[fid[has]], resp_codes[fid[has]])
        assert np.array_equal(src[has], expected_src), path.name
        rank = pd.Series(fid[has]).groupby(fid[has]).cumcount().to_numpy()
        assert np.array_equal(idx[has], rank), path.name
        # Community ID of each flow equals the package's for the flow's first packet
        texts = book.ip_texts
        for chunk in chunks:
            for i in np.flatnonzero(chunk["flow_pkt_index"] == 0).tolist():
                expected = _reference_id(chunk, i, texts)
                if expected is None:
                    continue
                checked += 1
                assert flows.community_id[chunk["flow_id"][i]] == expected, (path.name, i)
    assert n_flows > 300 and checked > 0.9 * n_flows


@pytest.mark.parametrize("name", ["zk__nmap-vsn.pcap", "pp__sll.pcap", "zk__pppoe-over-qinq.pcap"])
def test_small_reader_chunks_give_the_same_flows(name: str) -> None:
    path = corpus_file(name)
    chunks, whole = read(path)
    small_chunks, small = read(path, chunk_bytes=2048)
    assert len(small_chunks) > len(chunks)
    # address codes depend on the order the book met them: compare the addresses as text
    for col in ("orig_h", "resp_h"):
        whole[col] = whole[col].astype(str)
        small[col] = small[col].astype(str)
    pd.testing.assert_frame_equal(whole, small)


TSHARK_FILES = [
    "zk__nmap-vsn.pcap",
    "pp__sll.pcap",
    "zk__tcp__missing-syn.pcap",
    "td__ssh.pcap",
    "sv__tcp-async-01__input.pcap",
    "sv__firewall__tcp-session-syn-flood-drop-precedence__input.pcap",
]


@pytest.mark.tshark
@pytest.mark.parametrize("name", TSHARK_FILES)
def test_each_tshark_stream_is_within_one_flow(name: str, tshark: str) -> None:
    """tshark's tcp.stream/udp.stream index (per packet, no reassembly) never spans two flows and
    every packet it puts in a stream has a flow (tshark may split a reused 5-tuple, we do not)."""
    path = corpus_file(name)
    chunks, flows = read(path)
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-n",
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
            "-e",
            "udp.stream",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    frame = np.concatenate([c["frame"] for c in chunks])
    fid = np.concatenate([c["flow_id"] for c in chunks])
    proto = np.concatenate([c["ip_proto"] for c in chunks])
    tunnel = np.concatenate([c["tunnel"] for c in chunks])
    row_of = {int(f): i for i, f in enumerate(frame.tolist())}
    streams: dict[tuple[int, int], set[int]] = {}
    for line in out.splitlines():
        fields = line.split("\t")
        i = row_of.get(int(fields[0]))
        if i is None or tunnel[i] != 0:
            continue
        for col, pr in ((1, 6), (2, 17)):
            if fields[col] and proto[i] == pr:  # outer protocol (not an ICMP quote)
                streams.setdefault((pr, int(fields[col])), set()).add(int(fid[i]))
    assert streams
    assert all(len(v) == 1 and -1 not in v for v in streams.values())
    assert len(flows) >= len({next(iter(v)) for v in streams.values()})


# --- a capture written here: a UDP probe and the ICMP time exceeded that quotes it ------------


def _ip4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0x1234,
        0,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + payload


def _udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    eth = bytes.fromhex("0200000000020200000000010800")
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, ip in enumerate(frames):
            data = eth + ip
            f.write(struct.pack("<IIII", 1_700_000_000, i * 1000, len(data), len(data)))
            f.write(data)


def test_handmade_capture_traceroute_and_handshake(tmp_path: Path) -> None:
    c, s, r = "192.0.2.1", "198.51.100.7", "192.0.2.254"
    probe = _ip4(c, s, 17, _udp(33434, 33435, b"x" * 12), ttl=1)
    frames = [
        probe,
        _ip4(r, c, 1, struct.pack("!BBHI", 11, 0, 0, 0) + probe[:28]),
        _ip4(c, s, 6, _tcp(40000, 443, 4_294_967_000, 0, 0x02)),
        _ip4(s, c, 6, _tcp(443, 40000, 77, 4_294_967_001, 0x12)),
        _ip4(c, s, 6, _tcp(40000, 443, 4_294_967_001, 78, 0x10)),
        _ip4(c, s, 6, _tcp(40000, 443, 4_294_967_001, 78, 0x14)),
    ]
    path = tmp_path / "probe.pcap"
    _write_pcap(path, frames)
    chunks, flows = read(path)
    assert chunks[0]["icmp_err_flow_id"].tolist() == [-1, 0, -1, -1, -1, -1]
    assert flows.proto.tolist() == ["udp", "icmp", "tcp"]
    assert flows.first_icmp_error[0] == "time-exceeded(11/0)"
    tcp = flows.iloc[2]
    assert (tcp.conn_state, tcp.history) == ("RSTO", "ShAR")
    assert (tcp.syn_isn_orig, tcp.syn_isn_resp) == (4_294_967_000, 77)
    assert tcp.rtt_ns == 2_000_000
    if shutil.which("tshark"):
        ids = subprocess.run(
            ["tshark", "-r", str(path), "-T", "fields", "-e", "udp.stream"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ids.returncode == 0


@pytest.mark.tshark
@pytest.mark.parametrize(
    "name", ["td__ssh.pcap", "zk__nmap-vsn.pcap", "zk__tls__openjdk-25.0.2-zeek.org.pcap"]
)
def test_handshake_rtt_equals_tshark_initial_rtt(name: str, tshark: str) -> None:
    """rtt_ns (first SYN -> ACK of the SYN-ACK) is tshark's tcp.analysis.initial_rtt wherever
    the handshake completed (tshark also reports one on a RST answer; we do not)."""
    path = corpus_file(name)
    chunks, flows = read(path)
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-n",
            "-Y",
            "tcp.analysis.initial_rtt",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "frame.number",
            "-e",
            "tcp.analysis.initial_rtt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    frame = np.concatenate([c["frame"] for c in chunks])
    fid = np.concatenate([c["flow_id"] for c in chunks])
    flow_of_frame = dict(zip(frame.tolist(), fid.tolist(), strict=True))
    tshark_rtt: dict[int, float] = {}
    for line in out.splitlines():
        number, rtt = line.split("\t")
        tshark_rtt.setdefault(flow_of_frame[int(number)], float(rtt))
    complete = flows[flows.rtt_ns > 0]
    assert len(complete) > 0
    for row in complete.itertuples():
        assert row.rtt_ns == pytest.approx(tshark_rtt[row.flow_id] * 1e9, abs=1000)
