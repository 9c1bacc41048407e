"""The synthetic capture generator: readable by tshark and tcpdump, valid checksums, determinism,
ground truth that agrees with tshark's own analysis, and the capture-point transformations."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from netdiag.synth import (
    LAYOUTS,
    CapturePoint,
    generate_traffic,
    observe,
    write_capture,
    write_traffic,
)
from netdiag.synth import packets as pk
from netdiag.synth.scenario import PCAPNG_INTERFACES

TSHARK = shutil.which("tshark")
TCPDUMP = shutil.which("tcpdump")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump not installed")

N_PACKETS = 3000
SEED = 11
SEVERITY_ERROR = 0x00800000  # tshark's PI_ERROR; malformed packets report at this level too
CHECKSUM_PREFS = [
    "-o", "tcp.check_checksum:TRUE",
    "-o", "udp.check_checksum:TRUE",
    "-o", "ip.check_checksum:TRUE",
]  # fmt: skip


def _suffix(layout: str) -> str:
    return ".pcapng" if layout.startswith("pcapng") else ".pcap"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    out = tmp_path_factory.mktemp("synth")
    made = {}
    for layout in LAYOUTS:
        path = out / f"syn-{layout}{_suffix(layout)}"
        made[layout] = (path, write_capture(path, layout, N_PACKETS, SEED))
    return made


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tshark_fields(path: Path, fields: list[str], *extra: str) -> list[list[str]]:
    cmd = [TSHARK, "-n", "-r", str(path), *CHECKSUM_PREFS, "-T", "fields", "-E", "separator=|"]
    cmd += ["-E", "occurrence=a", *extra]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return [line.split("|") for line in res.stdout.splitlines()]


# --- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["ether", "sll2", "pcapng-mixed"])
def test_same_seed_same_bytes(tmp_path: Path, captures, layout: str) -> None:
    again = tmp_path / f"again{_suffix(layout)}"
    write_capture(again, layout, N_PACKETS, SEED)
    assert _sha256(again) == _sha256(captures[layout][0])


def test_other_seed_other_bytes(tmp_path: Path, captures) -> None:
    other = tmp_path / "other.pcap"
    write_capture(other, "ether", N_PACKETS, SEED + 1)
    assert _sha256(other) != _sha256(captures["ether"][0])


def test_epochs_concatenate_in_time_order(tmp_path: Path) -> None:
    """A capture written in several epochs has increasing timestamps and adds up the truth."""
    path = tmp_path / "epochs.pcap"
    summary = write_capture(path, "sll2", 6000, SEED, small=True, epoch_packets=2000)
    one = generate_traffic(2000, SEED, small=True, epoch=1)
    assert summary["tcp_connections"] == 3 * len(one.conns["state"])
    if TSHARK:
        rows = _tshark_fields(path, ["frame.time_epoch"])
        ts = np.array([float(r[0]) for r in rows])
        assert len(ts) == summary["packets"]
        assert np.all(np.diff(ts) >= 0)


# --- tshark and tcpdump read what we write --------------------------------------------------------


@needs_tshark
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_tshark_reads_without_errors_and_checksums_are_valid(captures, layout: str) -> None:
    path, summary = captures[layout]
    fields = [
        "frame.number",
        "_ws.expert.severity",
        "ip.checksum.status",
        "tcp.checksum.status",
        "udp.checksum.status",
        "icmp.checksum.status",
        "icmpv6.checksum.status",
        "ip.proto",
        "ipv6.nxt",
    ]
    rows = _tshark_fields(path, fields)
    assert len(rows) == summary["packets"]
    errors = [r for r in rows if any(int(s) >= SEVERITY_ERROR for s in r[1].split(",") if s)]
    assert errors == []
    status = Counter()
    for r in rows:
        for name, col in zip(("ip", "tcp", "udp", "icmp", "icmpv6"), r[2:7], strict=True):
            for s in col.split(","):
                status[name, s] += 1
    # 0 = bad, 1 = good, 2 = unverified
    assert not [k for k in status if k[1] == "0"]
    kinds = {k: v for k, v in summary.items() if k.startswith("kind_")}
    n_tcp = sum(v for k, v in kinds.items() if k.startswith("kind_tcp"))
    n_udp = sum(
        kinds[f"kind_{k}"]
        for k in ("dns4_query", "dns4_reply", "dns6_query", "dns6_reply", "udp4_probe")
    )
    n_te = kinds["kind_icmp4_te_udp"] + kinds["kind_icmp4_te_tcp"]
    n_v4 = (
        summary["packets"]
        - kinds["kind_arp"]
        - sum(
            kinds[f"kind_{k}"]
            for k in ("tcp6_syn", "tcp6_ts", "tcp6_plain", "dns6_query", "dns6_reply", "icmp6_echo")
        )
    )
    assert status["tcp", "1"] == n_tcp
    assert status["udp", "1"] == n_udp
    assert status["udp", "2"] == kinds["kind_icmp4_te_udp"]  # quoted: only 8 bytes, unverifiable
    assert status["ip", "1"] == n_v4 + n_te  # outer headers and the quoted ones
    assert status["icmp", "1"] == kinds["kind_icmp4_echo"] + n_te
    assert status["icmpv6", "1"] == kinds["kind_icmp6_echo"]


@needs_tcpdump
@pytest.mark.parametrize("layout", [la for la in LAYOUTS if la != "pcapng-mixed"])
def test_tcpdump_reads_every_packet(captures, layout: str) -> None:
    path, summary = captures[layout]
    res = subprocess.run(
        [TCPDUMP, "-nn", "-v", "-r", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    lines = re.findall(r"^\d\d:\d\d:\d\d\.\d+ ", res.stdout, flags=re.MULTILINE)
    assert len(lines) == summary["packets"]
    assert not re.search(r"bad cksum|incorrect", res.stdout)
    # "[|tcp]": the 8 quoted TCP bytes of an ICMP time exceeded are, rightly, a short header
    assert res.stdout.count("[|") == res.stdout.count("[|tcp]") == summary["kind_icmp4_te_tcp"]


@needs_tcpdump
def test_tcpdump_refuses_mixed_link_types(captures) -> None:
    """libpcap reads a pcapng file only if all its interfaces share one link type: the mixed
    layout is for netdiag and tshark (this pins that known limitation, not a generator bug)."""
    path, _ = captures["pcapng-mixed"]
    res = subprocess.run(
        [TCPDUMP, "-nn", "-r", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "different from the type of the first interface" in res.stderr


@needs_tshark
@pytest.mark.parametrize("layout", ["ether", "ether-ns-be", "sll2", "pcapng-be", "pcapng-mixed"])
def test_timestamps_and_lengths_are_the_plans(captures, layout: str) -> None:
    """Every record's timestamp (at the file's resolution) and length are the planned ones."""
    path, _ = captures[layout]
    traffic = generate_traffic(N_PACKETS, SEED)
    point_layout, opts = LAYOUTS[layout]
    plan = observe(traffic, CapturePoint(point_layout))
    rows = _tshark_fields(path, ["frame.time_epoch", "frame.len"])
    sec_frac = [r[0].split(".") for r in rows]
    got_ns = np.array([int(a) * 10**9 + int(b.ljust(9, "0")) for a, b in sec_frac])
    want_ns = plan["ts_ns"]
    if point_layout in PCAPNG_INTERFACES:
        res = np.array([spec[3] for spec in PCAPNG_INTERFACES[point_layout]])[plan["iface"]]
        unit = 10 ** (9 - res)
    else:
        unit = np.where(opts.get("nanosecond", False), 1, 1000)
    assert np.array_equal(got_ns, want_ns // unit * unit)
    assert np.array_equal(np.array([int(r[1]) for r in rows]), pk.frame_lengths(plan))


# --- ground truth against tshark's analysis -------------------------------------------------------


@needs_tshark
def test_truth_matches_tshark_conversations_and_retransmissions(captures) -> None:
    path, summary = captures["ether"]
    traffic = generate_traffic(N_PACKETS, SEED)
    truth = traffic.conns_frame()
    assert summary["tcp_connections"] == len(truth)
    rows = _tshark_fields(
        path,
        ["tcp.stream", "tcp.analysis.retransmission", "ip.src", "ipv6.src", "tcp.srcport"],
        "-Y", "tcp && !icmp",
    )  # fmt: skip
    streams = {r[0] for r in rows}
    assert len(streams) == len(truth)
    assert sum(1 for r in rows if r[1]) == summary["tcp_retransmissions"]
    per_stream = Counter(r[0] for r in rows)
    assert sorted(per_stream.values()) == sorted((truth.orig_pkts + truth.resp_pkts).tolist())
    # orig side as tshark sees it: the source of each stream's first packet
    first = {}
    for r in rows:
        first.setdefault(r[0], (r[2] or r[3], int(r[4])))
    assert sorted(first.values()) == sorted(zip(truth.orig_h, truth.orig_p.tolist(), strict=True))


@needs_tshark
def test_syn_options_and_zeek_states_as_tshark_sees_them(captures) -> None:
    path, summary = captures["ether"]
    rows = _tshark_fields(
        path,
        ["tcp.stream", "tcp.flags", "tcp.options.mss_val", "tcp.options.wscale.shift",
         "tcp.options.sack_perm", "tcp.options.timestamp.tsval"],
        "-Y", "tcp && !icmp",
    )  # fmt: skip
    by_stream: dict[str, list[int]] = {}
    for r in rows:
        flags = int(r[1], 16)
        by_stream.setdefault(r[0], []).append(flags)
        if flags & 0x002:
            assert r[2] in ("1460", "1440") and r[3] == "7" and r[4] and r[5]
    states = Counter()
    for flags in by_stream.values():
        answered = any(f & 0x012 == 0x012 for f in flags)
        if not answered:
            states["REJ" if any(f & 0x004 for f in flags) else "S0"] += 1
        elif any(f & 0x004 for f in flags):
            states["RST"] += 1
        else:
            states["SF"] += 1
    assert states["SF"] == summary["conn_state_SF"]
    assert states["RST"] == summary["conn_state_RSTO"] + summary["conn_state_RSTR"]
    assert states["S0"] == summary["conn_state_S0"]
    assert states["REJ"] == summary["conn_state_REJ"]


@needs_tshark
def test_pcapng_interfaces_resolutions_and_comments(captures) -> None:
    path, summary = captures["pcapng-mixed"]
    rows = _tshark_fields(
        path, ["frame.interface_name", "frame.time_epoch", "frame.comment", "sll.pkttype"]
    )
    names = Counter(r[0] for r in rows)
    assert set(names) == {spec[1] for spec in PCAPNG_INTERFACES["pcapng-mixed"]}
    assert all(r[1].endswith("000") for r in rows if r[0] == "eth0")  # microseconds
    assert any(not r[1].endswith("000") for r in rows if r[0] == "eth1")  # nanoseconds
    assert all(r[3] for r in rows if r[0] == "any") and not any(r[3] for r in rows if r[0] != "any")
    comments = Counter(r[2] for r in rows if r[2])
    traffic = generate_traffic(N_PACKETS, SEED)
    assert comments["synthetic: retransmitted segment"] == traffic.conns["retrans_data"].sum()
    assert comments["synthetic: connection refused"] == summary["conn_state_REJ"]


@needs_tshark
def test_icmp_time_exceeded_quotes_the_probe(captures) -> None:
    path, summary = captures["ether"]
    rows = _tshark_fields(
        path, ["ip.src", "ip.dst", "ip.ttl", "udp.dstport", "tcp.dstport"], "-Y", "icmp.type == 11"
    )
    assert len(rows) == summary["kind_icmp4_te_udp"] + summary["kind_icmp4_te_tcp"]
    for src, dst, ttl, udp_port, tcp_port in rows:
        assert dst.split(",")[0] == src.split(",")[1]  # sent back to the probe's source
        assert ttl.split(",")[1] == "1"  # the quoted header as the router received it
        assert udp_port.startswith("334") or tcp_port


# --- capture points -------------------------------------------------------------------------------


def test_capture_points_nat_offset_and_loss() -> None:
    traffic = generate_traffic(N_PACKETS, SEED)
    near = observe(traffic, CapturePoint("ether"))
    vip = int(traffic.conns["server"][0])
    rip = int(np.flatnonzero(np.array(traffic.hosts.name) == "target")[0])
    far = observe(
        traffic,
        CapturePoint("sll2", clock_offset_ns=2_500_000, nat={vip: rip}, loss=0.01, loss_seed=3),
    )
    lost = len(near["kind"]) - len(far["kind"])
    assert 0 < lost < 0.03 * len(near["kind"])
    assert np.count_nonzero(far["src"] == vip) == 0 and np.count_nonzero(near["src"] == vip) > 0
    assert np.all(np.isin(far["ts_ns"] - 2_500_000, near["ts_ns"]))
    assert set(np.unique(far["link"]).tolist()) == {pk.LINK_SLL2}


@needs_tshark
def test_two_capture_points_of_one_traffic(tmp_path: Path) -> None:
    traffic = generate_traffic(N_PACKETS, SEED)
    vip = int(traffic.conns["server"][0])
    rip = int(np.flatnonzero(np.array(traffic.hosts.name) == "target")[0])
    near, far = tmp_path / "near.pcap", tmp_path / "far.pcap"
    n_near = write_traffic(near, traffic, "ether")
    point = CapturePoint("sll2", clock_offset_ns=1_000_000_000, nat={vip: rip}, loss=0.01)
    n_far = write_traffic(far, traffic, "sll2", point)
    assert n_near == traffic.packets > n_far
    vip_text = traffic.hosts.v4_text(np.array([vip]))[0]
    near_rows = _tshark_fields(near, ["frame.time_epoch", "ip.src"])
    far_rows = _tshark_fields(far, ["frame.time_epoch", "ip.src"])
    assert (len(near_rows), len(far_rows)) == (n_near, n_far)
    assert any(r[1] == vip_text for r in near_rows)
    assert not any(r[1] == vip_text for r in far_rows)
    assert float(far_rows[0][0]) - float(near_rows[0][0]) == pytest.approx(1.0, abs=0.5)


def test_truth_summary_adds_up() -> None:
    traffic = generate_traffic(20_000, SEED)
    s = traffic.summary()
    assert s["packets"] == sum(v for k, v in s.items() if k.startswith("kind_"))
    assert s["tcp_connections"] == sum(
        s[f"conn_state_{c}"] for c in ("SF", "RSTO", "RSTR", "S0", "REJ")
    )
    c = traffic.conns
    tcp_rows = traffic.plan["conn"] >= 0
    tcp_rows &= traffic.plan["kind"] <= pk.TCP6_PLAIN
    assert int(tcp_rows.sum()) == int((c["orig_pkts"] + c["resp_pkts"]).sum())
    assert np.all(np.diff(traffic.plan["ts_ns"]) >= 0)
