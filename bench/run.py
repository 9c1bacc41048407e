"""Benchmark: netdiag against tshark and tcpdump on the same synthetic captures; prints Markdown.

    python bench/run.py                 # 1M packets, Ethernet pcap / SLL2 pcap / pcapng, 3 rounds
    python bench/run.py --repeat 5 --all-tools-everywhere
    python bench/run.py --big           # instead: a 10M-packet SLL2 capture, flows and analyze
    python bench/run.py --baseline DIR  # also `netdiag flows` of the netdiag package in DIR

Captures come from netdiag.synth (deterministic) and are cached in bench/.cache/ under a name
holding seed, size and a hash of the generator's source. Every command runs as its own process,
files in the page cache (one untimed warm-up read first); rounds alternate the tools so that a
noisy neighbour hits all of them alike. Wall time is whole-process (start-up included); peak RSS
is the child's ru_maxrss from wait4(). Not a test: nothing here asserts; the targets are printed
next to the measured ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from netdiag.synth import write_capture  # noqa: E402

CACHE = BENCH / ".cache"
FORMATS = ("ether", "sll2", "pcapng")
TSHARK_FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "frame.len",
)

#: the row of `netdiag flows` from the netdiag package given with --baseline
BASELINE = "netdiag flows (baseline)"
#: the rows the targets are judged for
SUBJECTS = ("netdiag flows", BASELINE)

#: (name, goal, kind): ratio goals are "at least", "at most" for the last two
TARGETS = (
    ("tshark fields / netdiag flows", 20.0, "min"),
    ("tshark conv,tcp / netdiag flows", 4.0, "min"),
    ("netdiag flows / tcpdump read", 7.0, "max"),
    ("netdiag flows peak RSS MB", 700.0, "max"),
)


@dataclass
class Tool:
    name: str
    argv: list[str]  # "{F}" is replaced by the capture path
    ok_codes: tuple[int, ...] = (0,)
    #: run from this directory with it as PYTHONPATH (an older netdiag tree), else from here
    tree: str | None = None


@dataclass
class Sample:
    """One process run: wall and CPU (user + sys) seconds, peak RSS, why it failed if it did."""

    wall: float
    cpu: float
    rss_mb: float
    failure: str = ""


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)
    failure: str = ""

    def median(self, attr: str = "wall") -> float | None:
        values = [getattr(s, attr) for s in self.samples]
        return statistics.median(values) if values else None


def _generator_hash() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "netdiag" / "synth").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


def cached_capture(layout: str, packets: int, seed: int, small: bool = False) -> tuple[Path, dict]:
    """The capture for these arguments, generated once into bench/.cache/."""
    CACHE.mkdir(exist_ok=True)
    ext = "pcapng" if layout.startswith("pcapng") else "pcap"
    stem = f"syn-{layout}-{packets}-s{seed}-{'small' if small else 'full'}-{_generator_hash()}"
    path, meta = CACHE / f"{stem}.{ext}", CACHE / f"{stem}.json"
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    for stale in CACHE.glob(f"{stem.rsplit('-', 1)[0]}-*"):  # older generator versions
        stale.unlink()
    tmp = path.with_suffix(".part")
    t0 = time.perf_counter()
    summary: dict[str, float] = dict(
        write_capture(tmp, layout, packets, seed, small=small, epoch_packets=1_000_000)
    )
    summary["generate_s"] = round(time.perf_counter() - t0, 2)
    tmp.rename(path)
    meta.write_text(json.dumps(summary, indent=1))
    print(
        f"generated {path.name}: {summary['packets']} packets, {summary['bytes'] / 1e6:.0f} MB "
        f"in {summary['generate_s']} s",
        file=sys.stderr,
    )
    return path, summary


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(argv: list[str], ok_codes: tuple[int, ...], tree: str | None = None) -> Sample:
    """Run one process and measure it.

    The peak RSS comes from GNU time (%M) when installed: a child forked straight from this
    Python process would count the parent's pages it had before exec in its ru_maxrss. CPU time
    (children's user + sys from wait4) is reported too: on a shared machine it varies less than
    wall time."""
    cmd = argv
    rss_file = None
    if GNU_TIME:
        rss_file = CACHE / f".rss-{os.getpid()}"
        cmd = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
    t0 = time.perf_counter()
    env = None if tree is None else {**os.environ, "PYTHONPATH": tree}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree, env=env
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # read before wait4, else a chatty child could block on the pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / 1024
    if rss_file is not None:
        text = rss_file.read_text().split()
        rss_file.unlink()
        if text and text[-1].isdigit():
            rss_mb = int(text[-1]) / 1024
    failure = ""
    if code not in ok_codes:
        lines = [
            ln for ln in err.decode(errors="replace").splitlines() if "Command exited" not in ln
        ]
        failure = f"exit {code}: {(lines[-1:] or [''])[0][:160]}"
    return Sample(wall, usage.ru_utime + usage.ru_stime, rss_mb, failure)


def netdiag_has(subcommand: str) -> tuple[bool, str]:
    res = subprocess.run(
        [sys.executable, "-m", "netdiag", subcommand, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode == 0:
        return True, ""
    return False, (res.stderr.strip().splitlines() or ["no output"])[-1]


def make_tools(has_analyze: bool, baseline: str | None = None) -> dict[str, Tool]:
    py = [sys.executable, "-m", "netdiag"]
    flows = [*py, "flows", "{F}", "--format", "csv", "-o", os.devnull]
    tools = {"netdiag flows": Tool("netdiag flows", flows)}
    if baseline:
        tools[BASELINE] = Tool(BASELINE, flows, tree=str(Path(baseline).resolve()))
    if has_analyze:
        tools["netdiag analyze"] = Tool(
            "netdiag analyze", [*py, "analyze", "{F}", "-o", os.devnull, "--fail-on", "never"]
        )
    tshark = shutil.which("tshark")
    if tshark:
        fields = [a for f in TSHARK_FIELDS for a in ("-e", f)]
        tools["tshark fields"] = Tool(
            "tshark fields", [tshark, "-r", "{F}", "-T", "fields", *fields, "-E", "occurrence=f"]
        )
        tools["tshark conv,tcp"] = Tool(
            "tshark conv,tcp", [tshark, "-r", "{F}", "-q", "-z", "conv,tcp"]
        )
    tcpdump = shutil.which("tcpdump")
    if tcpdump:
        tools["tcpdump read"] = Tool(
            "tcpdump read", [tcpdump, "-nn", "-r", "{F}", "-w", os.devnull]
        )
    return tools


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    ap.add_argument(
        "--formats", default=",".join(FORMATS), help="comma list of: " + ", ".join(FORMATS)
    )
    ap.add_argument(
        "--all-tools-everywhere",
        action="store_true",
        help="run the tshark rows on every format (default: Ethernet pcap only, "
        "tshark -T fields alone takes ~18 s per run here)",
    )
    ap.add_argument(
        "--tools-only",
        action="store_true",
        help="measure tshark/tcpdump even if the netdiag CLI is missing",
    )
    ap.add_argument(
        "--big",
        action="store_true",
        help="instead: a 10M-packet SLL2 capture with small payloads through netdiag flows "
        "and netdiag analyze (peak RSS), with tcpdump for reference; one run each",
    )
    ap.add_argument("--big-packets", type=int, default=10_000_000)
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time `netdiag flows` of the netdiag package in DIR (e.g. `git archive HEAD "
        "netdiag | tar -x -C DIR`), in the same rounds: before/after under the same load",
    )
    args = ap.parse_args(argv)

    has_flows, why = netdiag_has("flows")
    if not has_flows and not args.tools_only:
        print(
            f"bench: error: the netdiag CLI has no working `flows` subcommand yet "
            f"(`python -m netdiag flows --help` failed: {why}); nothing to compare. "
            f"Use --tools-only to measure tshark and tcpdump alone.",
            file=sys.stderr,
        )
        return 2
    has_analyze, _ = netdiag_has("analyze")
    tools = make_tools(has_analyze, args.baseline)
    if not has_flows:
        tools.pop("netdiag flows")
    if args.big:
        if not has_flows:
            print("bench: error: --big measures netdiag flows, which is missing", file=sys.stderr)
            return 2
        _compile_trees(tools)
        print(big_run(args, tools))
        return 0

    _compile_trees(tools)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    caps = {f: cached_capture(f, args.packets, args.seed) for f in formats}
    plan = []  # (format, tool) pairs measured each round
    for f in formats:
        for name in tools:
            if name.startswith("tshark") and f != "ether" and not args.all_tools_everywhere:
                continue
            plan.append((f, name))
    results = {key: Result() for key in plan}
    for f in formats:
        _warm(caps[f][0])
    t_start = time.perf_counter()
    for rnd in range(args.repeat):
        order = plan if rnd % 2 == 0 else plan[::-1]
        for f, name in order:
            res = results[(f, name)]
            if res.failure:
                continue
            tool = tools[name]
            cmd = [str(caps[f][0]) if a == "{F}" else a for a in tool.argv]
            sample = run_once(cmd, tool.ok_codes, tool.tree)
            if sample.failure:
                res.failure = sample.failure
                continue
            res.samples.append(sample)
            print(
                f"round {rnd + 1}/{args.repeat} {f:7s} {name:16s} {sample.wall:7.2f} s wall "
                f"{sample.cpu:7.2f} s CPU {sample.rss_mb:7.0f} MB",
                file=sys.stderr,
            )
    elapsed = time.perf_counter() - t_start
    missing = [t for t in ("tshark", "tcpdump") if not shutil.which(t)]
    print(report(args, caps, plan, results, missing, elapsed))
    return 0


def _compile_trees(tools: dict[str, Tool]) -> None:
    """Byte-compile the measured netdiag trees once, untimed, as an installed package is.

    pip compiles a package's modules when it installs it; a source tree run in place compiles
    them on its first run and keeps them in __pycache__, unless PYTHONDONTWRITEBYTECODE is set
    (as on this machine), when every run would compile netdiag again (~0.05 s, timed).
    """
    trees = {tool.tree or str(ROOT) for tool in tools.values() if tool.name.startswith("netdiag")}
    for tree in sorted(trees):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "netdiag", "rules"], cwd=tree, check=False
        )


def _warm(path: Path) -> None:
    """Read a file once so that every timed run finds it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def _header(args: argparse.Namespace, elapsed: float, rounds: int) -> str:
    load = os.getloadavg()
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{os.cpu_count()} CPUs ({platform.machine()}), load average {load[0]:.1f} at the "
        f"end; Python {platform.python_version()}, {_version(['tshark', '--version'])}, "
        f"{_version(['tcpdump', '--version'])}; {rounds} round(s), {elapsed:.0f} s in all; "
        "netdiag byte-compiled before timing (as pip installs it).\n"
    )


def report(
    args: argparse.Namespace,
    caps: dict[str, tuple[Path, dict]],
    plan: list[tuple[str, str]],
    results: dict[tuple[str, str], Result],
    missing: list[str],
    elapsed: float,
) -> str:
    out = [_header(args, elapsed, args.repeat)]
    out.append(
        "| capture | packets | MB | way of reading | median wall s | min wall s | packets/s "
        "| median CPU s | peak RSS MB |"
    )
    out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for f, name in plan:
        res = results[(f, name)]
        _, summary = caps[f]
        head = f"| {f} | {summary['packets']:,} | {summary['bytes'] / 1e6:,.0f} | {name} |"
        med = res.median()
        if res.failure or med is None:
            out.append(f"{head} failed: {res.failure} | | | | |")
            continue
        walls = [s.wall for s in res.samples]
        rate = f"{summary['packets'] / med / 1e3:,.0f} k"
        rss = max(s.rss_mb for s in res.samples)
        out.append(
            f"{head} {_fmt(med)} | {_fmt(min(walls))} | {rate} | {_fmt(res.median('cpu'))} | "
            f"{rss:,.0f} |"
        )
    for tool in missing:
        out.append(f"| - | - | - | {tool} | not installed: skipped | | | | |")
    out.append("")
    out.append(
        "| target (netdiag flows = packet + flow table) | capture | measured (wall) "
        "| measured (CPU) | goal | met (wall) |"
    )
    out.append("|---|---|---:|---:|---:|---|")
    for f, subject in ((f, s) for f in dict.fromkeys(f for f, _ in plan) for s in SUBJECTS):
        nd = results.get((f, subject))
        if nd is None or not nd.samples:
            continue
        for target, goal, kind in TARGETS:
            target = target.replace("netdiag flows", subject)
            if target.endswith("RSS MB"):
                rss = max(s.rss_mb for s in nd.samples)
                values: tuple[float | None, float | None] = (rss, None)
            else:
                other = results.get((f, target.split(" / ")[0 if kind == "min" else 1]))
                if other is None or not other.samples:
                    continue
                values = tuple(  # type: ignore[assignment]
                    _ratio(nd, other, attr, kind) for attr in ("wall", "cpu")
                )
            value, cpu_value = values
            if value is None:
                continue
            met = value >= goal if kind == "min" else value <= goal
            sign = ">=" if kind == "min" else "<="
            unit = "" if target.endswith("MB") else "x"
            cpu_text = "" if cpu_value is None else f"{cpu_value:,.1f}{unit}"
            out.append(
                f"| {target} | {f} | {value:,.1f}{unit} | {cpu_text} | {sign} {goal:g}{unit} | "
                f"{'yes' if met else '**no**'} |"
            )
    return "\n".join(out)


def _ratio(nd: Result, other: Result, attr: str, kind: str) -> float | None:
    a, b = nd.median(attr), other.median(attr)
    if not a or not b:
        return None
    return b / a if kind == "min" else a / b


def big_run(args: argparse.Namespace, tools: dict[str, Tool]) -> str:
    """The 10M-packet capture: is netdiag's memory bounded by flows, not packets?"""
    path, summary = cached_capture("sll2", args.big_packets, args.seed, small=True)
    _warm(path)
    t0 = time.perf_counter()
    rows = {}
    for name in ("netdiag flows", "netdiag analyze", "tcpdump read"):
        if name in tools:
            cmd = [str(path) if a == "{F}" else a for a in tools[name].argv]
            rows[name] = run_once(cmd, tools[name].ok_codes)
            print(f"big {name}: {rows[name]}", file=sys.stderr)
    out = [_header(args, time.perf_counter() - t0, 1)]
    out.append(
        f"Big capture: {summary['packets']:,} packets, SLL2 pcap with payloads under 64 bytes, "
        f"{summary['bytes'] / 1e6:,.0f} MB, {summary['tcp_connections']:,} TCP connections; "
        f"one run each.\n"
    )
    out.append("| way of reading | wall s | packets/s | CPU s | peak RSS MB | goal |")
    out.append("|---|---:|---:|---:|---:|---|")
    for name, smp in rows.items():
        if smp.failure:
            out.append(f"| {name} | failed: {smp.failure} | | | | |")
            continue
        goal = ""
        if name.startswith("netdiag"):
            goal = "peak RSS < 2,000 MB: " + ("yes" if smp.rss_mb < 2000 else "**no**")
        out.append(
            f"| {name} | {smp.wall:.1f} | {summary['packets'] / smp.wall / 1e3:,.0f} k | "
            f"{smp.cpu:.1f} | {smp.rss_mb:,.0f} | {goal} |"
        )
    return "\n".join(out)


def _version(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return f"{argv[0]} missing"
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    first = (res.stdout or res.stderr).splitlines()[0]
    return " ".join(first.split()[:3]).rstrip(".")


if __name__ == "__main__":
    sys.exit(main())
