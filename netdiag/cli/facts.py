"""`netdiag facts PATH... [--format tree|yaml|json] [--host NAME]`: what netdiag understood.

Thin over netdiag.facts.loader / netdiag.facts.export. Facts go to stdout; problems (unrecognised
sections, malformed lines) to stderr as `file:line: message`. Exit 0 when facts were read (even
with problems), 2 when a path cannot be read, the format is unknown, or nothing was understood.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from netdiag.errors import NetdiagError


def run_facts(paths: list[str], fmt: str = "tree", host: str | None = None) -> int:
    """Load ``paths`` and print the facts in ``fmt``; returns the exit code."""
    # imported here: the facts package (and yaml) would cost every other subcommand's start-up
    from netdiag.facts.export import FORMATS, render
    from netdiag.facts.loader import load_facts

    if fmt not in FORMATS:
        print(
            f"netdiag facts: unknown format {fmt!r} (one of {', '.join(FORMATS)})", file=sys.stderr
        )
        return 2
    if not paths:
        print("netdiag facts: give at least one facts file or directory", file=sys.stderr)
        return 2
    try:
        facts, problems = load_facts(paths, default_host=host)
    except NetdiagError as exc:
        print(f"netdiag facts: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"{problem}", file=sys.stderr)
    if facts.is_empty():
        print("netdiag facts: no facts understood in " + ", ".join(paths), file=sys.stderr)
        return 2
    sys.stdout.write(render(facts, fmt))
    return 0


def facts_command(
    paths: Annotated[list[str], typer.Argument(help="facts files or directories")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="tree, yaml (topology, reads back) or json")
    ] = "tree",
    host: Annotated[
        str | None, typer.Option("--host", help="host name for files that do not name one")
    ] = None,
) -> None:
    """Show the topology facts understood from pasted outputs, each with its source line."""
    raise typer.Exit(run_facts(paths, fmt, host))
