"""Measure the column-wise header decoder alone and with the container reader; print Markdown.

python bench/bench_decode.py [capture ...]      # default: the 1M-packet synthetic captures

For each capture: the reader alone (record walk, no decoding), reader + ``decode_batch`` (the
packet table's chunks), and ``decode_batch`` alone on batches already in memory (best of 3, CPU
time), plus the chunk memory. Nothing is asserted: timings on a shared machine are noisy.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netdiag.addressbook import AddressBook  # noqa: E402
from netdiag.capture.decode import decode_batch  # noqa: E402
from netdiag.capture.reader import open_capture  # noqa: E402
from netdiag.capture.table import DEFAULT_CHUNK_BYTES  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
DEFAULT_GLOBS = (
    "syn-ether-1000000-*.pcap",
    "syn-sll2-1000000-*.pcap",
    "syn-pcapng-1000000-*.pcapng",
)


def measure(path: Path) -> str:
    with open_capture(path) as cap:  # warm the page cache and the imports
        for _ in cap.batches(DEFAULT_CHUNK_BYTES):
            pass
    t0, c0 = time.perf_counter(), time.process_time()
    packets = 0
    with open_capture(path) as cap:
        for batch in cap.batches(DEFAULT_CHUNK_BYTES):
            packets += len(batch)
    read_wall, read_cpu = time.perf_counter() - t0, time.process_time() - c0

    book = AddressBook()
    t0, c0 = time.perf_counter(), time.process_time()
    chunk_bytes = 0
    with open_capture(path) as cap:
        for batch in cap.batches(DEFAULT_CHUNK_BYTES):
            chunk = decode_batch(batch, cap.info, book)
            chunk_bytes = max(chunk_bytes, sum(a.nbytes for a in chunk.values()))
    both_wall, both_cpu = time.perf_counter() - t0, time.process_time() - c0

    # decode alone, on the first ~250k packets held in memory, scaled to 1M packets
    with open_capture(path) as cap:
        batches, info = [], cap.info
        for batch in cap.batches(DEFAULT_CHUNK_BYTES):
            batches.append(batch)
            if sum(len(b) for b in batches) >= 250_000:
                break
    held = sum(len(b) for b in batches)
    best = float("inf")
    for _ in range(3):
        book = AddressBook()
        c0 = time.process_time()
        for batch in batches:
            decode_batch(batch, info, book)
        best = min(best, time.process_time() - c0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_m = 1e6 / packets
    return (
        f"| {path.name} | {packets:,} | {read_wall * per_m:.2f} / {read_cpu * per_m:.2f} | "
        f"{both_wall * per_m:.2f} / {both_cpu * per_m:.2f} | {best * 1e6 / held:.2f} | "
        f"{packets / both_wall / 1e6:.2f} | {chunk_bytes / 2**20:.1f} | {rss:.0f} |"
    )


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [p for g in DEFAULT_GLOBS for p in sorted(CACHE.glob(g))]
    if not paths:
        print("no capture given and none in bench/.cache (python bench/gen.py ... first)")
        return 1
    print(
        "| capture | packets | read s/1M wall / cpu | read+decode s/1M wall / cpu | "
        "decode alone cpu s/1M | M packets/s (read+decode) | chunk MB | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        print(measure(path), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
