"""The flow table of one capture file as numpy columns, read streaming and without pandas.

``netdiag flows`` needs neither the packet table nor pandas: this reads the capture chunk by
chunk through the decoder and the :class:`FlowBuilder` (packets are dropped once counted), and
returns :meth:`FlowBuilder.finish_columns`. It keeps the pipeline's order of work (see
``netdiag.pipeline.iter_flow_chunks``), so the flow table is the one ``load_capture`` gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netdiag.addressbook import AddressBook
from netdiag.capture.records import CaptureInfo
from netdiag.flows.builder import FLOW_BUILDER_READS, FlowBuilder

#: called after each chunk with (frames so far, bytes of the file read so far)
ProgressCallback = Callable[[int, int], None]


@dataclass
class FlowColumns:
    """A capture's flow table as columns (see ``FlowBuilder.finish_columns``) and its facts."""

    path: str
    info: CaptureInfo
    columns: dict[str, np.ndarray]
    book: AddressBook

    def __len__(self) -> int:
        return len(self.columns["flow_id"])


def read_flow_columns(
    path: str, book: AddressBook | None = None, progress: ProgressCallback | None = None
) -> FlowColumns:
    """Read ``path`` into its flow table; raises ``CaptureError`` when it is no capture."""
    from netdiag.capture.decode import SKIPPABLE_COLUMNS
    from netdiag.capture.table import iter_decoded

    # the builder reads none of the skippable columns (MACs, TCP options, payload hash)
    skip = SKIPPABLE_COLUMNS - FLOW_BUILDER_READS

    book = book or AddressBook()
    builder = FlowBuilder(book)
    frames = 0
    consumed = 0
    info: CaptureInfo | None = None
    for chunk, chunk_info in iter_decoded(path, book, skip=skip):
        info = chunk_info
        builder.add(chunk)
        n = len(chunk["frame"])
        frames += n
        consumed += int(chunk["caplen"].sum()) + 16 * n  # about the bytes read (record headers)
        del chunk
        if progress is not None:
            progress(frames, consumed)
    if info is None:  # a capture without packets still has its facts
        from netdiag.capture.reader import open_capture

        with open_capture(path) as cap:
            for _batch in cap.batches():
                pass
            info = cap.info
    return FlowColumns(path, info, builder.finish_columns(), book)
