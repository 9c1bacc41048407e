"""Command line: write a deterministic synthetic capture (see netdiag/synth) and print its truth.

python bench/gen.py --packets 1000000 --format ether --out /tmp/syn.pcap
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netdiag.synth import LAYOUTS, write_capture  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="about this many packets")
    ap.add_argument("--format", choices=sorted(LAYOUTS), default="ether", help="capture layout")
    ap.add_argument("--out", required=True, help="file to write")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="payloads under 64 bytes (big captures)")
    ap.add_argument(
        "--epoch-packets",
        type=int,
        default=1_000_000,
        help="generate and write this many packets at a time (bounds memory)",
    )
    ap.add_argument("--json", action="store_true", help="print the ground truth summary as JSON")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    summary = write_capture(
        args.out,
        args.format,
        args.packets,
        args.seed,
        small=args.small,
        epoch_packets=args.epoch_packets,
    )
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"{args.out}: {summary['packets']} packets, {summary['bytes'] / 1e6:.1f} MB, "
            f"{summary['tcp_connections']} TCP connections, "
            f"{summary['tcp_retransmissions']} retransmissions, {elapsed:.1f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
