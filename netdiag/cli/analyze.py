"""`netdiag analyze CAPTURE... [--facts PATH...]`: which known failure is there, its proof and fix.

Several captures (or a case folder holding them) are capture points of one incident; ``--point
NAME=FILE`` names one (see :mod:`netdiag.case` and :mod:`netdiag.correlate`).
"""

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


@one_line_errors
def analyze_command(
    captures: list[str] = typer.Argument(
        None,
        help="Capture files (pcap, pcapng; compressed too), or case folders holding captures "
        "and facts.",
    ),
    facts: list[str] = typer.Option(
        None,
        "--facts",
        help="Facts file or folder (ip addr/route, sysctl, ipvsadm, ...); repeatable.",
    ),
    points: list[str] = typer.Option(
        None,
        "--point",
        metavar="NAME=FILE",
        help="Name the capture point FILE (analysed too when not given as an argument); "
        "repeatable.",
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, md or html."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write the report to FILE."),
    select: list[str] = typer.Option(
        None,
        "--select",
        help="Rule codes or prefixes to run (e.g. LB,ARP001); default: all stable.",
    ),
    ignore: list[str] = typer.Option(None, "--ignore", help="Rule codes or prefixes not to run."),
    evidence: str | None = typer.Option(
        None,
        "--evidence",
        help="Write the evidence frames (and their handshakes), commented, to this pcapng.",
    ),
    redact: bool = typer.Option(
        False,
        "--redact",
        help="Pseudonymise IP and MAC addresses in the report and the evidence pcapng "
        "(prefix-preserving; key from NETDIAG_REDACT_KEY, else random).",
    ),
    fail_on: str = typer.Option(
        "warning",
        "--fail-on",
        help="Exit 1 when a finding is at least: info, warning, error, never.",
    ),
) -> None:
    """Run the rules over captures and facts. Exit 0 clean, 1 findings at --fail-on or above, 2 input error.

    With --facts and no capture, the configuration alone is audited.
    """
    from netdiag.engine.analysis import analyze
    from netdiag.engine.selection import parse_codes
    from netdiag.render import RENDERERS

    if fmt not in RENDERERS:
        error_line(f"--format must be one of {', '.join(RENDERERS)}, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if fail_on not in FAIL_ON:
        error_line(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    captures, facts = expand_arguments(list(captures or []), list(facts or []))
    point_names = parse_points(list(points or []), captures)
    if not captures and not facts:
        error_line("nothing to analyze: give capture files, or --facts PATH to audit configuration")
        raise typer.Exit(EXIT_INPUT_ERROR)
    analysis = analyze(
        captures, facts, parse_codes(select), parse_codes(ignore), point_names=point_names
    )
    for problem in analysis.facts_problems:
        print(f"netdiag: warning: {problem}", file=sys.stderr)
    for errored in analysis.result.errored:
        print(f"netdiag: warning: rule {errored.code} failed: {errored.reason}", file=sys.stderr)
    to_terminal = output in (None, "-") and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    redactor = None
    if redact:
        from netdiag.redact import Redactor

        redactor = Redactor.from_env()
    with output_stream(output) as out:
        if redactor is None:
            RENDERERS[fmt](analysis, out, to_terminal)
        else:
            from netdiag.render.document import write_redacted

            write_redacted(fmt, analysis, out, redactor)
    if evidence:
        from netdiag.evidence_pcapng import write_evidence

        written = write_evidence(analysis, evidence, redactor)
        print(
            f"netdiag: evidence: {written.packets} packets written to {evidence}", file=sys.stderr
        )
    raise typer.Exit(EXIT_FINDINGS if analysis.result.fails(fail_on) else EXIT_CLEAN)


def expand_arguments(arguments: list[str], facts: list[str]) -> tuple[list[str], list[str]]:
    """Capture arguments with each case folder replaced by its captures, its facts added."""
    from netdiag.case import expand_case

    captures: list[str] = []
    facts = list(facts)
    for argument in arguments:
        if os.path.isdir(argument):
            found, case_facts = expand_case(argument)
            captures += found
            facts += [f for f in case_facts if f not in facts]
        else:
            captures.append(argument)
    return captures, facts


def parse_points(options: list[str], captures: list[str]) -> dict[str, str]:
    """``--point NAME=FILE`` options as {capture path: name}; a FILE that is not among
    ``captures`` is appended to them (the same file given twice is one capture)."""
    from netdiag.errors import NetdiagError

    names: dict[str, str] = {}
    for option in options:
        name, sep, path = option.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise NetdiagError(None, f"--point wants NAME=FILE, not {option!r}")
        if name in names.values():
            raise NetdiagError(None, f"--point name {name!r} is given twice")
        if os.path.isdir(path):
            raise NetdiagError(path, "--point names one capture file, not a folder")
        capture = _same_file(path, captures)
        if capture is None:
            captures.append(path)
            capture = path
        if capture in names:
            raise NetdiagError(path, f"--point names this capture twice ({names[capture]!r})")
        names[capture] = name
    return names


def _same_file(path: str, captures: list[str]) -> str | None:
    """The entry of ``captures`` that is the file ``path`` (as written, or the same real file)."""
    if path in captures:
        return path
    real = os.path.realpath(path)
    for capture in captures:
        if os.path.realpath(capture) == real:
            return capture
    return None
