"""Two capture points of one synthetic traffic with known ground truth, and scoring a correlation.

A pair is the traffic of :mod:`netdiag.synth` seen at a *front* point (client side: it sees the
VIP) and a *back* point (behind the load balancer: the VIP is rewritten to a real server that
only this point sees). Each point may have its own clock offset, link layout and 1 % loss. Packets
to the VIP or from outside the server LAN reach the front point ``hop_delay_ns`` before the back
point; packets from the VIP or from other LAN hosts reach the back point first, as on a real path
through the load balancer. The ground truth of the clock offset between the points is the
difference of their offsets (a two-way estimate cancels the hop delay). This module stamps each
point's times itself (hop delay plus clock offset) and keeps the sent time in the plan's
``payload_ts_ns``, so what a packet carries (ping's timeval) is the same at every point. More
points (a mirror port in front of the NAT, ...) are made the same way by :func:`make_points`.

Ground truth per point: ``rows[k]`` is the plan row of frame ``k + 1`` (the row id rides along in
an extra plan column, which :func:`netdiag.synth.observe` keeps because it selects rows with a
boolean mask). True pairs are the rows both points kept, as (frame at A, frame at B).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netdiag.synth import CapturePoint, Traffic, observe, write_traffic
from netdiag.synth import packets as pk
from netdiag.synth.packets import HostTable

#: the real server the back point sees instead of the VIP (server0); a host of its own
RIP_V4 = "192.168.1.190"
#: the synth's first server, the VIP (see netdiag.synth.scenario._make_hosts)
VIP_HOST = 3
#: how long a packet takes from one point to the other
HOP_DELAY_NS = 150_000


@dataclass(frozen=True)
class PointSpec:
    """How one point of a pair captures: file layout, clock offset, NAT (VIP -> RIP) and loss."""

    layout: str = "ether"  # a netdiag.synth.LAYOUTS name
    clock_offset_ns: int = 0
    nat: bool = False  # True: the back point, which sees the real server instead of the VIP
    loss: float = 0.0
    loss_seed: int = 0


@dataclass
class Pair:
    """Two (or more) captures of one traffic and what is true about them. Points are numbered
    as the captures are given to the analysis: A = 0, B = 1, C = 2."""

    paths: tuple[Path, ...]
    rows: tuple[np.ndarray, ...]  # per point, the plan row of each frame (frame k + 1 = rows[k])
    kinds: np.ndarray  # packet kind (netdiag.synth.packets KIND_NAMES) per plan row
    src: np.ndarray  # host index of the IP source per plan row (before NAT)
    dst: np.ndarray
    offsets: tuple[int, ...]  # each point's clock offset
    vip: tuple[str, str]  # VIP address texts (IPv4, IPv6)
    rip: tuple[str, str]  # real server address texts (IPv4, IPv6)
    nat_side: int  # the point that sees the real server; -1 when none does
    common: bool = True  # False: the points captured different traffics (no true pair)

    @property
    def true_offset_ns(self) -> int:
        """The clock of B minus the clock of A."""
        return self.true_offset(1)

    def true_offset(self, point: int, reference: int = 0) -> int:
        return self.offsets[point] - self.offsets[reference]

    def true_pairs(self, i: int = 0, j: int = 1, *, all_rows: bool = False) -> set[tuple[int, int]]:
        """(frame at point i, frame at point j) of every plan row both points kept.

        Unless ``all_rows``, ARP packets of the VIP host are left out: the generator's NAT
        rewrites their sender MAC and address too, which no real NAT does, so the two points'
        copies differ (a matcher need not find them, and is not wrong when it does).
        """
        if not self.common:
            return set()
        a_rows, b_rows = self.rows[i], self.rows[j]
        common, ia, ib = np.intersect1d(a_rows, b_rows, assume_unique=True, return_indices=True)
        keep = np.ones(len(common), dtype=bool)
        if self.nat_side >= 0 and not all_rows:
            vip = (self.src[common] == VIP_HOST) | (self.dst[common] == VIP_HOST)
            keep &= ~((self.kinds[common] == pk.ARP) & vip)
        return set(zip((ia[keep] + 1).tolist(), (ib[keep] + 1).tolist(), strict=True))

    def describe(self, capture: int, frame: int) -> str:
        """What a frame is, for failure messages: kind, hosts and plan row."""
        row = int(self.rows[capture][frame - 1])
        kind = pk.KIND_NAMES[int(self.kinds[row])]
        return f"{'ABCD'[capture]}#{frame} row {row} {kind} {self.src[row]}->{self.dst[row]}"


def with_real_server(traffic: Traffic) -> tuple[Traffic, int]:
    """The traffic with one more host (the real server, ``RIP_V4``) and a ``row`` plan column."""
    hosts = traffic.hosts
    rip = len(hosts)
    v4 = int(ipaddress.IPv4Address(RIP_V4))
    v6 = np.zeros((1, 16), dtype=np.uint8)
    v6[0, 0:2] = (0xFD, 0x00)
    v6[0, 12:16] = np.array([v4], dtype=">u4").view(np.uint8)
    mac = np.array([[0x02, 0x52, 0x49, 0x50, (rip >> 8) & 0xFF, rip & 0xFF]], dtype=np.uint8)
    grown = HostTable(
        v4=np.concatenate([hosts.v4, np.array([v4], dtype=hosts.v4.dtype)]),
        v6=np.concatenate([hosts.v6, v6]),
        mac=np.concatenate([hosts.mac, mac]),
        name=[*hosts.name, "real-server"],
    )
    plan = dict(traffic.plan)
    plan["row"] = np.arange(len(plan["kind"]), dtype=np.int64)
    return dataclasses.replace(traffic, hosts=grown, plan=plan), rip


def with_copies(traffic: Traffic, rows: np.ndarray, gap_ns: int) -> Traffic:
    """The traffic with a second, identical copy of plan ``rows`` sent ``gap_ns`` after each (a
    duplicating link or tap; an ARP request asked twice). Plan column ``twin``: the original
    row of both copies, -1 for the other packets."""
    plan = dict(traffic.plan)
    plan["twin"] = np.full(len(plan["kind"]), -1, dtype=np.int64)
    plan["twin"][rows] = rows
    copies = pk.take_plan(plan, rows)
    copies["ts_ns"] = copies["ts_ns"] + gap_ns
    merged = {k: np.concatenate([v, copies[k]]) for k, v in plan.items()}
    order = np.argsort(merged["ts_ns"], kind="stable")
    return dataclasses.replace(traffic, plan=pk.take_plan(merged, order))


def forward(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Whether packets (host indices of the traffic's plan, before NAT) travel from the front
    point to the back one: to the VIP, or from outside the server LAN (a client, a router, the far
    target: every host after the gateway, resolver, prober and the 8 servers)."""
    outside = src >= VIP_HOST + 8
    return (dst == VIP_HOST) | ((src != VIP_HOST) & outside)


def _point_traffic(traffic: Traffic, front: bool, delay_ns: np.ndarray, offset_ns: int) -> Traffic:
    """The traffic as stamped by the front or the back point's clock (hop delay and clock
    offset), re-sorted by that time; what packets carry (ping's timeval) keeps the sent time."""
    # the hop delay may reorder packets: a point's capture is in its own time order
    plan = dict(traffic.plan)
    ahead = forward(plan["src"], plan["dst"])
    late = ~ahead if front else ahead
    plan["payload_ts_ns"] = plan["ts_ns"]
    ts = plan["ts_ns"] + np.where(late, delay_ns, 0) + offset_ns
    order = np.argsort(ts, kind="stable")
    plan["ts_ns"] = ts
    return dataclasses.replace(traffic, plan=pk.take_plan(plan, order))


def make_pair(
    traffic: Traffic,
    a: PointSpec,
    b: PointSpec,
    out_dir: Path,
    *,
    hop_delay_ns: int = HOP_DELAY_NS,
    jitter_ns: int = 0,
    b_traffic: Traffic | None = None,
) -> Pair:
    """Write the captures of ``traffic`` at points ``a`` and ``b`` and return their truth.

    ``b_traffic`` (optional) makes B capture another traffic altogether (no common packet).
    """
    return make_points(
        traffic,
        [a, b],
        out_dir,
        hop_delay_ns=hop_delay_ns,
        jitter_ns=jitter_ns,
        b_traffic=b_traffic,
    )


def make_points(
    traffic: Traffic,
    specs: Sequence[PointSpec],
    out_dir: Path,
    *,
    hop_delay_ns: int = HOP_DELAY_NS,
    jitter_ns: int = 0,
    b_traffic: Traffic | None = None,
) -> Pair:
    """Write the captures of ``traffic`` at every point (files a, b, c...) and their truth.

    Each packet crosses the hop in ``hop_delay_ns`` plus its own random delay under
    ``jitter_ns`` (seeded: the same packet is as late at every point; packets may overtake).
    ``b_traffic`` (optional) makes the points after A capture another traffic altogether.
    """
    if sum(spec.nat for spec in specs) > 1:
        raise ValueError("only one point sees the real server")
    grown, rip = with_real_server(traffic)
    other = with_real_server(b_traffic)[0] if b_traffic is not None else grown
    paths: list[Path] = []
    rows: list[np.ndarray] = []
    for index, spec in enumerate(specs):
        front = not spec.nat
        source = grown if index == 0 else other
        rng = np.random.default_rng([source.seed, 0x717])
        delay = hop_delay_ns + rng.integers(0, max(jitter_ns, 1), size=len(source.plan["kind"]))
        timed = _point_traffic(source, front, delay, spec.clock_offset_ns)
        point = CapturePoint(  # the clock offset is in the times already (with the hop delay)
            layout=_point_layout(spec.layout),
            nat={VIP_HOST: rip} if spec.nat else {},
            loss=spec.loss,
            loss_seed=spec.loss_seed,
        )
        suffix = ".pcapng" if spec.layout.startswith("pcapng") else ".pcap"
        path = out_dir / f"{'abcdefgh'[index]}{suffix}"
        written = write_traffic(path, timed, spec.layout, point)
        kept = observe(timed, point)["row"]
        assert len(kept) == written
        paths.append(path)
        rows.append(kept)
    plan = grown.plan
    v6_text = [str(ipaddress.IPv6Address(bytes(grown.hosts.v6[h]))) for h in (VIP_HOST, rip)]
    nat = [i for i, spec in enumerate(specs) if spec.nat]
    return Pair(
        paths=tuple(paths),
        rows=tuple(rows),
        kinds=plan["kind"],
        src=plan["src"],
        dst=plan["dst"],
        offsets=tuple(spec.clock_offset_ns for spec in specs),
        vip=(grown.hosts.v4_text(np.array([VIP_HOST]))[0], v6_text[0]),
        rip=(RIP_V4, v6_text[1]),
        nat_side=nat[0] if nat else -1,
        common=b_traffic is None,
    )


def _point_layout(layout: str) -> str:
    from netdiag.synth import LAYOUTS

    return LAYOUTS[layout][0]


@dataclass
class Score:
    """How a correlation's packet matches compare with the truth of a pair."""

    true_pairs: int
    found: int  # true pairs the correlation predicted
    false: list[tuple[int, int]]  # predicted (frame at A, frame at B) that are not true pairs
    missed: list[tuple[int, int]]  # true pairs not predicted
    offset_error_ns: int

    @property
    def recall(self) -> float:
        return self.found / self.true_pairs if self.true_pairs else 1.0


def predicted_pairs(observations: object, i: int = 0, j: int = 1) -> set[tuple[int, int]]:
    """(frame at capture i, frame at capture j) of every instance seen at both captures (all
    combinations when an instance has several observations at one capture)."""
    import pandas as pd

    assert isinstance(observations, pd.DataFrame)
    obs = observations[observations["instance"] >= 0]
    a = obs.loc[obs["capture"] == i, ["instance", "frame"]]
    b = obs.loc[obs["capture"] == j, ["instance", "frame"]]
    both = a.merge(b, on="instance", suffixes=("_a", "_b"))
    return set(zip(both["frame_a"].tolist(), both["frame_b"].tolist(), strict=True))


def score(pair: Pair, observations: object, offset_ns: int, i: int = 0, j: int = 1) -> Score:
    """Predicted pairs of points i and j against the truth; ``offset_ns``: the clock offset of
    point j found (relative to the reference, point 0, as ``Point.clock_offset_ns``)."""
    truth = pair.true_pairs(i, j)
    predicted = predicted_pairs(observations, i, j)
    return Score(
        true_pairs=len(truth),
        found=len(truth & predicted),
        false=sorted(predicted - pair.true_pairs(i, j, all_rows=True)),
        missed=sorted(truth - predicted),
        offset_error_ns=int(offset_ns) - pair.true_offset(j),
    )


def breakdown(
    pair: Pair, frames: list[tuple[int, int]], i: int = 0, j: int = 1, top: int = 8
) -> str:
    """The packet kinds and directions of some pairs of points i and j (for failure messages)."""
    if not frames:
        return "none"
    rows = pair.rows[i][np.array([f[0] for f in frames]) - 1]
    inbound = np.where(forward(pair.src[rows], pair.dst[rows]), "fwd", "back")
    labels = [
        f"{pk.KIND_NAMES[int(k)]}/{d}" for k, d in zip(pair.kinds[rows], inbound, strict=True)
    ]
    names, counts = np.unique(np.array(labels), return_counts=True)
    order = np.argsort(-counts)[:top]
    parts = [f"{names[k]}={counts[k]}" for k in order]
    examples = "; ".join(
        f"{pair.describe(i, fa)} ~ {pair.describe(j, fb)}" for fa, fb in frames[:3]
    )
    return f"{len(frames)} ({', '.join(parts)}; e.g. {examples})"
