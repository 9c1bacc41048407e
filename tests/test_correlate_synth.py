"""Correlation of two capture points on synthetic pairs: the "What must hold" of issue 8.

Each pair is one synthetic traffic captured at a front point (sees the VIP) and a back point
(sees the real server instead), with a known clock offset, 1 % loss at each point and a hop
delay between them (see tests/synth_pairs.py). The matching must find >= 99 % of the true pairs
with no false pair, the clock offset within 1 ms, and the VIP -> real server rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from synth_pairs import (
    HOP_DELAY_NS,
    VIP_HOST,
    Pair,
    PointSpec,
    breakdown,
    make_pair,
    make_points,
    predicted_pairs,
    score,
    with_copies,
)

from netdiag.correlate import Correlation
from netdiag.engine.analysis import load_context
from netdiag.synth import Traffic, generate_traffic
from netdiag.synth import packets as pk
from netdiag.synth.scenario import SERVER_PORTS

PACKETS = 30_000
SEED = 11
MS = 1_000_000

#: the pairs: (point A, point B, hop jitter); B's offset is the clock offset to find
CASES: dict[str, tuple[PointSpec, PointSpec, int]] = {
    f"{name}-nat": (
        PointSpec(loss=0.01, loss_seed=1),
        PointSpec(clock_offset_ns=offset, nat=True, loss=0.01, loss_seed=2 + i),
        0,
    )
    for i, (name, offset) in enumerate(
        [("+2.5ms", 2_500_000), ("-350ms", -350_000_000), ("+1.7s", 1_700_000_000)]
        + [("-3.2s", -3_200_000_000)]
    )
}
#: the reference point (a `-i any` SLL2 capture) sees the real server; the other point is a
#: three-interface pcapng with a clock 0.8 s behind
CASES["sll2-nat-vs-pcapng"] = (
    PointSpec(layout="sll2", nat=True, loss=0.01, loss_seed=3),
    PointSpec(layout="pcapng", clock_offset_ns=-800_000_000, loss=0.01, loss_seed=4),
    0,
)
#: each packet 150 us plus up to 1 ms late on the hop: packets overtake each other
CASES["-1.1s-nat-jitter"] = (
    PointSpec(loss=0.01, loss_seed=1),
    PointSpec(clock_offset_ns=-1_100_000_000, nat=True, loss=0.01, loss_seed=6),
    1_000_000,
)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate_traffic(PACKETS, seed=SEED)


def correlate_pair(pair: Pair) -> Correlation:
    a, b = (str(p) for p in pair.paths)
    ctx, problems = load_context([a, b], point_names={a: "a", b: "b"})
    assert problems == []
    corr = ctx.correlation
    assert corr is not None
    assert [p.name for p in corr.points] == ["a", "b"]
    return corr


Correlated = Callable[[str], tuple[Pair, Correlation]]


@pytest.fixture(scope="module")
def correlated(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Correlated:
    """case name -> (pair, its correlation), each made once per module."""
    done: dict[str, tuple[Pair, Correlation]] = {}

    def get(case: str) -> tuple[Pair, Correlation]:
        if case not in done:
            a, b, jitter = CASES[case]
            pair = make_pair(traffic, a, b, tmp_path_factory.mktemp(case), jitter_ns=jitter)
            done[case] = (pair, correlate_pair(pair))
        return done[case]

    return get


def _endpoint(address: str, port: int | None) -> str:
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def expected_dnat(pair: Pair, traffic: Traffic) -> dict[tuple[str, str], int]:
    """(before, after) of the DNAT rows the pair must show -> connections to the VIP that have
    a packet at both points, per service (address family and port)."""
    conns = traffic.conns
    truth = pair.true_pairs()
    rows = pair.rows[0][np.array(sorted(a for a, _ in truth)) - 1]
    conn = traffic.plan["conn"][rows]
    both = np.unique(conn[conn >= 0])
    to_vip = both[conns["server"][both] == VIP_HOST]
    out: dict[tuple[str, str], int] = {}
    for c in to_vip.tolist():
        family = 1 if conns["v6"][c] else 0
        port = int(conns["dport"][c])
        key = (
            f"to {_endpoint(pair.vip[family], port)}",
            f"to {_endpoint(pair.rip[family], port)}",
        )
        out[key] = out.get(key, 0) + 1
    return out


def check_mappings(pair: Pair, traffic: Traffic, corr: Correlation) -> None:
    """Every mapping is the rewrite applied (VIP -> real server on the way in, the real server
    -> VIP on the way out, ports kept), and each service of the VIP shows its DNAT with every
    connection to it seen at both points."""
    mappings = corr.mappings
    assert len(mappings) > 0, "no mapping found"
    vips, rips = set(pair.vip), set(pair.rip)
    endpoint = re.compile(
        r"^(to|from) (?:\[(?P<a6>[^\]]+)\]|(?P<a>[^ :]+)|(?P<b6>[0-9a-f:]+))"
        r"(?::(?P<port>\d+))?$"
    )
    dnat: dict[tuple[str, str], int] = {}
    snat: set[tuple[str, str]] = set()
    for m in mappings.to_dict("records"):
        kind, text_b, text_a = str(m["kind"]), str(m["before"]), str(m["after"])
        assert kind in ("DNAT", "SNAT"), f"unexpected rewrite {kind}: {text_b} -> {text_a}"
        before, after = endpoint.match(text_b), endpoint.match(text_a)
        assert before and after, f"mapping texts {text_b!r} -> {text_a!r}"
        b_addr = before["a6"] or before["a"] or before["b6"]
        a_addr = after["a6"] or after["a"] or after["b6"]
        assert before["port"] == after["port"], f"port rewritten: {text_b} -> {text_a}"
        if kind == "DNAT":
            assert (b_addr in vips, a_addr in rips) == (True, True), f"{text_b} -> {text_a}"
            dnat[(text_b, text_a)] = int(m["connections"])
        else:
            assert (b_addr in rips, a_addr in vips) == (True, True), f"{text_b} -> {text_a}"
            snat.add((text_b, text_a))
    # the VIP host's own DNS queries leave through the rewrite: their source becomes the VIP
    assert (f"from {pair.rip[0]}", f"from {pair.vip[0]}") in snat
    expected = expected_dnat(pair, traffic)
    # the TCP services (the echo flows to the VIP show their ICMP id as a port: not compared)
    services = tuple(f":{port}" for port in SERVER_PORTS.tolist())
    tcp = {k: v for k, v in dnat.items() if k[0].endswith(services)}
    assert tcp == expected


@pytest.mark.parametrize("case", list(CASES))
def test_matching_finds_the_true_pairs_and_the_offset(correlated: Correlated, case: str) -> None:
    pair, corr = correlated(case)
    offset = corr.points[1].clock_offset_ns
    s = score(pair, corr.observations, offset)
    assert s.true_pairs > 0.95 * PACKETS
    assert s.recall >= 0.99, (
        f"recall {s.recall:.4f} of {s.true_pairs} true pairs; missed {breakdown(pair, s.missed)}"
    )
    assert abs(s.offset_error_ns) <= 1 * MS, (
        f"offset {offset} ns, true {pair.true_offset_ns} ns "
        f"(basis {corr.points[1].offset_basis}, {corr.points[1].offset_matches} matches)"
    )
    assert corr.points[0].offset_basis == "reference"
    assert corr.points[1].offset_basis == "two-way"


@pytest.mark.parametrize("case", list(CASES))
def test_matching_makes_no_false_pair(correlated: Correlated, case: str) -> None:
    pair, corr = correlated(case)
    s = score(pair, corr.observations, corr.points[1].clock_offset_ns)
    assert not s.false, f"false pairs: {breakdown(pair, s.false)}"


@pytest.mark.parametrize("case", list(CASES))
def test_mappings_are_the_rewrite_applied(
    traffic: Traffic, correlated: Correlated, case: str
) -> None:
    pair, corr = correlated(case)
    check_mappings(pair, traffic, corr)


def translated_recall(pair: Pair, corr: Correlation) -> dict[str, tuple[int, int]]:
    """Per packet kind, (found, true) pairs among the packets the NAT rewrote (to or from the
    VIP)."""
    s = score(pair, corr.observations, corr.points[1].clock_offset_ns)
    truth = np.array(sorted(pair.true_pairs()))
    rows = pair.rows[0][truth[:, 0] - 1]
    translated = (pair.src[rows] == VIP_HOST) | (pair.dst[rows] == VIP_HOST)
    missed = set(s.missed)
    found = np.array([(a, b) not in missed for a, b in truth.tolist()])
    out: dict[str, tuple[int, int]] = {}
    for kind in np.unique(pair.kinds[rows[translated]]).tolist():
        mine = translated & (pair.kinds[rows] == kind)
        out[pk.KIND_NAMES[kind]] = (int(found[mine].sum()), int(mine.sum()))
    return out


def test_translated_packets_of_every_kind_match(correlated: Correlated) -> None:
    """Per packet kind, the packets the NAT rewrote are matched too (TCP, DNS and ICMP echo over
    IPv4 and IPv6: IPv6 has no IP id to tell packets apart)."""
    pair, corr = correlated("-350ms-nat")
    recall = translated_recall(pair, corr)
    kinds = {"tcp4_syn", "tcp4_ts", "tcp6_ts", "dns4_query", "dns6_query", "icmp4_echo"}
    assert kinds <= set(recall)
    low = {k: v for k, v in recall.items() if v[0] < 0.99 * v[1]}
    assert low == {}


def test_the_ground_truth_pairs_frames_that_carry_one_packet(correlated: Correlated) -> None:
    """The truth itself: the two frames of a true pair hold the same IP id, TCP sequence and
    length, and the B frame's time is A's plus the offset and at most the hop delay."""
    from netdiag.pipeline import load_capture

    pair, _ = correlated("-350ms-nat")
    truth = np.array(sorted(pair.true_pairs()))
    tables = [load_capture(str(path), retention="all").packets for path in pair.paths]
    a, b = (t.set_index("frame").loc[truth[:, i]] for i, t in enumerate(tables))
    for column in ("ip_version", "ip_id", "ip_len", "tcp_seq", "tcp_ack", "icmp_seq"):
        assert np.array_equal(a[column].to_numpy(), b[column].to_numpy()), column
    skew = b["ts_ns"].to_numpy() - a["ts_ns"].to_numpy() - pair.true_offset_ns
    assert np.abs(skew).max() <= HOP_DELAY_NS
    assert len(tables[0]) == len(pair.rows[0]) and len(tables[1]) == len(pair.rows[1])


def test_three_points_two_in_front_of_the_nat_one_behind(traffic: Traffic, tmp_path: Path) -> None:
    """Client side A, the real server's side B (SLL2, clock +0.9 s) and a mirror port C in front
    of the NAT (clock -2.1 s): every pair of points matches and both offsets are found."""
    pair = make_points(
        traffic,
        [
            PointSpec(loss=0.01, loss_seed=1),
            PointSpec(layout="sll2", clock_offset_ns=900_000_000, nat=True, loss=0.01, loss_seed=2),
            PointSpec(clock_offset_ns=-2_100_000_000, loss=0.01, loss_seed=3),
        ],
        tmp_path,
    )
    paths = [str(p) for p in pair.paths]
    ctx, _ = load_context(paths, point_names=dict(zip(paths, "abc", strict=True)))
    corr = ctx.correlation
    assert corr is not None
    figures = {}
    for i, j in ((0, 1), (0, 2), (1, 2)):
        s = score(pair, corr.observations, 0, i, j)
        figures[f"{'abc'[i]}~{'abc'[j]}"] = (
            s.recall >= 0.99 and not s.false,
            f"recall {s.recall:.4f}, false {breakdown(pair, s.false, i, j)}",
        )
    assert all(ok for ok, _ in figures.values()), figures
    for point in (1, 2):
        found = corr.points[point].clock_offset_ns
        assert abs(found - pair.true_offset(point)) <= 1 * MS, (point, found)


def test_a_multi_interface_point_has_a_tap_per_interface(correlated: Correlated) -> None:
    _, corr = correlated("sll2-nat-vs-pcapng")
    assert [t.name for t in corr.taps] == ["a", "b:eth0", "b:eth1", "b:eth2"]


def test_identical_copies_closer_than_the_hop_pair_in_order(
    traffic: Traffic, tmp_path: Path
) -> None:
    """Two identical copies of a packet 40 us apart, each crossing the 150 us hop: the first
    copy at one point is the first copy at the other (a path does not reorder them)."""
    rng = np.random.default_rng(7)
    kind = traffic.plan["kind"]
    arp = rng.choice(np.flatnonzero(kind == pk.ARP), 20, replace=False)
    tcp = rng.choice(np.flatnonzero(kind == pk.TCP4_TS), 20, replace=False)
    copied = with_copies(traffic, np.concatenate([arp, tcp]), 40_000)
    pair = make_pair(
        copied, PointSpec(), PointSpec(clock_offset_ns=-350_000_000, nat=True), tmp_path
    )
    corr = correlate_pair(pair)
    s = score(pair, corr.observations, corr.points[1].clock_offset_ns)
    twin = copied.plan["twin"]
    twins = {p for p in pair.true_pairs() if twin[pair.rows[0][p[0] - 1]] >= 0}
    assert len(twins) >= 70  # ARP of the VIP host is rewritten, not a twin at both points
    assert not s.false, f"false pairs: {breakdown(pair, s.false)}"
    assert not set(s.missed) & twins, f"missed: {breakdown(pair, s.missed)}"


def test_captures_without_common_packets_match_nothing(traffic: Traffic, tmp_path: Path) -> None:
    """Two traffics of the same hosts and time span but different seeds: nothing is one packet.

    The ICMPv6 echo of the mix is left out of the second: its schedule, ids and payload do not
    depend on the seed and IPv6 has no IP id, so both traffics hold the very same pings."""
    other = generate_traffic(PACKETS, seed=SEED + 1)
    other.plan = pk.take_plan(other.plan, other.plan["kind"] != pk.ICMP6_ECHO)
    pair = make_pair(
        traffic,
        PointSpec(loss=0.01, loss_seed=1),
        PointSpec(clock_offset_ns=-350_000_000, loss=0.01, loss_seed=2),
        tmp_path,
        b_traffic=other,
    )
    corr = correlate_pair(pair)
    assert predicted_pairs(corr.observations) == set()
    assert corr.points[1].offset_basis == "none"
    assert corr.points[1].offset_matches == 0
    assert corr.mappings.empty
