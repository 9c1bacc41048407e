"""Benchmark of multi-capture correlation: analysing two 1M-packet captures together vs one by one.

Issue 8's target: matching two 1M-packet captures takes at most 2x the time of analysing them one
by one. The two captures are one synthetic traffic seen at two points (tests/synth_pairs.py):
A plain, B behind a NAT (the VIP rewritten to a real server) with its clock 1.3 s behind, 1 %
loss at each point and a 150 us hop between them. They are generated once and cached in
bench/.cache/ (with their ground truth) under a name holding the size, seed, offset and a hash of
the generator's sources.

Each round runs, as separate processes under GNU time, in a rotating order:
``netdiag analyze A``, ``netdiag analyze B`` and ``netdiag analyze A B`` (both with
``-o /dev/null --fail-on never``). Printed (Markdown): median / min wall time, median CPU time,
peak RSS per command, the ratio analyze(A B) / (analyze(A) + analyze(B)) on wall and CPU time,
and the matching quality of the big pair computed in this process (recall, false pairs, clock
offset error, mappings). Nothing is asserted: this is a measurement.

    python bench/correlate_bench.py                 # 1M packets a capture, 3 rounds
    python bench/correlate_bench.py --packets 200000 --rounds 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from synth_pairs import Pair, PointSpec, breakdown, make_pair, score  # noqa: E402

GNU_TIME = "/usr/bin/time"


def generator_hash() -> str:
    """A hash of every source the captures depend on: a changed generator regenerates them."""
    digest = hashlib.sha256()
    sources = sorted((REPO / "netdiag" / "synth").glob("*.py")) + [REPO / "tests/synth_pairs.py"]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cached_pair(packets: int, seed: int, offset_ns: int) -> Pair:
    """The pair of captures and its truth, generated on first use."""
    from netdiag.synth import generate_traffic

    stem = f"corr-{packets}-s{seed}-o{offset_ns}-{generator_hash()}"
    truth_path = CACHE / f"{stem}-truth.npz"
    meta_path = CACHE / f"{stem}-truth.json"
    if truth_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        arrays = np.load(truth_path)
        return Pair(
            paths=(Path(meta["paths"][0]), Path(meta["paths"][1])),
            rows=(arrays["rows_a"], arrays["rows_b"]),
            kinds=arrays["kinds"],
            src=arrays["src"],
            dst=arrays["dst"],
            offsets=(0, int(meta["true_offset_ns"])),
            vip=tuple(meta["vip"]),  # type: ignore[arg-type]
            rip=tuple(meta["rip"]),  # type: ignore[arg-type]
            nat_side=int(meta["nat_side"]),
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"generating the pair ({packets:,} packets, seed {seed}) ...", file=sys.stderr)
    traffic = generate_traffic(packets, seed=seed)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        pair = make_pair(
            traffic,
            PointSpec(loss=0.01, loss_seed=1),
            PointSpec(clock_offset_ns=offset_ns, nat=True, loss=0.01, loss_seed=2),
            Path(tmp),
        )
        final = (CACHE / f"{stem}-a.pcap", CACHE / f"{stem}-b.pcap")
        for made, path in zip(pair.paths, final, strict=True):
            os.replace(made, path)
    pair.paths = final
    np.savez(
        truth_path,
        rows_a=pair.rows[0],
        rows_b=pair.rows[1],
        kinds=pair.kinds,
        src=pair.src,
        dst=pair.dst,
    )
    meta = {
        "paths": [str(p) for p in final],
        "true_offset_ns": pair.true_offset_ns,
        "vip": list(pair.vip),
        "rip": list(pair.rip),
        "nat_side": pair.nat_side,
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return pair


def timed(command: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS MB) of one process run under GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        fmt = "%e %U %S %M"
        proc = subprocess.run(
            [GNU_TIME, "-f", fmt, "-o", out.name, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr}")
        wall, user, sys_, rss_kb = out.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss_kb) // 1024


def measure(pair: Pair, rounds: int) -> dict[str, list[tuple[float, float, int]]]:
    a, b = (str(p) for p in pair.paths)
    netdiag = [sys.executable, "-m", "netdiag", "analyze"]
    tail = ["-o", os.devnull, "--fail-on", "never"]
    commands = {
        "analyze A": [*netdiag, a, *tail],
        "analyze B": [*netdiag, b, *tail],
        "analyze A B": [*netdiag, a, b, "--point", f"a={a}", "--point", f"b={b}", *tail],
    }
    for path in (a, b):  # page cache: untimed read first
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    names = list(commands)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(timed(commands[name]))
            wall, cpu, rss = results[name][-1]
            print(
                f"  round {r + 1} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss} MB",
                file=sys.stderr,
            )
    return results


def quality(pair: Pair) -> dict[str, Any]:
    """Matching quality of the pair, computed in this process (also times the correlation)."""
    from netdiag.engine.analysis import load_context

    a, b = (str(p) for p in pair.paths)
    started = time.perf_counter()
    ctx, _ = load_context([a, b], point_names={a: "a", b: "b"})
    loaded = time.perf_counter()
    corr = ctx.correlation
    done = time.perf_counter()
    assert corr is not None
    s = score(pair, corr.observations, corr.points[1].clock_offset_ns)
    return {
        "load_s": loaded - started,
        "correlate_s": done - loaded,
        "true_pairs": s.true_pairs,
        "recall": s.recall,
        "false_pairs": len(s.false),
        "offset_ns": corr.points[1].clock_offset_ns,
        "true_offset_ns": pair.true_offset_ns,
        "offset_error_ns": s.offset_error_ns,
        "basis": corr.points[1].offset_basis,
        "missed": breakdown(pair, s.missed),
        "false": breakdown(pair, s.false),
        "mappings": [
            f"{m.kind} {m.before} -> {m.after} ({m.connections} connections)"
            for m in corr.mappings.itertuples()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--offset-ns", type=int, default=-1_300_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-quality", action="store_true", help="skip the in-process matching")
    args = parser.parse_args()
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"{GNU_TIME} (GNU time) is needed for the peak RSS")
    pair = cached_pair(args.packets, args.seed, args.offset_ns)
    sizes = [p.stat().st_size / 1e6 for p in pair.paths]
    results = measure(pair, args.rounds)

    print(f"## Correlation: two captures of {args.packets:,} packets of one traffic\n")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"Measured {stamp} on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
        f"at the end; Python {sys.version.split()[0]}.\n"
    )
    print(
        f"A: {len(pair.rows[0]):,} packets ({sizes[0]:.0f} MB); B: {len(pair.rows[1]):,} "
        f"packets ({sizes[1]:.0f} MB), NAT VIP -> real server, clock "
        f"{pair.true_offset_ns / 1e9:+.3f} s, 1 % loss at each point; {args.rounds} rounds\n"
    )
    print("| command | wall median (s) | wall min (s) | CPU median (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    med: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        walls = [w for w, _, _ in runs]
        cpus = [c for _, c, _ in runs]
        med[name] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"| netdiag {name} | {med[name][0]:.2f} | {min(walls):.2f} | {med[name][1]:.2f} | "
            f"{max(r for _, _, r in runs)} |"
        )
    wall_ratio = med["analyze A B"][0] / (med["analyze A"][0] + med["analyze B"][0])
    cpu_ratio = med["analyze A B"][1] / (med["analyze A"][1] + med["analyze B"][1])
    print(
        f"\nanalyze(A B) / (analyze(A) + analyze(B)): wall {wall_ratio:.2f}x, CPU "
        f"{cpu_ratio:.2f}x (target <= 2x: {'met' if wall_ratio <= 2 else 'NOT met'})\n"
    )
    if args.no_quality:
        return
    q = quality(pair)
    print("| matching quality | value |")
    print("|---|---|")
    print(f"| true pairs | {q['true_pairs']:,} |")
    print(f"| recall | {q['recall']:.5f} |")
    print(f"| false pairs | {q['false_pairs']} |")
    print(
        f"| clock offset found / true (ns) | {q['offset_ns']:,} / {q['true_offset_ns']:,} "
        f"({q['basis']}) |"
    )
    print(f"| offset error | {q['offset_error_ns'] / 1e3:+.1f} us |")
    print(f"| in-process: load both / correlate (s) | {q['load_s']:.2f} / {q['correlate_s']:.2f} |")
    print(f"\nmissed: {q['missed']}\n\nfalse: {q['false']}\n\nmappings:")
    for line in q["mappings"]:
        print(f"- {line}")


if __name__ == "__main__":
    main()
