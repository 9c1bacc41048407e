"""Benchmark of `netdiag scan`: throughput with --jobs 1 and 2, resume, per-file overhead.

python bench/scan_bench.py                # 200 captures from samples/ and the shared corpus
python bench/scan_bench.py --files 100 --jobs 1 2
python bench/scan_bench.py --synth 20000  # 200 synthetic captures of 20k packets (netdiag.synth)

Nothing is asserted: it prints a Markdown table (best of --repeat rounds; the machine is shared,
so other load shows as noise). Each scan runs as its own process on a fresh
catalogue (worker start-up included, as a user sees it). "analysis alone" is `analyze()` on each
file one after the other in this process, warmed up; the per-file overhead is the single-worker
scan's wall time minus that, divided by the number of files (hashing, the worker round trip, the
JSON of the findings, the catalogue transaction, the walk, process start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CORPUS = REPO.parent / "shared" / "corpus" / "files"


def pick(files: int, folder: Path) -> list[Path]:
    """``files`` captures, samples first, as symlinks in ``folder`` (facts/ folders copied in
    as links too, so each sample is analysed with its facts as in a real archive)."""
    from netdiag.scan.walk import walk

    sources = [str(REPO / "samples")] + ([str(CORPUS)] if CORPUS.is_dir() else [])
    chosen = walk(sources).candidates[:files]
    links = []
    for i, cand in enumerate(chosen):
        case = folder / f"case{i:04d}"
        case.mkdir()
        link = case / os.path.basename(cand.path)
        link.symlink_to(cand.path)
        if cand.facts:
            (case / "facts").symlink_to(cand.facts[0])
        links.append(link)
    return links


def synthesise(files: int, packets: int, folder: Path) -> list[Path]:
    """``files`` deterministic synthetic captures (different seeds) of about ``packets`` each."""
    from netdiag.synth import write_capture

    out = []
    for i in range(files):
        path = folder / f"probe-{i:04d}.pcap"
        write_capture(path, "ether", packets, seed=i + 1)
        out.append(path)
    return out


def run_scan(root: Path, db: Path, jobs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NETDIAG_RULES_VERSION": "bench"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "netdiag", "scan", str(root), "--db", str(db), "--jobs", str(jobs)]
        + ["--progress", "none", "--fail-on", "never"],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def analysis_alone(links: list[Path]) -> float:
    from netdiag.engine.analysis import analyze
    from netdiag.errors import NetdiagError
    from netdiag.scan.walk import find_facts
    from netdiag.scan.worker import warm_up

    warm_up()
    start = time.perf_counter()
    for link in links:
        facts = find_facts(str(link), str(link.parent))
        with contextlib.suppress(NetdiagError):
            analyze([str(link)], [facts] if facts else [])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--synth", type=int, default=0, metavar="PACKETS", help="synthetic captures of this size"
    )
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the best of each is kept")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        root = Path(tmp) / "archive"
        root.mkdir()
        links = synthesise(args.files, args.synth, root) if args.synth else pick(args.files, root)
        n = len(links)
        figures: dict[str, float] = {"files": n}
        figures["analysis_alone_s"] = analysis_alone(links)
        last = args.jobs[-1]
        for round_ in range(args.repeat):
            for jobs in args.jobs:
                db = Path(tmp) / f"jobs{jobs}-{round_}.sqlite"
                seconds = run_scan(root, db, jobs)
                figures[f"jobs{jobs}_s"] = min(figures.get(f"jobs{jobs}_s", seconds), seconds)
            seconds = run_scan(root, Path(tmp) / f"jobs{last}-{round_}.sqlite", last)
            figures["resume_s"] = min(figures.get("resume_s", seconds), seconds)
    print(f"| measure ({n} captures) | seconds | files/s |")
    print("|---|---|---|")
    print(
        f"| analysis alone, in process | {figures['analysis_alone_s']:.2f} | "
        f"{n / figures['analysis_alone_s']:.1f} |"
    )
    for jobs in args.jobs:
        s = figures[f"jobs{jobs}_s"]
        print(f"| `netdiag scan --jobs {jobs}` | {s:.2f} | {n / s:.1f} |")
    print(
        f"| resume (`--jobs {last}`, nothing changed) | {figures['resume_s']:.2f} | "
        f"{n / figures['resume_s']:.1f} |"
    )
    if 1 in args.jobs and len(args.jobs) > 1:
        for jobs in args.jobs[1:]:
            print(
                f"\nspeed-up --jobs {jobs} / --jobs 1: "
                f"{figures['jobs1_s'] / figures[f'jobs{jobs}_s']:.2f}x"
            )
    if 1 in args.jobs:
        overhead = (figures["jobs1_s"] - figures["analysis_alone_s"]) / n
        print(f"per-file overhead beyond the analysis (--jobs 1): {overhead * 1000:.1f} ms")
    print(
        f"resume / first scan (--jobs {last}): "
        f"{figures['resume_s'] / figures[f'jobs{last}_s'] * 100:.1f} %"
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
