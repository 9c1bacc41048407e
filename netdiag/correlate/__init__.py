"""Correlation of several capture points of one incident (packets, clocks, connections, NAT).

Public API: :func:`correlate` (point inputs -> :class:`Correlation`), :class:`PointInput`,
:func:`observation_chunk` (per-chunk observation columns, collected while a capture streams).
"""

from netdiag.correlate.build import correlate
from netdiag.correlate.matching import PointInput
from netdiag.correlate.model import Correlation, Point, Tap
from netdiag.correlate.observations import (
    join_observations,
    observation_chunk,
    observations_from_packets,
)

__all__ = [
    "Correlation",
    "Point",
    "PointInput",
    "Tap",
    "correlate",
    "join_observations",
    "observation_chunk",
    "observations_from_packets",
]
