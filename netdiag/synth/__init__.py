"""Deterministic synthetic captures: a seeded traffic mix written as pcap or pcapng.

Public entry points:

* :func:`write_capture` - generate a capture file of about ``packets`` packets in one of
  ``LAYOUTS`` and return its ground-truth summary (streams epochs, so memory stays bounded);
* :func:`generate_traffic` / :func:`observe` / :func:`write_traffic` - the traffic itself, its
  per-connection ground truth (``Traffic.conns``, ``Traffic.conns_frame()``), the plan a
  :class:`CapturePoint` sees (NAT rewrite, clock offset, loss) and that plan as a file, for tests
  that compare a flow table with the truth or correlate two captures of the same traffic.

The same arguments give the same bytes on every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from netdiag.synth import packets
from netdiag.synth.scenario import (
    COMMENTS,
    CONN_STATES,
    PCAPNG_INTERFACES,
    CapturePoint,
    Traffic,
    generate_traffic,
    observe,
)
from netdiag.synth.writers import Interface, PcapngWriter, PcapWriter

#: capture layouts write_capture knows: name -> (capture point layout, pcap options)
LAYOUTS: dict[str, tuple[str, dict[str, bool]]] = {
    "ether": ("ether", {}),
    "ether-ns": ("ether", {"nanosecond": True}),
    "ether-be": ("ether", {"big_endian": True}),
    "ether-ns-be": ("ether", {"nanosecond": True, "big_endian": True}),
    "sll2": ("sll2", {}),
    "pcapng": ("pcapng", {}),
    "pcapng-be": ("pcapng", {"big_endian": True}),
    "pcapng-mixed": ("pcapng-mixed", {}),
}

#: rows built at once; bounds the writer's working memory (~30k rows x ~1.6 kB)
CHUNK_ROWS = 32_768

__all__ = [
    "COMMENTS",
    "CONN_STATES",
    "LAYOUTS",
    "CapturePoint",
    "Traffic",
    "generate_traffic",
    "observe",
    "write_capture",
    "write_plan",
    "write_traffic",
]


def _open_writer(out: BinaryIO, layout: str, seed: int) -> PcapWriter | PcapngWriter:
    point_layout, opts = LAYOUTS[layout]
    if point_layout in PCAPNG_INTERFACES:
        itfs = [Interface(*spec) for spec in PCAPNG_INTERFACES[point_layout]]
        return PcapngWriter(
            out,
            itfs,
            comments=list(COMMENTS),
            section_comment=f"netdiag synthetic capture, seed {seed}",
            big_endian=opts.get("big_endian", False),
        )
    linktype = packets.LINK_SLL2 if point_layout == "sll2" else packets.LINK_ETHERNET
    return PcapWriter(out, linktype, **opts)


def write_plan(
    writer: PcapWriter | PcapngWriter, plan: dict[str, np.ndarray], traffic: Traffic
) -> int:
    """Write a plan through ``writer`` in chunks; returns the bytes written."""
    written = 0
    n = len(plan["kind"])
    for lo in range(0, n, CHUNK_ROWS):
        chunk = packets.take_plan(plan, slice(lo, lo + CHUNK_ROWS))
        written += writer.write(chunk, traffic.hosts, traffic.block)
    return written


def write_traffic(
    path: str | Path, traffic: Traffic, layout: str = "ether", point: CapturePoint | None = None
) -> int:
    """Write what ``point`` (default: a plain point of ``layout``) captures of ``traffic``.

    Two calls with different points over one ``Traffic`` give two captures of the same packets
    (e.g. before and after a NAT, with a clock offset and some loss). Returns the packet count.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if point is None:
        point = CapturePoint(layout=LAYOUTS[layout][0])
    elif point.layout != LAYOUTS[layout][0]:
        raise ValueError(
            f"capture point layout {point.layout!r} does not fit file layout {layout!r}"
        )
    plan = observe(traffic, point)
    with open(path, "wb") as out:
        write_plan(_open_writer(out, layout, traffic.seed), plan, traffic)
    return len(plan["kind"])


def write_capture(
    path: str | Path,
    layout: str = "ether",
    packets_target: int = 1_000_000,
    seed: int = 1,
    *,
    small: bool = False,
    epoch_packets: int = 1_000_000,
) -> dict[str, int]:
    """Write a synthetic capture of about ``packets_target`` packets; returns its summary.

    Above ``epoch_packets`` the traffic is generated and written one epoch at a time (each epoch
    a later, separate stretch of time), so memory depends on ``epoch_packets`` only. The summary
    adds up the ground truth of all epochs (see ``Traffic.summary``) plus ``bytes``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    n_epochs = max(1, -(-packets_target // epoch_packets))
    per_epoch = -(-packets_target // n_epochs)
    total: dict[str, int] = {}
    with open(path, "wb") as out:
        writer = _open_writer(out, layout, seed)
        for epoch in range(n_epochs):
            traffic = generate_traffic(per_epoch, seed, small=small, epoch=epoch)
            plan = observe(traffic, CapturePoint(layout=LAYOUTS[layout][0]))
            write_plan(writer, plan, traffic)
            for k, v in traffic.summary().items():
                total[k] = total.get(k, 0) + v
        total["bytes"] = out.tell()
    return total
