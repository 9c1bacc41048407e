"""Read-ahead decoding (netdiag.capture.readahead): the same chunks, errors and warnings as the
plain loop, and a producer thread that always stops when its caller does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from netdiag.addressbook import AddressBook
from netdiag.capture.readahead import read_ahead
from netdiag.capture.table import iter_decoded
from netdiag.errors import CaptureError
from netdiag.flows.read import read_flow_columns

ROOT = Path(__file__).resolve().parents[1]
#: the biggest sample captures (cut into 16 chunks each), pcap and pcapng
SAMPLE_CAPTURES = sorted(
    (p for p in (ROOT / "samples").rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz")),
    key=lambda p: (-p.stat().st_size, str(p)),
)[:10]


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "netdiag-read-ahead"}


class _Source:
    """A generator that records which thread ran it and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.threads: set[str] = set()
        self.closed = False
        self.produced = 0

    def items(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise ValueError(f"bad item {i}")
                self.produced += 1
                yield i
        finally:
            self.closed = True


def test_items_arrive_in_order_from_another_thread() -> None:
    src = _Source(50)
    assert list(read_ahead(src.items())) == list(range(50))
    assert src.threads == {"netdiag-read-ahead"}
    assert src.closed
    assert not _threads()


def test_producer_error_is_raised_after_the_items_before_it() -> None:
    src = _Source(10, fail_at=4)
    got: list[int] = []
    with pytest.raises(ValueError, match="bad item 4"):
        for item in read_ahead(src.items()):
            got.append(item)
    assert got == [0, 1, 2, 3]
    assert src.closed
    assert not _threads()


def test_caller_stopping_early_stops_and_closes_the_producer() -> None:
    src = _Source(10_000)
    ahead = read_ahead(src.items(), depth=1)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()  # what a `break` or an exception in the caller's loop does
    assert src.closed
    assert src.produced < 10  # at most a queue's worth beyond what was taken
    assert not _threads()


def test_caller_error_stops_the_producer() -> None:
    src = _Source(10_000)
    with pytest.raises(RuntimeError, match="caller"):
        for item in read_ahead(src.items()):
            if item == 2:
                raise RuntimeError("caller")
    assert src.closed
    assert not _threads()


def _chunks(path: Path, read_ahead: bool) -> tuple[list[dict[str, np.ndarray]], list[str], int]:
    book = AddressBook()
    size = max(4096, path.stat().st_size // 16)  # several chunks, even for the big sample
    pairs = list(iter_decoded(str(path), book, chunk_bytes=size, read_ahead=read_ahead))
    chunks = [chunk for chunk, _info in pairs]
    info = pairs[-1][1]
    return chunks, list(info.warnings), info.decode_errors


@pytest.mark.parametrize("path", SAMPLE_CAPTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_chunks_with_and_without_read_ahead(path: Path) -> None:
    plain, plain_warnings, plain_errors = _chunks(path, read_ahead=False)
    ahead, ahead_warnings, ahead_errors = _chunks(path, read_ahead=True)
    assert len(plain) == len(ahead) > 1  # small chunks: several of them
    for a, b in zip(plain, ahead, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (plain_warnings, plain_errors) == (ahead_warnings, ahead_errors)


def test_a_file_cut_short_warns_the_same(tmp_path: Path) -> None:
    whole = next(p for p in SAMPLE_CAPTURES if p.suffix == ".pcap")
    cut = tmp_path / "cut.pcap"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    plain, plain_warnings, _ = _chunks(cut, read_ahead=False)
    ahead, ahead_warnings, _ = _chunks(cut, read_ahead=True)
    assert plain_warnings == ahead_warnings
    assert any("cut short" in w for w in ahead_warnings)
    assert sum(len(c["frame"]) for c in plain) == sum(len(c["frame"]) for c in ahead)


def test_not_a_capture_is_refused_in_the_callers_thread(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n" * 100)
    with pytest.raises(CaptureError, match="notes.txt"):
        read_flow_columns(str(bad))
    assert not _threads()
