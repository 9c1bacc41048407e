"""Wireshark's full dissection of chosen frames (``netdiag show``), through pyshark or tshark -V.

netdiag decodes the fields its rules need; a reader who wants every field of a frame gets
Wireshark's own tree. pyshark (which drives tshark) is used when importable, else ``tshark -V``
directly. Compression tshark cannot open itself (zstd, xz, bzip2) is undone into a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence

from netdiag.errors import NetdiagError

#: compressions tshark 4.0 reads by itself
_TSHARK_READS = ("", "gzip")


def parse_frames(values: Sequence[str]) -> list[int]:
    """``["53,56", "60"]`` -> [53, 56, 60] (sorted, unique); a bad number is a usage error."""
    frames: set[int] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) < 1:
                raise NetdiagError(None, f"--frame wants frame numbers from 1 up, not {part!r}")
            frames.add(int(part))
    if not frames:
        raise NetdiagError(None, "--frame needs at least one frame number, e.g. --frame 53,56")
    return sorted(frames)


def count_frames(path: str) -> tuple[int, str]:
    """The capture's frame count and compression (read with netdiag's own reader)."""
    from netdiag.capture.reader import open_capture

    total = 0
    with open_capture(path) as cap:
        for batch in cap.batches():
            total += len(batch)
        return total, cap.info.compression


@contextlib.contextmanager
def _readable_by_tshark(path: str, compression: str) -> Iterator[str]:
    if compression in _TSHARK_READS:
        yield path
        return
    from netdiag.capture.compression import open_decompressed

    with tempfile.TemporaryDirectory(prefix="netdiag-show-") as tmp:
        plain = os.path.join(tmp, "capture")
        with open(path, "rb") as raw, open(plain, "wb") as out:
            stream = open_decompressed(raw, compression)
            while chunk := stream.read1(1 << 20):
                out.write(chunk)
        yield plain


def frame_filter(frames: Sequence[int]) -> str:
    from netdiag.render.wireshark_filter import frames as frames_filter

    return frames_filter(frames)


def dissect(path: str, frames: Sequence[int], engine: str = "auto") -> str:
    """The dissection of ``frames`` of the capture at ``path`` as text.

    ``engine``: "pyshark", "tshark" or "auto" (pyshark when importable). Frames beyond the end
    of the capture are an input error naming them.
    """
    total, compression = count_frames(path)
    missing = [f for f in frames if f > total]
    if missing:
        raise NetdiagError(
            path,
            f"no frame {', '.join(map(str, missing))}: the capture has {total:,} frames",
        )
    if shutil.which("tshark") is None:
        raise NetdiagError(None, "netdiag show needs tshark (Wireshark's command-line tool)")
    if engine == "auto":
        try:
            import pyshark  # noqa: F401

            engine = "pyshark"
        except ImportError:
            engine = "tshark"
    with _readable_by_tshark(path, compression) as readable:
        if engine == "pyshark":
            return _with_pyshark(readable, frames)
        return _with_tshark(readable, frames)


def _with_pyshark(path: str, frames: Sequence[int]) -> str:
    import pyshark

    capture = pyshark.FileCapture(path, display_filter=frame_filter(frames), keep_packets=False)
    parts = []
    try:
        for packet in capture:
            parts.append(f"=== Frame {packet.number} ({packet.length} bytes on wire)")
            # str(packet) is "Packet (Length: N)" then one block per layer, Wireshark's tree;
            # the frame layer (number, times, comments) is not always among them
            layers = str(packet).split("\n", 1)[-1].rstrip("\n")
            if "Layer FRAME" not in layers:
                parts.append(str(packet.frame_info).rstrip("\n"))
            parts.append(layers)
            parts.append("")
    finally:
        capture.close()
    return "\n".join(parts).rstrip("\n") + "\n"


def _with_tshark(path: str, frames: Sequence[int]) -> str:
    done = subprocess.run(
        ["tshark", "-n", "-V", "-r", path, "-Y", frame_filter(frames)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["tshark failed"])[-1]
        raise NetdiagError(path, f"tshark cannot dissect it: {reason}")
    return done.stdout
