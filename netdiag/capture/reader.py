"""Opening a capture file: checks, decompression and format sniffing, then streaming record batches.

This is the one entry point the rest of netdiag uses to read captures::

    with open_capture(path) as cap:
        for batch in cap.batches():
            ...

``open_capture`` raises :class:`CaptureError` (a one-line reason naming the file) when the file
cannot be read as a capture at all; once open, damaged records only end the stream early with a
warning in ``cap.info.warnings``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from types import TracebackType

from netdiag.capture.compression import ByteSource, open_decompressed, sniff_compression
from netdiag.capture.formats import READERS, SNIFF_BYTES, ContainerReader, sniff_format
from netdiag.capture.formats.base import DEFAULT_CHUNK_BYTES
from netdiag.capture.records import CaptureInfo, RecordBatch
from netdiag.errors import CaptureError

NOT_A_CAPTURE = "not a capture file (pcap, pcapng)"

#: magic of formats people mistake for pcap, to say what the file is instead
_OTHER_FORMATS: dict[bytes, str] = {
    b"snoop\x00\x00\x00": "a Sun snoop capture",
    b"GMBU": "a Microsoft Network Monitor capture",
    b"PK\x03\x04": "a zip archive",
    b"\x7fELF": "an executable",
    b"%PDF": "a PDF document",
}


class Capture:
    """An open capture file: its facts in ``info`` and its records through ``batches``."""

    def __init__(
        self,
        info: CaptureInfo,
        reader: ContainerReader,
        source: ByteSource,
        raw: io.BufferedReader[io.FileIO],
    ):
        self.info = info
        self._reader = reader
        self._source = source
        self._raw = raw
        self._started = False

    def batches(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[RecordBatch]:
        """The records in file order, about ``chunk_bytes`` of file per batch; one pass only."""
        if self._started:
            raise RuntimeError("Capture.batches() reads the file once; open the capture again")
        self._started = True
        return self._reader.batches(chunk_bytes)

    def close(self) -> None:
        try:
            self._source.close()
        finally:
            self._raw.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_capture(path: str | os.PathLike[str]) -> Capture:
    """Open a pcap or pcapng file, plain or gzip/zstd/xz/bzip2 compressed."""
    name = os.fspath(path)
    raw = _open_raw(name)
    try:
        return _open_on(name, raw)
    except BaseException:
        raw.close()
        raise


def _open_raw(name: str) -> io.BufferedReader[io.FileIO]:
    try:
        st = os.stat(name)
        if stat.S_ISDIR(st.st_mode):
            raise CaptureError(name, "is a directory, not a capture file")
        raw = io.BufferedReader(io.FileIO(name, "rb"), buffer_size=1 << 16)
    except FileNotFoundError:
        raise CaptureError(name, "no such file") from None
    except PermissionError:
        raise CaptureError(name, "permission denied") from None
    except IsADirectoryError:
        raise CaptureError(name, "is a directory, not a capture file") from None
    except OSError as exc:
        raise CaptureError(name, f"cannot open: {exc.strerror or exc}") from None
    except ValueError:  # a NUL byte in the name
        raise CaptureError(name, "not a valid file name") from None
    return raw


def _open_on(name: str, raw: io.BufferedReader[io.FileIO]) -> Capture:
    info = CaptureInfo(path=name)
    try:
        info.file_size = os.fstat(raw.fileno()).st_size
        magic = raw.peek(8)[:8]
    except OSError as exc:
        raise CaptureError(name, f"cannot read: {exc.strerror or exc}") from None
    compression = sniff_compression(magic)
    info.compression = compression
    try:
        stream = open_decompressed(raw, compression) if compression else raw
    except ValueError as exc:  # e.g. zstd without the zstandard package
        raise CaptureError(name, f"{compression} file: {exc}") from None
    source = ByteSource(stream, compression, info.warnings)
    head = source.peek(SNIFF_BYTES)
    fmt = sniff_format(head)
    if not fmt:
        source.close()
        raise CaptureError(name, _not_a_capture_reason(head, compression, info.warnings))
    reader = READERS[fmt](source, info)
    return Capture(info, reader, source, raw)


def _not_a_capture_reason(head: bytes, compression: str, warnings: list[str]) -> str:
    inside = f" inside the {compression} compression" if compression else ""
    if not head:
        if warnings:
            return f"damaged {compression} file: {warnings[-1]}"
        return f"{NOT_A_CAPTURE}: the file is empty{inside}"
    for magic, what in _OTHER_FORMATS.items():
        if head.startswith(magic):
            return f"{NOT_A_CAPTURE}: it is {what}{inside}"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        text = head.decode("ascii").split("\n")[0][:16]
        return f"{NOT_A_CAPTURE}: it starts with text {text!r}{inside}"
    return f"{NOT_A_CAPTURE}: unknown magic bytes {head[:4].hex(' ')}{inside}"
