"""The capture reader's fast paths give what the plain ones give.

The pcap walk is unrolled where 8 records surely fit in the buffer (a lying length there must
still stop reading at the liar); the decoder can leave out columns a caller does not read (every
other column stays the same); addresses are interned through a per-book cache (codes are the
book's own, whatever collides in the cache).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from craft_kit import craft

from netdiag.addressbook import AddressBook
from netdiag.capture.decode import SKIPPABLE_COLUMNS, decode_batch
from netdiag.capture.layers.frames import DecodeState, _CodeCache
from netdiag.capture.reader import open_capture
from netdiag.capture.schema import empty_chunk

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HEADER = len(craft.pcap_header())


def read_frames(path: Path) -> tuple[list[str], list[bytes]]:
    packets: list[bytes] = []
    with open_capture(path) as cap:
        for batch in cap.batches():
            packets += [
                bytes(batch.data[o : o + c])
                for o, c in zip(batch.offsets, batch.caplen, strict=True)
            ]
        return cap.info.warnings, packets


# 8000 records of 516 bytes: about 4 MB, more than the 8 x 320 kB the unrolled walk needs ahead
@pytest.mark.parametrize("liar", [99, 100, 103, 106, 4000])
@pytest.mark.parametrize("claimed", [0xFFFFFFFF, 400_000, 327_681])
def test_lying_length_inside_the_unrolled_walk(tmp_path: Path, liar: int, claimed: int) -> None:
    records = [craft.pcap_record(1, i, craft.frame_bytes(500, i % 50)) for i in range(8000)]
    offset = HEADER + sum(len(r) for r in records[:liar])
    records[liar] = craft.pcap_record(1, liar, craft.frame_bytes(500, 0), caplen=claimed)
    path = tmp_path / "lie.pcap"
    path.write_bytes(craft.pcap_header() + b"".join(records))
    warnings, packets = read_frames(path)
    assert len(packets) == liar
    assert packets[-1] == craft.frame_bytes(500, (liar - 1) % 50)
    assert warnings == [
        f"frame {liar + 1} at byte offset {offset}: record claims {claimed} bytes; stopped reading"
    ]


def test_unrolled_walk_reads_every_record(tmp_path: Path) -> None:
    sizes = [60 + (i * 37) % 1400 for i in range(9001)]
    records = [craft.pcap_record(1, i, craft.frame_bytes(n, i % 7)) for i, n in enumerate(sizes)]
    path = tmp_path / "many.pcap"
    path.write_bytes(craft.pcap_header() + b"".join(records))
    warnings, packets = read_frames(path)
    assert warnings == []
    assert [len(p) for p in packets] == sizes
    assert packets[8999] == craft.frame_bytes(sizes[8999], 8999 % 7)


def _sample_captures() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*.pcap*") if p.is_file())[:12]


@pytest.mark.parametrize("path", _sample_captures(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_skipped_columns_leave_every_other_column_alone(path: Path) -> None:
    full_book, skip_book = AddressBook(), AddressBook()
    with open_capture(path) as a, open_capture(path) as b:
        for batch_a, batch_b in zip(a.batches(), b.batches(), strict=True):
            full = decode_batch(batch_a, a.info, full_book)
            part = decode_batch(batch_b, b.info, skip_book, skip=SKIPPABLE_COLUMNS)
            for name, values in full.items():
                if name in SKIPPABLE_COLUMNS:
                    assert (part[name] == empty_chunk(1)[name][0]).all(), name
                else:
                    np.testing.assert_array_equal(part[name], values, err_msg=name)
    assert skip_book.ip_texts == full_book.ip_texts
    assert skip_book.texts == full_book.texts


def test_address_cache_gives_the_books_codes_through_collisions() -> None:
    rng = np.random.default_rng(7)
    book = AddressBook()
    cache = _CodeCache()
    # more distinct values than the cache has slots: many collide and are looked up again
    pool = rng.integers(0, 1 << 32, size=3 * (1 << _CodeCache.BITS), dtype=np.uint64)
    for _ in range(6):
        values = pool[rng.integers(0, len(pool), size=40_000)]
        codes = cache.lookup(values, book.intern_ip4)
        texts = np.array(book.ip_texts, dtype=object)[codes]
        expected = [
            f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in values.tolist()
        ]
        assert texts.tolist() == expected
    assert len(book.ip_texts) == len(np.unique(book.ip_texts))


def test_mac_interning_skipped_by_the_state() -> None:
    book = AddressBook()
    chunk = empty_chunk(3)
    st = DecodeState(chunk, book, frozenset({"eth_src"}))
    rows = np.arange(3)
    st.put_mac("eth_src", rows, np.array([1, 2, 3], dtype=np.uint64))
    st.put_mac("eth_dst", rows, np.array([1, 2, 1], dtype=np.uint64))
    assert chunk["eth_src"].tolist() == [-1, -1, -1]
    assert [book.mac_texts[c] for c in chunk["eth_dst"]] == [
        "00:00:00:00:00:01",
        "00:00:00:00:00:02",
        "00:00:00:00:00:01",
    ]


def _pcap_records(rng: np.random.Generator, count: int, decoys: bool, far: bool) -> bytes:
    """``count`` records of random sizes; ``decoys`` puts fake record headers in payloads,
    ``far`` makes the seconds jump by days (no guess is then plausible)."""
    records = []
    sec = 1_700_000_000
    for i in range(count):
        size = int(rng.choice([60, 66, 590, 1514, int(rng.integers(40, 1600))]))
        payload = bytearray(craft.frame_bytes(size, i % 11))
        if decoys and size >= 40:
            fake = craft.pcap_record(sec, 5, b"\x00" * int(rng.integers(0, 1500)))[:16]
            at = int(rng.integers(0, size - 16))
            payload[at : at + 16] = fake
        if far:
            sec += int(rng.integers(0, 3)) * 200_000
        records.append(craft.pcap_record(sec, int(rng.integers(0, 999_999)), bytes(payload)))
    return craft.pcap_header() + b"".join(records)


@pytest.mark.parametrize(("decoys", "far"), [(False, False), (True, False), (False, True)])
def test_lockstep_walk_finds_what_the_plain_walk_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoys: bool, far: bool
) -> None:
    from netdiag.capture.formats import pcap

    path = tmp_path / "walk.pcap"
    path.write_bytes(_pcap_records(np.random.default_rng(3), 5000, decoys, far))
    calls: list[bool] = []

    def counted(*args):  # type: ignore[no-untyped-def]
        result = plain(*args)
        calls.append(result is not None)
        return result

    plain = pcap.chain_positions
    monkeypatch.setattr(pcap, "chain_positions", counted)
    fast = read_frames(path)
    monkeypatch.setattr(pcap, "chain_positions", lambda *args: None)
    assert read_frames(path) == fast
    assert len(fast[1]) == 5000 and fast[0] == []
    if not decoys and not far:
        assert calls and all(calls)  # the lockstep walk was used, not the fallback


def test_lockstep_walk_guesses_are_checked() -> None:
    from netdiag.capture.formats import pcap

    rng = np.random.default_rng(5)
    content = _pcap_records(rng, 6000, decoys=True, far=False)[len(craft.pcap_header()) :]
    data = np.frombuffer(content, dtype=np.uint8)
    stop = len(data) - 16 - 327_680
    result = pcap.chain_positions(data, stop, 16, "<", 1000, 327_680)
    plain = [0]
    while plain[-1] < stop:
        caplen = int.from_bytes(content[plain[-1] + 8 : plain[-1] + 12], "little")
        plain.append(plain[-1] + 16 + caplen)
    if result is not None:  # decoys may make it give up, never answer wrong
        np.testing.assert_array_equal(result[0], plain[:-1])
        assert result[1] == plain[-1]
