"""`netdiag scan PATH...` and `netdiag scan-report`: batch analysis of capture archives into a
catalogue, and summaries of it (thin over netdiag.scan.runner and netdiag.scan.report)."""

from __future__ import annotations

import os
import sys

import typer

from netdiag.cli.common import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_INPUT_ERROR,
    error_line,
    one_line_errors,
    output_stream,
)

FAIL_ON = ("info", "warning", "error", "never")
DEFAULT_DB = "netdiag-scan.sqlite"


@one_line_errors
def scan_command(
    paths: list[str] = typer.Argument(
        None, help="Capture files, directories (walked) or globs ('archive/**/*.pcap*')."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", help="The catalogue (SQLite) to fill and resume."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes; 0: one per core."),
    facts: list[str] = typer.Option(
        None,
        "--facts",
        help="Facts for every capture (default: the facts/ folder beside each capture).",
    ),
    select: list[str] = typer.Option(None, "--select", help="Rule codes or prefixes to run."),
    ignore: list[str] = typer.Option(None, "--ignore", help="Rule codes or prefixes not to run."),
    fail_on: str = typer.Option(
        "warning",
        "--fail-on",
        help="Exit 1 when a finding is at least: info, warning, error, never.",
    ),
    dask: str | None = typer.Option(
        None, "--dask", help="Run on a Dask cluster: tcp://scheduler:8786, or 'local'."
    ),
    time_limit: float = typer.Option(
        600.0, "--time-limit", help="Seconds one file may take (0: none); beyond it, it fails."
    ),
    memory_limit: int = typer.Option(
        4096, "--memory-limit", help="MB of address space per worker (0: none)."
    ),
    all_files: bool = typer.Option(
        False, "--all-files", help="In directories, try every file, not only capture-like names."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Analyse again the files that failed last time."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Hash catalogued files instead of trusting size and mtime."
    ),
    progress: str = typer.Option(
        "auto", "--progress", help="auto (a live bar on a terminal), plain (a line per file), none."
    ),
) -> None:
    """Analyse many captures in parallel into a resumable catalogue.

    Exit 0: every file analysed, no finding at --fail-on or above; 1: such findings; 2: usage
    error, or some files failed (listed, and kept in the catalogue with their error).
    """
    from netdiag.engine.selection import parse_codes
    from netdiag.scan.runner import PlainProgress, QuietProgress, RichProgress, ScanOptions, scan

    if fail_on not in FAIL_ON:
        error_line(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if progress not in ("auto", "plain", "none"):
        error_line(f"--progress must be auto, plain or none, not {progress!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if not paths:
        error_line("nothing to scan: give capture files, directories or globs")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if jobs < 0:
        error_line("--jobs must be 0 (one per core) or more")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if progress == "auto":
        progress = "rich" if sys.stderr.isatty() and not os.environ.get("NO_COLOR") else "plain"
    display = {"rich": RichProgress, "plain": PlainProgress, "none": QuietProgress}[progress]()
    options = ScanOptions(
        paths=list(paths),
        db=db,
        facts=list(facts or []),
        select=parse_codes(select),
        ignore=parse_codes(ignore),
        jobs=jobs,
        time_limit=time_limit,
        memory_limit_mb=memory_limit,
        all_files=all_files,
        retry_failed=retry_failed,
        verify=verify,
        dask=dask,
    )
    summary = scan(options, display)
    by_severity = {s: summary.severities.count(s) for s in ("error", "warning", "info")}
    counts = ", ".join(f"{s} {n}" for s, n in by_severity.items() if n)
    print(
        f"scanned {summary.files} files in {summary.seconds:.1f} s ({summary.executor}):"
        f" {summary.analysed} analysed, {summary.unchanged} unchanged,"
        f" {summary.skipped} skipped (empty), {summary.failed_now} failed now"
    )
    print(
        f"findings in these files: {len(summary.severities)}"
        + (f" ({counts})" if counts else "")
        + f"; catalogue {db} (see `netdiag scan-report --db {db}`)"
    )
    if summary.failed_files:
        print(f"{len(summary.failed_files)} files failed:")
        for path, error in summary.failed_files:
            print(f"  {path}: {error}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if fail_on != "never":
        from netdiag.engine.finding import SEVERITY_RANK

        threshold = SEVERITY_RANK[fail_on]
        if any(SEVERITY_RANK[s] >= threshold for s in summary.severities):
            raise typer.Exit(EXIT_FINDINGS)
    raise typer.Exit(EXIT_CLEAN)


@one_line_errors
def scan_report_command(
    db: str = typer.Option(DEFAULT_DB, "--db", help="The catalogue written by `netdiag scan`."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, jsonl or parquet."),
    by: str = typer.Option("code", "--by", help="Group findings by code, host (or VIP) or day."),
    failed: bool = typer.Option(
        False, "--failed", help="List the failed files and their errors instead of findings."
    ),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Summarise a scan catalogue: findings by rule, host or day, and the files that failed."""
    from netdiag.scan.report import (
        FORMATS,
        GROUPINGS,
        WRITERS,
        build_report,
        failed_files,
        status_counts,
        table,
    )

    if fmt not in FORMATS:
        error_line(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if by not in GROUPINGS:
        error_line(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if fmt == "parquet" and output in (None, "-") and sys.stdout.isatty():
        error_line("--format parquet is binary: write it to a file with -o FILE")
        raise typer.Exit(EXIT_INPUT_ERROR)
    failures = failed_files(db)
    if fmt == "table":
        from rich.console import Console

        grouped = build_report(db, by)
        counts = status_counts(db)
        with output_stream(output) as out:
            console = Console(file=out, width=None if out is sys.stdout else 160)
            console.print(
                f"catalogue {db}: "
                + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            )
            if not failed:
                console.print(table(grouped, f"findings by {by}"))
            if len(failures) or failed:
                console.print(table(failures[["path", "error"]], "failed files"))
        raise typer.Exit(EXIT_CLEAN)
    frame = failures if failed else build_report(db, by)
    writer, binary = WRITERS[fmt]
    with output_stream(output, binary=binary) as out:
        writer(frame, out)
    raise typer.Exit(EXIT_CLEAN)
