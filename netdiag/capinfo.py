"""What `capinfos` tells about a capture: format, interfaces, packets, time span, problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.records import CaptureInfo


@dataclass
class CaptureSummary:
    path: str
    format: str
    compression: str
    byte_order: str
    version: str
    ts_resolution: str
    file_size: int
    interfaces: list[dict[str, Any]]
    packets: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    truncated_frames: int  # caplen < wirelen (snaplen)
    decode_errors: int
    decode_error_kinds: dict[str, int] = field(default_factory=dict)
    link_types: dict[str, int] = field(default_factory=dict)  # "NAME (N)" -> frames
    section_comments: list[str] = field(default_factory=list)
    packet_comments: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_ns(self) -> int | None:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return None
        return self.last_ts_ns - self.first_ts_ns

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration_ns"] = self.duration_ns
        return out


def summarize_capture(path: str) -> CaptureSummary:
    """Read a whole capture once (records and headers) and count what capinfos counts."""
    from netdiag.capture.decode import decode_batch
    from netdiag.capture.linktypes import is_supported, linktype_name
    from netdiag.capture.reader import open_capture

    book = AddressBook()
    packets = truncated = errors = comments = 0
    first: int | None = None
    last: int | None = None
    error_codes: Counter[int] = Counter()
    per_iface: Counter[int] = Counter()
    with open_capture(path) as cap:
        for batch in cap.batches():
            n = len(batch)
            if n == 0:
                continue
            packets += n
            truncated += int(np.count_nonzero(batch.caplen < batch.wirelen))
            lo, hi = int(batch.ts_ns.min()), int(batch.ts_ns.max())
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
            comments += len(batch.comments)
            ifaces, counts = np.unique(batch.iface, return_counts=True)
            per_iface.update(dict(zip(ifaces.tolist(), counts.tolist(), strict=True)))
            chunk = decode_batch(batch, cap.info, book)
            codes = chunk["decode_error"]
            bad = codes[codes >= 0]
            errors += len(bad)
            if len(bad):
                kinds, kind_counts = np.unique(bad, return_counts=True)
                error_codes.update(dict(zip(kinds.tolist(), kind_counts.tolist(), strict=True)))
        info: CaptureInfo = cap.info
    link_types: Counter[str] = Counter()
    interfaces = []
    for iface in info.interfaces:
        label = f"{linktype_name(iface.linktype)} ({iface.linktype})"
        if not is_supported(iface.linktype):
            label += " (not supported)"
        link_types[label] += per_iface.get(iface.iface_id, 0)
        interfaces.append(
            {
                "id": iface.iface_id,
                "name": iface.name,
                "description": iface.description,
                "linktype": iface.linktype,
                "linktype_name": label,
                "snaplen": iface.snaplen,
                "tsresol_ns": iface.tsresol_ns,
                "tsoffset_s": iface.tsoffset_s,
                "section": iface.section,
                "packets": per_iface.get(iface.iface_id, 0),
            }
        )
    return CaptureSummary(
        path=path,
        format=info.format,
        compression=info.compression,
        byte_order=info.byte_order,
        version=info.version,
        ts_resolution=info.ts_resolution,
        file_size=info.file_size,
        interfaces=interfaces,
        packets=packets,
        first_ts_ns=first,
        last_ts_ns=last,
        truncated_frames=truncated,
        decode_errors=errors,
        decode_error_kinds={book.texts[k]: v for k, v in sorted(error_codes.items())},
        link_types=dict(link_types),
        section_comments=list(info.section_comments),
        packet_comments=comments,
        warnings=list(info.warnings),
    )
