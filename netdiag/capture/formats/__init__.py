"""Capture container formats: the registry of readers and sniffing a file's format by content.

The format is decided by the first bytes of the (decompressed) file, never by its name: captures
are routinely saved as .cap, .dmp or with no extension at all.
"""

from __future__ import annotations

from netdiag.capture.formats.base import ContainerReader
from netdiag.capture.formats.pcap import PcapReader
from netdiag.capture.formats.pcapng import PcapngReader

#: format name -> reader class; ``sniff_format`` tries them in this order
READERS: dict[str, type[ContainerReader]] = {
    "pcap": PcapReader,
    "pcapng": PcapngReader,
}

#: bytes of the file start that ``sniff_format`` needs to see
SNIFF_BYTES = 16


def sniff_format(head: bytes) -> str:
    """The registry name of the format whose magic ``head`` starts with, "" when none matches."""
    for name, reader in READERS.items():
        if reader.sniff(head):
            return name
    return ""


__all__ = ["READERS", "SNIFF_BYTES", "ContainerReader", "sniff_format"]
