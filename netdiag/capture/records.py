"""What a capture container reader hands to the decoder: interfaces, file facts and record batches.

A container reader (pcap, pcapng) only finds records: where each packet's bytes start in a
buffer, how many bytes were captured, the on-wire length, the timestamp in integer nanoseconds and
the interface. It never looks inside a packet; the link-type decoders do that column-wise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class InterfaceInfo:
    """One capture interface: a pcapng IDB, or the single implicit interface of classic pcap."""

    iface_id: int
    linktype: int
    name: str = ""  # pcapng if_name
    description: str = ""  # pcapng if_description
    snaplen: int = 0
    tsresol_ns: float = 1000.0  # nanoseconds per timestamp unit (if_tsresol); 1000 for usec pcap
    tsoffset_s: int = 0  # pcapng if_tsoffset, seconds added to every timestamp
    section: int = 0  # index of the pcapng section holding this interface
    # bytes of FCS at the end of each frame, -1 unknown (pcap FCS bits / pcapng if_fcslen)
    fcs_len: int = -1


@dataclass
class RecordBatch:
    """A run of consecutive records, all of whose bytes lie in ``data``.

    Arrays are parallel, one entry per record; ``offsets[i]`` is where record i's captured bytes
    start in ``data`` and ``caplen[i]`` how many there are (always inside ``data``).
    """

    data: np.ndarray  # uint8 buffer
    offsets: np.ndarray  # int64
    caplen: np.ndarray  # int64
    wirelen: np.ndarray  # int64
    ts_ns: np.ndarray  # int64, epoch nanoseconds
    iface: np.ndarray  # int16, index into CaptureInfo.interfaces
    first_frame: int  # 1-based frame number of the first record
    comments: dict[int, str] = field(default_factory=dict)  # frame number -> packet comment

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass
class CaptureInfo:
    """What the file itself says (capinfos' view), filled in while reading."""

    path: str
    format: str = ""  # "pcap", "pcapng"
    compression: str = ""  # "", "gzip", "zstd", "xz", "bzip2"
    byte_order: str = ""  # "little", "big" (of the first section for pcapng)
    ts_resolution: str = ""  # "us", "ns", or pcapng's if_tsresol per interface
    version: str = ""
    interfaces: list[InterfaceInfo] = field(default_factory=list)
    section_comments: list[str] = field(default_factory=list)
    packets: int = 0
    truncated_frames: int = 0  # caplen < wirelen
    decode_errors: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. "file cut short after frame 1234"
    file_size: int = 0
