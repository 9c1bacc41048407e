"""Transparent decompression of capture files, recognised by their magic bytes, as a byte source.

gzip, zstd, xz and bzip2 are streamed: a capture is read a chunk at a time and never held whole
in memory, decompressed or not. A compressed stream that is damaged or cut short ends the byte
source with a warning; the records before the damage are still read.

An uncompressed regular file is not copied at all: each chunk is a read-only memory map of its
window of the file (the page cache's own pages), dropped once the chunk's arrays are. The file's
size is taken when it is opened; bytes appended later are not read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import mmap
import os
import stat
import zlib
from typing import BinaryIO, Protocol

try:  # zstandard is a declared dependency; without it only .zst files are refused
    import zstandard
except ImportError:  # pragma: no cover - depends on the environment
    zstandard = None  # type: ignore[assignment]

#: compression name -> the magic bytes a file of that kind starts with
COMPRESSION_MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "xz": b"\xfd7zXZ\x00",
    "bzip2": b"BZh",
}

#: how much compressed-side output is asked for at once: an error loses at most this much
_DECOMPRESS_STEP = 1 << 20

_STREAM_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)
if zstandard is not None:
    _STREAM_ERRORS += (zstandard.ZstdError,)


class DecompressedStream(Protocol):
    """What a byte source reads from: a buffered file or a decompressing reader."""

    def read1(self, size: int = ..., /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...

    def close(self) -> None: ...


def sniff_compression(head: bytes) -> str:
    """The compression a file starting with ``head`` uses, "" when none is recognised."""
    for name, magic in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name
    return ""


def open_decompressed(raw: BinaryIO, compression: str) -> DecompressedStream:
    """A stream of the decompressed bytes of ``raw`` (which must be at its start)."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if compression == "zstd":
        if zstandard is None:  # pragma: no cover - depends on the environment
            raise ValueError("zstd support needs the 'zstandard' package")
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    raise ValueError(f"unknown compression {compression!r}")


class ByteSource:
    """The (decompressed) bytes of a capture file, read forward in pieces.

    ``eof`` becomes true once a read came back short: the stream ended, or a damaged compressed
    stream was stopped (the reason is appended to ``warnings``).
    """

    def __init__(self, stream: DecompressedStream, compression: str, warnings: list[str]):
        self._stream = stream
        self.compression = compression
        self._warnings = warnings
        self._pending = b""  # bytes peeked at but not yet handed out
        self.position = 0  # decompressed bytes handed out so far
        self.eof = False
        #: descriptor and size of an uncompressed regular file read through memory maps
        self._map_fd = -1
        self._map_size = 0
        if not compression:
            self._try_map()

    def _try_map(self) -> None:
        fileno = getattr(self._stream, "fileno", None)
        try:
            fd = fileno() if fileno is not None else -1
            st = os.fstat(fd) if fd >= 0 else None
        except (OSError, ValueError):
            return
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0:
            self._map_fd, self._map_size = fd, st.st_size

    def peek(self, n: int) -> bytes:
        """Up to ``n`` first bytes still to come, without consuming them."""
        if self._map_fd >= 0:
            return self._pread(n)
        if len(self._pending) < n and not self.eof:
            more = bytearray(n - len(self._pending))
            got = self._read_into(memoryview(more))
            self._pending += bytes(more[:got])
        return self._pending[:n]

    def read(self, n: int) -> bytes:
        """``n`` bytes, fewer only when the stream ends."""
        buf = self.fill(b"", n)
        return bytes(buf)

    def fill(self, carry: bytes | memoryview, want: int) -> bytearray | memoryview:
        """A new buffer holding ``carry`` followed by up to ``want`` further bytes of the stream.

        ``carry`` must be the end of the previous buffer (or empty): a memory-mapped file then
        gives a read-only view of the file from where ``carry`` started, without copying.
        """
        if self._map_fd >= 0:
            view = self._map_window(len(carry), want)
            if view is not None:
                return view
        head = len(carry)
        buf = bytearray(head + want)
        buf[:head] = carry
        view = memoryview(buf)
        got = 0
        if self._pending:
            take = min(want, len(self._pending))
            view[head : head + take] = self._pending[:take]
            self._pending = self._pending[take:]
            got = take
        if got < want and not self.eof:
            got += self._read_into(view[head + got :])
        view.release()
        if got < want:
            del buf[head + got :]
        self.position += got
        return buf

    def _pread(self, n: int) -> bytes:
        try:
            return os.pread(
                self._map_fd, max(min(n, self._map_size - self.position), 0), self.position
            )
        except OSError as exc:
            self._stop_mapping(exc)
            return self.peek(n)

    def _map_window(self, carried: int, want: int) -> memoryview | None:
        """The file from ``carried`` bytes before the read position to ``want`` bytes after it."""
        start = self.position - carried
        stop = min(self._map_size, self.position + want)
        if stop <= start:
            self.eof = True
            return memoryview(b"")
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        try:
            window = mmap.mmap(
                self._map_fd, stop - aligned, access=mmap.ACCESS_READ, offset=aligned
            )
        except (OSError, ValueError, OverflowError) as exc:
            self._stop_mapping(exc)
            return None
        if hasattr(window, "madvise"):
            window.madvise(mmap.MADV_SEQUENTIAL)
        got = stop - self.position
        self.position = stop
        if got < want:
            self.eof = True
        return memoryview(window)[start - aligned :]

    def _stop_mapping(self, exc: BaseException) -> None:
        """Mapping failed (an unusual file system): read the rest of the file as a stream."""
        self._map_fd = -1
        seek = getattr(self._stream, "seek", None)
        if seek is None:
            self.eof = True
            self._warnings.append(f"file unreadable ({_one_line(exc)}); stopped reading there")
            return
        seek(self.position)

    def _read_into(self, view: memoryview) -> int:
        """Fill ``view`` from the stream; returns the byte count (short only at the end)."""
        got = 0
        total = len(view)
        try:
            if not self.compression:
                while got < total:
                    n = self._stream.readinto(view[got:])
                    if not n:
                        self.eof = True
                        break
                    got += n
            else:
                while got < total:
                    piece = self._stream.read1(min(total - got, _DECOMPRESS_STEP))
                    if not piece:
                        self.eof = True
                        break
                    view[got : got + len(piece)] = piece
                    got += len(piece)
        except _STREAM_ERRORS as exc:
            self.eof = True
            where = self.position + len(self._pending) + got
            kind = f"{self.compression} stream" if self.compression else "file"
            self._warnings.append(
                f"{kind} unreadable after {where} bytes ({_one_line(exc)}); stopped reading there"
            )
        return got

    def close(self) -> None:
        self._stream.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
